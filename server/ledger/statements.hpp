// Statements (GET /v1/me/statement, DESIGN.md §6-§7): every charge of one
// user-period with the receipts that back it, read from the journal and
// token_usage, rendered as the JSON that verify_statement (core/statement.hpp)
// checks offline, or as CSV for spreadsheets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/ledger_service.hpp"
#include "storage/store.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter::ledger {

// A charge and the seq of the commit or record receipt that made it (0 if
// the journal holds none: the statement then fails verification, as it should).
struct StatementCharge {
    storage::UsageEvent event;
    std::int64_t seq = 0;
};

struct Statement {
    std::string user_id;
    ReceiptClaims last;                 // claims of the period's newest receipt
    std::optional<std::string> anchor;  // the receipt before the period's first, if any
    std::vector<std::string> receipts;  // the period's, in seq order
    std::vector<std::int64_t> seqs;     // theirs
    std::vector<StatementCharge> charges;
};

enum class StatementOutcome : std::uint8_t { done, not_found, unavailable };

struct StatementReply {
    StatementOutcome outcome = StatementOutcome::done;
    Statement statement;
};

// The statement of the period starting at `period_start` (nullopt: the
// current period, brought up to date first, as GET /v1/me/usage does).
// not_found: the user has no period starting there.
StatementReply read_statement(LedgerService& ledger, const std::string& user_id, std::optional<std::int64_t> period_start);

// The JSON statement (format tokenmeter-statement/1); `jwks_json` is GET /v1/keys's body.
std::string statement_json(const Statement& statement, std::string_view jwks_json);
// One row per charge: its fields, the receipt's seq and the receipt itself.
std::string statement_csv(const Statement& statement);

}  // namespace tokenmeter::ledger
