// The database goes away under load: PostgreSQL is stopped with
// `pg_ctl stop -m immediate` (a crash: no checkpoint, every connection cut)
// three times while clients record charges, and started again. The tokenmeter
// process is never restarted. While the database is down every request is
// 503 storage_unavailable; afterwards the server reconnects by itself, the
// clients retry what they saw no success for with the same Idempotency-Key,
// and every acknowledged charge is in the database exactly once, and every
// receipt chain walks from the database unbroken (I5).
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "app.hpp"
#include "chain_audit.hpp"
#include "charge_audit.hpp"
#include "own_cluster.hpp"
#include "server_config.hpp"
#include "server_process.hpp"
#include "test_database.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;

struct Request {
    std::string key;
    json body;
};

struct Answer {
    int status = 0;    // 0: no answer
    std::string code;  // the error code, or why there was no answer
};

Answer send(int port, const Request& request) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(1, 0);
    client.set_read_timeout(10, 0);
    auto response = client.Post("/v1/usage/record",
                                {{"Authorization", "Bearer " + test::service_key}, {"Idempotency-Key", request.key}},
                                request.body.dump(), "application/json");
    if (!response) return {0, httplib::to_string(response.error())};
    const json reply = json::parse(response->body, nullptr, false);
    std::string code;
    if (reply.is_object() && reply.contains("error")) code = reply["error"].value("code", "");
    return {response->status, code};
}

bool healthy(int port) {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(5, 0);
    auto response = client.Get("/healthz");
    return response && response->status == 200;
}

TEST(PostgresRestart, ImmediateStopsUnderLoadLoseNoAcknowledgedCharge) {
    test::OwnCluster cluster;
    const std::string dir = test::make_temp_dir();
    test::ServerProcess server(test::write_postgres_config(dir, cluster.url(), 1'000'000'000'000));
    std::mt19937 random(55);
    std::mutex mutex;
    std::map<std::string, json> acknowledged;  // key -> body
    std::vector<Request> unanswered;
    int next_key = 0;
    int unavailable_while_down = 0;
    int other_failures = 0;
    int no_answer = 0;
    auto make_request = [](int i) {
        const json body = {{"user_id", "u" + std::to_string(i % 8)}, {"operation", "chat"}, {"model", "gpt-4o"},
                           {"input_tokens", 1 + i % 97}, {"output_tokens", i % 13}};
        return Request{"restart-" + std::to_string(i), body};
    };
    for (int cycle = 0; cycle < 3; ++cycle) {
        std::atomic<bool> running{true};
        std::atomic<bool> down{false};
        std::vector<std::thread> clients;
        for (int c = 0; c < 8; ++c) {
            clients.emplace_back([&] {
                // A few failed attempts each show what the server answers
                // while the database is down; the rest would only lengthen
                // the retries after it.
                int failed = 0;
                while (running && failed < 5) {
                    Request r;
                    {
                        std::lock_guard<std::mutex> guard(mutex);
                        r = make_request(next_key++);
                    }
                    const bool was_down = down;
                    const Answer answer = send(server.port(), r);
                    std::unique_lock<std::mutex> guard(mutex);
                    if (answer.status == 200) {
                        acknowledged[r.key] = r.body;
                        continue;
                    }
                    unanswered.push_back(r);
                    if (answer.status == 503 && answer.code == "storage_unavailable") {
                        if (was_down) unavailable_while_down += 1;
                    } else if (answer.status == 0) {
                        // No answer at all (a connect that timed out on this
                        // busy machine): retried later, like any client would.
                        no_answer += 1;
                    } else {
                        other_failures += 1;
                        ADD_FAILURE() << "status " << answer.status << " " << answer.code;
                    }
                    guard.unlock();
                    failed += 1;
                }
                // A client backs off after a failure rather than spin.
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            });
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300 + random() % 300));
        down = true;  // from here on, any failure is the stop's
        cluster.stop("immediate");
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        running = false;
        for (auto& client : clients) client.join();
        EXPECT_FALSE(healthy(server.port())) << "healthz while the database is down";
        cluster.start();
        // The server reconnects by itself: no restart, no signal.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (!healthy(server.port()) && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ASSERT_TRUE(healthy(server.port())) << "the server did not recover after the database restarted";
        std::vector<Request> retry;
        std::swap(retry, unanswered);
        for (const Request& r : retry) {
            const Answer answer = send(server.port(), r);
            ASSERT_EQ(answer.status, 200) << "retry of " << r.key << " after recovery: " << answer.code;
            acknowledged[r.key] = r.body;
        }
    }
    EXPECT_EQ(other_failures, 0);
    EXPECT_GT(unavailable_while_down, 0) << "requests while the database was down were 503 storage_unavailable";
    std::map<std::string, int> charges_per_key;
    for (const auto& row : test::query_rows(cluster.url(), "SELECT idempotency_key FROM token_usage")) {
        charges_per_key[row.at(0)] += 1;
    }
    const test::ChargeAudit audit = test::audit_charges(acknowledged, charges_per_key);
    EXPECT_GT(acknowledged.size(), 100U);
    EXPECT_EQ(audit.lost, 0) << "acknowledged charges lost";
    EXPECT_EQ(audit.doubled, 0) << "double charges";
    EXPECT_EQ(charges_per_key.size(), acknowledged.size()) << "charges nobody asked for";
    // I1 per user-period: tokens_used is the sum of the charges.
    const auto broken = test::query_rows(
        cluster.url(), "SELECT count(*) FROM usage_limits u WHERE tokens_used != (SELECT COALESCE(SUM(charged_tokens), 0) "
                       "FROM token_usage t WHERE t.user_id = u.user_id AND t.period_start = u.period_start)");
    EXPECT_EQ(broken.at(0).at(0), "0") << "I1 broken";
    std::cout << acknowledged.size() << " acknowledged charges over 3 immediate stops, " << unavailable_while_down
              << " answered 503 while the database was down, " << no_answer << " without an answer\n";
    EXPECT_EQ(server.terminate(), 0);
    const auto chains = test::chain_audit::audit_database(cluster.url(), dir + "/signing.jwk");
    EXPECT_TRUE(chains.ok()) << chains.describe();
    EXPECT_EQ(chains.charges, static_cast<std::int64_t>(acknowledged.size()));
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}

TEST(PostgresRestart, RefusesToStartOnAServerWithFsyncOff) {
    test::OwnCluster cluster;
    test::query_rows(cluster.url(), "ALTER SYSTEM SET fsync = off");
    test::query_rows(cluster.url(), "SELECT pg_reload_conf()");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (test::query_rows(cluster.url(), "SHOW fsync").at(0).at(0) != "off" &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto refused = open_store(cluster.url());
    ASSERT_FALSE(refused.has_value());
    EXPECT_NE(refused.error().message.find("fsync=off"), std::string::npos) << refused.error().message;
    test::query_rows(cluster.url(), "ALTER SYSTEM RESET fsync");
    test::query_rows(cluster.url(), "SELECT pg_reload_conf()");
    while (test::query_rows(cluster.url(), "SHOW fsync").at(0).at(0) != "on" &&
           std::chrono::steady_clock::now() < deadline + std::chrono::seconds(10)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(open_store(cluster.url()).has_value()) << "with fsync on, the same server is accepted";
}

}  // namespace
}  // namespace tokenmeter
