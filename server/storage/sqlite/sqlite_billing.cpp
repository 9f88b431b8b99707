#include "storage/sqlite/sqlite_billing.hpp"

#include "storage/sqlite/sqlite_db.hpp"

namespace tokenmeter::storage::sqlite {

namespace {

constexpr const char* event_columns =
    "id, webhook_id, event_name, subscription_id, user_id, body, received_at, deliveries, applied_at, outcome";

constexpr const char* subscription_columns =
    "subscription_id, user_id, status, variant_id, customer_id, order_id, pause_free, renews_at, ends_at, "
    "updated_at_us, attributes, stored_at, pause_resumes_at, last_payment_at, refunded_until";

constexpr const char* order_columns =
    "order_id, user_id, variant_id, customer_id, status, total, refunded_amount, updated_at_us, credited_tokens, "
    "clawed_tokens, created_at";

StoredOrder order_from(Statement& row) {
    StoredOrder o;
    o.order_id = row.text(0);
    o.user_id = row.text(1);
    o.variant_id = row.text(2);
    o.customer_id = row.text(3);
    o.status = row.text(4);
    o.total = row.int64(5);
    o.refunded_amount = row.int64(6);
    o.updated_at_us = row.int64(7);
    o.credited_tokens = row.int64(8);
    o.clawed_tokens = row.int64(9);
    o.created_at = row.int64(10);
    return o;
}

StoredWebhookEvent event_from(Statement& row) {
    StoredWebhookEvent e;
    e.id = row.text(0);
    e.webhook_id = row.text(1);
    e.event_name = row.text(2);
    e.subscription_id = row.text(3);
    e.user_id = row.text(4);
    e.body = row.text(5);
    e.received_at = row.int64(6);
    e.deliveries = row.int64(7);
    e.applied_at = row.optional_int64(8);
    e.outcome = row.text(9);
    return e;
}

StoredSubscription subscription_from(Statement& row) {
    StoredSubscription s;
    s.subscription_id = row.text(0);
    s.user_id = row.text(1);
    s.status = row.text(2);
    s.variant_id = row.text(3);
    s.customer_id = row.text(4);
    s.order_id = row.text(5);
    s.pause_free = row.int64(6) != 0;
    s.renews_at = row.optional_int64(7);
    s.ends_at = row.optional_int64(8);
    s.updated_at_us = row.int64(9);
    s.attributes_json = row.text(10);
    s.stored_at = row.int64(11);
    s.pause_resumes_at = row.optional_int64(12);
    s.last_payment_at = row.optional_int64(13);
    s.refunded_until = row.optional_int64(14);
    return s;
}

}  // namespace

std::optional<StoredWebhookEvent> SqliteBillingTransaction::load_webhook_event(std::string_view id,
                                                                               std::string_view webhook_id) {
    static const std::string by_id = std::string("SELECT ") + event_columns + " FROM webhook_events WHERE id = ?";
    {
        auto row = connection_.prepare(by_id.c_str());
        row->bind(1, id);
        if (row->step()) return event_from(*row);
    }
    if (webhook_id.empty()) return std::nullopt;
    static const std::string by_webhook_id =
        std::string("SELECT ") + event_columns + " FROM webhook_events WHERE webhook_id = ? ORDER BY received_at LIMIT 1";
    auto row = connection_.prepare(by_webhook_id.c_str());
    row->bind(1, webhook_id);
    if (row->step()) return event_from(*row);
    return std::nullopt;
}

void SqliteBillingTransaction::insert_webhook_event(const StoredWebhookEvent& e) {
    auto insert = connection_.prepare(
        "INSERT INTO webhook_events (id, webhook_id, event_name, subscription_id, user_id, body, received_at, "
        "deliveries, applied_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    insert->bind(1, e.id).bind(2, e.webhook_id).bind(3, e.event_name).bind(4, e.subscription_id).bind(5, e.user_id);
    insert->bind(6, e.body).bind(7, e.received_at).bind(8, e.deliveries).bind(9, e.applied_at).bind(10, e.outcome).run();
}

void SqliteBillingTransaction::update_webhook_event(const StoredWebhookEvent& e) {
    auto update = connection_.prepare("UPDATE webhook_events SET deliveries = ?, applied_at = ?, outcome = ? WHERE id = ?");
    update->bind(1, e.deliveries).bind(2, e.applied_at).bind(3, e.outcome).bind(4, e.id).run();
    if (connection_.changes() != 1) throw StorageError("webhook event " + e.id + " vanished");
}

std::optional<StoredSubscription> SqliteBillingTransaction::load_subscription(std::string_view subscription_id) {
    static const std::string sql =
        std::string("SELECT ") + subscription_columns + " FROM subscriptions WHERE subscription_id = ?";
    auto row = connection_.prepare(sql.c_str());
    row->bind(1, subscription_id);
    if (!row->step()) return std::nullopt;
    return subscription_from(*row);
}

std::vector<StoredSubscription> SqliteBillingTransaction::subscriptions_of_user(std::string_view user_id) {
    static const std::string sql = std::string("SELECT ") + subscription_columns +
                                   " FROM subscriptions WHERE user_id = ? ORDER BY subscription_id";
    auto rows = connection_.prepare(sql.c_str());
    rows->bind(1, user_id);
    std::vector<StoredSubscription> out;
    while (rows->step()) out.push_back(subscription_from(*rows));
    return out;
}

std::optional<std::string> SqliteBillingTransaction::user_of_order(std::string_view order_id) {
    auto row = connection_.prepare("SELECT user_id FROM billing_orders WHERE order_id = ?");
    row->bind(1, order_id);
    if (!row->step()) return std::nullopt;
    return row->text(0);
}

void SqliteBillingTransaction::link_order(std::string_view order_id, std::string_view user_id, std::int64_t now) {
    auto insert = connection_.prepare(
        "INSERT INTO billing_orders (order_id, user_id, created_at) VALUES (?, ?, ?) ON CONFLICT (order_id) DO NOTHING");
    insert->bind(1, order_id).bind(2, user_id).bind(3, now).run();
}

void SqliteBillingTransaction::store_subscription(const StoredSubscription& s) {
    auto upsert = connection_.prepare(
        "INSERT INTO subscriptions (subscription_id, user_id, status, variant_id, customer_id, order_id, pause_free, "
        "renews_at, ends_at, updated_at_us, attributes, stored_at, pause_resumes_at, last_payment_at, refunded_until) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) "
        "ON CONFLICT (subscription_id) DO UPDATE SET user_id = ?2, status = ?3, variant_id = ?4, customer_id = ?5, "
        "order_id = ?6, pause_free = ?7, renews_at = ?8, ends_at = ?9, updated_at_us = ?10, attributes = ?11, "
        "stored_at = ?12, pause_resumes_at = ?13, last_payment_at = ?14, refunded_until = ?15");
    upsert->bind(1, s.subscription_id).bind(2, s.user_id).bind(3, s.status).bind(4, s.variant_id);
    upsert->bind(5, s.customer_id).bind(6, s.order_id).bind(7, std::int64_t{s.pause_free ? 1 : 0});
    upsert->bind(8, s.renews_at).bind(9, s.ends_at).bind(10, s.updated_at_us).bind(11, s.attributes_json);
    upsert->bind(12, s.stored_at).bind(13, s.pause_resumes_at).bind(14, s.last_payment_at).bind(15, s.refunded_until).run();
}

std::optional<StoredOrder> SqliteBillingTransaction::load_order(std::string_view order_id) {
    static const std::string sql = std::string("SELECT ") + order_columns + " FROM billing_orders WHERE order_id = ?";
    auto row = connection_.prepare(sql.c_str());
    row->bind(1, order_id);
    if (!row->step()) return std::nullopt;
    return order_from(*row);
}

void SqliteBillingTransaction::store_order(const StoredOrder& o) {
    auto upsert = connection_.prepare(
        "INSERT INTO billing_orders (order_id, user_id, variant_id, customer_id, status, total, refunded_amount, "
        "updated_at_us, credited_tokens, clawed_tokens, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
        "ON CONFLICT (order_id) DO UPDATE SET user_id = ?2, variant_id = ?3, customer_id = ?4, status = ?5, total = ?6, "
        "refunded_amount = ?7, updated_at_us = ?8, credited_tokens = ?9, clawed_tokens = ?10");
    upsert->bind(1, o.order_id).bind(2, o.user_id).bind(3, o.variant_id).bind(4, o.customer_id).bind(5, o.status);
    upsert->bind(6, o.total).bind(7, o.refunded_amount).bind(8, o.updated_at_us).bind(9, o.credited_tokens);
    upsert->bind(10, o.clawed_tokens).bind(11, o.created_at).run();
}

std::optional<std::string> SqliteBillingTransaction::user_of_customer(std::string_view customer_id) {
    if (customer_id.empty()) return std::nullopt;
    auto row = connection_.prepare(
        "SELECT user_id FROM subscriptions WHERE customer_id = ?1 "
        "UNION ALL SELECT user_id FROM billing_orders WHERE customer_id = ?1 LIMIT 1");
    row->bind(1, customer_id);
    if (!row->step()) return std::nullopt;
    return row->text(0);
}

}  // namespace tokenmeter::storage::sqlite
