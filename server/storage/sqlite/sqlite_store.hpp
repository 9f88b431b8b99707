// The SQLite LedgerStore (the default: `--db sqlite:PATH`).
//
// One writer connection, used by one thread at a time through begin(), and a
// pool of reader connections for concurrent reads (WAL). Commits are durable
// (synchronous=FULL). Versioned migrations run at open.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/store.hpp"

namespace tokenmeter::storage::sqlite {

class Connection;

struct SqliteOptions {
    std::string path;
    // How long a transaction waits for another process's lock before the
    // request fails closed with 503 (SQLite's busy timeout).
    int busy_timeout_ms = 2000;
};

class SqliteStore final : public LedgerStore {
public:
    // Opens or creates the database and applies pending migrations.
    explicit SqliteStore(SqliteOptions options);
    ~SqliteStore() override;

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
    bool healthy() override;
    int schema_version() override;

    // Applies migrations to the database at `path`; returns the versions applied.
    static std::vector<int> migrate(const std::string& path);

    // What SQLite says of the writer connection's durability (PRAGMA
    // journal_mode and PRAGMA synchronous), so a test can hold the promise
    // above to account: "wal" and 2 (FULL).
    struct Durability {
        std::string journal_mode;
        int synchronous = -1;  // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
    };
    Durability writer_durability();

private:
    class ReaderLease;
    ReaderLease lease_reader();
    template <typename Read>
    auto read(Read&& read_with);
    void return_reader(std::unique_ptr<Connection> connection);
    // A short write transaction of its own on the writer connection (the
    // outbox's bookkeeping), between the ledger's batches.
    template <typename Write>
    auto write(Write&& write_with);

    SqliteOptions options_;
    std::unique_ptr<Connection> writer_;
    std::mutex writer_mutex_;  // begin() hands the writer to one transaction at a time
    std::mutex readers_mutex_;
    std::vector<std::unique_ptr<Connection>> readers_;
};

}  // namespace tokenmeter::storage::sqlite
