// The alerts a ledger change raises (alerts.hpp), without a database: one
// row per case (TigerBeetle state_machine_tests), then the ids and bodies
// that delivery relies on.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tokenmeter/alerts.hpp"
#include "tokenmeter/limits.hpp"

namespace tokenmeter {
namespace {

constexpr std::int64_t t0 = 1764000000;       // 2025-11-24T16:00:00Z
constexpr std::int64_t period_a = 1763942400;  // 2025-11-24T00:00:00Z
constexpr std::int64_t period_b = 1766620800;  // 2025-12-25T00:00:00Z

ReceiptClaims claims_of(std::int64_t period_start, std::int64_t limit, std::int64_t used, std::int64_t credits = 0,
                        const std::string& plan = "free", std::int64_t seq = 5) {
    ReceiptClaims c;
    c.sub = "user-1";
    c.iat = t0;
    c.seq = seq;
    c.plan = plan;
    c.period_start = period_start;
    c.period_end = period_start + 31 * 86400;
    c.balance.tokens_limit = limit;
    c.balance.tokens_used = used;
    c.balance.credits = credits;
    return c;
}

LedgerChange change_of(ChangeKind kind, ReceiptClaims after) {
    LedgerChange change;
    change.kind = kind;
    change.claims = std::move(after);
    return change;
}

std::vector<std::string> types_of(const std::vector<Alert>& alerts) {
    std::vector<std::string> types;
    for (const Alert& alert : alerts) {
        const auto body = nlohmann::json::parse(alert.body);
        std::string type = body["type"].get<std::string>();
        if (body["data"].contains("threshold_percent")) type += ":" + std::to_string(body["data"]["threshold_percent"].get<int>());
        types.push_back(type);
    }
    return types;
}

using Types = std::vector<std::string>;

struct Row {
    const char* name;
    std::optional<ReceiptClaims> before;
    LedgerChange change;
    Types expected;
};

TEST(Alerts, TableOfChanges) {
    LedgerChange refund = change_of(ChangeKind::credit, claims_of(period_a, 1000, 0, 500));
    refund.credit = CreditChange{"refund:order:7:500", -500, "refund"};
    LedgerChange pack = change_of(ChangeKind::credit, claims_of(period_a, 1000, 0, 1000));
    pack.credit = CreditChange{"order:7", 1000, "pack"};
    LedgerChange pack_crossing = change_of(ChangeKind::credit, claims_of(period_a, 1000, 900, -100));
    pack_crossing.credit = CreditChange{"refund:order:8:1100", -1100, "refund"};
    LedgerChange empty_credit = change_of(ChangeKind::credit, claims_of(period_a, 1000, 0));
    empty_credit.credit = CreditChange{"order:9", 0, "pack"};
    const Row rows[] = {
        // Nothing to tell.
        {"first use", std::nullopt, change_of(ChangeKind::period_open, claims_of(period_a, 1000, 0)), {}},
        {"below every threshold", claims_of(period_a, 1000, 0), change_of(ChangeKind::commit, claims_of(period_a, 1000, 799)), {}},
        {"already past 80", claims_of(period_a, 1000, 800), change_of(ChangeKind::commit, claims_of(period_a, 1000, 999)), {}},
        {"already past both", claims_of(period_a, 1000, 1000), change_of(ChangeKind::commit, claims_of(period_a, 1000, 5000)), {}},
        {"same plan again", claims_of(period_a, 1000, 0), change_of(ChangeKind::plan_change, claims_of(period_a, 1000, 0)), {}},
        {"credit of nothing", claims_of(period_a, 1000, 0), empty_credit, {}},
        {"a new period opens empty", claims_of(period_a, 1000, 1000),
         change_of(ChangeKind::period_open, claims_of(period_b, 1000, 0)), {}},
        // Thresholds: exactly at the percent counts, one below does not.
        {"exactly 80 %", claims_of(period_a, 1000, 799), change_of(ChangeKind::commit, claims_of(period_a, 1000, 800)), {"usage.threshold:80"}},
        {"exactly 100 %", claims_of(period_a, 1000, 800), change_of(ChangeKind::record, claims_of(period_a, 1000, 1000)), {"usage.threshold:100"}},
        {"both at once", claims_of(period_a, 1000, 10), change_of(ChangeKind::commit, claims_of(period_a, 1000, 4000)),
         {"usage.threshold:80", "usage.threshold:100"}},
        {"an account's first charge", std::nullopt, change_of(ChangeKind::record, claims_of(period_a, 1000, 850)), {"usage.threshold:80"}},
        {"usage of the last period does not count", claims_of(period_a, 1000, 1000),
         change_of(ChangeKind::commit, claims_of(period_b, 1000, 850)), {"usage.threshold:80"}},
        // Capacity is the limit plus the credits on hand, never less than the limit.
        {"credits raise the capacity", claims_of(period_a, 1000, 0, 1000),
         change_of(ChangeKind::commit, claims_of(period_a, 1000, 1500, 1000)), {}},
        {"credits: 80 % of limit + credits", claims_of(period_a, 1000, 0, 1000),
         change_of(ChangeKind::commit, claims_of(period_a, 1000, 1600, 1000)), {"usage.threshold:80"}},
        {"a debt does not lower the capacity", claims_of(period_a, 1000, 700, -500),
         change_of(ChangeKind::commit, claims_of(period_a, 1000, 799, -500)), {}},
        // A lower limit crosses without any use (a downgrade).
        {"downgrade crosses", claims_of(period_a, 10000, 900, 0, "pro"),
         change_of(ChangeKind::plan_change, claims_of(period_a, 1000, 900, 0, "free")), {"usage.threshold:80", "plan.changed"}},
        {"upgrade", claims_of(period_a, 1000, 900, 0, "free"),
         change_of(ChangeKind::plan_change, claims_of(period_a, 10000, 900, 0, "pro")), {"plan.changed"}},
        {"a lapse is a plan change", claims_of(period_a, 10000, 0, 0, "pro"),
         change_of(ChangeKind::plan_change, claims_of(period_a, 1000, 0, 0, "free")), {"plan.changed"}},
        // Credits.
        {"a pack", claims_of(period_a, 1000, 0), pack, {"credits.added"}},
        {"a refund", claims_of(period_a, 1000, 0, 1000), refund, {"credits.refunded"}},
        // A debt shrinks the capacity (limit + credits): 900 of 900 is 100 %.
        {"a refund that drops the capacity", claims_of(period_a, 1000, 900, 1000), pack_crossing,
         {"usage.threshold:80", "usage.threshold:100", "credits.refunded"}},
    };
    const AlertRules rules;
    for (const Row& row : rows) {
        const auto alerts = alerts_of(row.before ? &*row.before : nullptr, row.change, rules);
        EXPECT_EQ(types_of(alerts), row.expected) << row.name;
    }
}

TEST(Alerts, ThresholdsAreConfiguration) {
    AlertRules rules;
    rules.thresholds_percent = {50, 90, 150};
    const auto alerts = alerts_of(nullptr, change_of(ChangeKind::record, claims_of(period_a, 1000, 1500)), rules);
    EXPECT_EQ(types_of(alerts), (Types{"usage.threshold:50", "usage.threshold:90", "usage.threshold:150"}));
    rules.thresholds_percent = {};
    EXPECT_TRUE(alerts_of(nullptr, change_of(ChangeKind::record, claims_of(period_a, 1000, 1500)), rules).empty());
}

TEST(Alerts, RulesAreChecked) {
    struct Case {
        std::vector<int> thresholds;
        bool valid;
    };
    const Case cases[] = {
        {{0}, false},       {{80, 80}, false}, {{100, 80}, false}, {{1001}, false},
        {{}, true},         {{1}, true},       {{80, 100}, true},  {{1000}, true},
    };
    for (const Case& c : cases) EXPECT_EQ(alert_rules_valid(AlertRules{c.thresholds}), c.valid) << c.thresholds.size();
    AlertRules many;
    for (int i = 1; i <= static_cast<int>(limits::alert_thresholds_max) + 1; ++i) many.thresholds_percent.push_back(i);
    EXPECT_FALSE(alert_rules_valid(many));
}

TEST(Alerts, ReachingIsIntegerExactAtTheEdges) {
    Balance b;
    b.tokens_limit = 3;
    b.tokens_used = 2;  // 66.66… %
    EXPECT_TRUE(reaches_threshold(b, 66));
    EXPECT_FALSE(reaches_threshold(b, 67));
    // No capacity: nothing can be spent, so every threshold is reached
    // (used * 100 >= percent * capacity, as the hook computes it).
    b.tokens_limit = 0;
    b.tokens_used = 0;
    EXPECT_TRUE(reaches_threshold(b, 1));
    b.tokens_limit = 1000;
    b.credits = -1500;
    EXPECT_TRUE(reaches_threshold(b, 1)) << "a debt past the allowance";
    b.credits = 0;
    b.tokens_limit = 0;
    b.tokens_used = 1;
    EXPECT_TRUE(reaches_threshold(b, limits::alert_threshold_percent_max));
    // The largest counts do not overflow.
    b.tokens_limit = limits::count_max;
    b.credits = limits::count_max;
    b.tokens_used = limits::count_max;
    EXPECT_TRUE(reaches_threshold(b, 50));
    EXPECT_FALSE(reaches_threshold(b, 51));
    EXPECT_FALSE(reaches_threshold(b, limits::alert_threshold_percent_max));
}

// The id is what makes "once per threshold per period" hold in the outbox.
TEST(Alerts, IdsAreFixedByWhatTheyReport) {
    const AlertRules rules;
    auto threshold_id = [&](std::int64_t period, std::int64_t used, std::int64_t iat, const std::string& user) {
        ReceiptClaims after = claims_of(period, 1000, used);
        after.iat = iat;
        after.sub = user;
        ReceiptClaims before = claims_of(period, 1000, 0);
        before.sub = user;
        const auto alerts = alerts_of(&before, change_of(ChangeKind::commit, after), rules);
        EXPECT_EQ(alerts.size(), 1U);
        return alerts.empty() ? std::string() : alerts[0].id;
    };
    const std::string id = threshold_id(period_a, 850, t0, "user-1");
    EXPECT_EQ(id.rfind("msg_", 0), 0U);
    EXPECT_EQ(id.size(), 36U);
    // A second crossing later in the period, at another usage: the same alert.
    EXPECT_EQ(threshold_id(period_a, 900, t0 + 3600, "user-1"), id);
    // Another period or another user: another alert.
    EXPECT_NE(threshold_id(period_b, 850, t0, "user-1"), id);
    EXPECT_NE(threshold_id(period_a, 850, t0, "user-2"), id);
    // Plan changes by seq, credits by their id.
    const ReceiptClaims free = claims_of(period_a, 1000, 0, 0, "free", 5);
    const auto first = alerts_of(&free, change_of(ChangeKind::plan_change, claims_of(period_a, 9000, 0, 0, "pro", 6)), rules);
    const auto again = alerts_of(&free, change_of(ChangeKind::plan_change, claims_of(period_a, 9000, 0, 0, "pro", 6)), rules);
    const auto later = alerts_of(&free, change_of(ChangeKind::plan_change, claims_of(period_a, 9000, 0, 0, "pro", 9)), rules);
    ASSERT_EQ(first.size(), 1U);
    EXPECT_EQ(first[0].id, again[0].id);
    EXPECT_NE(first[0].id, later[0].id);
    EXPECT_NE(first[0].id, id);
}

TEST(Alerts, BodiesAreStandardWebhooksEvents) {
    const ReceiptClaims before = claims_of(period_a, 1000, 0, 0, "free", 5);
    LedgerChange change = change_of(ChangeKind::plan_change, claims_of(period_a, 10000, 8500, 0, "pro", 6));
    const auto alerts = alerts_of(&before, change, AlertRules{});
    ASSERT_EQ(alerts.size(), 2U);
    EXPECT_EQ(alerts[0].body,
              R"({"data":{"period":{"end":"2025-12-25T00:00:00Z","start":"2025-11-24T00:00:00Z"},"plan":"pro","seq":6,)"
              R"("threshold_percent":80,"tokens":{"capacity":10000,"credits":0,"limit":10000,"reserved":0,"used":8500},)"
              R"("user_id":"user-1"},"timestamp":"2025-11-24T16:00:00Z","type":"usage.threshold"})");
    EXPECT_EQ(alerts[1].body,
              R"({"data":{"period":{"end":"2025-12-25T00:00:00Z","start":"2025-11-24T00:00:00Z"},"plan":"pro",)"
              R"("previous_plan":"free","seq":6,"tokens":{"capacity":10000,"credits":0,"limit":10000,"reserved":0,)"
              R"("used":8500},"user_id":"user-1"},"timestamp":"2025-11-24T16:00:00Z","type":"plan.changed"})");
    EXPECT_EQ(alerts[1].kind, AlertKind::plan_changed);
    EXPECT_EQ(alerts[1].user_id, "user-1");

    LedgerChange refund = change_of(ChangeKind::credit, claims_of(period_a, 1000, 0, 250));
    refund.credit = CreditChange{"refund:order:7:750", -750, "refund"};
    const auto refunded = alerts_of(&before, refund, AlertRules{});
    ASSERT_EQ(refunded.size(), 1U);
    EXPECT_EQ(refunded[0].body,
              R"({"data":{"credit_id":"refund:order:7:750","credits":250,"reason":"refund","seq":5,"tokens":750,)"
              R"("user_id":"user-1"},"timestamp":"2025-11-24T16:00:00Z","type":"credits.refunded"})");
}

TEST(Alerts, KindsRoundTrip) {
    for (AlertKind kind : {AlertKind::usage_threshold, AlertKind::plan_changed, AlertKind::credits_added,
                           AlertKind::credits_refunded}) {
        EXPECT_EQ(alert_kind_from_string(to_string(kind)), kind);
    }
    EXPECT_FALSE(alert_kind_from_string("usage.thresholds").has_value());
}

}  // namespace
}  // namespace tokenmeter
