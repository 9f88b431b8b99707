// The SQLite schema as numbered migrations. A migration is never edited once
// released: changes come as a new number.
#pragma once

#include <span>

namespace tokenmeter::storage::sqlite {

class Connection;

struct Migration {
    int version;
    const char* description;
    const char* sql;
    // What SQL alone cannot do (SQLite has no base64), run after `sql` in
    // the same transaction, then `sql_after`.
    void (*step)(Connection& connection) = nullptr;
    const char* sql_after = nullptr;
};

std::span<const Migration> migrations();

}  // namespace tokenmeter::storage::sqlite
