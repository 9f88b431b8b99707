// Malformed and hostile requests: each gets a 4xx with an error code, and the
// ledger keeps no trace of it (no receipt, no usage row, no reservation).
#include <gtest/gtest.h>

#include "test_server.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::body_of;
using test::TestServer;

struct BadRequest {
    const char* name;
    const char* path;
    std::string body;
    int status;
    const char* code;
};

TEST(BadInput, EachIsRefusedPreciselyAndLeavesNoTrace) {
    TestServer server;
    // The user exists first, so "no trace" means: its receipt sequence and
    // usage stay exactly where they were.
    const json before = server.usage_of("mallory");
    ASSERT_EQ(before["seq"], 1);
    const std::string big(5 << 20, 'a');
    // A model name whose 64th byte is inside a character: the message quotes
    // 64 bytes of it at most, and must still be UTF-8 to be written as JSON.
    std::string accented = "x";
    for (int i = 0; i < 40; ++i) accented += "\xc3\xa9";  // U+00E9
    const std::vector<BadRequest> cases = {
        {"malformed json", "/v1/usage/authorize", "{\"user_id\":", 400, "malformed_json"},
        {"not an object", "/v1/usage/authorize", "[1,2]", 400, "invalid_body"},
        {"unknown model", "/v1/usage/authorize", R"({"user_id":"mallory","operation":"chat","model":"gpt-9","input_tokens":1})", 400, "unknown_model"},
        {"unknown model, quoted in part", "/v1/usage/authorize",
         R"({"user_id":"mallory","operation":"chat","model":")" + accented + R"(","input_tokens":1})", 400, "unknown_model"},
        {"unknown operation", "/v1/usage/authorize", R"({"user_id":"mallory","operation":"video","model":"gpt-4o","input_tokens":1})", 400, "unknown_operation"},
        {"negative count", "/v1/usage/authorize", R"({"user_id":"mallory","operation":"chat","model":"gpt-4o","input_tokens":-5})", 400, "invalid_value"},
        {"fractional count", "/v1/usage/authorize", R"({"user_id":"mallory","operation":"chat","model":"gpt-4o","input_tokens":1.5})", 400, "invalid_value"},
        {"string count", "/v1/usage/authorize", R"({"user_id":"mallory","operation":"chat","model":"gpt-4o","input_tokens":"10"})", 400, "invalid_value"},
        {"huge count", "/v1/usage/authorize", R"({"user_id":"mallory","operation":"chat","model":"gpt-4o","input_tokens":100000000000000000000000})", 400, "invalid_value"},
        {"past the request bound", "/v1/usage/authorize", R"({"user_id":"mallory","operation":"chat","model":"gpt-4o","input_tokens":1000000001})", 400, "invalid_value"},
        {"missing user", "/v1/usage/authorize", R"({"operation":"chat","model":"gpt-4o","input_tokens":1})", 400, "missing_field"},
        {"missing input", "/v1/usage/authorize", R"({"user_id":"mallory","operation":"chat","model":"gpt-4o"})", 400, "missing_field"},
        {"two inputs", "/v1/usage/authorize", R"({"user_id":"mallory","operation":"chat","model":"gpt-4o","input_tokens":1,"text":"hi"})", 400, "missing_field"},
        {"unknown field", "/v1/usage/authorize", R"({"user_id":"mallory","operation":"chat","model":"gpt-4o","input_tokens":1,"discount":50})", 400, "unknown_field"},
        {"bad user id", "/v1/usage/authorize", R"({"user_id":"mal lory","operation":"chat","model":"gpt-4o","input_tokens":1})", 400, "invalid_value"},
        {"avatar with tokens", "/v1/usage/authorize", R"({"user_id":"mallory","operation":"avatar","input_tokens":1})", 400, "tokens_not_allowed"},
        {"embedding output", "/v1/usage/record", R"({"user_id":"mallory","operation":"embedding","model":"text-embedding-3-small","input_tokens":5,"output_tokens":1})", 400, "output_not_allowed"},
        {"wrong model for operation", "/v1/usage/record", R"({"user_id":"mallory","operation":"embedding","model":"gpt-4o","input_tokens":5})", 400, "model_not_allowed"},
        {"commit without id", "/v1/usage/commit", R"({"input_tokens":1,"output_tokens":1})", 400, "missing_field"},
        {"commit unknown field", "/v1/usage/commit", R"({"reservation_id":"rsv_x","tokens":1})", 400, "unknown_field"},
        {"oversized body", "/v1/usage/authorize", "{\"text\":\"" + big + "\"}", 413, "body_too_large"},
    };
    int key = 0;
    for (const BadRequest& c : cases) {
        auto response = server.client().Post(c.path, server.as_service("bad-" + std::to_string(++key)), c.body,
                                             "application/json");
        ASSERT_TRUE(response) << c.name;
        EXPECT_EQ(response->status, c.status) << c.name << ": " << response->body;
        EXPECT_EQ(body_of(response)["error"]["code"], c.code) << c.name << ": " << response->body;
    }
    auto no_key = server.client().Post("/v1/usage/record", server.as_service(),
                                       R"({"user_id":"mallory","operation":"avatar"})", "application/json");
    EXPECT_EQ(no_key->status, 400);
    EXPECT_EQ(body_of(no_key)["error"]["code"], "idempotency_key_missing");
    const json after = server.usage_of("mallory");
    EXPECT_EQ(after["seq"], 1);
    EXPECT_EQ(after["receipt"], before["receipt"]);
    auto events = server.app().store().read_events("mallory", 0, 10);
    EXPECT_TRUE(events.empty());
    // And a bad request did not burn its idempotency key.
    auto retried = server.client().Post("/v1/usage/record", server.as_service("bad-1"),
                                        R"({"user_id":"mallory","operation":"avatar"})", "application/json");
    EXPECT_EQ(retried->status, 200);
}

TEST(BadInput, HostileHeadersAndTokens) {
    TestServer server;
    auto client = server.client();
    httplib::Headers many = server.as_user("nina");
    for (int i = 0; i < 100; ++i) many.emplace("X-Filler-" + std::to_string(i), "x");
    auto flooded = client.Get("/v1/me/usage", many);
    ASSERT_TRUE(flooded);
    EXPECT_EQ(flooded->status, 431);
    const std::string huge_token(1 << 20, 'a');
    auto huge = client.Get("/v1/me/usage", {{"Authorization", "Bearer " + huge_token}});
    // The header is refused before it is read in full, or answered 4xx.
    if (huge) {
        EXPECT_GE(huge->status, 400);
        EXPECT_LT(huge->status, 500);
    }
    for (const char* junk : {"Bearer", "Bearer ", "Basic abc", "Bearer a.b.c", "Bearer ...", "bearer x y"}) {
        auto response = server.client().Get("/v1/me/usage", {{"Authorization", junk}});
        ASSERT_TRUE(response) << junk;
        EXPECT_EQ(response->status, 401) << junk;
    }
}

}  // namespace
}  // namespace tokenmeter
