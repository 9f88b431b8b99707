// Server configuration (DESIGN.md §11): a JSON file, then the environment,
// then flags, each overriding the one before. Validation names the setting a
// problem is in; outside --demo a missing secret stops start-up.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter::config {

struct LemonSqueezySettings {
    std::string api_base = "https://api.lemonsqueezy.com";
    std::string api_key;
    std::string store_id;
    std::string pro_variant_id;
    std::string webhook_secret;
    // Connect and read timeout of each API call: a slow API fails the call
    // (504 to the caller) instead of holding a request thread.
    std::int64_t timeout_ms = 5000;

    bool configured() const { return !api_key.empty() || !webhook_secret.empty(); }

    friend bool operator==(const LemonSqueezySettings&, const LemonSqueezySettings&) = default;
};

// Where the gateway (DESIGN.md §12) sends the calls for some models: an
// OpenAI-compatible API at base_url ("https://api.openai.com/v1"), with its
// key, and how long a call may wait for each read before it fails.
struct UpstreamSettings {
    std::vector<std::string> models;
    std::string base_url;
    std::string api_key;
    std::int64_t timeout_ms = 60000;

    friend bool operator==(const UpstreamSettings&, const UpstreamSettings&) = default;
};

struct ServerConfig {
    std::string db = "sqlite:./tokenmeter.db";
    std::string listen = "127.0.0.1:8787";
    std::string jwt_secret;
    std::vector<std::string> service_keys;
    std::string signing_key_file;
    std::string retired_keys_file;  // a JWKS of older public keys still served
    std::string jwks;               // file path or URL of user-token keys
    std::string metrics_token;
    std::string catalog_file;       // empty: the built-in catalog
    std::string web_root;           // static files served at / (the demo app)
    std::string upgrade_url = "/v1/me/checkout";
    // Origins whose pages may call the API from a browser (CORS), checked
    // and normalized at load (server/http/cors.hpp); "*" alone: any origin.
    // Empty: CORS is off.
    std::vector<std::string> cors_origins;
    std::int64_t reservation_ttl_seconds = 600;
    // How long after a reservation's expiry its commit is still charged (a
    // late commit); 0: not at all. A day covers a backend that retries its
    // commits through an outage of the server or of its own.
    std::int64_t late_commit_grace_seconds = 24 * 3600;
    std::int64_t body_bytes_max = 4 << 20;
    // The edge (server/http/http_server.hpp says why these defaults).
    std::int64_t http_threads = 64;  // workers answering complete requests
    std::int64_t http_queue_max = 1024;
    std::int64_t http_connections_max = 8192;
    std::int64_t http_request_timeout_ms = 10000;  // head, and body at 64 KiB/s beyond
    std::int64_t http_idle_timeout_ms = 5000;      // keep-alive
    // Live usage streams (server/live/usage_hub.hpp).
    std::int64_t streams_max = 4096;
    std::int64_t streams_per_user_max = 8;
    // Rate limits (server/http/rate_limits.hpp): requests per second and
    // burst; 0 per second turns a limit off.
    std::int64_t rate_limit_user_per_second = 20;
    std::int64_t rate_limit_user_burst = 60;
    std::int64_t rate_limit_service_per_second = 50000;
    std::int64_t rate_limit_service_burst = 100000;
    std::int64_t rate_limit_address_per_second = 50;
    std::int64_t rate_limit_address_burst = 200;
    // An idle live stream sends a heartbeat comment this often, so proxies
    // and browsers keep it open; changes are pushed as they happen, not on
    // this timer.
    std::int64_t sse_heartbeat_seconds = 15;
    LemonSqueezySettings lemonsqueezy;
    // Reconcile with LemonSqueezy this often inside serve; 0: never (run
    // `tokenmeter reconcile` instead).
    std::int64_t reconcile_every_seconds = 0;
    // Outbound webhooks (DESIGN.md §13): endpoints alerts are POSTed to,
    // checked at load (server/alerts/standard_webhooks.hpp); none: no
    // alert is written. The secret ("whsec_" + base64) signs them; it is
    // required when there are endpoints.
    std::vector<std::string> webhook_urls;
    std::string webhook_secret;
    // usage.threshold alerts at these percents of a period's capacity,
    // strictly increasing, 1-1000; empty: none.
    std::vector<int> alert_thresholds_percent = {80, 100};
    // Connect, send and read timeout of each delivery: a slower endpoint is
    // a failed attempt, retried with backoff.
    std::int64_t webhook_timeout_ms = 10000;
    // The gateway's upstreams: the config file's `upstreams`, or the JSON
    // file TOKENMETER_UPSTREAMS_FILE names (read at start-up, replacing
    // them). No upstream: the gateway answers 404 for every model.
    std::vector<UpstreamSettings> upstreams;
    std::string upstreams_file;
    // Workers for gateway calls alone, so long streams never hold the
    // workers that answer the ledger API.
    std::int64_t gateway_threads = 128;
    bool demo = false;
    std::string demo_dir = ".tokenmeter-demo";

    // Every setting compared (the config fuzzer checks that a file applied
    // twice gives what it gives once).
    friend bool operator==(const ServerConfig&, const ServerConfig&) = default;
};

using Environment = std::map<std::string, std::string>;

// The process environment as a map (the edge reads it once).
Environment process_environment();

// Applies a JSON config file's contents. Unknown keys and wrong types are
// errors naming the key.
std::optional<Error> apply_file(ServerConfig& config, const std::string& json_text);
// Applies TOKENMETER_* and LEMONSQUEEZY_* variables.
std::optional<Error> apply_environment(ServerConfig& config, const Environment& environment);
// Checks the result: required secrets (outside demo), ranges, formats.
std::optional<Error> validate(const ServerConfig& config);

// The gateway's upstreams from their JSON: an array of
// {"models":[...],"base_url":"http(s)://…","api_key":"…","timeout_ms":60000}.
// A model served by two upstreams, an unknown key, a wrong type or a bad
// URL is an error naming the entry.
Result<std::vector<UpstreamSettings>, Error> parse_upstreams(std::string_view json_text);

// "127.0.0.1:8787" -> host and port.
Result<std::pair<std::string, int>, Error> parse_listen(const std::string& listen);

// "90", "90s", "15m", "2h", "1d" -> seconds (1 s to 30 days); nullopt for anything else.
std::optional<std::int64_t> parse_interval_seconds(std::string_view text);

}  // namespace tokenmeter::config
