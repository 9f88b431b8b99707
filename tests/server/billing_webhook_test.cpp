// Webhooks into plans: order and duplicates (every permutation of a
// lifecycle), stale replays, ties, payment events, and the plan rules of
// DESIGN.md §9, against a real App with a real SQLite file.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <random>
#include <thread>

#include "billing_support.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::Delivery;
using test::PlanView;
using test::ScriptedProvider;
using test::TestServer;

constexpr std::int64_t day = 86400;

// A plan as the account should carry it: plan and lapse instant.
struct Expected {
    std::string plan;
    std::optional<std::int64_t> ends_at;
    bool operator==(const Expected&) const = default;
};

// One lifecycle event: its body, and the snapshot it carries (the newest
// snapshot for the payment event, which the provider is asked for).
struct LifecycleEvent {
    std::string name;
    std::string body;
    std::int64_t updated_at = 0;
    Expected gives;
};

// The six-event lifecycle of one subscription, bodies built by the stand-in.
// Times are relative to t0, the server's clock.
std::vector<LifecycleEvent> lifecycle(standin::Standin& factory, const std::string& subscription_id,
                                      const std::string& user, std::int64_t t0) {
    const std::string renews = standin::lemonsqueezy_time(t0 + 30 * day);
    auto put = [&](const json& attributes, std::int64_t updated_at) {
        json with_time = attributes;
        with_time["updated_at"] = standin::lemonsqueezy_time(updated_at);
        factory.put_subscription(subscription_id, with_time);
    };
    std::vector<LifecycleEvent> events;
    auto add = [&](const std::string& name, std::int64_t updated_at, Expected gives) {
        events.push_back({name, factory.subscription_webhook_body(name, subscription_id, user), updated_at, gives});
    };
    put({{"status", "active"}, {"renews_at", renews}, {"card_brand", nullptr}}, t0 - 600);
    add("subscription_created", t0 - 600, {"pro", std::nullopt});
    put({{"card_brand", "visa"}}, t0 - 500);
    add("subscription_updated", t0 - 500, {"pro", std::nullopt});
    put({{"status", "past_due"}}, t0 - 400);
    add("subscription_updated", t0 - 400, {"pro", std::nullopt});
    put({{"status", "cancelled"}, {"cancelled", true}, {"ends_at", renews}}, t0 - 300);
    add("subscription_cancelled", t0 - 300, {"pro", t0 + 30 * day});
    put({{"status", "expired"}, {"ends_at", standin::lemonsqueezy_time(t0 - 200)}}, t0 - 200);
    add("subscription_expired", t0 - 200, {"free", std::nullopt});
    // The payment event: an invoice; the provider's current subscription is the newest.
    events.insert(events.begin() + 3,
                  {"subscription_payment_success",
                   test::invoice_body("subscription_payment_success", subscription_id, user, "9" + subscription_id, t0 - 350),
                   t0 - 200, {"free", std::nullopt}});
    return events;
}

// The reference model: newest snapshot wins; a plan change whenever the
// plan it gives differs from the account's.
std::pair<Expected, int> expected_after(const std::vector<LifecycleEvent>& events, const std::array<int, 6>& order) {
    Expected plan{"free", std::nullopt};
    std::int64_t newest = INT64_MIN;
    int changes = 0;
    for (int index : order) {
        const LifecycleEvent& event = events[static_cast<std::size_t>(index)];
        if (event.updated_at <= newest) continue;
        newest = event.updated_at;
        if (!(event.gives == plan)) {
            plan = event.gives;
            changes += 1;
        }
    }
    return {plan, changes};
}

// Deliveries in permutation order, each event 1-3 times: copies land at
// random later places, so redeliveries also interleave with other events.
std::vector<int> delivery_order(const std::array<int, 6>& order, std::mt19937& random) {
    std::vector<int> sequence(order.begin(), order.end());
    for (int index : order) {
        const int extra = static_cast<int>(random() % 3);
        const auto first = std::find(sequence.begin(), sequence.end(), index) - sequence.begin();
        for (int copy = 0; copy < extra; ++copy) {
            const auto span = static_cast<std::size_t>(sequence.size()) - static_cast<std::size_t>(first);
            const auto at = static_cast<std::size_t>(first) + 1 + random() % span;
            sequence.insert(sequence.begin() + static_cast<std::ptrdiff_t>(at), index);
        }
    }
    return sequence;
}

class BillingWebhooks : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = test::make_temp_dir();
        // SQLite on tmpfs, or the PostgreSQL run's own database (billing_support.hpp).
        db_ = test::fast_db_url(dir_);
        test::TestServerOptions options;
        options.db = db_;
        options.lemonsqueezy = test::lemonsqueezy_settings("http://127.0.0.1:9");  // never called in-process
        server_ = std::make_unique<TestServer>(options);
        service_ = std::make_unique<billing::BillingService>(server_->app().ledger(), provider_,
                                                             billing::plan_rules_of(*options.lemonsqueezy));
        standin::StandinOptions factory_options;
        factory_options.now_seconds = [this] { return server_->clock().now_seconds(); };
        factory_ = std::make_unique<standin::Standin>(factory_options);
    }
    void TearDown() override {
        service_.reset();
        server_.reset();
        test::remove_db_dir(db_);
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    ledger::JobOutcome deliver(const std::string& body) {
        const Delivery delivery = test::signed_delivery(body);
        return service_->handle_webhook(delivery.body, delivery.signature);
    }

    // Sends the subscription's current stand-in state as `event`.
    ledger::JobOutcome send(const std::string& event, const std::string& subscription_id, const std::string& user,
                         const json& attributes) {
        factory_->put_subscription(subscription_id, attributes);
        const std::string body = factory_->subscription_webhook_body(event, subscription_id, user);
        provider_.set_current(test::snapshot_of(body));
        return deliver(body);
    }

    std::int64_t now() { return server_->clock().now_seconds(); }

    std::string dir_;
    std::string db_;
    std::unique_ptr<TestServer> server_;
    ScriptedProvider provider_;
    std::unique_ptr<billing::BillingService> service_;
    std::unique_ptr<standin::Standin> factory_;
};

TEST_F(BillingWebhooks, EveryOrderOfTheLifecycleWithRedeliveriesEndsOnTheNewestSnapshot) {
    std::array<int, 6> order = {0, 1, 2, 3, 4, 5};
    std::vector<std::array<int, 6>> orders;
    do {
        orders.push_back(order);
    } while (std::next_permutation(order.begin(), order.end()));
    ASSERT_EQ(orders.size(), 720U);

    struct Run {
        std::string user;
        std::vector<LifecycleEvent> events;
        std::vector<int> sequence;
        std::pair<Expected, int> expected;
    };
    std::vector<Run> runs;
    std::mt19937 random(6);
    for (std::size_t i = 0; i < orders.size(); ++i) {
        const std::string subscription_id = std::to_string(5000000 + i);
        Run run{"perm-" + std::to_string(i), {}, {}, {}};
        run.events = lifecycle(*factory_, subscription_id, run.user, now());
        provider_.set_current(test::snapshot_of(run.events.back().body));  // the provider's word: expired
        run.sequence = delivery_order(orders[i], random);
        run.expected = expected_after(run.events, orders[i]);
        runs.push_back(std::move(run));
    }
    // Sixteen senders at once, as concurrent deliveries for different users
    // (which also lets the writer group their commits).
    std::atomic<std::size_t> next{0};
    std::atomic<int> non_200{0};
    std::atomic<int> deliveries{0};
    std::vector<std::thread> senders;
    for (int t = 0; t < 16; ++t) {
        senders.emplace_back([&] {
            for (std::size_t i = next++; i < runs.size(); i = next++) {
                for (int index : runs[i].sequence) {
                    if (deliver(runs[i].events[static_cast<std::size_t>(index)].body).status != 200) ++non_200;
                    ++deliveries;
                }
            }
        });
    }
    for (auto& sender : senders) sender.join();
    EXPECT_EQ(non_200, 0);
    EXPECT_GT(deliveries, 720 * 6);

    int wrong_plan = 0;
    int wrong_changes = 0;
    for (const Run& run : runs) {
        const PlanView view = test::plan_view(server_->app(), run.user);
        if (view.plan != run.expected.first.plan || view.plan != "free") ++wrong_plan;
        if (view.plan_changes != run.expected.second) {
            ++wrong_changes;
            if (wrong_changes <= 3) ADD_FAILURE() << run.user << ": " << view.plan_changes << " plan changes, expected " << run.expected.second;
        }
    }
    EXPECT_EQ(wrong_plan, 0) << "the final plan must be the newest snapshot's (expired: free) in every order";
    EXPECT_EQ(wrong_changes, 0) << "each plan change must be applied exactly once";
}

TEST_F(BillingWebhooks, StaleReplaysNeverMoveASubscriptionBack) {
    // A: the whole lifecycle in order, then every older event again, both
    // as the same bytes and re-sent with a new webhook id.
    const auto events = lifecycle(*factory_, "6000001", "stale-a", now());
    provider_.set_current(test::snapshot_of(events.back().body));
    for (const auto& event : events) ASSERT_EQ(deliver(event.body).status, 200);
    const PlanView settled = test::plan_view(server_->app(), "stale-a");
    ASSERT_EQ(settled.plan, "free");
    int regressions = 0;
    for (int round = 0; round < 3; ++round) {
        for (std::size_t i = 0; i + 1 < events.size(); ++i) {
            ASSERT_EQ(deliver(events[i].body).status, 200);
            ASSERT_EQ(deliver(test::with_new_webhook_id(events[i].body, "replay-" + std::to_string(round) + "-" + std::to_string(i))).status, 200);
            const PlanView view = test::plan_view(server_->app(), "stale-a");
            if (view.plan != "free" || view.plan_changes != settled.plan_changes) ++regressions;
        }
    }
    EXPECT_EQ(regressions, 0);

    // B: created, cancelled, resumed; old created/cancelled replays must not
    // bring back the lapse.
    const std::string renews = standin::lemonsqueezy_time(now() + 30 * day);
    ASSERT_EQ(send("subscription_created", "6000002", "stale-b", {{"status", "active"}, {"renews_at", renews}}).status, 200);
    const std::string created = factory_->subscription_webhook_body("subscription_created", "6000002", "stale-b");
    server_->clock().advance(10);
    ASSERT_EQ(send("subscription_cancelled", "6000002", "stale-b", {{"status", "cancelled"}, {"ends_at", renews}}).status, 200);
    const std::string cancelled = factory_->subscription_webhook_body("subscription_cancelled", "6000002", "stale-b");
    EXPECT_EQ(test::plan_view(server_->app(), "stale-b").plan, "pro");
    server_->clock().advance(10);
    ASSERT_EQ(send("subscription_resumed", "6000002", "stale-b", {{"status", "active"}, {"ends_at", nullptr}}).status, 200);
    const PlanView resumed = test::plan_view(server_->app(), "stale-b");
    for (const std::string& old : {created, cancelled}) {
        auto outcome = deliver(test::with_new_webhook_id(old, "replay-b-" + std::to_string(old.size())));
        EXPECT_EQ(outcome.status, 200);
        EXPECT_EQ(json::parse(outcome.body)["status"], "stale");
    }
    server_->clock().advance(40 * day);  // past the old ends_at: a resumed plan must not lapse
    const PlanView later = test::plan_view(server_->app(), "stale-b");
    EXPECT_EQ(later.plan, "pro");
    EXPECT_EQ(later.plan_changes, resumed.plan_changes);
}

TEST_F(BillingWebhooks, RedeliveriesAreStoredOnceAndAnsweredTwoHundred) {
    const auto outcome = send("subscription_created", "6100001", "dup", {{"status", "active"}});
    EXPECT_EQ(json::parse(outcome.body)["status"], "applied");
    const std::string body = factory_->subscription_webhook_body("subscription_created", "6100001", "dup");
    const auto first = deliver(body);
    const auto second = deliver(body);
    EXPECT_EQ(first.status, 200);
    EXPECT_EQ(json::parse(second.body)["status"], "duplicate");
    EXPECT_EQ(test::plan_view(server_->app(), "dup").plan_changes, 1);
    // Unknown events: acknowledged, stored, ignored.
    const auto unknown = deliver(R"({"meta":{"event_name":"license_key_created","webhook_id":"lk-1"},"data":{"type":"license-keys","id":"1"}})");
    EXPECT_EQ(unknown.status, 200);
    EXPECT_EQ(json::parse(unknown.body)["status"], "ignored");
    // Signed but unreadable: stored for operators and acknowledged, since a
    // redelivery of the same bytes could not do better.
    const auto unreadable = deliver("{\"meta\": no json");
    EXPECT_EQ(unreadable.status, 200);
    EXPECT_EQ(json::parse(unreadable.body)["status"], "ignored");
    EXPECT_EQ(json::parse(deliver("{\"meta\": no json").body)["status"], "duplicate");
    // Signed, with fields no real delivery has (tests/fuzz): a pause mode that is not a string reads as no free pause; a timestamp
    // whose quote in the refusal would end inside a character is stored as
    // UTF-8 (PostgreSQL's text columns take nothing else). Both acknowledged.
    const auto odd_pause = send("subscription_paused", "6100002", "odd", {{"status", "paused"}, {"pause", {{"mode", 1}}}});
    EXPECT_EQ(odd_pause.status, 200) << odd_pause.body;
    std::string accented = "x";
    for (int i = 0; i < 40; ++i) accented += "\xc3\xa9";  // U+00E9
    const auto cut = deliver(R"({"meta":{"event_name":"subscription_updated"},"data":{"type":"subscriptions","id":"6100003",)"
                             R"("attributes":{"status":"active","updated_at":")" + accented + R"("}}})");
    EXPECT_EQ(cut.status, 200) << cut.body;
    EXPECT_EQ(json::parse(cut.body)["status"], "ignored");
    // Not signed right: refused, nothing stored.
    EXPECT_EQ(service_->handle_webhook(body, std::string(64, '0')).status, 401);
}

TEST_F(BillingWebhooks, ATieIsSettledByTheProviderAndPaymentsFindTheirSubscription) {
    const std::int64_t t = now();
    const std::string renews = standin::lemonsqueezy_time(t + 30 * day);
    ASSERT_EQ(send("subscription_created", "6200001", "tie", {{"status", "active"}, {"renews_at", renews},
                                                              {"updated_at", standin::lemonsqueezy_time(t - 10)}}).status, 200);
    // Same updated_at, same state (only the card changed): no fetch needed.
    const int fetches_before = provider_.fetches;
    factory_->put_subscription("6200001", {{"card_brand", "amex"}, {"updated_at", standin::lemonsqueezy_time(t - 10)}});
    EXPECT_EQ(json::parse(deliver(factory_->subscription_webhook_body("subscription_updated", "6200001", "tie")).body)["status"], "unchanged");
    EXPECT_EQ(provider_.fetches, fetches_before);
    // Same updated_at, different state: the provider's current word decides.
    factory_->put_subscription("6200001", {{"status", "cancelled"}, {"ends_at", renews}, {"updated_at", standin::lemonsqueezy_time(t - 10)}});
    const std::string tied = factory_->subscription_webhook_body("subscription_cancelled", "6200001", "tie");
    factory_->put_subscription("6200001", {{"status", "expired"}, {"updated_at", standin::lemonsqueezy_time(t - 5)}});
    provider_.set_current(test::snapshot_of(factory_->subscription_webhook_body("subscription_updated", "6200001", "tie")));
    EXPECT_EQ(deliver(tied).status, 200);
    EXPECT_EQ(provider_.fetches, fetches_before + 1);
    EXPECT_EQ(test::plan_view(server_->app(), "tie").plan, "free");

    // A payment for a subscription no event announced: found through the
    // invoice's subscription_id, user from custom data.
    factory_->put_subscription("6200002", {{"status", "active"}, {"renews_at", renews}});
    provider_.set_current(test::snapshot_of(factory_->subscription_webhook_body("subscription_updated", "6200002", "")));
    auto paid = deliver(test::invoice_body("subscription_payment_success", "6200002", "payer", "8000001", t));
    EXPECT_EQ(paid.status, 200);
    EXPECT_EQ(json::parse(paid.body)["status"], "applied");
    EXPECT_EQ(test::plan_view(server_->app(), "payer").plan, "pro");
    // The provider is down: stored, not applied, answered non-200 so it is
    // delivered again; the redelivery applies it.
    factory_->put_subscription("6200003", {{"status", "active"}, {"renews_at", renews}});
    provider_.set_current(test::snapshot_of(factory_->subscription_webhook_body("subscription_updated", "6200003", "")));
    const std::string recovered = test::invoice_body("subscription_payment_recovered", "6200003", "retry", "8000002", t);
    provider_.down = true;
    EXPECT_EQ(deliver(recovered).status, 502);
    EXPECT_EQ(test::plan_view(server_->app(), "retry").plan, "free");
    provider_.down = false;
    auto retried = deliver(recovered);
    EXPECT_EQ(retried.status, 200);
    EXPECT_EQ(json::parse(retried.body)["status"], "applied");
    EXPECT_EQ(test::plan_view(server_->app(), "retry").plan, "pro");
    // A payment for a subscription the provider does not know: acknowledged.
    auto unknown = deliver(test::invoice_body("subscription_payment_success", "6200099", "nobody", "8000003", t));
    EXPECT_EQ(unknown.status, 200);
    EXPECT_EQ(json::parse(unknown.body)["status"], "subscription_not_found");
}

TEST_F(BillingWebhooks, PlanRulesOfDesignSectionNine) {
    const std::string user = "rules";
    const std::string sub = "6300001";
    // Usage on the free plan first.
    const RecordCommand record{user, "chat", "gpt-4o-mini", 1000, 500, "evt_rec1", "rec-1"};
    ASSERT_EQ(server_->app().ledger().record(record, std::nullopt).kind, ledger::ReplyKind::done);
    const PlanView free = test::plan_view(server_->app(), user);
    ASSERT_EQ(free.plan, "free");
    ASSERT_EQ(free.tokens_used, 1500);

    // Upgrade: at once, usage kept, the period then follows renews_at (the 5th).
    const std::int64_t renews = parse_rfc3339("2025-12-05T09:00:00Z").value();
    send("subscription_created", sub, user, {{"status", "active"}, {"renews_at", standin::lemonsqueezy_time(renews)}});
    PlanView pro = test::plan_view(server_->app(), user);
    EXPECT_EQ(pro.plan, "pro");
    EXPECT_EQ(pro.tokens_limit, 10000000);
    EXPECT_EQ(pro.tokens_used, 1500);
    EXPECT_EQ(pro.period_end, parse_rfc3339("2025-12-05T00:00:00Z").value());

    // Payment failed: past_due is a grace period; unpaid ends it; recovered restores.
    send("subscription_updated", sub, user, {{"status", "past_due"}});
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "pro");
    send("subscription_updated", sub, user, {{"status", "unpaid"}});
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "free");
    send("subscription_updated", sub, user, {{"status", "active"}});
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "pro");

    // Pause and unpause (DESIGN: paused gives free, whatever the pause mode).
    send("subscription_paused", sub, user, {{"status", "paused"}, {"pause", {{"mode", "free"}, {"resumes_at", nullptr}}}});
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "free");
    send("subscription_unpaused", sub, user, {{"status", "active"}, {"pause", nullptr}});
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "pro");

    // A variant that is not the pro variant gives no pro; back again does.
    send("subscription_updated", sub, user, {{"variant_id", 777}});
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "free");
    send("subscription_updated", sub, user, {{"variant_id", 1}});
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "pro");

    // Cancel: pro until ends_at; resume before it keeps pro for good.
    const std::int64_t ends = now() + 2 * day;
    send("subscription_cancelled", sub, user, {{"status", "cancelled"}, {"cancelled", true}, {"ends_at", standin::lemonsqueezy_time(ends)}});
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "pro");
    send("subscription_resumed", sub, user, {{"status", "active"}, {"cancelled", false}, {"ends_at", nullptr}});
    server_->clock().advance(3 * day);
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "pro");

    // Cancel again: at ends_at the plan drops to free although
    // subscription_expired never arrives.
    const std::int64_t ends_again = now() + day;
    send("subscription_cancelled", sub, user, {{"status", "cancelled"}, {"cancelled", true}, {"ends_at", standin::lemonsqueezy_time(ends_again)}});
    server_->clock().set(ends_again - 1);
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "pro");
    server_->clock().set(ends_again);
    const PlanView lapsed = test::plan_view(server_->app(), user);
    EXPECT_EQ(lapsed.plan, "free");
    EXPECT_EQ(lapsed.tokens_limit, 250000);
    // The expiry arriving late changes nothing more.
    const int changes = lapsed.plan_changes;
    send("subscription_expired", sub, user, {{"status", "expired"}});
    EXPECT_EQ(test::plan_view(server_->app(), user).plan_changes, changes);
}

TEST(PlanRules, DecisionsPerStatus) {
    billing::PlanRules rules;
    rules.paid_variant_ids = {"1"};
    const std::int64_t now = 1764000000;
    storage::StoredSubscription s;
    s.variant_id = "1";
    s.renews_at = now + 10 * day;
    auto decide = [&](const std::string& status) {
        s.status = status;
        return billing::decide_plan(s, rules, now);
    };
    EXPECT_EQ(decide("active").plan, "pro");
    EXPECT_EQ(decide("active").anchor_day, static_cast<int>(civil_date_of(now + 10 * day).day));
    EXPECT_EQ(decide("on_trial").plan, "pro");
    EXPECT_EQ(decide("past_due").plan, "pro");
    EXPECT_FALSE(decide("past_due").anchor_day.has_value());  // renews_at is a retry date then
    for (const char* status : {"unpaid", "expired", "paused", "something_new"}) EXPECT_EQ(decide(status).plan, "free") << status;
    s.ends_at = now + day;
    EXPECT_EQ(decide("cancelled"), (billing::PlanDecision{"pro", now + day, "free", static_cast<int>(civil_date_of(now + 10 * day).day)}));
    s.ends_at = now;
    EXPECT_EQ(decide("cancelled").plan, "free");
    s.variant_id = "2";
    EXPECT_EQ(decide("active").plan, "free");
    // The best subscription of a user wins.
    storage::StoredSubscription old_one = s;
    old_one.status = "expired";
    storage::StoredSubscription current = s;
    current.variant_id = "1";
    current.status = "active";
    EXPECT_EQ(billing::decide_user_plan({old_one, current}, rules, now).plan, "pro");
    EXPECT_EQ(billing::decide_user_plan({}, rules, now).plan, "free");
}

}  // namespace
}  // namespace tokenmeter
