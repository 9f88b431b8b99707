// Two `tokenmeter serve` processes on one PostgreSQL database.
//
// I4 across processes: 64 connections x 200 reservations for one user split
// across both, against a limit that fits a quarter of the demand. Exactness
// can only come from the database here (each process has its own writer), so
// this is the test that a check and its change happen under one row lock.
// Afterwards every receipt chain is walked from the database (I5).
//
// Live streams across processes: a user's stream held by one server shows
// the changes made through the other (NOTIFY/LISTEN).
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <random>
#include <thread>

#include "chain_audit.hpp"
#include "server_config.hpp"
#include "server_process.hpp"
#include "test_database.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;

TEST(PostgresProcesses, TwoServersOnOneDatabaseNeverOverspend) {
    constexpr int connections = 64;
    constexpr int per_connection = 200;
    std::mt19937 random(5);
    std::vector<std::vector<std::int64_t>> sizes(connections);
    std::int64_t demand = 0;
    for (auto& list : sizes) {
        for (int i = 0; i < per_connection; ++i) {
            list.push_back(1 + static_cast<std::int64_t>(random() % 400));
            demand += list.back();
        }
    }
    const std::int64_t limit = demand / 4;
    test::ScratchDatabase database(test::postgres_server_url());
    const std::string dir = test::make_temp_dir();
    const std::string config = test::write_postgres_config(dir, database.url(), limit);
    test::ServerProcess first(config);
    test::ServerProcess second(config);
    std::atomic<std::int64_t> granted{0};
    std::atomic<int> granted_count{0};
    std::atomic<int> wrong_refusals{0};
    std::atomic<int> failures{0};
    std::atomic<int> per_server[2] = {0, 0};
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    for (int c = 0; c < connections; ++c) {
        workers.emplace_back([&, c] {
            const int server = c % 2;
            httplib::Client client("127.0.0.1", server == 0 ? first.port() : second.port());
            client.set_read_timeout(30, 0);
            for (int i = 0; i < per_connection; ++i) {
                const std::int64_t size = sizes[static_cast<std::size_t>(c)][static_cast<std::size_t>(i)];
                const json body = {{"user_id", "hot"}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                                   {"input_tokens", size}, {"max_output_tokens", 0}};
                const httplib::Headers headers = {
                    {"Authorization", "Bearer " + test::service_key},
                    {"Idempotency-Key", "p-" + std::to_string(c) + "-" + std::to_string(i)}};
                // A request without an answer (a connection dropped on this
                // busy machine) is sent again with the same key, as a client
                // would: it has at most one effect either way.
                auto response = client.Post("/v1/usage/authorize", headers, body.dump(), "application/json");
                for (int retry = 0; !response && retry < 5; ++retry) {
                    response = client.Post("/v1/usage/authorize", headers, body.dump(), "application/json");
                }
                if (!response) {
                    failures += 1;
                    continue;
                }
                if (response->status != 200 && response->status != 402) {
                    ADD_FAILURE() << response->status << " " << response->body;
                }
                const json reply = json::parse(response->body, nullptr, false);
                if (response->status == 200) {
                    granted += size;
                    granted_count += 1;
                    per_server[server] += 1;
                } else if (response->status == 402) {
                    // A refusal is right only if what was left could not cover it.
                    if (reply["error"]["remaining"].get<std::int64_t>() >= size) wrong_refusals += 1;
                } else {
                    failures += 1;
                }
            }
        });
    }
    for (auto& worker : workers) worker.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(wrong_refusals.load(), 0) << "refused while headroom was enough";
    EXPECT_GT(per_server[0].load(), 0);
    EXPECT_GT(per_server[1].load(), 0);
    const auto row = test::query_rows(database.url(),
                                      "SELECT tokens_reserved, tokens_limit, (SELECT COALESCE(SUM((r ->> 'tokens')::bigint), 0) "
                                      "FROM json_array_elements(reservations::json) r) FROM usage_limits "
                                      "WHERE user_id = 'hot'");
    ASSERT_EQ(row.size(), 1U);
    const std::int64_t reserved = std::stoll(row[0][0]);
    const std::int64_t overspend = std::max<std::int64_t>(0, reserved - limit);
    EXPECT_EQ(overspend, 0) << "overspend";
    EXPECT_EQ(reserved, granted.load()) << "the database holds exactly what was granted";
    EXPECT_EQ(std::stoll(row[0][2]), granted.load()) << "the open reservations add up to the balance";
    EXPECT_LT(limit - reserved, 400) << "nearly full: what is left is smaller than the largest request";
    std::cout << "granted " << granted_count.load() << " of " << connections * per_connection << " reservations ("
              << per_server[0].load() << " + " << per_server[1].load() << "), " << granted.load() << " of limit "
              << limit << " tokens, overspend " << overspend << ", " << seconds << " s\n";
    EXPECT_EQ(first.terminate(), 0);
    EXPECT_EQ(second.terminate(), 0);
    const auto audit = test::chain_audit::audit_database(database.url(), dir + "/signing.jwk");
    EXPECT_TRUE(audit.ok()) << audit.describe();
    EXPECT_EQ(audit.receipts, granted_count.load() + 1) << "a period_open, then one receipt per reservation";
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}

// A user's live stream on one server process, read on a thread of its own.
// Ended on every path: the destructor stops the process (SIGTERM ends its
// streams cleanly), then joins.
class ProcessStream {
public:
    ProcessStream(test::ServerProcess& server, const std::string& user) : server_(server) {
        const std::string token = test::mint_user_token(user, static_cast<std::int64_t>(std::time(nullptr)));
        const int port = server.port();
        reader_ = std::thread([this, token, port] {
            httplib::Client client("127.0.0.1", port);
            client.set_read_timeout(120, 0);
            client.Get("/v1/me/usage/stream", {{"Authorization", "Bearer " + token}},
                       [this](const char* data, std::size_t size) {
                           {
                               std::lock_guard<std::mutex> guard(mutex_);
                               received_.append(data, size);
                           }
                           arrived_.notify_all();
                           return true;
                       });
        });
    }
    ~ProcessStream() {
        (void)server_.terminate();
        if (reader_.joinable()) reader_.join();
    }
    ProcessStream(const ProcessStream&) = delete;
    ProcessStream& operator=(const ProcessStream&) = delete;

    // Waits until `n` usage events arrived; whether they did. The patience is
    // a hang guard, not a speed bound.
    bool wait_for_events(std::size_t n, std::chrono::seconds patience = std::chrono::seconds(30)) {
        std::unique_lock<std::mutex> lock(mutex_);
        return arrived_.wait_for(lock, patience, [&] { return events(received_) >= n; });
    }
    std::string text() {
        std::lock_guard<std::mutex> guard(mutex_);
        return received_;
    }
    static std::size_t events(const std::string& text) {
        std::size_t n = 0;
        for (auto at = text.find("event: usage"); at != std::string::npos; at = text.find("event: usage", at + 1)) ++n;
        return n;
    }

private:
    test::ServerProcess& server_;
    std::mutex mutex_;
    std::condition_variable arrived_;
    std::string received_;
    std::thread reader_;
};

TEST(PostgresProcesses, AChangeThroughOneServerReachesAStreamHeldByTheOther) {
    test::ScratchDatabase database(test::postgres_server_url());
    const std::string dir = test::make_temp_dir();
    // The streams' only timer, the heartbeat, an hour away: what reaches the
    // stream on `first` was pushed there because of a change on `second`.
    const std::string config =
        test::write_postgres_config(dir, database.url(), 1'000'000, {{"sse_heartbeat_seconds", 3600}});
    test::ServerProcess first(config);
    test::ServerProcess second(config);
    httplib::Client through_second("127.0.0.1", second.port());
    through_second.set_read_timeout(30, 0);
    auto record_avatar = [&](const std::string& key) {
        auto response = through_second.Post("/v1/usage/record",
                                            {{"Authorization", "Bearer " + test::service_key}, {"Idempotency-Key", key}},
                                            R"({"user_id":"vera","operation":"avatar"})", "application/json");
        return response ? response->status : 0;
    };
    {
        ProcessStream stream(first, "vera");
        ASSERT_TRUE(stream.wait_for_events(1)) << "no snapshot on connect: " << stream.text();
        ASSERT_EQ(record_avatar("cross-1"), 200);
        ASSERT_TRUE(stream.wait_for_events(2)) << "the change on the other server never reached the stream: " << stream.text();
        EXPECT_NE(stream.text().find("\"avatars\":{\"limit\":5,\"remaining\":4"), std::string::npos) << stream.text();
        ASSERT_EQ(record_avatar("cross-2"), 200);
        ASSERT_TRUE(stream.wait_for_events(3)) << stream.text();
        EXPECT_NE(stream.text().find("\"avatars\":{\"limit\":5,\"remaining\":3"), std::string::npos) << stream.text();
    }  // stops `first`
    EXPECT_EQ(second.terminate(), 0);
    const auto audit = test::chain_audit::audit_database(database.url(), dir + "/signing.jwk");
    EXPECT_TRUE(audit.ok()) << audit.describe();
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}

}  // namespace
}  // namespace tokenmeter
