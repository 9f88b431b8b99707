// BillingTransaction: the two tables billing keeps (DESIGN.md §8:
// subscriptions and webhook events), written inside the same ledger
// transaction as the plan change they cause, so a delivery is stored, its
// subscription snapshot kept and the plan changed all at once or not at all.
//
// It is reached through LedgerTransaction::billing(), which returns nullptr for
// a store that has no billing tables yet: webhooks then answer 503
// billing_storage_unavailable (LemonSqueezy retries) and reconcile stops.
//
// What a store adds for billing:
// - the three tables (subscriptions, webhook_events, billing_orders) as a
//   migration: SQLite's migration 2 (storage/sqlite/migrations.cpp),
//   PostgreSQL's migration 2 (storage/postgres/migrations.cpp, with row-level
//   security on them in 3);
// - this interface on its transaction, on the transaction's own connection,
//   and `BillingTransaction* billing() override` returning it
//   (storage/sqlite/sqlite_billing.*, storage/postgres/pg_billing.*).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokenmeter::storage {

// The newest known state of one provider subscription, and whose it is.
struct StoredSubscription {
    std::string subscription_id;
    std::string user_id;
    std::string status;       // the provider's word: active, on_trial, past_due, cancelled, ...
    std::string variant_id;
    std::string customer_id;
    std::string order_id;
    bool pause_free = false;  // paused with "service continues for free"
    std::optional<std::int64_t> pause_resumes_at;  // a void pause gives free until then
    std::optional<std::int64_t> renews_at;  // unix seconds
    std::optional<std::int64_t> ends_at;
    // Kept by this server from the subscription's invoices, not by the
    // provider's snapshot: the newest payment it knows of (invoice
    // created_at), and the end of the paid cycle a refund took back.
    std::optional<std::int64_t> last_payment_at;
    std::optional<std::int64_t> refunded_until;
    std::int64_t updated_at_us = 0;  // the provider's updated_at, microseconds: orders snapshots
    std::string attributes_json;     // the snapshot as received, for audits
    std::int64_t stored_at = 0;
};

// One distinct webhook delivery (redeliveries of the same bytes count up).
struct StoredWebhookEvent {
    std::string id;          // hex SHA-256 of the raw body
    std::string webhook_id;  // meta.webhook_id when sent (its retry semantics are unverified)
    std::string event_name;
    std::string subscription_id;
    std::string user_id;
    std::string body;
    std::int64_t received_at = 0;
    std::int64_t deliveries = 1;
    std::optional<std::int64_t> applied_at;  // absent: stored, not applied yet (a fetch failed)
    std::string outcome;                     // what applying it did, for operators
};

// An order: whose it is, what it bought, what was refunded of it, and what
// the ledger already did about it, so each order adds a pack's tokens once
// and takes back each refunded part once, whatever the deliveries.
struct StoredOrder {
    std::string order_id;
    std::string user_id;
    std::string variant_id;
    std::string customer_id;
    std::string status;  // the provider's word: paid, refunded, partial_refund, ...
    std::int64_t total = 0;            // cents
    std::int64_t refunded_amount = 0;  // cents, cumulative (only ever grows)
    std::int64_t updated_at_us = 0;
    std::int64_t credited_tokens = 0;  // tokens the ledger added for it
    std::int64_t clawed_tokens = 0;    // tokens the ledger took back for its refunds
    std::int64_t created_at = 0;       // when this server first heard of it
};

class BillingTransaction {
public:
    virtual ~BillingTransaction() = default;

    // The delivery with this body hash, or else with this non-empty webhook id.
    virtual std::optional<StoredWebhookEvent> load_webhook_event(std::string_view id, std::string_view webhook_id) = 0;
    virtual void insert_webhook_event(const StoredWebhookEvent& event) = 0;
    // Updates deliveries, applied_at and outcome of a stored delivery.
    virtual void update_webhook_event(const StoredWebhookEvent& event) = 0;

    virtual std::optional<StoredSubscription> load_subscription(std::string_view subscription_id) = 0;
    virtual std::vector<StoredSubscription> subscriptions_of_user(std::string_view user_id) = 0;
    // The user of an order, when an order_created delivery named one.
    virtual std::optional<std::string> user_of_order(std::string_view order_id) = 0;
    virtual void link_order(std::string_view order_id, std::string_view user_id, std::int64_t now) = 0;
    virtual std::optional<StoredOrder> load_order(std::string_view order_id) = 0;
    // Inserts or replaces the order row.
    virtual void store_order(const StoredOrder& order) = 0;
    // The user an order or subscription of this provider customer belongs to.
    virtual std::optional<std::string> user_of_customer(std::string_view customer_id) = 0;
    // Inserts or replaces the subscription row.
    virtual void store_subscription(const StoredSubscription& subscription) = 0;
};

}  // namespace tokenmeter::storage
