#include "billing/billing_setup.hpp"

#include <algorithm>

#include "billing/lemonsqueezy.hpp"

namespace tokenmeter::billing {

namespace {

std::string missing_for_checkout(const config::LemonSqueezySettings& s, const Catalog& catalog) {
    std::string missing;
    auto need = [&missing](bool absent, const char* name) {
        if (!absent) return;
        missing += missing.empty() ? "" : ", ";
        missing += name;
    };
    need(s.api_key.empty(), "LEMONSQUEEZY_API_KEY");
    need(s.store_id.empty(), "LEMONSQUEEZY_STORE_ID");
    // Plans are sold by the catalog's variants, or by the one configured for pro.
    const bool catalog_sells = std::any_of(catalog.plans.begin(), catalog.plans.end(),
                                           [](const Plan& plan) { return !plan.variant_ids.empty(); });
    need(s.pro_variant_id.empty() && !catalog_sells, "LEMONSQUEEZY_PRO_VARIANT_ID");
    return missing.empty() ? missing : missing + " not set";
}

}  // namespace

PlanRules plan_rules_of(const config::LemonSqueezySettings& settings, const Catalog& catalog) {
    return plan_rules_from(catalog, settings.pro_variant_id);
}

BillingParts make_billing(const config::LemonSqueezySettings& settings, ledger::LedgerService& ledger,
                          http::Callers& callers) {
    BillingParts parts;
    BillingRoutesOptions options;
    if (settings.configured()) {
        LemonSqueezyOptions provider_options;
        provider_options.api_base = settings.api_base;
        provider_options.api_key = settings.api_key;
        provider_options.store_id = settings.store_id;
        provider_options.variant_id = settings.pro_variant_id;
        provider_options.webhook_secret = settings.webhook_secret;
        provider_options.timeout_ms = settings.timeout_ms;
        parts.provider = std::make_unique<LemonSqueezyProvider>(std::move(provider_options));
        // Plans and variants as the catalog in force at start-up has them: a
        // reload changes prices, not what a LemonSqueezy variant sells.
        const auto catalog = ledger.prices().catalog();
        parts.service = std::make_unique<BillingService>(ledger, *parts.provider, plan_rules_of(settings, *catalog));
        options.checkout_missing = missing_for_checkout(settings, *catalog);
        if (settings.webhook_secret.empty()) options.webhook_missing = "LEMONSQUEEZY_WEBHOOK_SECRET not set";
    }
    parts.routes = std::make_shared<BillingRoutes>(parts.service.get(), callers, options);
    return parts;
}

}  // namespace tokenmeter::billing
