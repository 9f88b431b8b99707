// The estimate rule: what an operation will reserve, sized before it runs.
//
// One rule for every shell: the server applies it to the body of
// POST /v1/usage/authorize, the browser SDK to estimate()'s argument, so a
// preview and a reservation are refused for the same reasons and sized from
// the same count. The rule, in the order it is checked (the first problem
// found is the one reported):
//   1. the operation is one the core prices (unknown_operation);
//   2. a model, when given, is in the catalog (unknown_model);
//   3. an avatar takes no token counts: no input of any kind and no
//      max_output_tokens (tokens_not_allowed);
//   4. any other operation needs a model (missing_field) and exactly one of
//      input_tokens, text or messages (missing_field);
//   5. max_output_tokens, when given, is usable (the shell's conversion
//      error);
//   6. the input is usable: input_tokens and text as converted by the shell;
//      messages only for chat (invalid_value), then as converted;
//   7. text and messages are counted with the model's tokenizer; input_tokens
//      is taken as given, exact unless the model's tokenizer is an estimate.
// Whether the model offers the operation, and whether the counts fit, is
// price()'s to say (pricing.hpp): the server prices when it reserves, with
// the catalog version in force then.
//
// Messages name the fields as the HTTP API spells them (input_tokens), the
// server's answers being the reference.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenmeter/catalog.hpp"
#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"
#include "tokenmeter/token_count.hpp"
#include "tokenmeter/tokenizer.hpp"

namespace tokenmeter {

// A member of a request as the caller sent it: absent (nullopt), or given
// with either its value or why the value is unusable (a string that is not a
// string, a count that is not a count). Each shell converts its own
// representation (JSON, JavaScript values) and keeps the conversion's error
// here, so the rule, not the shell, decides which problem is reported first.
template <typename T>
using RequestField = std::optional<Result<T, Error>>;

// What a caller asks to have sized. `text` is a view of the caller's UTF-8
// bytes and must outlive the call.
struct EstimateRequest {
    std::string operation;
    RequestField<std::string> model;  // an empty id counts as no model
    RequestField<std::int64_t> input_tokens;
    RequestField<std::string_view> text;
    RequestField<std::vector<ChatMessage>> messages;
    RequestField<std::int64_t> max_output_tokens;
};

// The operation as it will be reserved: priced with max_output_tokens as its
// output (price(), pricing.hpp), so the model's token class weights apply:
// the input weight to the input, the output weight to max_output_tokens
// (no part is known to be cached or reasoning before the call).
struct Estimate {
    OperationKind operation = OperationKind::chat;
    const Model* model = nullptr;  // in the catalog given to estimate(); null for an avatar without one
    std::int64_t input_tokens = 0;
    std::int64_t max_output_tokens = 0;
    bool exact = true;  // whether input_tokens is an exact count
};

// Where a shell's encodings come from: compiled into the server, fetched by
// the browser. (An interface rather than a std::function: the browser pays
// for every byte, and std::function brings RTTI and allocation code along.)
class EncodingSource {
public:
    // The encoding o200k_base or cl100k_base, or why it is not at hand (the
    // browser's encoding_not_loaded).
    virtual Result<const Encoding*, Error> encoding(TokenizerKind encoding) const = 0;

protected:
    ~EncodingSource() = default;
};

// Applies the rule above. Errors: unknown_operation, unknown_model,
// tokens_not_allowed, missing_field, invalid_value, a field's own conversion
// error, and counting's (the source's, text_too_large, invalid_utf8).
Result<Estimate, Error> estimate(const Catalog& catalog, const EstimateRequest& request,
                                 const EncodingSource& encodings);

}  // namespace tokenmeter
