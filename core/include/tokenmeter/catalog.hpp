// The catalog: operations, models and plans, one JSON document with a version.
//
// Every number the pricing uses is configuration (DESIGN.md §3); this module
// parses and validates the document and answers "what does this cost?". The
// cost is integer arithmetic only: a multiplier is an exact rational and the
// charged count is ceil(raw * numerator / denominator).
//
// Invariants of a parsed Catalog: ids are unique and well-formed; every model
// names a known tokenizer and only known operations; multipliers are reduced
// positive rationals with terms <= limits::multiplier_term_max; the plans
// `free` and `pro` exist (the subscription rules of §9 map onto them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter {

struct Multiplier {
    std::int64_t numerator = 1;
    std::int64_t denominator = 1;
};

bool operator==(const Multiplier&, const Multiplier&);

// "5/2", "3" — the canonical text of a multiplier.
std::string to_string(const Multiplier& multiplier);

// Parses "3", "5/2" or "2.5" into a reduced positive rational.
Result<Multiplier, Error> parse_multiplier(std::string_view text);

// The operations the core knows how to price. A catalog configures them; it
// cannot invent new ones, because how raw tokens are counted is code.
enum class OperationKind : std::uint8_t {
    chat = 0,       // raw = input + output tokens, times the model multiplier
    embedding = 1,  // raw = document tokens (no output), times the model multiplier
    avatar = 2,     // a flat token charge plus avatars from the avatar quota
};

std::string_view to_string(OperationKind kind);
std::optional<OperationKind> operation_kind_from_string(std::string_view id);

struct Operation {
    OperationKind kind = OperationKind::chat;
    std::int64_t tokens_flat = 0;  // avatar only
    std::int64_t avatars = 0;      // avatar only
};

// The tokenizers a model may name. `estimate` is for models without a public
// tokenizer (Claude): counts are approximate and flagged exact=false.
enum class TokenizerKind : std::uint8_t { o200k_base = 0, cl100k_base = 1, estimate = 2 };

std::string_view to_string(TokenizerKind kind);
std::optional<TokenizerKind> tokenizer_kind_from_string(std::string_view id);

struct Model {
    std::string id;
    Multiplier multiplier;
    TokenizerKind tokenizer = TokenizerKind::o200k_base;
    std::vector<OperationKind> operations;

    bool exact() const { return tokenizer != TokenizerKind::estimate; }
    bool supports(OperationKind kind) const;
};

struct Plan {
    std::string id;
    std::int64_t tokens_per_period = 0;
    std::int64_t avatars_per_period = 0;
};

struct Catalog {
    std::string version;
    std::vector<Operation> operations;
    std::vector<Model> models;
    std::vector<Plan> plans;

    const Operation* find_operation(OperationKind kind) const;
    const Model* find_model(std::string_view id) const;
    const Plan* find_plan(std::string_view id) const;
};

// Parses and validates a catalog document. Errors name the offending field:
// catalog_malformed, catalog_unknown_field, catalog_missing_field,
// catalog_invalid_value, catalog_duplicate_id, catalog_unknown_operation,
// catalog_too_large.
Result<Catalog, Error> parse_catalog(std::string_view json_text);

// The seed's numbers (DESIGN.md §3), as a JSON document and parsed.
std::string_view default_catalog_json();
const Catalog& default_catalog();

// The catalog as served at GET /v1/catalog (also accepted by parse_catalog,
// apart from the derived `exact` field of each model).
std::string catalog_to_json(const Catalog& catalog);

// What one operation costs. `raw_tokens` is what the provider counts, before
// the multiplier; `charged_tokens` what the ledger takes.
struct Charge {
    OperationKind operation = OperationKind::chat;
    std::string model;  // empty for an avatar without a model
    Multiplier multiplier;
    std::int64_t input_tokens = 0;
    std::int64_t output_tokens = 0;
    std::int64_t raw_tokens = 0;
    std::int64_t charged_tokens = 0;
    std::int64_t avatars = 0;
};

// ceil(raw * multiplier), or count_too_large when it would exceed
// limits::count_max. raw must be in [0, count_max].
Result<std::int64_t, Error> apply_multiplier(std::int64_t raw_tokens, Multiplier multiplier);

// Prices an operation. Errors: unknown_operation, unknown_model,
// model_not_allowed (the model does not offer the operation),
// invalid_count (negative), count_too_large, output_not_allowed (an embedding
// has no output), tokens_not_allowed (an avatar is flat).
// `model` may be empty only for an avatar.
Result<Charge, Error> price(const Catalog& catalog, std::string_view operation,
                            std::string_view model, std::int64_t input_tokens,
                            std::int64_t output_tokens);

}  // namespace tokenmeter
