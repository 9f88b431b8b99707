// Ledger changes to one account inside a write transaction.
//
// AccountChanges opens an account the way every request needs it: created on
// first use, its plan lapsed when a plan end has passed, rolled into the period
// containing `now`, and its due reservations expired. Each of those is a ledger
// change with its own receipt (DESIGN.md §6), so every snapshot a client sees
// carries a receipt. The caller then applies its own change and issues its
// receipt; save() writes the account and its usage_limits row.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ledger/writer.hpp"
#include "storage/store.hpp"
#include "tokenmeter/catalog.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter::ledger {

// What every ledger change needs and nothing changes: catalog, key, rules.
struct LedgerConfig {
    const Catalog* catalog = nullptr;
    const SigningKey* signing_key = nullptr;
    std::int64_t reservation_ttl_seconds = 600;
    // A commit up to this long after the reservation's expiry is charged late.
    std::int64_t late_commit_grace_seconds = 24 * 3600;
    std::string default_plan = "free";
    std::string upgrade_url = "/v1/me/checkout";
};

class AccountChanges {
public:
    AccountChanges(const LedgerConfig& config, storage::LedgerTransaction& transaction, std::int64_t now_seconds);

    // The account of `user_id` with every due lazy change applied. The
    // reference stays valid for the life of this object.
    storage::Account& open(std::string_view user_id);

    // Issues the receipt of a change just applied to `account`: seq + 1,
    // chained by prev, signed, stored; the account is written back.
    void commit_change(storage::Account& account, std::string_view event);

    // Switches the plan inside the current period (limits change, usage kept),
    // with its receipt. `ends_at`/`after` describe a later lapse, if any.
    void change_plan(storage::Account& account, const Plan& plan, std::optional<std::int64_t> ends_at,
                     std::string_view after, std::optional<int> anchor_day);

    // The snapshot of an account's newest receipt (its numbers are the
    // receipt's claims), as JSON and as text.
    nlohmann::json usage(const storage::Account& account) const;
    std::string snapshot(const storage::Account& account) const;

    // Receipts to publish after the transaction is durable.
    std::vector<PublishedReceipt> published() const;

    std::int64_t now() const { return now_; }
    const LedgerConfig& config() const { return config_; }
    storage::LedgerTransaction& transaction() { return transaction_; }
    const Plan& plan_named(std::string_view id) const;

private:
    storage::Account create(std::string_view user_id);
    void lapse_plan(storage::Account& account);
    void roll_over(storage::Account& account);
    void expire_due(storage::Account& account);
    void refresh_attention(storage::Account& account);

    const LedgerConfig& config_;
    storage::LedgerTransaction& transaction_;
    std::int64_t now_;
    std::map<std::string, storage::Account, std::less<>> accounts_;
    std::map<std::string, bool, std::less<>> changed_;
    // The claims of each receipt signed here, so answering with a snapshot
    // does not parse back what was just serialized.
    std::map<std::string, std::pair<std::string, ReceiptClaims>, std::less<>> signed_;
};

}  // namespace tokenmeter::ledger
