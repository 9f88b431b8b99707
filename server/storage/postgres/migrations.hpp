// The PostgreSQL schema as numbered migrations: the SQLite schema's tables in
// PostgreSQL's types, then what only PostgreSQL has (row-level security for
// Supabase). A migration is never edited once released: changes come as a new
// number.
#pragma once

#include <span>

namespace tokenmeter::storage::postgres {

struct Migration {
    int version;
    const char* description;
    const char* sql;
};

std::span<const Migration> migrations();

}  // namespace tokenmeter::storage::postgres
