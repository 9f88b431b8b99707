#include "storage/postgres/pg_billing.hpp"

#include "storage/postgres/pg_connection.hpp"

namespace tokenmeter::storage::postgres {

namespace {

const std::string event_columns =
    "id, webhook_id, event_name, subscription_id, user_id, body, received_at, deliveries, applied_at, outcome";

const std::string subscription_columns =
    "subscription_id, user_id, status, variant_id, customer_id, order_id, pause_free, renews_at, ends_at, "
    "updated_at_us, attributes, stored_at, pause_resumes_at, last_payment_at, refunded_until";

const std::string order_columns =
    "order_id, user_id, variant_id, customer_id, status, total, refunded_amount, updated_at_us, credited_tokens, "
    "clawed_tokens, created_at";

StoredOrder order_from(const Rows& rows, int i) {
    StoredOrder o;
    o.order_id = rows.text(i, 0);
    o.user_id = rows.text(i, 1);
    o.variant_id = rows.text(i, 2);
    o.customer_id = rows.text(i, 3);
    o.status = rows.text(i, 4);
    o.total = rows.int64(i, 5);
    o.refunded_amount = rows.int64(i, 6);
    o.updated_at_us = rows.int64(i, 7);
    o.credited_tokens = rows.int64(i, 8);
    o.clawed_tokens = rows.int64(i, 9);
    o.created_at = rows.int64(i, 10);
    return o;
}

StoredWebhookEvent event_from(const Rows& rows, int i) {
    StoredWebhookEvent e;
    e.id = rows.text(i, 0);
    e.webhook_id = rows.text(i, 1);
    e.event_name = rows.text(i, 2);
    e.subscription_id = rows.text(i, 3);
    e.user_id = rows.text(i, 4);
    e.body = rows.text(i, 5);
    e.received_at = rows.int64(i, 6);
    e.deliveries = rows.int64(i, 7);
    e.applied_at = rows.optional_int64(i, 8);
    e.outcome = rows.text(i, 9);
    return e;
}

StoredSubscription subscription_from(const Rows& rows, int i) {
    StoredSubscription s;
    s.subscription_id = rows.text(i, 0);
    s.user_id = rows.text(i, 1);
    s.status = rows.text(i, 2);
    s.variant_id = rows.text(i, 3);
    s.customer_id = rows.text(i, 4);
    s.order_id = rows.text(i, 5);
    s.pause_free = rows.text(i, 6) == "t";
    s.renews_at = rows.optional_int64(i, 7);
    s.ends_at = rows.optional_int64(i, 8);
    s.updated_at_us = rows.int64(i, 9);
    s.attributes_json = rows.text(i, 10);
    s.stored_at = rows.int64(i, 11);
    s.pause_resumes_at = rows.optional_int64(i, 12);
    s.last_payment_at = rows.optional_int64(i, 13);
    s.refunded_until = rows.optional_int64(i, 14);
    return s;
}

}  // namespace

std::optional<StoredWebhookEvent> PgBillingTransaction::load_webhook_event(std::string_view id,
                                                                           std::string_view webhook_id) {
    static const std::string by_id = "SELECT " + event_columns + " FROM webhook_events WHERE id = $1";
    const Rows found = connection_.run(by_id, Params().add(id));
    if (!found.empty()) return event_from(found, 0);
    if (webhook_id.empty()) return std::nullopt;
    static const std::string by_webhook_id =
        "SELECT " + event_columns + " FROM webhook_events WHERE webhook_id = $1 ORDER BY received_at LIMIT 1";
    const Rows same = connection_.run(by_webhook_id, Params().add(webhook_id));
    if (!same.empty()) return event_from(same, 0);
    return std::nullopt;
}

void PgBillingTransaction::insert_webhook_event(const StoredWebhookEvent& e) {
    // The same delivery stored meanwhile by another server process collides
    // here (23505): the batch reruns and finds it.
    static const std::string sql =
        "INSERT INTO webhook_events (id, webhook_id, event_name, subscription_id, user_id, body, received_at, "
        "deliveries, applied_at, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    connection_.defer(sql, Params().add(e.id).add(e.webhook_id).add(e.event_name).add(e.subscription_id)
                               .add(e.user_id).add(e.body).add(e.received_at).add(e.deliveries).add(e.applied_at)
                               .add(e.outcome));
}

void PgBillingTransaction::update_webhook_event(const StoredWebhookEvent& e) {
    static const std::string sql = "UPDATE webhook_events SET deliveries = $1, applied_at = $2, outcome = $3 WHERE id = $4";
    connection_.defer(sql, Params().add(e.deliveries).add(e.applied_at).add(e.outcome).add(e.id), 1);
}

std::optional<StoredSubscription> PgBillingTransaction::load_subscription(std::string_view subscription_id) {
    // Locked, so a snapshot applied by another process cannot slip in
    // between this comparison and store_subscription().
    static const std::string sql =
        "SELECT " + subscription_columns + " FROM subscriptions WHERE subscription_id = $1 FOR UPDATE";
    const Rows rows = connection_.run(sql, Params().add(subscription_id));
    if (rows.empty()) return std::nullopt;
    return subscription_from(rows, 0);
}

std::vector<StoredSubscription> PgBillingTransaction::subscriptions_of_user(std::string_view user_id) {
    static const std::string sql =
        "SELECT " + subscription_columns + " FROM subscriptions WHERE user_id = $1 ORDER BY subscription_id";
    const Rows rows = connection_.run(sql, Params().add(user_id));
    std::vector<StoredSubscription> out;
    for (int i = 0; i < rows.size(); ++i) out.push_back(subscription_from(rows, i));
    return out;
}

std::optional<std::string> PgBillingTransaction::user_of_order(std::string_view order_id) {
    static const std::string sql = "SELECT user_id FROM billing_orders WHERE order_id = $1";
    const Rows rows = connection_.run(sql, Params().add(order_id));
    if (rows.empty()) return std::nullopt;
    return rows.text(0, 0);
}

void PgBillingTransaction::link_order(std::string_view order_id, std::string_view user_id, std::int64_t now) {
    static const std::string sql =
        "INSERT INTO billing_orders (order_id, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT (order_id) DO NOTHING";
    connection_.defer(sql, Params().add(order_id).add(user_id).add(now));
}

void PgBillingTransaction::store_subscription(const StoredSubscription& s) {
    // A subscription first seen by two processes at once is inserted by one;
    // the other's upsert then keeps whichever snapshot is newer, as the
    // comparison in billing does for one process.
    static const std::string sql =
        "INSERT INTO subscriptions (subscription_id, user_id, status, variant_id, customer_id, order_id, pause_free, "
        "renews_at, ends_at, updated_at_us, attributes, stored_at, pause_resumes_at, last_payment_at, refunded_until) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
        "ON CONFLICT (subscription_id) DO UPDATE SET user_id = $2, status = $3, variant_id = $4, customer_id = $5, "
        "order_id = $6, pause_free = $7, renews_at = $8, ends_at = $9, updated_at_us = $10, attributes = $11, "
        "stored_at = $12, pause_resumes_at = $13, last_payment_at = $14, refunded_until = $15 "
        "WHERE subscriptions.updated_at_us <= EXCLUDED.updated_at_us";
    connection_.defer(sql, Params().add(s.subscription_id).add(s.user_id).add(s.status).add(s.variant_id)
                               .add(s.customer_id).add(s.order_id).add(s.pause_free ? "true" : "false")
                               .add(s.renews_at).add(s.ends_at).add(s.updated_at_us).add(s.attributes_json)
                               .add(s.stored_at).add(s.pause_resumes_at).add(s.last_payment_at).add(s.refunded_until));
}

std::optional<StoredOrder> PgBillingTransaction::load_order(std::string_view order_id) {
    static const std::string sql = "SELECT " + order_columns + " FROM billing_orders WHERE order_id = $1";
    const Rows rows = connection_.run(sql, Params().add(order_id));
    if (rows.empty()) return std::nullopt;
    return order_from(rows, 0);
}

void PgBillingTransaction::store_order(const StoredOrder& o) {
    static const std::string sql =
        "INSERT INTO billing_orders (order_id, user_id, variant_id, customer_id, status, total, refunded_amount, "
        "updated_at_us, credited_tokens, clawed_tokens, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
        "ON CONFLICT (order_id) DO UPDATE SET user_id = $2, variant_id = $3, customer_id = $4, status = $5, total = $6, "
        "refunded_amount = $7, updated_at_us = $8, credited_tokens = $9, clawed_tokens = $10";
    connection_.defer(sql, Params().add(o.order_id).add(o.user_id).add(o.variant_id).add(o.customer_id).add(o.status)
                               .add(o.total).add(o.refunded_amount).add(o.updated_at_us).add(o.credited_tokens)
                               .add(o.clawed_tokens).add(o.created_at));
}

std::optional<std::string> PgBillingTransaction::user_of_customer(std::string_view customer_id) {
    if (customer_id.empty()) return std::nullopt;
    static const std::string sql =
        "SELECT user_id FROM subscriptions WHERE customer_id = $1 "
        "UNION ALL SELECT user_id FROM billing_orders WHERE customer_id = $1 LIMIT 1";
    const Rows rows = connection_.run(sql, Params().add(customer_id));
    if (rows.empty()) return std::nullopt;
    return rows.text(0, 0);
}

}  // namespace tokenmeter::storage::postgres
