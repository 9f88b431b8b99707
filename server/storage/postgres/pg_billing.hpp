// Billing's tables (storage/billing_store.hpp) on a PostgreSQL connection,
// inside the transaction it is in. Written on branch `billing` against the
// PostgreSQL store of branch `pg`; wiring it in (PgTransaction::billing(),
// migration 3, CMake) is described in storage/billing_store.hpp.
#pragma once

#include "storage/billing_store.hpp"

namespace tokenmeter::storage::postgres {

class Connection;

// The SQL of the billing migration (PostgreSQL's number 3: 2 is row-level security).
extern const char* const billing_tables_sql;

class PgBillingTransaction final : public BillingTransaction {
public:
    explicit PgBillingTransaction(Connection& connection) : connection_(connection) {}

    std::optional<StoredWebhookEvent> load_webhook_event(std::string_view id, std::string_view webhook_id) override;
    void insert_webhook_event(const StoredWebhookEvent& event) override;
    void update_webhook_event(const StoredWebhookEvent& event) override;
    std::optional<StoredSubscription> load_subscription(std::string_view subscription_id) override;
    std::vector<StoredSubscription> subscriptions_of_user(std::string_view user_id) override;
    std::optional<std::string> user_of_order(std::string_view order_id) override;
    void link_order(std::string_view order_id, std::string_view user_id, std::int64_t now) override;
    void store_subscription(const StoredSubscription& subscription) override;

private:
    Connection& connection_;
};

}  // namespace tokenmeter::storage::postgres
