// A thin RAII layer over libpq: a connection that prepares each statement
// once, parameters passed as text, and results read by row and column. Every
// failure becomes a StorageError carrying PostgreSQL's message; the ones a
// rerun of the transaction resolves (SQLSTATE 40001, 40P01, 23505) become a
// StorageConflict.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "storage/store.hpp"

namespace tokenmeter::storage::postgres {

// Statement parameters, in order ($1, $2, ...), as PostgreSQL's text format.
class Params {
public:
    Params& add(std::string_view value);
    Params& add(std::int64_t value);
    Params& add(int value) { return add(static_cast<std::int64_t>(value)); }
    Params& add(const std::optional<std::int64_t>& value);
    Params& add_null();
    // An empty string is stored as NULL (optional text columns).
    Params& add_or_null(std::string_view value);

    int size() const { return static_cast<int>(values_.size()); }
    std::vector<const char*> pointers() const;

private:
    std::vector<std::optional<std::string>> values_;
};

class Rows {
public:
    explicit Rows(PGresult* result) : result_(result, &PQclear) {}

    int size() const { return PQntuples(result_.get()); }
    bool empty() const { return size() == 0; }
    bool is_null(int row, int column) const { return PQgetisnull(result_.get(), row, column) == 1; }
    std::string text(int row, int column) const;
    std::int64_t int64(int row, int column) const;
    std::optional<std::int64_t> optional_int64(int row, int column) const;
    // The command tag ("COMMIT", "ROLLBACK", "UPDATE 1", ...).
    std::string command() const { return PQcmdStatus(result_.get()); }
    std::int64_t affected() const;

private:
    std::unique_ptr<PGresult, decltype(&PQclear)> result_;
};

class Connection {
public:
    // Connects to `url` (postgres://... or a conninfo string); throws
    // StorageError if it cannot.
    explicit Connection(const std::string& url);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Runs one parameterized statement, prepared on this connection the first
    // time it is seen (the SQL text is the cache key).
    Rows run(const std::string& sql, const Params& params = {});
    // Runs one or more statements without parameters (DDL, transaction control).
    Rows exec(const std::string& sql);

    // Pipeline mode, for a transaction: a statement whose result nobody
    // needs (an INSERT, an UPDATE, a SAVEPOINT) is sent with defer() and
    // not waited for; the next run() sends it along and checks every
    // deferred statement's result, in order, before returning its own. A
    // batch of ledger changes then waits for the database at its reads only,
    // not at each of its writes. An error in a deferred statement surfaces at
    // that next run(): the transaction fails as a whole either way.
    void enter_pipeline();
    void leave_pipeline();
    // Sends a statement without waiting; with `affected_expected` >= 0, the
    // number of rows it must change.
    void defer(const std::string& sql, const Params& params = {}, std::int64_t affected_expected = -1);

    // Notifications (LISTEN): waits up to `wait_ms` for input, then returns
    // the payloads that arrived; throws StorageError when the connection fails.
    std::vector<std::string> wait_for_notifications(int wait_ms);

    // Whether the connection is gone (server restarted, network failed, or
    // its pipeline lost track): a broken connection is dropped by the pool,
    // never reused.
    bool broken() const { return unusable_ || PQstatus(connection_) != CONNECTION_OK; }

private:
    struct Deferred {
        std::string what;             // the statement, for messages
        std::string prepared_sql;     // set when this entry prepares a statement
        std::int64_t affected_expected = -1;
    };

    Rows checked(PGresult* result, std::string_view what);
    const std::string& prepared_name(const std::string& sql);
    void send(const std::string& sql, const Params& params, std::int64_t affected_expected);
    Rows sync_and_collect();

    PGconn* connection_ = nullptr;
    std::unordered_map<std::string, std::string> prepared_;  // sql -> statement name
    bool pipelined_ = false;
    bool unusable_ = false;
    std::vector<Deferred> deferred_;  // sent, results not read yet
};

}  // namespace tokenmeter::storage::postgres
