// LedgerStore: the ledger's durable state (DESIGN.md §5, §8), with SQLite and
// PostgreSQL behind it. The ledger's rules never see SQL; a store never sees
// ledger rules.
//
// The record of truth is the journal: one row per ledger change, holding
// the change, the caller's idempotency key and request hash, and the change's
// signed receipt (stored once, only there). Beside it stay the two tables
// the original system had, written in the same transaction:
// - usage_limits, one row per user and period: the balance, and for the
//   current period also the account's terms (seq, anchor day, plan end, open
//   reservations), so an account is recovered from one row;
// - token_usage, one row per charge.
// Answers that are not ledger changes (refusals) are remembered for their
// idempotency keys in idempotency_keys, with their bytes.
//
// A batch of changes is one LedgerBatch: one transaction and one commit. An
// account row is written only where its stored seq is the one the writer
// started from, so a writer whose memory is stale (another process changed
// the account, or it loaded an old copy) fails the batch with a
// StorageConflict instead of overwriting, and the writer runs the batch
// again from fresh rows.
//
// Storage failures are StorageError exceptions (the server's edge), turned
// into 503 storage_unavailable: nothing is acknowledged that is not durable.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "storage/alert_outbox.hpp"
#include "storage/billing_store.hpp"
#include "tokenmeter/catalog.hpp"
#include "tokenmeter/pricing.hpp"
#include "tokenmeter/period.hpp"
#include "tokenmeter/state_machine.hpp"

namespace tokenmeter::storage {

class StorageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The database rolled the transaction back because it collided with another
// one (a serialization failure, a deadlock, a row another process inserted
// or changed first). Nothing of it was applied, so running the batch again
// from fresh rows is safe and gives the collision's real answer.
class StorageConflict : public StorageError {
public:
    using StorageError::StorageError;
};

// One journal row: one ledger change.
struct JournalRow {
    std::string user_id;
    std::int64_t seq = 0;
    std::string kind;            // ChangeKind's name
    std::string reservation_id;  // the reservation an authorize, commit or release is about
    std::string change;          // JSON: what the change did (for answers, replays and recovery)
    std::string receipt;         // its signed receipt, byte for byte
    std::string caller;          // the idempotency scope of the request that made it, if any
    std::string idempotency_key;
    std::string request_hash;
    std::int64_t created_at = 0;
};

// One usage_limits row: a user's period, and for the current period the
// account's terms. `seq` is the account's seq when the row was written: the
// guard a later write checks.
struct AccountRow {
    std::string user_id;
    std::string plan;
    Period period;
    Balance balance;
    std::int64_t seq = 0;
    int anchor_day = 1;
    std::optional<std::int64_t> plan_ends_at;
    std::string plan_after;
    std::int64_t created_at = 0;
    std::string reservations = "[]";  // JSON: the open reservations
    std::int64_t attention_at = 0;    // when a lazy change may be due (reads before it need no writer)
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
    std::int64_t cached_input_tokens = 0;  // a part of input_tokens
    std::int64_t reasoning_tokens = 0;     // a part of output_tokens
    std::int64_t raw_tokens = 0;
    Multiplier multiplier;
    std::int64_t charged_tokens = 0;
    std::int64_t avatars = 0;
    std::string reservation_id;
    std::string idempotency_key;
    std::string catalog_version;
    std::int64_t created_at = 0;
    bool late = false;  // a commit after the reservation's expiry (within the grace period)
};

// What a key was first answered with: a ledger change (rendered again from
// its journal row) or a stored answer (a refusal, with its bytes).
struct StoredAnswer {
    std::string request_hash;
    std::optional<JournalRow> change;
    int status = 0;
    std::string response;
};

// A refusal remembered for its idempotency key.
struct AnswerRecord {
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

// An account as stored: its current row and its newest receipt.
struct StoredAccount {
    AccountRow row;
    std::string head_receipt;
};

// What a read needs without the writer: the newest receipt and when it stops
// being the whole truth.
struct AccountView {
    std::string last_receipt;
    std::int64_t attention_at = 0;
};

// One transaction of the writer.
class LedgerBatch {
public:
    virtual ~LedgerBatch() = default;

    // Writes a usage_limits row: where `seq_before` is set, only over the
    // stored row of that user and period whose seq is that (else a
    // StorageConflict); where it is not, as a new row (a conflict if one exists).
    virtual void write_account(const AccountRow& row, std::optional<std::int64_t> seq_before) = 0;
    // The account as stored now, its row locked until the batch ends (where
    // the database has row locks; SQLite's batch holds the whole write
    // lock): for a writer that collided with another process, so its next
    // attempt decides from rows nobody else can change meanwhile.
    virtual std::optional<StoredAccount> lock_account(std::string_view user_id) = 0;
    // Checks that the account's current row still has `seq` (a decision
    // that changed nothing was made on fresh state), else a StorageConflict.
    virtual void check_account(std::string_view user_id, std::int64_t period_start, std::int64_t seq) = 0;
    virtual void append(const JournalRow& row) = 0;
    virtual void insert_charge(const UsageEvent& event) = 0;
    virtual void insert_answer(const AnswerRecord& answer) = 0;
    // Deletes up to `max` stored answers created before `before`; how many.
    virtual int prune_answers(std::int64_t before, int max) = 0;
    // Tells other server processes on this database which users changed
    // (PostgreSQL NOTIFY, sent when the transaction commits). A no-op where
    // only one process can write.
    virtual void notify(const std::vector<std::string>& user_ids) = 0;

    // Puts an alert for one endpoint into the outbox, in this transaction,
    // unless that (alert id, url) is there already (storage/alert_outbox.hpp).
    virtual void enqueue_alert(const OutboxRow& row) = 0;

    // Billing's tables in this same transaction (storage/billing_store.hpp).
    virtual BillingTransaction* billing() { return nullptr; }

    // Makes everything durable; throws StorageError if it could not. A batch
    // destroyed without commit() rolls back.
    virtual void commit() = 0;
};

class LedgerStore {
public:
    virtual ~LedgerStore() = default;

    // Begins a write transaction holding the write lock from the start
    // (SQLite BEGIN IMMEDIATE), so it cannot fail half-way on a lock upgrade.
    virtual std::unique_ptr<LedgerBatch> begin() = 0;

    // Reads; safe from any thread, concurrently with the writer.
    virtual std::optional<StoredAccount> read_account(std::string_view user_id) = 0;
    virtual std::optional<AccountView> read_view(std::string_view user_id) = 0;
    // The journal rows about a reservation (its authorize, and its commit or
    // release if any), oldest first; or, for a reservation made before the
    // journal existed, the one row the upgrade kept for it (kind "legacy").
    virtual std::vector<JournalRow> read_reservation_rows(std::string_view reservation_id) = 0;
    virtual std::optional<StoredAnswer> read_answer(std::string_view caller, std::string_view key) = 0;
    // The user's usage events, newest first, with id < before_id (0: from the newest).
    virtual std::vector<UsageEvent> read_events(std::string_view user_id, std::int64_t before_id, int limit) = 0;
    // Totals of the charges of one period.
    virtual std::vector<UsageTotal> read_summary(std::string_view user_id, std::int64_t period_start,
                                                 SummaryGrouping grouping) = 0;
    // Every charge of one user-period, oldest first (statements).
    virtual std::vector<UsageEvent> read_period_charges(std::string_view user_id, std::int64_t period_start) = 0;
    // A user's journal from seq `from_seq`, oldest first (receipt chain audits).
    virtual std::vector<JournalRow> read_journal(std::string_view user_id, std::int64_t from_seq, int limit) = 0;
    // The receipts alone (what audits and tests walk).
    std::vector<std::string> read_receipts(std::string_view user_id, std::int64_t from_seq, int limit) {
        std::vector<std::string> receipts;
        for (JournalRow& row : read_journal(user_id, from_seq, limit)) receipts.push_back(std::move(row.receipt));
        return receipts;
    }

    // Calls `changed` with the ids of users that a server process changed,
    // on a thread of the store's, for as long as the store lives: how the
    // live streams held by one server hear of changes made through another
    // on the same database (PostgreSQL LISTEN). A store that only one
    // process writes has nothing to tell, and calls nothing.
    using ChangedUsers = std::function<void(const std::vector<std::string>& user_ids)>;
    virtual void watch_changes(ChangedUsers changed) { (void)changed; }
    // Stops calling; returns once no call is running.
    virtual void stop_watching() {}

    // The alert outbox (storage/alert_outbox.hpp), for the courier that
    // delivers it and for `tokenmeter webhooks`. Each call is a short
    // transaction of its own, never a ledger batch.
    //
    // Pending rows due at `now` (at most `max`), their next attempt moved to
    // `lease_until` while they are delivered.
    virtual std::vector<OutboxRow> take_due_alerts(std::int64_t now, std::int64_t lease_until, int max) = 0;
    virtual void mark_alert_delivered(std::int64_t row_id, std::int64_t at) = 0;
    // A failed attempt: due again at `next_attempt_at`, or (absent) given up.
    virtual void mark_alert_failed(std::int64_t row_id, std::optional<std::int64_t> next_attempt_at,
                                   std::string_view error) = 0;
    // The outbox, newest first.
    virtual std::vector<OutboxRow> list_alerts(int limit) = 0;
    // Every row of the alert pending again, due at `now`, retried until
    // `retry_until`; how many rows the alert has (0: no such alert).
    virtual int replay_alert(std::string_view alert_id, std::int64_t now, std::int64_t retry_until) = 0;

    // Liveness of the database (healthz).
    virtual bool healthy() = 0;
    // Applied schema version.
    virtual int schema_version() = 0;
};

}  // namespace tokenmeter::storage
