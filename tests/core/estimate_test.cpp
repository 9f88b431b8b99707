// The estimate rule (tokenmeter/estimate.hpp) on the cases of
// tests/vectors/estimate_vectors.json, which the server suite
// (tests/server/estimate_rule_test.cpp) and the wasm suite
// (tests/wasm/estimate.test.mjs) check through their shells too; plus what
// only the core's interface shows: the lookup, the model it resolves, the
// messages the server answers with.
#include <gtest/gtest.h>

#include "test_files.hpp"
#include "tokenmeter/catalog.hpp"
#include "tokenmeter/embedded_encodings.hpp"
#include "tokenmeter/estimate.hpp"
#include "tokenmeter/json_input.hpp"
#include "tokenmeter/limits.hpp"
#include "tokenmeter/pricing.hpp"

namespace tokenmeter {
namespace {

using Json = nlohmann::json;

// The encodings native programs have at hand.
class EmbeddedEncodings final : public EncodingSource {
public:
    Result<const Encoding*, Error> encoding(TokenizerKind encoding) const override {
        return &embedded_encoding(encoding);
    }
};

// A browser that has loaded nothing yet.
class NoEncodings final : public EncodingSource {
public:
    Result<const Encoding*, Error> encoding(TokenizerKind) const override {
        return unexpected(make_error("encoding_not_loaded", "no encoding in this test"));
    }
};

const EmbeddedEncodings embedded;
const NoEncodings none_loaded;

// A vector's request converted as a shell would: every member given is
// converted, its error kept. `text` must outlive the request.
EstimateRequest request_of(const Json& body) {
    EstimateRequest request;
    request.operation = body["operation"].get<std::string>();
    if (body.contains("model")) request.model = json_input::string_member(body, "model", "");
    if (body.contains("input_tokens")) {
        request.input_tokens = json_input::count_member(body, "input_tokens", "", limits::count_max);
    }
    if (body.contains("text")) request.text = Result<std::string_view, Error>(body["text"].get_ref<const std::string&>());
    if (body.contains("messages")) request.messages = chat_messages_from_json(body["messages"]);
    if (body.contains("max_output_tokens")) {
        request.max_output_tokens =
            json_input::optional_count_member(body, "max_output_tokens", "", limits::count_max, 0);
    }
    return request;
}

std::int64_t as_int(const Json& value) { return value.get<std::int64_t>(); }

// The reservation's price, as the server's ledger and the SDK take it.
Result<Charge, Error> price_of(const Estimate& sized) {
    return price(default_catalog(), to_string(sized.operation), sized.model == nullptr ? "" : sized.model->id,
                 sized.input_tokens, sized.max_output_tokens);
}

TEST(EstimateRule, SharedVectors) {
    const Json document = test::read_vector_json("estimate_vectors.json");
    const Json& cases = document["cases"];
    ASSERT_GT(cases.size(), 30U);
    for (const Json& c : cases) {
        SCOPED_TRACE(c["name"].get<std::string>());
        const Json& expect = c["expect"];
        auto sized = estimate(default_catalog(), request_of(c["request"]), embedded);
        Result<Charge, Error> charge = sized ? price_of(*sized) : Result<Charge, Error>(unexpected(sized.error()));
        if (expect.contains("error")) {
            ASSERT_FALSE(charge.has_value());
            EXPECT_EQ(charge.error().code, expect["error"].get<std::string>());
            if (expect.contains("field")) {
                EXPECT_NE(charge.error().message.find(expect["field"].get<std::string>()), std::string::npos);
            }
            continue;
        }
        ASSERT_TRUE(charge.has_value()) << charge.error().code << ": " << charge.error().message;
        EXPECT_EQ(sized->input_tokens, as_int(expect["input_tokens"]));
        EXPECT_EQ(sized->max_output_tokens, as_int(expect["max_output_tokens"]));
        EXPECT_EQ(sized->exact, expect["exact"].get<bool>());
        EXPECT_EQ(charge->raw_tokens, as_int(expect["raw_tokens"]));
        EXPECT_EQ(charge->charged_tokens, as_int(expect["charged_tokens"]));
        EXPECT_EQ(charge->avatars, as_int(expect["avatars"]));
    }
}

TEST(EstimateRule, TheModelIsTheCatalogs) {
    EstimateRequest request;
    request.operation = "chat";
    request.model = Result<std::string, Error>(std::string("gpt-4o"));
    request.input_tokens = Result<std::int64_t, Error>(std::int64_t{5});
    auto sized = estimate(default_catalog(), request, embedded);
    ASSERT_TRUE(sized.has_value());
    EXPECT_EQ(sized->operation, OperationKind::chat);
    EXPECT_EQ(sized->model, default_catalog().find_model("gpt-4o"));
}

TEST(EstimateRule, CountsOnlyWhatNeedsCounting) {
    EstimateRequest given;
    given.operation = "embedding";
    given.model = Result<std::string, Error>(std::string("text-embedding-3-small"));
    given.input_tokens = Result<std::int64_t, Error>(std::int64_t{7});
    // input_tokens are taken as given: no encoding is asked for.
    auto sized = estimate(default_catalog(), given, none_loaded);
    ASSERT_TRUE(sized.has_value());
    EXPECT_EQ(sized->input_tokens, 7);

    EstimateRequest text;
    text.operation = "embedding";
    text.model = given.model;
    text.text = Result<std::string_view, Error>(std::string_view("hello"));
    auto refused = estimate(default_catalog(), text, none_loaded);
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().code, "encoding_not_loaded");
}

TEST(EstimateRule, AnswersInTheServersWords) {
    const std::string long_id(100, 'x');
    struct Case {
        Json body;
        const char* message;
    };
    const std::vector<Case> cases = {
        {{{"operation", long_id}}, "unknown operation \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\""},
        {{{"operation", "chat"}, {"model", long_id}},
         "unknown model \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\""},
        {{{"operation", "avatar"}, {"text", "a"}}, "an avatar has a flat price; send no token counts"},
        {{{"operation", "chat"}, {"text", "a"}}, "missing field model"},
        {{{"operation", "chat"}, {"model", "gpt-4o"}}, "send exactly one of input_tokens, text or messages"},
        {{{"operation", "embedding"}, {"model", "text-embedding-3-small"}, {"messages", Json::array()}},
         "messages are for chat"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.body.dump());
        auto sized = estimate(default_catalog(), request_of(c.body), embedded);
        ASSERT_FALSE(sized.has_value());
        EXPECT_EQ(sized.error().message, c.message);
    }
}

}  // namespace
}  // namespace tokenmeter
