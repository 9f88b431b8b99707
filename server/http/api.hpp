// The HTTP API of DESIGN.md §7 on cpp-httplib: routes, credentials and
// scopes, request validation, and rendering of ledger outcomes. Handlers are
// thin: they check who is calling and what was sent, then ask the ledger.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "clock.hpp"
#include "http/authenticator.hpp"
#include "http/metrics.hpp"
#include "http/callers.hpp"
#include "http/ledger_replies.hpp"
#include "ledger/ledger_service.hpp"
#include "live/usage_hub.hpp"
#include "tokens/token_counter.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace tokenmeter::http {

// Extra routes a part of the server adds (billing: checkout and webhooks).
class RouteSet {
public:
    using Observe = std::function<void(const std::string& route, int status, double seconds)>;
    virtual ~RouteSet() = default;
    virtual void install(httplib::Server& server, const Observe& observe) = 0;
};

// A route set's handler, timed into `observe` (the request metrics).
std::function<void(const httplib::Request&, httplib::Response&)> timed_route(
    RouteSet::Observe observe, std::string route, std::function<void(const httplib::Request&, httplib::Response&)> handler);

struct ApiOptions {
    std::string jwks_json;          // GET /v1/keys
    std::string metrics_token;      // empty: /metrics from loopback only
    int events_page_max = 200;
    ReplyStyle reply_style;
    std::vector<int> alert_thresholds_percent = {80, 100};  // shown in the user's snapshots
};

struct ApiDependencies {
    ledger::LedgerService& ledger;
    Callers& callers;
    live::UsageHub& hub;
    Metrics& metrics;
    const Clock& clock;
    tokens::TokenCounter& tokens;
};

class Api {
public:
    Api(ApiDependencies dependencies, ApiOptions options);
    // Registers every route (and the error and exception handlers).
    void install(httplib::Server& server);
    // Extra route sets installed with the rest (billing).
    void add_routes(std::shared_ptr<RouteSet> routes);

private:
    using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
    Handler timed(std::string route, Handler handler);

    std::optional<std::string> require_user(const httplib::Request& request, httplib::Response& response);
    void refuse_stream(httplib::Response& response, live::StreamRefusal refusal);
    std::optional<std::string> require_service(const httplib::Request& request, httplib::Response& response);

    void healthz(const httplib::Request& request, httplib::Response& response);
    void metrics(const httplib::Request& request, httplib::Response& response);
    void my_usage(const httplib::Request& request, httplib::Response& response);
    void my_usage_stream(const httplib::Request& request, httplib::Response& response);
    // A snapshot as its user sees it (with the alert thresholds).
    std::string user_snapshot(const std::string& snapshot) const;
    void my_events(const httplib::Request& request, httplib::Response& response);
    void my_summary(const httplib::Request& request, httplib::Response& response);
    void my_statement(const httplib::Request& request, httplib::Response& response);
    void user_usage(const httplib::Request& request, httplib::Response& response);
    void authorize(const httplib::Request& request, httplib::Response& response);
    void commit(const httplib::Request& request, httplib::Response& response);
    void release(const httplib::Request& request, httplib::Response& response);
    void record(const httplib::Request& request, httplib::Response& response);

    void reply(httplib::Response& response, const ledger::LedgerReply& reply);

    ApiDependencies deps_;
    ApiOptions options_;
    std::vector<std::shared_ptr<RouteSet>> route_sets_;
};

// The API's JSON error reply.
void reply_error(httplib::Response& response, int status, std::string_view code, std::string_view message);

// The OpenAPI 3 document served at /v1/openapi.json.
std::string_view openapi_document();

}  // namespace tokenmeter::http
