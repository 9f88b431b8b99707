// SIGTERM is a graceful stop: requests already being served finish with
// their answer, live streams end with a clean chunked close (not a reset),
// and the process exits 0 promptly. Nothing a client was told is lost, and
// the receipt chain walks from the file unbroken across the restart (I5).
#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <fstream>
#include <mutex>
#include <thread>

#include "chain_audit.hpp"
#include "server_process.hpp"
#include "test_server.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;

std::string write_shutdown_config(const std::string& dir) {
    (void)keys::generate_signing_key_file(dir + "/signing.jwk");
    const json config = {{"db", "sqlite:" + dir + "/ledger.db"},
                         {"jwt_secret", test::jwt_secret},
                         {"service_keys", {test::service_key}},
                         {"signing_key_file", dir + "/signing.jwk"},
                         // The stream's only timer an hour away: a stop that
                         // did not wake the stream would wait for it, past
                         // terminate()'s patience.
                         {"sse_heartbeat_seconds", 3600}};
    std::ofstream(dir + "/config.json") << config.dump();
    return dir + "/config.json";
}

json record_body(int i) {
    return {{"user_id", "drain"}, {"operation", "chat"}, {"model", "gpt-4o-mini"}, {"input_tokens", 1 + i % 50},
            {"output_tokens", 0}};
}

httplib::Result record(int port, int i) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(1, 0);
    client.set_read_timeout(10, 0);
    return client.Post("/v1/usage/record",
                       {{"Authorization", "Bearer " + test::service_key}, {"Idempotency-Key", "drain-" + std::to_string(i)}},
                       record_body(i).dump(), "application/json");
}

TEST(Shutdown, SigtermFinishesInFlightRequestsAndClosesStreamsCleanly) {
    const std::string dir = test::make_temp_dir();
    const std::string config = write_shutdown_config(dir);
    auto server = std::make_unique<test::ServerProcess>(config);
    const int port = server->port();

    // A live stream of the user the load charges.
    std::mutex stream_mutex;
    std::string streamed;
    std::atomic<bool> stream_ended_cleanly{false};
    std::thread stream([&] {
        httplib::Client client("127.0.0.1", port);
        client.set_read_timeout(30, 0);
        const httplib::Headers headers = {
            {"Authorization", "Bearer " + test::mint_user_token("drain", static_cast<std::int64_t>(std::time(nullptr)))}};
        auto result = client.Get("/v1/me/usage/stream", headers, [&](const char* data, std::size_t size) {
            std::lock_guard<std::mutex> guard(stream_mutex);
            streamed.append(data, size);
            return true;
        });
        // httplib reports success only when the chunked body ended with its terminator.
        stream_ended_cleanly = static_cast<bool>(result) && result->status == 200;
    });

    // Load from 8 clients until the server stops listening.
    std::atomic<int> next{0};
    std::atomic<int> answered{0};
    std::atomic<int> not_ok{0};
    std::mutex unanswered_mutex;
    std::vector<int> unanswered;
    std::atomic<bool> stopping{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < 8; ++c) {
        clients.emplace_back([&] {
            while (true) {
                const int i = next++;
                auto result = record(port, i);
                if (result) {
                    answered += 1;
                    if (result->status != 200) not_ok += 1;
                    continue;
                }
                std::lock_guard<std::mutex> guard(unanswered_mutex);
                unanswered.push_back(i);
                if (stopping) return;
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    stopping = true;
    // The patience is for a hang only (a graceful stop takes well under a
    // second); a stop that waited for the stream's heartbeat (an hour, see
    // the config) or for the load to end runs out of it.
    EXPECT_EQ(server->terminate(std::chrono::seconds(60)), 0) << "SIGTERM did not end the process promptly with status 0";
    for (auto& c : clients) c.join();
    stream.join();

    EXPECT_GT(answered.load(), 0);
    EXPECT_EQ(not_ok.load(), 0) << "a request in flight at SIGTERM was answered with an error";
    EXPECT_TRUE(stream_ended_cleanly.load()) << "the live stream was cut instead of closed";
    {
        std::lock_guard<std::mutex> guard(stream_mutex);
        EXPECT_NE(streamed.find("event: usage"), std::string::npos) << streamed.substr(0, 200);
    }

    // After a restart, retrying what saw no answer completes the picture: the
    // balance is exactly the sum of every request, each applied once.
    server = std::make_unique<test::ServerProcess>(config);
    for (int i : unanswered) {
        auto result = record(server->port(), i);
        ASSERT_TRUE(result);
        ASSERT_EQ(result->status, 200) << result->body;
    }
    std::int64_t expected = 0;
    for (int i = 0; i < next.load(); ++i) expected += record_body(i)["input_tokens"].get<std::int64_t>();
    httplib::Client client("127.0.0.1", server->port());
    auto usage = client.Get("/v1/users/drain/usage", {{"Authorization", "Bearer " + test::service_key}});
    ASSERT_TRUE(usage);
    ASSERT_EQ(usage->status, 200) << usage->body;
    EXPECT_EQ(json::parse(usage->body)["tokens"]["used"].get<std::int64_t>(), expected);
    EXPECT_EQ(server->terminate(), 0);
    const auto chains = test::chain_audit::audit_database("sqlite:" + dir + "/ledger.db", dir + "/signing.jwk");
    EXPECT_TRUE(chains.ok()) << chains.describe();
    EXPECT_EQ(chains.charges, next.load()) << "one charge per request";
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}

}  // namespace
}  // namespace tokenmeter
