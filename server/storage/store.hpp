// LedgerStore: the ledger's durable state behind one small interface, with
// SQLite and PostgreSQL behind it (DESIGN.md §8). The ledger service never sees
// SQL; a store never sees ledger rules.
//
// Writes happen in a LedgerTransaction: everything a ledger change touches
// (usage_limits row, usage row, reservation, receipt, idempotency record) is
// written through one transaction and becomes durable together at commit().
// Storage failures are StorageError exceptions (the server's edge), turned
// into 503 storage_unavailable: nothing is acknowledged that is not durable.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "storage/billing_store.hpp"
#include "tokenmeter/pricing.hpp"
#include "tokenmeter/ledger.hpp"
#include "tokenmeter/period.hpp"

namespace tokenmeter::storage {

class StorageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The database rolled the transaction back because it collided with another
// one (a serialization failure, a deadlock, or two inserts of one key from
// different server processes). Nothing of it was applied, so running the
// whole transaction again is safe and gives the collision's real answer.
class StorageConflict : public StorageError {
public:
    using StorageError::StorageError;
};

// A user's account: plan, period anchor, receipt chain, and the balance of
// the current period (the usage_limits row of period_start).
struct Account {
    std::string user_id;
    std::string plan;
    int anchor_day = 1;
    Period period;
    Balance balance;
    std::int64_t seq = 0;          // receipts issued so far
    std::string last_receipt;      // the newest receipt, byte for byte
    std::optional<std::int64_t> plan_ends_at;  // the plan lapses to plan_after then
    std::string plan_after;
    // Reads before this instant may be answered from last_receipt; at or after
    // it a lazy change (rollover, expiry, plan end) may be due.
    std::int64_t attention_at = 0;
    std::int64_t created_at = 0;
};

struct StoredReservation {
    std::string id;
    std::string user_id;
    OperationKind operation = OperationKind::chat;
    std::string model;
    Multiplier multiplier;
    std::string catalog_version;
    Reservation reservation;  // amount, expiry, state
    std::int64_t created_at = 0;
    std::int64_t settled_at = 0;  // 0 while open
};

// One row of token_usage: one charge.
struct UsageEvent {
    std::int64_t id = 0;  // assigned by the store; orders events for pagination
    std::string event_id;
    std::string user_id;
    std::int64_t period_start = 0;
    OperationKind operation = OperationKind::chat;
    std::string model;
    std::int64_t input_tokens = 0;
    std::int64_t output_tokens = 0;
    std::int64_t raw_tokens = 0;
    Multiplier multiplier;
    std::int64_t charged_tokens = 0;
    std::int64_t avatars = 0;
    std::string reservation_id;
    std::string idempotency_key;
    std::string catalog_version;
    std::int64_t created_at = 0;
    // A commit after the reservation's expiry (within the grace period).
    bool late = false;
};

struct IdempotencyRecord {
    std::string caller;
    std::string key;
    std::string request_hash;
    int status = 0;
    std::string response;
    std::int64_t created_at = 0;
};

// Totals of one group of usage events (a day, a model or an operation).
struct UsageTotal {
    std::string group;
    std::int64_t events = 0;
    std::int64_t raw_tokens = 0;
    std::int64_t charged_tokens = 0;
    std::int64_t avatars = 0;
};

enum class SummaryGrouping : std::uint8_t { day, model, operation };

class LedgerTransaction {
public:
    virtual ~LedgerTransaction() = default;

    // The account and its current usage_limits row, locked for this
    // transaction where the database has row locks.
    virtual std::optional<Account> load_account(std::string_view user_id) = 0;
    // Inserts or updates the account row and its current usage_limits row.
    virtual void store_account(const Account& account) = 0;

    virtual std::optional<StoredReservation> load_reservation(std::string_view id) = 0;
    virtual void insert_reservation(const StoredReservation& reservation) = 0;
    virtual void update_reservation(const StoredReservation& reservation) = 0;
    // Open reservations of the user that are due at `now`, oldest first.
    virtual std::vector<StoredReservation> due_reservations(std::string_view user_id, std::int64_t now) = 0;
    // The earliest expiry among the user's open reservations.
    virtual std::optional<std::int64_t> next_expiry(std::string_view user_id) = 0;

    virtual void insert_usage(UsageEvent& event) = 0;  // sets event.id
    virtual void insert_receipt(std::string_view user_id, std::int64_t seq, std::string_view jws,
                                std::int64_t created_at) = 0;

    virtual std::optional<IdempotencyRecord> load_idempotency(std::string_view caller, std::string_view key) = 0;
    virtual void insert_idempotency(const IdempotencyRecord& record) = 0;
    // Deletes up to `max` records created before `before`; returns how many.
    virtual int prune_idempotency(std::int64_t before, int max) = 0;

    // Nested scopes so one failed command does not undo its batch.
    virtual void savepoint() = 0;
    virtual void rollback_to_savepoint() = 0;
    virtual void release_savepoint() = 0;

    // Billing's tables in this same transaction (storage/billing_store.hpp);
    // nullptr where the store has none yet.
    virtual BillingTransaction* billing() { return nullptr; }

    // Makes everything durable; throws StorageError if it could not. A
    // transaction destroyed without commit() rolls back.
    virtual void commit() = 0;
};

// What a read needs without the writer: the newest receipt and when it stops
// being the whole truth.
struct AccountView {
    std::string last_receipt;
    std::int64_t attention_at = 0;
};

class LedgerStore {
public:
    virtual ~LedgerStore() = default;

    // Begins a write transaction holding the write lock from the start
    // (SQLite BEGIN IMMEDIATE), so it cannot fail half-way on a lock upgrade.
    virtual std::unique_ptr<LedgerTransaction> begin() = 0;

    // Reads; safe from any thread, concurrently with the writer.
    virtual std::optional<AccountView> read_account(std::string_view user_id) = 0;
    // The user's usage events, newest first, with id < before_id (0: from the newest).
    virtual std::vector<UsageEvent> read_events(std::string_view user_id, std::int64_t before_id, int limit) = 0;
    virtual std::vector<UsageTotal> read_summary(std::string_view user_id, std::int64_t from, std::int64_t to,
                                                 SummaryGrouping grouping) = 0;
    // The receipts of a user from seq `from_seq`, oldest first (for audits and tests).
    virtual std::vector<std::string> read_receipts(std::string_view user_id, std::int64_t from_seq, int limit) = 0;

    // Liveness of the database (healthz).
    virtual bool healthy() = 0;
    // Applied schema version.
    virtual int schema_version() = 0;
};

}  // namespace tokenmeter::storage
