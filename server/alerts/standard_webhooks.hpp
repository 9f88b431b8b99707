// Standard Webhooks (standardwebhooks.com), the sending side: the signing
// secret, the signature, and the endpoint URLs alerts go to.
//
// A delivery carries three headers: webhook-id (the alert's id, the same on
// every retry), webhook-timestamp (unix seconds of this attempt, which a
// receiver checks against its clock to refuse replays) and
// webhook-signature: "v1," and the base64 HMAC-SHA256, keyed with the
// secret's bytes, of "id.timestamp.body" over the body's exact bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter::alerts {

// The spec's bounds for a secret's bytes: shorter is guessable, longer buys nothing.
inline constexpr std::size_t secret_bytes_min = 24;
inline constexpr std::size_t secret_bytes_max = 64;
// Endpoints per server: each alert is one outbox row per endpoint.
inline constexpr std::size_t endpoints_max = 8;
inline constexpr std::size_t endpoint_url_bytes_max = 2048;

inline constexpr std::string_view secret_prefix = "whsec_";

// The key behind "whsec_<base64>", zeroed when it goes.
class WebhookSecret {
public:
    // Errors (config_invalid): no whsec_ prefix, not base64, a size outside
    // [secret_bytes_min, secret_bytes_max].
    static Result<WebhookSecret, Error> parse(std::string_view text);

    WebhookSecret(const WebhookSecret&) = default;
    WebhookSecret(WebhookSecret&&) = default;
    WebhookSecret& operator=(const WebhookSecret&) = default;
    WebhookSecret& operator=(WebhookSecret&&) = default;
    ~WebhookSecret();

    // The webhook-signature value: "v1,<base64 HMAC-SHA256 of id.timestamp.body>".
    std::string sign(std::string_view id, std::int64_t timestamp_seconds, std::string_view body) const;

private:
    explicit WebhookSecret(std::vector<unsigned char> key) : key_(std::move(key)) {}
    std::vector<unsigned char> key_;
};

// An endpoint as cpp-httplib's client takes it.
struct EndpointUrl {
    std::string origin;  // "https://host[:port]"
    std::string path;    // "/hooks?x=1"; "/" when the URL has none
};

// Errors (config_invalid): not http(s), no host, spaces or control
// characters, a fragment, longer than endpoint_url_bytes_max.
Result<EndpointUrl, Error> parse_endpoint_url(std::string_view url);

}  // namespace tokenmeter::alerts
