// The ledger operations of the API (DESIGN.md §5, §7) as jobs for the writer:
// authorize, commit, release, record, and opening a user's snapshot. Requests
// arrive validated in shape (types, unknown fields); these functions apply the
// ledger rules and answer with the API's JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ledger/account_changes.hpp"
#include "ledger/writer.hpp"
#include "tokenmeter/catalog.hpp"

namespace tokenmeter::ledger {

struct AuthorizeRequest {
    std::string user_id;
    std::string operation;
    std::string model;
    std::int64_t input_tokens = 0;       // counted from text/messages when those were sent
    std::int64_t max_output_tokens = 0;
    bool exact = true;                   // whether input_tokens is an exact count
    std::string idempotency_key;
};

struct CommitRequest {
    std::string reservation_id;
    std::optional<std::int64_t> input_tokens;
    std::optional<std::int64_t> output_tokens;
    std::string idempotency_key;
};

struct ReleaseRequest {
    std::string reservation_id;
};

struct RecordRequest {
    std::string user_id;
    std::string operation;
    std::string model;
    std::int64_t input_tokens = 0;
    std::int64_t output_tokens = 0;
    std::string idempotency_key;
};

Outcome authorize(AccountChanges& changes, const AuthorizeRequest& request);
Outcome commit(AccountChanges& changes, const CommitRequest& request);
Outcome release(AccountChanges& changes, const ReleaseRequest& request);
Outcome record(AccountChanges& changes, const RecordRequest& request);
// The user's snapshot after any due lazy change (first use, rollover, expiry).
Outcome open_snapshot(AccountChanges& changes, const std::string& user_id);

}  // namespace tokenmeter::ledger
