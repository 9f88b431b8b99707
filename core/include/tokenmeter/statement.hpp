// Statements: every charge of one user's period with the receipts that back
// it (DESIGN.md §6, §7 GET /v1/me/statement), checked offline by anyone who
// holds the server's public keys. The one verifier: `tokenmeter verify` calls
// it natively and the wasm SDK can call the same function in a browser.
//
// The JSON statement (the server writes it; this file reads it):
//   {"format": "tokenmeter-statement/1",
//    "user_id", "period": {"start","end"}, "plan",
//    "anchor":   the receipt just before the period's first one (compact JWS),
//                or null when the period's first receipt is the user's seq 1,
//    "receipts": [every receipt of the user whose period_start is the
//                 period's, in seq order, compact JWS],
//    "charges":  [{"id","operation","model","input_tokens","output_tokens",
//                  "charged_tokens","avatars","reservation_id","created_at","late",
//                  "catalog_version","seq"}]   seq: the receipt of the commit
//                            or record that made the charge,
//    "totals":   {"tokens_used","avatars_used"},
//    "keys":     the server's JWKS (as GET /v1/keys serves it)}
//
// What verify_statement proves, in this order (the first failure is the
// answer, with its code):
//   malformed       not such a document (JSON, members, types), or a
//                   receipt that is not a well-formed receipt;
//   bad_signature   a receipt (the anchor too) whose signature does not
//                   verify under the keys, or signed by a key not among them;
//   wrong_user      a receipt whose `sub` is not the statement's user;
//   period_mismatch a receipt of another period in `receipts`, an anchor
//                   that is not of an earlier period, or a statement whose
//                   period end or plan is not its last receipt's;
//   broken_chain    the receipts are not seq n, n+1, … each with `prev` the
//                   digest of the one before; the first one's `prev` is the
//                   anchor's digest (and its seq the anchor's + 1), or, with
//                   no anchor, it is seq 1 (whose `prev` is empty);
//   charge_mismatch a charge naming no commit/record receipt of the
//                   statement, two charges on one receipt, a commit/record
//                   receipt without its charge, a receipt whose used tokens
//                   or avatars moved by other than its charge's
//                   charged_tokens and avatars (or moved at all when it is
//                   not a charge), a charge whose catalog_version is not
//                   the one its receipt claims, or totals that are not the
//                   sum of the charges and the last receipt's
//                   tokens_used/avatars_used.
// The receipts sign the balances, not the charges' descriptive fields: a
// charge's model, operation and token counts are the server's word, its
// charged_tokens and avatars are proved by the move of `used` on its receipt,
// its catalog_version by its receipt's claim.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenmeter/ed25519.hpp"
#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter {

inline constexpr std::string_view statement_format = "tokenmeter-statement/1";

// What a statement that verified says.
struct StatementSummary {
    std::string user_id;
    std::string plan;
    std::int64_t period_start = 0;
    std::int64_t period_end = 0;
    std::int64_t first_seq = 0;  // of the period's receipts
    std::int64_t last_seq = 0;
    std::size_t receipts = 0;
    bool anchored = false;  // the first receipt is chained to an anchor (else it is seq 1)
    std::size_t charges = 0;
    std::int64_t tokens_used = 0;
    std::int64_t avatars_used = 0;
};

// Verifies a JSON statement against `keys` (the statement's own "keys" are
// not consulted: pass statement_keys() to use them). Errors as above.
Result<StatementSummary, Error> verify_statement(std::string_view json_text, const std::vector<VerificationKey>& keys);

// The keys the statement embeds (its "keys" JWKS). Errors: malformed.
Result<std::vector<VerificationKey>, Error> statement_keys(std::string_view json_text);

// The `period` parameter of GET /v1/me/statement: "current" (or empty) is
// nullopt; an RFC 3339 date ("2025-11-24", midnight UTC) or instant is its
// unix seconds. Errors: invalid_value.
Result<std::optional<std::int64_t>, Error> parse_statement_period(std::string_view text);

}  // namespace tokenmeter
