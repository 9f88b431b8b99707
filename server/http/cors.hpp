// Cross-origin requests from browsers (CORS): which origins may call the API
// from their pages, and the headers that say so. Off by default: with no
// origins configured no response carries a CORS header and OPTIONS is routed
// like any other method (404). One pure decision from the request's Origin
// and method to the headers to add, applied once by the edge for every
// response it routes (http_server.cpp), never per route.
//
// The API authenticates with bearer tokens in `Authorization`, never with
// cookies, so `Access-Control-Allow-Credentials` is never sent: a browser
// needs it only for cookies or TLS client certificates, and with a wildcard
// it would be refused anyway.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter::http {

// The response headers a page may read: Retry-After on a 429/503, and the
// gateway's receipt and settlement of a call.
inline constexpr std::string_view exposed_headers =
    "Retry-After, X-Tokenmeter-Receipt, X-Tokenmeter-Charged-Tokens, X-Tokenmeter-Usage-Source";

// How long a browser may cache a preflight's answer, in seconds (Chromium
// caps it at 2 hours, Firefox at 24).
inline constexpr int cors_max_age_seconds = 7200;

// A configured origin checked and put the way browsers send it: scheme http
// or https, a host, an optional port, nothing else (no path, not even "/",
// no query, no user). Scheme and host are lowercased and a default port
// (:443 for https, :80 for http) is dropped, since browsers send neither.
// "*" is returned as is. The error says what is wrong with the text.
Result<std::string, Error> normalize_origin(std::string_view text);

// The origins allowed: none (CORS off), exact origins, or {"*"} (any origin).
// Built from configuration already normalized (config.cpp checks it).
struct CorsPolicy {
    std::vector<std::string> origins;

    bool enabled() const { return !origins.empty(); }
    bool any_origin() const { return origins.size() == 1 && origins.front() == "*"; }
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct CorsDecision {
    // The request is a preflight (OPTIONS with Origin and
    // Access-Control-Request-Method) with CORS on: answer it here with
    // `status`, without routing. 204 for an allowed origin; 403 with the
    // API's JSON error (`origin_not_allowed`) for any other.
    bool preflight = false;
    int status = 0;
    // Headers to add to the response (for a preflight: to its answer).
    HeaderList headers;
};

// The decision for one request. `origin` is the Origin header (empty when
// absent), `method` the request's method, `requests_method` whether it
// carries Access-Control-Request-Method. With CORS on every answer carries
// `Vary: Origin` (what it says depends on the Origin, so caches must key on
// it); only an allowed origin gets Access-Control-* headers.
CorsDecision decide_cors(const CorsPolicy& policy, std::string_view origin, std::string_view method, bool requests_method);

}  // namespace tokenmeter::http
