// Outbound webhooks (DESIGN.md §13) end to end: a real App on the suite's
// database (SQLite, and PostgreSQL under the postgres.* registration), a
// loopback receiver scripted to fail, stall and recover, and the manual
// clock moved to each retry. Checked: every alert is delivered, retries keep
// its webhook-id and bytes, signatures verify with an independent HMAC,
// thresholds come once per period, plan changes come once each, the retry
// window ends in a failed row, `tokenmeter webhooks list|replay` through the
// real executable, and the configuration's refusals.
#include <gtest/gtest.h>

#include <ctime>
#include <map>
#include <set>

#include "alerts/alert_courier.hpp"
#include "test_server.hpp"
#include "webhook_receiver.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using Answer = test::WebhookReceiver::Answer;

test::TestServerOptions webhook_options(const test::WebhookReceiver& receiver, std::int64_t free_tokens = 1000) {
    test::TestServerOptions options;
    options.catalog_json = test::catalog_with_free_limit(free_tokens);
    const std::string url = receiver.url();
    options.configure = [url](config::ServerConfig& c) {
        c.webhook_urls = {url};
        c.webhook_secret = test::webhook_secret();
        c.webhook_timeout_ms = 300;
    };
    return options;
}

// A charge of `tokens` (gpt-4o-mini charges its raw count).
int record(test::TestServer& server, const std::string& user, std::int64_t tokens) {
    const json body = {{"user_id", user}, {"operation", "chat"}, {"model", "gpt-4o-mini"}, {"input_tokens", tokens},
                       {"output_tokens", 0}};
    auto result = server.post("/v1/usage/record", body);
    return result ? result->status : 0;
}

// A charge past the limit: authorized small, committed large.
void overrun(test::TestServer& server, const std::string& user, std::int64_t reserve, std::int64_t actual) {
    auto authorized = test::body_of(server.post(
        "/v1/usage/authorize",
        {{"user_id", user}, {"operation", "chat"}, {"model", "gpt-4o-mini"}, {"input_tokens", reserve}, {"max_output_tokens", 0}}));
    ASSERT_TRUE(authorized.contains("reservation_id")) << authorized.dump();
    auto committed = server.post("/v1/usage/commit", {{"reservation_id", authorized["reservation_id"]},
                                                      {"input_tokens", actual}, {"output_tokens", 0}});
    ASSERT_TRUE(committed && committed->status == 200);
}

void change_plan(test::TestServer& server, const std::string& user, const std::string& plan) {
    const ledger::JobOutcome outcome = server.app().ledger().run_job([&](ledger::JobContext& context) {
        context.change_plan(PlanChangeCommand{user, plan, std::nullopt, "", std::nullopt});
        return ledger::JobOutcome{200, ""};
    });
    ASSERT_EQ(outcome.status, 200);
}

// The outbox as the store lists it, by alert id (one endpoint here).
std::map<std::string, storage::OutboxRow> outbox(test::TestServer& server) {
    std::map<std::string, storage::OutboxRow> rows;
    for (storage::OutboxRow& row : server.app().store().list_alerts(1000)) rows[row.alert_id] = std::move(row);
    return rows;
}

// Waits until the outbox satisfies `done` (the courier marks rows after the
// receiver has answered, so a test waits for the mark, not the answer).
bool wait_for_outbox(test::TestServer& server, const std::function<bool(const std::map<std::string, storage::OutboxRow>&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
        if (done(outbox(server))) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

bool only_row_has(test::TestServer& server, storage::OutboxState state, std::int64_t attempts) {
    return wait_for_outbox(server, [&](const auto& rows) {
        return rows.size() == 1 && rows.begin()->second.state == state && rows.begin()->second.attempts == attempts;
    });
}

// Runs the real executable through the shell (`environment` goes before it),
// with a time limit in case it starts serving when it should have refused.
std::pair<int, std::string> run_tokenmeter(const std::string& arguments, const std::string& environment = "") {
    const std::string command =
        environment + " timeout 30 " + std::string(TM_TOKENMETER_BINARY) + " " + arguments + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    std::string output;
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
    const int status = ::pclose(pipe);
    return {WEXITSTATUS(status), output};
}

// The threshold percent of a usage.threshold delivery, 0 for other types.
int threshold_of(const test::Delivery& delivery) {
    const json data = delivery.event()["data"];
    return data.contains("threshold_percent") ? data["threshold_percent"].get<int>() : 0;
}

TEST(OutboundWebhooks, RetriesAfterAFailureAndATimeoutKeepTheIdAndTheBytes) {
    test::WebhookReceiver receiver;
    receiver.script({Answer::fail, Answer::stall});
    receiver.set_stall(std::chrono::milliseconds(1200));
    test::TestServer server(webhook_options(receiver));
    const std::int64_t t0 = server.clock().now_seconds();
    ASSERT_EQ(record(server, "ada", 850), 200);

    // 1: the endpoint answers 500; the next attempt 5 s later.
    ASSERT_TRUE(receiver.wait_for(1));
    ASSERT_TRUE(only_row_has(server, storage::OutboxState::pending, 1));
    EXPECT_EQ(outbox(server).begin()->second.next_attempt_at, t0 + 5);
    EXPECT_EQ(outbox(server).begin()->second.last_error.rfind("HTTP 500", 0), 0U);
    // Not due yet: nothing more is sent until the clock gets there.
    server.app().alert_courier()->wake();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(receiver.deliveries().size(), 1U);

    // 2: the endpoint stalls past the 300 ms timeout; the next attempt 30 s later.
    server.clock().advance(5);
    server.app().alert_courier()->wake();
    ASSERT_TRUE(only_row_has(server, storage::OutboxState::pending, 2));
    EXPECT_EQ(outbox(server).begin()->second.next_attempt_at, t0 + 5 + 30);
    EXPECT_EQ(outbox(server).begin()->second.last_error, "timeout");

    // 3: it is back.
    server.clock().advance(30);
    server.app().alert_courier()->wake();
    ASSERT_TRUE(only_row_has(server, storage::OutboxState::delivered, 3));
    ASSERT_TRUE(receiver.wait_for(3));
    const auto deliveries = receiver.deliveries();
    ASSERT_EQ(deliveries.size(), 3U);
    for (const test::Delivery& delivery : deliveries) {
        EXPECT_EQ(delivery.id, deliveries[0].id) << "a retry changed the webhook-id";
        EXPECT_EQ(delivery.body, deliveries[0].body) << "a retry changed the body";
        EXPECT_TRUE(delivery.signed_right()) << delivery.signature;
    }
    EXPECT_EQ(deliveries[0].timestamp, std::to_string(t0));
    EXPECT_EQ(deliveries[2].timestamp, std::to_string(t0 + 35)) << "each attempt is stamped when it is made";
    EXPECT_EQ(deliveries[2].answered, 204);
    const json event = deliveries[0].event();
    EXPECT_EQ(event["type"], "usage.threshold");
    EXPECT_EQ(event["timestamp"], format_rfc3339(t0));
    EXPECT_EQ(event["data"]["user_id"], "ada");
    EXPECT_EQ(event["data"]["threshold_percent"], 80);
    EXPECT_EQ(event["data"]["tokens"]["used"], 850);
    EXPECT_EQ(event["data"]["tokens"]["limit"], 1000);
    EXPECT_EQ(outbox(server).begin()->first, deliveries[0].id);

    // Delivered once: later ticks send nothing more.
    server.clock().advance(3600);
    server.app().alert_courier()->wake();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(receiver.deliveries().size(), 3U);

    auto client = server.client();
    const auto metrics = client.Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find("tokenmeter_webhooks_delivered_total 1\n"), std::string::npos) << metrics->body;
    EXPECT_NE(metrics->body.find("tokenmeter_webhooks_failed_attempts_total 2\n"), std::string::npos);
    EXPECT_NE(metrics->body.find("tokenmeter_webhooks_given_up_total 0\n"), std::string::npos);
}

TEST(OutboundWebhooks, ThresholdsOncePerPeriodAndPlanChangesOnceEach) {
    test::WebhookReceiver receiver;
    test::TestServer server(webhook_options(receiver));
    const std::string user = "grace";
    // Usage grows through both thresholds and on past the limit.
    for (const std::int64_t tokens : {500, 300, 50, 50, 50}) ASSERT_EQ(record(server, user, tokens), 200);  // 950
    overrun(server, user, 10, 200);  // 1150: past 100 %
    // An upgrade lowers the ratio; usage grows; a downgrade crosses both
    // thresholds again: the same alerts, which were sent already.
    change_plan(server, user, "pro");
    ASSERT_EQ(record(server, user, 5000), 200);
    change_plan(server, user, "free");
    // The next period: the same thresholds are news again.
    server.clock().advance(32 * 86400);
    ASSERT_EQ(record(server, user, 850), 200);

    ASSERT_TRUE(wait_for_outbox(server, [](const auto& rows) {
        if (rows.size() != 5) return false;
        for (const auto& [id, row] : rows) {
            if (row.state != storage::OutboxState::delivered) return false;
        }
        return true;
    })) << "expected 5 alerts, all delivered";
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto deliveries = receiver.deliveries();
    ASSERT_EQ(deliveries.size(), 5U) << "an alert was delivered twice";
    std::set<std::string> ids;
    std::multiset<std::pair<std::string, int>> kinds;
    std::set<std::string> threshold_periods;
    for (const test::Delivery& delivery : deliveries) {
        EXPECT_TRUE(delivery.signed_right());
        ids.insert(delivery.id);
        kinds.emplace(delivery.type(), threshold_of(delivery));
        if (delivery.type() == "usage.threshold") {
            threshold_periods.insert(delivery.event()["data"]["period"]["start"].get<std::string>() + "/" +
                                     std::to_string(threshold_of(delivery)));
        }
        if (delivery.type() == "plan.changed") {
            const json data = delivery.event()["data"];
            EXPECT_NE(data["plan"], data["previous_plan"]);
        }
    }
    EXPECT_EQ(ids.size(), 5U);
    const std::multiset<std::pair<std::string, int>> expected = {
        {"usage.threshold", 80}, {"usage.threshold", 100}, {"usage.threshold", 80}, {"plan.changed", 0}, {"plan.changed", 0}};
    EXPECT_EQ(kinds, expected);
    EXPECT_EQ(threshold_periods.size(), 3U) << "80 and 100 in the first period, 80 in the second";
}

TEST(OutboundWebhooks, PlanChangedCarriesBothPlans) {
    test::WebhookReceiver receiver;
    test::TestServer server(webhook_options(receiver));
    ASSERT_EQ(record(server, "hopper", 10), 200);
    change_plan(server, "hopper", "pro");
    change_plan(server, "hopper", "pro");  // the same plan again: no news
    ASSERT_TRUE(receiver.wait_for(1));
    ASSERT_TRUE(only_row_has(server, storage::OutboxState::delivered, 1));
    const json event = receiver.deliveries().at(0).event();
    EXPECT_EQ(event["type"], "plan.changed");
    EXPECT_EQ(event["data"]["plan"], "pro");
    EXPECT_EQ(event["data"]["previous_plan"], "free");
    EXPECT_EQ(event["data"]["user_id"], "hopper");
    EXPECT_GT(event["data"]["tokens"]["limit"].get<std::int64_t>(), 1000);
}

// A pack and its refund, through the same writer path billing uses: one
// credits.added and one credits.refunded, each with its amount, once.
TEST(OutboundWebhooks, CreditsAddedAndRefundedOnceEach) {
    test::WebhookReceiver receiver;
    test::TestServer server(webhook_options(receiver, 1000000));
    auto credit = [&](const std::string& id, std::int64_t tokens, const std::string& reason) {
        const ledger::JobOutcome outcome = server.app().ledger().run_job([&](ledger::JobContext& context) {
            EXPECT_TRUE(context.credit(CreditCommand{"packer", CreditChange{id, tokens, reason}}));
            return ledger::JobOutcome{200, ""};
        });
        ASSERT_EQ(outcome.status, 200);
    };
    credit("order:41", 5000, "pack");
    credit("refund:order:41:2000", -2000, "refund");
    ASSERT_TRUE(wait_for_outbox(server, [](const auto& rows) {
        int delivered = 0;
        for (const auto& [id, row] : rows) delivered += row.state == storage::OutboxState::delivered;
        return delivered == 2;
    }));
    std::map<std::string, json> by_type;
    for (const test::Delivery& delivery : receiver.accepted()) {
        EXPECT_TRUE(delivery.signed_right());
        EXPECT_TRUE(by_type.emplace(delivery.type(), delivery.event()["data"]).second) << "twice: " << delivery.type();
    }
    ASSERT_EQ(by_type.size(), 2U);
    EXPECT_EQ(by_type["credits.added"]["tokens"], 5000);
    EXPECT_EQ(by_type["credits.added"]["credits"], 5000);
    EXPECT_EQ(by_type["credits.added"]["credit_id"], "order:41");
    EXPECT_EQ(by_type["credits.refunded"]["tokens"], 2000);
    EXPECT_EQ(by_type["credits.refunded"]["credits"], 3000);
    EXPECT_EQ(by_type["credits.refunded"]["reason"], "refund");
}

TEST(OutboundWebhooks, EveryEndpointGetsEveryAlert) {
    test::WebhookReceiver first;
    test::WebhookReceiver second;
    test::TestServerOptions options = webhook_options(first);
    const std::string urls[] = {first.url(), second.url()};
    options.configure = [urls](config::ServerConfig& c) {
        c.webhook_urls = {urls[0], urls[1]};
        c.webhook_secret = test::webhook_secret();
    };
    test::TestServer server(options);
    ASSERT_EQ(record(server, "lovelace", 1000), 200);
    ASSERT_TRUE(first.wait_for(2));
    ASSERT_TRUE(second.wait_for(2));
    auto ids = [](const test::WebhookReceiver& r) {
        std::set<std::string> out;
        for (const auto& d : r.deliveries()) out.insert(d.id);
        return out;
    };
    EXPECT_EQ(ids(first), ids(second));
    EXPECT_EQ(ids(first).size(), 2U);
    EXPECT_EQ(server.app().store().list_alerts(100).size(), 4U);
}

TEST(OutboundWebhooks, GivesUpAfterADayAndReplaysThroughTheExecutable) {
    test::WebhookReceiver receiver;
    receiver.script(std::vector<Answer>(40, Answer::fail));
    test::TestServer server(webhook_options(receiver));
    const std::int64_t t0 = server.clock().now_seconds();
    ASSERT_EQ(record(server, "babbage", 900), 200);
    // Each retry as it comes due: 5 s, 30 s, 2 min, 10 min, … then the day's end.
    std::int64_t attempts = 0;
    for (; attempts < 30; ++attempts) {
        const bool settled = wait_for_outbox(server, [&](const auto& rows) {
            return rows.size() == 1 && rows.begin()->second.attempts == attempts + 1;
        });
        ASSERT_TRUE(settled) << "attempt " << attempts + 1;
        const storage::OutboxRow row = outbox(server).begin()->second;
        if (row.state == storage::OutboxState::failed) break;
        ASSERT_LE(row.next_attempt_at, t0 + 86400);
        server.clock().set(row.next_attempt_at);
        server.app().alert_courier()->wake();
    }
    const storage::OutboxRow row = outbox(server).begin()->second;
    EXPECT_EQ(row.state, storage::OutboxState::failed);
    EXPECT_EQ(row.attempts, 12);  // t0 + 5, 35, 155, 755, 2555, 6155, 13355, 27755, 56555, 85355, 86400
    EXPECT_EQ(server.clock().now_seconds(), t0 + 86400);

    // The executable lists it and makes it due again.
    const std::string db = "--db '" + server.db() + "'";
    auto [listed, list_output] = run_tokenmeter("webhooks list " + db);
    EXPECT_EQ(listed, 0) << list_output;
    EXPECT_EQ(list_output.rfind("id\ttype\turl\tstate\tattempts\tnext_attempt\tlast_error\n", 0), 0U) << list_output;
    EXPECT_NE(list_output.find(row.alert_id + "\tusage.threshold\t" + receiver.url() + "\tfailed\t12\t-\tHTTP 500"),
              std::string::npos)
        << list_output;
    receiver.script({});
    // `replay` makes it due at the wall clock's now: the server's clock goes there.
    server.clock().set(static_cast<std::int64_t>(std::time(nullptr)) + 2);
    auto [replayed, replay_output] = run_tokenmeter("webhooks replay " + row.alert_id + " " + db);
    EXPECT_EQ(replayed, 0) << replay_output;
    EXPECT_NE(replay_output.find("due again for 1 endpoint(s)"), std::string::npos) << replay_output;
    server.app().alert_courier()->wake();
    ASSERT_TRUE(only_row_has(server, storage::OutboxState::delivered, 1));
    const auto deliveries = receiver.deliveries();
    EXPECT_EQ(deliveries.back().answered, 204);
    EXPECT_EQ(deliveries.back().id, row.alert_id);
    EXPECT_EQ(deliveries.back().body, deliveries.front().body);
    EXPECT_TRUE(deliveries.back().signed_right());

    auto [unknown, unknown_output] = run_tokenmeter("webhooks replay msg_nosuchalert " + db);
    EXPECT_EQ(unknown, 1) << unknown_output;
    EXPECT_NE(unknown_output.find("no alert \"msg_nosuchalert\" in the outbox"), std::string::npos) << unknown_output;
    auto [bare, bare_output] = run_tokenmeter("webhooks " + db);
    EXPECT_EQ(bare, 2) << bare_output;
    EXPECT_NE(bare_output.find("usage: tokenmeter webhooks list"), std::string::npos) << bare_output;
    auto [no_id, no_id_output] = run_tokenmeter("webhooks replay");
    EXPECT_EQ(no_id, 2) << no_id_output;
    auto [help, help_output] = run_tokenmeter("--help");
    EXPECT_NE(help_output.find("  webhooks  "), std::string::npos) << help_output;
}

TEST(OutboundWebhooks, NoEndpointsNoOutbox) {
    test::TestServerOptions options;
    options.catalog_json = test::catalog_with_free_limit(1000);
    test::TestServer server(options);
    ASSERT_EQ(record(server, "turing", 1000), 200);
    change_plan(server, "turing", "pro");
    EXPECT_EQ(server.app().alert_courier(), nullptr);
    EXPECT_TRUE(server.app().store().list_alerts(10).empty());
}

// The Standard Webhooks spec's own example (also what the standardwebhooks
// npm package signs for it).
TEST(OutboundWebhookSignature, KnownAnswerOfTheSpec) {
    auto secret = alerts::WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    ASSERT_TRUE(secret.has_value()) << secret.error().message;
    EXPECT_EQ(secret->sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
              "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(OutboundWebhookEndpoints, UrlsSplitForTheClient) {
    struct Case {
        const char* url;
        const char* origin;
        const char* path;
    };
    const Case cases[] = {
        {"https://app.example/hooks", "https://app.example", "/hooks"},
        {"http://127.0.0.1:8080", "http://127.0.0.1:8080", "/"},
        {"http://127.0.0.1:8080?key=1", "http://127.0.0.1:8080", "/?key=1"},
        {"https://app.example:8443/a/b?c=d", "https://app.example:8443", "/a/b?c=d"},
    };
    for (const Case& c : cases) {
        auto endpoint = alerts::parse_endpoint_url(c.url);
        ASSERT_TRUE(endpoint.has_value()) << c.url;
        EXPECT_EQ(endpoint->origin, c.origin);
        EXPECT_EQ(endpoint->path, c.path);
    }
    for (const char* bad : {"app.example/hooks", "https://", "https://user:pw@app.example/", "https://a b/", "https://:80/"}) {
        EXPECT_FALSE(alerts::parse_endpoint_url(bad).has_value()) << bad;
    }
}

TEST(OutboundWebhookSchedule, BacksOffForADayThenGivesUp) {
    const std::vector<std::int64_t> schedule = alerts::CourierOptions{}.backoff_seconds;
    const std::int64_t created = 1000;
    const std::int64_t until = created + 86400;
    std::int64_t now = created;
    std::vector<std::int64_t> delays;
    for (std::int64_t attempts = 1;; ++attempts) {
        const auto next = alerts::next_attempt_at(attempts, now, until, schedule);
        if (!next) break;
        delays.push_back(*next - now);
        now = *next;
    }
    const std::vector<std::int64_t> expected = {5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800, 1045};
    EXPECT_EQ(delays, expected);
    EXPECT_EQ(now, until);
}

TEST(OutboundWebhookConfig, RefusesWhatCannotBeSentOrSigned) {
    auto error_of = [](const config::Environment& environment) -> std::string {
        config::ServerConfig c;
        c.demo = true;  // the other secrets are not the point here
        if (auto error = config::apply_environment(c, environment)) return error->message;
        if (auto error = config::validate(c)) return error->message;
        return "";
    };
    const std::string secret = test::webhook_secret();
    const std::string url = "https://app.example/hooks";
    EXPECT_EQ(error_of({{"TOKENMETER_WEBHOOK_URLS", url}, {"TOKENMETER_WEBHOOK_SECRET", secret}}), "");
    EXPECT_EQ(error_of({{"TOKENMETER_WEBHOOK_URLS", url + ", http://127.0.0.1:9000/x?y=1"}, {"TOKENMETER_WEBHOOK_SECRET", secret}}), "");
    EXPECT_NE(error_of({{"TOKENMETER_WEBHOOK_URLS", url}}).find("TOKENMETER_WEBHOOK_SECRET is not set"), std::string::npos);
    EXPECT_NE(error_of({{"TOKENMETER_WEBHOOK_URLS", "ftp://app.example/x"}, {"TOKENMETER_WEBHOOK_SECRET", secret}})
                  .find("is not an http:// or https:// URL"),
              std::string::npos);
    EXPECT_NE(error_of({{"TOKENMETER_WEBHOOK_URLS", "https:///x"}}).find("has no host"), std::string::npos);
    EXPECT_NE(error_of({{"TOKENMETER_WEBHOOK_URLS", "https://a.example/x#y"}}).find("fragment"), std::string::npos);
    EXPECT_NE(error_of({{"TOKENMETER_WEBHOOK_URLS", url}, {"TOKENMETER_WEBHOOK_SECRET", "not-a-whsec"}}).find("must start with whsec_"),
              std::string::npos);
    EXPECT_NE(error_of({{"TOKENMETER_WEBHOOK_URLS", url}, {"TOKENMETER_WEBHOOK_SECRET", "whsec_***"}}).find("base64"),
              std::string::npos);
    EXPECT_NE(error_of({{"TOKENMETER_WEBHOOK_URLS", url}, {"TOKENMETER_WEBHOOK_SECRET", "whsec_c2hvcnQ="}}).find("24 to 64 bytes"),
              std::string::npos);
    // The secret never appears in a message.
    EXPECT_EQ(error_of({{"TOKENMETER_WEBHOOK_URLS", url}, {"TOKENMETER_WEBHOOK_SECRET", "whsec_c2hvcnQ="}}).find("c2hvcnQ"),
              std::string::npos);
    for (const char* bad : {"80,80", "100,80", "0", "1001", "eighty", "80,-5"}) {
        EXPECT_NE(error_of({{"TOKENMETER_ALERT_THRESHOLDS", bad}}).find("alert_thresholds"), std::string::npos) << bad;
    }
    config::ServerConfig c;
    EXPECT_EQ(c.alert_thresholds_percent, (std::vector<int>{80, 100}));
    ASSERT_FALSE(config::apply_environment(c, {{"TOKENMETER_ALERT_THRESHOLDS", "50, 75,90"}}));
    EXPECT_EQ(c.alert_thresholds_percent, (std::vector<int>{50, 75, 90}));
    ASSERT_FALSE(config::apply_file(c, R"({"alert_thresholds": [60, 120], "webhook_urls": ["http://127.0.0.1:1/a"]})"));
    EXPECT_EQ(c.alert_thresholds_percent, (std::vector<int>{60, 120}));
    EXPECT_EQ(c.webhook_urls, (std::vector<std::string>{"http://127.0.0.1:1/a"}));

    // The executable says so at start-up.
    auto [status, output] = run_tokenmeter("serve --listen 127.0.0.1:0 --db sqlite:/nonexistent/ledger.db",
                                           "TOKENMETER_WEBHOOK_URLS=http://127.0.0.1:9/hooks");
    EXPECT_NE(status, 0);
    EXPECT_NE(output.find("TOKENMETER_WEBHOOK_SECRET is not set while TOKENMETER_WEBHOOK_URLS is"), std::string::npos)
        << output;
}

}  // namespace
}  // namespace tokenmeter
