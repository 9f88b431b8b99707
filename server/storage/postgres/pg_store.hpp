// The PostgreSQL LedgerStore (`--db postgres://…`): how a deployment outgrows
// one machine, several stateless tokenmeter processes on one database.
//
// Exactness across processes comes from the database, not from the process:
// load_account() locks the account's rows (SELECT … FOR UPDATE) for the rest
// of the transaction, so the check and the change of a balance happen under
// one lock, and a new account is a plain INSERT that collides (23505) if
// another process created it first. Collisions surface as StorageConflict and
// the writer reruns the whole batch. Commits are durable
// (synchronous_commit=on on every connection); a server with fsync=off is
// refused at start.
#pragma once

#include <chrono>
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

    std::unique_ptr<LedgerTransaction> begin() override;
    std::optional<AccountView> read_account(std::string_view user_id) override;
    std::vector<UsageEvent> read_events(std::string_view user_id, std::int64_t before_id, int limit) override;
    std::vector<UsageTotal> read_summary(std::string_view user_id, std::int64_t from, std::int64_t to,
                                         SummaryGrouping grouping) override;
    std::vector<std::string> read_receipts(std::string_view user_id, std::int64_t from_seq, int limit) override;
    bool healthy() override;
    int schema_version() override;

    // Applies migrations to the database at `url`; returns the versions applied.
    static std::vector<int> migrate(const std::string& url);

private:
    template <typename Read>
    auto read(Read&& read_with);

    PgOptions options_;
    ConnectionPool pool_;
};

// Whether `url` names a PostgreSQL database (postgres:// or postgresql://).
bool is_postgres_url(const std::string& url);

// `url` fit for a log line: a password in it is replaced by "***".
std::string redact_password(const std::string& url);

}  // namespace tokenmeter::storage::postgres
