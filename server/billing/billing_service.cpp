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
           snapshot.pause_free == stored.pause_free && snapshot.customer_id == stored.customer_id;
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
    const PlanDecision decision = decide_user_plan(billing.subscriptions_of_user(user_id), rules_, changes.now());
    if (account_follows(account, decision)) return false;
    if (changes.rules().catalog->find_plan(decision.plan) == nullptr) {
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
    billing.store_subscription(row_of(snapshot, user, now));
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
    if (kept == "applied" || kept == "unchanged") repair_plan(changes, user);
    return kept;
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

Outcome BillingService::checkout(const std::string& user_id, const std::string& redirect_url) {
    auto session = provider_.create_checkout(CheckoutRequest{user_id, redirect_url});
    if (!session) return provider_failure("checkout_failed", session.error());
    return Outcome{200, Json{{"checkout_id", session->id}, {"url", session->url}}.dump()};
}

namespace {

std::string plan_words(const Account& account) {
    if (!account.exists()) return "none";
    std::string words = account.plan;
    if (account.plan_ends_at) words += " until " + std::to_string(*account.plan_ends_at);
    return words;
}

Result<SubscriptionPage, ProviderError> list_waiting_out_rate_limits(PaymentProvider& provider, const std::string& next) {
    for (int attempt = 0;; ++attempt) {
        auto page = provider.list_subscriptions(next);
        if (page || page.error().reason != provider_reason::rate_limited || attempt >= rate_limit_retries_max) return page;
        const int wait = std::clamp(page.error().retry_after_seconds, 1, rate_limit_wait_seconds_max);
        std::this_thread::sleep_for(std::chrono::seconds(wait));
    }
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
            billing.store_subscription(row_of(snapshot, user, changes.now()));
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

ReconcileSummary BillingService::reconcile() {
    ReconcileSummary summary;
    std::string next;
    for (int page = 0; page < reconcile_pages_max; ++page) {
        auto listed = list_waiting_out_rate_limits(provider_, next);
        if (!listed) {
            summary.failure = listed.error();
            return summary;
        }
        summary.pages += 1;
        summary.listed += static_cast<int>(listed->subscriptions.size());
        ReconcileSummary part;
        Outcome outcome = ledger_.run_job([this, &listed, &part](ledger::JobContext& changes) {
            part = ReconcileSummary{};  // a retried job starts over
            reconcile_page(changes, listed->subscriptions, part);
            return Outcome{200, "{}"};
        });
        if (outcome.status != 200) {
            summary.failure = ProviderError{"storage_unavailable", "the ledger refused the repairs: " + outcome.body, 0, 0};
            return summary;
        }
        summary.matched += part.matched;
        summary.updated += part.updated;
        summary.repaired += part.repaired;
        summary.unmatched += part.unmatched;
        for (auto& note : part.notes) summary.notes.push_back(std::move(note));
        if (listed->next.empty()) break;
        next = listed->next;
    }
    return summary;
}

}  // namespace tokenmeter::billing
