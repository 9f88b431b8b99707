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
                                                             billing::plan_rules_of(*options.lemonsqueezy, default_catalog()));
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

    // Pause and unpause, by LemonSqueezy's meanings (DESIGN.md §9): mode
    // "free" continues the service, so the plan stays; mode "void" stops it
    // until resumes_at, and the plan comes back at that instant on its own.
    const int before_pauses = test::plan_view(server_->app(), user).plan_changes;
    send("subscription_paused", sub, user, {{"status", "paused"}, {"pause", {{"mode", "free"}, {"resumes_at", nullptr}}}});
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "pro");
    EXPECT_EQ(test::plan_view(server_->app(), user).plan_changes, before_pauses);
    send("subscription_unpaused", sub, user, {{"status", "active"}, {"pause", nullptr}});
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "pro");
    const std::int64_t resumes = now() + 3 * day;
    send("subscription_paused", sub, user,
         {{"status", "paused"}, {"pause", {{"mode", "void"}, {"resumes_at", standin::lemonsqueezy_time(resumes)}}}});
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "free");
    server_->clock().set(resumes - 1);
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "free");
    server_->clock().set(resumes);
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "pro") << "a void pause ends at resumes_at without a webhook";
    send("subscription_unpaused", sub, user, {{"status", "active"}, {"pause", nullptr}});
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "pro");

    // A variant no plan names is logged and changes nothing; back again changes nothing either.
    const int before_unknown = test::plan_view(server_->app(), user).plan_changes;
    send("subscription_updated", sub, user, {{"variant_id", 777}});
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "pro");
    send("subscription_updated", sub, user, {{"variant_id", 1}});
    EXPECT_EQ(test::plan_view(server_->app(), user).plan, "pro");
    EXPECT_EQ(test::plan_view(server_->app(), user).plan_changes, before_unknown);

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

// Every status x pause mode x time (before and after the instant the
// subscription names), against the rules of DESIGN.md §9 written out as a
// table: what the account should carry.
TEST(PlanRules, EveryStatusPauseModeAndTime) {
    Catalog catalog = default_catalog();
    catalog.plans.push_back(Plan{"team", 50000000, 500, {"3"}});
    catalog.plans[1].variant_ids = {"1", "2"};  // pro monthly and yearly
    const billing::PlanRules rules = billing::plan_rules_from(catalog, "");
    const std::int64_t t = 1764000000;
    const std::int64_t at = t + 5 * day;  // ends_at, resumes_at or the refunded cycle's end
    const int anchor = static_cast<int>(civil_date_of(t + 10 * day).day);
    struct Row {
        std::string status;
        std::string pause;  // "", "free", "void", "void-open" (no resumes_at)
        bool refunded = false;
        std::int64_t now = 0;
        billing::PlanDecision expected;
    };
    using D = billing::PlanDecision;
    const std::vector<Row> table = {
        {"active", "", false, t, D{"pro", {}, "", anchor}},
        {"active", "", false, at, D{"pro", {}, "", anchor}},
        {"on_trial", "", false, t, D{"pro", {}, "", anchor}},
        {"past_due", "", false, t, D{"pro", {}, "", {}}},  // grace; renews_at is a retry date
        {"past_due", "", false, at, D{"pro", {}, "", {}}},
        {"cancelled", "", false, t, D{"pro", at, "free", anchor}},
        {"cancelled", "", false, at, D{"free", {}, "", {}}},
        {"unpaid", "", false, t, D{"free", {}, "", {}}},
        {"expired", "", false, t, D{"free", {}, "", {}}},
        {"something_new", "", false, t, D{"free", {}, "", {}}},
        {"paused", "free", false, t, D{"pro", {}, "", {}}},
        {"paused", "free", false, at, D{"pro", {}, "", {}}},
        {"paused", "void", false, t, D{"free", at, "pro", {}}},
        {"paused", "void", false, at, D{"pro", {}, "", {}}},
        {"paused", "void-open", false, t, D{"free", {}, "", {}}},
        {"paused", "void-open", false, at, D{"free", {}, "", {}}},
        // A fully refunded payment: free to the end of the cycle it paid
        // for, then whatever the subscription says.
        {"active", "", true, t, D{"free", at, "pro", {}}},
        {"active", "", true, at, D{"pro", {}, "", anchor}},
        {"cancelled", "", true, t, D{"free", {}, "", {}}},  // ends with the refunded cycle: nothing after
        {"paused", "free", true, t, D{"free", at, "pro", {}}},
        {"expired", "", true, t, D{"free", {}, "", {}}},
    };
    for (const Row& row : table) {
        storage::StoredSubscription s;
        s.variant_id = "2";
        s.status = row.status;
        s.renews_at = t + 10 * day;
        if (row.status == "cancelled") s.ends_at = at;
        if (!row.pause.empty()) s.pause_free = row.pause == "free";
        if (row.pause == "void") s.pause_resumes_at = at;
        if (row.refunded) s.refunded_until = at;
        EXPECT_EQ(billing::decide_plan(s, rules, row.now), row.expected)
            << row.status << " pause=" << row.pause << " refunded=" << row.refunded << " at t+" << (row.now - t);
    }
    // A variant no plan names decides nothing (and a retired one that expired is ignored).
    storage::StoredSubscription unknown;
    unknown.variant_id = "777";
    unknown.status = "active";
    EXPECT_TRUE(billing::decide_plan(unknown, rules, t).unknown_variant);
    EXPECT_TRUE(billing::decide_user_plan({unknown}, rules, t).unknown_variant);
    unknown.status = "expired";
    EXPECT_FALSE(billing::decide_user_plan({unknown}, rules, t).unknown_variant);
    // The best subscription of a user wins: unending over ending, larger over smaller.
    storage::StoredSubscription pro;
    pro.variant_id = "1";
    pro.status = "active";
    storage::StoredSubscription team = pro;
    team.variant_id = "3";
    EXPECT_EQ(billing::decide_user_plan({pro, team}, rules, t).plan, "team");
    EXPECT_EQ(billing::decide_user_plan({team, pro}, rules, t).plan, "team");
    team.status = "cancelled";
    team.ends_at = at;
    EXPECT_EQ(billing::decide_user_plan({pro, team}, rules, t).plan, "pro");
    EXPECT_EQ(billing::decide_user_plan({}, rules, t).plan, "free");
}

// When a change of plan takes effect against the account.
TEST(PlanRules, UpgradesApplyAtOnceDowngradesAtThePeriodEnd) {
    Catalog catalog = default_catalog();
    catalog.plans.push_back(Plan{"team", 50000000, 500, {"3"}});
    const billing::PlanRules rules = billing::plan_rules_from(catalog, "1");
    Account account = unopened_account("u");
    account.seq = 3;
    account.period = Period{1764000000, 1764000000 + 30 * day};
    using D = billing::PlanDecision;
    account.plan = "pro";
    EXPECT_EQ(billing::settle_change(D{"team", {}, "", {}}, account, rules), (D{"team", {}, "", {}}));
    account.plan = "team";
    EXPECT_EQ(billing::settle_change(D{"pro", {}, "", 7}, account, rules), (D{"team", account.period.end_seconds, "pro", {}}));
    // Ending is not a switch: free at once.
    EXPECT_EQ(billing::settle_change(D{"free", {}, "", {}}, account, rules), (D{"free", {}, "", {}}));
    // A lower plan that ends by itself is not deferred past its end.
    EXPECT_EQ(billing::settle_change(D{"pro", 1764000000 + day, "free", {}}, account, rules),
              (D{"pro", 1764000000 + day, "free", {}}));
    account.plan = "free";
    EXPECT_EQ(billing::settle_change(D{"pro", {}, "", {}}, account, rules), (D{"pro", {}, "", {}}));
}

}  // namespace
}  // namespace tokenmeter
