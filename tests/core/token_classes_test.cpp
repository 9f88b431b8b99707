// Token classes (DESIGN.md §3): a model's weights for input, cached input,
// output and reasoning tokens, how the catalog reads and writes them, how a
// charge is priced with them (one rounding, exact, bounded), and how the
// state machine commits and records with them.
#include <gtest/gtest.h>

#include <string>

#include "tokenmeter/catalog.hpp"
#include "tokenmeter/embedded_encodings.hpp"
#include "tokenmeter/estimate.hpp"
#include "tokenmeter/limits.hpp"
#include "tokenmeter/pricing.hpp"
#include "tokenmeter/state_machine.hpp"

namespace tokenmeter {
namespace {

// The seed catalog with one more model whose classes weigh differently:
// cached input at half, output and reasoning at 4, reasoning at 5 here to
// tell it from output.
std::string weighted_catalog_json(std::string_view weights, std::string_view multiplier = "1") {
    std::string text(default_catalog_json());
    const std::string anchor = R"({"id": "gpt-4o", )";
    const std::string model = std::string(R"({"id": "o-weighted", "multiplier": ")") + std::string(multiplier) +
                              R"(", "weights": )" + std::string(weights) +
                              R"(, "tokenizer": "o200k_base", "operations": ["chat", "embedding"]},
    )";
    text.insert(text.find(anchor), model);
    return text;
}

Catalog weighted_catalog(std::string_view weights, std::string_view multiplier = "1") {
    auto parsed = parse_catalog(weighted_catalog_json(weights, multiplier));
    EXPECT_TRUE(parsed.has_value()) << (parsed ? "" : parsed.error().message);
    return parsed ? *parsed : default_catalog();
}

const Catalog& catalog() {
    static const Catalog c =
        weighted_catalog(R"({"input": "1", "cached_input": "1/2", "output": "4", "reasoning": "5"})");
    return c;
}

Multiplier rational(std::int64_t numerator, std::int64_t denominator) { return Multiplier{numerator, denominator}; }

std::string parse_error(std::string_view weights) {
    auto parsed = parse_catalog(weighted_catalog_json(weights));
    return parsed ? "ok" : parsed.error().code + ": " + parsed.error().message;
}

TEST(TokenClassCatalog, ReadsWeightsInTheMultipliersForms) {
    const Model* model = catalog().find_model("o-weighted");
    ASSERT_NE(model, nullptr);
    EXPECT_EQ(model->weights.input, rational(1, 1));
    EXPECT_EQ(model->weights.cached_input, rational(1, 2));
    EXPECT_EQ(model->weights.output, rational(4, 1));
    EXPECT_EQ(model->weights.reasoning, rational(5, 1));
    // Each class optional, 1 when absent; "2.5", "5/2" and 3 all read.
    const Catalog some = weighted_catalog(R"({"output": "2.5", "reasoning": 3, "cached_input": "10/4"})");
    const TokenWeights& weights = some.find_model("o-weighted")->weights;
    EXPECT_EQ(weights.input, rational(1, 1));
    EXPECT_EQ(weights.output, rational(5, 2));
    EXPECT_EQ(weights.reasoning, rational(3, 1));
    EXPECT_EQ(weights.cached_input, rational(5, 2));
    // A model without weights weighs every class 1.
    EXPECT_TRUE(default_catalog().find_model("gpt-4o")->weights.all_one());
    EXPECT_TRUE(weighted_catalog("{}").find_model("o-weighted")->weights.all_one());
}

TEST(TokenClassCatalog, CachedInputAloneMayWeighNothing) {
    EXPECT_EQ(weighted_catalog(R"({"cached_input": "0"})").find_model("o-weighted")->weights.cached_input, rational(0, 1));
    EXPECT_EQ(weighted_catalog(R"({"cached_input": 0})").find_model("o-weighted")->weights.cached_input, rational(0, 1));
    for (std::string_view zero : {R"({"input": "0"})", R"({"output": 0})", R"({"reasoning": "0"})"}) {
        EXPECT_EQ(parse_error(zero).substr(0, 22), "catalog_invalid_value:") << zero;
    }
}

TEST(TokenClassCatalog, RefusesWhatIsNotAWeightNamingTheField) {
    const std::string unknown = parse_error(R"({"input": "1", "cache_write": "2"})");
    EXPECT_EQ(unknown.substr(0, unknown.find(':')), "catalog_unknown_field");
    EXPECT_NE(unknown.find("weights.cache_write"), std::string::npos) << unknown;
    const struct {
        std::string_view weights;
        std::string_view field;
    } cases[] = {
        {R"({"output": 2.5})", "weights.output"},        // floating point: not exact
        {R"({"output": "-4"})", "weights.output"},
        {R"({"reasoning": "1/0"})", "weights.reasoning"},
        {R"({"input": "1001"})", "weights.input"},        // beyond the term bound
        {R"({"cached_input": "0.0001"})", "weights.cached_input"},
        {R"({"cached_input": true})", "weights.cached_input"},
        {R"(["4"])", "weights"},
        {R"("4")", "weights"},
    };
    for (const auto& c : cases) {
        const std::string error = parse_error(c.weights);
        EXPECT_EQ(error.substr(0, error.find(':')), "catalog_invalid_value") << c.weights << " " << error;
        EXPECT_NE(error.find(c.field), std::string::npos) << error;
    }
}

TEST(TokenClassCatalog, ServedWithWeightsOnlyWhenTheySaySomething) {
    // The seed has none: GET /v1/catalog stays byte for byte what it was.
    EXPECT_EQ(catalog_to_json(default_catalog()).find("weights"), std::string::npos);
    EXPECT_EQ(catalog_to_json(weighted_catalog(R"({"input": "1", "output": "2/2"})")).find("weights"), std::string::npos);
    const std::string served = catalog_to_json(catalog());
    EXPECT_NE(served.find(R"("weights":{"cached_input":"1/2","input":"1","output":"4","reasoning":"5"})"),
              std::string::npos)
        << served;
    auto reparsed = parse_catalog(served);
    ASSERT_TRUE(reparsed.has_value()) << reparsed.error().message;
    EXPECT_EQ(reparsed->find_model("o-weighted")->weights, catalog().find_model("o-weighted")->weights);
    EXPECT_EQ(catalog_to_json(*reparsed), served);
}

// One row per case: counts, weights, multiplier, and the charge.
struct WeightedCase {
    const char* name;
    TokenCounts counts;
    TokenWeights weights;
    Multiplier multiplier;
    std::int64_t charged;
};

TEST(TokenClassPricing, WeightsEachClassOnceAndRoundsOnceAtTheEnd) {
    const Multiplier one{1, 1};
    const TokenWeights ones{};
    const TokenWeights openai{one, rational(1, 2), rational(4, 1), rational(4, 1)};
    const TokenWeights thirds{rational(1, 3), rational(1, 3), rational(2, 3), rational(1, 7)};
    const WeightedCase cases[] = {
        {"all ones is input + output", {1000, 300, 234, 100}, ones, one, 1234},
        {"all ones with a multiplier", {1000, 300, 234, 100}, ones, rational(5, 2), 3085},
        // 700 + 300/2 + 4 * 234 = 700 + 150 + 936
        {"cached half, output four", {1000, 300, 234, 100}, openai, one, 1786},
        // (700 + 150 + 936) * 3
        {"times the multiplier", {1000, 300, 234, 100}, openai, rational(3, 1), 5358},
        // 1 cached token at 1/2, x 5/2 = 5/4 -> 2; rounding per class first would give 3
        {"one rounding: half a token", {1, 1, 0, 0}, openai, rational(5, 2), 2},
        // 1/3 + 1/3 + 2/3 + 1/7 = 31/21 -> 2, where per-class rounding would give 4
        {"one rounding: thirds and sevenths", {2, 1, 2, 1}, thirds, one, 2},
        // reasoning is a part of output: 10 output, 10 reasoning at 5 -> 50, none at 4
        {"all output reasoning", {0, 0, 10, 10}, TokenWeights{one, one, rational(4, 1), rational(5, 1)}, one, 50},
        {"cached input free", {100, 100, 0, 0}, TokenWeights{one, rational(0, 1), one, one}, one, 0},
        {"nothing", {0, 0, 0, 0}, openai, rational(1000, 1), 0},
    };
    for (const WeightedCase& c : cases) {
        auto charged = weighted_charge(c.counts, c.weights, c.multiplier);
        ASSERT_TRUE(charged.has_value()) << c.name << ": " << charged.error().message;
        EXPECT_EQ(*charged, c.charged) << c.name;
    }
}

TEST(TokenClassPricing, AllWeightsOneIsTheMultiplierAlone) {
    // The plain rule for every kind of count, against apply_multiplier.
    const std::int64_t counts[] = {0, 1, 2, 3, 7, 999, 1'000'001, limits::count_max / 1000, limits::count_max / 3};
    const Multiplier multipliers[] = {{1, 1}, {5, 2}, {3, 1}, {1, 3}, {999, 1000}, {1000, 1}};
    for (std::int64_t input : counts) {
        for (Multiplier m : multipliers) {
            const TokenCounts plain{input, input / 2, 7, 3};
            auto weighted = weighted_charge(plain, TokenWeights{}, m);
            auto expected = apply_multiplier(input + 7, m);
            ASSERT_EQ(weighted.has_value(), expected.has_value()) << input << " x " << to_string(m);
            if (expected) {
                EXPECT_EQ(*weighted, *expected) << input << " x " << to_string(m);
            }
        }
    }
}

TEST(TokenClassPricing, TheLargestWeightsAndCountsStayExact) {
    const Multiplier most{1000, 1};
    const TokenWeights heaviest{most, most, most, most};
    const TokenWeights finest{rational(1, 997), rational(1, 991), rational(1, 983), rational(1, 977)};
    // count_max / 10^6 tokens x 1000 x 1000 fits; one token more does not.
    const std::int64_t largest = limits::count_max / 1'000'000;
    EXPECT_EQ(*weighted_charge({largest, 0, 0, 0}, heaviest, most), largest * 1'000'000);
    auto over = weighted_charge({largest + 1, 0, 0, 0}, heaviest, most);
    ASSERT_FALSE(over.has_value());
    EXPECT_EQ(over.error().code, "count_too_large");
    EXPECT_NE(over.error().message.find("weighted by token class"), std::string::npos) << over.error().message;
    // The whole range with four coprime denominators: no overflow inside,
    // and the result is the exact ceiling.
    const std::int64_t max = limits::count_max;
    auto fine = weighted_charge({max / 2, max / 4, max / 2, max / 4}, finest, rational(1, 1000));
    ASSERT_TRUE(fine.has_value()) << fine.error().message;
    EXPECT_EQ(*fine, 9'126'378'494);  // Python's fractions.Fraction, math.ceil
}

TEST(TokenClassPricing, APartLargerThanItsWholeIsInvalid) {
    const struct {
        TokenCounts counts;
        std::string code;
        std::string names;
    } cases[] = {
        {{10, 11, 0, 0}, "invalid_count", "cached_input_tokens (11) must not exceed input_tokens (10)"},
        {{10, 0, 5, 6}, "invalid_count", "reasoning_tokens (6) must not exceed output_tokens (5)"},
        {{10, -1, 5, 0}, "invalid_count", "must not be negative"},
        {{10, 0, 5, -1}, "invalid_count", "must not be negative"},
        {{limits::count_max, 0, 1, 0}, "count_too_large", "at most"},
    };
    for (const auto& c : cases) {
        auto error = check_counts(c.counts);
        ASSERT_TRUE(error.has_value()) << c.names;
        EXPECT_EQ(error->code, c.code);
        EXPECT_NE(error->message.find(c.names), std::string::npos) << error->message;
        auto priced = price(catalog(), "chat", "o-weighted", c.counts);
        ASSERT_FALSE(priced.has_value());
        EXPECT_EQ(priced.error().code, c.code);
    }
}

TEST(TokenClassPricing, PriceKeepsRawUnweightedAndTheClassesOnTheCharge) {
    auto charge = price(catalog(), "chat", "o-weighted", TokenCounts{1000, 300, 234, 100});
    ASSERT_TRUE(charge.has_value()) << charge.error().message;
    EXPECT_EQ(charge->input_tokens, 1000);
    EXPECT_EQ(charge->cached_input_tokens, 300);
    EXPECT_EQ(charge->output_tokens, 234);
    EXPECT_EQ(charge->reasoning_tokens, 100);
    EXPECT_EQ(charge->raw_tokens, 1234);
    // 700 + 150 + 4 * 134 + 5 * 100
    EXPECT_EQ(charge->charged_tokens, 1886);
    // The two-count form is the same with no parts.
    auto plain = price(catalog(), "chat", "o-weighted", 1000, 234);
    ASSERT_TRUE(plain.has_value());
    EXPECT_EQ(plain->charged_tokens, 1000 + 4 * 234);
    EXPECT_EQ(plain->cached_input_tokens, 0);
    // An embedding has no output, so no reasoning either.
    auto embedding = price(catalog(), "embedding", "o-weighted", TokenCounts{100, 40, 0, 0});
    ASSERT_TRUE(embedding.has_value());
    EXPECT_EQ(embedding->charged_tokens, 60 + 20);
    EXPECT_EQ(price(catalog(), "embedding", "o-weighted", TokenCounts{100, 0, 0, 1}).error().code, "invalid_count");
    // An avatar takes no counts at all.
    EXPECT_EQ(price(catalog(), "avatar", "", TokenCounts{0, 0, 0, 0})->charged_tokens, 10'000);
}

// The estimate rule and its price, as the browser's estimate() and the
// server's authorize apply them: the input weight on the prompt, the output
// weight on the max output.
class EmbeddedEncodings final : public EncodingSource {
public:
    Result<const Encoding*, Error> encoding(TokenizerKind encoding) const override {
        return &embedded_encoding(encoding);
    }
};

std::int64_t estimated_charge(const EstimateRequest& request) {
    auto sized = estimate(catalog(), request, EmbeddedEncodings{});
    EXPECT_TRUE(sized.has_value()) << (sized ? "" : sized.error().message);
    if (!sized) return -1;
    auto charge = price(catalog(), to_string(sized->operation), sized->model->id, sized->input_tokens,
                        sized->max_output_tokens);
    EXPECT_TRUE(charge.has_value()) << (charge ? "" : charge.error().message);
    return charge ? charge->charged_tokens : -1;
}

TEST(TokenClassEstimate, AnEstimateWeighsThePromptAsInputAndTheMaxOutputAsOutput) {
    const Catalog heavy = weighted_catalog(R"({"input": "3/2", "output": "4", "reasoning": "8"})", "5/2");
    EstimateRequest counted;
    counted.operation = "chat";
    counted.model = Result<std::string, Error>(std::string("o-weighted"));
    counted.input_tokens = Result<std::int64_t, Error>(std::int64_t{100});
    counted.max_output_tokens = Result<std::int64_t, Error>(std::int64_t{33});
    auto sized = estimate(heavy, counted, EmbeddedEncodings{});
    ASSERT_TRUE(sized.has_value()) << sized.error().message;
    auto charge = price(heavy, "chat", "o-weighted", sized->input_tokens, sized->max_output_tokens);
    ASSERT_TRUE(charge.has_value());
    // (100 * 3/2 + 33 * 4) * 5/2 = 282 * 5/2 = 705
    EXPECT_EQ(charge->charged_tokens, 705);
    // A text is counted with the model's tokenizer, then weighed the same way.
    const std::string text = "Hello, world!";
    EstimateRequest written;
    written.operation = "chat";
    written.model = Result<std::string, Error>(std::string("o-weighted"));
    written.text = Result<std::string_view, Error>(std::string_view(text));
    written.max_output_tokens = Result<std::int64_t, Error>(std::int64_t{10});
    auto text_sized = estimate(catalog(), written, EmbeddedEncodings{});
    ASSERT_TRUE(text_sized.has_value());
    EXPECT_GT(text_sized->input_tokens, 0);
    EXPECT_EQ(estimated_charge(written), text_sized->input_tokens + 4 * 10);
}

// The state machine: commits and records priced with the model's weights.
constexpr std::int64_t t0 = 1764000000;

LedgerRules rules() {
    LedgerRules r;
    static const PriceBook book = price_book_of(catalog());
    r.prices = &book;
    return r;
}

TEST(TokenClassLedger, ACommitPricesTheClassesWithTheModelsWeights) {
    Account account = unopened_account("ana");
    const Decision authorized = authorize(account, AuthorizeCommand{"ana", "rsv_1", "chat", "o-weighted", 1000, 500},
                                          rules(), t0);
    ASSERT_EQ(authorized.verdict, Verdict::done);
    // The reservation: input weight on the prompt, output weight on the max output.
    EXPECT_EQ(authorized.estimate->charged_tokens, 1000 + 4 * 500);
    CommitCommand command{"rsv_1", 1000, 234, "evt_1", "key"};
    command.cached_input_tokens = 300;
    command.reasoning_tokens = 100;
    const Decision committed = commit(account, command, nullptr, rules(), t0 + 5);
    ASSERT_EQ(committed.verdict, Verdict::done) << committed.error.message;
    const Charge& charge = committed.charge->charge;
    EXPECT_EQ(charge.raw_tokens, 1234);
    EXPECT_EQ(charge.charged_tokens, 1886);
    EXPECT_EQ(charge.cached_input_tokens, 300);
    EXPECT_EQ(charge.reasoning_tokens, 100);
    EXPECT_EQ(account.balance.tokens_used, 1886);
    EXPECT_EQ(account.balance.tokens_reserved, 0);
    EXPECT_EQ(committed.changes.back().charge->charge.charged_tokens, 1886);
}

// The reservation pinned its model's weights: a price book that no longer
// has the model (or weighs it otherwise) changes nothing for its commit.
TEST(TokenClassLedger, ACommitPricesWithTheWeightsItsReservationPinned) {
    Account account = unopened_account("ana");
    const Decision authorized = authorize(account, AuthorizeCommand{"ana", "rsv_1", "chat", "o-weighted", 10, 10}, rules(), t0);
    ASSERT_EQ(authorized.verdict, Verdict::done);
    EXPECT_EQ(authorized.reservation->weights, catalog().find_model("o-weighted")->weights);
    LedgerRules without = rules();
    without.prices = &default_price_book();
    CommitCommand command{"rsv_1", 1000, 234, "evt_1", "key"};
    command.cached_input_tokens = 300;
    const Decision committed = commit(account, command, nullptr, without, t0 + 5);
    ASSERT_EQ(committed.verdict, Verdict::done) << committed.error.message;
    // 700 input × 1 + 300 cached × 1/2 + 234 output × 4, not 1,234 at weight 1.
    EXPECT_EQ(committed.charge->charge.charged_tokens, 700 + 150 + 936);
}

TEST(TokenClassLedger, BadClassCountsChangeNothing) {
    Account account = unopened_account("ana");
    ASSERT_EQ(authorize(account, AuthorizeCommand{"ana", "rsv_1", "chat", "o-weighted", 10, 10}, rules(), t0).verdict,
              Verdict::done);
    const Account before = account;
    CommitCommand cached{"rsv_1", 10, 10, "evt_1", "key"};
    cached.cached_input_tokens = 11;
    const Decision refused = commit(account, cached, nullptr, rules(), t0 + 5);
    EXPECT_EQ(refused.verdict, Verdict::invalid);
    EXPECT_EQ(refused.error.code, "invalid_count");
    EXPECT_TRUE(refused.changes.empty());
    EXPECT_EQ(account, before);
    CommitCommand reasoning{"rsv_1", 10, 10, "evt_1", "key"};
    reasoning.reasoning_tokens = 11;
    EXPECT_EQ(commit(account, reasoning, nullptr, rules(), t0 + 5).error.code, "invalid_count");
    RecordCommand record_command{"ana", "chat", "o-weighted", 10, 10, "evt_2", "k2"};
    record_command.reasoning_tokens = 11;
    const Decision bad_record = record(account, record_command, rules(), t0 + 5);
    EXPECT_EQ(bad_record.verdict, Verdict::invalid);
    EXPECT_EQ(bad_record.error.code, "invalid_count");
    EXPECT_EQ(account, before);
}

TEST(TokenClassLedger, ARecordPricesTheClassesToo) {
    Account account = unopened_account("ana");
    RecordCommand command{"ana", "chat", "o-weighted", 1000, 234, "evt_1", "k1"};
    command.cached_input_tokens = 300;
    command.reasoning_tokens = 100;
    const Decision recorded = record(account, command, rules(), t0);
    ASSERT_EQ(recorded.verdict, Verdict::done) << recorded.error.message;
    EXPECT_EQ(recorded.charge->charge.charged_tokens, 1886);
    EXPECT_EQ(recorded.charge->charge.raw_tokens, 1234);
    EXPECT_EQ(account.balance.tokens_used, 1886);
}

// An output "up to" (the gateway's own default cap): a user who cannot pay
// for all of it is reserved the most whole steps that fit, priced with the
// output weight, in one decision; refused only when not one step fits.
TEST(TokenClassLedger, AnOutputUpToIsFittedToWhatTheUserCanPayWithTheWeights) {
    Account account = unopened_account("ana");
    ASSERT_EQ(record(account, RecordCommand{"ana", "chat", "gpt-4o-mini", 249000, 0, "evt_0", "key_0"}, rules(), t0).verdict,
              Verdict::done);
    ASSERT_EQ(account.balance.tokens_remaining(), 1000);
    AuthorizeCommand up_to{"ana", "rsv_1", "chat", "o-weighted", 100, 4096};
    AuthorizeCommand whole = up_to;
    // Without a step: all of it or nothing, as before.
    EXPECT_EQ(authorize(account, whole, rules(), t0 + 1).verdict, Verdict::refused);
    up_to.output_step = 2;  // two choices
    const Decision fitted = authorize(account, up_to, rules(), t0 + 2);
    ASSERT_EQ(fitted.verdict, Verdict::done) << fitted.error.message;
    // 100 input + 4 per output token: 112 steps of 2 cost 996, 113 would cost 1,004.
    EXPECT_EQ(fitted.estimate->output_tokens, 224);
    EXPECT_EQ(fitted.estimate->charged_tokens, 996);
    EXPECT_EQ(fitted.reservation->reservation.amount.tokens, 996);
    EXPECT_EQ(account.balance.tokens_remaining(), 4);
    // Less than one step is refused; one step that fits is reserved.
    up_to.reservation_id = "rsv_2";
    up_to.input_tokens = 0;
    up_to.max_output_tokens = 10;
    EXPECT_EQ(authorize(account, up_to, rules(), t0 + 3).verdict, Verdict::refused);  // a step of 2 costs 8 > 4
    up_to.output_step = 1;
    const Decision one = authorize(account, up_to, rules(), t0 + 4);
    ASSERT_EQ(one.verdict, Verdict::done);
    EXPECT_EQ(one.estimate->output_tokens, 1);
    EXPECT_EQ(one.estimate->charged_tokens, 4);
    EXPECT_EQ(account.balance.tokens_remaining(), 0);
}

}  // namespace
}  // namespace tokenmeter
