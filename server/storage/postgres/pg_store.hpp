// The PostgreSQL LedgerStore (`--db postgres://…`): how a deployment outgrows
// one machine, several stateless tokenmeter processes on one database.
//
// Each process's writer decides from its own memory of the accounts, which
// another process may have made stale. Exactness comes from the database: an
// account row is written only where its seq is the one the writer decided
// from (a guarded UPDATE; a new account or period is a plain INSERT), and a
// journal row's (user, seq) and (caller, key) are unique. A stale writer's
// batch therefore collides (a StorageConflict: 0 rows updated, 23505, or a
// serialization failure) and is run again from fresh rows; it never
// overwrites another process's change. Each batch NOTIFYs the users it
// changed, so the other processes' live streams hear of them. Commits are
// durable (synchronous_commit=on on every connection); a server with
// fsync=off is refused at start.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "storage/postgres/pg_pool.hpp"
#include "storage/store.hpp"

namespace tokenmeter::storage::postgres {

struct PgOptions {
    std::string url;
    // Connections shared by the writer (one at a time) and the readers.
    int connections_max = 16;
    // How long a request waits for a free connection before it fails with 503.
    std::chrono::milliseconds connection_wait_max{5000};
};

class PgStore final : public LedgerStore {
public:
    // Connects, refuses a server with fsync=off, applies pending migrations.
    explicit PgStore(PgOptions options);
    ~PgStore() override;

    std::unique_ptr<LedgerBatch> begin() override;
    std::optional<StoredAccount> read_account(std::string_view user_id) override;
    std::optional<AccountView> read_view(std::string_view user_id) override;
    std::vector<JournalRow> read_reservation_rows(std::string_view reservation_id) override;
    std::optional<StoredAnswer> read_answer(std::string_view caller, std::string_view key) override;
    std::vector<UsageEvent> read_events(std::string_view user_id, std::int64_t before_id, int limit) override;
    std::vector<UsageTotal> read_summary(std::string_view user_id, std::int64_t period_start,
                                         SummaryGrouping grouping) override;
    std::vector<UsageEvent> read_period_charges(std::string_view user_id, std::int64_t period_start) override;
    std::vector<JournalRow> read_journal(std::string_view user_id, std::int64_t from_seq, int limit) override;
    std::vector<OutboxRow> take_due_alerts(std::int64_t now, std::int64_t lease_until, int max) override;
    void mark_alert_delivered(std::int64_t row_id, std::int64_t at) override;
    void mark_alert_failed(std::int64_t row_id, std::optional<std::int64_t> next_attempt_at,
                           std::string_view error) override;
    std::vector<OutboxRow> list_alerts(int limit) override;
    int replay_alert(std::string_view alert_id, std::int64_t now, std::int64_t retry_until) override;
    void watch_changes(ChangedUsers changed) override;
    void stop_watching() override;
    bool healthy() override;
    int schema_version() override;

    // Applies migrations to the database at `url`; returns the versions applied.
    static std::vector<int> migrate(const std::string& url);

private:
    template <typename Read>
    auto read(Read&& read_with);

    void listen(ChangedUsers changed);

    PgOptions options_;
    ConnectionPool pool_;
    std::atomic<bool> stopping_{false};
    std::thread listener_;
};

// The channel batches NOTIFY on with the ids of the users they changed.
inline constexpr std::string_view change_channel = "tokenmeter_ledger";

// Whether `url` names a PostgreSQL database (postgres:// or postgresql://).
bool is_postgres_url(const std::string& url);

// `url` fit for a log line: a password in it is replaced by "***".
std::string redact_password(const std::string& url);

}  // namespace tokenmeter::storage::postgres
