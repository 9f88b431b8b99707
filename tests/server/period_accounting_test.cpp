// Which period a charge and a reservation belong to, on SQLite and on
// PostgreSQL. The ledger decides it, not the clock of the moment: a charge
// made while the clock stands behind the current period's start (a clock
// stepped back) is still that period's, so /v1/me/usage/summary, which
// selects charges by period, adds up to the snapshot's `used`. A rollover
// closes a period with nothing reserved; its open reservations move on and
// settle in the next period, and I1 holds for both.
#include <gtest/gtest.h>

#include "chain_audit.hpp"
#include "test_server.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::body_of;
using test::TestServer;

// 2025-12-24T00:00:00Z: the end of the first period of a user whose first
// use is at the test clock's start, 2025-11-24T16:00:00Z.
constexpr std::int64_t first_period_end = 1766534400;

void expect_chains_intact(const TestServer& server) {
    const auto report = test::chain_audit::audit_database(server.db(), server.signing_key_file());
    EXPECT_TRUE(report.ok()) << report.describe();
}

json record(TestServer& server, const json& body) {
    auto response = server.post("/v1/usage/record", body);
    EXPECT_TRUE(response && response->status == 200) << (response ? response->body : "no answer");
    return body_of(response);
}

json chat(const std::string& user, const std::string& model, std::int64_t input, std::int64_t output) {
    return {{"user_id", user}, {"operation", "chat"}, {"model", model}, {"input_tokens", input}, {"output_tokens", output}};
}

json avatar(const std::string& user) { return {{"user_id", user}, {"operation", "avatar"}}; }

// Every grouping of the summary adds up to the snapshot: same period, same
// tokens used, same avatars used, one event per charge of the period.
void expect_summary_adds_up(TestServer& server, const std::string& user, std::int64_t charges) {
    auto usage = server.client().Get("/v1/me/usage", server.as_user(user));
    ASSERT_TRUE(usage && usage->status == 200);
    const json snapshot = body_of(usage);
    for (const char* grouping : {"day", "model", "operation"}) {
        auto response = server.client().Get(std::string("/v1/me/usage/summary?group_by=") + grouping, server.as_user(user));
        ASSERT_TRUE(response && response->status == 200) << grouping;
        const json summary = body_of(response);
        std::int64_t tokens = 0;
        std::int64_t avatars = 0;
        std::int64_t events = 0;
        for (const json& group : summary["groups"]) {
            tokens += group["charged_tokens"].get<std::int64_t>();
            avatars += group["avatars"].get<std::int64_t>();
            events += group["events"].get<std::int64_t>();
        }
        EXPECT_EQ(summary["period"], snapshot["period"]) << grouping;
        EXPECT_EQ(tokens, snapshot["tokens"]["used"].get<std::int64_t>()) << "by " << grouping << ": " << summary.dump();
        EXPECT_EQ(avatars, snapshot["avatars"]["used"].get<std::int64_t>()) << "by " << grouping << ": " << summary.dump();
        EXPECT_EQ(events, charges) << "by " << grouping;
    }
}

TEST(PeriodAccounting, SummaryTotalsEqualUsedAfterTheClockStepsBack) {
    TestServer server;
    const std::int64_t t0 = server.clock().now_seconds();
    record(server, chat("tova", "gpt-4o-mini", 100, 10));
    record(server, chat("tova", "gpt-4o", 50, 5));
    record(server, avatar("tova"));
    // The clock steps back two days, before the period's start: the charges
    // it makes now are still the current period's.
    server.clock().set(t0 - 2 * 86400);
    record(server, chat("tova", "gpt-4o-mini", 200, 0));
    record(server, avatar("tova"));
    const json now = server.usage_of("tova");
    EXPECT_EQ(now["period"]["start"], "2025-11-24T00:00:00Z");
    EXPECT_EQ(now["tokens"]["used"], 110 + 165 + 10000 + 200 + 10000);
    expect_summary_adds_up(server, "tova", 5);

    // The next period, then the clock back into the first one's days.
    server.clock().set(first_period_end + 86400);
    record(server, chat("tova", "gpt-4o-mini", 300, 0));
    server.clock().set(first_period_end - 3 * 86400);
    record(server, chat("tova", "gpt-4o-mini", 400, 0));
    record(server, avatar("tova"));
    const json later = server.usage_of("tova");
    EXPECT_EQ(later["period"]["start"], "2025-12-24T00:00:00Z") << "a period never goes back";
    EXPECT_EQ(later["tokens"]["used"], 300 + 400 + 10000);
    EXPECT_EQ(later["avatars"]["used"], 1);
    expect_summary_adds_up(server, "tova", 3);
    expect_chains_intact(server);
}

// The user's usage_limits rows, oldest period first: period_start, the six
// balance numbers (tokens limit, used, reserved; avatars limit, used, reserved).
std::vector<std::vector<std::int64_t>> periods_of(const TestServer& server, const std::string& user) {
    test::chain_audit::Database db(server.db());
    std::vector<std::vector<std::int64_t>> rows;
    for (const auto& row : db.rows("SELECT period_start, tokens_limit, tokens_used, tokens_reserved, avatars_limit, "
                                   "avatars_used, avatars_reserved FROM usage_limits WHERE user_id = '" + user +
                                   "' ORDER BY period_start")) {
        rows.emplace_back();
        for (const auto& value : row) rows.back().push_back(std::stoll(value.value_or("-1")));
    }
    return rows;
}

TEST(PeriodAccounting, ARolloverMovesOpenReservationsOnAndTheClosedPeriodHoldsNoneReserved) {
    test::TestServerOptions options;
    options.reservation_ttl_seconds = 3600;
    TestServer server(options);
    const std::string user = "ulf";
    record(server, chat(user, "gpt-4o-mini", 1000, 0));
    record(server, avatar(user));
    // Ten minutes before the period ends, four reservations that outlive it.
    server.clock().set(first_period_end - 600);
    auto authorize = [&](const json& body) {
        auto response = server.post("/v1/usage/authorize", body);
        EXPECT_TRUE(response && response->status == 200) << (response ? response->body : "no answer");
        return body_of(response)["reservation_id"].get<std::string>();
    };
    const std::string to_commit = authorize({{"user_id", user}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                                             {"input_tokens", 500}, {"max_output_tokens", 100}});
    const std::string avatar_to_commit = authorize({{"user_id", user}, {"operation", "avatar"}});
    const std::string to_release = authorize({{"user_id", user}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                                              {"input_tokens", 300}, {"max_output_tokens", 0}});
    const std::string to_expire = authorize({{"user_id", user}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                                             {"input_tokens", 200}, {"max_output_tokens", 0}});
    const std::int64_t reserved = 600 + 10000 + 300 + 200;

    // The period rolls over with all four open.
    server.clock().set(first_period_end + 60);
    const json rolled = server.usage_of(user);
    EXPECT_EQ(rolled["period"]["start"], "2025-12-24T00:00:00Z");
    EXPECT_EQ(rolled["tokens"]["reserved"], reserved) << "the open reservations moved to the new period";
    EXPECT_EQ(rolled["avatars"]["reserved"], 1);
    EXPECT_EQ(rolled["tokens"]["used"], 0);
    auto rows = periods_of(server, user);
    ASSERT_EQ(rows.size(), 2U);
    EXPECT_EQ(rows[0][3], 0) << "the closed period still holds tokens reserved";
    EXPECT_EQ(rows[0][6], 0) << "the closed period still holds avatars reserved";
    EXPECT_EQ(rows[0][2], 1000 + 10000);
    EXPECT_EQ(rows[0][5], 1);
    EXPECT_EQ(rows[1][3], reserved);
    EXPECT_EQ(rows[1][6], 1);
    expect_chains_intact(server);

    // They settle in the new period: two commits, a release, an expiry.
    auto settle = [&](const std::string& path, const json& body) {
        auto response = server.post(path, body);
        EXPECT_TRUE(response && response->status == 200) << path << ": " << (response ? response->body : "no answer");
        return body_of(response);
    };
    const json committed = settle("/v1/usage/commit", {{"reservation_id", to_commit}, {"input_tokens", 500}, {"output_tokens", 50}});
    EXPECT_EQ(committed["event"]["period_start"], "2025-12-24T00:00:00Z") << committed.dump();
    settle("/v1/usage/commit", {{"reservation_id", avatar_to_commit}});
    settle("/v1/usage/release", {{"reservation_id", to_release}});
    server.clock().set(first_period_end - 600 + 3600);
    const json settled = server.usage_of(user);
    EXPECT_EQ(settled["tokens"]["reserved"], 0) << settled.dump();
    EXPECT_EQ(settled["avatars"]["reserved"], 0);
    EXPECT_EQ(settled["tokens"]["used"], 550 + 10000);
    EXPECT_EQ(settled["avatars"]["used"], 1);
    rows = periods_of(server, user);
    ASSERT_EQ(rows.size(), 2U);
    EXPECT_EQ((std::vector<std::int64_t>{rows[0][2], rows[0][3], rows[0][5], rows[0][6]}),
              (std::vector<std::int64_t>{11000, 0, 1, 0}))
        << "the closed period changed after it closed";
    EXPECT_EQ((std::vector<std::int64_t>{rows[1][2], rows[1][3], rows[1][5], rows[1][6]}),
              (std::vector<std::int64_t>{10550, 0, 1, 0}));
    (void)to_expire;
    expect_chains_intact(server);  // I1 for both periods among the rest
}

}  // namespace
}  // namespace tokenmeter
