// The HTTP edge under the attacks an anonymous client or one free user can
// mount (issue 11), each against a real `tokenmeter serve` process on
// loopback whose memory is read from /proc while it is attacked. Before the
// edge existed each of these stopped the server or grew it by gigabytes.
//
// Where a test bounds time it bounds it loosely (a second for /healthz
// while under attack): it tells a server that answers from one that hangs,
// not a fast server from a slow one; speed is measured by `make bench`.
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <zlib.h>

#include <atomic>
#include <ctime>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "raw_connection.hpp"
#include "server_process.hpp"
#include "test_server.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The largest a loopback socket's buffer grows to (the third number of
// /proc/sys/net/ipv4/tcp_rmem or tcp_wmem); 32 MiB when unreadable.
std::size_t kernel_tcp_buffer_max(const std::string& name) {
    std::ifstream file("/proc/sys/net/ipv4/" + name);
    std::size_t min = 0, initial = 0, max = 0;
    if (file >> min >> initial >> max) return max;
    return std::size_t{32} << 20;
}

// A server process with the given settings on top of a minimal config.
class AttackedServer {
public:
    explicit AttackedServer(const json& settings = json::object()) : dir_(test::make_temp_dir()) {
        (void)keys::generate_signing_key_file(dir_ + "/signing.jwk");
        json config = {{"db", "sqlite:" + dir_ + "/ledger.db"},
                       {"jwt_secret", test::jwt_secret},
                       {"service_keys", {test::service_key}},
                       {"signing_key_file", dir_ + "/signing.jwk"}};
        for (const auto& item : settings.items()) config[item.key()] = item.value();
        std::ofstream(dir_ + "/config.json") << config.dump();
        process_ = std::make_unique<test::ServerProcess>(dir_ + "/config.json");
    }
    ~AttackedServer() {
        process_.reset();
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    int port() const { return process_->port(); }
    const std::string& dir() const { return dir_; }
    test::Memory memory() const { return test::memory_of(process_->pid()); }

    // One GET /healthz on a fresh connection; its status, 0 when none came in `patience`.
    int healthz(milliseconds patience = seconds(1)) const {
        try {
            test::RawConnection connection(port());
            if (!connection.send_all("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", patience)) return 0;
            return test::status_of(connection.read_response(patience));
        } catch (const std::exception&) {
            return 0;
        }
    }

    // A metric's value from /metrics (loopback may read them), or -1.
    std::int64_t metric(const std::string& name) const {
        httplib::Client client("127.0.0.1", port());
        auto response = client.Get("/metrics");
        if (!response) return -1;
        const auto at = response->body.find("\n" + name + " ");
        if (at == std::string::npos) return -1;
        return std::stoll(response->body.substr(at + name.size() + 2));
    }

private:
    std::string dir_;
    std::unique_ptr<test::ServerProcess> process_;
};

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string user_header(const std::string& user, std::int64_t ttl = 3600) {
    return "Authorization: Bearer " + test::mint_user_token(user, now_seconds(), ttl) + "\r\n";
}

// A gzip body that inflates to `inflated` zero bytes.
std::string gzip_bomb(std::size_t inflated) {
    z_stream stream{};
    deflateInit2(&stream, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY);
    const std::string zeros(1 << 20, '\0');
    std::string out;
    char buffer[1 << 16];
    for (std::size_t done = 0; done < inflated; done += zeros.size()) {
        const bool last = done + zeros.size() >= inflated;
        stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zeros.data()));
        stream.avail_in = static_cast<uInt>(zeros.size());
        do {
            stream.next_out = reinterpret_cast<Bytef*>(buffer);
            stream.avail_out = sizeof buffer;
            deflate(&stream, last ? Z_FINISH : Z_NO_FLUSH);
            out.append(buffer, sizeof buffer - stream.avail_out);
        } while (stream.avail_out == 0);
    }
    deflateEnd(&stream);
    return out;
}

constexpr std::int64_t memory_growth_max_kib = 64 * 1024;

TEST(EdgeAttack, CompressedBodiesAreRefusedUnreadAndMemoryStaysFlat) {
    AttackedServer server;
    const std::string bomb = gzip_bomb(std::size_t{256} << 20);  // 256 MiB of zeros in about 250 KB
    ASSERT_LT(bomb.size(), std::size_t{1} << 20);
    const test::Memory before = server.memory();
    std::vector<std::thread> attackers;
    std::atomic<int> refused{0};
    for (int i = 0; i < 4; ++i) {
        attackers.emplace_back([&] {
            test::RawConnection connection(server.port());
            connection.send_all("POST /v1/usage/authorize HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                "Content-Encoding: gzip\r\nContent-Length: " +
                                std::to_string(bomb.size()) + "\r\n\r\n");
            connection.send_all(bomb, seconds(2));
            const std::string response = connection.read_response();
            if (test::status_of(response) == 415 && response.find("unsupported_content_encoding") != std::string::npos) {
                refused += 1;
            }
        });
    }
    for (auto& attacker : attackers) attacker.join();
    EXPECT_EQ(refused.load(), 4);
    EXPECT_LT(server.memory().peak_kib - before.peak_kib, memory_growth_max_kib);
    EXPECT_EQ(server.healthz(), 200);
}

TEST(EdgeAttack, AChunkedBodyPastTheCapIsCutOff) {
    AttackedServer server;
    const test::Memory before = server.memory();
    test::RawConnection connection(server.port());
    ASSERT_TRUE(connection.send_all("POST /v1/usage/record HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                    "Transfer-Encoding: chunked\r\nAuthorization: Bearer " +
                                    test::service_key + "\r\nIdempotency-Key: big\r\n\r\n"));
    const std::string one_mib(1 << 20, 'x');
    const std::string chunk = "100000\r\n" + one_mib + "\r\n";
    std::size_t sent = 0;
    while (sent < (std::size_t{256} << 20) && connection.send_all(chunk, seconds(1))) sent += one_mib.size();
    // The cap is 4 MiB: the server takes a chunked body's raw bytes up to
    // twice that, then drops as much again while it closes, then stops
    // reading. What the client still gets rid of sits in the socket
    // buffers, which Linux grows on loopback up to tcp_rmem's and
    // tcp_wmem's maximum (32 MiB and 4 MiB here): never near the 256 MiB on offer.
    const std::size_t buffers = kernel_tcp_buffer_max("tcp_rmem") + kernel_tcp_buffer_max("tcp_wmem");
    EXPECT_LT(sent, 2 * (std::size_t{9} << 20) + buffers + (std::size_t{4} << 20));
    const std::string response = connection.read_response();
    EXPECT_EQ(test::status_of(response), 413) << response.substr(0, 200);
    EXPECT_LT(server.memory().peak_kib - before.peak_kib, memory_growth_max_kib);
    EXPECT_EQ(server.healthz(), 200);
}

TEST(EdgeAttack, TenMillionHeadersAreRefusedAtTheHeadCap) {
    AttackedServer server;
    const test::Memory before = server.memory();
    test::RawConnection connection(server.port());
    ASSERT_TRUE(connection.send_all("GET /healthz HTTP/1.1\r\nHost: t\r\n"));
    std::string batch;
    for (int i = 0; i < 10000; ++i) batch += "X-A: b\r\n";
    std::size_t headers = 0;
    while (headers < 10'000'000 && connection.send_all(batch, seconds(1))) headers += 10000;
    // Refused at the 16 KiB head cap; after its answer the server drops at
    // most a few MiB more before it stops reading, so the flood stalls far
    // short of ten million.
    EXPECT_LT(headers, std::size_t{5'000'000});
    const std::string response = connection.read_response();
    EXPECT_EQ(test::status_of(response), 431) << response.substr(0, 200);
    EXPECT_LT(server.memory().peak_kib - before.peak_kib, memory_growth_max_kib);
}

TEST(EdgeAttack, SlowlorisNeitherStopsOthersNorLastsPastTheHeadDeadline) {
    AttackedServer server(json::object({{"http_request_timeout_ms", 3000}}));
    std::vector<test::RawConnection> slow;
    for (int i = 0; i < 150; ++i) slow.emplace_back(server.port());
    const std::string head = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    // Two seconds of one byte per connection every 100 ms; meanwhile other
    // clients are answered, each within a second.
    int answered = 0;
    for (std::size_t step = 0; step < 20; ++step) {
        for (auto& connection : slow) connection.send_all(head.substr(step, 1));
        if (step % 4 == 0) answered += server.healthz() == 200 ? 1 : 0;
        std::this_thread::sleep_for(milliseconds(100));
    }
    EXPECT_EQ(answered, 5);
    // The heads never complete: each is cut at the deadline (3 s from its
    // first byte) with 408, while the client is still sending.
    int cut = 0;
    for (auto& connection : slow) {
        const std::string response = connection.read_response(seconds(5));
        cut += test::status_of(response) == 408 ? 1 : 0;
    }
    EXPECT_EQ(cut, 150);
    EXPECT_EQ(server.healthz(), 200);
}

// Opens a usage stream; the raw bytes received within `patience` (the
// headers and, when admitted, the first event).
std::string open_stream(test::RawConnection& connection, const std::string& user, milliseconds patience,
                        std::int64_t ttl = 3600) {
    connection.send_all("GET /v1/me/usage/stream HTTP/1.1\r\nHost: t\r\n" + user_header(user, ttl) + "\r\n");
    return connection.read_until(
        [](const std::string& r) {
            return (r.find("\r\n\r\n") != std::string::npos && r.rfind("HTTP/1.1 200", 0) != 0 &&
                    test::RawConnection::response_complete(r)) ||
                   r.find("\n\n", r.find("event: usage")) != std::string::npos;
        },
        patience);
}

TEST(EdgeAttack, StreamsOfOneUserAreCappedAndEveryoneElseIsServed) {
    test::raise_descriptor_limit();
    AttackedServer server(json::object({{"streams_per_user_max", 8}, {"rate_limit_user_per_second", 1000}, {"rate_limit_user_burst", 1000}}));
    std::vector<test::RawConnection> streams;
    int admitted = 0;
    int refused = 0;
    for (int i = 0; i < 300; ++i) {
        streams.emplace_back(server.port());
        const std::string received = open_stream(streams.back(), "greedy", seconds(5));
        if (received.rfind("HTTP/1.1 200", 0) == 0 && received.find("event: usage") != std::string::npos) admitted += 1;
        if (test::status_of(received) == 429 && !test::header_of(received, "Retry-After").empty()) refused += 1;
    }
    EXPECT_EQ(admitted, 8);
    EXPECT_EQ(refused, 292);
    EXPECT_EQ(server.healthz(), 200);
    // Another user still gets a stream.
    test::RawConnection other(server.port());
    EXPECT_NE(open_stream(other, "someone-else", seconds(5)).find("event: usage"), std::string::npos);
    // A stream ends as soon as its client goes: nothing waits for a heartbeat.
    EXPECT_EQ(server.metric("tokenmeter_live_streams"), 9);
    streams.clear();
    std::int64_t open = -1;
    for (int i = 0; i < 50 && open != 1; ++i) {
        std::this_thread::sleep_for(milliseconds(20));
        open = server.metric("tokenmeter_live_streams");
    }
    EXPECT_EQ(open, 1);
}

TEST(EdgeAttack, TwoThousandIdleConnectionsStarveNobody) {
    test::raise_descriptor_limit();
    AttackedServer server(json::object({{"http_idle_timeout_ms", 60000}}));
    std::vector<test::RawConnection> idle;
    for (int i = 0; i < 2000; ++i) {
        idle.emplace_back(server.port());
        // A request, then silence: an idle keep-alive connection.
        if (i % 10 == 0) {
            idle.back().send_all("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
            ASSERT_EQ(test::status_of(idle.back().read_response()), 200);
        }
    }
    EXPECT_EQ(server.healthz(), 200);
    // 500 honest clients at once: every one answered, none left waiting.
    std::atomic<int> ok{0};
    std::vector<std::thread> honest;
    for (int i = 0; i < 500; ++i) {
        honest.emplace_back([&] { ok += server.healthz(seconds(5)) == 200 ? 1 : 0; });
    }
    for (auto& client : honest) client.join();
    EXPECT_EQ(ok.load(), 500);
    EXPECT_GE(server.metric("tokenmeter_http_connections"), 2000);
}

TEST(EdgeAttack, AtTheConnectionLimitTheLongestIdleMakeRoom) {
    AttackedServer server(json::object({{"http_connections_max", 64}, {"http_idle_timeout_ms", 60000}}));
    std::vector<test::RawConnection> idle;
    for (int i = 0; i < 64; ++i) {
        idle.emplace_back(server.port());
        idle.back().send_all("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        ASSERT_EQ(test::status_of(idle.back().read_response()), 200);
    }
    // New clients are served; idle connections were closed to make room.
    for (int i = 0; i < 8; ++i) EXPECT_EQ(server.healthz(), 200);
    int closed = 0;
    for (auto& connection : idle) closed += connection.closed_by_server(milliseconds(20)) ? 1 : 0;
    EXPECT_GE(closed, 1);
    EXPECT_GE(server.metric("tokenmeter_http_evicted_total"), 1);
}

TEST(EdgeAttack, AThousandUsersEachWithAStreamAreAllServed) {
    test::raise_descriptor_limit();
    AttackedServer server;
    std::vector<test::RawConnection> streams;
    int open = 0;
    for (int i = 0; i < 1000; ++i) {
        streams.emplace_back(server.port());
        const std::string received = open_stream(streams.back(), "user-" + std::to_string(i), seconds(10));
        open += received.find("event: usage") != std::string::npos ? 1 : 0;
    }
    EXPECT_EQ(open, 1000);
    EXPECT_EQ(server.metric("tokenmeter_live_streams"), 1000);
    EXPECT_EQ(server.healthz(), 200);
    // A change for any of them reaches that user's stream, and only theirs.
    httplib::Client client("127.0.0.1", server.port());
    for (int i = 0; i < 1000; i += 97) {
        const json body = {{"user_id", "user-" + std::to_string(i)}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                           {"input_tokens", 1000 + i}, {"output_tokens", 0}};
        auto recorded = client.Post("/v1/usage/record",
                                    {{"Authorization", "Bearer " + test::service_key}, {"Idempotency-Key", "k" + std::to_string(i)}},
                                    body.dump(), "application/json");
        ASSERT_TRUE(recorded);
        ASSERT_EQ(recorded->status, 200);
        const std::string used = "\"used\":" + std::to_string(1000 + i);
        const std::string update =
            streams[static_cast<std::size_t>(i)].read_until([&](const std::string& r) { return r.find(used) != std::string::npos; }, seconds(5));
        EXPECT_NE(update.find(used), std::string::npos) << "user-" << i;
    }
    const std::string quiet = streams[1].read_until([](const std::string& r) { return r.find("event: usage") != std::string::npos; },
                                                    milliseconds(300));
    EXPECT_EQ(quiet.find("event: usage"), std::string::npos);
}

TEST(EdgeAttack, AStreamEndsWhenItsTokenExpires) {
    AttackedServer server;
    test::RawConnection connection(server.port());
    // The server allows 30 s of clock leeway on exp; a token that expires in
    // 2 s (+ leeway) still opens a stream, which must end at its exp.
    const std::string first = open_stream(connection, "brief", seconds(5), 2);
    ASSERT_NE(first.find("event: usage"), std::string::npos) << first;
    const std::string rest = connection.read_until(
        [](const std::string& r) { return r.find("0\r\n\r\n") != std::string::npos; }, seconds(10));
    EXPECT_NE(rest.find("0\r\n\r\n"), std::string::npos);  // a clean end of the chunked body
    EXPECT_TRUE(connection.closed_by_server(seconds(3)));
}

TEST(EdgeAttack, AFullQueueIsAnswered503WithRetryAfter) {
    AttackedServer server(json::object({{"http_threads", 1}, {"http_queue_max", 1}}));
    ASSERT_EQ(server.healthz(), 200);  // the database exists
    // Another process holds the database's write lock: a ledger request
    // holds the only worker until the store's busy timeout (2 s), the next
    // one waits in the only queue slot, and a third finds no room.
    sqlite3* other = nullptr;
    ASSERT_EQ(sqlite3_open((server.dir() + "/ledger.db").c_str(), &other), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
    auto ledger_request = [&](const std::string& key) {
        auto connection = std::make_unique<test::RawConnection>(server.port());
        const std::string body = R"({"user_id":"q","operation":"avatar"})";
        connection->send_all("POST /v1/usage/record HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + test::service_key +
                             "\r\nIdempotency-Key: " + key + "\r\nContent-Length: " + std::to_string(body.size()) +
                             "\r\n\r\n" + body);
        return connection;
    };
    auto first = ledger_request("a");
    std::this_thread::sleep_for(milliseconds(300));  // taken by the worker
    auto second = ledger_request("b");
    std::this_thread::sleep_for(milliseconds(300));  // queued
    test::RawConnection third(server.port());
    third.send_all("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    const std::string response = third.read_response();
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);
    EXPECT_EQ(test::status_of(response), 503) << response;
    EXPECT_EQ(test::header_of(response, "Retry-After"), "1");
    EXPECT_NE(response.find("overloaded"), std::string::npos);
    // The two that got in are answered, and the server serves again.
    EXPECT_NE(test::status_of(first->read_response(seconds(10))), 0);
    EXPECT_NE(test::status_of(second->read_response(seconds(10))), 0);
    EXPECT_EQ(server.healthz(), 200);
    EXPECT_GE(server.metric("tokenmeter_http_overloaded_total"), 1);
}

TEST(EdgeAttack, MalformedFramingIsRefusedFromTheHead) {
    AttackedServer server;
    struct Case {
        const char* head;
        int status;
    };
    const Case cases[] = {
        {"POST /v1/usage/record HTTP/1.1\r\nHost: t\r\nContent-Length: 1e19\r\n\r\n", 400},
        {"POST /v1/usage/record HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000000000\r\n\r\n", 413},
        {"POST /v1/usage/record HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
        {"POST /v1/usage/record HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"POST /v1/usage/record HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"GET /healthz HTTP/2.0\r\nHost: t\r\n\r\n", 505},
        {"GET /healthz HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n", 400},
        {"GET /healthz HTTP/1.1\nHost: t\n\n", 400},
        {"GET /app.js%00.html HTTP/1.1\r\nHost: t\r\n\r\n", 400},
    };
    for (const Case& c : cases) {
        test::RawConnection connection(server.port());
        connection.send_all(c.head);
        const std::string response = connection.read_response();
        EXPECT_EQ(test::status_of(response), c.status) << c.head;
        EXPECT_EQ(test::header_of(response, "X-Content-Type-Options"), "nosniff") << c.head;
    }
}

TEST(EdgeAttack, PipelinedRequestsAreAllAnswered) {
    AttackedServer server;
    test::RawConnection connection(server.port());
    connection.send_all("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /v1/keys HTTP/1.1\r\nHost: t\r\n\r\n"
                        "GET /v1/catalog HTTP/1.1\r\nHost: t\r\n\r\n");
    const std::string all = connection.read_until(
        [](const std::string& r) {
            std::size_t count = 0;
            for (auto at = r.find("HTTP/1.1 200"); at != std::string::npos; at = r.find("HTTP/1.1 200", at + 1)) ++count;
            return count == 3 && r.find("\"plans\"") != std::string::npos;
        },
        seconds(5));
    const auto keys = all.find("\"keys\"");
    const auto plans = all.find("\"plans\"");
    ASSERT_NE(keys, std::string::npos) << all.substr(0, 300);
    ASSERT_NE(plans, std::string::npos) << all.substr(0, 300);
    EXPECT_LT(keys, plans);  // in order
}

TEST(EdgeAttack, RateLimitsRefuseAndRecover) {
    AttackedServer server(json::object({{"rate_limit_user_per_second", 1},
                           {"rate_limit_user_burst", 3},
                           {"rate_limit_address_per_second", 1},
                           {"rate_limit_address_burst", 3},
                           {"rate_limit_service_per_second", 1},
                           {"rate_limit_service_burst", 3}}));
    httplib::Client client("127.0.0.1", server.port());
    const httplib::Headers user = {{"Authorization", "Bearer " + test::mint_user_token("limited", now_seconds())}};
    const httplib::Headers service = {{"Authorization", "Bearer " + test::service_key}};
    struct Route {
        const char* scope;
        const char* path;
        httplib::Headers headers;
    };
    for (const Route& route : {Route{"user", "/v1/me/usage", user}, Route{"address", "/v1/keys", {}},
                               Route{"service", "/v1/users/someone/usage", service}}) {
        // The burst is allowed; a refusal follows within a few more (the
        // bucket refills one a second, however slow this machine is).
        const auto start = std::chrono::steady_clock::now();
        int allowed = 0;
        httplib::Result refused;
        for (int i = 0; i < 50; ++i) {
            auto response = client.Get(route.path, route.headers);
            ASSERT_TRUE(response);
            if (response->status == 429) {
                refused = std::move(response);
                break;
            }
            EXPECT_EQ(response->status, 200) << route.scope;
            allowed += 1;
        }
        const auto elapsed = std::chrono::duration_cast<seconds>(std::chrono::steady_clock::now() - start).count();
        ASSERT_TRUE(refused) << route.scope;
        EXPECT_GE(allowed, 3) << route.scope;
        EXPECT_LE(allowed, 3 + elapsed + 1) << route.scope;
        EXPECT_EQ(refused->get_header_value("Retry-After"), "1") << route.scope;
        EXPECT_NE(refused->body.find("rate_limited"), std::string::npos) << route.scope;
        // After the wait it was told, the caller is served again.
        std::this_thread::sleep_for(milliseconds(1100));
        auto again = client.Get(route.path, route.headers);
        ASSERT_TRUE(again);
        EXPECT_EQ(again->status, 200) << route.scope;
    }
    // Liveness is never rate limited.
    for (int i = 0; i < 20; ++i) EXPECT_EQ(server.healthz(), 200);
    httplib::Client metrics("127.0.0.1", server.port());
    const std::string text = metrics.Get("/metrics")->body;
    for (const char* scope : {"user", "service", "address"}) {
        const std::string line = std::string("tokenmeter_rate_limited_total{scope=\"") + scope + "\"} ";
        const auto at = text.find(line);
        ASSERT_NE(at, std::string::npos) << scope;
        EXPECT_GE(std::stoll(text.substr(at + line.size())), 1) << scope;
    }
}

TEST(EdgeAttack, FailedCredentialsCountAgainstTheAddress) {
    AttackedServer server(json::object({{"rate_limit_address_per_second", 1}, {"rate_limit_address_burst", 5}}));
    httplib::Client client("127.0.0.1", server.port());
    int unauthorized = 0;
    int limited = 0;
    for (int i = 0; i < 30 && limited == 0; ++i) {
        auto response = client.Get("/v1/me/usage", {{"Authorization", "Bearer guess." + std::to_string(i) + ".x"}});
        ASSERT_TRUE(response);
        unauthorized += response->status == 401 ? 1 : 0;
        limited += response->status == 429 ? 1 : 0;
    }
    EXPECT_GE(unauthorized, 5);
    EXPECT_EQ(limited, 1);
}

TEST(EdgeAttack, TheWebRootServesOnlyRegularFilesBeneathIt) {
    const std::string root = test::make_temp_dir();
    std::filesystem::create_directories(root + "/assets");
    std::ofstream(root + "/index.html") << "<!doctype html><title>demo</title>";
    std::ofstream(root + "/app.js") << "console.log(1)";
    std::ofstream(root + "/assets/index-BxY3k1aZ.js") << "export {}";
    std::ofstream(root + "/assets/tokenmeter.wasm") << "\0asm";
    std::ofstream(root + "/o200k_base.tmbpe") << "ranks";
    std::ofstream(root + "/o200k_base.tmbpe.gz") << "gzipped ranks";
    std::ofstream(root + "/.env") << "SECRET=1";
    std::filesystem::create_symlink("/etc/passwd", root + "/passwd.txt");
    std::filesystem::create_directory_symlink("/etc", root + "/etc");
    AttackedServer server(json::object({{"web_root", root}}));
    httplib::Client client("127.0.0.1", server.port());
    client.set_decompress(false);
    struct Case {
        const char* path;
        int status;
        const char* type;
    };
    const Case cases[] = {
        {"/", 200, "text/html; charset=utf-8"},
        {"/app.js", 200, "text/javascript; charset=utf-8"},
        {"/assets/tokenmeter.wasm", 200, "application/wasm"},
        {"/o200k_base.tmbpe", 200, "application/octet-stream"},
        {"/passwd.txt", 404, nullptr},
        {"/etc/passwd", 404, nullptr},
        {"/.env", 404, nullptr},
        {"/../../etc/passwd", 404, nullptr},
        {"/assets/..%2f..%2fetc/passwd", 404, nullptr},
        {"/v1/nothing", 404, nullptr},
    };
    for (const Case& c : cases) {
        auto response = client.Get(c.path);
        ASSERT_TRUE(response) << c.path;
        EXPECT_EQ(response->status, c.status) << c.path;
        EXPECT_EQ(response->get_header_value("X-Content-Type-Options"), "nosniff") << c.path;
        if (c.type != nullptr) {
            EXPECT_EQ(response->get_header_value("Content-Type"), c.type) << c.path;
        }
        EXPECT_EQ(response->body.find("root:"), std::string::npos) << c.path;
    }
    // Content-hashed assets are cached for good; other files revalidate.
    EXPECT_EQ(client.Get("/assets/index-BxY3k1aZ.js")->get_header_value("Cache-Control"), "public, max-age=31536000, immutable");
    auto index = client.Get("/");
    EXPECT_EQ(index->get_header_value("Cache-Control"), "no-cache");
    auto again = client.Get("/", {{"If-None-Match", index->get_header_value("ETag")}});
    EXPECT_EQ(again->status, 304);
    // A precompressed sibling goes to a client that accepts it, and only then.
    auto gzipped = client.Get("/o200k_base.tmbpe", {{"Accept-Encoding", "gzip"}});
    EXPECT_EQ(gzipped->get_header_value("Content-Encoding"), "gzip");
    auto refused = client.Get("/o200k_base.tmbpe", {{"Accept-Encoding", "gzip;q=0"}});
    EXPECT_EQ(refused->get_header_value("Content-Encoding"), "");
    std::error_code ignored;
    std::filesystem::remove_all(root, ignored);
}

}  // namespace
}  // namespace tokenmeter
