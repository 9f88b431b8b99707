// I3 under crashes of the server on PostgreSQL (the SQLite counterpart is
// ../crash_test.cpp): 15 times, a `tokenmeter serve` process is killed with
// SIGKILL at a random moment under load (charges of tokens and of avatars)
// and started again on the same database; clients retry every request they
// saw no answer to, with the same Idempotency-Key. Afterwards every key has
// exactly one charge (none lost, none doubled), I1 holds for tokens and for
// avatars, and every receipt chain walks from the database unbroken (I5).
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "chain_audit.hpp"
#include "charge_audit.hpp"
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

// Sends until an answer arrives or the server goes away.
std::optional<int> send(int port, const Request& request) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(1, 0);
    client.set_read_timeout(10, 0);
    auto response = client.Post("/v1/usage/record",
                                {{"Authorization", "Bearer " + test::service_key}, {"Idempotency-Key", request.key}},
                                request.body.dump(), "application/json");
    if (!response) return std::nullopt;
    return response->status;
}

// Every fifth request an avatar, the rest chat charges; eight users.
Request make_request(int i) {
    const std::string user = "u" + std::to_string(i % 8);
    if (i % 5 == 0) return Request{"pgcrash-" + std::to_string(i), {{"user_id", user}, {"operation", "avatar"}}};
    return Request{"pgcrash-" + std::to_string(i),
                   {{"user_id", user}, {"operation", "chat"}, {"model", "gpt-4o"}, {"input_tokens", 1 + i % 97},
                    {"output_tokens", i % 13}}};
}

TEST(PostgresCrash, KillNineOfTheServerUnderLoadLosesNothingAndChargesNothingTwice) {
    test::ScratchDatabase database(test::postgres_server_url());
    const std::string dir = test::make_temp_dir();
    const std::string config = test::write_postgres_config(dir, database.url(), 1'000'000'000'000, json::object(),
                                                           1'000'000'000);
    std::mt19937 random(31);
    std::mutex mutex;
    std::map<std::string, json> acknowledged;  // key -> body
    std::vector<Request> unanswered;
    int next_key = 0;
    for (int cycle = 0; cycle < 15; ++cycle) {
        test::ServerProcess server(config);
        // First, the requests that never saw an answer are retried as they were.
        std::vector<Request> retry;
        std::swap(retry, unanswered);
        for (const Request& r : retry) {
            auto status = send(server.port(), r);
            ASSERT_TRUE(status.has_value()) << "the restarted server does not answer";
            ASSERT_EQ(*status, 200) << r.key;
            acknowledged[r.key] = r.body;
        }
        std::atomic<bool> running{true};
        std::vector<std::thread> clients;
        for (int c = 0; c < 8; ++c) {
            clients.emplace_back([&] {
                while (running) {
                    Request r;
                    {
                        std::lock_guard<std::mutex> guard(mutex);
                        r = make_request(next_key++);
                    }
                    auto status = send(server.port(), r);
                    std::lock_guard<std::mutex> guard(mutex);
                    if (status && *status == 200) {
                        acknowledged[r.key] = r.body;
                    } else {
                        unanswered.push_back(r);
                        if (!status) return;  // the server is gone
                    }
                }
            });
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100 + random() % 400));
        server.kill_hard();
        running = false;
        for (auto& client : clients) client.join();
    }
    {
        test::ServerProcess server(config);
        for (const Request& r : unanswered) {
            auto status = send(server.port(), r);
            ASSERT_TRUE(status && *status == 200) << r.key;
            acknowledged[r.key] = r.body;
        }
        EXPECT_EQ(server.terminate(), 0);
    }
    std::map<std::string, int> charges_per_key;
    for (const auto& row : test::query_rows(database.url(), "SELECT idempotency_key FROM token_usage")) {
        charges_per_key[row.at(0)] += 1;
    }
    const test::ChargeAudit audit = test::audit_charges(acknowledged, charges_per_key);
    EXPECT_GT(acknowledged.size(), 150U);
    EXPECT_EQ(audit.lost, 0) << "acknowledged charges lost";
    EXPECT_EQ(audit.doubled, 0) << "double charges";
    EXPECT_EQ(charges_per_key.size(), acknowledged.size()) << "charges nobody asked for";
    // The balances are the sums of what was asked for: tokens and avatars.
    std::map<std::string, std::int64_t> avatars_asked;
    for (const auto& [key, body] : acknowledged) {
        if (body["operation"] == "avatar") avatars_asked[body["user_id"].get<std::string>()] += 1;
    }
    for (const auto& row : test::query_rows(database.url(), "SELECT user_id, SUM(avatars_used) FROM usage_limits GROUP BY user_id")) {
        EXPECT_EQ(std::stoll(row.at(1)), avatars_asked[row.at(0)]) << "avatars of " << row.at(0);
    }
    // I1 per user-period for tokens and avatars, and the chains.
    const auto broken = test::query_rows(
        database.url(),
        "SELECT count(*) FROM usage_limits u WHERE tokens_used != (SELECT COALESCE(SUM(charged_tokens), 0) FROM "
        "token_usage t WHERE t.user_id = u.user_id AND t.period_start = u.period_start) OR avatars_used != (SELECT "
        "COALESCE(SUM(avatars), 0) FROM token_usage t WHERE t.user_id = u.user_id AND t.period_start = u.period_start)");
    EXPECT_EQ(broken.at(0).at(0), "0") << "I1 broken";
    const auto chains = test::chain_audit::audit_database(database.url(), dir + "/signing.jwk");
    EXPECT_TRUE(chains.ok()) << chains.describe();
    EXPECT_EQ(chains.charges, static_cast<std::int64_t>(acknowledged.size()));
    std::cout << acknowledged.size() << " acknowledged charges over 15 crashes; " << chains.describe() << "\n";
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}

}  // namespace
}  // namespace tokenmeter
