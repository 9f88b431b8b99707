#include <gtest/gtest.h>

#include <string>

#include "tokenmeter/catalog.hpp"
#include "tokenmeter/limits.hpp"
#include "tokenmeter/pricing.hpp"

namespace tokenmeter {
namespace {

std::int64_t charged(std::string_view operation, std::string_view model, std::int64_t input, std::int64_t output) {
    auto charge = price(default_catalog(), operation, model, input, output);
    EXPECT_TRUE(charge.has_value()) << (charge ? "" : charge.error().message);
    return charge ? charge->charged_tokens : -1;
}

std::string error_code(std::string_view operation, std::string_view model, std::int64_t input, std::int64_t output) {
    auto charge = price(default_catalog(), operation, model, input, output);
    return charge ? "ok" : charge.error().code;
}

TEST(Catalog, DefaultsAreTheSeedNumbers) {
    const Catalog& catalog = default_catalog();
    ASSERT_NE(catalog.find_plan("free"), nullptr);
    EXPECT_EQ(catalog.find_plan("free")->tokens_per_period, 250'000);
    EXPECT_EQ(catalog.find_plan("free")->avatars_per_period, 5);
    EXPECT_EQ(catalog.find_plan("pro")->tokens_per_period, 10'000'000);
    EXPECT_EQ(catalog.find_plan("pro")->avatars_per_period, 50);
    EXPECT_EQ(catalog.find_model("gpt-4o")->multiplier, (Multiplier{3, 1}));
    EXPECT_EQ(catalog.find_model("claude-3-7-sonnet")->multiplier, (Multiplier{5, 2}));
    EXPECT_EQ(catalog.find_model("claude-3-5-sonnet")->multiplier, (Multiplier{2, 1}));
    EXPECT_EQ(catalog.find_model("gpt-4o-mini")->multiplier, (Multiplier{1, 1}));
    EXPECT_FALSE(catalog.find_model("claude-3-7-sonnet")->exact());
    EXPECT_TRUE(catalog.find_model("text-embedding-3-small")->exact());
    EXPECT_EQ(catalog.find_operation(OperationKind::avatar)->tokens_flat, 10'000);
}

TEST(Cost, TableOfTheSeed) {
    EXPECT_EQ(charged("chat", "gpt-4o-mini", 1000, 234), 1234);
    EXPECT_EQ(charged("chat", "gpt-4o", 1000, 234), 3702);
    EXPECT_EQ(charged("chat", "claude-3-5-sonnet", 1000, 234), 2468);
    EXPECT_EQ(charged("chat", "claude-3-7-sonnet", 1000, 234), 3085);
    EXPECT_EQ(charged("embedding", "text-embedding-3-small", 5000, 0), 5000);
    auto avatar = price(default_catalog(), "avatar", "", 0, 0);
    ASSERT_TRUE(avatar.has_value());
    EXPECT_EQ(avatar->charged_tokens, 10'000);
    EXPECT_EQ(avatar->avatars, 1);
}

TEST(Cost, RoundsUpOnTheFinalDivision) {
    EXPECT_EQ(charged("chat", "claude-3-7-sonnet", 3, 0), 8);  // 2.5 x 3 = 7.5 -> 8
    EXPECT_EQ(charged("chat", "claude-3-7-sonnet", 1, 0), 3);  // 2.5 -> 3
    EXPECT_EQ(charged("chat", "claude-3-7-sonnet", 2, 0), 5);  // exact
    EXPECT_EQ(charged("chat", "claude-3-7-sonnet", 0, 0), 0);
    EXPECT_EQ(charged("chat", "gpt-4o", 0, 0), 0);
}

TEST(Cost, LargestCountThatCannotOverflowAndOnePast) {
    // ceil(5r/2) <= count_max  <=>  r <= floor(2 * count_max / 5).
    const std::int64_t largest = 2 * limits::count_max / 5;
    EXPECT_EQ(charged("chat", "claude-3-7-sonnet", largest, 0), (5 * (largest / 2)) + (largest % 2 == 0 ? 0 : 3));
    EXPECT_LE(charged("chat", "claude-3-7-sonnet", largest, 0), limits::count_max);
    EXPECT_EQ(error_code("chat", "claude-3-7-sonnet", largest + 1, 0), "count_too_large");
    // Multiplier 3: r <= floor(count_max / 3).
    EXPECT_EQ(charged("chat", "gpt-4o", limits::count_max / 3, 0), limits::count_max / 3 * 3);
    EXPECT_EQ(error_code("chat", "gpt-4o", limits::count_max / 3 + 1, 0), "count_too_large");
    // Multiplier 1: the raw sum itself is the bound.
    EXPECT_EQ(charged("chat", "gpt-4o-mini", limits::count_max - 7, 7), limits::count_max);
    EXPECT_EQ(error_code("chat", "gpt-4o-mini", limits::count_max - 6, 7), "count_too_large");
    EXPECT_EQ(error_code("chat", "gpt-4o-mini", limits::count_max + 1, 0), "count_too_large");
    EXPECT_EQ(error_code("chat", "gpt-4o-mini", INT64_MAX, INT64_MAX), "count_too_large");
}

TEST(Cost, RefusesBadRequests) {
    EXPECT_EQ(error_code("chat", "gpt-4o", -1, 0), "invalid_count");
    EXPECT_EQ(error_code("chat", "gpt-4o", 0, -5), "invalid_count");
    EXPECT_EQ(error_code("chat", "gpt-5-turbo", 1, 1), "unknown_model");
    EXPECT_EQ(error_code("transcribe", "gpt-4o", 1, 1), "unknown_operation");
    EXPECT_EQ(error_code("chat", "", 1, 1), "missing_field");
    EXPECT_EQ(error_code("embedding", "gpt-4o", 10, 0), "model_not_allowed");
    EXPECT_EQ(error_code("chat", "text-embedding-3-small", 10, 0), "model_not_allowed");
    EXPECT_EQ(error_code("embedding", "text-embedding-3-small", 10, 1), "output_not_allowed");
    EXPECT_EQ(error_code("avatar", "", 1, 0), "tokens_not_allowed");
}

TEST(Multiplier, ParsesExactRationals) {
    struct Case {
        const char* text;
        Multiplier expected;
    };
    for (const Case& c : {Case{"3", {3, 1}}, Case{"5/2", {5, 2}}, Case{"2.5", {5, 2}}, Case{"10/4", {5, 2}},
                          Case{"0.125", {1, 8}}, Case{"1000", {1000, 1}}, Case{"1/1000", {1, 1000}}}) {
        auto parsed = parse_multiplier(c.text);
        ASSERT_TRUE(parsed.has_value()) << c.text;
        EXPECT_EQ(*parsed, c.expected) << c.text;
    }
    for (const char* bad : {"0", "0/5", "-1", "1/0", "abc", "", "1.", ".5", "2.5.1", "1/2/3", "1001", "1/1001",
                            "0.0001", " 2", "2 ", "+2", "1e3", "99999999999999999999"}) {
        EXPECT_FALSE(parse_multiplier(bad).has_value()) << bad;
    }
}

// A catalog document with one replaced fragment, for the error table.
std::string catalog_with(const std::string& from, const std::string& to) {
    std::string text(default_catalog_json());
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
}

std::string parse_error(const std::string& text) {
    auto parsed = parse_catalog(text);
    return parsed ? "ok" : parsed.error().code;
}

TEST(CatalogErrors, EachProblemHasAPreciseError) {
    EXPECT_EQ(parse_error(std::string(default_catalog_json())), "ok");
    EXPECT_EQ(parse_error("{"), "catalog_malformed");
    EXPECT_EQ(parse_error("[]"), "catalog_malformed");
    EXPECT_EQ(parse_error(catalog_with(R"("version": "2026-11-01",)", R"("version": "2026-11-01", "colour": 1,)")),
              "catalog_unknown_field");
    EXPECT_EQ(parse_error(catalog_with(R"("tokens_per_period": 250000)", R"("tokens_per_period": -1)")),
              "catalog_invalid_value");
    EXPECT_EQ(parse_error(catalog_with(R"("tokens_per_period": 250000)", R"("tokens_per_period": 2.5e5)")),
              "catalog_invalid_value");
    EXPECT_EQ(parse_error(catalog_with(R"("multiplier": "3")", R"("multiplier": "0")")), "catalog_invalid_value");
    EXPECT_EQ(parse_error(catalog_with(R"("multiplier": "3")", R"("multiplier": "-3")")), "catalog_invalid_value");
    EXPECT_EQ(parse_error(catalog_with(R"("multiplier": "3")", R"("multiplier": 2.5)")), "catalog_invalid_value");
    EXPECT_EQ(parse_error(catalog_with(R"("multiplier": "3")", R"("multiplier": 3)")), "ok");
    EXPECT_EQ(parse_error(catalog_with(R"("id": "gpt-4o", )", R"("id": "gpt-4o-mini", )")), "catalog_duplicate_id");
    EXPECT_EQ(parse_error(catalog_with(R"({"id": "embedding"},)", R"({"id": "embedding"}, {"id": "transcribe"},)")),
              "catalog_unknown_operation");
    EXPECT_EQ(parse_error(catalog_with(R"("operations": ["embedding"])", R"("operations": ["video"])")),
              "catalog_unknown_operation");
    EXPECT_EQ(parse_error(catalog_with(R"({"id": "embedding"},)", "")), "catalog_unknown_operation");
    EXPECT_EQ(parse_error(catalog_with(R"("tokenizer": "cl100k_base")", R"("tokenizer": "p50k")")),
              "catalog_invalid_value");
    EXPECT_EQ(parse_error(catalog_with(R"({"id": "free", "tokens_per_period": 250000, "avatars_per_period": 5},)", "")),
              "catalog_missing_field");
    EXPECT_EQ(parse_error(catalog_with(R"("id": "gpt-4o", )", R"("id": "GPT 4o", )")), "catalog_invalid_value");
    EXPECT_EQ(parse_error(std::string(limits::catalog_bytes_max + 1, ' ')), "catalog_too_large");
}

TEST(CatalogErrors, MessagesNameTheField) {
    auto parsed = parse_catalog(catalog_with(R"("tokens_per_period": 250000)", R"("tokens_per_period": -1)"));
    ASSERT_FALSE(parsed.has_value());
    EXPECT_NE(parsed.error().message.find("catalog.plans[0].tokens_per_period"), std::string::npos)
        << parsed.error().message;
}

TEST(Catalog, ServedJsonParsesBackToTheSameCatalog) {
    auto reparsed = parse_catalog(catalog_to_json(default_catalog()));
    ASSERT_TRUE(reparsed.has_value()) << reparsed.error().message;
    EXPECT_EQ(catalog_to_json(*reparsed), catalog_to_json(default_catalog()));
}

}  // namespace
}  // namespace tokenmeter
