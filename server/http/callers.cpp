#include "http/callers.hpp"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "http/api.hpp"
#include "http/edge_stream.hpp"

namespace tokenmeter::http {

Callers::Callers(Authenticator& authenticator, const Clock& clock, Metrics& metrics, RateLimits limits)
    : authenticator_(authenticator),
      clock_(clock),
      metrics_(metrics),
      user_limits_(limits.user),
      service_limits_(limits.service),
      address_limits_(limits.address) {}

bool Callers::within_rate(RateLimiter& limiter, const char* scope, std::string_view key, httplib::Response& response) {
    const RateDecision decision = limiter.take(key, monotonic_ms());
    if (decision.allowed) return true;
    metrics_.count_rate_limited(scope);
    response.status = 429;
    const nlohmann::json body = {{"error",
                                  {{"code", "rate_limited"},
                                   {"message", std::string("too many requests for this ") + scope + "; retry after the time given"},
                                   {"retry_after", decision.retry_after_seconds}}}};
    response.set_content(body.dump(), "application/json");
    response.set_header("Retry-After", std::to_string(decision.retry_after_seconds));
    return false;
}

void Callers::charge_failed_credentials(const httplib::Request& request, httplib::Response& response) {
    // Over the address's budget the answer is 429 rather than another 401:
    // whoever is guessing tokens gets nothing more out of this address.
    if (!within_rate(address_limits_, "address", request.remote_addr, response)) response.headers.erase("WWW-Authenticate");
}

std::optional<UserSession> Callers::user(const httplib::Request& request, httplib::Response& response) {
    const std::string authorization = request.get_header_value("Authorization");
    auto session = authenticator_.user_session(authorization, clock_.now_seconds());
    if (session) {
        if (!within_rate(user_limits_, "user", session->user_id, response)) return std::nullopt;
        return std::move(session).value();
    }
    if (authenticator_.service(authorization)) {
        reply_error(response, 403, "wrong_scope", "a service key cannot call a user's routes; use /v1/users/{id}/usage");
        return std::nullopt;
    }
    reply_error(response, 401, session.error().code, session.error().message);
    response.set_header("WWW-Authenticate", "Bearer");
    charge_failed_credentials(request, response);
    return std::nullopt;
}

std::optional<std::string> Callers::service(const httplib::Request& request, httplib::Response& response) {
    const std::string authorization = request.get_header_value("Authorization");
    auto caller = authenticator_.service(authorization);
    if (caller) {
        if (!within_rate(service_limits_, "service", *caller, response)) return std::nullopt;
        return std::move(caller).value();
    }
    if (authenticator_.user(authorization, clock_.now_seconds())) {
        reply_error(response, 403, "wrong_scope", "a user token cannot call the service API");
        return std::nullopt;
    }
    reply_error(response, 401, caller.error().code, caller.error().message);
    response.set_header("WWW-Authenticate", "Bearer");
    charge_failed_credentials(request, response);
    return std::nullopt;
}

bool Callers::refuse_anonymous(const httplib::Request& request, httplib::Response& response) {
    // Liveness and metrics probes are never refused: a 429 on /healthz would
    // make a load balancer take a healthy server out.
    if (request.path == "/healthz" || request.path == "/metrics") return false;
    if (request.has_header("Authorization")) return false;  // limited by whom the credentials name
    return !within_rate(address_limits_, "address", request.remote_addr, response);
}

}  // namespace tokenmeter::http
