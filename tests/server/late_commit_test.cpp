// Late commits against a real server (DESIGN.md §5, "work that was authorized
// is always charged"): a commit after the reservation's TTL is charged within
// the grace period, marked late on its usage row and in the API, with its
// receipt in the user's chain; after the grace it is 410 and charges nothing.
// The ManualClock jumps past the TTL and the grace; the suite runs on SQLite
// and on PostgreSQL.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_server.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::body_of;
using test::TestServer;

constexpr std::int64_t ttl = 60;
constexpr std::int64_t default_grace = 24 * 3600;  // the server's default, which these tests rely on
constexpr std::int64_t free_limit = 1000;

test::TestServerOptions small_plan() {
    test::TestServerOptions options;
    options.reservation_ttl_seconds = ttl;
    options.catalog_json = test::catalog_with_free_limit(free_limit);
    return options;
}

// A chat reservation on gpt-4o-mini (multiplier 1): input + max_output tokens.
std::string reserve(TestServer& server, const std::string& user, std::int64_t input, std::int64_t max_output) {
    auto response = server.post("/v1/usage/authorize", {{"user_id", user}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                                                        {"input_tokens", input}, {"max_output_tokens", max_output}});
    EXPECT_TRUE(response && response->status == 200) << (response ? response->body : "no response");
    return response ? body_of(response).value("reservation_id", "") : "";
}

httplib::Result commit(TestServer& server, const std::string& key, const std::string& reservation_id,
                       std::int64_t input, std::int64_t output) {
    const json body = {{"reservation_id", reservation_id}, {"input_tokens", input}, {"output_tokens", output}};
    return server.client().Post("/v1/usage/commit", server.as_service(key), body.dump(), "application/json");
}

std::vector<VerificationKey> served_keys(TestServer& server) {
    auto response = server.client().Get("/v1/keys");
    EXPECT_TRUE(response && response->status == 200);
    return parse_jwks(response->body).value();
}

// The user's receipts verify and chain seq 1, 2, 3, … by prev (I5); returns
// the event of each.
std::vector<std::string> chained_events(TestServer& server, const std::string& user) {
    const auto keys = served_keys(server);
    std::vector<std::string> events;
    std::string prev;
    const auto receipts = server.app().store().read_receipts(user, 1, 1000);
    for (std::size_t i = 0; i < receipts.size(); ++i) {
        auto claims = verify_receipt(receipts[i], keys);
        EXPECT_TRUE(claims.has_value()) << "receipt " << i + 1;
        if (!claims) return events;
        EXPECT_EQ(claims->seq, static_cast<std::int64_t>(i + 1));
        EXPECT_EQ(claims->prev, prev);
        prev = receipt_chain_digest(receipts[i]);
        events.push_back(claims->event);
    }
    return events;
}

// I1: tokens used is the sum of the charged tokens of the user's usage rows.
std::int64_t charged_sum(TestServer& server, const std::string& user) {
    std::int64_t sum = 0;
    for (const auto& row : server.app().store().read_events(user, 0, 1000)) sum += row.charged_tokens;
    return sum;
}

TEST(LateCommits, ACommitAfterTheTtlIsChargedLatePastTheLimit) {
    TestServer server(small_plan());
    const std::string id = reserve(server, "lena", 500, 100);
    ASSERT_FALSE(id.empty());
    server.clock().advance(ttl + 30);

    // The provider used more than the plan's whole limit: charged in full.
    auto late = commit(server, "late-1", id, 1500, 200);
    ASSERT_TRUE(late);
    ASSERT_EQ(late->status, 200) << late->body;
    const json charge = body_of(late);
    EXPECT_EQ(charge["event"]["late"], true);
    EXPECT_EQ(charge["event"]["charged_tokens"], 1700);
    EXPECT_EQ(charge["event"]["reservation_id"], id);
    EXPECT_EQ(charge["usage"]["tokens"]["used"], 1700);
    EXPECT_EQ(charge["usage"]["tokens"]["reserved"], 0);
    EXPECT_EQ(charge["usage"]["tokens"]["remaining"], 0);
    EXPECT_GT(charge["usage"]["tokens"]["used"].get<std::int64_t>(), free_limit);

    // The same key and body answer the first response and charge nothing more.
    auto replay = commit(server, "late-1", id, 1500, 200);
    ASSERT_TRUE(replay);
    EXPECT_EQ(replay->status, 200);
    EXPECT_EQ(replay->body, late->body);
    // A new key for the same reservation finds it settled.
    auto again = commit(server, "late-2", id, 1500, 200);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 409);
    EXPECT_EQ(body_of(again)["error"]["code"], "reservation_settled");

    const auto rows = server.app().store().read_events("lena", 0, 100);
    ASSERT_EQ(rows.size(), 1U);
    EXPECT_TRUE(rows[0].late);
    EXPECT_EQ(server.usage_of("lena")["tokens"]["used"], charged_sum(server, "lena"));  // I1
    // The user's event list shows the mark too.
    const json listed = body_of(server.client().Get("/v1/me/usage/events", server.as_user("lena")));
    ASSERT_EQ(listed["events"].size(), 1U);
    EXPECT_EQ(listed["events"][0]["late"], true);

    // The expiry gave the reservation back; the late commit charged it; each
    // has its receipt in one unbroken chain.
    EXPECT_EQ(chained_events(server, "lena"), (std::vector<std::string>{"period_open", "authorize", "expire", "commit"}));
    // Past the limit, the next authorize is refused.
    auto next = server.post("/v1/usage/authorize", {{"user_id", "lena"}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                                                    {"input_tokens", 1}, {"max_output_tokens", 0}});
    ASSERT_TRUE(next);
    EXPECT_EQ(next->status, 402);
}

TEST(LateCommits, AnOnTimeCommitIsNotLate) {
    TestServer server(small_plan());
    const std::string id = reserve(server, "max", 100, 10);
    server.clock().advance(ttl - 1);
    auto on_time = commit(server, "on-time", id, 90, 5);
    ASSERT_TRUE(on_time);
    ASSERT_EQ(on_time->status, 200) << on_time->body;
    EXPECT_EQ(body_of(on_time)["event"]["late"], false);
    const auto rows = server.app().store().read_events("max", 0, 100);
    ASSERT_EQ(rows.size(), 1U);
    EXPECT_FALSE(rows[0].late);
}

TEST(LateCommits, AfterTheGraceTheCommitIsRefusedAndChargesNothing) {
    TestServer server(small_plan());
    const std::string last_second = reserve(server, "nina", 100, 100);
    const std::string too_late = reserve(server, "nina", 100, 100);
    const std::string to_release = reserve(server, "nina", 100, 100);
    ASSERT_FALSE(to_release.empty());
    server.clock().advance(ttl + 1);

    // Expiry gave the reservation back: there is nothing to release.
    auto release = server.post("/v1/usage/release", {{"reservation_id", to_release}});
    ASSERT_TRUE(release);
    EXPECT_EQ(release->status, 410);
    EXPECT_EQ(body_of(release)["error"]["code"], "reservation_expired");

    // The last second of the grace is still late enough to charge.
    server.clock().advance(default_grace - 2);
    auto charged = commit(server, "last-second", last_second, 50, 50);
    ASSERT_TRUE(charged);
    ASSERT_EQ(charged->status, 200) << charged->body;
    EXPECT_EQ(body_of(charged)["event"]["late"], true);

    // From expires_at + grace on: refused, and the refusal is what a retry gets.
    server.clock().advance(1);
    auto refused = commit(server, "too-late", too_late, 50, 50);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 410);
    EXPECT_EQ(body_of(refused)["error"]["code"], "reservation_expired");
    auto retried = commit(server, "too-late", too_late, 50, 50);
    ASSERT_TRUE(retried);
    EXPECT_EQ(retried->status, 410);
    EXPECT_EQ(retried->body, refused->body);

    const json usage = server.usage_of("nina");
    EXPECT_EQ(usage["tokens"]["used"], 100) << "only the commit within the grace charged";
    EXPECT_EQ(usage["tokens"]["reserved"], 0);
    EXPECT_EQ(server.app().store().read_events("nina", 0, 100).size(), 1U);
    EXPECT_EQ(usage["tokens"]["used"], charged_sum(server, "nina"));  // I1
    const auto events = chained_events(server, "nina");
    EXPECT_EQ(events.back(), "commit") << "a refusal issues no receipt";
}

TEST(LateCommits, AGraceOfZeroRefusesEveryCommitPastTheTtl) {
    test::TestServerOptions options = small_plan();
    options.late_commit_grace_seconds = 0;
    TestServer server(options);
    const std::string id = reserve(server, "olga", 100, 100);
    server.clock().advance(ttl);
    auto refused = commit(server, "no-grace", id, 10, 10);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 410);
    EXPECT_EQ(body_of(refused)["error"]["code"], "reservation_expired");
    EXPECT_EQ(server.usage_of("olga")["tokens"]["used"], 0);
    EXPECT_TRUE(server.app().store().read_events("olga", 0, 100).empty());
}

// The setting itself: a day by default, 0 (no grace) up to 30 days, from the
// config file or the environment. (No database: run once, not per store.)
TEST(LateCommitConfig, TheGraceDefaultsToADayAndIsBounded) {
    config::ServerConfig config;
    EXPECT_EQ(config.late_commit_grace_seconds, default_grace);
    EXPECT_FALSE(config::apply_environment(config, {{"TOKENMETER_LATE_COMMIT_GRACE_SECONDS", "0"}}).has_value());
    EXPECT_EQ(config.late_commit_grace_seconds, 0);
    EXPECT_FALSE(config::apply_file(config, R"({"late_commit_grace_seconds": 2592000})").has_value());
    EXPECT_EQ(config.late_commit_grace_seconds, 30 * 24 * 3600);
    for (const char* wrong : {"2592001", "-1", "a day", ""}) {
        auto error = config::apply_environment(config, {{"TOKENMETER_LATE_COMMIT_GRACE_SECONDS", wrong}});
        ASSERT_TRUE(error.has_value()) << wrong;
        EXPECT_EQ(error->code, "config_invalid");
        EXPECT_NE(error->message.find("TOKENMETER_LATE_COMMIT_GRACE_SECONDS"), std::string::npos) << error->message;
    }
    EXPECT_EQ(config.late_commit_grace_seconds, 30 * 24 * 3600) << "a refused value changes nothing";
}

}  // namespace
}  // namespace tokenmeter
