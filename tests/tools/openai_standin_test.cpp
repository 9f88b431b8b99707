// The OpenAI stand-in (tools/openai-standin) over real HTTP: every scenario,
// the wire shapes the gateway relies on (JSON reply, SSE chunks, the final
// usage chunk, OpenAI's error object), embeddings, the key check and the
// requests log, including a client that goes away mid-answer.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sodium.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "standin.hpp"

namespace tokenmeter::openai_standin {
namespace {

using nlohmann::json;

constexpr const char* api_key = "sk-standin-test-key";

// The SSE events of a stream body: the payload of each `data:` line.
std::vector<std::string> sse_events(const std::string& body) {
    std::vector<std::string> events;
    std::size_t at = 0;
    while ((at = body.find("data: ", at)) != std::string::npos) {
        const std::size_t end = body.find("\n\n", at);
        if (end == std::string::npos) break;
        events.push_back(body.substr(at + 6, end - at - 6));
        at = end + 2;
    }
    return events;
}

struct Streamed {
    bool complete = false;  // the client read the whole body (no transport error)
    int status = 0;
    std::string body;
};

class OpenAIStandin : public ::testing::Test {
protected:
    void SetUp() override {
        StandinOptions options;
        options.api_key = api_key;
        standin_ = std::make_unique<Standin>(options);
        ASSERT_GT(standin_->start("127.0.0.1", 0), 0);
    }
    void TearDown() override { standin_->stop(); }

    httplib::Headers headers(const std::string& scenario = "") const {
        httplib::Headers out = {{"Authorization", std::string("Bearer ") + api_key}};
        if (!scenario.empty()) out.emplace("X-Standin-Scenario", scenario);
        return out;
    }

    httplib::Result post(const std::string& path, const json& body, const httplib::Headers& extra) const {
        httplib::Client client(standin_->base_url());
        client.set_read_timeout(10, 0);
        return client.Post(path, extra, body.dump(), "application/json");
    }

    // Reads a body as it arrives; `stop_after` > 0 closes the connection
    // after that many bytes pieces (a client that goes away).
    Streamed stream(const json& body, const httplib::Headers& extra, int stop_after = 0) const {
        httplib::Client client(standin_->base_url());
        client.set_read_timeout(10, 0);
        httplib::Request request;
        request.method = "POST";
        request.path = "/v1/chat/completions";
        request.headers = extra;
        request.set_header("Content-Type", "application/json");
        request.body = body.dump();
        Streamed out;
        int pieces = 0;
        request.content_receiver = [&](const char* data, std::size_t size, std::uint64_t, std::uint64_t) {
            out.body.append(data, size);
            return stop_after == 0 || ++pieces < stop_after;
        };
        auto result = client.send(request);
        out.complete = static_cast<bool>(result);
        if (result) out.status = result->status;
        return out;
    }

    // The log entry of the one request after `since`, once it is final.
    RecordedRequest settled(std::uint64_t since) const {
        for (int i = 0; i < 300; ++i) {
            for (const RecordedRequest& entry : standin_->requests()) {
                if (entry.id > since && entry.finished) return entry;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ADD_FAILURE() << "no finished request after " << since;
        return {};
    }

    std::unique_ptr<Standin> standin_;
};

json chat(const std::string& text, bool stream = false) {
    json body = {{"model", "gpt-4o-mini"},
                 {"messages", json::array({{{"role", "system"}, {"content", "Be brief."}},
                                           {{"role", "user"}, {"content", text}}})}};
    if (stream) body["stream"] = true;
    return body;
}

void expect_openai_error(const httplib::Result& result, int status, const std::string& type) {
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, status);
    const json body = json::parse(result->body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << result->body;
    ASSERT_TRUE(body.contains("error")) << result->body;
    const json& error = body["error"];
    EXPECT_TRUE(error["message"].is_string());
    EXPECT_EQ(error["type"], type);
    EXPECT_TRUE(error.contains("param"));
    EXPECT_TRUE(error.contains("code"));
}

TEST_F(OpenAIStandin, ChatReplyEchoesTheLastUserMessageWithStatedUsage) {
    auto result = post("/v1/chat/completions", chat("count these four words"), headers());
    ASSERT_TRUE(result);
    ASSERT_EQ(result->status, 200) << result->body;
    const json body = json::parse(result->body);
    EXPECT_EQ(body["object"], "chat.completion");
    EXPECT_EQ(body["model"], "gpt-4o-mini");
    EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
    EXPECT_EQ(body["choices"][0]["message"]["content"], "Echo: count these four words");
    EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
    // prompt: ceil(bytes / 4) of "Be brief." + "count these four words" (9 + 22 = 31 bytes -> 8).
    EXPECT_EQ(body["usage"]["prompt_tokens"], 8);
    EXPECT_EQ(body["usage"]["completion_tokens"], 5);
    EXPECT_EQ(body["usage"]["total_tokens"], 13);
    EXPECT_FALSE(body["usage"].contains("prompt_tokens_details"));
    EXPECT_EQ(chat_prompt_tokens(chat("count these four words")), 8);
}

TEST_F(OpenAIStandin, MaxTokensTruncatesTheReplyToWords) {
    json request = chat("one two three four five");
    request["max_completion_tokens"] = 3;
    auto result = post("/v1/chat/completions", request, headers());
    ASSERT_TRUE(result);
    const json body = json::parse(result->body);
    EXPECT_EQ(body["choices"][0]["message"]["content"], "Echo: one two");
    EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(body["usage"]["completion_tokens"], 3);
    request["max_tokens"] = 0;
    expect_openai_error(post("/v1/chat/completions", request, headers()), 400, "invalid_request_error");
}

TEST_F(OpenAIStandin, StreamSendsOneChunkPerWordThenDoneAndNoUsageUnlessAsked) {
    const Streamed out = stream(chat("alpha beta gamma", true), headers());
    ASSERT_TRUE(out.complete);
    EXPECT_EQ(out.status, 200);
    const auto events = sse_events(out.body);
    ASSERT_EQ(events.size(), 7U) << out.body;  // role, 4 words, finish, [DONE]
    EXPECT_EQ(events.back(), "[DONE]");
    std::string text;
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
        const json chunk = json::parse(events[i]);
        EXPECT_EQ(chunk["object"], "chat.completion.chunk");
        EXPECT_EQ(chunk["id"], json::parse(events[0])["id"]);
        EXPECT_FALSE(chunk.contains("usage")) << events[i];
        ASSERT_EQ(chunk["choices"].size(), 1U);
        if (chunk["choices"][0]["delta"].contains("content")) text += chunk["choices"][0]["delta"]["content"].get<std::string>();
    }
    EXPECT_EQ(text, "Echo: alpha beta gamma");
    EXPECT_EQ(json::parse(events[0])["choices"][0]["delta"]["role"], "assistant");
    EXPECT_EQ(json::parse(events[5])["choices"][0]["finish_reason"], "stop");
}

TEST_F(OpenAIStandin, IncludeUsageAddsAFinalChunkWithEmptyChoices) {
    json request = chat("alpha beta gamma", true);
    request["stream_options"] = {{"include_usage", true}};
    const Streamed out = stream(request, headers());
    ASSERT_TRUE(out.complete);
    const auto events = sse_events(out.body);
    ASSERT_EQ(events.size(), 8U) << out.body;
    EXPECT_EQ(events.back(), "[DONE]");
    const json last = json::parse(events[events.size() - 2]);
    EXPECT_TRUE(last["choices"].is_array());
    EXPECT_TRUE(last["choices"].empty());
    EXPECT_EQ(last["usage"]["completion_tokens"], 4);
    EXPECT_EQ(last["usage"]["prompt_tokens"], tokens_of_text("Be brief.alpha beta gamma"));
    for (std::size_t i = 0; i + 2 < events.size(); ++i) EXPECT_TRUE(json::parse(events[i])["usage"].is_null());
}

TEST_F(OpenAIStandin, NoUsageScenarioIgnoresIncludeUsage) {
    json request = chat("alpha beta", true);
    request["stream_options"] = {{"include_usage", true}};
    const Streamed out = stream(request, headers("no_usage"));
    ASSERT_TRUE(out.complete);
    const auto events = sse_events(out.body);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), "[DONE]");
    EXPECT_EQ(out.body.find("\"usage\""), std::string::npos) << out.body;
    auto plain = post("/v1/chat/completions", chat("alpha"), headers("no_usage"));
    ASSERT_TRUE(plain);
    EXPECT_FALSE(json::parse(plain->body).contains("usage"));
}

TEST_F(OpenAIStandin, CutStreamStopsMidwayWithoutDoneOrUsage) {
    json request = chat("one two three four five six", true);
    request["stream_options"] = {{"include_usage", true}};
    const std::uint64_t since = standin_->requests().empty() ? 0 : standin_->requests().back().id;
    const Streamed out = stream(request, headers("cut"));
    EXPECT_FALSE(out.complete) << "the connection must drop without the last chunk";
    const auto events = sse_events(out.body);
    ASSERT_EQ(events.size(), 4U) << out.body;  // role + 3 of the 7 words
    EXPECT_EQ(out.body.find("[DONE]"), std::string::npos);
    EXPECT_EQ(out.body.find("\"choices\":[]"), std::string::npos);
    const RecordedRequest entry = settled(since);
    EXPECT_EQ(entry.scenario, "cut");
    EXPECT_FALSE(entry.client_disconnected);
    // Not streaming: the headers, then half the body, then the connection drops.
    EXPECT_FALSE(post("/v1/chat/completions", chat("x"), headers("cut")));
}

TEST_F(OpenAIStandin, FloodSendsMaxTokensChunksOfAKibibyteWithoutPause) {
    json request = chat("anything", true);
    request["max_tokens"] = 300;
    request["stream_options"] = {{"include_usage", true}};
    const Streamed out = stream(request, headers("flood"));
    ASSERT_TRUE(out.complete);
    const auto events = sse_events(out.body);
    ASSERT_EQ(events.size(), 1U + 300U + 1U + 1U + 1U) << "role, 300 words, finish, usage, [DONE]";
    const json word = json::parse(events[2]);
    EXPECT_EQ(word["choices"][0]["delta"]["content"].get<std::string>().size(), 1U + flood_word_bytes);
    EXPECT_EQ(json::parse(events[301])["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(json::parse(events[302])["usage"]["completion_tokens"], 300);
    // Not streaming: one message of the same words, sent chunked.
    request.erase("stream");
    request.erase("stream_options");
    auto whole = post("/v1/chat/completions", request, headers("flood"));
    ASSERT_TRUE(whole);
    EXPECT_FALSE(whole->has_header("Content-Length"));
    const json reply = json::parse(whole->body);
    EXPECT_EQ(reply["choices"][0]["message"]["content"].get<std::string>().size(), 300 * (flood_word_bytes + 1) - 1);
    EXPECT_EQ(reply["usage"]["completion_tokens"], 300);
}

TEST_F(OpenAIStandin, EndlessEventNeverEndsItsSecondEventThenDrops) {
    json request = chat("anything", true);
    request["max_tokens"] = 100;
    const std::uint64_t since = standin_->requests().empty() ? 0 : standin_->requests().back().id;
    const Streamed out = stream(request, headers("endless_event"));
    EXPECT_FALSE(out.complete) << "the connection drops mid-event";
    const auto events = sse_events(out.body);
    ASSERT_EQ(events.size(), 1U) << "only the role chunk ends";
    EXPECT_GT(out.body.size(), 100 * flood_word_bytes);
    EXPECT_EQ(out.body.find("\n\n"), out.body.rfind("\n\n")) << "one blank line: the role chunk's";
    const RecordedRequest entry = settled(since);
    EXPECT_EQ(entry.scenario, "endless_event");
    EXPECT_FALSE(entry.client_disconnected);
}

TEST_F(OpenAIStandin, RateLimitedIs429WithRetryAfter) {
    auto result = post("/v1/chat/completions", chat("hi"), headers("rate_limited"));
    expect_openai_error(result, 429, "requests");
    EXPECT_EQ(result->get_header_value("Retry-After"), "1");
    EXPECT_EQ(json::parse(result->body)["error"]["code"], "rate_limit_exceeded");
    auto extra = headers("rate_limited");
    extra.emplace("X-Standin-Retry-After", "7");
    auto later = post("/v1/embeddings", {{"model", "text-embedding-3-small"}, {"input", "x"}}, extra);
    expect_openai_error(later, 429, "requests");
    EXPECT_EQ(later->get_header_value("Retry-After"), "7");
}

TEST_F(OpenAIStandin, ServerErrorAndBadRequestUseOpenAIsErrorObject) {
    expect_openai_error(post("/v1/chat/completions", chat("hi"), headers("server_error")), 500, "server_error");
    expect_openai_error(post("/v1/chat/completions", chat("hi"), headers("bad_request")), 400, "invalid_request_error");
    expect_openai_error(post("/v1/chat/completions", chat("hi"), headers("no_such_scenario")), 400, "invalid_request_error");
    expect_openai_error(post("/v1/nothing", chat("hi"), headers()), 404, "invalid_request_error");
}

TEST_F(OpenAIStandin, SlowFirstByteWaitsTheAskedDelay) {
    auto extra = headers("slow_first_byte");
    extra.emplace("X-Standin-Delay-Ms", "400");
    const auto start = std::chrono::steady_clock::now();
    const Streamed out = stream(chat("hi", true), extra);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(out.complete);
    EXPECT_EQ(sse_events(out.body).back(), "[DONE]");
    EXPECT_GE(elapsed, std::chrono::milliseconds(400));
    EXPECT_LT(elapsed, std::chrono::milliseconds(5000));
}

TEST_F(OpenAIStandin, CachedAndReasoningScenariosFillTheDetails) {
    auto cached = post("/v1/chat/completions", chat("one two three four five six seven"), headers("cached"));
    ASSERT_TRUE(cached);
    const json usage = json::parse(cached->body)["usage"];
    EXPECT_EQ(usage["prompt_tokens_details"]["cached_tokens"], usage["prompt_tokens"].get<std::int64_t>() / 2);
    EXPECT_EQ(usage["completion_tokens_details"]["reasoning_tokens"], 0);
    // The model name chooses the scenario too.
    json request = chat("one two");
    request["model"] = "standin-reasoning";
    auto reasoning = post("/v1/chat/completions", request, headers());
    ASSERT_TRUE(reasoning);
    const json r = json::parse(reasoning->body)["usage"];
    EXPECT_EQ(r["completion_tokens_details"]["reasoning_tokens"], 6);  // 2 x 3 words
    EXPECT_EQ(r["completion_tokens"], 9);                              // the 3 words + 6 reasoning
    EXPECT_EQ(r["prompt_tokens_details"]["cached_tokens"], 0);
}

TEST_F(OpenAIStandin, UsageCanBeStatedPerRequest) {
    auto extra = headers();
    extra.emplace("X-Standin-Prompt-Tokens", "1000");
    extra.emplace("X-Standin-Completion-Tokens", "250");
    auto result = post("/v1/chat/completions", chat("hi"), extra);
    ASSERT_TRUE(result);
    const json usage = json::parse(result->body)["usage"];
    EXPECT_EQ(usage["prompt_tokens"], 1000);
    EXPECT_EQ(usage["completion_tokens"], 250);
    EXPECT_EQ(usage["total_tokens"], 1250);
}

TEST_F(OpenAIStandin, QueuedScenariosApplyToTheNextRequests) {
    httplib::Client control(standin_->base_url());
    auto queued = control.Post("/_standin/scenario", R"({"scenario":"server_error","count":2})", "application/json");
    ASSERT_TRUE(queued);
    ASSERT_EQ(queued->status, 200);
    EXPECT_EQ(post("/v1/chat/completions", chat("a"), headers())->status, 500);
    EXPECT_EQ(post("/v1/chat/completions", chat("b"), headers())->status, 500);
    EXPECT_EQ(post("/v1/chat/completions", chat("c"), headers())->status, 200);
    EXPECT_EQ(control.Post("/_standin/scenario", R"({"scenario":"nope"})", "application/json")->status, 400);
}

TEST_F(OpenAIStandin, EmbeddingsOfAStringAndOfAnArray) {
    auto one = post("/v1/embeddings", {{"model", "text-embedding-3-small"}, {"input", "hello world"}}, headers());
    ASSERT_TRUE(one);
    ASSERT_EQ(one->status, 200) << one->body;
    const json single = json::parse(one->body);
    EXPECT_EQ(single["object"], "list");
    ASSERT_EQ(single["data"].size(), 1U);
    EXPECT_EQ(single["data"][0]["object"], "embedding");
    ASSERT_EQ(single["data"][0]["embedding"].size(), 8U);
    double norm = 0;
    for (const json& v : single["data"][0]["embedding"]) norm += v.get<double>() * v.get<double>();
    EXPECT_NEAR(norm, 1.0, 1e-5);
    EXPECT_EQ(single["usage"]["prompt_tokens"], 3);  // ceil(11 / 4)
    EXPECT_EQ(single["usage"]["total_tokens"], 3);

    auto many = post("/v1/embeddings", {{"model", "m"}, {"input", {"hello world", "other"}}}, headers());
    ASSERT_TRUE(many);
    const json list = json::parse(many->body);
    ASSERT_EQ(list["data"].size(), 2U);
    EXPECT_EQ(list["data"][0]["embedding"], single["data"][0]["embedding"]) << "deterministic";
    EXPECT_NE(list["data"][1]["embedding"], single["data"][0]["embedding"]);
    EXPECT_EQ(list["data"][1]["index"], 1);
    EXPECT_EQ(list["usage"]["prompt_tokens"], 3 + 2);

    // base64 (the OpenAI SDKs' default): the same floats, little-endian float32.
    auto encoded = post("/v1/embeddings", {{"model", "m"}, {"input", "hello world"}, {"encoding_format", "base64"}}, headers());
    ASSERT_TRUE(encoded);
    const std::string text = json::parse(encoded->body)["data"][0]["embedding"].get<std::string>();
    std::vector<unsigned char> bytes(text.size());
    std::size_t length = 0;
    ASSERT_EQ(sodium_base642bin(bytes.data(), bytes.size(), text.data(), text.size(), nullptr, &length, nullptr,
                                sodium_base64_VARIANT_ORIGINAL), 0);
    ASSERT_EQ(length, 8 * sizeof(float));
    const std::vector<float> expected = embedding_of("hello world", 8);
    for (std::size_t i = 0; i < 8; ++i) {
        float value = 0;
        std::memcpy(&value, bytes.data() + i * sizeof(float), sizeof(float));
        EXPECT_EQ(value, expected[i]);
    }
    expect_openai_error(post("/v1/embeddings", {{"model", "m"}, {"input", json::array()}}, headers()), 400,
                        "invalid_request_error");
}

TEST_F(OpenAIStandin, RefusesAMissingOrWrongKey) {
    auto missing = post("/v1/chat/completions", chat("hi"), {});
    expect_openai_error(missing, 401, "invalid_request_error");
    auto wrong = post("/v1/embeddings", {{"model", "m"}, {"input", "x"}}, {{"Authorization", "Bearer sk-wrong-key-0000"}});
    expect_openai_error(wrong, 401, "invalid_request_error");
    EXPECT_EQ(json::parse(wrong->body)["error"]["code"], "invalid_api_key");
    EXPECT_EQ(wrong->body.find("sk-wrong-key-0000"), std::string::npos) << "the key is not echoed whole";
}

TEST_F(OpenAIStandin, RequestsLogShowsWhatWasForwarded) {
    auto extra = headers();
    extra.emplace("Idempotency-Key", "idem-1");
    ASSERT_TRUE(post("/v1/chat/completions", chat("logged"), extra));
    httplib::Client control(standin_->base_url());
    auto listed = control.Get("/_standin/requests");
    ASSERT_TRUE(listed);
    const json log = json::parse(listed->body);
    ASSERT_EQ(log.size(), 1U);
    EXPECT_EQ(log[0]["method"], "POST");
    EXPECT_EQ(log[0]["path"], "/v1/chat/completions");
    EXPECT_EQ(json::parse(log[0]["body"].get<std::string>()), chat("logged"));
    EXPECT_EQ(log[0]["headers"]["authorization"], std::string("Bearer ") + api_key);
    EXPECT_EQ(log[0]["headers"]["idempotency-key"], "idem-1");
    EXPECT_EQ(log[0]["scenario"], "normal");
    EXPECT_EQ(log[0]["status"], 200);
    EXPECT_EQ(log[0]["finished"], true);
    EXPECT_EQ(log[0]["client_disconnected"], false);
    const auto after = log[0]["id"].get<std::uint64_t>();
    EXPECT_EQ(json::parse(control.Get("/_standin/requests?since=" + std::to_string(after))->body).size(), 0U);
    ASSERT_TRUE(control.Post("/_standin/reset", "", "application/json"));
    EXPECT_TRUE(standin_->requests().empty());
}

TEST_F(OpenAIStandin, HangAnswersNothingAndLogsTheClientLeaving) {
    httplib::Client client(standin_->base_url());
    client.set_read_timeout(0, 300 * 1000);
    const auto start = std::chrono::steady_clock::now();
    auto result = client.Post("/v1/chat/completions", headers("hang"), chat("hi").dump(), "application/json");
    EXPECT_FALSE(result);
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
    client.stop();
    const RecordedRequest entry = settled(0);
    EXPECT_EQ(entry.scenario, "hang");
    EXPECT_TRUE(entry.client_disconnected);
    EXPECT_EQ(entry.status, 0);
}

TEST_F(OpenAIStandin, AClientThatLeavesMidStreamIsLogged) {
    auto extra = headers();
    extra.emplace("X-Standin-Chunk-Delay-Ms", "100");
    std::string words;
    for (int i = 0; i < 40; ++i) words += "w ";
    const Streamed out = stream(chat(words, true), extra, 2);
    EXPECT_FALSE(out.complete);
    const RecordedRequest entry = settled(0);
    EXPECT_TRUE(entry.stream);
    EXPECT_TRUE(entry.client_disconnected);
}

}  // namespace
}  // namespace tokenmeter::openai_standin
