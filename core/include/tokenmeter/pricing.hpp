// Pricing: what one operation costs in tokens (DESIGN.md §3).
//
// Integer arithmetic only: a multiplier is an exact rational and the charged
// count is ceil(raw * numerator / denominator), one rounding at the end. The
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
    std::int64_t raw_tokens = 0;
    std::int64_t charged_tokens = 0;
    std::int64_t avatars = 0;
};

// Prices an operation with the catalog's numbers. Errors: unknown_operation,
// unknown_model, model_not_allowed (the model does not offer the operation),
// invalid_count (negative), count_too_large, output_not_allowed (an
// embedding has no output), tokens_not_allowed (an avatar is flat).
// `model` may be empty only for an avatar.
Result<Charge, Error> price(const Catalog& catalog, std::string_view operation,
                            std::string_view model, std::int64_t input_tokens,
                            std::int64_t output_tokens);

}  // namespace tokenmeter
