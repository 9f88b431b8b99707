// I3 under crashes: 30 times, a real server process is killed with SIGKILL at
// a random moment under load (charges of tokens and of avatars) and restarted
// on the same SQLite file; clients retry every request they saw no answer
// to, with the same Idempotency-Key. Afterwards every key has exactly one
// charge (none lost, none doubled), the balances are the sums of the charges
// (I1, tokens and avatars), every receipt chain walks from the file unbroken
// (I5), and the database passes integrity_check.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "chain_audit.hpp"
#include "charge_audit.hpp"
#include "server_process.hpp"
#include "test_server.hpp"

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
    client.set_read_timeout(5, 0);
    auto response = client.Post("/v1/usage/record",
                                {{"Authorization", "Bearer " + test::service_key}, {"Idempotency-Key", request.key}},
                                request.body.dump(), "application/json");
    if (!response) return std::nullopt;
    return response->status;
}

std::string write_config(const std::string& dir) {
    json catalog = json::parse(std::string(default_catalog_json()));
    catalog["plans"][0]["tokens_per_period"] = 1'000'000'000'000;
    catalog["plans"][0]["avatars_per_period"] = 1'000'000'000;
    std::ofstream(dir + "/catalog.json") << catalog.dump();
    (void)keys::generate_signing_key_file(dir + "/signing.jwk");
    const json config = {{"db", "sqlite:" + dir + "/ledger.db"},
                         {"jwt_secret", test::jwt_secret},
                         {"service_keys", {test::service_key}},
                         {"signing_key_file", dir + "/signing.jwk"},
                         {"catalog_file", dir + "/catalog.json"}};
    std::ofstream(dir + "/config.json") << config.dump();
    return dir + "/config.json";
}

TEST(Crash, KillNineUnderLoadLosesNothingAndChargesNothingTwice) {
    const std::string dir = test::make_temp_dir();
    const std::string config = write_config(dir);
    std::mt19937 random(30);
    std::mutex mutex;
    std::map<std::string, json> acknowledged;   // key -> body
    std::vector<Request> unanswered;
    int next_key = 0;
    // Every fifth request an avatar, the rest chat charges; eight users.
    auto make_request = [&](int i) {
        if (i % 5 == 0) return Request{"crash-" + std::to_string(i), {{"user_id", "u" + std::to_string(i % 8)}, {"operation", "avatar"}}};
        const json body = {{"user_id", "u" + std::to_string(i % 8)}, {"operation", "chat"}, {"model", "gpt-4o"},
                           {"input_tokens", 1 + i % 97}, {"output_tokens", i % 13}};
        return Request{"crash-" + std::to_string(i), body};
    };
    for (int cycle = 0; cycle < 30; ++cycle) {
        test::ServerProcess server(config);
        // First, the requests that never saw an answer are retried as they were.
        std::vector<Request> retry;
        std::swap(retry, unanswered);
        for (const Request& r : retry) {
            auto status = send(server.port(), r);
            ASSERT_TRUE(status.has_value()) << "the restarted server does not answer";
            ASSERT_EQ(*status, 200);
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
        std::this_thread::sleep_for(std::chrono::milliseconds(50 + random() % 300));
        server.kill_hard();
        running = false;
        for (auto& client : clients) client.join();
    }
    {
        test::ServerProcess server(config);
        for (const Request& r : unanswered) {
            auto status = send(server.port(), r);
            ASSERT_TRUE(status && *status == 200);
            acknowledged[r.key] = r.body;
        }
        EXPECT_EQ(server.terminate(), 0);
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir + "/ledger.db").c_str(), &db), SQLITE_OK);
    std::map<std::string, int> charges_per_key;
    sqlite3_stmt* rows = nullptr;
    sqlite3_prepare_v2(db, "SELECT idempotency_key FROM token_usage", -1, &rows, nullptr);
    while (sqlite3_step(rows) == SQLITE_ROW) charges_per_key[reinterpret_cast<const char*>(sqlite3_column_text(rows, 0))] += 1;
    sqlite3_finalize(rows);
    const test::ChargeAudit audit = test::audit_charges(acknowledged, charges_per_key);
    EXPECT_GT(acknowledged.size(), 300U);
    EXPECT_EQ(audit.lost, 0) << "acknowledged charges lost";
    EXPECT_EQ(audit.doubled, 0) << "double charges";
    EXPECT_EQ(charges_per_key.size(), acknowledged.size()) << "charges nobody asked for";
    // I1 per user-period: tokens_used and avatars_used are the sums of the charges.
    sqlite3_prepare_v2(db,
                       "SELECT COUNT(*) FROM usage_limits u WHERE tokens_used != (SELECT COALESCE(SUM(charged_tokens), 0) "
                       "FROM token_usage t WHERE t.user_id = u.user_id AND t.period_start = u.period_start) OR "
                       "avatars_used != (SELECT COALESCE(SUM(avatars), 0) FROM token_usage t WHERE t.user_id = u.user_id "
                       "AND t.period_start = u.period_start)",
                       -1, &rows, nullptr);
    ASSERT_EQ(sqlite3_step(rows), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(rows, 0), 0) << "I1 broken";
    sqlite3_finalize(rows);
    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &rows, nullptr);
    ASSERT_EQ(sqlite3_step(rows), SQLITE_ROW);
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(rows, 0)), "ok");
    sqlite3_finalize(rows);
    // The avatars are what was asked for.
    std::map<std::string, std::int64_t> avatars_asked;
    for (const auto& [key, body] : acknowledged) {
        if (body["operation"] == "avatar") avatars_asked[body["user_id"].get<std::string>()] += 1;
    }
    sqlite3_prepare_v2(db, "SELECT user_id, SUM(avatars_used) FROM usage_limits GROUP BY user_id", -1, &rows, nullptr);
    while (sqlite3_step(rows) == SQLITE_ROW) {
        const std::string user = reinterpret_cast<const char*>(sqlite3_column_text(rows, 0));
        EXPECT_EQ(sqlite3_column_int64(rows, 1), avatars_asked[user]) << "avatars of " << user;
    }
    sqlite3_finalize(rows);
    sqlite3_close(db);
    const auto chains = test::chain_audit::audit_database("sqlite:" + dir + "/ledger.db", dir + "/signing.jwk");
    EXPECT_TRUE(chains.ok()) << chains.describe();
    EXPECT_EQ(chains.charges, static_cast<std::int64_t>(acknowledged.size()));
    std::cout << acknowledged.size() << " acknowledged charges over 30 crashes; " << chains.describe() << "\n";
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}

}  // namespace
}  // namespace tokenmeter
