// The SQLite schema as numbered migrations. A migration is never edited once
// released: changes come as a new number.
#pragma once

#include <span>

namespace tokenmeter::storage::sqlite {

struct Migration {
    int version;
    const char* description;
    const char* sql;
};

std::span<const Migration> migrations();

}  // namespace tokenmeter::storage::sqlite
