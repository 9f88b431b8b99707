#pragma once

#include "cli/commands.hpp"

namespace tokenmeter::cli {

// tokenmeter verify FILE [--keys JWKS_FILE]: checks a JSON statement
// (GET /v1/me/statement) offline with core's verify_statement: the receipts'
// signatures, their prev chain, and the charges against the balances. Prints
// a one-line summary and exits 0, or the failure's code and reason and exits
// 1; usage errors and unreadable files exit 2.
int verify_command(Args args, Streams streams);

}  // namespace tokenmeter::cli
