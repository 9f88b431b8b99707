#include "auth/jwks_source.hpp"

#include <httplib.h>

#include "auth/jwt.hpp"
#include "auth/limits.hpp"
#include "keys/signing_key_file.hpp"

namespace tokenmeter::auth {

namespace {

bool is_url(const std::string& location) {
    return location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0;
}

struct UrlParts {
    std::string origin;  // scheme://host[:port]
    std::string path;    // from the first "/" after the host, "/" when absent
};

// Keys fetched over plain HTTP could be swapped by anyone on the path, which
// would let them sign tokens for any user; only the local machine (Supabase's
// `supabase start` serves http://127.0.0.1:54321) is trusted without TLS.
bool is_loopback_http(const UrlParts& url) {
    for (const char* origin : {"http://127.0.0.1", "http://localhost", "http://[::1]"}) {
        const std::string_view prefix = origin;
        if (url.origin == prefix || url.origin.rfind(std::string(prefix) + ":", 0) == 0) return true;
    }
    return false;
}

std::optional<UrlParts> split_url(const std::string& url) {
    const std::size_t host_start = url.find("://") + 3;
    const std::size_t path_start = url.find('/', host_start);
    UrlParts parts{url.substr(0, path_start), path_start == std::string::npos ? "/" : url.substr(path_start)};
    if (parts.origin.size() <= host_start) return std::nullopt;
    for (const char c : url) {
        if (c <= ' ' || c == 0x7f) return std::nullopt;
    }
    return parts;
}

// One GET, bounded in time and size; redirects are not followed (a JWKS URL
// is configured exactly).
Result<std::string, Error> fetch(const UrlParts& url) {
    httplib::Client client(url.origin);
    if (!client.is_valid()) return unexpected(make_error("jwks_unavailable", "cannot connect to " + url.origin));
    client.set_connection_timeout(limits::jwks_fetch_timeout_seconds, 0);
    client.set_read_timeout(limits::jwks_fetch_timeout_seconds, 0);
    client.set_write_timeout(limits::jwks_fetch_timeout_seconds, 0);
    client.set_follow_location(false);
    std::string body;
    int status = 0;
    auto result = client.Get(
        url.path,
        [&](const httplib::Response& response) {
            status = response.status;
            return status == 200;
        },
        [&](const char* data, std::size_t size) {
            if (body.size() + size > limits::jwks_bytes_max) return false;
            body.append(data, size);
            return true;
        });
    if (status != 0 && status != 200) {
        return unexpected(make_error("jwks_unavailable", "GET " + url.origin + url.path + " answered " + std::to_string(status)));
    }
    if (!result) {
        return unexpected(make_error("jwks_unavailable", "GET " + url.origin + url.path + " failed: " +
                                                             httplib::to_string(result.error())));
    }
    return body;
}

Result<std::vector<TokenKey>, Error> load_keys(const JwksSource::Loader& loader) {
    auto text = loader();
    if (!text) return unexpected(text.error());
    return parse_token_jwks(*text);
}

}  // namespace

Result<std::unique_ptr<JwksSource>, Error> JwksSource::open(const std::string& location) {
    if (is_url(location)) {
        const auto url = split_url(location);
        if (!url) return unexpected(make_error("config_invalid", "TOKENMETER_JWKS: \"" + location + "\" is not a URL"));
        if (location.rfind("http://", 0) == 0 && !is_loopback_http(*url)) {
            return unexpected(make_error("config_invalid", "TOKENMETER_JWKS: \"" + location +
                                                               "\" must use https (plain http only for loopback), "
                                                               "or name a file"));
        }
        return std::unique_ptr<JwksSource>(new JwksSource(location, [url = *url] { return fetch(url); }));
    }
    Loader read_file = [location]() -> Result<std::string, Error> {
        return keys::read_small_file(location, limits::jwks_bytes_max);
    };
    auto keys = load_keys(read_file);
    if (!keys) {
        return unexpected(make_error("config_invalid", "TOKENMETER_JWKS (" + location + "): " + keys.error().message));
    }
    std::unique_ptr<JwksSource> source(new JwksSource(location, std::move(read_file)));
    source->keys_ = std::move(keys).value();
    // open() has no clock, so this read starts no cache period: the first
    // token rereads the file, and from then on a file is cached like a URL.
    return source;
}

bool JwksSource::may_load(std::int64_t now) const {
    if (!attempted_at_) return true;
    // A clock that moved back is not a reason to wait forever.
    return now < *attempted_at_ || now - *attempted_at_ >= limits::jwks_refetch_cooldown_seconds;
}

void JwksSource::load(std::int64_t now) {
    attempted_at_ = now;
    auto keys = load_keys(loader_);
    if (!keys) {
        last_error_ = keys.error().message;
        return;
    }
    keys_ = std::move(keys).value();
    loaded_at_ = now;
    last_error_.clear();
}

std::optional<TokenKey> JwksSource::find(const std::string& kid) const {
    if (!keys_) return std::nullopt;
    for (const TokenKey& key : *keys_) {
        if (key.kid() == kid) return key;
    }
    return std::nullopt;
}

Result<TokenKey, Error> JwksSource::key_for(const std::string& kid, std::int64_t now_seconds) {
    std::lock_guard<std::mutex> guard(mutex_);
    const bool stale = !loaded_at_ || now_seconds - *loaded_at_ >= limits::jwks_cache_seconds;
    if (stale && may_load(now_seconds)) load(now_seconds);
    if (auto key = find(kid)) return *key;
    if (may_load(now_seconds)) {
        load(now_seconds);
        if (auto key = find(kid)) return *key;
    }
    if (!keys_) {
        return unexpected(make_error("token_keys_unavailable", "the signing keys (" + location_ +
                                                                   ") could not be loaded: " + last_error_));
    }
    return unexpected(make_error("token_key_unknown", "no configured key has the kid \"" + excerpt(kid) + "\""));
}

}  // namespace tokenmeter::auth
