// Pricing: what one operation costs in tokens (DESIGN.md §3).
//
// Integer arithmetic only: a multiplier is an exact rational and the charged
// count is ceil(raw * numerator / denominator), one rounding at the end. A
// model may weight its token classes (input, cached input, output,
// reasoning) with rationals too; the weighted sum is multiplied before the
// one rounding, so weights of 1 price exactly as no weights at all. The
// numbers come from the catalog (catalog.hpp); the arithmetic and the rules
// of each operation are here, because how raw tokens are counted is code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter {

struct Catalog;

struct Multiplier {
    std::int64_t numerator = 1;
    std::int64_t denominator = 1;
};

bool operator==(const Multiplier&, const Multiplier&);

// "5/2", "3" — the canonical text of a multiplier.
std::string to_string(const Multiplier& multiplier);

// Parses "3", "5/2" or "2.5" into a reduced positive rational.
Result<Multiplier, Error> parse_multiplier(std::string_view text);

// ceil(raw * multiplier), or count_too_large when it would exceed
// limits::count_max. raw must be in [0, count_max].
Result<std::int64_t, Error> apply_multiplier(std::int64_t raw_tokens, Multiplier multiplier);

// How much one token of each class counts before the multiplier. A provider
// reports cached input as a part of the input and reasoning as a part of the
// output; each part is weighted with its own class's weight and the rest of
// the count with the plain class's, so no token is counted twice. All 1 by
// default; cached_input may be 0 (a provider that does not bill cache reads).
struct TokenWeights {
    Multiplier input;
    Multiplier cached_input;
    Multiplier output;
    Multiplier reasoning;

    bool all_one() const;
};

bool operator==(const TokenWeights&, const TokenWeights&);

// The counts a provider reports for one call: cached_input is a part of
// input (prompt_tokens includes the cached ones), reasoning a part of output
// (completion_tokens includes them).
struct TokenCounts {
    std::int64_t input = 0;
    std::int64_t cached_input = 0;
    std::int64_t output = 0;
    std::int64_t reasoning = 0;
};

// Errors: invalid_count (a negative count, or a part larger than its whole),
// count_too_large (input + output beyond limits::count_max).
std::optional<Error> check_counts(const TokenCounts& counts);

// ceil((Σ class tokens × class weight) × multiplier), one rounding at the
// end, exact. The counts must pass check_counts. Errors: count_too_large
// when the charge exceeds limits::count_max.
Result<std::int64_t, Error> weighted_charge(const TokenCounts& counts, const TokenWeights& weights,
                                            Multiplier multiplier);

// The operations the core knows how to price. A catalog configures them; it
// cannot invent new ones, because how raw tokens are counted is code.
enum class OperationKind : std::uint8_t {
    chat = 0,       // raw = input + output tokens, times the model multiplier
    embedding = 1,  // raw = document tokens (no output), times the model multiplier
    avatar = 2,     // a flat token charge plus avatars from the avatar quota
};

std::string_view to_string(OperationKind kind);
std::optional<OperationKind> operation_kind_from_string(std::string_view id);

// What one operation costs. `raw_tokens` is what the provider counts, before
// the multiplier; `charged_tokens` what the ledger takes.
struct Charge {
    OperationKind operation = OperationKind::chat;
    std::string model;  // empty for an avatar without a model
    Multiplier multiplier;
    std::int64_t input_tokens = 0;
    std::int64_t output_tokens = 0;
    std::int64_t cached_input_tokens = 0;  // a part of input_tokens
    std::int64_t reasoning_tokens = 0;     // a part of output_tokens
    // input + output, unweighted: what the provider counted, as before
    // token classes, so receipts and rows of old charges read the same.
    std::int64_t raw_tokens = 0;
    std::int64_t charged_tokens = 0;
    std::int64_t avatars = 0;
};

// Prices an operation with the catalog's numbers. Errors: unknown_operation,
// unknown_model, model_not_allowed (the model does not offer the operation),
// invalid_count (negative, or a part larger than its whole),
// count_too_large, output_not_allowed (an embedding has no output),
// tokens_not_allowed (an avatar is flat). `model` may be empty only for an
// avatar.
Result<Charge, Error> price(const Catalog& catalog, std::string_view operation,
                            std::string_view model, const TokenCounts& counts);

// The same, with no cached input and no reasoning tokens.
Result<Charge, Error> price(const Catalog& catalog, std::string_view operation,
                            std::string_view model, std::int64_t input_tokens,
                            std::int64_t output_tokens);

}  // namespace tokenmeter
