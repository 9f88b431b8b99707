// Who is calling, and whether they may call now: the one place where a
// request's credentials become a user or a service caller, or a 401, 403 or
// 429 answer. Every route set (the API, billing, the demo) asks here, so
// every route is rate limited the same way (DESIGN.md §7).
#pragma once

#include <optional>
#include <string>

#include "clock.hpp"
#include "http/authenticator.hpp"
#include "http/metrics.hpp"
#include "http/rate_limits.hpp"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace tokenmeter::http {

struct RateLimits {
    RateLimit user{20, 60};
    RateLimit service{50'000, 100'000};
    RateLimit address{50, 200};
};

class Callers {
public:
    Callers(Authenticator& authenticator, const Clock& clock, Metrics& metrics, RateLimits limits);

    // The user of a bearer JWT, within the user's rate; otherwise the answer
    // (401, 403 for a service key, 429) is written and nothing is returned.
    std::optional<UserSession> user(const httplib::Request& request, httplib::Response& response);
    // The caller id of a service key, within its rate; otherwise as user().
    std::optional<std::string> service(const httplib::Request& request, httplib::Response& response);
    // Before routing: a request without credentials counts against its
    // client address. True when it was refused (429 written).
    bool refuse_anonymous(const httplib::Request& request, httplib::Response& response);

    Authenticator& authenticator() { return authenticator_; }

private:
    bool within_rate(RateLimiter& limiter, const char* scope, std::string_view key, httplib::Response& response);
    void charge_failed_credentials(const httplib::Request& request, httplib::Response& response);

    Authenticator& authenticator_;
    const Clock& clock_;
    Metrics& metrics_;
    RateLimiter user_limits_;
    RateLimiter service_limits_;
    RateLimiter address_limits_;
};

}  // namespace tokenmeter::http
