// Billing assembled from configuration: the LemonSqueezy provider, the
// service and the routes. Without LemonSqueezy settings the routes still
// exist and say billing_not_configured.
#pragma once

#include <memory>

#include "billing/billing_routes.hpp"
#include "billing/billing_service.hpp"
#include "billing/payment_provider.hpp"
#include "config/config.hpp"

namespace tokenmeter::billing {

struct BillingParts {
    std::unique_ptr<PaymentProvider> provider;
    std::unique_ptr<BillingService> service;  // null when LemonSqueezy is not configured
    std::shared_ptr<BillingRoutes> routes;
};

BillingParts make_billing(const config::LemonSqueezySettings& settings, ledger::LedgerService& ledger,
                          http::Callers& callers);

// Plan rules from the catalog's variants; the configured pro variant
// (LEMONSQUEEZY_PRO_VARIANT_ID) gives the pro plan too.
PlanRules plan_rules_of(const config::LemonSqueezySettings& settings, const Catalog& catalog);

}  // namespace tokenmeter::billing
