// Billing's tables on the SQLite writer connection, inside whatever
// transaction the connection is in (SqliteTransaction hands this out).
#pragma once

#include "storage/billing_store.hpp"

namespace tokenmeter::storage::sqlite {

class Connection;

class SqliteBillingTransaction final : public BillingTransaction {
public:
    explicit SqliteBillingTransaction(Connection& connection) : connection_(connection) {}

    std::optional<StoredWebhookEvent> load_webhook_event(std::string_view id, std::string_view webhook_id) override;
    void insert_webhook_event(const StoredWebhookEvent& event) override;
    void update_webhook_event(const StoredWebhookEvent& event) override;
    std::optional<StoredSubscription> load_subscription(std::string_view subscription_id) override;
    std::vector<StoredSubscription> subscriptions_of_user(std::string_view user_id) override;
    std::optional<std::string> user_of_order(std::string_view order_id) override;
    void link_order(std::string_view order_id, std::string_view user_id, std::int64_t now) override;
    void store_subscription(const StoredSubscription& subscription) override;
    std::optional<StoredOrder> load_order(std::string_view order_id) override;
    void store_order(const StoredOrder& order) override;
    std::optional<std::string> user_of_customer(std::string_view customer_id) override;

private:
    Connection& connection_;
};

}  // namespace tokenmeter::storage::sqlite
