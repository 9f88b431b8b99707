// Idempotency over HTTP (DESIGN.md §5), on SQLite and on PostgreSQL: a key
// is its caller's own (two service keys using one Idempotency-Key get two
// effects, each replaying its own answer); a repeat while the first is in
// flight is 409 idempotency_in_flight; a replay almost a day later is the
// first answer byte for byte, for a change and for a refusal; a different
// body under a used key is 422 idempotency_key_reused.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "chain_audit.hpp"
#include "test_server.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::body_of;
using test::TestServer;

struct Answer {
    int status = 0;  // 0: no answer
    std::string body;
};

Answer post_as(const TestServer& server, const std::string& service_key, const std::string& idempotency_key,
               const std::string& path, const json& body) {
    auto client = server.client();
    auto response = client.Post(path, server.as_service_key(service_key, idempotency_key), body.dump(), "application/json");
    if (!response) return {};
    return {response->status, response->body};
}

std::string error_code(const Answer& answer) {
    const json body = json::parse(answer.body, nullptr, false);
    return body.is_object() && body.contains("error") ? body["error"].value("code", "") : "";
}

void expect_chains_intact(const TestServer& server) {
    const auto report = test::chain_audit::audit_database(server.db(), server.signing_key_file());
    EXPECT_TRUE(report.ok()) << report.describe();
}

test::TestServerOptions with_two_service_keys() {
    test::TestServerOptions options;
    options.extra_service_keys = {test::other_service_key};
    return options;
}

TEST(IdempotencyHttp, TwoServiceKeysUsingOneKeyGetIndependentEffects) {
    TestServer server(with_two_service_keys());
    const json charge = {{"user_id", "quinn"}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                         {"input_tokens", 100}, {"output_tokens", 20}};
    const Answer first = post_as(server, test::service_key, "shared", "/v1/usage/record", charge);
    const Answer second = post_as(server, test::other_service_key, "shared", "/v1/usage/record", charge);
    ASSERT_EQ(first.status, 200) << first.body;
    ASSERT_EQ(second.status, 200) << "the other caller's key was taken for a replay: " << second.body;
    const json first_id = json::parse(first.body)["event"]["id"];
    ASSERT_TRUE(first_id.is_string()) << first.body;
    EXPECT_NE(first_id, json::parse(second.body)["event"]["id"]) << "one event for two callers";
    EXPECT_EQ(json::parse(second.body)["usage"]["tokens"]["used"], 240) << "two charges, not one";
    // Each caller's repeat replays its own first answer, byte for byte.
    const Answer first_again = post_as(server, test::service_key, "shared", "/v1/usage/record", charge);
    const Answer second_again = post_as(server, test::other_service_key, "shared", "/v1/usage/record", charge);
    EXPECT_EQ(first_again.status, 200);
    EXPECT_EQ(first_again.body, first.body);
    EXPECT_EQ(second_again.status, 200);
    EXPECT_EQ(second_again.body, second.body);
    EXPECT_EQ(server.usage_of("quinn")["tokens"]["used"], 240) << "the replays charged nothing";

    // The body a key is bound to is its caller's too: each caller's first
    // request under "bound" is its own, and only a caller's own key is reused.
    const json small = {{"user_id", "quinn"}, {"operation", "avatar"}};
    EXPECT_EQ(post_as(server, test::service_key, "bound", "/v1/usage/record", charge).status, 200);
    EXPECT_EQ(post_as(server, test::other_service_key, "bound", "/v1/usage/record", small).status, 200);
    const Answer reused = post_as(server, test::service_key, "bound", "/v1/usage/record", small);
    EXPECT_EQ(reused.status, 422);
    EXPECT_EQ(error_code(reused), "idempotency_key_reused");
    const json usage = server.usage_of("quinn");
    EXPECT_EQ(usage["tokens"]["used"], 240 + 120 + 10000);
    EXPECT_EQ(usage["avatars"]["used"], 1);
    EXPECT_EQ(server.app().store().read_events("quinn", 0, 100).size(), 4U);
    expect_chains_intact(server);
}

// Holds the ledger's writer thread inside a job until released, so a request
// submitted meanwhile is in flight for as long as the test wants, on either
// store: claimed, looked up, queued, and not answered.
class WriterHold {
public:
    explicit WriterHold(TestServer& server) {
        auto entered = std::make_shared<std::promise<void>>();
        std::future<void> inside = entered->get_future();
        std::shared_future<void> released = release_.get_future().share();
        holder_ = std::thread([&server, entered, released] {
            server.app().ledger().run_job([entered, released](ledger::JobContext&) {
                entered->set_value();
                released.wait();
                return ledger::JobOutcome{200, ""};
            });
        });
        inside.wait();
    }
    ~WriterHold() { release(); }
    WriterHold(const WriterHold&) = delete;
    WriterHold& operator=(const WriterHold&) = delete;

    void release() {
        if (!released_) {
            released_ = true;
            release_.set_value();
        }
        if (holder_.joinable()) holder_.join();
    }

private:
    std::promise<void> release_;
    bool released_ = false;
    std::thread holder_;
};

TEST(IdempotencyHttp, ARepeatWhileTheFirstIsInFlightIs409) {
    TestServer server(with_two_service_keys());
    const json charge = {{"user_id", "rita"}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                         {"input_tokens", 50}, {"output_tokens", 5}};
    ASSERT_EQ(server.post("/v1/usage/record", {{"user_id", "rita"}, {"operation", "avatar"}})->status, 200);
    WriterHold hold(server);
    // Two copies of one request: whichever claims the key first waits for the
    // held writer; the other finds the key in flight.
    auto send = [&](const std::string& service_key) {
        return std::async(std::launch::async,
                          [&server, &charge, service_key] { return post_as(server, service_key, "twice", "/v1/usage/record", charge); });
    };
    std::future<Answer> copies[2] = {send(test::service_key), send(test::service_key)};
    // However the test ends, the writer is let go before the requests are awaited.
    struct ReleaseFirst {
        WriterHold& hold;
        ~ReleaseFirst() { hold.release(); }
    } release_first{hold};
    int answered = -1;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);  // a hang guard
    while (answered < 0 && std::chrono::steady_clock::now() < deadline) {
        for (int i = 0; i < 2 && answered < 0; ++i) {
            if (copies[i].wait_for(std::chrono::milliseconds(5)) == std::future_status::ready) answered = i;
        }
    }
    ASSERT_GE(answered, 0) << "neither copy was answered while the other was in flight";
    const Answer repeat = copies[answered].get();
    EXPECT_EQ(repeat.status, 409) << repeat.body;
    EXPECT_EQ(error_code(repeat), "idempotency_in_flight");
    std::future<Answer>& first = copies[1 - answered];
    EXPECT_EQ(first.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout)
        << "the first copy was answered while the writer was held";
    // Another caller's request under the same key is not a repeat: it waits
    // for the writer like any request, and has its own effect.
    std::future<Answer> other = send(test::other_service_key);
    hold.release();
    const Answer done = first.get();
    ASSERT_EQ(done.status, 200) << done.body;
    const Answer other_done = other.get();
    EXPECT_EQ(other_done.status, 200) << "another caller's key was taken for this one's: " << other_done.body;
    // The 409 was not stored as the key's answer: a repeat now replays the first.
    const Answer replay = post_as(server, test::service_key, "twice", "/v1/usage/record", charge);
    EXPECT_EQ(replay.status, 200);
    EXPECT_EQ(replay.body, done.body);
    const json usage = server.usage_of("rita");
    EXPECT_EQ(usage["tokens"]["used"], 10000 + 2 * 55) << "one charge per caller";
    expect_chains_intact(server);
}

TEST(IdempotencyHttp, ReplaysAfterAlmostADayAreTheFirstAnswerByteForByte) {
    test::TestServerOptions options;
    options.catalog_json = test::catalog_with_free_limit(100000);
    TestServer server(options);
    const std::string key = test::service_key;
    const json authorize = {{"user_id", "sven"}, {"operation", "chat"}, {"model", "gpt-4o"},
                            {"input_tokens", 1000}, {"max_output_tokens", 100}};
    const json record = {{"user_id", "sven"}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                         {"input_tokens", 300}, {"output_tokens", 30}};
    const json too_big = {{"user_id", "sven"}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                          {"input_tokens", 200000}, {"max_output_tokens", 0}};
    const json unknown = {{"reservation_id", "rsv_none"}, {"input_tokens", 1}, {"output_tokens", 0}};
    struct First {
        std::string idempotency_key;
        std::string path;
        json body;
        Answer answer;
    };
    std::vector<First> firsts = {{"day-authorize", "/v1/usage/authorize", authorize, {}},
                                 {"day-record", "/v1/usage/record", record, {}},
                                 {"day-limit", "/v1/usage/authorize", too_big, {}},
                                 {"day-unknown", "/v1/usage/commit", unknown, {}}};
    for (First& first : firsts) first.answer = post_as(server, key, first.idempotency_key, first.path, first.body);
    ASSERT_EQ(firsts[0].answer.status, 200) << firsts[0].answer.body;
    ASSERT_EQ(firsts[1].answer.status, 200) << firsts[1].answer.body;
    ASSERT_EQ(firsts[2].answer.status, 402) << firsts[2].answer.body;
    ASSERT_EQ(firsts[3].answer.status, 404) << firsts[3].answer.body;

    // The day goes on: the reservation expires, other charges move the
    // balance, so an answer rebuilt from the current state would differ.
    server.clock().advance(3600);
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(post_as(server, key, "later-" + std::to_string(i), "/v1/usage/record", record).status, 200);
    }
    server.clock().advance(23 * 3600 + 59 * 60 - 3600);  // 23 h 59 m after the first answers
    ASSERT_EQ(server.usage_of("sven")["tokens"]["used"], 4 * 330);

    for (const First& first : firsts) {
        const Answer replay = post_as(server, key, first.idempotency_key, first.path, first.body);
        EXPECT_EQ(replay.status, first.answer.status) << first.idempotency_key;
        EXPECT_EQ(replay.body, first.answer.body) << first.idempotency_key << " was not replayed byte for byte";
        // The same key with another body, for a change as for a refusal.
        json other = first.body;
        other["input_tokens"] = 7;
        const Answer reused = post_as(server, key, first.idempotency_key, first.path, other);
        EXPECT_EQ(reused.status, 422) << first.idempotency_key << ": " << reused.body;
        EXPECT_EQ(error_code(reused), "idempotency_key_reused") << first.idempotency_key;
    }
    EXPECT_EQ(server.usage_of("sven")["tokens"]["used"], 4 * 330) << "a replay charged";
    expect_chains_intact(server);
}

}  // namespace
}  // namespace tokenmeter
