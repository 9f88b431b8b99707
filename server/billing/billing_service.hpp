// BillingService: turns provider subscriptions into ledger plans.
//
// A webhook is verified over its raw bytes, then one ledger job (one
// transaction) stores the delivery, keeps the subscription's newest snapshot
// and changes the user's plan, with a receipt published to the user's live
// stream once durable. A delivery already applied changes nothing. A snapshot
// older than the stored one (updated_at) is kept as a delivery but never
// moves the subscription back; a tie with different content, and every
// payment event (an invoice says nothing about the subscription's state), is
// settled by asking the provider for the subscription — outside the ledger
// job, so a slow provider never stalls the writer.
//
// reconcile() lists the store's subscriptions from the provider and repairs
// every plan that disagrees; webhooks that never arrived are thereby healed.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "billing/payment_provider.hpp"
#include "billing/plan_rules.hpp"
#include "clock.hpp"
#include "ledger/ledger_service.hpp"

namespace tokenmeter::billing {

struct ReconcileSummary {
    int pages = 0;
    int listed = 0;      // subscriptions the provider listed
    int matched = 0;     // of them, with a known user
    int updated = 0;     // stored snapshots replaced by newer ones
    int repaired = 0;    // users whose plan changed
    int unmatched = 0;   // no user known for them (no delivery ever named one)
    int orders = 0;            // orders the provider listed
    int orders_applied = 0;    // of them, ones whose credits changed here
    int invoices = 0;          // refunded subscription invoices listed
    int invoices_applied = 0;  // of them, refunds that changed a subscription here
    std::vector<std::string> notes;  // one line per repair or unmatched subscription
    std::optional<ProviderError> failure;  // listing stopped early
};

class BillingService {
public:
    BillingService(ledger::LedgerService& ledger, PaymentProvider& provider, PlanRules rules);

    // What a checkout sells: a plan (by id) or a credit pack (by id).
    struct Product {
        std::string plan;
        std::string pack;
    };

    // POST /v1/webhooks/...: the answer to send (200 for every verified and
    // stored delivery, applied now or before).
    ledger::JobOutcome handle_webhook(std::string_view body, std::string_view signature);

    // POST /v1/me/checkout.
    // Unknown plan or pack ids, the free plan and plans without a variant are 400s.
    ledger::JobOutcome checkout(const std::string& user_id, const std::string& redirect_url, const Product& product = {});

    // POST /v1/me/portal: a fresh customer-portal URL for the user's newest
    // subscription (the URL is signed and short-lived, so never stored);
    // 404 no_subscription when the user has none.
    ledger::JobOutcome portal(const std::string& user_id);

    ReconcileSummary reconcile();

    const PaymentProvider& provider() const { return provider_; }

private:
    struct WebhookJob;
    // One ledger job: stores the delivery and applies it (or asks for a fetch).
    ledger::JobOutcome apply_delivery(ledger::JobContext& changes, WebhookJob& job);
    std::string apply_event(ledger::JobContext& changes, WebhookJob& job);
    // Sets the user's plan to what their subscriptions give now; true if it changed.
    bool repair_plan(ledger::JobContext& changes, const std::string& user_id);
    void reconcile_page(ledger::JobContext& changes, const std::vector<SubscriptionSnapshot>& subscriptions,
                        ReconcileSummary& summary);
    void reconcile_subscriptions(ReconcileSummary& summary);
    void reconcile_orders(ReconcileSummary& summary);
    void reconcile_invoices(ReconcileSummary& summary);
    // Keeps an order's newest state and adds or takes back its pack's
    // tokens as far as that state says; "credited", "clawed back",
    // "unchanged", "linked" (a subscription's order), "no_user" or "unknown_variant".
    std::string apply_order(ledger::JobContext& changes, const OrderSnapshot& order, const std::string& user_hint);
    // Records a subscription payment (the newest one) or its refund on the
    // stored subscription; true when the row changed.
    bool apply_invoice(ledger::JobContext& changes, const InvoiceSnapshot& invoice);

    ledger::LedgerService& ledger_;
    PaymentProvider& provider_;
    PlanRules rules_;
};

// The JSON error body of a provider failure (checkout_failed and friends):
// the reason and a generic message; the provider's detail goes to stderr.
ledger::JobOutcome provider_failure(std::string_view code, const ProviderError& error);

}  // namespace tokenmeter::billing
