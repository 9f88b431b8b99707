// The request bodies of the service calls (DESIGN.md §7): authorize, commit,
// release and record, read from JSON into the ledger's requests.
//
// These are the parsers the API runs on untrusted bodies, apart from the
// HTTP plumbing around them, so the fuzzers (tests/fuzz/) call exactly the
// code the server runs. Every error is bad input (400); unknown fields are
// refused; counts are non-negative integers up to tokens_per_request_max.
#pragma once

#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tokenmeter/catalog.hpp"
#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"
#include "tokenmeter/state_machine.hpp"
#include "tokens/token_counter.hpp"

namespace tokenmeter::http {

// A billion tokens is a thousand times the largest context window, so no real
// request comes near it, and the sum of two such counts stays far below
// limits::count_max (the ledger adds input and output without a check).
inline constexpr std::int64_t tokens_per_request_max = 1'000'000'000;

// A service call's body: a JSON object. Errors: malformed_json, invalid_body.
Result<nlohmann::json, Error> service_body(std::string_view text);

// An authorize request as parsed: the command (its reservation id is made
// only when it runs) and whether the input count is exact.
struct AuthorizeRequest {
    AuthorizeCommand command;
    bool exact = true;
};

// authorize: the user, operation and model, and the input as input_tokens,
// or counted by `counter` from text or chat messages with the model's
// tokenizer. The reservation id is left empty (made when it runs).
Result<AuthorizeRequest, Error> authorize_request(const nlohmann::json& body, const Catalog& catalog,
                                                          tokens::TokenCounter& counter);

// commit: the reservation and, for tokens, the counts the provider reported,
// with the optional parts cached_input_tokens (of input_tokens) and
// reasoning_tokens (of output_tokens); a part larger than its whole is
// invalid_count.
Result<CommitCommand, Error> commit_request(const nlohmann::json& body);

// release: the reservation alone.
Result<ReleaseCommand, Error> release_request(const nlohmann::json& body);

// record: a one-shot charge, with the same optional parts as commit.
Result<RecordCommand, Error> record_request(const nlohmann::json& body, const Catalog& catalog);

}  // namespace tokenmeter::http
