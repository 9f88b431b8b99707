#include "config/config.hpp"

#include <charconv>

#include <algorithm>
#include <functional>

#include "alerts/standard_webhooks.hpp"
#include "http/cors.hpp"
#include "tokenmeter/alerts.hpp"
#include "tokenmeter/json_input.hpp"
#include "tokenmeter/limits.hpp"

extern char** environ;

namespace tokenmeter::config {

namespace {

using Json = nlohmann::json;

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> items;
    std::string current;
    for (char c : text) {
        if (c == ',') {
            if (!current.empty()) items.push_back(current);
            current.clear();
        } else if (c != ' ' && c != '\t' && c != '\n') {
            current += c;
        }
    }
    if (!current.empty()) items.push_back(current);
    return items;
}

std::optional<Error> set_integer(std::int64_t& target, const std::string& text, const std::string& name,
                                 std::int64_t low, std::int64_t high) {
    // Not ::isdigit: a byte above 0x7F is a negative char, which it may not be given.
    const bool digits = !text.empty() && text.size() <= 12 &&
                        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    const std::int64_t value = digits ? std::stoll(text) : -1;
    if (!digits || value < low || value > high) {
        return make_error("config_invalid", name + " must be an integer from " + std::to_string(low) + " to " +
                                                std::to_string(high) + ", not \"" + text.substr(0, 40) + "\"");
    }
    target = value;
    return std::nullopt;
}

// A comma-separated list of origins, each checked and normalized.
std::optional<Error> set_origins(std::vector<std::string>& target, const std::string& text) {
    std::vector<std::string> origins;
    for (const std::string& item : split_list(text)) {
        auto origin = http::normalize_origin(item);
        if (!origin) return origin.error();
        if (std::find(origins.begin(), origins.end(), *origin) == origins.end()) origins.push_back(std::move(origin).value());
    }
    if (origins.size() > 1 && std::find(origins.begin(), origins.end(), "*") != origins.end()) {
        return make_error("config_invalid", "cors_origins: \"*\" (any origin) stands alone; list either it or exact origins");
    }
    target = std::move(origins);
    return std::nullopt;
}

// A comma-separated list of webhook endpoints, each an http(s) URL.
std::optional<Error> set_webhook_urls(std::vector<std::string>& target, const std::string& text) {
    std::vector<std::string> urls;
    for (const std::string& item : split_list(text)) {
        if (auto endpoint = alerts::parse_endpoint_url(item); !endpoint) return endpoint.error();
        if (std::find(urls.begin(), urls.end(), item) == urls.end()) urls.push_back(item);
    }
    if (urls.size() > alerts::endpoints_max) {
        return make_error("config_invalid", "webhook_urls: at most " + std::to_string(alerts::endpoints_max) + " endpoints");
    }
    target = std::move(urls);
    return std::nullopt;
}

// "80,100": percents of a period's capacity, strictly increasing.
std::optional<Error> set_thresholds(std::vector<int>& target, const std::string& text) {
    std::vector<int> percents;
    for (const std::string& item : split_list(text)) {
        std::int64_t percent = 0;
        if (auto error = set_integer(percent, item, "alert_thresholds", 1, limits::alert_threshold_percent_max)) return error;
        percents.push_back(static_cast<int>(percent));
    }
    if (!alert_rules_valid(AlertRules{percents})) {
        return make_error("config_invalid", "alert_thresholds must be strictly increasing percents, at most " +
                                                std::to_string(limits::alert_thresholds_max) + " of them, not \"" +
                                                text.substr(0, 80) + "\"");
    }
    target = std::move(percents);
    return std::nullopt;
}

// The highest rate or burst a limit takes (rate_limits.hpp caps the same).
constexpr std::int64_t rate_max = 1'000'000'000;

// One setting: its file key, its environment variable, and how to apply text.
struct Setting {
    const char* file_key;
    const char* environment;
    std::function<std::optional<Error>(ServerConfig&, const std::string&)> apply;
};

std::optional<Error> assign(std::string& target, const std::string& value) {
    target = value;
    return std::nullopt;
}

const std::vector<Setting>& settings() {
    static const std::vector<Setting> all = {
        {"upstreams_file", "TOKENMETER_UPSTREAMS_FILE",
         [](ServerConfig& c, const std::string& v) { return assign(c.upstreams_file, v); }},
        {"gateway_threads", "TOKENMETER_GATEWAY_THREADS",
         [](ServerConfig& c, const std::string& v) { return set_integer(c.gateway_threads, v, "gateway_threads", 1, 4096); }},
        {"db", "TOKENMETER_DB", [](ServerConfig& c, const std::string& v) { return assign(c.db, v); }},
        {"listen", "TOKENMETER_LISTEN", [](ServerConfig& c, const std::string& v) { return assign(c.listen, v); }},
        {"jwt_secret", "TOKENMETER_JWT_SECRET", [](ServerConfig& c, const std::string& v) { return assign(c.jwt_secret, v); }},
        {"service_keys", "TOKENMETER_SERVICE_KEYS",
         [](ServerConfig& c, const std::string& v) {
             c.service_keys = split_list(v);
             return std::optional<Error>();
         }},
        {"signing_key_file", "TOKENMETER_SIGNING_KEY_FILE",
         [](ServerConfig& c, const std::string& v) { return assign(c.signing_key_file, v); }},
        {"retired_keys_file", "TOKENMETER_RETIRED_KEYS_FILE",
         [](ServerConfig& c, const std::string& v) { return assign(c.retired_keys_file, v); }},
        {"jwks", "TOKENMETER_JWKS", [](ServerConfig& c, const std::string& v) { return assign(c.jwks, v); }},
        {"metrics_token", "TOKENMETER_METRICS_TOKEN", [](ServerConfig& c, const std::string& v) { return assign(c.metrics_token, v); }},
        {"catalog_file", "TOKENMETER_CATALOG_FILE", [](ServerConfig& c, const std::string& v) { return assign(c.catalog_file, v); }},
        {"web_root", "TOKENMETER_WEB_ROOT", [](ServerConfig& c, const std::string& v) { return assign(c.web_root, v); }},
        {"upgrade_url", "TOKENMETER_UPGRADE_URL", [](ServerConfig& c, const std::string& v) { return assign(c.upgrade_url, v); }},
        {"cors_origins", "TOKENMETER_CORS_ORIGINS",
         [](ServerConfig& c, const std::string& v) { return set_origins(c.cors_origins, v); }},
        {"reservation_ttl_seconds", "TOKENMETER_RESERVATION_TTL_SECONDS",
         [](ServerConfig& c, const std::string& v) {
             return set_integer(c.reservation_ttl_seconds, v, "reservation_ttl_seconds", limits::reservation_ttl_min,
                                limits::reservation_ttl_max);
         }},
        {"late_commit_grace_seconds", "TOKENMETER_LATE_COMMIT_GRACE_SECONDS",
         [](ServerConfig& c, const std::string& v) {
             return set_integer(c.late_commit_grace_seconds, v, "late_commit_grace_seconds",
                                limits::late_commit_grace_min, limits::late_commit_grace_max);
         }},
        {"body_bytes_max", "TOKENMETER_BODY_BYTES_MAX",
         [](ServerConfig& c, const std::string& v) { return set_integer(c.body_bytes_max, v, "body_bytes_max", 1024, 64 << 20); }},
        {"http_threads", "TOKENMETER_HTTP_THREADS",
         [](ServerConfig& c, const std::string& v) { return set_integer(c.http_threads, v, "http_threads", 1, 1024); }},
        {"http_queue_max", "TOKENMETER_HTTP_QUEUE_MAX",
         [](ServerConfig& c, const std::string& v) { return set_integer(c.http_queue_max, v, "http_queue_max", 1, 1 << 20); }},
        {"http_connections_max", "TOKENMETER_HTTP_CONNECTIONS_MAX",
         [](ServerConfig& c, const std::string& v) {
             return set_integer(c.http_connections_max, v, "http_connections_max", 16, 1 << 20);
         }},
        {"http_request_timeout_ms", "TOKENMETER_HTTP_REQUEST_TIMEOUT_MS",
         [](ServerConfig& c, const std::string& v) {
             return set_integer(c.http_request_timeout_ms, v, "http_request_timeout_ms", 100, 600000);
         }},
        {"http_idle_timeout_ms", "TOKENMETER_HTTP_IDLE_TIMEOUT_MS",
         [](ServerConfig& c, const std::string& v) {
             return set_integer(c.http_idle_timeout_ms, v, "http_idle_timeout_ms", 100, 600000);
         }},
        {"streams_max", "TOKENMETER_STREAMS_MAX",
         [](ServerConfig& c, const std::string& v) { return set_integer(c.streams_max, v, "streams_max", 0, 1 << 20); }},
        {"streams_per_user_max", "TOKENMETER_STREAMS_PER_USER_MAX",
         [](ServerConfig& c, const std::string& v) {
             return set_integer(c.streams_per_user_max, v, "streams_per_user_max", 0, 1024);
         }},
        {"rate_limit_user_per_second", "TOKENMETER_RATE_LIMIT_USER_PER_SECOND",
         [](ServerConfig& c, const std::string& v) {
             return set_integer(c.rate_limit_user_per_second, v, "rate_limit_user_per_second", 0, rate_max);
         }},
        {"rate_limit_user_burst", "TOKENMETER_RATE_LIMIT_USER_BURST",
         [](ServerConfig& c, const std::string& v) { return set_integer(c.rate_limit_user_burst, v, "rate_limit_user_burst", 1, rate_max); }},
        {"rate_limit_service_per_second", "TOKENMETER_RATE_LIMIT_SERVICE_PER_SECOND",
         [](ServerConfig& c, const std::string& v) {
             return set_integer(c.rate_limit_service_per_second, v, "rate_limit_service_per_second", 0, rate_max);
         }},
        {"rate_limit_service_burst", "TOKENMETER_RATE_LIMIT_SERVICE_BURST",
         [](ServerConfig& c, const std::string& v) {
             return set_integer(c.rate_limit_service_burst, v, "rate_limit_service_burst", 1, rate_max);
         }},
        {"rate_limit_address_per_second", "TOKENMETER_RATE_LIMIT_ADDRESS_PER_SECOND",
         [](ServerConfig& c, const std::string& v) {
             return set_integer(c.rate_limit_address_per_second, v, "rate_limit_address_per_second", 0, rate_max);
         }},
        {"rate_limit_address_burst", "TOKENMETER_RATE_LIMIT_ADDRESS_BURST",
         [](ServerConfig& c, const std::string& v) {
             return set_integer(c.rate_limit_address_burst, v, "rate_limit_address_burst", 1, rate_max);
         }},
        {"sse_heartbeat_seconds", "TOKENMETER_SSE_HEARTBEAT_SECONDS",
         [](ServerConfig& c, const std::string& v) {
             return set_integer(c.sse_heartbeat_seconds, v, "sse_heartbeat_seconds", 1, 3600);
         }},
        {"reconcile_every", "TOKENMETER_RECONCILE_EVERY",
         [](ServerConfig& c, const std::string& v) -> std::optional<Error> {
             auto seconds = parse_interval_seconds(v);
             if (!seconds) {
                 return make_error("config_invalid", "reconcile_every must be a duration like 900, 90s, 15m, 2h or 1d "
                                                     "(at most 30 days)");
             }
             c.reconcile_every_seconds = *seconds;
             return std::nullopt;
         }},
        {"lemonsqueezy_api_base", "LEMONSQUEEZY_API_BASE",
         [](ServerConfig& c, const std::string& v) { return assign(c.lemonsqueezy.api_base, v); }},
        {"lemonsqueezy_api_key", "LEMONSQUEEZY_API_KEY",
         [](ServerConfig& c, const std::string& v) { return assign(c.lemonsqueezy.api_key, v); }},
        {"lemonsqueezy_store_id", "LEMONSQUEEZY_STORE_ID",
         [](ServerConfig& c, const std::string& v) { return assign(c.lemonsqueezy.store_id, v); }},
        {"lemonsqueezy_pro_variant_id", "LEMONSQUEEZY_PRO_VARIANT_ID",
         [](ServerConfig& c, const std::string& v) { return assign(c.lemonsqueezy.pro_variant_id, v); }},
        {"lemonsqueezy_webhook_secret", "LEMONSQUEEZY_WEBHOOK_SECRET",
         [](ServerConfig& c, const std::string& v) { return assign(c.lemonsqueezy.webhook_secret, v); }},
        {"webhook_urls", "TOKENMETER_WEBHOOK_URLS",
         [](ServerConfig& c, const std::string& v) { return set_webhook_urls(c.webhook_urls, v); }},
        {"webhook_secret", "TOKENMETER_WEBHOOK_SECRET",
         [](ServerConfig& c, const std::string& v) { return assign(c.webhook_secret, v); }},
        {"alert_thresholds", "TOKENMETER_ALERT_THRESHOLDS",
         [](ServerConfig& c, const std::string& v) { return set_thresholds(c.alert_thresholds_percent, v); }},
        {"webhook_timeout_ms", "TOKENMETER_WEBHOOK_TIMEOUT_MS",
         [](ServerConfig& c, const std::string& v) {
             return set_integer(c.webhook_timeout_ms, v, "webhook_timeout_ms", 100, 60000);
         }},
        {"lemonsqueezy_timeout_ms", "LEMONSQUEEZY_TIMEOUT_MS",
         [](ServerConfig& c, const std::string& v) {
             return set_integer(c.lemonsqueezy.timeout_ms, v, "lemonsqueezy_timeout_ms", 100, 60000);
         }},
    };
    return all;
}

// A file value as the text an environment variable would hold.
std::optional<std::string> as_text(const Json& value) {
    if (value.is_string()) return value.get<std::string>();
    if (value.is_number_unsigned()) return std::to_string(value.get<std::uint64_t>());
    if (value.is_array()) {
        std::string joined;
        for (const Json& item : value) {
            // Lists of names, or of numbers (alert_thresholds: [80, 100]).
            if (!item.is_string() && !item.is_number_unsigned()) return std::nullopt;
            const std::string text =
                item.is_string() ? item.get<std::string>() : std::to_string(item.get<std::uint64_t>());
            if (text.find(',') != std::string::npos) return std::nullopt;
            if (!joined.empty()) joined += ',';
            joined += text;
        }
        return joined;
    }
    return std::nullopt;
}

bool is_hex_or_url_safe(const std::string& text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7F; });
}

}  // namespace

Environment process_environment() {
    Environment environment;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string text(*entry);
        const auto equals = text.find('=');
        if (equals != std::string::npos) environment[text.substr(0, equals)] = text.substr(equals + 1);
    }
    return environment;
}

std::optional<Error> apply_file(ServerConfig& config, const std::string& json_text) {
    auto document = json_input::parse(json_text);
    if (!document || !document->is_object()) {
        return make_error("config_invalid", "the config file must be a JSON object");
    }
    for (const auto& item : document->items()) {
        if (item.key() == "upstreams") {
            auto upstreams = parse_upstreams(item.value().dump());
            if (!upstreams) return upstreams.error();
            config.upstreams = std::move(upstreams).value();
            continue;
        }
        auto setting = std::find_if(settings().begin(), settings().end(),
                                    [&](const Setting& s) { return item.key() == s.file_key; });
        if (setting == settings().end()) {
            return make_error("config_invalid", "unknown setting \"" + item.key().substr(0, 64) + "\" in the config file");
        }
        auto text = as_text(item.value());
        if (!text) return make_error("config_invalid", "setting \"" + item.key() + "\" has the wrong type");
        if (auto error = setting->apply(config, *text)) return error;
    }
    return std::nullopt;
}

std::optional<Error> apply_environment(ServerConfig& config, const Environment& environment) {
    for (const Setting& setting : settings()) {
        auto found = environment.find(setting.environment);
        if (found == environment.end()) continue;
        if (auto error = setting.apply(config, found->second)) {
            return make_error(error->code, std::string(setting.environment) + ": " + error->message);
        }
    }
    return std::nullopt;
}

Result<std::pair<std::string, int>, Error> parse_listen(const std::string& listen) {
    const auto colon = listen.rfind(':');
    const std::string invalid = "listen address must be HOST:PORT, not \"" + listen.substr(0, 64) + "\"";
    if (colon == std::string::npos || colon == 0) return unexpected(make_error("config_invalid", invalid));
    std::string host = listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    std::int64_t port = 0;
    if (set_integer(port, listen.substr(colon + 1), "port", 0, 65535)) return unexpected(make_error("config_invalid", invalid));
    return std::make_pair(host, static_cast<int>(port));
}

std::optional<Error> validate(const ServerConfig& config) {
    if (auto listen = parse_listen(config.listen); !listen) return listen.error();
    if (config.db.rfind("sqlite:", 0) != 0 && config.db.rfind("postgres://", 0) != 0 &&
        config.db.rfind("postgresql://", 0) != 0) {
        return make_error("config_invalid", "TOKENMETER_DB must be sqlite:PATH or postgres://...");
    }
    // Not even --demo makes this secret: the app that receives the webhooks holds it.
    if (!config.webhook_urls.empty() && config.webhook_secret.empty()) {
        return make_error("config_missing", "TOKENMETER_WEBHOOK_SECRET is not set while TOKENMETER_WEBHOOK_URLS is: "
                                            "webhooks must be signed (whsec_ and the secret in base64)");
    }
    if (!config.webhook_secret.empty()) {
        if (auto secret = alerts::WebhookSecret::parse(config.webhook_secret); !secret) return secret.error();
    }
    if (config.demo) return std::nullopt;  // --demo creates whatever secret is missing
    if (config.signing_key_file.empty()) {
        return make_error("config_missing", "TOKENMETER_SIGNING_KEY_FILE is not set: receipts need a signing key "
                                            "(create one with `tokenmeter keygen --out FILE`)");
    }
    if (config.jwt_secret.empty() && config.jwks.empty()) {
        return make_error("config_missing",
                          "neither TOKENMETER_JWT_SECRET nor TOKENMETER_JWKS is set: user tokens cannot be verified");
    }
    if (config.service_keys.empty()) {
        return make_error("config_missing", "TOKENMETER_SERVICE_KEYS is not set: the app's backend cannot authorize usage");
    }
    for (const std::string& key : config.service_keys) {
        if (key.size() < 24 || !is_hex_or_url_safe(key)) {
            return make_error("config_invalid", "TOKENMETER_SERVICE_KEYS: every key must be at least 24 visible characters");
        }
    }
    if (config.jwt_secret.size() > 0 && config.jwt_secret.size() < 32) {
        return make_error("config_invalid", "TOKENMETER_JWT_SECRET must be at least 32 characters");
    }
    if (config.lemonsqueezy.configured() && config.lemonsqueezy.webhook_secret.empty()) {
        return make_error("config_missing", "LEMONSQUEEZY_WEBHOOK_SECRET is not set while LemonSqueezy is configured");
    }
    return std::nullopt;
}

namespace {

std::optional<Error> upstream_error(std::size_t index, const std::string& message) {
    return make_error("config_invalid", "upstreams[" + std::to_string(index) + "]: " + message);
}

bool is_base_url(const std::string& url) {
    const bool web = url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0;
    const std::size_t scheme = url.find("://") + 3;
    return web && url.size() > scheme && url.size() <= 2048 && url[scheme] != '/' &&
           std::all_of(url.begin(), url.end(), [](char c) { return c > 0x20 && c < 0x7F; }) &&
           url.find('?') == std::string::npos && url.find('#') == std::string::npos;
}

std::optional<Error> read_upstream(const Json& entry, std::size_t index, UpstreamSettings& upstream) {
    if (!entry.is_object()) return upstream_error(index, "must be an object");
    for (const auto& item : entry.items()) {
        const std::string& key = item.key();
        const Json& value = item.value();
        if (key == "models") {
            if (!value.is_array() || value.empty() || value.size() > 1000) {
                return upstream_error(index, "models must be a non-empty array of model ids");
            }
            for (const Json& model : value) {
                if (!model.is_string() || model.get<std::string>().empty() || model.get<std::string>().size() > 128) {
                    return upstream_error(index, "models must hold model ids (strings of 1-128 bytes)");
                }
                upstream.models.push_back(model.get<std::string>());
            }
        } else if (key == "base_url") {
            if (!value.is_string() || !is_base_url(value.get<std::string>())) {
                return upstream_error(index, "base_url must be an http(s) URL such as https://api.openai.com/v1");
            }
            upstream.base_url = value.get<std::string>();
            while (upstream.base_url.size() > 8 && upstream.base_url.back() == '/') upstream.base_url.pop_back();
        } else if (key == "api_key") {
            if (!value.is_string() || value.get<std::string>().size() > 4096 || !is_hex_or_url_safe(value.get<std::string>())) {
                return upstream_error(index, "api_key must be a string of visible characters");
            }
            upstream.api_key = value.get<std::string>();
        } else if (key == "timeout_ms") {
            if (!value.is_number_unsigned() || value.get<std::uint64_t>() < 100 || value.get<std::uint64_t>() > 600000) {
                return upstream_error(index, "timeout_ms must be an integer from 100 to 600000");
            }
            upstream.timeout_ms = static_cast<std::int64_t>(value.get<std::uint64_t>());
        } else {
            return upstream_error(index, "unknown key \"" + key.substr(0, 64) + "\"");
        }
    }
    if (upstream.models.empty()) return upstream_error(index, "models is missing");
    if (upstream.base_url.empty()) return upstream_error(index, "base_url is missing");
    return std::nullopt;
}

}  // namespace

Result<std::vector<UpstreamSettings>, Error> parse_upstreams(std::string_view json_text) {
    auto document = json_input::parse(json_text);
    if (!document || !document->is_array()) {
        return unexpected(make_error("config_invalid", "upstreams must be a JSON array of {models, base_url, api_key, timeout_ms}"));
    }
    if (document->size() > 256) return unexpected(make_error("config_invalid", "upstreams: at most 256 entries"));
    std::vector<UpstreamSettings> upstreams;
    for (std::size_t index = 0; index < document->size(); ++index) {
        UpstreamSettings upstream;
        if (auto error = read_upstream((*document)[index], index, upstream)) return unexpected(*error);
        for (const std::string& model : upstream.models) {
            for (const UpstreamSettings& earlier : upstreams) {
                if (std::find(earlier.models.begin(), earlier.models.end(), model) != earlier.models.end()) {
                    return unexpected(*upstream_error(index, "model \"" + model + "\" is already served by an earlier upstream"));
                }
            }
        }
        upstreams.push_back(std::move(upstream));
    }
    return upstreams;
}

std::optional<std::int64_t> parse_interval_seconds(std::string_view text) {
    if (text.empty() || text.size() > 12) return std::nullopt;
    std::int64_t unit = 1;
    switch (text.back()) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: unit = 0;
    }
    std::string_view digits = unit == 0 ? text : text.substr(0, text.size() - 1);
    if (unit == 0) unit = 1;
    std::int64_t value = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (error != std::errc() || end != digits.data() + digits.size() || digits.empty() || value <= 0) return std::nullopt;
    if (value > 30 * 86400 / unit) return std::nullopt;  // a month at most: anything longer is a typo
    return value * unit;
}

}  // namespace tokenmeter::config
