// Token classes over real HTTP (DESIGN.md §3, §7): a catalog whose model
// weighs cached input, output and reasoning tokens; commit and record bodies
// with cached_input_tokens and reasoning_tokens are charged with the
// weights, show their parts in the event and the user's event listing, and
// bodies without them answer exactly as before. Runs on SQLite and on
// PostgreSQL (migration 8's columns).
#include <gtest/gtest.h>

#include <string>

#include "test_server.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::body_of;
using test::TestServer;

// The seed catalog with gpt-4o weighing cached input at 1/2, output at 4 and
// reasoning at 5 (its multiplier stays 3).
test::TestServerOptions weighted_gpt_4o() {
    json catalog = json::parse(std::string(default_catalog_json()));
    for (json& model : catalog["models"]) {
        if (model["id"] == "gpt-4o") model["weights"] = {{"cached_input", "1/2"}, {"output", "4"}, {"reasoning", "5"}};
    }
    test::TestServerOptions options;
    options.catalog_json = catalog.dump();
    return options;
}

json posted(TestServer& server, const std::string& path, const json& body) {
    auto response = server.post(path, body);
    EXPECT_TRUE(response) << path;
    if (!response) return json{{"status", 0}};
    json answer = body_of(response);
    answer["status"] = response->status;
    return answer;
}

std::string reserve(TestServer& server, const std::string& user) {
    const json reserved = posted(server, "/v1/usage/authorize",
                                 {{"user_id", user}, {"operation", "chat"}, {"model", "gpt-4o"},
                                  {"input_tokens", 1000}, {"max_output_tokens", 500}});
    EXPECT_EQ(reserved["status"], 200) << reserved.dump();
    // The reservation: input weight on the prompt, output weight on the max output, x 3.
    EXPECT_EQ(reserved["charged_tokens"], (1000 + 4 * 500) * 3);
    return reserved.value("reservation_id", "");
}

json events_of(TestServer& server, const std::string& user) {
    auto response = server.client().Get("/v1/me/usage/events", server.as_user(user));
    EXPECT_TRUE(response && response->status == 200);
    return response ? body_of(response)["events"] : json::array();
}

TEST(TokenClasses, ACommitIsChargedWithTheWeightsAndItsEventShowsTheParts) {
    TestServer server(weighted_gpt_4o());
    const std::string id = reserve(server, "ada");
    const json committed = posted(server, "/v1/usage/commit",
                                  {{"reservation_id", id}, {"input_tokens", 1000}, {"cached_input_tokens", 300},
                                   {"output_tokens", 234}, {"reasoning_tokens", 100}});
    ASSERT_EQ(committed["status"], 200) << committed.dump();
    // (700 + 300/2 + 4 * 134 + 5 * 100) x 3, one rounding.
    const std::int64_t charged = (700 + 150 + 536 + 500) * 3;
    EXPECT_EQ(committed["event"]["charged_tokens"], charged);
    EXPECT_EQ(committed["event"]["raw_tokens"], 1234);
    EXPECT_EQ(committed["event"]["cached_input_tokens"], 300);
    EXPECT_EQ(committed["event"]["reasoning_tokens"], 100);
    EXPECT_EQ(committed["usage"]["tokens"]["used"], charged);
    EXPECT_EQ(committed["usage"]["tokens"]["reserved"], 0);

    const json events = events_of(server, "ada");
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0]["charged_tokens"], charged);
    EXPECT_EQ(events[0]["cached_input_tokens"], 300);
    EXPECT_EQ(events[0]["reasoning_tokens"], 100);
    EXPECT_EQ(events[0]["input_tokens"], 1000);
    EXPECT_EQ(events[0]["output_tokens"], 234);
}

TEST(TokenClasses, AReplayedCommitWithPartsAnswersTheSameBytes) {
    TestServer server(weighted_gpt_4o());
    const std::string id = reserve(server, "dee");
    const json body = {{"reservation_id", id}, {"input_tokens", 1000}, {"cached_input_tokens", 300},
                       {"output_tokens", 234}, {"reasoning_tokens", 100}};
    auto client = server.client();
    auto first = client.Post("/v1/usage/commit", server.as_service("commit-dee"), body.dump(), "application/json");
    ASSERT_TRUE(first && first->status == 200) << (first ? first->body : "no response");
    // The replay is rendered from the journal's change: the parts survive it.
    auto again = client.Post("/v1/usage/commit", server.as_service("commit-dee"), body.dump(), "application/json");
    ASSERT_TRUE(again && again->status == 200);
    EXPECT_EQ(again->body, first->body);
    EXPECT_EQ(body_of(again)["event"]["reasoning_tokens"], 100);
    // The same key with the parts left out is another body.
    json without = body;
    without.erase("reasoning_tokens");
    auto other = client.Post("/v1/usage/commit", server.as_service("commit-dee"), without.dump(), "application/json");
    ASSERT_TRUE(other);
    EXPECT_EQ(other->status, 422);
}

TEST(TokenClasses, ARecordIsChargedWithTheWeightsAndAnEventWithoutPartsReadsAsBefore) {
    TestServer server(weighted_gpt_4o());
    const json with_parts = posted(server, "/v1/usage/record",
                                   {{"user_id", "bea"}, {"operation", "chat"}, {"model", "gpt-4o"},
                                    {"input_tokens", 10}, {"cached_input_tokens", 5}, {"output_tokens", 3},
                                    {"reasoning_tokens", 3}});
    ASSERT_EQ(with_parts["status"], 200) << with_parts.dump();
    // (5 + 5/2 + 5 * 3) x 3 = 67.5 -> 68
    EXPECT_EQ(with_parts["event"]["charged_tokens"], 68);
    const json without = posted(server, "/v1/usage/record",
                                {{"user_id", "bea"}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                                 {"input_tokens", 10}, {"output_tokens", 3}});
    ASSERT_EQ(without["status"], 200) << without.dump();
    EXPECT_EQ(without["event"]["charged_tokens"], 13);
    EXPECT_FALSE(without["event"].contains("cached_input_tokens"));
    EXPECT_FALSE(without["event"].contains("reasoning_tokens"));
    const json events = events_of(server, "bea");
    ASSERT_EQ(events.size(), 2U);
    EXPECT_FALSE(events[0].contains("cached_input_tokens"));  // newest first: gpt-4o-mini
    EXPECT_EQ(events[1]["cached_input_tokens"], 5);
    EXPECT_EQ(events[1]["reasoning_tokens"], 3);
    EXPECT_EQ(body_of(server.client().Get("/v1/me/usage", server.as_user("bea")))["tokens"]["used"], 68 + 13);
}

TEST(TokenClasses, APartLargerThanItsWholeIs400AndChargesNothing) {
    TestServer server(weighted_gpt_4o());
    const std::string id = reserve(server, "cy");
    const struct {
        json body;
        std::string message;
    } cases[] = {
        {{{"reservation_id", id}, {"input_tokens", 10}, {"cached_input_tokens", 11}, {"output_tokens", 1}},
         "cached_input_tokens (11) must not exceed input_tokens (10)"},
        {{{"reservation_id", id}, {"input_tokens", 10}, {"output_tokens", 1}, {"reasoning_tokens", 2}},
         "reasoning_tokens (2) must not exceed output_tokens (1)"},
        {{{"reservation_id", id}, {"input_tokens", 10}, {"output_tokens", 1}, {"reasoning_tokens", -2}},
         "reasoning_tokens"},
    };
    for (const auto& c : cases) {
        const json refused = posted(server, "/v1/usage/commit", c.body);
        EXPECT_EQ(refused["status"], 400) << refused.dump();
        EXPECT_NE(refused["error"]["message"].get<std::string>().find(c.message), std::string::npos) << refused.dump();
    }
    const json record = posted(server, "/v1/usage/record",
                               {{"user_id", "cy"}, {"operation", "chat"}, {"model", "gpt-4o"}, {"input_tokens", 0},
                                {"cached_input_tokens", 1}});
    EXPECT_EQ(record["status"], 400);
    EXPECT_EQ(record["error"]["code"], "invalid_count");
    EXPECT_EQ(server.usage_of("cy")["tokens"]["used"], 0);
    EXPECT_EQ(events_of(server, "cy").size(), 0U);
}

TEST(TokenClasses, TheServedCatalogCarriesTheWeights) {
    TestServer weighted(weighted_gpt_4o());
    const json served = body_of(weighted.client().Get("/v1/catalog"));
    bool found = false;
    for (const json& model : served["models"]) {
        if (model["id"] == "gpt-4o") {
            found = true;
            EXPECT_EQ(model["weights"], (json{{"input", "1"}, {"cached_input", "1/2"}, {"output", "4"}, {"reasoning", "5"}}));
        } else {
            EXPECT_FALSE(model.contains("weights")) << model.dump();
        }
    }
    EXPECT_TRUE(found);
    TestServer plain;
    EXPECT_EQ(plain.client().Get("/v1/catalog")->body, catalog_to_json(default_catalog()));
}

}  // namespace
}  // namespace tokenmeter
