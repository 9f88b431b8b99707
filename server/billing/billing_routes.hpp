// The billing endpoints (DESIGN.md §7), installed through Api::add_routes:
//
//   POST /v1/me/checkout              user     {"plan"? | "pack"?, "redirect_url"?} -> {"checkout_id","url"}
//                                              (no plan and no pack: the pro plan)
//   POST /v1/me/portal                user     -> {"url"}: a fresh customer-portal URL
//   POST /v1/webhooks/lemonsqueezy    HMAC     200 for every verified delivery
//
// Billing is optional: without LemonSqueezy settings both answer 503
// billing_not_configured, saying which setting is missing.
#pragma once

#include <string>

#include "billing/billing_service.hpp"
#include "clock.hpp"
#include "http/api.hpp"
#include "http/callers.hpp"

namespace tokenmeter::billing {

struct BillingRoutesOptions {
    std::string checkout_missing;  // empty when checkout works, else what is missing
    std::string webhook_missing;   // the same for webhooks
    std::size_t redirect_url_bytes_max = 2048;
};

class BillingRoutes final : public http::RouteSet {
public:
    // `service` may be null when billing is not configured at all.
    BillingRoutes(BillingService* service, http::Callers& callers, BillingRoutesOptions options);

    void install(httplib::Server& server,
                 const std::function<void(const std::string& route, int status, double seconds)>& observe) override;

private:
    void checkout(const httplib::Request& request, httplib::Response& response);
    void portal(const httplib::Request& request, httplib::Response& response);
    void webhook(const httplib::Request& request, httplib::Response& response);

    BillingService* service_;
    http::Callers& callers_;
    BillingRoutesOptions options_;
};

}  // namespace tokenmeter::billing
