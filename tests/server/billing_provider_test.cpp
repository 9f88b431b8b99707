// Billing against the LemonSqueezy stand-in over real HTTP: checkout and
// each of the stand-in's error modes, the demo's pay flow, webhooks through
// the server's route, and reconciliation after dropped webhooks.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

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
        auto direct = provider.create_checkout({"bob", "", ""});
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
    auto unreachable = nowhere.create_checkout({"bob", "", ""});
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
    ASSERT_EQ(deliveries.size(), 3U);
    EXPECT_EQ(deliveries[0].event_name, "order_created");
    EXPECT_EQ(deliveries[1].event_name, "subscription_created");
    EXPECT_EQ(deliveries[2].event_name, "subscription_payment_success");  // the initial invoice
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
    // A variant no catalog plan names changes nothing (DESIGN.md §9): logged, the plan stays.
    standin_->put_subscription(switched, {{"variant_id", 999}});
    const std::map<std::string, std::string> expected = {
        {"rec-cancelled", "free"}, {"rec-paused", "free"}, {"rec-switched", "pro"}, {"rec-steady", "pro"},
        {"rec-order-a", "pro"},    {"rec-order-b", "pro"}};
    int drift_before = 0;
    for (const auto& [user, plan] : expected) drift_before += test::plan_view(server_->app(), user).plan != plan;
    EXPECT_EQ(drift_before, 4);

    standin_->fail_next("rate_limited", 1);  // waited out (Retry-After: 1), then listed
    const billing::ReconcileSummary first = billing().reconcile();
    ASSERT_FALSE(first.failure.has_value()) << first.failure->message;
    EXPECT_EQ(first.listed, 7);
    // Pages of 3: subscriptions (7: 3 pages), refunded invoices (none: 1), orders (7: 3).
    EXPECT_EQ(first.pages, 7);
    EXPECT_EQ(first.orders, 7);
    EXPECT_EQ(first.invoices, 0);
    EXPECT_EQ(first.matched, 6);
    EXPECT_EQ(first.unmatched, 1);
    EXPECT_EQ(first.repaired, 4);
    int drift_after = 0;
    for (const auto& [user, plan] : expected) {
        const std::string actual = test::plan_view(server_->app(), user).plan;
        if (actual != plan) ADD_FAILURE() << user << " is " << actual << ", the API says " << plan;
        drift_after += actual != plan;
    }
    EXPECT_EQ(drift_after, 0);
    std::ostringstream printed;
    cli::print_reconcile_summary(first, printed);
    EXPECT_NE(printed.str().find("4 plan(s) repaired, 1 unmatched"), std::string::npos) << printed.str();
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

// ---- Orders, invoices, variants, refunds, pauses and the portal URL ----

// A hand-written order in the documented shape (docs.lemonsqueezy.com
// /api/orders): numeric foreign keys, string money rates, nulls.
json documented_order() {
    return json::parse(R"({"type":"orders","id":"1","attributes":{
        "store_id":1,"customer_id":1,"identifier":"104e18a2-d755-4d4b-80c4-a6c1dcbe1c10","order_number":1,
        "user_name":"John Doe","user_email":"john@example.com","currency":"USD","currency_rate":"1.0000",
        "subtotal":999,"setup_fee":999,"discount_total":0,"tax":200,"total":1199,"refunded_amount":100,
        "subtotal_usd":999,"total_usd":1199,"refunded_amount_usd":100,"tax_name":"VAT","tax_rate":"20.00",
        "tax_inclusive":false,"status":"partial_refund","status_formatted":"Partial refund","refunded":true,
        "refunded_at":"2021-08-17T09:46:00.000000Z","discount_total_formatted":"$0.00","total_formatted":"$11.99",
        "first_order_item":{"id":1,"order_id":1,"product_id":1,"variant_id":7,"product_name":"Credits",
                            "variant_name":"Pack","price":1199,"created_at":"2021-08-17T09:45:53.000000Z",
                            "updated_at":"2021-08-17T09:45:53.000000Z","test_mode":false},
        "urls":{"receipt":"https://app.lemonsqueezy.com/my-orders/104e18a2?signature=8847fff02e1bfb0c7c43ff1cdf1b1657a8eed2029413692663b86859208c9f97"},
        "created_at":"2021-08-17T09:45:53.000000Z","updated_at":"2021-08-17T09:46:00.250000Z","test_mode":false},
        "relationships":{},"links":{"self":"https://api.lemonsqueezy.com/v1/orders/1"}})");
}

// A hand-written subscription invoice (docs: /api/subscription-invoices).
json documented_invoice() {
    return json::parse(R"({"type":"subscription-invoices","id":"8765432","attributes":{
        "store_id":1,"subscription_id":1234567,"customer_id":6789012,"user_name":"John Doe",
        "user_email":"john@example.com","billing_reason":"renewal","card_brand":null,"card_last_four":null,
        "currency":"USD","currency_rate":"1.00000000","status":"paid","status_formatted":"Paid","refunded":false,
        "refunded_at":null,"subtotal":999,"discount_total":0,"tax":0,"tax_inclusive":false,"total":999,
        "subtotal_usd":999,"total_usd":999,"urls":{"invoice_url":null},
        "created_at":"2025-03-01T10:15:28.000000Z","updated_at":"2025-03-01T10:15:35.000001Z","test_mode":true}})");
}

TEST(LemonSqueezyParsing, AnOrderInTheDocumentedShapeParses) {
    auto order = billing::parse_order_resource(documented_order());
    ASSERT_TRUE(order) << order.error().message;
    EXPECT_EQ(order->order_id, "1");
    EXPECT_EQ(order->status, "partial_refund");
    EXPECT_EQ(order->variant_id, "7");
    EXPECT_EQ(order->customer_id, "1");
    EXPECT_EQ(order->user_email, "john@example.com");
    EXPECT_EQ(order->total, 1199);
    EXPECT_EQ(order->refunded_amount, 100);
    EXPECT_EQ(order->created_at, 1629193553);
    EXPECT_EQ(order->updated_at_us, 1629193560250000);

    // Ids as numbers or strings mean the same; nulls where the API leaves a value out.
    json loose = documented_order();
    loose["id"] = 1;
    loose["attributes"]["customer_id"] = nullptr;
    loose["attributes"]["user_email"] = nullptr;
    loose["attributes"]["first_order_item"]["variant_id"] = "7";
    loose["attributes"]["refunded_amount"] = nullptr;  // the retrieve-order example has none at all
    loose["attributes"]["status"] = "paid";
    auto parsed = billing::parse_order_resource(loose);
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->order_id, "1");
    EXPECT_EQ(parsed->variant_id, "7");
    EXPECT_EQ(parsed->customer_id, "");
    EXPECT_EQ(parsed->user_email, "");
    EXPECT_EQ(parsed->refunded_amount, 0);
    loose["attributes"].erase("refunded_amount");
    ASSERT_TRUE(billing::parse_order_resource(loose));
    EXPECT_EQ(billing::parse_order_resource(loose)->refunded_amount, 0);
}

TEST(LemonSqueezyParsing, MalformedOrdersAreRefusedSayingWhy) {
    struct Case {
        const char* pointer;  // JSON pointer into the resource
        json value;           // the replacement; a discarded value erases the member
        const char* says;
    };
    const json erase = json(json::value_t::discarded);
    const Case cases[] = {
        {"/type", "subscriptions", "data.type is not orders"},
        {"/attributes", json::array(), "data.attributes is missing"},
        {"/id", erase, "data.id is missing"},
        {"/id", "", "data.id is missing"},
        {"/id", json::object(), "data.id is missing"},
        {"/attributes/status", erase, "attributes.status is missing"},
        {"/attributes/status", 3, "attributes.status is missing"},
        {"/attributes/first_order_item", nullptr, "attributes.first_order_item.variant_id is missing"},
        {"/attributes/first_order_item/variant_id", erase, "attributes.first_order_item.variant_id is missing"},
        {"/attributes/first_order_item/variant_id", nullptr, "attributes.first_order_item.variant_id is missing"},
        {"/attributes/total", erase, "attributes.total is missing"},
        {"/attributes/total", -1199, "attributes.total is negative"},
        {"/attributes/total", 11.99, "attributes.total is not an integer amount of cents"},
        {"/attributes/total", "1199", "attributes.total is not an integer amount of cents"},
        {"/attributes/total", nullptr, "attributes.total is not an integer amount of cents"},
        {"/attributes/total", 18446744073709551615ULL, "attributes.total is too large"},
        {"/attributes/refunded_amount", -100, "attributes.refunded_amount is negative"},
        {"/attributes/refunded_amount", 1200, "attributes.refunded_amount is more than attributes.total"},
        {"/attributes/created_at", erase, "attributes.created_at is missing"},
        {"/attributes/created_at", "yesterday", "attributes.created_at"},
        {"/attributes/updated_at", nullptr, "attributes.updated_at is missing"},
    };
    for (const Case& c : cases) {
        json order = documented_order();
        const json::json_pointer pointer(c.pointer);
        if (c.value.is_discarded()) {
            order[pointer.parent_pointer()].erase(pointer.back());
        } else {
            order[pointer] = c.value;
        }
        auto parsed = billing::parse_order_resource(order);
        ASSERT_FALSE(parsed) << c.pointer;
        EXPECT_EQ(parsed.error().code, "invalid_payload") << c.pointer;
        EXPECT_NE(parsed.error().message.find(c.says), std::string::npos) << c.pointer << ": " << parsed.error().message;
    }
}

TEST(LemonSqueezyParsing, AnInvoiceInTheDocumentedShapeParsesAndMalformedOnesAreRefused) {
    auto invoice = billing::parse_invoice_resource(documented_invoice());
    ASSERT_TRUE(invoice) << invoice.error().message;
    EXPECT_EQ(invoice->invoice_id, "8765432");
    EXPECT_EQ(invoice->subscription_id, "1234567");
    EXPECT_EQ(invoice->customer_id, "6789012");
    EXPECT_EQ(invoice->status, "paid");
    EXPECT_EQ(invoice->billing_reason, "renewal");
    EXPECT_EQ(invoice->total, 999);
    EXPECT_EQ(invoice->refunded_amount, 0);  // absent in the documented example
    EXPECT_EQ(invoice->created_at, 1740824128);
    EXPECT_EQ(invoice->updated_at_us, 1740824135000001);

    json partial = documented_invoice();
    partial["id"] = 8765432;
    partial["attributes"]["subscription_id"] = "1234567";
    partial["attributes"]["status"] = "partial_refund";
    partial["attributes"]["refunded"] = true;
    partial["attributes"]["refunded_amount"] = 333;
    partial["attributes"]["billing_reason"] = nullptr;
    auto refunded = billing::parse_invoice_resource(partial);
    ASSERT_TRUE(refunded) << refunded.error().message;
    EXPECT_EQ(refunded->invoice_id, "8765432");
    EXPECT_EQ(refunded->subscription_id, "1234567");
    EXPECT_EQ(refunded->status, "partial_refund");
    EXPECT_EQ(refunded->refunded_amount, 333);
    EXPECT_EQ(refunded->billing_reason, "");

    const std::pair<const char*, json> cases[] = {
        {"subscription_id", nullptr}, {"total", -999}, {"refunded_amount", -1}, {"refunded_amount", 1000},
        {"status", nullptr}, {"total", 9.99}, {"updated_at", "soon"},
    };
    const char* says[] = {"attributes.subscription_id is missing", "attributes.total is negative",
                          "attributes.refunded_amount is negative",
                          "attributes.refunded_amount is more than attributes.total", "attributes.status is missing",
                          "attributes.total is not an integer amount of cents", "attributes.updated_at"};
    for (std::size_t i = 0; i < std::size(cases); ++i) {
        json bad = documented_invoice();
        bad["attributes"][cases[i].first] = cases[i].second;
        auto parsed = billing::parse_invoice_resource(bad);
        ASSERT_FALSE(parsed) << cases[i].first;
        EXPECT_NE(parsed.error().message.find(says[i]), std::string::npos) << parsed.error().message;
    }
    json no_id = documented_invoice();
    no_id.erase("id");
    EXPECT_FALSE(billing::parse_invoice_resource(no_id));
    json as_order = documented_invoice();
    as_order["type"] = "orders";
    EXPECT_FALSE(billing::parse_invoice_resource(as_order));
}

TEST(LemonSqueezyParsing, SubscriptionsCarryTheirPauseDateAndPortalUrl) {
    json resource = json::parse(R"({"type":"subscriptions","id":1234567,"attributes":{"status":"paused",
        "variant_id":1,"pause":{"mode":"free","resumes_at":"2025-04-01T00:00:00.000000Z"},
        "urls":{"customer_portal":"https:\/\/acme.lemonsqueezy.com\/billing?expires=1&user=2&signature=ab",
                "update_payment_method":null},
        "renews_at":null,"ends_at":null,"updated_at":"2025-03-14T09:02:11.000000Z"}})");
    auto paused = billing::parse_subscription_resource(resource);
    ASSERT_TRUE(paused) << paused.error().message;
    EXPECT_TRUE(paused->pause_free);
    ASSERT_TRUE(paused->pause_resumes_at.has_value());
    EXPECT_EQ(*paused->pause_resumes_at, 1743465600);
    EXPECT_EQ(paused->customer_portal_url, "https://acme.lemonsqueezy.com/billing?expires=1&user=2&signature=ab");

    resource["attributes"]["pause"] = {{"mode", "void"}, {"resumes_at", nullptr}};
    resource["attributes"]["urls"]["customer_portal"] = nullptr;
    auto open_ended = billing::parse_subscription_resource(resource);
    ASSERT_TRUE(open_ended) << open_ended.error().message;
    EXPECT_FALSE(open_ended->pause_free);
    EXPECT_FALSE(open_ended->pause_resumes_at.has_value());
    EXPECT_EQ(open_ended->customer_portal_url, "");
    resource["attributes"]["urls"] = json::array();  // PHP's empty object
    resource["attributes"]["pause"] = nullptr;
    auto unpaused = billing::parse_subscription_resource(resource);
    ASSERT_TRUE(unpaused);
    EXPECT_FALSE(unpaused->pause_resumes_at.has_value());
    EXPECT_EQ(unpaused->customer_portal_url, "");

    resource["attributes"]["pause"] = {{"mode", "void"}, {"resumes_at", 1743465600}};
    auto bad = billing::parse_subscription_resource(resource);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("pause.resumes_at"), std::string::npos) << bad.error().message;
}

TEST(LemonSqueezyParsing, WebhooksCarryTheirOrderOrInvoice) {
    json order_event = {{"meta", {{"event_name", "order_refunded"}, {"custom_data", {{"user_id", 42}}}}},
                        {"data", documented_order()}};
    auto refunded = billing::parse_webhook_body(order_event.dump());
    ASSERT_TRUE(refunded) << refunded.error().message;
    EXPECT_EQ(refunded->kind, billing::WebhookKind::order);
    EXPECT_EQ(refunded->order_id, "1");
    ASSERT_TRUE(refunded->order.has_value());
    EXPECT_EQ(refunded->order->refunded_amount, 100);
    EXPECT_EQ(refunded->user_id, "42");
    order_event["meta"]["event_name"] = "order_created";
    auto created = billing::parse_webhook_body(order_event.dump());
    ASSERT_TRUE(created);
    EXPECT_EQ(created->kind, billing::WebhookKind::order);

    for (const char* name : {"subscription_payment_success", "subscription_payment_failed",
                             "subscription_payment_recovered", "subscription_payment_refunded"}) {
        json payment = {{"meta", {{"event_name", name}}}, {"data", documented_invoice()}};
        auto event = billing::parse_webhook_body(payment.dump());
        ASSERT_TRUE(event) << name << ": " << event.error().message;
        EXPECT_EQ(event->kind, billing::WebhookKind::payment) << name;
        EXPECT_EQ(event->subscription_id, "1234567") << name;
        ASSERT_TRUE(event->invoice.has_value()) << name;
        EXPECT_EQ(event->invoice->invoice_id, "8765432") << name;
        EXPECT_FALSE(event->order.has_value());
    }
    // A delivery whose resource billing cannot trust is refused as a whole.
    order_event["data"]["attributes"]["refunded_amount"] = 5000;
    auto too_much = billing::parse_webhook_body(order_event.dump());
    ASSERT_FALSE(too_much);
    EXPECT_EQ(too_much.error().code, "invalid_payload");
    json invoice_event = {{"meta", {{"event_name", "subscription_payment_refunded"}}}, {"data", documented_invoice()}};
    invoice_event["data"]["attributes"]["total"] = -1;
    EXPECT_FALSE(billing::parse_webhook_body(invoice_event.dump()));
    EXPECT_FALSE(billing::parse_webhook_body(R"({"meta":{"event_name":"order_created"},"data":{"type":"orders"}})"));
    auto garbage = billing::parse_webhook_body("{\"meta\":");
    ASSERT_FALSE(garbage);
    EXPECT_EQ(garbage.error().message, "the body is not a JSON object");
}

// A webhook receiver that keeps what it gets.
class Receiver {
public:
    Receiver() {
        server_.Post("/hook", [this](const httplib::Request& request, httplib::Response& response) {
            std::lock_guard<std::mutex> guard(mutex_);
            received_.push_back({request.get_header_value("X-Event-Name"), request.body, request.get_header_value("X-Signature")});
            response.status = 200;
        });
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        server_.wait_until_ready();
    }
    ~Receiver() {
        server_.stop();
        thread_.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
    std::vector<standin::Delivery> received() const {
        std::lock_guard<std::mutex> guard(mutex_);
        return received_;
    }

private:
    httplib::Server server_;
    int port_ = 0;
    std::thread thread_;
    mutable std::mutex mutex_;
    std::vector<standin::Delivery> received_;
};

// The provider against the stand-in over HTTP, with a pack variant and prices.
class StandinApi : public ::testing::Test {
protected:
    void SetUp() override {
        standin::StandinOptions options;
        options.api_key = test::api_key;
        options.webhook_secret = test::webhook_secret;
        options.page_size_max = 100;
        options.pack_variant_ids = {"7"};
        options.variant_prices = {{"1", 1900}, {"7", 499}};
        options.now_seconds = [this] { return clock_.load(); };
        standin_ = std::make_unique<standin::Standin>(options);
        ASSERT_GT(standin_->start("127.0.0.1", 0), 0);
        standin_->set_webhook_url(receiver_.url());
    }
    void TearDown() override { standin_->stop(); }

    billing::LemonSqueezyProvider provider(int page_size = 100) {
        return billing::LemonSqueezyProvider({standin_->base_url(), test::api_key, "1", "1", test::webhook_secret, 2000, page_size});
    }

    // A checkout for `variant` created through the provider and paid; the checkout id.
    std::string buy(const std::string& user, const std::string& variant) {
        auto session = provider().create_checkout({user, "", variant});
        EXPECT_TRUE(session) << (session ? "" : session.error().message);
        if (!session) return {};
        httplib::Client client(standin_->base_url());
        auto paid = client.Post("/checkout/custom/" + session->id + "/pay", "", "application/x-www-form-urlencoded");
        EXPECT_TRUE(paid && paid->status == 303);
        return session->id;
    }

    std::vector<std::string> event_names() const {
        std::vector<std::string> names;
        for (const auto& delivery : standin_->deliveries()) names.push_back(delivery.event_name);
        return names;
    }

    std::atomic<std::int64_t> clock_{1764000000};
    Receiver receiver_;
    std::unique_ptr<standin::Standin> standin_;
};

// The body the provider sends, captured by a fake API.
TEST(LemonSqueezyCheckout, SendsTheRequestedVariantOrElseTheConfiguredOne) {
    httplib::Server api;
    std::mutex mutex;
    std::vector<json> bodies;
    api.Post("/v1/checkouts", [&](const httplib::Request& request, httplib::Response& response) {
        std::lock_guard<std::mutex> guard(mutex);
        bodies.push_back(json::parse(request.body));
        response.status = 201;
        response.set_content(R"({"data":{"type":"checkouts","id":"c1","attributes":{"url":"https:\/\/x.example\/c1"}}})",
                             "application/vnd.api+json");
    });
    const int port = api.bind_to_any_port("127.0.0.1");
    std::thread serving([&] { api.listen_after_bind(); });
    api.wait_until_ready();
    billing::LemonSqueezyProvider provider({"http://127.0.0.1:" + std::to_string(port), test::api_key, "1", "1",
                                            test::webhook_secret, 2000, 100});
    EXPECT_TRUE(provider.create_checkout({"u1", "", "7"}));
    EXPECT_TRUE(provider.create_checkout({"u1", "", ""}));
    api.stop();
    serving.join();
    ASSERT_EQ(bodies.size(), 2U);
    EXPECT_EQ(bodies[0]["data"]["relationships"]["variant"]["data"]["id"], "7");
    EXPECT_EQ(bodies[0]["data"]["attributes"]["product_options"]["enabled_variants"], json::array({7}));
    EXPECT_EQ(bodies[0]["data"]["attributes"]["checkout_data"]["custom"]["user_id"], "u1");
    EXPECT_EQ(bodies[1]["data"]["relationships"]["variant"]["data"]["id"], "1");
    EXPECT_EQ(bodies[1]["data"]["attributes"]["product_options"]["enabled_variants"], json::array({1}));
}

TEST_F(StandinApi, PayingAPackCreatesOnlyAPaidOrderAndItsWebhook) {
    const std::string checkout = buy("pack-user", "7");
    EXPECT_EQ(event_names(), std::vector<std::string>({"order_created"}));
    EXPECT_EQ(standin_->subscription_of_checkout(checkout), "");
    const std::string order_id = standin_->order_of_checkout(checkout);
    ASSERT_FALSE(order_id.empty());
    const auto received = receiver_.received();
    ASSERT_EQ(received.size(), 1U);
    auto event = provider().verify_webhook(received[0].body, received[0].signature);
    ASSERT_TRUE(event) << event.error().message;
    EXPECT_EQ(event->kind, billing::WebhookKind::order);
    EXPECT_EQ(event->user_id, "pack-user");
    EXPECT_EQ(event->order_id, order_id);
    EXPECT_EQ(event->order->variant_id, "7");
    EXPECT_EQ(event->order->status, "paid");
    EXPECT_EQ(event->order->total, 499);
    EXPECT_EQ(event->order->customer_id, standin_->customer_of_user("pack-user"));
    // An unknown variant is refused like the API refuses it.
    auto unknown = provider().create_checkout({"pack-user", "", "99"});
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().reason, "provider_rejected");
}

TEST_F(StandinApi, PayingASubscriptionSendsItsOrderSubscriptionAndInitialPaymentForOneCustomer) {
    const std::string checkout = buy("sub-user", "1");
    EXPECT_EQ(event_names(), std::vector<std::string>({"order_created", "subscription_created", "subscription_payment_success"}));
    const std::string subscription = standin_->subscription_of_checkout(checkout);
    ASSERT_FALSE(subscription.empty());
    std::vector<billing::WebhookEvent> events;
    for (const auto& delivery : receiver_.received()) {
        auto event = provider().verify_webhook(delivery.body, delivery.signature);
        ASSERT_TRUE(event) << delivery.event_name << ": " << event.error().message;
        EXPECT_EQ(event->user_id, "sub-user") << delivery.event_name;
        events.push_back(*event);
    }
    ASSERT_EQ(events.size(), 3U);
    const std::string customer = standin_->customer_of_user("sub-user");
    EXPECT_EQ(events[0].order->customer_id, customer);
    EXPECT_EQ(events[0].order->variant_id, "1");
    EXPECT_EQ(events[0].order->total, 1900);
    EXPECT_EQ(events[1].subscription->customer_id, customer);
    EXPECT_EQ(events[1].subscription->order_id, events[0].order_id);
    ASSERT_TRUE(events[2].invoice.has_value());
    EXPECT_EQ(events[2].kind, billing::WebhookKind::payment);
    EXPECT_EQ(events[2].subscription_id, subscription);
    EXPECT_EQ(events[2].invoice->billing_reason, "initial");
    EXPECT_EQ(events[2].invoice->status, "paid");
    EXPECT_EQ(events[2].invoice->total, 1900);
    EXPECT_EQ(events[2].invoice->customer_id, customer);
    EXPECT_EQ(standin_->invoices_of_subscription(subscription), std::vector<std::string>({events[2].invoice->invoice_id}));
    // The same user buying again is the same customer; another user is not.
    buy("sub-user", "7");
    auto orders = provider().list_orders("");
    ASSERT_TRUE(orders) << orders.error().message;
    ASSERT_EQ(orders->orders.size(), 2U);
    EXPECT_EQ(orders->orders[0].customer_id, orders->orders[1].customer_id);
    EXPECT_NE(standin_->customer_of_user("someone-else"), customer);
}

TEST_F(StandinApi, ListOrdersFollowsEveryPageNewestFirst) {
    std::vector<std::string> expected;
    for (int i = 0; i < 5; ++i) {
        const std::string id = std::to_string(9000001 + i);
        standin_->put_order(id, {{"first_order_item", {{"variant_id", 7}}}, {"total", 499 + i}});
        expected.insert(expected.begin(), id);
    }
    auto lemonsqueezy = provider(2);
    std::vector<std::string> listed;
    std::string next;
    int pages = 0;
    do {
        auto page = lemonsqueezy.list_orders(next);
        ASSERT_TRUE(page) << page.error().message;
        ++pages;
        EXPECT_LE(page->orders.size(), 2U);
        for (const auto& order : page->orders) {
            listed.push_back(order.order_id);
            EXPECT_EQ(order.variant_id, "7");
            EXPECT_EQ(order.total, 499 + std::stoll(order.order_id) - 9000001);
        }
        next = page->next;
        if (!next.empty()) {
            EXPECT_EQ(next.rfind("/v1/orders?", 0), 0U) << next;
        }
        ASSERT_LT(pages, 10);
    } while (!next.empty());
    EXPECT_EQ(pages, 3);
    EXPECT_EQ(listed, expected);
}

TEST_F(StandinApi, ListRefundedInvoicesListsExactlyTheRefundedOnesOnEveryPage) {
    std::vector<std::string> refunded;
    for (int i = 0; i < 6; ++i) {
        const std::string id = std::to_string(8000001 + i);
        standin_->put_invoice(id, {{"subscription_id", 7000001 + i}, {"total", 1900}}, "inv-user");
        if (i % 2 == 0) continue;
        ASSERT_FALSE(standin_->refund_invoice(id, i == 1 ? 500 : -1).is_null());
        refunded.insert(refunded.begin(), id);
    }
    auto lemonsqueezy = provider(2);
    std::vector<std::string> listed;
    std::string next;
    int pages = 0;
    do {
        auto page = lemonsqueezy.list_refunded_invoices(next);
        ASSERT_TRUE(page) << page.error().message;
        ++pages;
        for (const auto& invoice : page->invoices) {
            listed.push_back(invoice.invoice_id);
            const bool partial = invoice.invoice_id == "8000002";
            EXPECT_EQ(invoice.status, partial ? "partial_refund" : "refunded");
            EXPECT_EQ(invoice.refunded_amount, partial ? 500 : 1900);
        }
        next = page->next;
        ASSERT_LT(pages, 10);
    } while (!next.empty());
    EXPECT_EQ(pages, 2);
    EXPECT_EQ(listed, refunded);
    // The stand-in's filters themselves: a subscription's invoices, the unrefunded ones.
    httplib::Client client(standin_->base_url());
    const httplib::Headers auth = {{"Authorization", "Bearer " + test::api_key}};
    auto of_one = client.Get("/v1/subscription-invoices?filter%5Bsubscription_id%5D=7000003", auth);
    ASSERT_TRUE(of_one);
    EXPECT_EQ(json::parse(of_one->body)["data"].size(), 1U);
    auto unrefunded = client.Get("/v1/subscription-invoices?filter%5Brefunded%5D=false", auth);
    ASSERT_TRUE(unrefunded);
    EXPECT_EQ(json::parse(unrefunded->body)["meta"]["page"]["total"], 3);
}

TEST_F(StandinApi, ThePortalUrlIsFreshOnEveryFetchAndPausesCarryTheirDate) {
    standin_->put_subscription("6100001", {{"status", "active"}});
    auto lemonsqueezy = provider();
    auto first = lemonsqueezy.fetch_subscription("6100001");
    auto second = lemonsqueezy.fetch_subscription("6100001");
    ASSERT_TRUE(first && second);
    const std::string expected_start =
        standin_->base_url() + "/billing?expires=" + std::to_string(clock_.load() + 6 * 3600) + "&user=";
    EXPECT_EQ(first->customer_portal_url.rfind(expected_start, 0), 0U) << first->customer_portal_url;
    EXPECT_NE(first->customer_portal_url.find("&signature="), std::string::npos);
    EXPECT_NE(first->customer_portal_url, second->customer_portal_url);
    clock_ += 3600;
    auto later = lemonsqueezy.fetch_subscription("6100001");
    ASSERT_TRUE(later);
    EXPECT_NE(later->customer_portal_url.find("expires=" + std::to_string(clock_.load() + 6 * 3600)), std::string::npos);
    EXPECT_FALSE(first->pause_resumes_at.has_value());

    // A pause set through the control endpoint, as a customer would in the portal.
    httplib::Client client(standin_->base_url());
    const std::string resumes = standin::lemonsqueezy_time(clock_.load() + 7 * 86400);
    auto put = client.Put("/_standin/subscriptions/6100001",
                          json{{"attributes", {{"status", "paused"}, {"pause", {{"mode", "void"}, {"resumes_at", resumes}}}}}}.dump(),
                          "application/json");
    ASSERT_TRUE(put && put->status == 200);
    auto paused = lemonsqueezy.fetch_subscription("6100001");
    ASSERT_TRUE(paused) << paused.error().message;
    EXPECT_EQ(paused->status, "paused");
    EXPECT_FALSE(paused->pause_free);
    ASSERT_TRUE(paused->pause_resumes_at.has_value());
    EXPECT_EQ(*paused->pause_resumes_at, clock_.load() + 7 * 86400);
}

TEST_F(StandinApi, ADroppedDeliveryNeverReachesTheReceiver) {
    standin_->put_order("9100001", {{"total", 1000}}, "drop-user");
    httplib::Client client(standin_->base_url());
    auto drop = client.Post("/_standin/drop", R"({"count":1})", "application/json");
    ASSERT_TRUE(drop && drop->status == 200);
    ASSERT_FALSE(standin_->refund_order("9100001", 100).is_null());
    EXPECT_TRUE(receiver_.received().empty());
    ASSERT_FALSE(standin_->refund_order("9100001", 100).is_null());
    const auto deliveries = standin_->deliveries();
    ASSERT_EQ(deliveries.size(), 2U);
    EXPECT_TRUE(deliveries[0].dropped);
    EXPECT_EQ(deliveries[0].status, 0);
    EXPECT_FALSE(deliveries[1].dropped);
    EXPECT_EQ(deliveries[1].status, 200);
    const auto received = receiver_.received();
    ASSERT_EQ(received.size(), 1U);
    EXPECT_EQ(received[0].body, deliveries[1].body);
    auto listed = client.Get("/_standin/deliveries");
    ASSERT_TRUE(listed);
    EXPECT_EQ(json::parse(listed->body)[0]["dropped"], true);
}

TEST_F(StandinApi, ARefundsWebhookVerifiesWithTheSecretAndCarriesTheCumulativeAmount) {
    const std::string order_id = standin_->order_of_checkout(buy("refund-user", "7"));
    ASSERT_FALSE(order_id.empty());
    const std::int64_t created_us = provider().verify_webhook(receiver_.received()[0].body, receiver_.received()[0].signature)->order->updated_at_us;
    httplib::Client client(standin_->base_url());
    auto partial = client.Post("/_standin/orders/" + order_id + "/refund", R"({"amount":200})", "application/json");
    ASSERT_TRUE(partial);
    ASSERT_EQ(partial->status, 200) << partial->body;
    auto full = client.Post("/_standin/orders/" + order_id + "/refund", "{}", "application/json");
    ASSERT_TRUE(full && full->status == 200);
    auto again = client.Post("/_standin/orders/" + order_id + "/refund", R"({"amount":1})", "application/json");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 404);  // nothing left: nothing sent
    auto negative = client.Post("/_standin/orders/" + order_id + "/refund", R"({"amount":-5})", "application/json");
    ASSERT_TRUE(negative);
    EXPECT_EQ(negative->status, 400);

    const auto received = receiver_.received();
    ASSERT_EQ(received.size(), 3U);
    auto first = provider().verify_webhook(received[1].body, received[1].signature);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(received[1].event_name, "order_refunded");
    EXPECT_EQ(first->event_name, "order_refunded");
    EXPECT_NE(received[1].body.find("\\/"), std::string::npos) << "LemonSqueezy escapes slashes";
    EXPECT_EQ(first->user_id, "refund-user");
    EXPECT_EQ(first->order->status, "partial_refund");
    EXPECT_EQ(first->order->refunded_amount, 200);
    EXPECT_GT(first->order->updated_at_us, created_us);
    auto second = provider().verify_webhook(received[2].body, received[2].signature);
    ASSERT_TRUE(second);
    EXPECT_EQ(second->order->status, "refunded");
    EXPECT_EQ(second->order->refunded_amount, 499);
    EXPECT_GT(second->order->updated_at_us, first->order->updated_at_us);
    // Only the secret verifies it.
    billing::LemonSqueezyProvider other({standin_->base_url(), test::api_key, "1", "1", "another-secret", 2000, 100});
    auto forged = other.verify_webhook(received[2].body, received[2].signature);
    ASSERT_FALSE(forged);
    EXPECT_EQ(forged.error().code, "invalid_signature");
    // The API agrees with the webhook.
    auto listed = provider().list_orders("");
    ASSERT_TRUE(listed);
    ASSERT_EQ(listed->orders.size(), 1U);
    EXPECT_EQ(listed->orders[0].refunded_amount, 499);

    // An invoice refund is a payment event naming its subscription.
    const std::string subscription = standin_->subscription_of_checkout(buy("refund-user", "1"));
    const std::string invoice = standin_->invoices_of_subscription(subscription).at(0);
    auto invoice_refund = client.Post("/_standin/invoices/" + invoice + "/refund", R"({"amount":1900})", "application/json");
    ASSERT_TRUE(invoice_refund && invoice_refund->status == 200);
    const auto last = receiver_.received().back();
    EXPECT_EQ(last.event_name, "subscription_payment_refunded");
    auto payment = provider().verify_webhook(last.body, last.signature);
    ASSERT_TRUE(payment) << payment.error().message;
    EXPECT_EQ(payment->kind, billing::WebhookKind::payment);
    EXPECT_EQ(payment->subscription_id, subscription);
    EXPECT_EQ(payment->user_id, "refund-user");
    EXPECT_EQ(payment->invoice->status, "refunded");
    EXPECT_EQ(payment->invoice->refunded_amount, 1900);
    // The in-process bodies are the same wire format, for redelivery tests.
    const std::string body = standin_->invoice_webhook_body("subscription_payment_refunded", invoice, "refund-user");
    auto rebuilt = provider().verify_webhook(body, standin::hex_hmac_sha256(test::webhook_secret, body));
    ASSERT_TRUE(rebuilt);
    EXPECT_EQ(rebuilt->invoice->refunded_amount, 1900);
    const std::string order_body = standin_->order_webhook_body("order_refunded", order_id, "refund-user");
    auto rebuilt_order = provider().verify_webhook(order_body, standin::hex_hmac_sha256(test::webhook_secret, order_body));
    ASSERT_TRUE(rebuilt_order);
    EXPECT_EQ(rebuilt_order->order->refunded_amount, 499);
}

TEST_F(StandinApi, OrdersAndInvoicesAreServedAsJsonApiResources) {
    const std::string order_id = standin_->order_of_checkout(buy("get-user", "7"));
    httplib::Client client(standin_->base_url());
    const httplib::Headers auth = {{"Authorization", "Bearer " + test::api_key}};
    auto got = client.Get("/v1/orders/" + order_id, auth);
    ASSERT_TRUE(got && got->status == 200);
    EXPECT_NE(got->body.find("\\/v1\\/orders\\/" + order_id), std::string::npos) << got->body;
    const json document = json::parse(got->body);
    EXPECT_EQ(document["jsonapi"]["version"], "1.0");
    auto order = billing::parse_order_resource(document["data"]);
    ASSERT_TRUE(order) << order.error().message;
    EXPECT_EQ(order->order_id, order_id);
    auto missing = client.Get("/v1/orders/1", auth);
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404);
    EXPECT_EQ(json::parse(missing->body)["errors"][0]["status"], "404");
    auto anonymous = client.Get("/v1/orders/" + order_id);
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 401);
    standin_->fail_next("server_error", 1);
    auto failed = provider().list_orders("");
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().reason, "provider_error");
    standin_->fail_next("rate_limited", 1);
    auto limited = provider().list_refunded_invoices("");
    ASSERT_FALSE(limited);
    EXPECT_EQ(limited.error().reason, "provider_rate_limited");
}

}  // namespace
}  // namespace tokenmeter
