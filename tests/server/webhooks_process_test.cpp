// The outbox survives a crash: a real `tokenmeter serve` makes a change
// whose alert cannot be delivered (the app's endpoint is down), is killed
// with SIGKILL, and a new process on the same database (SQLite, or
// PostgreSQL under the postgres.* registration) delivers it once the
// endpoint is back, with the id the outbox gave it, signed.
#include <gtest/gtest.h>

#include <ctime>
#include <fstream>

#include "server_process.hpp"
#include "test_server.hpp"
#include "webhook_receiver.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;

struct ProcessSetup {
    std::string dir = test::make_temp_dir();
    std::unique_ptr<test::ScratchDatabase> database;
    std::string db;
    std::string config_file;
};

ProcessSetup write_config(const std::string& webhook_url) {
    ProcessSetup setup;
    const std::string postgres = test::postgres_server_url();
    if (!postgres.empty()) setup.database = std::make_unique<test::ScratchDatabase>(postgres);
    setup.db = setup.database ? setup.database->url() : "sqlite:" + setup.dir + "/ledger.db";
    std::ofstream(setup.dir + "/catalog.json") << test::catalog_with_free_limit(1000);
    (void)keys::generate_signing_key_file(setup.dir + "/signing.jwk");
    const json config = {{"db", setup.db},
                         {"jwt_secret", test::jwt_secret},
                         {"service_keys", {test::service_key}},
                         {"signing_key_file", setup.dir + "/signing.jwk"},
                         {"catalog_file", setup.dir + "/catalog.json"},
                         {"webhook_urls", {webhook_url}},
                         {"webhook_secret", test::webhook_secret()},
                         {"webhook_timeout_ms", 1000}};
    setup.config_file = setup.dir + "/config.json";
    std::ofstream(setup.config_file) << config.dump();
    return setup;
}

int record(int port, const std::string& user, std::int64_t tokens) {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(10, 0);
    const json body = {{"user_id", user}, {"operation", "chat"}, {"model", "gpt-4o-mini"}, {"input_tokens", tokens},
                       {"output_tokens", 0}};
    auto response = client.Post("/v1/usage/record", {{"Authorization", "Bearer " + test::service_key}, {"Idempotency-Key", "k-" + user}},
                                body.dump(), "application/json");
    return response ? response->status : 0;
}

// The outbox as a separate reader sees it.
std::vector<storage::OutboxRow> outbox_of(const std::string& db) {
    auto store = open_store(db);
    if (!store) throw std::runtime_error(store.error().message);
    return (*store)->list_alerts(100);
}

TEST(OutboundWebhooksProcess, KillNineBeforeDeliveryThenTheRestartDelivers) {
    test::WebhookReceiver receiver;
    receiver.down();  // the app is down: deliveries are refused
    ProcessSetup setup = write_config(receiver.url());
    std::string alert_id;
    {
        test::ServerProcess server(setup.config_file);
        ASSERT_EQ(record(server.port(), "curie", 850), 200);  // durable: the alert is in the outbox
        // The first attempt fails on the refused connection; the row waits for its retry.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        std::vector<storage::OutboxRow> rows;
        while (std::chrono::steady_clock::now() < deadline) {
            rows = outbox_of(setup.db);
            if (rows.size() == 1 && rows[0].attempts >= 1) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ASSERT_EQ(rows.size(), 1U);
        ASSERT_GE(rows[0].attempts, 1);
        EXPECT_EQ(rows[0].state, storage::OutboxState::pending);
        EXPECT_EQ(rows[0].type, "usage.threshold");
        alert_id = rows[0].alert_id;
        server.kill_hard();
    }
    receiver.up();
    test::ServerProcess restarted(setup.config_file);
    ASSERT_TRUE(receiver.wait_for(1, std::chrono::seconds(30))) << "the alert never went out after the restart";
    const auto deliveries = receiver.deliveries();
    ASSERT_EQ(deliveries.size(), 1U);
    EXPECT_EQ(deliveries[0].id, alert_id);
    EXPECT_TRUE(deliveries[0].signed_right());
    EXPECT_EQ(deliveries[0].type(), "usage.threshold");
    EXPECT_EQ(deliveries[0].event()["data"]["user_id"], "curie");
    const std::int64_t stamped = std::stoll(deliveries[0].timestamp);
    EXPECT_LE(std::abs(stamped - static_cast<std::int64_t>(std::time(nullptr))), 60) << "a real clock's timestamp";
    // Marked delivered: a later process sends nothing again.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline && outbox_of(setup.db).at(0).state != storage::OutboxState::delivered) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(outbox_of(setup.db).at(0).state, storage::OutboxState::delivered);
    EXPECT_EQ(restarted.terminate(), 0);
    {
        test::ServerProcess again(setup.config_file);
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        EXPECT_EQ(receiver.deliveries().size(), 1U);
    }
    std::error_code ignored;
    std::filesystem::remove_all(setup.dir, ignored);
}

}  // namespace
}  // namespace tokenmeter
