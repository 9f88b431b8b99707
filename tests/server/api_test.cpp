// The HTTP API against a real server on a loopback port with a real SQLite
// file: every endpoint, the ledger's answers, receipts and their chain.
#include <gtest/gtest.h>

#include "test_server.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::body_of;
using test::TestServer;

std::vector<VerificationKey> served_keys(TestServer& server) {
    auto response = server.client().Get("/v1/keys");
    EXPECT_TRUE(response && response->status == 200);
    return parse_jwks(response->body).value();
}

json authorize_chat(TestServer& server, const std::string& user, std::int64_t input, std::int64_t max_output,
                    const std::string& model = "gpt-4o-mini") {
    auto response = server.post("/v1/usage/authorize", {{"user_id", user}, {"operation", "chat"}, {"model", model},
                                                        {"input_tokens", input}, {"max_output_tokens", max_output}});
    EXPECT_TRUE(response);
    json body = body_of(response);
    body["status"] = response ? response->status : 0;
    return body;
}

TEST(Api, PublicEndpoints) {
    TestServer server;
    auto client = server.client();
    auto health = client.Get("/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    EXPECT_EQ(body_of(health)["storage"], "ok");
    const auto keys = served_keys(server);
    ASSERT_EQ(keys.size(), 1U);
    EXPECT_EQ(keys[0].kid, server.app().signing_key().kid());
    auto catalog = client.Get("/v1/catalog");
    ASSERT_TRUE(catalog);
    EXPECT_TRUE(parse_catalog(catalog->body).has_value());
    auto openapi = client.Get("/v1/openapi.json");
    ASSERT_TRUE(openapi);
    EXPECT_EQ(body_of(openapi)["openapi"], "3.0.3");
    auto metrics = client.Get("/metrics");  // from loopback
    ASSERT_TRUE(metrics);
    EXPECT_EQ(metrics->status, 200);
    EXPECT_NE(metrics->body.find("tokenmeter_http_requests_total{route=\"/healthz\",status=\"200\"} 1"), std::string::npos);
    auto missing = client.Get("/v1/nothing-here");
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404);
    EXPECT_EQ(body_of(missing)["error"]["code"], "not_found");
}

TEST(Api, FirstUseShowsAFreePeriodWithAVerifiedReceipt) {
    TestServer server;
    auto response = server.client().Get("/v1/me/usage", server.as_user("alice"));
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200) << response->body;
    const json snapshot = body_of(response);
    EXPECT_EQ(snapshot["user_id"], "alice");
    EXPECT_EQ(snapshot["plan"], "free");
    EXPECT_EQ(snapshot["tokens"]["limit"], 250000);
    EXPECT_EQ(snapshot["tokens"]["remaining"], 250000);
    EXPECT_EQ(snapshot["avatars"]["remaining"], 5);
    EXPECT_EQ(snapshot["period"]["start"], "2025-11-24T00:00:00Z");
    EXPECT_EQ(snapshot["period"]["end"], "2025-12-24T00:00:00Z");
    auto claims = verify_receipt(snapshot["receipt"].get<std::string>(), served_keys(server));
    ASSERT_TRUE(claims.has_value()) << claims.error().message;
    EXPECT_EQ(claims->seq, 1);
    EXPECT_EQ(claims->event, "period_open");
    EXPECT_EQ(claims->balance.tokens_limit, 250000);
    // A second read is the same stored receipt, byte for byte.
    auto again = server.client().Get("/v1/me/usage", server.as_user("alice"));
    EXPECT_EQ(body_of(again)["receipt"], snapshot["receipt"]);
}

TEST(Api, AuthorizeCommitChargesByModelAndChainsReceipts) {
    TestServer server;
    const json reserved = authorize_chat(server, "bob", 1000, 234, "gpt-4o");
    ASSERT_EQ(reserved["status"], 200) << reserved.dump();
    EXPECT_EQ(reserved["charged_tokens"], 3702);
    EXPECT_EQ(reserved["usage"]["tokens"]["reserved"], 3702);
    EXPECT_EQ(reserved["usage"]["tokens"]["remaining"], 250000 - 3702);
    auto committed = server.post("/v1/usage/commit", {{"reservation_id", reserved["reservation_id"]},
                                                      {"input_tokens", 1000}, {"output_tokens", 100}});
    ASSERT_TRUE(committed);
    ASSERT_EQ(committed->status, 200) << committed->body;
    const json charge = body_of(committed);
    EXPECT_EQ(charge["event"]["charged_tokens"], 3300);
    EXPECT_EQ(charge["event"]["multiplier"], "3");
    EXPECT_EQ(charge["event"]["catalog_version"], "2026-11-01");
    EXPECT_EQ(charge["usage"]["tokens"]["used"], 3300);
    EXPECT_EQ(charge["usage"]["tokens"]["reserved"], 0);

    // The receipts chain from the first to the last without a gap.
    const auto keys = served_keys(server);
    const auto receipts = server.app().store().read_receipts("bob", 1, 100);
    ASSERT_EQ(receipts.size(), 3U);  // period_open, authorize, commit
    std::string prev;
    for (std::size_t i = 0; i < receipts.size(); ++i) {
        auto claims = verify_receipt(receipts[i], keys);
        ASSERT_TRUE(claims.has_value());
        EXPECT_EQ(claims->seq, static_cast<std::int64_t>(i + 1));
        EXPECT_EQ(claims->prev, prev);
        prev = receipt_chain_digest(receipts[i]);
    }
    EXPECT_EQ(charge["usage"]["receipt"], receipts.back());

    auto events = server.client().Get("/v1/me/usage/events", server.as_user("bob"));
    ASSERT_TRUE(events);
    const json page = body_of(events);
    ASSERT_EQ(page["events"].size(), 1U);
    EXPECT_EQ(page["events"][0]["reservation_id"], reserved["reservation_id"]);
    auto summary = server.client().Get("/v1/me/usage/summary?group_by=model", server.as_user("bob"));
    ASSERT_TRUE(summary);
    const json totals = body_of(summary);
    ASSERT_EQ(totals["groups"].size(), 1U);
    EXPECT_EQ(totals["groups"][0]["key"], "gpt-4o");
    EXPECT_EQ(totals["groups"][0]["charged_tokens"], 3300);
}

TEST(Api, RefusesWhatDoesNotFitWithTheUpgradePath) {
    TestServer server;
    const json first = authorize_chat(server, "carol", 200000, 0);
    ASSERT_EQ(first["status"], 200);
    const json over = authorize_chat(server, "carol", 50001, 0);
    EXPECT_EQ(over["status"], 402);
    EXPECT_EQ(over["error"]["code"], "limit_exceeded");
    EXPECT_EQ(over["error"]["needed"], 50001);
    EXPECT_EQ(over["error"]["remaining"], 50000);
    EXPECT_EQ(over["error"]["plan"], "free");
    EXPECT_EQ(over["error"]["upgrade_url"], "/v1/me/checkout");
    EXPECT_EQ(over["usage"]["tokens"]["reserved"], 200000);
    EXPECT_EQ(authorize_chat(server, "carol", 50000, 0)["status"], 200);
}

TEST(Api, AvatarsSpendTheAvatarQuota) {
    TestServer server;
    for (int i = 0; i < 5; ++i) {
        auto response = server.post("/v1/usage/record", {{"user_id", "dave"}, {"operation", "avatar"}});
        ASSERT_TRUE(response);
        ASSERT_EQ(response->status, 200) << response->body;
    }
    auto sixth = server.post("/v1/usage/record", {{"user_id", "dave"}, {"operation", "avatar"}});
    ASSERT_TRUE(sixth);
    EXPECT_EQ(sixth->status, 402);
    EXPECT_EQ(body_of(sixth)["error"]["code"], "avatar_limit_exceeded");
    const json usage = server.usage_of("dave");
    EXPECT_EQ(usage["avatars"]["used"], 5);
    EXPECT_EQ(usage["tokens"]["used"], 50000);
}

// A server that has never held an account (after a restart, or another
// server's) reads it from storage; a refusal decided on it changes nothing,
// so its snapshot is the account's newest stored receipt, not an empty one.
TEST(Api, ARefusalOnAnAccountReadFromStorageCarriesItsNewestReceipt) {
    TestServer first;
    for (int i = 0; i < 5; ++i) ASSERT_EQ(first.post("/v1/usage/record", {{"user_id", "wes"}, {"operation", "avatar"}})->status, 200);
    first.app().shutdown();
    test::TestServerOptions options;
    options.db = first.db();
    TestServer second(options);
    const std::string body = R"({"user_id":"wes","operation":"avatar"})";
    auto refused = second.client().Post("/v1/usage/record", second.as_service("sixth-avatar"), body, "application/json");
    ASSERT_TRUE(refused);
    ASSERT_EQ(refused->status, 402) << refused->body;
    const json usage = second.usage_of("wes");
    EXPECT_EQ(usage["seq"], 6);
    EXPECT_EQ(body_of(refused)["usage"]["receipt"], usage["receipt"]) << refused->body;
    EXPECT_EQ(body_of(refused)["usage"]["seq"], 6);
    auto replayed = second.client().Post("/v1/usage/record", second.as_service("sixth-avatar"), body, "application/json");
    ASSERT_TRUE(replayed);
    EXPECT_EQ(replayed->body, refused->body);
}

TEST(Api, ReservationsResolveAtMostOnce) {
    TestServer server;
    const json reserved = authorize_chat(server, "erin", 100, 100);
    const std::string id = reserved["reservation_id"].get<std::string>();
    auto released = server.post("/v1/usage/release", {{"reservation_id", id}});
    ASSERT_TRUE(released);
    EXPECT_EQ(released->status, 200);
    EXPECT_EQ(body_of(released)["usage"]["tokens"]["reserved"], 0);
    auto commit_after_release = server.post("/v1/usage/commit", {{"reservation_id", id}, {"input_tokens", 1}, {"output_tokens", 1}});
    EXPECT_EQ(commit_after_release->status, 409);
    EXPECT_EQ(body_of(commit_after_release)["error"]["code"], "reservation_settled");
    const json second = authorize_chat(server, "erin", 100, 100);
    const std::string other = second["reservation_id"].get<std::string>();
    auto committed = server.post("/v1/usage/commit", {{"reservation_id", other}, {"input_tokens", 10}, {"output_tokens", 5}});
    EXPECT_EQ(committed->status, 200);
    auto double_commit = server.post("/v1/usage/commit", {{"reservation_id", other}, {"input_tokens", 10}, {"output_tokens", 5}});
    EXPECT_EQ(double_commit->status, 409);
    auto unknown = server.post("/v1/usage/commit", {{"reservation_id", "rsv_nope"}, {"input_tokens", 1}, {"output_tokens", 1}});
    EXPECT_EQ(unknown->status, 404);
    EXPECT_EQ(body_of(unknown)["error"]["code"], "reservation_unknown");
    EXPECT_EQ(server.usage_of("erin")["tokens"]["used"], 15);
}

TEST(Api, OpenReservationsExpireAfterTheTtl) {
    test::TestServerOptions options;
    options.reservation_ttl_seconds = 60;
    TestServer server(options);
    for (int i = 0; i < 5; ++i) ASSERT_EQ(authorize_chat(server, "frank", 1000, 0)["status"], 200);
    EXPECT_EQ(server.usage_of("frank")["tokens"]["reserved"], 5000);
    server.clock().advance(59);
    EXPECT_EQ(server.usage_of("frank")["tokens"]["reserved"], 5000);
    server.clock().advance(1);
    const json usage = server.usage_of("frank");
    EXPECT_EQ(usage["tokens"]["reserved"], 0);
    EXPECT_EQ(usage["tokens"]["used"], 0);
    auto claims = verify_receipt(usage["receipt"].get<std::string>(), served_keys(server));
    ASSERT_TRUE(claims.has_value());
    EXPECT_EQ(claims->event, "expire");
}

TEST(Api, ThePeriodRollsOverLazily) {
    TestServer server;
    ASSERT_EQ(server.post("/v1/usage/record", {{"user_id", "gina"}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                                               {"input_tokens", 700}, {"output_tokens", 0}})->status, 200);
    server.clock().advance(31 * 86400);
    const json usage = server.usage_of("gina");
    EXPECT_EQ(usage["tokens"]["used"], 0);
    EXPECT_EQ(usage["period"]["start"], "2025-12-24T00:00:00Z");
    EXPECT_EQ(usage["period"]["end"], "2026-01-24T00:00:00Z");
}

TEST(Api, ScopesAreEnforced) {
    TestServer server;
    auto client = server.client();
    auto anonymous = client.Get("/v1/me/usage");
    EXPECT_EQ(anonymous->status, 401);
    auto service_on_user_api = client.Get("/v1/me/usage", server.as_service());
    EXPECT_EQ(service_on_user_api->status, 403);
    httplib::Headers user = server.as_user("henry");
    user.emplace("Idempotency-Key", "k1");
    auto user_on_service_api = client.Post("/v1/usage/record", user,
                                           R"({"user_id":"henry","operation":"avatar"})", "application/json");
    EXPECT_EQ(user_on_service_api->status, 403);
    auto user_reads_other = client.Get("/v1/users/ivy/usage", server.as_user("henry"));
    EXPECT_EQ(user_reads_other->status, 403);
    httplib::Headers wrong = {{"Authorization", "Bearer " + test::mint_user_token("henry", server.clock().now_seconds(), 3600,
                                                                                   "another-secret-another-secret-xx")}};
    EXPECT_EQ(client.Get("/v1/me/usage", wrong)->status, 401);
    EXPECT_EQ(server.usage_of("henry")["seq"], 1);  // only the service read created it
}

TEST(Api, LiveStreamPushesAChangeWithoutWaitingForTheHeartbeat) {
    // The stream's only timer, its heartbeat, an hour away: a change that
    // reaches the stream at all within the reader's patience (a hang guard,
    // not a performance bound) was pushed by the write that made it.
    test::TestServerOptions options;
    options.sse_heartbeat_seconds = 3600;
    TestServer server(options);
    test::UsageStreamReader stream(server, "jack");
    auto events = [](std::size_t n) { return [n](const std::string& text) { return test::UsageStreamReader::usage_events(text) >= n; }; };
    ASSERT_TRUE(stream.wait_for(events(1))) << stream.text();
    ASSERT_EQ(test::UsageStreamReader::usage_events(stream.text()), 1U);
    ASSERT_EQ(server.post("/v1/usage/record", {{"user_id", "jack"}, {"operation", "avatar"}})->status, 200);
    ASSERT_TRUE(stream.wait_for(events(2))) << "the change was not pushed: " << stream.text();
    const std::string text = stream.text();
    EXPECT_EQ(test::UsageStreamReader::usage_events(text), 2U) << text;
    EXPECT_NE(text.find("\"avatars\":{\"limit\":5,\"remaining\":4"), std::string::npos) << text;
}

TEST(Api, EventsPaginateNewestFirst) {
    TestServer server;
    for (int i = 1; i <= 7; ++i) {
        ASSERT_EQ(server.post("/v1/usage/record", {{"user_id", "kim"}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                                                   {"input_tokens", i}, {"output_tokens", 0}})->status, 200);
    }
    std::vector<std::int64_t> seen;
    std::string cursor;
    for (int page = 0; page < 5; ++page) {
        std::string path = "/v1/me/usage/events?limit=3";
        if (!cursor.empty()) path += "&cursor=" + cursor;
        const json body = body_of(server.client().Get(path, server.as_user("kim")));
        for (const auto& event : body["events"]) seen.push_back(event["input_tokens"].get<std::int64_t>());
        if (body["next_cursor"].is_null()) break;
        cursor = body["next_cursor"].get<std::string>();
    }
    EXPECT_EQ(seen, (std::vector<std::int64_t>{7, 6, 5, 4, 3, 2, 1}));
    EXPECT_EQ(server.client().Get("/v1/me/usage/events?cursor=zzz", server.as_user("kim"))->status, 400);
    EXPECT_EQ(server.client().Get("/v1/me/usage/events?limit=0", server.as_user("kim"))->status, 400);
    EXPECT_EQ(server.client().Get("/v1/me/usage/summary?group_by=colour", server.as_user("kim"))->status, 400);
}

TEST(Api, ASecondServerCannotTakeAPortInUse) {
    TestServer first;
    config::ServerConfig config;
    config.db = "sqlite:" + first.dir() + "/second.db";
    config.listen = "127.0.0.1:" + std::to_string(first.port());
    config.jwt_secret = test::jwt_secret;
    config.service_keys = {test::service_key};
    config.signing_key_file = first.dir() + "/second.jwk";
    ASSERT_TRUE(keys::generate_signing_key_file(config.signing_key_file).has_value());
    auto second = App::create(config, std::make_shared<ManualClock>(1764000000));
    ASSERT_TRUE(second.has_value()) << second.error().message;
    auto port = (*second)->start();
    EXPECT_FALSE(port.has_value()) << "a second server bound port " << first.port();
    // The first one still answers every request.
    for (int i = 0; i < 20; ++i) ASSERT_EQ(first.client().Get("/healthz")->status, 200);
}

}  // namespace
}  // namespace tokenmeter
