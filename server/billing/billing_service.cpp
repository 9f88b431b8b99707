#include "billing/billing_service.hpp"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "billing/webhook_signature.hpp"
#include "ledger/views.hpp"
#include "ledger/writer.hpp"
#include "tokenmeter/json_input.hpp"

namespace tokenmeter::billing {

namespace {

using Json = nlohmann::json;
using Outcome = ledger::JobOutcome;

// Bounds the pages reconcile reads (100 subscriptions each: a million).
constexpr int reconcile_pages_max = 10000;
// How often, and how long at most, reconcile waits out a 429.
constexpr int rate_limit_retries_max = 3;
constexpr int rate_limit_wait_seconds_max = 30;

// What a provider fetch settled, for the second half of a webhook.
struct Fetched {
    bool done = false;
    std::optional<SubscriptionSnapshot> snapshot;  // absent when done: the provider does not know it
};

bool same_state(const SubscriptionSnapshot& snapshot, const storage::StoredSubscription& stored) {
    return snapshot.status == stored.status && snapshot.variant_id == stored.variant_id &&
           snapshot.renews_at == stored.renews_at && snapshot.ends_at == stored.ends_at &&
           snapshot.pause_free == stored.pause_free && snapshot.pause_resumes_at == stored.pause_resumes_at &&
           snapshot.customer_id == stored.customer_id;
}

storage::StoredSubscription row_of(const SubscriptionSnapshot& s, const std::string& user_id, std::int64_t now) {
    storage::StoredSubscription row;
    row.subscription_id = s.subscription_id;
    row.user_id = user_id;
    row.status = s.status;
    row.variant_id = s.variant_id;
    row.customer_id = s.customer_id;
    row.order_id = s.order_id;
    row.pause_free = s.pause_free;
    row.pause_resumes_at = s.status == "paused" ? s.pause_resumes_at : std::nullopt;
    row.renews_at = s.renews_at;
    row.ends_at = s.ends_at;
    row.updated_at_us = s.updated_at_us;
    row.attributes_json = s.attributes_json;
    row.stored_at = now;
    return row;
}

storage::StoredWebhookEvent delivery_of(const WebhookEvent& event, std::string_view body, std::int64_t now) {
    storage::StoredWebhookEvent record;
    record.id = event.body_sha256;
    record.webhook_id = event.webhook_id;
    record.event_name = event.event_name;
    record.subscription_id = event.subscription_id;
    record.user_id = event.user_id;
    record.body = std::string(body);
    record.received_at = now;
    record.deliveries = 1;
    record.outcome = "received";
    return record;
}

// A snapshot's row, keeping what this server learnt from invoices (the
// provider's subscription object does not say it).
storage::StoredSubscription kept_row(const SubscriptionSnapshot& snapshot, const std::string& user_id,
                                     const std::optional<storage::StoredSubscription>& current, std::int64_t now) {
    storage::StoredSubscription row = row_of(snapshot, user_id, now);
    if (current) {
        row.last_payment_at = current->last_payment_at;
        row.refunded_until = current->refunded_until;
    }
    return row;
}

Outcome acknowledged(std::string_view status) { return Outcome{200, Json{{"status", status}}.dump()}; }

}  // namespace

BillingService::BillingService(ledger::LedgerService& ledger, PaymentProvider& provider, PlanRules rules)
    : ledger_(ledger), provider_(provider), rules_(std::move(rules)) {}

namespace {

// What a caller of the API is told about a provider failure. The provider's
// own message stays in the server's log: it names LEMONSQUEEZY_API_BASE
// (which may be an internal proxy) and quotes the provider's answers, and
// the checkout route answers browsers. `reason` says what kind of failure
// it was, which is all a client can act on.
std::string_view public_message(std::string_view reason) {
    if (reason == provider_reason::timeout) return "the payment provider did not answer in time; try again";
    if (reason == provider_reason::rate_limited) return "the payment provider is busy; try again shortly";
    if (reason == provider_reason::unreachable) return "the payment provider cannot be reached; try again later";
    if (reason == provider_reason::rejected || reason == provider_reason::not_found) {
        return "the payment provider refused the request";
    }
    if (reason == provider_reason::bad_response) return "the payment provider's answer could not be read";
    return "the payment provider failed";
}

}  // namespace

Outcome provider_failure(std::string_view code, const ProviderError& error) {
    int status = 502;
    if (error.reason == provider_reason::rate_limited) status = 503;
    if (error.reason == provider_reason::timeout) status = 504;
    std::cerr << "tokenmeter: billing: " << code << " (" << error.reason << "): " << error.message << std::endl;
    Json body = {{"error", {{"code", code}, {"message", public_message(error.reason)}, {"reason", error.reason}}}};
    if (error.provider_status != 0) body["error"]["provider_status"] = error.provider_status;
    if (error.reason == provider_reason::rate_limited) {
        body["error"]["retry_after_seconds"] = error.retry_after_seconds > 0 ? error.retry_after_seconds : 1;
    }
    return Outcome{status, body.dump()};
}

bool BillingService::repair_plan(ledger::JobContext& changes, const std::string& user_id) {
    storage::BillingTransaction& billing = changes.billing();
    const Account& account = changes.account(user_id);
    const PlanDecision target = decide_user_plan(billing.subscriptions_of_user(user_id), rules_, changes.now());
    if (target.unknown_variant) {
        std::cerr << "tokenmeter: billing: a subscription of " << user_id
                  << " names a variant no catalog plan gives; the plan stays " << account.plan << "\n";
        return false;
    }
    const PlanDecision decision = settle_change(target, account, rules_);
    if (account_follows(account, decision)) return false;
    if (changes.rules().catalog_at(changes.now()).find_plan(decision.plan) == nullptr) {
        std::cerr << "tokenmeter: billing: the catalog has no plan \"" << decision.plan << "\"; " << user_id
                  << " keeps " << account.plan << "\n";
        return false;
    }
    changes.change_plan(PlanChangeCommand{user_id, decision.plan, decision.ends_at, decision.after, decision.anchor_day});
    return true;
}

namespace {

// Keeps `snapshot` for its subscription unless the stored one is newer, and
// says what happened: applied, stale, unchanged, needs_fetch or no_user.
std::string keep_snapshot(storage::BillingTransaction& billing, const SubscriptionSnapshot& snapshot,
                          const std::string& user_hint, bool authoritative, std::int64_t now, std::string& user) {
    const auto current = billing.load_subscription(snapshot.subscription_id);
    user = current ? current->user_id : user_hint;
    if (user.empty() && !snapshot.order_id.empty()) user = billing.user_of_order(snapshot.order_id).value_or("");
    if (user.empty()) return "no_user";
    if (current) {
        if (snapshot.updated_at_us < current->updated_at_us) return "stale";
        if (snapshot.updated_at_us == current->updated_at_us) {
            // Same instant: identical content is a repeat; different content
            // cannot be ordered, so only the provider's current word settles it.
            if (same_state(snapshot, *current)) return "unchanged";
            if (!authoritative) return "needs_fetch";
        }
    }
    billing.store_subscription(kept_row(snapshot, user, current, now));
    return "applied";
}

}  // namespace

struct BillingService::WebhookJob {
    std::string_view body;
    const WebhookEvent& event;
    const Fetched& fetched;
    bool need_fetch = false;
};

std::string BillingService::apply_event(ledger::JobContext& changes, WebhookJob& job) {
    storage::BillingTransaction& billing = changes.billing();
    const WebhookEvent& event = job.event;
    const SubscriptionSnapshot* snapshot = nullptr;
    bool authoritative = false;
    switch (event.kind) {
        case WebhookKind::ignored: return "ignored";
        case WebhookKind::order:
            if (event.order) return apply_order(changes, *event.order, event.user_id);
            if (event.user_id.empty()) return "no_user";
            billing.link_order(event.order_id, event.user_id, changes.now());
            return "order_linked";
        case WebhookKind::subscription:
            snapshot = &*event.subscription;
            break;
        case WebhookKind::payment:
            // An invoice says nothing about the subscription's status or
            // renewal: the provider's current subscription does.
            if (!job.fetched.done) return "needs_fetch";
            break;
    }
    if (job.fetched.done) {
        if (!job.fetched.snapshot) return "subscription_not_found";
        snapshot = &*job.fetched.snapshot;
        authoritative = true;
    }
    std::string user;
    const std::string kept = keep_snapshot(billing, *snapshot, event.user_id, authoritative, changes.now(), user);
    if (kept == "no_user" || kept == "needs_fetch") return kept;
    const bool invoiced = event.invoice && apply_invoice(changes, *event.invoice);
    if (kept == "applied" || kept == "unchanged" || invoiced) repair_plan(changes, user);
    return kept;
}

namespace {

// An order that was paid at some point (a refunded one was paid first).
bool was_paid(std::string_view status) {
    return status == "paid" || status == "refunded" || status == "partial_refund" || status == "partial_refunded";
}

// The tokens a refund of `refunded` out of `total` takes back: the same
// share of the pack, rounded down (what was not refunded stays bought).
std::int64_t refunded_share(std::int64_t tokens, std::int64_t refunded, std::int64_t total) {
    if (refunded <= 0) return 0;
    if (total <= 0 || refunded >= total) return tokens;
    // tokens (< 2^53) times an amount in cents can pass 2^63: 128 bits.
    __extension__ using Wide = __int128;
    return static_cast<std::int64_t>(static_cast<Wide>(tokens) * refunded / total);
}

}  // namespace

std::string BillingService::apply_order(ledger::JobContext& changes, const OrderSnapshot& order,
                                        const std::string& user_hint) {
    storage::BillingTransaction& billing = changes.billing();
    const auto stored = billing.load_order(order.order_id);
    storage::StoredOrder row;
    if (stored) {
        row = *stored;
    } else {
        row.order_id = order.order_id;
        row.created_at = changes.now();
    }
    if (row.user_id.empty()) row.user_id = user_hint;
    if (row.user_id.empty()) row.user_id = billing.user_of_customer(order.customer_id).value_or("");
    if (row.user_id.empty()) return "no_user";
    if (!stored || order.updated_at_us >= row.updated_at_us) {
        row.status = order.status;
        row.variant_id = order.variant_id;
        row.customer_id = order.customer_id;
        row.total = order.total;
        row.updated_at_us = order.updated_at_us;
    }
    // Refunds only add up: the largest amount seen is the newest.
    row.refunded_amount = std::max(row.refunded_amount, order.refunded_amount);
    const Pack* pack = changes.rules().catalog_at(changes.now()).pack_of_variant(row.variant_id);
    if (pack == nullptr) {
        billing.store_order(row);
        if (rules_.plan_of_variant(row.variant_id) != nullptr) return "linked";
        std::cerr << "tokenmeter: billing: order " << row.order_id << " of " << row.user_id << " is for variant \""
                  << row.variant_id << "\", which no catalog plan or pack sells; nothing changed\n";
        return "unknown_variant";
    }
    const std::int64_t credit_due = was_paid(row.status) ? pack->tokens : 0;
    const std::int64_t claw_due = was_paid(row.status) ? refunded_share(pack->tokens, row.refunded_amount, row.total) : 0;
    std::string outcome = "unchanged";
    if (credit_due > row.credited_tokens) {
        const CreditChange grant{"order:" + row.order_id, credit_due - row.credited_tokens, "pack"};
        if (changes.credit(CreditCommand{row.user_id, grant})) {
            row.credited_tokens = credit_due;
            outcome = "credited";
        }
    }
    if (claw_due > row.clawed_tokens) {
        const CreditChange refund{"refund:order:" + row.order_id + ":" + std::to_string(claw_due),
                                  -(claw_due - row.clawed_tokens), "refund"};
        if (changes.credit(CreditCommand{row.user_id, refund})) {
            row.clawed_tokens = claw_due;
            outcome = outcome == "credited" ? "credited and clawed back" : "clawed back";
        }
    }
    billing.store_order(row);
    return outcome;
}

bool BillingService::apply_invoice(ledger::JobContext& changes, const InvoiceSnapshot& invoice) {
    storage::BillingTransaction& billing = changes.billing();
    const auto stored = billing.load_subscription(invoice.subscription_id);
    if (!stored || !was_paid(invoice.status)) return false;
    storage::StoredSubscription row = *stored;
    if (!row.last_payment_at || invoice.created_at > *row.last_payment_at) row.last_payment_at = invoice.created_at;
    const bool refunded_in_full =
        invoice.total > 0 ? invoice.refunded_amount >= invoice.total : invoice.status == "refunded";
    // A full refund of the newest payment takes back the cycle it paid for,
    // which ends at the renewal the subscription is waiting for. A partial
    // refund (a goodwill discount) leaves the plan alone, and so does a
    // refund of an older payment whose cycle is over.
    const bool newest = invoice.created_at >= *row.last_payment_at;
    if (refunded_in_full && newest && row.renews_at && *row.renews_at > changes.now() &&
        row.refunded_until.value_or(0) < *row.renews_at) {
        row.refunded_until = row.renews_at;
    }
    if (row.last_payment_at == stored->last_payment_at && row.refunded_until == stored->refunded_until) return false;
    billing.store_subscription(row);
    return true;
}

Outcome BillingService::apply_delivery(ledger::JobContext& changes, WebhookJob& job) {
    job.need_fetch = false;  // a writer may rerun a job (a conflicting batch): start over
    storage::BillingTransaction* billing = &changes.billing();
    const WebhookEvent& event = job.event;
    auto stored = billing->load_webhook_event(event.body_sha256, event.webhook_id);
    if (stored && stored->applied_at) {
        stored->deliveries += 1;
        billing->update_webhook_event(*stored);
        return acknowledged("duplicate");
    }
    storage::StoredWebhookEvent record = stored ? *stored : delivery_of(event, job.body, changes.now());
    if (stored) {
        record.deliveries += job.fetched.done ? 0 : 1;  // the second half of one delivery is not another
    } else {
        billing->insert_webhook_event(record);
    }
    const std::string outcome = apply_event(changes, job);
    if (outcome == "needs_fetch") {
        job.need_fetch = true;
        billing->update_webhook_event(record);
        return acknowledged("stored");
    }
    record.applied_at = changes.now();
    record.outcome = outcome;
    billing->update_webhook_event(record);
    return acknowledged(outcome);
}

ledger::JobOutcome BillingService::handle_webhook(std::string_view body, std::string_view signature) {
    auto verified = provider_.verify_webhook(body, signature);
    if (!verified && verified.error().code == "invalid_signature") {
        return Outcome{401, ledger::error_body("invalid_signature", verified.error().message)};
    }
    WebhookEvent event;
    if (verified) {
        event = std::move(verified).value();
    } else {
        // Signed by the provider but unreadable: kept for operators, and
        // acknowledged, since a redelivery of the same bytes cannot do better.
        event.event_name = "unreadable: " + json_input::utf8_prefix(verified.error().message, 200);
        event.body_sha256 = sha256_hex(body);
    }
    Fetched none;
    WebhookJob first{body, event, none};
    Outcome outcome = ledger_.run_job([this, &first](ledger::JobContext& changes) { return apply_delivery(changes, first); });
    if (!first.need_fetch) return outcome;
    auto fetched = provider_.fetch_subscription(event.subscription_id);
    Fetched settled;
    if (fetched) {
        settled.done = true;
        settled.snapshot = std::move(fetched).value();
    } else if (fetched.error().reason == provider_reason::not_found) {
        settled.done = true;
    } else {
        // Stored, not applied: answering non-200 makes the provider deliver it
        // again, and the retry applies it.
        return provider_failure("provider_unavailable", fetched.error());
    }
    WebhookJob second{body, event, settled};
    return ledger_.run_job([this, &second](ledger::JobContext& changes) { return apply_delivery(changes, second); });
}

namespace {

Outcome bad_product(std::string_view code, const std::string& message) {
    return Outcome{400, ledger::error_body(code, message)};
}

// The variant a checkout for `plan` sells: the catalog's first (the others,
// a yearly price or an older one, give the plan when a subscription moves
// to them), else the configured pro variant; "" leaves the choice to the
// provider's default (a server configured without variants).
std::optional<std::string> variant_selling(const Plan& plan, const PlanRules& rules) {
    if (!plan.variant_ids.empty()) return plan.variant_ids.front();
    for (const auto& [variant_id, gives] : rules.variant_plans) {
        if (gives == plan.id) return variant_id;
    }
    if (rules.any_variant_plan == plan.id) return std::string();
    return std::nullopt;
}

}  // namespace

Outcome BillingService::checkout(const std::string& user_id, const std::string& redirect_url, const Product& product) {
    const auto in_force = ledger_.prices().catalog();
    const Catalog& catalog = *in_force;
    std::string variant;
    if (!product.pack.empty()) {
        const Pack* pack = catalog.find_pack(product.pack);
        if (pack == nullptr) return bad_product("unknown_pack", "the catalog has no credit pack \"" + json_input::utf8_prefix(product.pack, 64) + "\"");
        variant = pack->variant_id;
    } else {
        const std::string plan_id = product.plan.empty() ? "pro" : product.plan;
        const Plan* plan = catalog.find_plan(plan_id);
        if (plan == nullptr) return bad_product("unknown_plan", "the catalog has no plan \"" + json_input::utf8_prefix(plan_id, 64) + "\"");
        if (plan->id == rules_.free_plan) return bad_product("plan_not_for_sale", "the free plan is not bought");
        auto sold = variant_selling(*plan, rules_);
        if (!sold) return bad_product("plan_not_for_sale", "no variant sells the plan \"" + plan->id + "\"");
        variant = *sold;
    }
    auto session = provider_.create_checkout(CheckoutRequest{user_id, redirect_url, variant});
    if (!session) return provider_failure("checkout_failed", session.error());
    return Outcome{200, Json{{"checkout_id", session->id}, {"url", session->url}}.dump()};
}

Outcome BillingService::portal(const std::string& user_id) {
    // The user's subscriptions, newest first by the provider's clock.
    std::vector<std::string> subscription_ids;
    Outcome listed = ledger_.run_job([&](ledger::JobContext& changes) {
        auto subscriptions = changes.billing().subscriptions_of_user(user_id);
        std::sort(subscriptions.begin(), subscriptions.end(),
                  [](const auto& a, const auto& b) { return a.updated_at_us > b.updated_at_us; });
        subscription_ids.clear();
        for (const auto& subscription : subscriptions) subscription_ids.push_back(subscription.subscription_id);
        return Outcome{200, "{}"};
    });
    if (listed.status != 200) return listed;
    if (subscription_ids.empty()) {
        return Outcome{404, ledger::error_body("no_subscription", "there is no subscription to manage; buy a plan first")};
    }
    auto subscription = provider_.fetch_subscription(subscription_ids.front());
    if (!subscription) return provider_failure("portal_failed", subscription.error());
    if (subscription->customer_portal_url.empty()) {
        return provider_failure("portal_failed", ProviderError{std::string(provider_reason::bad_response),
                                                               "the subscription carries no urls.customer_portal", 0, 0});
    }
    return Outcome{200, Json{{"url", subscription->customer_portal_url}}.dump()};
}

namespace {

std::string plan_words(const Account& account) {
    if (!account.exists()) return "none";
    std::string words = account.plan;
    if (account.plan_ends_at) words += " until " + std::to_string(*account.plan_ends_at);
    return words;
}

}  // namespace

void BillingService::reconcile_page(ledger::JobContext& changes, const std::vector<SubscriptionSnapshot>& subscriptions,
                                    ReconcileSummary& summary) {
    storage::BillingTransaction& billing = changes.billing();
    std::set<std::string> repaired;
    for (const SubscriptionSnapshot& snapshot : subscriptions) {
        const auto current = billing.load_subscription(snapshot.subscription_id);
        std::string user = current ? current->user_id : billing.user_of_order(snapshot.order_id).value_or("");
        if (user.empty()) {
            summary.unmatched += 1;
            summary.notes.push_back("subscription " + snapshot.subscription_id + " (" + snapshot.status + ", " +
                                    snapshot.user_email + "): no user known; no delivery named one");
            continue;
        }
        summary.matched += 1;
        // The provider's list is its current word; a stored snapshot is only
        // kept over it when the list is older (a lagging replica).
        const bool newer = !current || snapshot.updated_at_us > current->updated_at_us ||
                           (snapshot.updated_at_us == current->updated_at_us && !same_state(snapshot, *current));
        if (newer) {
            billing.store_subscription(kept_row(snapshot, user, current, changes.now()));
            summary.updated += 1;
        }
        const std::string before = plan_words(changes.account(user));
        const bool changed = repair_plan(changes, user);
        const std::string after = plan_words(changes.account(user));
        const bool moved = changed || before != after;
        if (moved && repaired.insert(user).second) {
            summary.repaired += 1;
            summary.notes.push_back("user " + user + ": " + before + " -> " + after +
                                    " (subscription " + snapshot.subscription_id + ", " + snapshot.status + ")");
        }
    }
}

namespace {

// Lists pages with `list` (waiting out rate limits) and hands each to
// `apply` as one ledger job, until the last page; false when it stopped on
// a failure, which `summary` then names.
template <typename List, typename Apply>
bool each_page(ledger::LedgerService& ledger, List list, Apply apply, ReconcileSummary& summary) {
    std::string next;
    for (int page = 0; page < reconcile_pages_max; ++page) {
        auto listed = [&] {
            for (int attempt = 0;; ++attempt) {
                auto got = list(next);
                if (got || got.error().reason != provider_reason::rate_limited || attempt >= rate_limit_retries_max) {
                    return got;
                }
                const int wait = std::clamp(got.error().retry_after_seconds, 1, rate_limit_wait_seconds_max);
                std::this_thread::sleep_for(std::chrono::seconds(wait));
            }
        }();
        if (!listed) {
            summary.failure = listed.error();
            return false;
        }
        summary.pages += 1;
        ReconcileSummary part;
        Outcome outcome = ledger.run_job([&](ledger::JobContext& changes) {
            part = ReconcileSummary{};  // a retried job starts over
            apply(changes, *listed, part);
            return Outcome{200, "{}"};
        });
        if (outcome.status != 200) {
            summary.failure = ProviderError{"storage_unavailable", "the ledger refused the repairs: " + outcome.body, 0, 0};
            return false;
        }
        summary.listed += part.listed;
        summary.matched += part.matched;
        summary.updated += part.updated;
        summary.repaired += part.repaired;
        summary.unmatched += part.unmatched;
        summary.orders += part.orders;
        summary.orders_applied += part.orders_applied;
        summary.invoices += part.invoices;
        summary.invoices_applied += part.invoices_applied;
        for (auto& note : part.notes) summary.notes.push_back(std::move(note));
        if (listed->next.empty()) return true;
        next = listed->next;
    }
    return true;
}

}  // namespace

void BillingService::reconcile_subscriptions(ReconcileSummary& summary) {
    each_page(
        ledger_, [this](const std::string& next) { return provider_.list_subscriptions(next); },
        [this](ledger::JobContext& changes, const SubscriptionPage& page, ReconcileSummary& part) {
            part.listed = static_cast<int>(page.subscriptions.size());
            reconcile_page(changes, page.subscriptions, part);
        },
        summary);
}

void BillingService::reconcile_orders(ReconcileSummary& summary) {
    each_page(
        ledger_, [this](const std::string& next) { return provider_.list_orders(next); },
        [this](ledger::JobContext& changes, const OrderPage& page, ReconcileSummary& part) {
            for (const OrderSnapshot& order : page.orders) {
                part.orders += 1;
                const std::string outcome = apply_order(changes, order, "");
                if (outcome == "credited" || outcome == "clawed back" || outcome == "credited and clawed back") {
                    part.orders_applied += 1;
                    part.notes.push_back("order " + order.order_id + " (" + order.status + "): " + outcome);
                } else if (outcome == "no_user") {
                    part.notes.push_back("order " + order.order_id + " (" + order.status + ", " + order.user_email +
                                         "): no user known; no delivery named one");
                }
            }
        },
        summary);
}

void BillingService::reconcile_invoices(ReconcileSummary& summary) {
    each_page(
        ledger_, [this](const std::string& next) { return provider_.list_refunded_invoices(next); },
        [this](ledger::JobContext& changes, const InvoicePage& page, ReconcileSummary& part) {
            for (const InvoiceSnapshot& invoice : page.invoices) {
                part.invoices += 1;
                if (!apply_invoice(changes, invoice)) continue;
                part.invoices_applied += 1;
                const auto subscription = changes.billing().load_subscription(invoice.subscription_id);
                const std::string before = plan_words(changes.account(subscription->user_id));
                repair_plan(changes, subscription->user_id);
                part.notes.push_back("invoice " + invoice.invoice_id + " of subscription " + invoice.subscription_id +
                                     " refunded: user " + subscription->user_id + ": " + before + " -> " +
                                     plan_words(changes.account(subscription->user_id)));
            }
        },
        summary);
}

ReconcileSummary BillingService::reconcile() {
    // Subscriptions first (a refund applies to a stored subscription), then
    // refunds of their payments, then orders (credit packs and their refunds).
    ReconcileSummary summary;
    reconcile_subscriptions(summary);
    if (!summary.failure) reconcile_invoices(summary);
    if (!summary.failure) reconcile_orders(summary);
    return summary;
}

}  // namespace tokenmeter::billing
