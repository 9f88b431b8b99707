// POST /v1/usage/authorize against the estimate rule's shared cases
// (tests/vectors/estimate_vectors.json): the server answers each as the core
// (tests/core/estimate_test.cpp) and the SDK (tests/wasm/estimate.test.mjs)
// do, a refusal with the same code, a reservation with the same charge.
#include <gtest/gtest.h>

#include <fstream>

#include "test_server.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::body_of;
using test::TestServer;

json read_vectors() {
    std::ifstream file(std::string(TM_VECTORS_DIR) + "/estimate_vectors.json");
    return json::parse(file);
}

TEST(EstimateRule, AuthorizeAnswersTheSharedVectors) {
    TestServer server;
    const json document = read_vectors();
    int user = 0;
    for (const json& c : document["cases"]) {
        SCOPED_TRACE(c["name"].get<std::string>());
        json body = c["request"];
        body["user_id"] = "estimate-" + std::to_string(++user);
        auto response = server.post("/v1/usage/authorize", body);
        ASSERT_TRUE(response);
        const json answer = body_of(response);
        const json& expect = c["expect"];
        if (expect.contains("error")) {
            EXPECT_EQ(response->status, 400) << response->body;
            EXPECT_EQ(answer["error"]["code"], expect["error"]) << response->body;
            if (expect.contains("field")) {
                EXPECT_NE(answer["error"]["message"].get<std::string>().find(expect["field"].get<std::string>()),
                          std::string::npos);
            }
            continue;
        }
        ASSERT_EQ(response->status, 200) << response->body;
        EXPECT_EQ(answer["raw_tokens"], expect["raw_tokens"]);
        EXPECT_EQ(answer["charged_tokens"], expect["charged_tokens"]);
        EXPECT_EQ(answer["avatars"], expect["avatars"]);
        EXPECT_EQ(answer["exact"], expect["exact"]);
    }
}

// What the server's JSON conversion adds to the rule: its own answers for
// values JSON can hold and the SDK's arguments cannot, in the rule's order.
TEST(EstimateRule, AuthorizeConvertsJsonMembers) {
    TestServer server;
    struct Case {
        json body;
        const char* code;
        const char* message;
    };
    const std::vector<Case> cases = {
        {{{"operation", "chat"}, {"model", "gpt-4o"}, {"text", 5}}, "invalid_value", "text must be a string"},
        {{{"operation", "chat"}, {"model", 4}, {"text", "a"}}, "invalid_value", "model must be a string"},
        {{{"operation", "chat"}, {"model", nullptr}, {"text", "a"}}, "missing_field", "missing field model"},
        {{{"operation", "chat"}, {"model", "gpt-4o"}, {"input_tokens", nullptr}}, "missing_field",
         "missing field input_tokens"},
        {{{"operation", "avatar"}, {"max_output_tokens", nullptr}}, "tokens_not_allowed",
         "an avatar has a flat price; send no token counts"},
        {{{"operation", "chat"}, {"model", "gpt-4o"}, {"input_tokens", 1}, {"max_output_tokens", 1000000001}},
         "invalid_value", "max_output_tokens must be an integer from 0 to 1000000000"},
        {{{"operation", 7}, {"model", "gpt-4o"}, {"input_tokens", 1}}, "invalid_value", "operation must be a string"},
    };
    int user = 0;
    for (const Case& c : cases) {
        SCOPED_TRACE(c.body.dump());
        json body = c.body;
        body["user_id"] = "convert-" + std::to_string(++user);
        auto response = server.post("/v1/usage/authorize", body);
        ASSERT_TRUE(response);
        EXPECT_EQ(response->status, 400);
        EXPECT_EQ(body_of(response)["error"]["code"], c.code) << response->body;
        EXPECT_EQ(body_of(response)["error"]["message"], c.message) << response->body;
    }
    // A null max_output_tokens is no budget, not an error.
    auto nothing_more = server.post("/v1/usage/authorize", {{"user_id", "convert-null"}, {"operation", "chat"},
                                                            {"model", "gpt-4o"}, {"input_tokens", 2},
                                                            {"max_output_tokens", nullptr}});
    ASSERT_TRUE(nothing_more);
    EXPECT_EQ(nothing_more->status, 200) << nothing_more->body;
    EXPECT_EQ(body_of(nothing_more)["charged_tokens"], 6);
}

}  // namespace
}  // namespace tokenmeter
