#include "tokenmeter/pricing.hpp"

#include <algorithm>
#include <numeric>

#include "tokenmeter/assert.hpp"
#include "tokenmeter/catalog.hpp"
#include "tokenmeter/limits.hpp"

namespace tokenmeter {

namespace {

bool all_digits(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Reads an unsigned decimal of at most 18 digits (fits int64 with room).
std::optional<std::int64_t> small_decimal(std::string_view digits) {
    if (!all_digits(digits) || digits.size() > 18) return std::nullopt;
    std::int64_t value = 0;
    for (char c : digits) value = value * 10 + (c - '0');
    return value;
}

std::int64_t gcd(std::int64_t a, std::int64_t b) { return std::gcd(a, b); }

}  // namespace

bool operator==(const Multiplier& a, const Multiplier& b) {
    return a.numerator == b.numerator && a.denominator == b.denominator;
}

std::string to_string(const Multiplier& multiplier) {
    if (multiplier.denominator == 1) return std::to_string(multiplier.numerator);
    return std::to_string(multiplier.numerator) + "/" + std::to_string(multiplier.denominator);
}

Result<Multiplier, Error> parse_multiplier(std::string_view text) {
    const std::string positive = "a multiplier must be a positive rational such as \"3\", \"5/2\" or \"2.5\" "
                                 "with terms up to " + std::to_string(limits::multiplier_term_max);
    std::int64_t numerator = 0;
    std::int64_t denominator = 1;
    if (auto slash = text.find('/'); slash != std::string_view::npos) {
        auto n = small_decimal(text.substr(0, slash));
        auto d = small_decimal(text.substr(slash + 1));
        if (!n || !d) return unexpected(make_error("invalid_value", positive));
        numerator = *n;
        denominator = *d;
    } else if (auto dot = text.find('.'); dot != std::string_view::npos) {
        auto whole = small_decimal(text.substr(0, dot));
        std::string_view fraction = text.substr(dot + 1);
        auto fraction_value = small_decimal(fraction);
        if (!whole || !fraction_value || fraction.size() > 3) return unexpected(make_error("invalid_value", positive));
        denominator = 1;
        for (std::size_t i = 0; i < fraction.size(); ++i) denominator *= 10;
        numerator = *whole * denominator + *fraction_value;
    } else {
        auto n = small_decimal(text);
        if (!n) return unexpected(make_error("invalid_value", positive));
        numerator = *n;
    }
    if (numerator <= 0 || denominator <= 0) return unexpected(make_error("invalid_value", positive));
    const std::int64_t divisor = gcd(numerator, denominator);
    numerator /= divisor;
    denominator /= divisor;
    if (numerator > limits::multiplier_term_max || denominator > limits::multiplier_term_max) {
        return unexpected(make_error("invalid_value", positive));
    }
    return Multiplier{numerator, denominator};
}

std::string_view to_string(OperationKind kind) {
    switch (kind) {
        case OperationKind::chat: return "chat";
        case OperationKind::embedding: return "embedding";
        case OperationKind::avatar: return "avatar";
    }
    TM_ASSERT(false);
}

std::optional<OperationKind> operation_kind_from_string(std::string_view id) {
    if (id == "chat") return OperationKind::chat;
    if (id == "embedding") return OperationKind::embedding;
    if (id == "avatar") return OperationKind::avatar;
    return std::nullopt;
}

Result<std::int64_t, Error> apply_multiplier(std::int64_t raw_tokens, Multiplier multiplier) {
    TM_ASSERT(raw_tokens >= 0);
    TM_ASSERT(raw_tokens <= limits::count_max);
    TM_ASSERT(multiplier.numerator >= 1 && multiplier.numerator <= limits::multiplier_term_max);
    TM_ASSERT(multiplier.denominator >= 1 && multiplier.denominator <= limits::multiplier_term_max);
    // raw <= 2^53 - 1 and numerator <= 1000 < 2^10: the product stays below 2^63.
    const std::int64_t scaled = raw_tokens * multiplier.numerator;
    const std::int64_t charged = scaled / multiplier.denominator + (scaled % multiplier.denominator != 0 ? 1 : 0);
    if (charged > limits::count_max) {
        return unexpected(make_error("count_too_large", "the charge of " + std::to_string(raw_tokens) + " tokens x " +
                                                            to_string(multiplier) + " exceeds " +
                                                            std::to_string(limits::count_max)));
    }
    return charged;
}

bool TokenWeights::all_one() const {
    const Multiplier one{};
    return input == one && cached_input == one && output == one && reasoning == one;
}

bool operator==(const TokenWeights& a, const TokenWeights& b) {
    return a.input == b.input && a.cached_input == b.cached_input && a.output == b.output &&
           a.reasoning == b.reasoning;
}

std::optional<Error> check_counts(const TokenCounts& counts) {
    if (counts.input < 0 || counts.output < 0 || counts.cached_input < 0 || counts.reasoning < 0) {
        return make_error("invalid_count", "token counts must not be negative");
    }
    if (counts.input > limits::count_max || counts.output > limits::count_max ||
        counts.input > limits::count_max - counts.output) {
        return make_error("count_too_large", "token counts must add up to at most " + std::to_string(limits::count_max));
    }
    // The parts are inside their wholes, as providers report them; a part
    // larger than its whole would be a count the provider never made.
    if (counts.cached_input > counts.input) {
        return make_error("invalid_count", "cached_input_tokens (" + std::to_string(counts.cached_input) +
                                               ") must not exceed input_tokens (" + std::to_string(counts.input) + ")");
    }
    if (counts.reasoning > counts.output) {
        return make_error("invalid_count", "reasoning_tokens (" + std::to_string(counts.reasoning) +
                                               ") must not exceed output_tokens (" + std::to_string(counts.output) + ")");
    }
    return std::nullopt;
}

namespace {

// Wide enough for every intermediate of weighted_charge: a class count
// < 2^53 times a weight numerator scaled to the common denominator
// (<= 1000 * 1000^4 < 2^50), four of them (< 2^105), times the multiplier's
// numerator (<= 1000 < 2^10): below 2^115.
__extension__ using Wide = __int128;

std::int64_t lcm(std::int64_t a, std::int64_t b) { return a / gcd(a, b) * b; }

void assert_term_bounds(const Multiplier& term, std::int64_t numerator_min) {
    TM_ASSERT(term.numerator >= numerator_min && term.numerator <= limits::multiplier_term_max);
    TM_ASSERT(term.denominator >= 1 && term.denominator <= limits::multiplier_term_max);
}

}  // namespace

Result<std::int64_t, Error> weighted_charge(const TokenCounts& counts, const TokenWeights& weights,
                                            Multiplier multiplier) {
    TM_ASSERT(!check_counts(counts).has_value());
    assert_term_bounds(multiplier, 1);
    for (const Multiplier* weight : {&weights.input, &weights.output, &weights.reasoning}) assert_term_bounds(*weight, 1);
    assert_term_bounds(weights.cached_input, 0);
    // One common denominator for the four weights, so the sum is exact and
    // rounded once, after the multiplier.
    const std::int64_t common = lcm(lcm(weights.input.denominator, weights.cached_input.denominator),
                                    lcm(weights.output.denominator, weights.reasoning.denominator));
    const auto scaled = [common](std::int64_t tokens, const Multiplier& weight) {
        return Wide{tokens} * Wide{weight.numerator * (common / weight.denominator)};
    };
    const Wide weighted = scaled(counts.input - counts.cached_input, weights.input) +
                          scaled(counts.cached_input, weights.cached_input) +
                          scaled(counts.output - counts.reasoning, weights.output) +
                          scaled(counts.reasoning, weights.reasoning);
    const Wide numerator = weighted * multiplier.numerator;
    const Wide denominator = Wide{common} * multiplier.denominator;
    const Wide charged = numerator / denominator + (numerator % denominator != 0 ? 1 : 0);
    if (charged > limits::count_max) {
        const std::string weighted_note = weights.all_one() ? "" : " (weighted by token class)";
        return unexpected(make_error("count_too_large", "the charge of " + std::to_string(counts.input + counts.output) +
                                                            " tokens" + weighted_note + " x " + to_string(multiplier) +
                                                            " exceeds " + std::to_string(limits::count_max)));
    }
    return static_cast<std::int64_t>(charged);
}

namespace {

Result<Charge, Error> price_avatar(const Operation& operation, const Model* model, const TokenCounts& counts) {
    if (counts.input != 0 || counts.output != 0) {
        return unexpected(make_error("tokens_not_allowed", "an avatar has a flat price; send no token counts"));
    }
    Charge charge;
    charge.operation = OperationKind::avatar;
    if (model != nullptr) charge.model = model->id;
    charge.raw_tokens = operation.tokens_flat;
    charge.charged_tokens = operation.tokens_flat;
    charge.avatars = operation.avatars;
    return charge;
}

}  // namespace

Result<Charge, Error> price(const Catalog& catalog, std::string_view operation_id, std::string_view model_id,
                            std::int64_t input_tokens, std::int64_t output_tokens) {
    return price(catalog, operation_id, model_id, TokenCounts{input_tokens, 0, output_tokens, 0});
}

Result<Charge, Error> price(const Catalog& catalog, std::string_view operation_id, std::string_view model_id,
                            const TokenCounts& counts) {
    auto kind = operation_kind_from_string(operation_id);
    const Operation* operation = kind ? catalog.find_operation(*kind) : nullptr;
    if (operation == nullptr) {
        return unexpected(make_error("unknown_operation", "unknown operation \"" + std::string(operation_id) + "\""));
    }
    if (auto error = check_counts(counts)) return unexpected(*error);
    const Model* model = model_id.empty() ? nullptr : catalog.find_model(model_id);
    if (!model_id.empty() && model == nullptr) {
        return unexpected(make_error("unknown_model", "unknown model \"" + std::string(model_id) + "\""));
    }
    if (operation->kind == OperationKind::avatar) {
        return price_avatar(*operation, model, counts);
    }
    if (model == nullptr) {
        return unexpected(make_error("missing_field", "a " + std::string(operation_id) + " needs a model"));
    }
    if (!model->supports(operation->kind)) {
        return unexpected(make_error("model_not_allowed", "model \"" + model->id + "\" does not offer " +
                                                              std::string(operation_id)));
    }
    if (operation->kind == OperationKind::embedding && counts.output != 0) {
        return unexpected(make_error("output_not_allowed", "an embedding has no output tokens"));
    }
    Charge charge;
    charge.operation = operation->kind;
    charge.model = model->id;
    charge.multiplier = model->multiplier;
    charge.input_tokens = counts.input;
    charge.output_tokens = counts.output;
    charge.cached_input_tokens = counts.cached_input;
    charge.reasoning_tokens = counts.reasoning;
    charge.raw_tokens = counts.input + counts.output;
    auto charged = weighted_charge(counts, model->weights, model->multiplier);
    if (!charged) return unexpected(charged.error());
    charge.charged_tokens = *charged;
    return charge;
}

}  // namespace tokenmeter
