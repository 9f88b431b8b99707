// A thin RAII layer over the SQLite C API: a connection with a cache of
// prepared statements, and statements with typed binds and columns. Every
// failure becomes a StorageError carrying SQLite's message.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "storage/store.hpp"

namespace tokenmeter::storage::sqlite {

class Statement {
public:
    Statement(sqlite3* db, sqlite3_stmt* statement) : db_(db), statement_(statement) {}
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    // Binds by 1-based index; returns *this to chain.
    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, std::string_view value);
    Statement& bind_null(int index);
    Statement& bind(int index, const std::optional<std::int64_t>& value);

    // Steps once: true if a row is available.
    bool step();
    // Steps to completion of a statement that returns no rows.
    void run();

    bool is_null(int column) const;
    std::int64_t int64(int column) const;
    std::optional<std::int64_t> optional_int64(int column) const;
    std::string text(int column) const;

    // Resets bindings and state, ready for reuse from the cache.
    void reset();

private:
    [[noreturn]] void fail(std::string_view what) const;
    sqlite3* db_;
    sqlite3_stmt* statement_;
};

// Resets a cached statement when the scope ends, however it ends.
class StatementScope {
public:
    explicit StatementScope(Statement& statement) : statement_(statement) {}
    ~StatementScope() { statement_.reset(); }
    StatementScope(const StatementScope&) = delete;
    StatementScope& operator=(const StatementScope&) = delete;
    Statement* operator->() { return &statement_; }
    Statement& operator*() { return statement_; }

private:
    Statement& statement_;
};

class Connection {
public:
    // Opens (creating if asked) the database file in WAL mode with durable
    // commits (synchronous=FULL) and the given busy timeout.
    Connection(const std::string& path, bool create, int busy_timeout_ms);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Runs SQL without results (may hold several statements).
    void exec(std::string_view sql);
    // A prepared statement for this SQL text, prepared once per connection.
    StatementScope prepare(const char* sql);
    // The same for SQL written with PostgreSQL's placeholders ($1, $2, ...),
    // which SQLite reads as its numbered ones (?1, ?2, ...); cached by text.
    StatementScope prepare_numbered(std::string_view sql);

    sqlite3* handle() { return db_; }
    std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
    int changes() const { return sqlite3_changes(db_); }

private:
    sqlite3* db_ = nullptr;
    std::unordered_map<const char*, std::unique_ptr<Statement>> statements_;
    std::unordered_map<std::string, std::unique_ptr<Statement>> numbered_;
};

}  // namespace tokenmeter::storage::sqlite
