// Chat counting (OpenAI's cookbook formula) and the Claude estimate.
#include <gtest/gtest.h>

#include "tokenizer_test_support.hpp"
#include "tokenmeter/limits.hpp"
#include "tokenmeter/token_count.hpp"

namespace tokenmeter {
namespace {

// The cookbook's example ("How to count tokens with tiktoken"), shared with
// the wasm suite: OpenAI's API reported 124 prompt tokens for gpt-4o /
// gpt-4o-mini and 129 for gpt-4.
std::string cookbook_messages() {
    return nlohmann::json::parse(test::read_source_vector_file("tokenizer/cookbook_chat.json")).at("messages").dump();
}

TEST(TokenizerChat, CookbookExampleCounts124OnO200kAnd129OnCl100k) {
    const auto messages = parse_chat_messages(cookbook_messages());
    ASSERT_TRUE(messages.has_value()) << messages.error().message;
    ASSERT_EQ(messages->size(), 6u);
    EXPECT_EQ(count_chat_tokens(test::o200k(), *messages).value(), 124);
    EXPECT_EQ(count_chat_tokens(test::cl100k(), *messages).value(), 129);
    const auto exact = count_chat_tokens(test::o200k(), TokenizerKind::o200k_base, *messages).value();
    EXPECT_EQ(exact.tokens, 124);
    EXPECT_TRUE(exact.exact);
}

TEST(TokenizerChat, OverheadPerMessageNameAndReply) {
    EXPECT_EQ(count_chat_tokens(test::o200k(), parse_chat_messages("[]").value()).value(), 3);
    // 3 (reply) + 3 (message) + "user" (1) + "hi" (1)
    EXPECT_EQ(count_chat_tokens(test::o200k(), parse_chat_messages(R"([{"role":"user","content":"hi"}])").value())
                  .value(),
              8);
    // + "bob" (1) + 1 for the name
    EXPECT_EQ(count_chat_tokens(test::o200k(),
                                parse_chat_messages(R"([{"role":"user","content":"hi","name":"bob"}])").value())
                  .value(),
              10);
}

TEST(TokenizerChat, ContentMayBeNullOrTextParts) {
    const auto parts = parse_chat_messages(
        R"([{"role":"user","content":[{"type":"text","text":"hello"},{"type":"text","text":" world"}]},
            {"role":"assistant","content":null}])");
    ASSERT_TRUE(parts.has_value()) << parts.error().message;
    EXPECT_EQ((*parts)[0].content, (std::vector<std::string>{"hello", " world"}));
    EXPECT_TRUE((*parts)[1].content.empty());
    // 3 + (3 + user + hello + " world") + (3 + assistant)
    EXPECT_EQ(count_chat_tokens(test::o200k(), *parts).value(), 3 + 3 + 1 + 1 + 1 + 3 + 1);
}

TEST(TokenizerChat, MalformedChatsAreNamedErrors) {
    struct Case {
        std::string_view json;
        std::string_view code;
        std::string_view mentions;
    };
    const Case cases[] = {
        {R"({"role":"user"})", "chat_invalid", "array"},
        {R"([1])", "chat_invalid", "messages[0]"},
        {R"([{"content":"x"}])", "chat_invalid", "messages[0].role"},
        {R"([{"role":"user"}])", "chat_invalid", "messages[0].content"},
        {R"([{"role":"user","content":5}])", "chat_invalid", "messages[0].content"},
        {R"([{"role":"user","content":"x","name":3}])", "chat_invalid", "messages[0].name"},
        {R"([{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[]}])", "chat_invalid",
         "messages[1].tool_calls"},
        {R"([{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}])", "chat_invalid",
         "messages[0].content[0]"},
        {R"([{"role":"user","content":"x"})", "chat_invalid", "JSON"},
        {"[{\"role\":\"user\",\"content\":\"\xFF\"}]", "chat_invalid", "offset 27"},
        {"", "chat_invalid", "JSON"},
    };
    for (const Case& c : cases) {
        const auto parsed = parse_chat_messages(c.json);
        ASSERT_FALSE(parsed.has_value()) << c.json;
        EXPECT_EQ(parsed.error().code, c.code) << c.json;
        EXPECT_NE(parsed.error().message.find(c.mentions), std::string::npos) << parsed.error().message;
    }
}

TEST(TokenizerChat, TooManyMessagesIsRefused) {
    std::string json = "[";
    for (std::size_t i = 0; i <= limits::chat_messages_max; ++i) json += R"({"role":"user","content":""},)";
    json.back() = ']';
    EXPECT_EQ(parse_chat_messages(json).error().code, "chat_too_many_messages");
}

TEST(TokenizerClaudeEstimate, IsFiveFourthsOfO200kRoundedUpAndNotExact) {
    EXPECT_EQ(claude_estimate_from_o200k(0), 0);
    EXPECT_EQ(claude_estimate_from_o200k(1), 2);
    EXPECT_EQ(claude_estimate_from_o200k(4), 5);
    EXPECT_EQ(claude_estimate_from_o200k(5), 7);
    EXPECT_EQ(claude_estimate_from_o200k(100), 125);
    EXPECT_EQ(encoding_kind_for(TokenizerKind::estimate), TokenizerKind::o200k_base);
    EXPECT_EQ(encoding_kind_for(TokenizerKind::cl100k_base), TokenizerKind::cl100k_base);
    const std::string text = "The quick brown fox jumps over the lazy dog.";
    const std::int64_t o200k = test::o200k().count(text).value();
    const auto estimate = count_text_tokens(test::o200k(), TokenizerKind::estimate, text).value();
    EXPECT_FALSE(estimate.exact);
    EXPECT_EQ(estimate.tokens, (o200k * 5 + 3) / 4);
    const auto chat = count_chat_tokens(test::o200k(), TokenizerKind::estimate,
                                        parse_chat_messages(cookbook_messages()).value())
                          .value();
    EXPECT_FALSE(chat.exact);
    EXPECT_EQ(chat.tokens, 155);  // ceil(124 * 5 / 4)
}

}  // namespace
}  // namespace tokenmeter
