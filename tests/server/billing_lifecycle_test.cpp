// Billing as a LemonSqueezy merchant sells it (issue 14), against a real
// server and the stand-in over loopback HTTP: several plans by variant,
// upgrades at once and downgrades at the period end, credit packs added once
// per order and spent after the allowance, refunds that claw back (pro rata
// for packs, the paid cycle for subscription payments), balances below zero,
// the customer portal, reconcile of orders and refunds that never arrived,
// every order of a lifecycle with refunds and pauses, and a refund racing 64
// authorizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "billing_support.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::TestServer;

constexpr std::int64_t day = 86400;
constexpr std::int64_t pack_tokens = 1000000;
constexpr std::int64_t pack_price = 2000;  // cents

// free, pro (monthly "1" and yearly "2"), team ("3"), and a pack ("4").
std::string merchant_catalog() {
    json catalog = json::parse(std::string(default_catalog_json()));
    catalog["plans"][1]["variant_ids"] = {"1", "2"};
    catalog["plans"].push_back({{"id", "team"}, {"tokens_per_period", 50000000}, {"avatars_per_period", 500}, {"variant_ids", {"3"}}});
    catalog["packs"] = {{{"id", "tokens-1m"}, {"variant_id", "4"}, {"tokens", pack_tokens}}};
    return catalog.dump();
}

// The balance a user's newest receipt shows.
struct Balances {
    std::string plan;
    Balance balance;
    std::int64_t seq = 0;
};

Balances balances_of(App& app, const std::string& user) {
    Balances out;
    auto snapshot = app.ledger().snapshot(user);
    if (snapshot.kind != ledger::ReplyKind::done) return out;
    out.plan = snapshot.claims.plan;
    out.balance = snapshot.claims.balance;
    out.seq = snapshot.claims.seq;
    return out;
}

// Every receipt of a user, decoded, oldest first.
std::vector<ReceiptClaims> receipts_of(App& app, const std::string& user) {
    std::vector<ReceiptClaims> claims;
    for (const std::string& receipt : app.store().read_receipts(user, 1, 1000000)) {
        auto decoded = decode_receipt_claims(receipt);
        EXPECT_TRUE(decoded.has_value());
        if (decoded) claims.push_back(*decoded);
    }
    return claims;
}

class BillingMerchant : public ::testing::Test {
protected:
    void SetUp() override {
        standin::StandinOptions options;
        options.api_key = test::api_key;
        options.webhook_secret = test::webhook_secret;
        options.page_size_max = 2;  // reconcile follows pages of every list
        options.pack_variant_ids = {"4"};
        options.variant_prices = {{"1", 1000}, {"2", 10000}, {"3", 5000}, {"4", pack_price}};
        options.now_seconds = [this] { return server_ ? server_->clock().now_seconds() : 1764000000; };
        standin_ = std::make_unique<standin::Standin>(options);
        ASSERT_GT(standin_->start("127.0.0.1", 0), 0);
        test::TestServerOptions server_options;
        server_options.lemonsqueezy = test::lemonsqueezy_settings(standin_->base_url());
        server_options.catalog_json = merchant_catalog();
        server_ = std::make_unique<TestServer>(server_options);
        standin_->set_webhook_url("http://127.0.0.1:" + std::to_string(server_->port()) + "/v1/webhooks/lemonsqueezy");
    }
    void TearDown() override {
        standin_->stop();
        server_.reset();
    }

    App& app() { return server_->app(); }
    std::int64_t now() { return server_->clock().now_seconds(); }

    // POST /v1/me/checkout as the user, then pays at the stand-in; the checkout id.
    std::string buy(const std::string& user, const json& body, const std::string& deliver = "all") {
        auto client = server_->client();
        auto response = client.Post("/v1/me/checkout", server_->as_user(user), body.dump(), "application/json");
        EXPECT_TRUE(response && response->status == 200) << (response ? response->body : "no answer");
        if (!response || response->status != 200) return "";
        const std::string url = json::parse(response->body)["url"].get<std::string>();
        const auto start = url.find("/checkout/custom/") + 17;
        const std::string checkout_id = url.substr(start, url.find('?') - start);
        httplib::Client standin(standin_->base_url());
        auto paid = standin.Post("/checkout/custom/" + checkout_id + "/pay?deliver=" + deliver, "",
                                 "application/x-www-form-urlencoded");
        EXPECT_TRUE(paid && paid->status == 303);
        return checkout_id;
    }

    // Sends the subscription's current state as `event` through the server's webhook route.
    void announce(const std::string& subscription, const std::string& user, const json& attributes,
                  const std::string& event = "subscription_updated") {
        standin_->put_subscription(subscription, attributes);
        EXPECT_EQ(standin_->send_webhook(event, standin_->subscription_webhook_body(event, subscription, user)), 200);
    }

    int authorize(const std::string& user, std::int64_t tokens, const std::string& key) {
        auto client = server_->client();
        const json body = {{"user_id", user}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                           {"input_tokens", tokens}, {"max_output_tokens", 0}};
        auto response = client.Post("/v1/usage/authorize", server_->as_service(key), body.dump(), "application/json");
        return response ? response->status : 0;
    }

    void record(const std::string& user, std::int64_t tokens) {
        auto response = server_->post("/v1/usage/record", {{"user_id", user}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                                                           {"input_tokens", tokens}, {"output_tokens", 0}});
        ASSERT_TRUE(response);
        ASSERT_EQ(response->status, 200) << response->body;
    }

    std::unique_ptr<standin::Standin> standin_;
    std::unique_ptr<TestServer> server_;
};

TEST_F(BillingMerchant, CheckoutSellsEachPlanAndPackAndRefusesWhatIsNotForSale) {
    auto client = server_->client();
    auto ask = [&](const std::string& body) {
        auto response = client.Post("/v1/me/checkout", server_->as_user("shop"), body, "application/json");
        return response ? std::make_pair(response->status, json::parse(response->body, nullptr, false)) : std::make_pair(0, json());
    };
    for (const auto& [body, code] : std::vector<std::pair<std::string, std::string>>{
             {R"({"plan":"gold"})", "unknown_plan"},
             {R"({"pack":"tokens-9m"})", "unknown_pack"},
             {R"({"plan":"free"})", "plan_not_for_sale"},
             {R"({"plan":"pro","pack":"tokens-1m"})", "invalid_value"},
             {R"({"plan":7})", "invalid_value"},
             {R"({"plan":"pro","coupon":"x"})", "unknown_field"},
             {R"([1])", "invalid_json"}}) {
        const auto [status, answer] = ask(body);
        EXPECT_EQ(status, 400) << body;
        EXPECT_EQ(answer["error"]["code"], code) << body;
    }
    EXPECT_TRUE(receipts_of(app(), "shop").empty()) << "a refused checkout changes no ledger";

    // Each product's checkout is for its variant.
    buy("team-buyer", {{"plan", "team"}});
    EXPECT_EQ(balances_of(app(), "team-buyer").plan, "team");
    EXPECT_EQ(balances_of(app(), "team-buyer").balance.tokens_limit, 50000000);
    buy("pro-buyer", json::object());  // no plan named: pro, as before
    EXPECT_EQ(balances_of(app(), "pro-buyer").plan, "pro");
    buy("pack-buyer", {{"pack", "tokens-1m"}});
    const Balances pack = balances_of(app(), "pack-buyer");
    EXPECT_EQ(pack.plan, "free");
    EXPECT_EQ(pack.balance.credits, pack_tokens);
    const json usage = server_->usage_of("pack-buyer");
    EXPECT_EQ(usage["tokens"]["credits"], pack_tokens);
    EXPECT_EQ(usage["tokens"]["remaining"], 250000 + pack_tokens);
}

TEST_F(BillingMerchant, UpgradesApplyAtOnceAndDowngradesFromTheNextPeriod) {
    const std::string checkout = buy("mover", {{"plan", "pro"}});
    const std::string subscription = standin_->subscription_of_checkout(checkout);
    ASSERT_FALSE(subscription.empty());
    record("mover", 400000);
    const Balances pro = balances_of(app(), "mover");
    ASSERT_EQ(pro.plan, "pro");
    const std::int64_t period_end = receipts_of(app(), "mover").back().period_end;

    // Pro monthly -> team: at once, usage kept.
    announce(subscription, "mover", {{"variant_id", 3}});
    Balances team = balances_of(app(), "mover");
    EXPECT_EQ(team.plan, "team");
    EXPECT_EQ(team.balance.tokens_limit, 50000000);
    EXPECT_EQ(team.balance.tokens_used, 400000);

    // Team -> pro yearly: a smaller plan, so team stays to the period's end.
    announce(subscription, "mover", {{"variant_id", 2}});
    team = balances_of(app(), "mover");
    EXPECT_EQ(team.plan, "team") << "a downgrade must not take away what this period paid for";
    // Redelivered or repeated, the deferral changes nothing more.
    const std::int64_t seq = team.seq;
    announce(subscription, "mover", {{"card_brand", "amex"}});
    EXPECT_EQ(balances_of(app(), "mover").seq, seq);

    server_->clock().set(period_end - 1);
    EXPECT_EQ(balances_of(app(), "mover").plan, "team");
    server_->clock().set(period_end);
    const Balances next = balances_of(app(), "mover");
    EXPECT_EQ(next.plan, "pro");
    EXPECT_EQ(next.balance.tokens_limit, 10000000);
    EXPECT_EQ(next.balance.tokens_used, 0);
    // The closed period kept team's limit: its last receipt before the new period.
    const auto receipts = receipts_of(app(), "mover");
    const auto opened = std::find_if(receipts.begin(), receipts.end(),
                                     [&](const ReceiptClaims& c) { return c.period_start == period_end; });
    ASSERT_NE(opened, receipts.end());
    EXPECT_EQ(opened->plan, "team");
    EXPECT_EQ(receipts.back().plan, "pro");

    // A switch between two variants of one plan is no change at all.
    const std::int64_t before = balances_of(app(), "mover").seq;
    announce(subscription, "mover", {{"variant_id", 1}});
    EXPECT_EQ(balances_of(app(), "mover").seq, before);
    // Ending is not a switch: expired gives free at once, mid-period.
    announce(subscription, "mover", {{"status", "expired"}}, "subscription_expired");
    EXPECT_EQ(balances_of(app(), "mover").plan, "free");
}

TEST_F(BillingMerchant, APackIsAddedOncePerOrderAndSpentAfterTheAllowance) {
    const std::string checkout = buy("packer", {{"pack", "tokens-1m"}});
    const std::string order = standin_->order_of_checkout(checkout);
    ASSERT_FALSE(order.empty());
    // Redelivered and re-sent with another webhook id: still once.
    const std::string body = standin_->order_webhook_body("order_created", order, "packer");
    for (int i = 0; i < 3; ++i) EXPECT_EQ(standin_->send_webhook("order_created", body), 200);
    EXPECT_EQ(standin_->send_webhook("order_created", test::with_new_webhook_id(body, "again")), 200);
    EXPECT_EQ(balances_of(app(), "packer").balance.credits, pack_tokens);
    int grants = 0;
    for (const auto& claims : receipts_of(app(), "packer")) grants += claims.event == "credit";
    EXPECT_EQ(grants, 1);

    // The allowance first, then the credits; authorize sees both.
    record("packer", 250000 + 300000);
    EXPECT_EQ(server_->usage_of("packer")["tokens"]["remaining"], 700000);
    EXPECT_EQ(authorize("packer", 700001, "a1"), 402);
    EXPECT_EQ(authorize("packer", 700000, "a2"), 200);

    // Credits outlive the period: the next one starts with what is left.
    const std::int64_t end = receipts_of(app(), "packer").back().period_end;
    server_->clock().set(end + 1);
    const Balances next = balances_of(app(), "packer");
    EXPECT_EQ(next.balance.tokens_used, 0);
    EXPECT_EQ(next.balance.credits, 700000) << "300,000 of the pack were spent last period";
    EXPECT_EQ(next.balance.tokens_reserved, 0) << "the open reservation expired on the way";
}

TEST_F(BillingMerchant, APackRefundClawsBackProRataAndADebtRefusesUntilPaidDown) {
    const std::string order = standin_->order_of_checkout(buy("refunded", {{"pack", "tokens-1m"}}));
    record("refunded", 250000 + 900000);  // all the allowance, 900k of the pack
    // A quarter refunded: 250,000 tokens taken back.
    ASSERT_FALSE(standin_->refund_order(order, pack_price / 4).is_null());
    Balances after = balances_of(app(), "refunded");
    EXPECT_EQ(after.balance.credits, 750000);
    EXPECT_EQ(after.balance.credits_clawed, 250000);
    EXPECT_EQ(authorize("refunded", 1, "r1"), 402) << "used 1,150,000 of a capacity of 1,000,000";
    // The rest refunded: what was used stays used, and the user owes it.
    ASSERT_FALSE(standin_->refund_order(order, -1).is_null());
    after = balances_of(app(), "refunded");
    EXPECT_EQ(after.balance.credits, 0);
    EXPECT_EQ(after.balance.credits_clawed, pack_tokens);
    EXPECT_EQ(after.balance.tokens_used, 1150000);
    EXPECT_EQ(server_->usage_of("refunded")["tokens"]["remaining"], 0);
    // Redelivering every refund changes nothing more.
    for (const auto& delivery : standin_->deliveries()) {
        if (delivery.event_name == "order_refunded") {
            EXPECT_EQ(standin_->send_webhook(delivery.event_name, delivery.body), 200);
        }
    }
    EXPECT_EQ(balances_of(app(), "refunded").balance.credits, 0);

    // The next period carries the 900,000 spent and refunded as a debt,
    // which its allowance pays down first.
    const std::int64_t end = receipts_of(app(), "refunded").back().period_end;
    server_->clock().set(end + 1);
    Balances next = balances_of(app(), "refunded");
    EXPECT_EQ(next.balance.credits, -900000);
    EXPECT_EQ(authorize("refunded", 1, "r2"), 402) << "a debt larger than the allowance refuses everything";
    // The period after: 250,000 of the debt were paid by the unused allowance.
    server_->clock().set(receipts_of(app(), "refunded").back().period_end + 1);
    next = balances_of(app(), "refunded");
    EXPECT_EQ(next.balance.credits, -650000);
    // A new pack brings the balance positive again.
    buy("refunded", {{"pack", "tokens-1m"}});
    EXPECT_EQ(balances_of(app(), "refunded").balance.credits, 350000);
    EXPECT_EQ(authorize("refunded", 250000 + 350000, "r3"), 200);
}

TEST_F(BillingMerchant, ARefundedSubscriptionPaymentEndsTheCycleItPaidFor) {
    const std::string subscription = standin_->subscription_of_checkout(buy("upgrader", {{"plan", "team"}}));
    ASSERT_EQ(balances_of(app(), "upgrader").plan, "team");
    const auto invoices = standin_->invoices_of_subscription(subscription);
    ASSERT_FALSE(invoices.empty());
    // A partial refund (a goodwill discount) leaves the plan alone.
    ASSERT_FALSE(standin_->refund_invoice(invoices.front(), 1000).is_null());
    EXPECT_EQ(balances_of(app(), "upgrader").plan, "team");
    // The rest: the cycle is not paid for any more.
    ASSERT_FALSE(standin_->refund_invoice(invoices.front(), -1).is_null());
    EXPECT_EQ(balances_of(app(), "upgrader").plan, "free");
    // At the renewal the subscription's own word holds again (here: still active).
    const json resource = standin_->subscription_resource(subscription);
    const std::int64_t renews = parse_rfc3339(resource["attributes"]["renews_at"].get<std::string>()).value();
    server_->clock().set(renews - 1);
    EXPECT_EQ(balances_of(app(), "upgrader").plan, "free");
    server_->clock().set(renews);
    EXPECT_EQ(balances_of(app(), "upgrader").plan, "team");
}

TEST_F(BillingMerchant, ThePortalIsFetchedFreshAndNeverStored) {
    auto client = server_->client();
    auto none = client.Post("/v1/me/portal", server_->as_user("window-shopper"), "", "application/json");
    ASSERT_TRUE(none);
    EXPECT_EQ(none->status, 404);
    EXPECT_EQ(json::parse(none->body)["error"]["code"], "no_subscription");
    buy("subscriber", {{"plan", "pro"}});
    std::set<std::string> urls;
    for (int i = 0; i < 2; ++i) {
        auto portal = client.Post("/v1/me/portal", server_->as_user("subscriber"), "", "application/json");
        ASSERT_TRUE(portal);
        ASSERT_EQ(portal->status, 200) << portal->body;
        const std::string url = json::parse(portal->body)["url"].get<std::string>();
        EXPECT_EQ(url.rfind(standin_->base_url() + "/billing?", 0), 0U) << url;
        urls.insert(url);
    }
    EXPECT_EQ(urls.size(), 2U) << "each click gets a freshly signed URL";
    standin_->fail_next("server_error", 1);
    auto failed = client.Post("/v1/me/portal", server_->as_user("subscriber"), "", "application/json");
    ASSERT_TRUE(failed);
    EXPECT_EQ(failed->status, 502);
    EXPECT_EQ(json::parse(failed->body)["error"]["code"], "portal_failed");
    auto anonymous = client.Post("/v1/me/portal", "", "application/json");
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 401);
}

TEST_F(BillingMerchant, ReconcileAppliesPacksAndRefundsThatNeverArrived) {
    // Known through a subscription; then a pack bought with every webhook dropped.
    const std::string subscription = standin_->subscription_of_checkout(buy("quiet", {{"plan", "pro"}}));
    const std::string order = standin_->order_of_checkout(buy("quiet", {{"pack", "tokens-1m"}}, "none"));
    EXPECT_EQ(balances_of(app(), "quiet").balance.credits, 0);
    // Half the pack refunded and the payment refunded, both webhooks dropped.
    standin_->drop_next_deliveries(2);
    ASSERT_FALSE(standin_->refund_order(order, pack_price / 2).is_null());
    ASSERT_FALSE(standin_->refund_invoice(standin_->invoices_of_subscription(subscription).front(), -1).is_null());
    EXPECT_EQ(balances_of(app(), "quiet").plan, "pro");

    const billing::ReconcileSummary first = app().billing()->reconcile();
    ASSERT_FALSE(first.failure.has_value()) << first.failure->message;
    EXPECT_EQ(first.orders_applied, 1);
    EXPECT_EQ(first.invoices_applied, 1);
    const Balances repaired = balances_of(app(), "quiet");
    EXPECT_EQ(repaired.plan, "free");
    EXPECT_EQ(repaired.balance.credits, pack_tokens / 2);
    EXPECT_EQ(repaired.balance.credits_clawed, pack_tokens / 2);
    // Twice is once.
    const billing::ReconcileSummary second = app().billing()->reconcile();
    EXPECT_EQ(second.orders_applied, 0);
    EXPECT_EQ(second.invoices_applied, 0);
    EXPECT_EQ(balances_of(app(), "quiet").seq, repaired.seq);
}

// A refund racing 64 authorizes: at every step of the user's receipt chain,
// what is reserved and used fits the capacity of that moment (I2 with
// credits), the refund takes back exactly its share, and what was granted
// before it is never more than the capacity before it.
TEST_F(BillingMerchant, ARefundRacingSixtyFourAuthorizesNeverOverspends) {
    const std::string order = standin_->order_of_checkout(buy("racer", {{"pack", "tokens-1m"}}));
    record("racer", 250000);  // the allowance is gone: only credits are left
    std::atomic<int> granted{0};
    std::atomic<int> refused{0};
    std::vector<std::thread> clients;
    std::atomic<bool> go{false};
    for (int i = 0; i < 64; ++i) {
        clients.emplace_back([&, i] {
            while (!go) std::this_thread::yield();
            const int status = authorize("racer", 25000, "race-" + std::to_string(i));
            (status == 200 ? granted : refused) += 1;
            EXPECT_TRUE(status == 200 || status == 402) << status;
        });
    }
    go = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_FALSE(standin_->refund_order(order, pack_price / 2).is_null());  // 500,000 back
    for (auto& client : clients) client.join();
    EXPECT_EQ(granted + refused, 64);

    int violations = 0;
    int refunds = 0;
    for (const ReceiptClaims& claims : receipts_of(app(), "racer")) {
        const Balance& b = claims.balance;
        if ((claims.event == "authorize" || claims.event == "record") &&
            b.tokens_used + b.tokens_reserved > b.tokens_limit + b.credits) {
            ++violations;
        }
        refunds += claims.event == "credit" && b.credits_clawed > 0;
    }
    EXPECT_EQ(violations, 0) << "an authorize reserved past the capacity of its moment";
    EXPECT_EQ(refunds, 1);
    const Balances end = balances_of(app(), "racer");
    EXPECT_EQ(end.balance.credits, pack_tokens / 2);
    EXPECT_EQ(end.balance.tokens_reserved, 25000 * granted);
    // Granted before the refund may exceed what is left after it (a debt in
    // waiting), but never the capacity the pack gave: 40 of 25,000.
    EXPECT_LE(granted.load(), 40);
    EXPECT_GE(granted.load(), 20) << "at least the half that survives the refund fits";
}

// The browser marks the thresholds the app is alerted at: the user's
// snapshot (read and stream) carries them; service replies, which are
// replayed byte for byte, do not.
TEST(AlertThresholds, TheUsersSnapshotCarriesTheConfiguredThresholds) {
    test::TestServerOptions options;
    options.configure = [](config::ServerConfig& config) { config.alert_thresholds_percent = {50, 90, 120}; };
    TestServer server(options);
    auto client = server.client();
    auto usage = client.Get("/v1/me/usage", server.as_user("marked"));
    ASSERT_TRUE(usage);
    ASSERT_EQ(usage->status, 200) << usage->body;
    EXPECT_EQ(json::parse(usage->body)["alerts"]["thresholds"], json::array({50, 90, 120}));
    EXPECT_FALSE(server.usage_of("marked").contains("alerts"));
    test::UsageStreamReader stream(server, "marked");
    ASSERT_TRUE(stream.wait_for([](const std::string& received) {
        return received.find(R"("alerts":{"thresholds":[50,90,120]})") != std::string::npos;
    })) << "the stream's first event";
    auto recorded = server.post("/v1/usage/record", {{"user_id", "marked"}, {"operation", "avatar"}});
    ASSERT_TRUE(recorded);
    EXPECT_FALSE(json::parse(recorded->body)["usage"].contains("alerts"));
    ASSERT_TRUE(stream.wait_for([](const std::string& received) {
        const auto changed = received.find(R"("avatars":{"limit":5,"remaining":4)");
        if (changed == std::string::npos) return false;
        const auto event_start = received.rfind("event: usage", changed);
        return received.find(R"("alerts":{"thresholds":[50,90,120]})", event_start) != std::string::npos;
    })) << "a change pushed to the stream";
}

// `serve --reconcile-every`: the server heals dropped webhooks by itself.
TEST(ReconcileEvery, TheServerRepairsDroppedWebhooksOnItsOwnTimer) {
    standin::StandinOptions options;
    options.api_key = test::api_key;
    options.webhook_secret = test::webhook_secret;
    options.pack_variant_ids = {"4"};
    options.variant_prices = {{"4", pack_price}};
    standin::Standin standin(options);
    ASSERT_GT(standin.start("127.0.0.1", 0), 0);
    test::TestServerOptions server_options;
    server_options.lemonsqueezy = test::lemonsqueezy_settings(standin.base_url());
    server_options.catalog_json = merchant_catalog();
    server_options.configure = [](config::ServerConfig& config) { config.reconcile_every_seconds = 1; };
    TestServer server(server_options);
    standin.set_webhook_url("http://127.0.0.1:" + std::to_string(server.port()) + "/v1/webhooks/lemonsqueezy");
    // A subscription known from its order; then a pack whose webhooks were all dropped.
    auto checkout = [&](const json& body, const std::string& deliver) {
        auto client = server.client();
        auto response = client.Post("/v1/me/checkout", server.as_user("timed"), body.dump(), "application/json");
        ASSERT_TRUE(response && response->status == 200);
        const std::string url = json::parse(response->body)["url"].get<std::string>();
        const auto start = url.find("/checkout/custom/") + 17;
        httplib::Client pay(standin.base_url());
        ASSERT_TRUE(pay.Post("/checkout/custom/" + url.substr(start, url.find('?') - start) + "/pay?deliver=" + deliver, "",
                             "application/x-www-form-urlencoded"));
    };
    checkout({{"plan", "pro"}}, "all");
    checkout({{"pack", "tokens-1m"}}, "none");
    EXPECT_EQ(balances_of(server.app(), "timed").balance.credits, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (balances_of(server.app(), "timed").balance.credits == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(balances_of(server.app(), "timed").balance.credits, pack_tokens) << "no pass applied the dropped order";
    standin.stop();
}

TEST(ReconcileEvery, DurationsAndTheirRefusals) {
    EXPECT_EQ(config::parse_interval_seconds("900"), 900);
    EXPECT_EQ(config::parse_interval_seconds("90s"), 90);
    EXPECT_EQ(config::parse_interval_seconds("15m"), 900);
    EXPECT_EQ(config::parse_interval_seconds("2h"), 7200);
    EXPECT_EQ(config::parse_interval_seconds("1d"), 86400);
    EXPECT_EQ(config::parse_interval_seconds("30d"), 30 * 86400);
    for (const char* bad : {"", "0", "-5m", "31d", "1.5h", "15 m", "m", "15x", "99999999999999999999"}) {
        EXPECT_FALSE(config::parse_interval_seconds(bad).has_value()) << bad;
    }
    // Without an API key to list with, a timer is a start-up error, not a silent no-op.
    test::TestServerOptions options;
    options.configure = [](config::ServerConfig& config) { config.reconcile_every_seconds = 60; };
    EXPECT_THROW(TestServer server(options), std::runtime_error);
}

// In-process deliveries (no HTTP) for the many orders: the same service
// the webhook route calls, the provider scripted to answer fetches with the
// newest subscription, bodies built by the stand-in.
class BillingDeliveries : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = test::make_temp_dir();
        db_ = test::fast_db_url(dir_);
        test::TestServerOptions options;
        options.db = db_;
        options.lemonsqueezy = test::lemonsqueezy_settings("http://127.0.0.1:9");  // never called in-process
        options.catalog_json = merchant_catalog();
        server_ = std::make_unique<TestServer>(options);
        service_ = std::make_unique<billing::BillingService>(
            server_->app().ledger(), provider_,
            billing::plan_rules_of(*options.lemonsqueezy, *server_->app().prices().catalog()));
        standin::StandinOptions factory_options;
        factory_options.pack_variant_ids = {"4"};
        factory_options.variant_prices = {{"4", pack_price}};
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
        const test::Delivery delivery = test::signed_delivery(body);
        return service_->handle_webhook(delivery.body, delivery.signature);
    }

    std::string dir_;
    std::string db_;
    std::unique_ptr<TestServer> server_;
    test::ScriptedProvider provider_;
    std::unique_ptr<billing::BillingService> service_;
    std::unique_ptr<standin::Standin> factory_;
};

// One lifecycle with pauses and refunds, as the provider would send it:
// bought (pro), a pack, moved to team, paused void, unpaused, the payment,
// the pack refunded in half then in full, the payment refunded. Whatever
// the order and the repeats, the newest state holds: team's payment
// refunded (free until the renewal, then team again), the pack taken back
// in full, and exactly one grant and what the refunds took, no more.
TEST_F(BillingDeliveries, FiveHundredOrdersOfALifecycleWithRefundsAndPausesEndTheSame) {
    const std::int64_t t = server_->clock().now_seconds();
    const std::int64_t renews = t + 30 * day;
    struct Run {
        std::string user;
        std::vector<std::string> bodies;
        std::vector<int> sequence;
    };
    std::mt19937 random(14);
    std::vector<Run> runs;
    for (int i = 0; i < 500; ++i) {
        Run run{"life-" + std::to_string(i), {}, {}};
        const std::string subscription = std::to_string(7000000 + i);
        const std::string order = std::to_string(8000000 + i);
        const std::string invoice = std::to_string(9000000 + i);
        auto sub = [&](const json& attributes, std::int64_t at, const std::string& event) {
            json timed = attributes;
            timed["updated_at"] = standin::lemonsqueezy_time(at);
            factory_->put_subscription(subscription, timed);
            run.bodies.push_back(factory_->subscription_webhook_body(event, subscription, run.user));
        };
        sub({{"status", "active"}, {"variant_id", 1}, {"renews_at", standin::lemonsqueezy_time(renews)}}, t - 900,
            "subscription_created");
        factory_->put_order(order, {{"first_order_item", {{"variant_id", 4}}}, {"total", pack_price},
                                    {"updated_at", standin::lemonsqueezy_time(t - 890)}}, run.user);
        run.bodies.push_back(factory_->order_webhook_body("order_created", order, run.user));
        sub({{"variant_id", 3}}, t - 800, "subscription_updated");
        sub({{"status", "paused"}, {"pause", {{"mode", "void"}, {"resumes_at", standin::lemonsqueezy_time(t + 10 * day)}}}},
            t - 700, "subscription_paused");
        sub({{"status", "active"}, {"pause", nullptr}}, t - 600, "subscription_unpaused");
        provider_.set_current(test::snapshot_of(run.bodies.back()));  // the provider's word: active team
        factory_->put_invoice(invoice, {{"subscription_id", std::stoll(subscription)}, {"total", 5000},
                                        {"created_at", standin::lemonsqueezy_time(t - 950)}}, run.user);
        run.bodies.push_back(factory_->invoice_webhook_body("subscription_payment_success", invoice, run.user));
        factory_->refund_order(order, pack_price / 2);
        run.bodies.push_back(factory_->order_webhook_body("order_refunded", order, run.user));
        factory_->refund_order(order, -1);
        run.bodies.push_back(factory_->order_webhook_body("order_refunded", order, run.user));
        factory_->refund_invoice(invoice, -1);
        run.bodies.push_back(factory_->invoice_webhook_body("subscription_payment_refunded", invoice, run.user));
        // A random order, each event one to three times at random places.
        std::vector<int> order_of(run.bodies.size());
        std::iota(order_of.begin(), order_of.end(), 0);
        std::shuffle(order_of.begin(), order_of.end(), random);
        for (int index : order_of) {
            const int copies = 1 + static_cast<int>(random() % 3);
            for (int c = 0; c < copies; ++c) {
                const auto at = random() % (run.sequence.size() + 1);
                run.sequence.insert(run.sequence.begin() + static_cast<std::ptrdiff_t>(at), index);
            }
        }
        runs.push_back(std::move(run));
    }
    std::set<std::vector<int>> distinct;
    for (const Run& run : runs) distinct.insert(run.sequence);
    EXPECT_GE(distinct.size(), 500U);

    std::atomic<std::size_t> next{0};
    std::atomic<int> non_200{0};
    std::vector<std::thread> senders;
    for (int s = 0; s < 8; ++s) {
        senders.emplace_back([&] {
            for (std::size_t i = next++; i < runs.size(); i = next++) {
                for (int index : runs[i].sequence) {
                    if (deliver(runs[i].bodies[static_cast<std::size_t>(index)]).status != 200) ++non_200;
                }
            }
        });
    }
    for (auto& sender : senders) sender.join();
    EXPECT_EQ(non_200, 0);

    int wrong = 0;
    for (const Run& run : runs) {
        const Balances now = balances_of(server_->app(), run.user);
        std::int64_t granted = 0;
        std::int64_t taken = 0;
        int grants = 0;
        for (const auto& row : server_->app().store().read_journal(run.user, 1, 100000)) {
            if (row.kind != "credit") continue;
            const json change = json::parse(row.change);
            const std::int64_t tokens = change["credit"]["tokens"].get<std::int64_t>();
            if (tokens > 0) {
                granted += tokens;
                grants += 1;
            } else {
                taken -= tokens;
            }
        }
        const bool right = now.plan == "free" && now.balance.credits == 0 && now.balance.credits_clawed == pack_tokens &&
                           granted == pack_tokens && grants == 1 && taken == pack_tokens;
        if (!right && ++wrong <= 3) {
            ADD_FAILURE() << run.user << ": plan " << now.plan << ", credits " << now.balance.credits << " (clawed "
                          << now.balance.credits_clawed << "), granted " << granted << " in " << grants
                          << " grant(s), taken " << taken;
        }
    }
    EXPECT_EQ(wrong, 0);
    // At the renewal the refunded cycle is over and team holds again, for everyone.
    server_->clock().set(renews);
    int not_team = 0;
    for (const Run& run : runs) not_team += balances_of(server_->app(), run.user).plan != "team";
    EXPECT_EQ(not_team, 0);
}

}  // namespace
}  // namespace tokenmeter
