#include "alerts/standard_webhooks.hpp"

#include <sodium.h>

#include <algorithm>

#include "tokenmeter/assert.hpp"
#include "tokenmeter/crypto.hpp"

namespace tokenmeter::alerts {

namespace {

Error invalid_secret(const std::string& why) {
    return make_error("config_invalid", "TOKENMETER_WEBHOOK_SECRET " + why);
}

}  // namespace

Result<WebhookSecret, Error> WebhookSecret::parse(std::string_view text) {
    if (text.substr(0, secret_prefix.size()) != secret_prefix) {
        return unexpected(invalid_secret("must start with whsec_ (whsec_ and the secret's bytes in base64)"));
    }
    const std::string_view encoded = text.substr(secret_prefix.size());
    // Room for whatever the text decodes to, so a long secret is refused for its size.
    std::vector<unsigned char> key(encoded.size() + 1);
    std::size_t size = 0;
    const char* end = nullptr;
    TM_ASSERT(crypto_ready());
    const int decoded = sodium_base642bin(key.data(), key.size(), encoded.data(), encoded.size(), nullptr, &size, &end,
                                          sodium_base64_VARIANT_ORIGINAL);
    if (decoded != 0 || end != encoded.data() + encoded.size()) {
        sodium_memzero(key.data(), key.size());
        return unexpected(invalid_secret("is not whsec_ followed by standard base64"));
    }
    key.resize(size);
    if (size < secret_bytes_min || size > secret_bytes_max) {
        sodium_memzero(key.data(), key.size());
        return unexpected(invalid_secret("must hold " + std::to_string(secret_bytes_min) + " to " +
                                         std::to_string(secret_bytes_max) + " bytes, not " + std::to_string(size)));
    }
    return WebhookSecret(std::move(key));
}

WebhookSecret::~WebhookSecret() {
    if (!key_.empty()) sodium_memzero(key_.data(), key_.size());
}

std::string WebhookSecret::sign(std::string_view id, std::int64_t timestamp_seconds, std::string_view body) const {
    TM_ASSERT(!key_.empty());
    const std::string timestamp = std::to_string(timestamp_seconds);
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, key_.data(), key_.size());
    auto update = [&](std::string_view part) {
        crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(part.data()), part.size());
    };
    update(id);
    update(".");
    update(timestamp);
    update(".");
    update(body);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_final(&state, mac);
    char encoded[sodium_base64_ENCODED_LEN(crypto_auth_hmacsha256_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(encoded, sizeof encoded, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    return "v1," + std::string(encoded);
}

Result<EndpointUrl, Error> parse_endpoint_url(std::string_view url) {
    auto invalid = [&](const std::string& why) {
        return unexpected(make_error("config_invalid", "TOKENMETER_WEBHOOK_URLS: \"" +
                                                           std::string(url.substr(0, 80)) + "\" " + why));
    };
    if (url.size() > endpoint_url_bytes_max) return invalid("is longer than " + std::to_string(endpoint_url_bytes_max) + " bytes");
    const bool visible = std::all_of(url.begin(), url.end(), [](char c) { return c > 0x20 && c < 0x7F; });
    if (!visible) return invalid("has spaces or control characters");
    std::size_t scheme_end = 0;
    if (url.rfind("https://", 0) == 0) {
        scheme_end = 8;
    } else if (url.rfind("http://", 0) == 0) {
        scheme_end = 7;
    } else {
        return invalid("is not an http:// or https:// URL");
    }
    if (url.find('#') != std::string_view::npos) return invalid("has a fragment");
    const std::size_t slash = std::min(url.find_first_of("/?", scheme_end), url.size());
    const std::string_view authority = url.substr(scheme_end, slash - scheme_end);
    if (authority.empty() || authority.front() == ':' || authority.find('@') != std::string_view::npos) {
        return invalid("has no host (or carries credentials)");
    }
    EndpointUrl endpoint{std::string(url.substr(0, slash)), std::string(url.substr(slash))};
    if (endpoint.path.empty() || endpoint.path.front() == '?') endpoint.path = "/" + endpoint.path;
    return endpoint;
}

}  // namespace tokenmeter::alerts
