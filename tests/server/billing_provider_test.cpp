// Billing against the LemonSqueezy stand-in over real HTTP: checkout and
// each of the stand-in's error modes, the demo's pay flow, webhooks through
// the server's route, and reconciliation after dropped webhooks.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "billing_support.hpp"
#include "cli/commands.hpp"
#include "cli/reconcile_command.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::TestServer;

constexpr std::int64_t day = 86400;

// A stand-in and a server that know each other, on loopback.
class BillingOverHttp : public ::testing::Test {
protected:
    void SetUp() override {
        standin::StandinOptions options;
        options.api_key = test::api_key;
        options.webhook_secret = test::webhook_secret;
        options.page_size_max = 3;  // so reconcile follows several pages
        // Far beyond the 1 s client timeout of these tests: a call that
        // returns 504 was ended by that timeout, since the stand-in would
        // have answered 201 only after a minute. stop() cuts the wait short.
        options.slow_ms = 60000;
        options.now_seconds = [this] { return server_ ? server_->clock().now_seconds() : 1764000000; };
        standin_ = std::make_unique<standin::Standin>(options);
        const int port = standin_->start("127.0.0.1", 0);
        ASSERT_GT(port, 0);
        test::TestServerOptions server_options;
        server_options.lemonsqueezy = test::lemonsqueezy_settings(standin_->base_url());
        server_ = std::make_unique<TestServer>(server_options);
        standin_->set_webhook_url("http://127.0.0.1:" + std::to_string(server_->port()) + "/v1/webhooks/lemonsqueezy");
        ASSERT_NE(server_->app().billing(), nullptr);
    }
    void TearDown() override {
        standin_->stop();
        server_.reset();
    }

    billing::BillingService& billing() { return *server_->app().billing(); }

    // Creates a checkout for `user` and pays it at the stand-in; the subscription id.
    std::string buy(const std::string& user, const std::string& deliver = "all") {
        auto outcome = billing().checkout(user, "https://app.example/billing?done=1");
        EXPECT_EQ(outcome.status, 200) << outcome.body;
        const std::string url = json::parse(outcome.body)["url"].get<std::string>();
        const auto start = url.find("/checkout/custom/") + 17;
        const std::string checkout_id = url.substr(start, url.find('?') - start);
        httplib::Client client(standin_->base_url());
        auto paid = client.Post("/checkout/custom/" + checkout_id + "/pay?deliver=" + deliver, "", "application/x-www-form-urlencoded");
        EXPECT_TRUE(paid && paid->status == 303);
        if (paid) {
            EXPECT_EQ(paid->get_header_value("Location"), "https://app.example/billing?done=1");
        }
        return standin_->subscription_of_checkout(checkout_id);
    }

    std::unique_ptr<standin::Standin> standin_;
    std::unique_ptr<TestServer> server_;
};

TEST_F(BillingOverHttp, CheckoutReturnsTheStandinsPayPage) {
    auto outcome = billing().checkout("alice", "https://app.example/done");
    ASSERT_EQ(outcome.status, 200) << outcome.body;
    const json body = json::parse(outcome.body);
    const std::string url = body["url"].get<std::string>();
    EXPECT_EQ(url.rfind(standin_->base_url() + "/checkout/custom/", 0), 0U) << url;
    EXPECT_FALSE(body["checkout_id"].get<std::string>().empty());
    httplib::Client client(standin_->base_url());
    auto page = client.Get(url.substr(standin_->base_url().size()));
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 200);
    EXPECT_NE(page->body.find(">Pay<"), std::string::npos);
    EXPECT_NE(page->body.find("alice"), std::string::npos);
}

TEST_F(BillingOverHttp, EveryProviderFailureBecomesAClearErrorAndNeverAHang) {
    struct Case {
        const char* mode;
        int status;
        const char* reason;
        const char* says;
    };
    const Case cases[] = {
        {"rejected", 502, "provider_rejected", "The related resource does not exist."},
        {"unauthorized", 502, "provider_rejected", "401"},
        {"server_error", 502, "provider_error", "An unexpected error occurred."},
        {"html_error", 502, "provider_error", "502"},
        {"rate_limited", 503, "provider_rate_limited", "429"},
        {"slow", 504, "provider_timeout", "did not answer within 1000 ms"},
        {"close", 502, "provider_bad_response", "mid-answer"},
    };
    // Only a hang gets here: a timed-out call ends after the 1 s timeout,
    // the others at once, and the stand-in holds a slow answer for a minute.
    const auto hang = std::chrono::seconds(30);
    billing::LemonSqueezyProvider provider({standin_->base_url(), test::api_key, "1", "1", test::webhook_secret, 1000, 100});
    for (const Case& c : cases) {
        // The provider's own error is precise, for the operator.
        standin_->fail_next(c.mode, 1);
        auto direct = provider.create_checkout({"bob", ""});
        ASSERT_FALSE(direct) << c.mode;
        EXPECT_EQ(direct.error().reason, c.reason) << c.mode;
        EXPECT_NE(direct.error().message.find(c.says), std::string::npos) << c.mode << ": " << direct.error().message;
        // The checkout's answer (what the browser gets) keeps the kind of
        // failure and logs the detail instead of returning it.
        standin_->fail_next(c.mode, 1);
        const auto start = std::chrono::steady_clock::now();
        ::testing::internal::CaptureStderr();
        auto outcome = billing().checkout("bob", "");
        const std::string log = ::testing::internal::GetCapturedStderr();
        EXPECT_LT(std::chrono::steady_clock::now() - start, hang) << c.mode;
        EXPECT_EQ(outcome.status, c.status) << c.mode << ": " << outcome.body;
        const json error = json::parse(outcome.body)["error"];
        EXPECT_EQ(error["code"], "checkout_failed") << c.mode;
        EXPECT_EQ(error["reason"], c.reason) << c.mode;
        const std::string message = error["message"].get<std::string>();
        EXPECT_NE(message.find("payment provider"), std::string::npos) << c.mode << ": " << message;
        EXPECT_EQ(message.find("LemonSqueezy"), std::string::npos) << c.mode << ": " << message;
        EXPECT_EQ(outcome.body.find(standin_->base_url()), std::string::npos) << c.mode << ": " << outcome.body;
        EXPECT_NE(log.find(c.says), std::string::npos) << c.mode << ": " << log;
        if (std::string(c.mode) == "rate_limited") {
            EXPECT_EQ(error["retry_after_seconds"], 1);
        }
    }
    // After the failures, the next checkout works again.
    EXPECT_EQ(billing().checkout("bob", "").status, 200);
}

TEST(BillingProviderFailure, AnUnreachableProviderIsA502ThatDoesNotNameTheApiBase) {
    // An internal address, as a proxy in front of LemonSqueezy would have;
    // nothing listens on port 1.
    const std::string api_base = "http://127.0.0.1:1";
    billing::LemonSqueezyProvider nowhere({api_base, test::api_key, "1", "1", test::webhook_secret, 1000, 100});
    auto unreachable = nowhere.create_checkout({"bob", ""});
    ASSERT_FALSE(unreachable);
    EXPECT_EQ(unreachable.error().reason, "provider_unreachable");
    // The operator's detail names the address it could not reach...
    EXPECT_NE(unreachable.error().message.find(api_base), std::string::npos) << unreachable.error().message;
    ::testing::internal::CaptureStderr();
    auto outcome = billing::provider_failure("checkout_failed", unreachable.error());
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(outcome.status, 502);
    // ...in the log; the answer has only the kind of failure.
    EXPECT_NE(log.find(api_base), std::string::npos) << log;
    EXPECT_EQ(outcome.body.find("127.0.0.1"), std::string::npos) << outcome.body;
    const json error = json::parse(outcome.body)["error"];
    EXPECT_EQ(error["code"], "checkout_failed");
    EXPECT_EQ(error["reason"], "provider_unreachable");
    EXPECT_EQ(error["message"], "the payment provider cannot be reached; try again later");

    // The same through the route a browser calls.
    test::TestServerOptions options;
    options.lemonsqueezy = test::lemonsqueezy_settings(api_base);
    TestServer server(options);
    ::testing::internal::CaptureStderr();
    auto response = server.client().Post("/v1/me/checkout", server.as_user("carol"), "", "application/json");
    const std::string route_log = ::testing::internal::GetCapturedStderr();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 502) << response->body;
    EXPECT_EQ(test::body_of(response)["error"]["reason"], "provider_unreachable");
    EXPECT_EQ(response->body.find("127.0.0.1"), std::string::npos) << response->body;
    EXPECT_NE(route_log.find(api_base), std::string::npos) << route_log;
}

TEST_F(BillingOverHttp, CheckoutRouteNeedsAUserAndAnswersWithTheUrl) {
    auto client = server_->client();
    auto anonymous = client.Post("/v1/me/checkout", "", "application/json");
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 401);
    auto response = client.Post("/v1/me/checkout", server_->as_user("carol"), R"({"redirect_url":"https://app.example/x"})",
                                "application/json");
    ASSERT_TRUE(response);
    if (response->status == 401 && test::body_of(response)["error"]["code"] == "auth_unavailable") {
        GTEST_SKIP() << "user authentication (server/auth) is not merged yet";
    }
    ASSERT_EQ(response->status, 200) << response->body;
    EXPECT_EQ(test::body_of(response)["url"].get<std::string>().rfind(standin_->base_url(), 0), 0U);
    auto bad = client.Post("/v1/me/checkout", server_->as_user("carol"), R"x({"redirect_url":"javascript:alert(1)"})x",
                           "application/json");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400);
    standin_->fail_next("slow", 1);
    auto slow = client.Post("/v1/me/checkout", server_->as_user("carol"), "", "application/json");
    ASSERT_TRUE(slow);
    EXPECT_EQ(slow->status, 504);
    EXPECT_EQ(test::body_of(slow)["error"]["reason"], "provider_timeout");
}

TEST_F(BillingOverHttp, PayingAtTheStandinUpgradesTheUserThroughSignedWebhooks) {
    EXPECT_EQ(test::plan_view(server_->app(), "dora").plan, "free");
    const std::string subscription = buy("dora");
    ASSERT_FALSE(subscription.empty());
    const auto deliveries = standin_->deliveries();
    ASSERT_EQ(deliveries.size(), 2U);
    EXPECT_EQ(deliveries[0].event_name, "order_created");
    EXPECT_EQ(deliveries[1].event_name, "subscription_created");
    for (const auto& delivery : deliveries) {
        EXPECT_EQ(delivery.status, 200) << delivery.event_name;
        EXPECT_NE(delivery.body.find("\\/"), std::string::npos) << "LemonSqueezy escapes slashes";
    }
    const test::PlanView view = test::plan_view(server_->app(), "dora");
    EXPECT_EQ(view.plan, "pro");
    EXPECT_EQ(view.plan_changes, 1);
}

TEST_F(BillingOverHttp, TheUsersLiveStreamSeesTheUpgradeWithItsReceipt) {
    test::UsageStreamReader live(*server_, "fay");
    auto has = [](const char* part) { return [part](const std::string& text) { return text.find(part) != std::string::npos; }; };
    ASSERT_TRUE(live.wait_for(has("event: usage"))) << live.text();
    ASSERT_NE(live.text().find("\"plan\":\"free\""), std::string::npos) << live.text();
    buy("fay");  // the stand-in's webhooks reach the server before buy() returns
    live.wait_for(has("\"plan\":\"pro\""));
    const std::string stream = live.text();
    const auto at = stream.find("\"plan\":\"pro\"");
    ASSERT_NE(at, std::string::npos) << "the upgrade did not reach the live stream: " << stream;
    // The snapshot carries its receipt, and the receipt says pro too.
    const auto data = stream.rfind("data: ", at);
    const json snapshot = json::parse(stream.substr(data + 6, stream.find('\n', data) - data - 6));
    auto claims = decode_receipt_claims(snapshot["receipt"].get<std::string>());
    ASSERT_TRUE(claims);
    EXPECT_EQ(claims->plan, "pro");
    EXPECT_EQ(claims->event, "plan_change");
}

TEST_F(BillingOverHttp, WebhookRouteChecksTheRawBytes) {
    const std::string subscription = buy("erin", "none");
    const std::string body = standin_->subscription_webhook_body("subscription_created", subscription, "erin");
    const std::string signature = billing::hmac_sha256_hex(test::webhook_secret, body);
    auto client = server_->client();
    auto post = [&](const std::string& sent, const std::string& sig, bool with_header = true) {
        httplib::Headers headers = {{"X-Event-Name", "subscription_created"}};
        if (with_header) headers.emplace("X-Signature", sig);
        auto response = client.Post("/v1/webhooks/lemonsqueezy", headers, sent, "application/json");
        return response ? response->status : 0;
    };
    EXPECT_EQ(post(body, signature, false), 401);
    EXPECT_EQ(post(body, ""), 401);
    EXPECT_EQ(post(body, "not-hex"), 401);
    std::string upper = signature;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(post(body, upper), 401);
    EXPECT_EQ(post(json::parse(body).dump(), signature), 401);  // re-serialized
    EXPECT_EQ(post(body, billing::hmac_sha256_hex("wrong-secret", body)), 401);
    EXPECT_EQ(test::plan_view(server_->app(), "erin").plan, "free");
    EXPECT_EQ(post(body, signature), 200);
    EXPECT_EQ(post(body, signature), 200);  // redelivery
    const test::PlanView view = test::plan_view(server_->app(), "erin");
    EXPECT_EQ(view.plan, "pro");
    EXPECT_EQ(view.plan_changes, 1);
}

TEST_F(BillingOverHttp, LifecycleOrdersOverRealHttpEndOnTheNewestSnapshot) {
    // A subset of the in-process permutation test, through the route and with
    // the stand-in answering the payment event's fetch.
    const std::int64_t t0 = server_->clock().now_seconds();
    const std::vector<std::vector<int>> orders = {
        {0, 1, 2, 3, 4, 5}, {5, 4, 3, 2, 1, 0}, {3, 0, 5, 1, 4, 2}, {4, 5, 0, 3, 2, 1}, {2, 3, 4, 5, 0, 1}, {1, 5, 2, 0, 3, 4}};
    auto client = server_->client();
    for (std::size_t i = 0; i < orders.size(); ++i) {
        const std::string sub = std::to_string(7000000 + i);
        const std::string user = "http-" + std::to_string(i);
        std::vector<std::string> bodies;
        auto put = [&](const json& attributes, std::int64_t at, const std::string& event) {
            json timed = attributes;
            timed["updated_at"] = standin::lemonsqueezy_time(at);
            standin_->put_subscription(sub, timed);
            bodies.push_back(standin_->subscription_webhook_body(event, sub, user));
        };
        const std::string renews = standin::lemonsqueezy_time(t0 + 30 * day);
        put({{"status", "active"}, {"renews_at", renews}}, t0 - 600, "subscription_created");
        put({{"card_brand", "amex"}}, t0 - 500, "subscription_updated");
        put({{"status", "past_due"}}, t0 - 400, "subscription_updated");
        bodies.push_back(test::invoice_body("subscription_payment_success", sub, user, "99" + sub, t0 - 350));
        put({{"status", "cancelled"}, {"ends_at", renews}}, t0 - 300, "subscription_cancelled");
        put({{"status", "expired"}}, t0 - 200, "subscription_expired");  // the stand-in's current state
        for (int index : orders[i]) {
            for (int copy = 0; copy < 1 + (index + static_cast<int>(i)) % 3; ++copy) {
                const auto delivery = test::signed_delivery(bodies[static_cast<std::size_t>(index)]);
                auto response = client.Post("/v1/webhooks/lemonsqueezy", {{"X-Signature", delivery.signature}},
                                            delivery.body, "application/json");
                ASSERT_TRUE(response);
                EXPECT_EQ(response->status, 200) << response->body;
            }
        }
        EXPECT_EQ(test::plan_view(server_->app(), user).plan, "free") << "order " << i;
    }
}

TEST_F(BillingOverHttp, ReconcileRepairsUsersWhoseWebhooksWereDropped) {
    // Known subscriptions whose later webhooks were all dropped.
    const std::string cancelled = buy("rec-cancelled");
    const std::string paused = buy("rec-paused");
    const std::string switched = buy("rec-switched");
    const std::string steady = buy("rec-steady");
    // Purchases whose subscription webhooks were all dropped (only the order arrived).
    const std::string order_only_a = buy("rec-order-a", "order_created");
    const std::string order_only_b = buy("rec-order-b", "order_created");
    // A purchase of which nothing arrived: no user can be known for it.
    const std::string silent = buy("rec-silent", "none");
    standin_->put_subscription(cancelled, {{"status", "expired"}, {"ends_at", standin::lemonsqueezy_time(server_->clock().now_seconds())}});
    standin_->put_subscription(paused, {{"status", "paused"}, {"pause", {{"mode", "void"}, {"resumes_at", nullptr}}}});
    standin_->put_subscription(switched, {{"variant_id", 999}});
    const std::map<std::string, std::string> expected = {
        {"rec-cancelled", "free"}, {"rec-paused", "free"}, {"rec-switched", "free"}, {"rec-steady", "pro"},
        {"rec-order-a", "pro"},    {"rec-order-b", "pro"}};
    int drift_before = 0;
    for (const auto& [user, plan] : expected) drift_before += test::plan_view(server_->app(), user).plan != plan;
    EXPECT_EQ(drift_before, 5);

    standin_->fail_next("rate_limited", 1);  // waited out (Retry-After: 1), then listed
    const billing::ReconcileSummary first = billing().reconcile();
    ASSERT_FALSE(first.failure.has_value()) << first.failure->message;
    EXPECT_EQ(first.listed, 7);
    EXPECT_EQ(first.pages, 3);
    EXPECT_EQ(first.matched, 6);
    EXPECT_EQ(first.unmatched, 1);
    EXPECT_EQ(first.repaired, 5);
    int drift_after = 0;
    for (const auto& [user, plan] : expected) {
        const std::string actual = test::plan_view(server_->app(), user).plan;
        if (actual != plan) ADD_FAILURE() << user << " is " << actual << ", the API says " << plan;
        drift_after += actual != plan;
    }
    EXPECT_EQ(drift_after, 0);
    std::ostringstream printed;
    cli::print_reconcile_summary(first, printed);
    EXPECT_NE(printed.str().find("5 plan(s) repaired, 1 unmatched"), std::string::npos) << printed.str();
    EXPECT_NE(printed.str().find("subscription " + silent), std::string::npos) << printed.str();

    // Idempotent: a second pass changes nothing.
    std::map<std::string, int> changes;
    for (const auto& [user, plan] : expected) changes[user] = test::plan_view(server_->app(), user).plan_changes;
    const billing::ReconcileSummary second = billing().reconcile();
    EXPECT_EQ(second.repaired, 0);
    EXPECT_EQ(second.updated, 0);
    for (const auto& [user, plan] : expected) EXPECT_EQ(test::plan_view(server_->app(), user).plan_changes, changes[user]) << user;

    // The API failing mid-way is reported, not hidden.
    standin_->fail_next("server_error", 1);
    const billing::ReconcileSummary failed = billing().reconcile();
    ASSERT_TRUE(failed.failure.has_value());
    EXPECT_EQ(failed.failure->reason, "provider_error");
}

TEST_F(BillingOverHttp, ReconcileCommandUsesTheServersConfiguration) {
    const std::string subscription = buy("cli-user");
    ASSERT_EQ(test::plan_view(server_->app(), "cli-user").plan, "pro");
    standin_->put_subscription(subscription, {{"status", "expired"}});
    const std::string config_file = server_->dir() + "/reconcile.json";
    std::ofstream(config_file) << json{{"db", server_->db()},
                                       {"signing_key_file", server_->dir() + "/signing.jwk"},
                                       {"jwt_secret", test::jwt_secret},
                                       {"service_keys", test::service_key},
                                       {"lemonsqueezy_api_base", standin_->base_url()},
                                       {"lemonsqueezy_api_key", test::api_key},
                                       {"lemonsqueezy_store_id", "1"},
                                       {"lemonsqueezy_pro_variant_id", "1"},
                                       {"lemonsqueezy_webhook_secret", test::webhook_secret},
                                       {"lemonsqueezy_timeout_ms", 1000}}
                                      .dump();
    std::istringstream in;
    std::ostringstream out;
    std::ostringstream err;
    const std::string_view args[] = {"reconcile", "--config", config_file};
    EXPECT_EQ(cli::run(args, {in, out, err}), 0) << err.str();
    EXPECT_NE(out.str().find("1 subscription(s) listed, 1 matched to users, 1 snapshot(s) updated, 1 plan(s) repaired"),
              std::string::npos) << out.str();
    EXPECT_NE(out.str().find("user cli-user: pro -> free"), std::string::npos) << out.str();
    EXPECT_EQ(test::plan_view(server_->app(), "cli-user").plan, "free");
    // Without an API key there is nothing to list: a usage error, not a crash.
    std::ofstream(config_file) << json{{"db", server_->db()}}.dump();
    std::ostringstream err2;
    EXPECT_EQ(cli::run(args, {in, out, err2}), 2);
    EXPECT_NE(err2.str().find("LEMONSQUEEZY_API_KEY"), std::string::npos) << err2.str();
}

TEST(BillingNotConfigured, RoutesSaySo) {
    TestServer server;
    auto client = server.client();
    auto webhook = client.Post("/v1/webhooks/lemonsqueezy", {{"X-Signature", std::string(64, 'a')}}, "{}", "application/json");
    ASSERT_TRUE(webhook);
    EXPECT_EQ(webhook->status, 503);
    EXPECT_EQ(test::body_of(webhook)["error"]["code"], "billing_not_configured");
    EXPECT_EQ(server.app().billing(), nullptr);
}

}  // namespace
}  // namespace tokenmeter
