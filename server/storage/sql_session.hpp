// The little both databases have in common, so the ledger's tables are
// written and read by one piece of code (ledger_tables.hpp) for SQLite and
// PostgreSQL alike: run a statement with parameters, read rows by column.
//
// SQL is written with PostgreSQL's placeholders ($1, $2, …); the SQLite
// session reads them as SQLite's numbered ones (?1, ?2, …). Where the two
// dialects differ (a day of a unix time, row locks) the caller asks which
// dialect it talks to.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace tokenmeter::storage {

enum class SqlDialect : std::uint8_t { sqlite, postgres };

// A parameter: NULL, an integer or text (borrowed for the call).
using SqlValue = std::variant<std::nullptr_t, std::int64_t, std::string_view>;

inline SqlValue sql_optional(const std::optional<std::int64_t>& value) {
    return value ? SqlValue(*value) : SqlValue(nullptr);
}

// Empty text is stored as NULL (optional text columns).
inline SqlValue sql_text_or_null(std::string_view value) {
    return value.empty() ? SqlValue(nullptr) : SqlValue(value);
}

class SqlRow {
public:
    virtual ~SqlRow() = default;
    virtual bool is_null(int column) const = 0;
    virtual std::string text(int column) const = 0;
    virtual std::int64_t int64(int column) const = 0;
    std::optional<std::int64_t> optional_int64(int column) const {
        return is_null(column) ? std::nullopt : std::optional<std::int64_t>(int64(column));
    }
};

class SqlSession {
public:
    virtual ~SqlSession() = default;
    virtual SqlDialect dialect() const = 0;
    // Runs a statement whose rows nobody reads. With `expected_changes` >= 0,
    // a statement that changes another number of rows fails the transaction
    // with a StorageConflict (PostgreSQL may check it only at the next query
    // or the commit: its writes are pipelined).
    virtual void execute(std::string_view sql, std::initializer_list<SqlValue> params,
                         std::int64_t expected_changes = -1) = 0;
    // Runs a query and calls `each` for every row, in order.
    virtual void query(std::string_view sql, std::initializer_list<SqlValue> params,
                       const std::function<void(const SqlRow&)>& each) = 0;
};

}  // namespace tokenmeter::storage
