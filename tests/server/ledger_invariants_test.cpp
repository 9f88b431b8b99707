// The ledger's invariants under concurrency (DESIGN.md §5): I4 (no
// overspend), idempotency (one effect per key), I1 (used equals the sum of
// charges), and failing closed when storage fails.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <atomic>
#include <random>
#include <thread>

#include "test_server.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::body_of;
using test::TestServer;

TEST(Invariants, ConcurrentReservationsNeverOverspend) {
    constexpr int threads = 32;
    constexpr int per_thread = 250;
    // Sizes are drawn up front so the total demand is known: the limit is a
    // quarter of it.
    std::mt19937 random(4);
    std::vector<std::vector<std::int64_t>> sizes(threads);
    std::int64_t demand = 0;
    for (auto& list : sizes) {
        for (int i = 0; i < per_thread; ++i) {
            list.push_back(1 + static_cast<std::int64_t>(random() % 400));
            demand += list.back();
        }
    }
    const std::int64_t limit = demand / 4;
    test::TestServerOptions options;
    options.catalog_json = test::catalog_with_free_limit(limit);
    TestServer server(options);
    std::atomic<std::int64_t> granted{0};
    std::atomic<int> granted_count{0};
    std::atomic<int> wrong_refusals{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> workers;
    // Failures are counted; the first few also say why, so a red run is diagnosable.
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            auto client = server.client();
            for (int i = 0; i < per_thread; ++i) {
                const std::int64_t size = sizes[static_cast<std::size_t>(t)][static_cast<std::size_t>(i)];
                const json body = {{"user_id", "hot"}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                                   {"input_tokens", size}, {"max_output_tokens", 0}};
                auto response = client.Post("/v1/usage/authorize",
                                            server.as_service("c-" + std::to_string(t) + "-" + std::to_string(i)),
                                            body.dump(), "application/json");
                if (!response) {
                    if (failures++ < 5) std::cerr << "request failed (transport): " << httplib::to_string(response.error()) << "\n";
                    continue;
                }
                const json reply = body_of(response);
                if (response->status == 200) {
                    granted += size;
                    granted_count += 1;
                } else if (response->status == 402) {
                    // A refusal is right only if what was left could not cover it.
                    if (reply["error"]["remaining"].get<std::int64_t>() >= size) wrong_refusals += 1;
                } else {
                    if (failures++ < 5) std::cerr << "request failed: " << response->status << " " << response->body << "\n";
                }
            }
        });
    }
    for (auto& worker : workers) worker.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(wrong_refusals.load(), 0) << "refused while headroom was enough";
    EXPECT_LE(granted.load(), limit) << "overspend";
    const json usage = server.usage_of("hot");
    EXPECT_EQ(usage["tokens"]["reserved"], granted.load());
    EXPECT_LE(usage["tokens"]["reserved"].get<std::int64_t>(), limit);
    // Nearly full: what is left is smaller than the largest request.
    EXPECT_LT(usage["tokens"]["remaining"].get<std::int64_t>(), 400);
    std::cout << "granted " << granted_count.load() << " of " << threads * per_thread << " reservations, "
              << granted.load() << " of limit " << limit << " tokens\n";
}

TEST(Invariants, ConcurrentRetriesOfOneKeyHaveExactlyOneEffect) {
    TestServer server;
    constexpr int keys = 200;
    constexpr int copies = 50;
    std::atomic<int> ok{0};
    std::atomic<int> in_flight{0};
    std::atomic<int> other{0};
    std::vector<std::string> first_bodies(keys);
    std::mutex bodies_mutex;
    std::atomic<int> mismatched{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < 25; ++w) {
        workers.emplace_back([&, w] {
            auto client = server.client();
            for (int k = 0; k < keys; ++k) {
                for (int c = w; c < copies; c += 25) {
                    const json body = {{"user_id", "u" + std::to_string(k % 20)}, {"operation", "chat"},
                                       {"model", "gpt-4o-mini"}, {"input_tokens", 10 + k}, {"output_tokens", 1}};
                    auto response = client.Post("/v1/usage/record", server.as_service("idem-" + std::to_string(k)),
                                                body.dump(), "application/json");
                    if (!response) {
                        if (other++ < 5) std::cerr << "request failed (transport): " << httplib::to_string(response.error()) << "\n";
                    } else if (response->status == 200) {
                        ok += 1;
                        std::lock_guard<std::mutex> guard(bodies_mutex);
                        auto& first = first_bodies[static_cast<std::size_t>(k)];
                        if (first.empty()) first = response->body;
                        else if (first != response->body) mismatched += 1;
                    } else if (response->status == 409) {
                        in_flight += 1;
                    } else {
                        if (other++ < 5) std::cerr << "request failed: " << response->status << " " << response->body << "\n";
                    }
                }
            }
        });
    }
    for (auto& worker : workers) worker.join();
    EXPECT_EQ(other.load(), 0);
    EXPECT_EQ(mismatched.load(), 0) << "a replay answered differently from the first response";
    EXPECT_EQ(ok.load() + in_flight.load(), keys * copies);
    std::int64_t events = 0;
    std::int64_t used = 0;
    for (int u = 0; u < 20; ++u) {
        auto rows = server.app().store().read_events("u" + std::to_string(u), 0, 1000);
        events += static_cast<std::int64_t>(rows.size());
        for (const auto& row : rows) used += row.charged_tokens;
        // I1: the balance is the sum of the charges.
        std::int64_t sum = 0;
        for (const auto& row : rows) sum += row.charged_tokens;
        EXPECT_EQ(server.usage_of("u" + std::to_string(u))["tokens"]["used"], sum);
    }
    EXPECT_EQ(events, keys) << "exactly one effect per key";
    std::int64_t expected = 0;
    for (int k = 0; k < keys; ++k) expected += 10 + k + 1;
    EXPECT_EQ(used, expected);
}

TEST(Invariants, IdempotencyReplaysRefusesReuseAndIsScopedPerCaller) {
    TestServer server;
    auto client = server.client();
    const std::string body = R"({"user_id":"oscar","operation":"avatar"})";
    auto first = client.Post("/v1/usage/record", server.as_service("same"), body, "application/json");
    auto replay = client.Post("/v1/usage/record", server.as_service("same"), body, "application/json");
    ASSERT_EQ(first->status, 200);
    EXPECT_EQ(replay->status, 200);
    EXPECT_EQ(replay->body, first->body);
    auto reused = client.Post("/v1/usage/record", server.as_service("same"), R"({"user_id":"oscar","operation":"chat","model":"gpt-4o","input_tokens":1})", "application/json");
    EXPECT_EQ(reused->status, 422);
    EXPECT_EQ(body_of(reused)["error"]["code"], "idempotency_key_reused");
    // A refusal is remembered too: the same request gets the same answer.
    for (int i = 0; i < 4; ++i) ASSERT_EQ(server.post("/v1/usage/record", json::parse(body))->status, 200);
    auto refused = client.Post("/v1/usage/record", server.as_service("sixth"), body, "application/json");
    EXPECT_EQ(refused->status, 402);
    auto refused_again = client.Post("/v1/usage/record", server.as_service("sixth"), body, "application/json");
    EXPECT_EQ(refused_again->status, 402);
    EXPECT_EQ(refused_again->body, refused->body);
    EXPECT_EQ(server.usage_of("oscar")["avatars"]["used"], 5);
}

TEST(Invariants, StorageFailureFailsClosed) {
    TestServer server;
    ASSERT_EQ(server.post("/v1/usage/record", {{"user_id", "paul"}, {"operation", "avatar"}})->status, 200);
    const json before = server.usage_of("paul");
    // Another process holds the database's write lock past the busy timeout.
    sqlite3* other = nullptr;
    ASSERT_EQ(sqlite3_open((server.dir() + "/ledger.db").c_str(), &other), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
    auto blocked = server.post("/v1/usage/authorize", {{"user_id", "paul"}, {"operation", "chat"}, {"model", "gpt-4o"},
                                                      {"input_tokens", 10}});
    ASSERT_TRUE(blocked);
    EXPECT_EQ(blocked->status, 503);
    EXPECT_EQ(body_of(blocked)["error"]["code"], "storage_unavailable");
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);
    const json after = server.usage_of("paul");
    EXPECT_EQ(after["receipt"], before["receipt"]) << "nothing was half-applied";
    EXPECT_EQ(server.post("/v1/usage/authorize", {{"user_id", "paul"}, {"operation", "chat"}, {"model", "gpt-4o"},
                                                  {"input_tokens", 10}})->status, 200);
}

}  // namespace
}  // namespace tokenmeter
