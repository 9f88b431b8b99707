// The metering gateway (DESIGN.md §12) against the OpenAI stand-in
// (tools/openai-standin) over real HTTP: every way a call can end, settled
// once and exactly; refusals before anything goes upstream; 64 concurrent
// streams against a limit that fits a quarter; a slow client's stream held
// back at the provider, not in memory; answers past their bounds; kill -9
// mid-stream.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "gateway/gateway_routes.hpp"
#include "gateway/upstream_call.hpp"
#include "raw_connection.hpp"
#include "server_process.hpp"
// Both stand-ins name their header standin.hpp; this is the OpenAI one.
#include "../../tools/openai-standin/standin.hpp"
#include "test_server.hpp"
#include "tokenmeter/receipt.hpp"
#include "tokens/token_counter.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
namespace standin = openai_standin;

// The stand-in, and a tokenmeter server whose upstream it is for every model.
struct Gateway {
    explicit Gateway(standin::StandinOptions standin_options = {}, std::int64_t free_tokens = 250'000,
                     std::int64_t upstream_timeout_ms = 10'000, bool reachable = true)
        : provider(standin_options), provider_port(provider.start("127.0.0.1", 0)),
          server(options(free_tokens, upstream_timeout_ms, reachable)) {}

    test::TestServerOptions options(std::int64_t free_tokens, std::int64_t timeout_ms, bool reachable) {
        test::TestServerOptions o;
        o.catalog_json = test::catalog_with_free_limit(free_tokens);
        const int port = reachable ? provider_port : closed_port();
        o.configure = [port, timeout_ms](config::ServerConfig& c) {
            config::UpstreamSettings upstream;
            for (const Model& model : default_catalog().models) upstream.models.push_back(model.id);
            upstream.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
            upstream.timeout_ms = timeout_ms;
            c.upstreams = {upstream};
            c.rate_limit_user_per_second = 0;  // one user sends 64 calls at once below
        };
        return o;
    }

    // A port nothing listens on: bound, then closed.
    static int closed_port() {
        const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t size = sizeof address;
        ::bind(probe, reinterpret_cast<sockaddr*>(&address), size);
        ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &size);
        ::close(probe);
        return ntohs(address.sin_port);
    }

    json usage(const std::string& user) {
        auto response = server.client().Get("/v1/users/" + user + "/usage", server.as_service());
        return test::body_of(response)["tokens"];
    }

    standin::Standin provider;
    int provider_port;
    test::TestServer server;
};

json chat(const std::string& text, bool stream, std::int64_t max_tokens = 0, std::string model = "gpt-4o-mini") {
    json body = {{"model", model}, {"messages", json::array({{{"role", "user"}, {"content", text}}})}};
    if (stream) body["stream"] = true;
    if (max_tokens > 0) body["max_tokens"] = max_tokens;
    return body;
}

struct Streamed {
    int status = 0;
    std::string text;
    httplib::Headers headers;
};

Streamed post(test::TestServer& server, const std::string& path, const json& body, httplib::Headers headers) {
    httplib::Client client = server.client();
    client.set_read_timeout(30, 0);
    httplib::Request request;
    request.method = "POST";
    request.path = path;
    request.headers = std::move(headers);
    request.headers.emplace("Content-Type", "application/json");
    request.body = body.dump();
    Streamed streamed;
    request.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
        streamed.text.append(data, n);
        return true;
    };
    httplib::Response response;
    httplib::Error error = httplib::Error::Success;
    if (client.send(request, response, error)) {
        streamed.status = response.status;
        streamed.headers = response.headers;
    }
    return streamed;
}

// The SSE comment lines the gateway ends a stream with.
std::string comment(const std::string& text, const std::string& name) {
    const std::string prefix = ": " + name + ": ";
    const auto at = text.find(prefix);
    if (at == std::string::npos) return {};
    return text.substr(at + prefix.size(), text.find('\n', at) - at - prefix.size());
}

// The usage the provider sent in a stream's last chunk (include_usage).
json streamed_usage(const std::string& text) {
    json usage;
    for (std::size_t at = text.find("data: {"); at != std::string::npos; at = text.find("data: {", at + 1)) {
        json chunk = json::parse(text.substr(at + 6, text.find('\n', at) - at - 6), nullptr, false);
        if (chunk.is_object() && chunk["usage"].is_object()) usage = chunk["usage"];
    }
    return usage;
}

// The streamed text of the choices' deltas.
std::string streamed_text(const std::string& text) {
    std::string content;
    for (std::size_t at = text.find("data: {"); at != std::string::npos; at = text.find("data: {", at + 1)) {
        json chunk = json::parse(text.substr(at + 6, text.find('\n', at) - at - 6), nullptr, false);
        if (!chunk.is_object() || !chunk["choices"].is_array()) continue;
        for (const json& choice : chunk["choices"]) {
            if (choice["delta"].contains("content") && choice["delta"]["content"].is_string()) {
                content += choice["delta"]["content"].get<std::string>();
            }
        }
    }
    return content;
}

ReceiptClaims verified(test::TestServer& server, const std::string& receipt) {
    auto keys = parse_jwks(server.client().Get("/v1/keys")->body).value();
    auto claims = verify_receipt(receipt, keys);
    EXPECT_TRUE(claims.has_value()) << receipt;
    return claims ? *claims : ReceiptClaims{};
}

std::int64_t prompt_count(const json& body) {
    auto counter = tokens::make_embedded_encoding_counter();
    return counter->count_chat(*default_catalog().find_model(body["model"].get<std::string>()), body["messages"])->tokens;
}

std::int64_t text_count(const std::string& model, const std::string& text) {
    auto counter = tokens::make_embedded_encoding_counter();
    return counter->count_text(*default_catalog().find_model(model), text)->tokens;
}

TEST(Gateway, AWholeChatIsChargedByTheProvidersUsageWithAReceipt) {
    Gateway gateway;
    const json body = chat("how many tokens does this take", false, 0, "gpt-4o");
    const Streamed answer = post(gateway.server, "/v1/chat/completions", body, gateway.server.as_user("alice"));
    ASSERT_EQ(answer.status, 200) << answer.text;
    const json reply = json::parse(answer.text);
    const std::int64_t provider_total = reply["usage"]["total_tokens"].get<std::int64_t>();
    ASSERT_GT(provider_total, 0);
    EXPECT_EQ(reply["choices"][0]["message"]["content"], "Echo: how many tokens does this take");
    // gpt-4o is 3x: the charge is the provider's count, multiplied, once.
    const ReceiptClaims claims = verified(gateway.server, answer.headers.find("X-Tokenmeter-Receipt")->second);
    EXPECT_EQ(claims.balance.tokens_used, 3 * provider_total);
    EXPECT_EQ(claims.balance.tokens_reserved, 0);
    EXPECT_EQ(answer.headers.find("X-Tokenmeter-Usage-Source")->second, "provider");
    EXPECT_EQ(answer.headers.find("X-Tokenmeter-Charged-Tokens")->second, std::to_string(3 * provider_total));
    EXPECT_EQ(gateway.usage("alice")["used"], 3 * provider_total);
    // Forwarded with the output capped at what was reserved, without the user's token.
    const auto requests = gateway.provider.requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(json::parse(requests[0].body)["max_completion_tokens"], 4096);
    EXPECT_FALSE(requests[0].headers.contains("authorization"));
    // The charge is an event of the user's, with the model and its multiplier.
    auto events = test::body_of(gateway.server.client().Get("/v1/me/usage/events", gateway.server.as_user("alice")));
    ASSERT_EQ(events["events"].size(), 1U);
    EXPECT_EQ(events["events"][0]["model"], "gpt-4o");
    EXPECT_EQ(events["events"][0]["charged_tokens"], 3 * provider_total);
}

TEST(Gateway, AStreamPassesThroughAndSettlesFromItsUsageChunk) {
    Gateway gateway;
    json body = chat("stream these words to me please", true);
    body["stream_options"] = {{"include_usage", true}};
    const Streamed answer = post(gateway.server, "/v1/chat/completions", body, gateway.server.as_user("alice"));
    ASSERT_EQ(answer.status, 200);
    EXPECT_EQ(answer.headers.find("Content-Type")->second, "text/event-stream");
    EXPECT_EQ(streamed_text(answer.text), "Echo: stream these words to me please");
    const json usage = streamed_usage(answer.text);
    ASSERT_TRUE(usage.is_object()) << "the client asked for the usage chunk";
    // The receipt comes in a comment before [DONE], and proves the charge.
    const auto receipt_at = answer.text.find(": X-Tokenmeter-Receipt: ");
    ASSERT_NE(receipt_at, std::string::npos);
    EXPECT_LT(receipt_at, answer.text.find("data: [DONE]"));
    EXPECT_EQ(comment(answer.text, "X-Tokenmeter-Usage-Source"), "provider");
    const ReceiptClaims claims = verified(gateway.server, comment(answer.text, "X-Tokenmeter-Receipt"));
    EXPECT_EQ(claims.balance.tokens_used, usage["total_tokens"].get<std::int64_t>());
    EXPECT_EQ(claims.balance.tokens_reserved, 0);
    EXPECT_EQ(comment(answer.text, "X-Tokenmeter-Charged-Tokens"), std::to_string(claims.balance.tokens_used));
}

TEST(Gateway, AStreamThatDidNotAskForUsageGetsNoneButIsStillSettledByIt) {
    Gateway gateway;
    const Streamed answer = post(gateway.server, "/v1/chat/completions", chat("no usage chunk for me", true),
                                 gateway.server.as_user("alice"));
    ASSERT_EQ(answer.status, 200);
    EXPECT_FALSE(streamed_usage(answer.text).is_object());
    EXPECT_EQ(comment(answer.text, "X-Tokenmeter-Usage-Source"), "provider");
    // The gateway asked the provider for it.
    const json forwarded = json::parse(gateway.provider.requests().at(0).body);
    EXPECT_EQ(forwarded["stream_options"]["include_usage"], true);
    EXPECT_GT(gateway.usage("alice")["used"].get<std::int64_t>(), 0);
}

TEST(Gateway, AStreamCutByTheProviderIsSettledByCountingNeverZero) {
    Gateway gateway;
    ASSERT_TRUE(gateway.provider.queue_scenario("cut", 1));
    const json body = chat("one two three four five six seven eight", true);
    const Streamed answer = post(gateway.server, "/v1/chat/completions", body, gateway.server.as_user("alice"));
    ASSERT_EQ(answer.status, 200);
    EXPECT_EQ(answer.text.find("data: [DONE]"), std::string::npos) << "the provider never finished";
    EXPECT_EQ(comment(answer.text, "X-Tokenmeter-Usage-Source"), "counted");
    const std::string streamed = streamed_text(answer.text);
    ASSERT_FALSE(streamed.empty());
    const std::int64_t expected = prompt_count(body) + text_count("gpt-4o-mini", streamed);
    const ReceiptClaims claims = verified(gateway.server, comment(answer.text, "X-Tokenmeter-Receipt"));
    EXPECT_EQ(claims.balance.tokens_used, expected);
    EXPECT_EQ(claims.balance.tokens_reserved, 0);
}

TEST(Gateway, AStreamWithoutUsageEndsNormallyAndIsCounted) {
    Gateway gateway;
    ASSERT_TRUE(gateway.provider.queue_scenario("no_usage", 1));
    json body = chat("count me by hand", true);
    body["stream_options"] = {{"include_usage", true}};
    const Streamed answer = post(gateway.server, "/v1/chat/completions", body, gateway.server.as_user("alice"));
    ASSERT_EQ(answer.status, 200);
    EXPECT_NE(answer.text.find("data: [DONE]"), std::string::npos);
    EXPECT_EQ(comment(answer.text, "X-Tokenmeter-Usage-Source"), "counted");
    const std::int64_t expected = prompt_count(body) + text_count("gpt-4o-mini", streamed_text(answer.text));
    EXPECT_EQ(gateway.usage("alice")["used"], expected);
    EXPECT_EQ(gateway.usage("alice")["reserved"], 0);
}

// Every way an upstream fails before its first byte: the provider's answer
// (or ours) in OpenAI's shape, the reservation released, nothing charged.
void expect_released(Gateway& gateway, const std::string& user) {
    const json tokens = gateway.usage(user);
    EXPECT_EQ(tokens["used"], 0);
    EXPECT_EQ(tokens["reserved"], 0);
}

// Cached and reasoning tokens, read from the provider's usage details, are
// weighted by the model's classes: cached input once, at its own weight.
// A server whose gpt-4o-mini weighs its token classes with `weights`, in
// front of its own stand-in.
struct WeightedGateway {
    WeightedGateway(const json& weights, std::int64_t free_limit) : provider({}) {
        json catalog = json::parse(test::catalog_with_free_limit(free_limit));
        for (json& model : catalog["models"]) {
            if (model["id"] == "gpt-4o-mini") model["weights"] = weights;
        }
        const int port = provider.start("127.0.0.1", 0);
        test::TestServerOptions options;
        options.catalog_json = catalog.dump();
        options.configure = [port](config::ServerConfig& c) {
            c.upstreams = {{{"gpt-4o-mini"}, "http://127.0.0.1:" + std::to_string(port) + "/v1", "", 10'000}};
        };
        server = std::make_unique<test::TestServer>(options);
    }

    standin::Standin provider;
    std::unique_ptr<test::TestServer> server;
};

TEST(Gateway, CachedAndReasoningTokensArePricedByTheirClassesOnce) {
    WeightedGateway gateway({{"cached_input", "1/2"}, {"output", "4"}, {"reasoning", "4"}}, 1'000'000);
    standin::Standin& provider = gateway.provider;
    test::TestServer& server = *gateway.server;
    for (const std::string scenario : {"cached", "reasoning"}) {
        ASSERT_TRUE(provider.queue_scenario(scenario, 1));
        const Streamed answer = post(server, "/v1/chat/completions", chat("weigh these tokens by class please", false),
                                     server.as_user(scenario));
        ASSERT_EQ(answer.status, 200) << answer.text;
        const json usage = json::parse(answer.text)["usage"];
        const auto input = usage["prompt_tokens"].get<std::int64_t>();
        const auto output = usage["completion_tokens"].get<std::int64_t>();
        const std::int64_t cached = usage.value("/prompt_tokens_details/cached_tokens"_json_pointer, 0);
        const std::int64_t reasoning = usage.value("/completion_tokens_details/reasoning_tokens"_json_pointer, 0);
        EXPECT_GT(scenario == "cached" ? cached : reasoning, 0) << usage.dump();
        // raw = (input - cached) × 1 + cached × 1/2 + output × 4 (reasoning is output, also 4): one ceil.
        const std::int64_t expected = (2 * (input - cached) + cached + 2 * 4 * output + 1) / 2;
        EXPECT_EQ(answer.headers.find("X-Tokenmeter-Charged-Tokens")->second, std::to_string(expected)) << usage.dump();
        auto events = test::body_of(server.client().Get("/v1/me/usage/events", server.as_user(scenario)));
        const json event = events["events"][0];
        EXPECT_EQ(event["charged_tokens"], expected);
        if (scenario == "cached") {
            EXPECT_EQ(event["cached_input_tokens"], cached);
        } else {
            EXPECT_EQ(event["reasoning_tokens"], reasoning);
        }
    }
}

TEST(Gateway, A429PassesThroughWithRetryAfterAndChargesNothing) {
    Gateway gateway;
    for (bool stream : {false, true}) {
        ASSERT_TRUE(gateway.provider.queue_scenario("rate_limited", 1));
        const Streamed answer = post(gateway.server, "/v1/chat/completions", chat("hi", stream), gateway.server.as_user("alice"));
        EXPECT_EQ(answer.status, 429);
        EXPECT_FALSE(answer.headers.find("Retry-After") == answer.headers.end());
        EXPECT_EQ(json::parse(answer.text)["error"]["code"], "rate_limit_exceeded");
        expect_released(gateway, "alice");
    }
}

TEST(Gateway, ProviderErrorsPassThroughAndChargeNothing) {
    Gateway gateway;
    for (const auto& [scenario, status] : std::vector<std::pair<std::string, int>>{{"server_error", 500}, {"bad_request", 400}}) {
        for (bool stream : {false, true}) {
            ASSERT_TRUE(gateway.provider.queue_scenario(scenario, 1));
            const Streamed answer = post(gateway.server, "/v1/chat/completions", chat("hi", stream), gateway.server.as_user("alice"));
            EXPECT_EQ(answer.status, status) << scenario;
            const json error = json::parse(answer.text)["error"];
            EXPECT_TRUE(error.contains("message") && error.contains("type")) << answer.text;
            expect_released(gateway, "alice");
        }
    }
}

TEST(Gateway, AnUnreachableProviderIs502AndChargesNothing) {
    Gateway gateway({}, 250'000, 2'000, false);
    for (bool stream : {false, true}) {
        const Streamed answer = post(gateway.server, "/v1/chat/completions", chat("hi", stream), gateway.server.as_user("alice"));
        EXPECT_EQ(answer.status, 502);
        EXPECT_EQ(json::parse(answer.text)["error"]["code"], "upstream_unavailable");
        EXPECT_EQ(json::parse(answer.text)["error"]["type"], "server_error");
        expect_released(gateway, "alice");
    }
}

TEST(Gateway, AProviderSilentPastItsTimeoutBeforeTheFirstByteIs504AndChargesNothing) {
    standin::StandinOptions slow;
    slow.slow_first_byte_ms = 3'000;
    Gateway gateway(slow, 250'000, 300);
    for (bool stream : {false, true}) {
        ASSERT_TRUE(gateway.provider.queue_scenario("slow_first_byte", 1));
        const Streamed answer = post(gateway.server, "/v1/chat/completions", chat("hi", stream), gateway.server.as_user("alice"));
        EXPECT_EQ(answer.status, 504);
        EXPECT_EQ(json::parse(answer.text)["error"]["code"], "upstream_timeout");
        expect_released(gateway, "alice");
    }
}

TEST(Gateway, A402IsAnsweredBeforeAnythingGoesUpstream) {
    Gateway gateway({}, 1'000);
    const Streamed answer = post(gateway.server, "/v1/chat/completions", chat("hi", true, 5'000), gateway.server.as_user("alice"));
    EXPECT_EQ(answer.status, 402);
    const json error = json::parse(answer.text)["error"];
    EXPECT_EQ(error["type"], "insufficient_quota");
    EXPECT_EQ(error["code"], "limit_exceeded");
    EXPECT_TRUE(error.contains("message"));
    EXPECT_TRUE(gateway.provider.requests().empty());
    expect_released(gateway, "alice");
}

TEST(Gateway, WithoutACapOfItsOwnACallGetsTheOutputTheUserCanAfford) {
    Gateway gateway({}, 1'000);
    const json body = chat("a short question", false, 0, "gpt-4o");  // 3x: a 4,096-token default would not fit
    const Streamed answer = post(gateway.server, "/v1/chat/completions", body, gateway.server.as_user("alice"));
    ASSERT_EQ(answer.status, 200) << answer.text;
    const auto cap = json::parse(gateway.provider.requests().at(0).body)["max_completion_tokens"].get<std::int64_t>();
    EXPECT_EQ(cap, 1'000 / 3 - prompt_count(body)) << "the largest output whose charge fits";
    EXPECT_LE(gateway.usage("alice")["used"].get<std::int64_t>(), 1'000);
    // A caller's own cap is the caller's: past the limit it is refused.
    EXPECT_EQ(post(gateway.server, "/v1/chat/completions", chat("again", false, 4'000), gateway.server.as_user("alice")).status, 402);
}

// The same, priced with the model's output weight and split evenly over
// the choices: decided by the ledger in the one authorize.
TEST(Gateway, TheAffordableOutputIsPricedWithTheWeightsForEveryChoice) {
    WeightedGateway gateway({{"output", "4"}}, 1'000);
    standin::Standin& provider = gateway.provider;
    test::TestServer& server = *gateway.server;
    json body = chat("a short question", false);
    body["n"] = 2;
    const Streamed answer = post(server, "/v1/chat/completions", body, server.as_user("alice"));
    ASSERT_EQ(answer.status, 200) << answer.text;
    const auto cap = json::parse(provider.requests().at(0).body)["max_completion_tokens"].get<std::int64_t>();
    // prompt + 4 × (2 × cap) <= 1,000, and one more token per choice would not fit.
    EXPECT_EQ(cap, (1'000 - prompt_count(body)) / 8);
    auto usage = server.usage_of("alice");
    EXPECT_LE(usage["tokens"]["used"].get<std::int64_t>(), 1'000);
    EXPECT_EQ(usage["tokens"]["reserved"], 0);
}

TEST(Gateway, CallersAreUsersOrTheAppForAUser) {
    Gateway gateway;
    httplib::Headers as_app = gateway.server.as_service();
    as_app.emplace("X-Tokenmeter-User", "bob");
    EXPECT_EQ(post(gateway.server, "/v1/chat/completions", chat("hi", false), as_app).status, 200);
    EXPECT_GT(gateway.usage("bob")["used"].get<std::int64_t>(), 0);

    const Streamed anonymous = post(gateway.server, "/v1/chat/completions", chat("hi", false), {});
    EXPECT_EQ(anonymous.status, 401);
    EXPECT_EQ(json::parse(anonymous.text)["error"]["type"], "authentication_error");
    httplib::Headers bad_user = gateway.server.as_service();
    bad_user.emplace("X-Tokenmeter-User", "not a user id");
    EXPECT_EQ(post(gateway.server, "/v1/chat/completions", chat("hi", false), bad_user).status, 400);
    httplib::Headers user_naming_another = gateway.server.as_user("alice");
    user_naming_another.emplace("X-Tokenmeter-User", "bob");
    const Streamed naming_another = post(gateway.server, "/v1/chat/completions", chat("hi", false), user_naming_another);
    EXPECT_EQ(naming_another.status, 403) << "only a service key may name the user";
    EXPECT_EQ(json::parse(naming_another.text)["error"]["type"], "permission_error");
    EXPECT_EQ(gateway.provider.requests().size(), 1U);
}

TEST(Gateway, BadCallsAreRefusedInOpenAIsShapeBeforeAnythingGoesUpstream) {
    Gateway gateway;
    const auto user = gateway.server.as_user("alice");
    const std::vector<std::pair<json, int>> cases = {
        {json::array(), 400},
        {{{"model", "gpt-4o-mini"}}, 400},
        {{{"model", "gpt-4o-mini"}, {"messages", "hi"}}, 400},
        {{{"model", "no-such-model"}, {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}}, 404},
        {{{"model", "text-embedding-3-small"}, {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}}, 404},
        {{{"model", "gpt-4o-mini"}, {"max_tokens", -1}, {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}}, 400},
        {{{"model", "gpt-4o-mini"}, {"n", 1000}, {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}}, 400},
        {{{"model", "gpt-4o-mini"}, {"stream", "yes"}, {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}}, 400},
    };
    for (const auto& [body, status] : cases) {
        const Streamed answer = post(gateway.server, "/v1/chat/completions", body, user);
        EXPECT_EQ(answer.status, status) << body.dump();
        const json error = json::parse(answer.text, nullptr, false)["error"];
        EXPECT_TRUE(error.is_object() && error.contains("type") && error.contains("message")) << answer.text;
    }
    const Streamed not_json = [&] {
        auto response = gateway.server.client().Post("/v1/chat/completions", user, "{", "application/json");
        return Streamed{response->status, response->body, {}};
    }();
    EXPECT_EQ(not_json.status, 400);
    EXPECT_EQ(post(gateway.server, "/v1/embeddings", {{"model", "text-embedding-3-small"}, {"input", json::object()}}, user).status, 400);
    EXPECT_TRUE(gateway.provider.requests().empty());
    expect_released(gateway, "alice");
}

TEST(Gateway, EmbeddingsAreChargedByTheProvidersPromptCount) {
    Gateway gateway;
    const json body = {{"model", "text-embedding-3-small"}, {"input", json::array({"first document", "second one"})}};
    const Streamed answer = post(gateway.server, "/v1/embeddings", body, gateway.server.as_user("alice"));
    ASSERT_EQ(answer.status, 200) << answer.text;
    const json reply = json::parse(answer.text);
    EXPECT_EQ(reply["data"].size(), 2U);
    const ReceiptClaims claims = verified(gateway.server, answer.headers.find("X-Tokenmeter-Receipt")->second);
    EXPECT_EQ(claims.balance.tokens_used, reply["usage"]["prompt_tokens"].get<std::int64_t>());
}

// A client that hangs up mid-stream: the provider's request is cancelled,
// and what was streamed until then is charged (counted), once.
TEST(Gateway, AClientThatHangsUpCancelsTheProviderAndIsChargedForWhatItGot) {
    standin::StandinOptions slow_stream;
    slow_stream.chunk_delay_ms = 100;
    Gateway gateway(slow_stream);
    std::string words;
    for (int i = 0; i < 60; ++i) words += "word" + std::to_string(i) + " ";
    const json body = chat(words, true, 1'000);
    {
        test::RawConnection connection(gateway.server.port());
        const std::string text = body.dump();
        const std::string token = gateway.server.as_user("alice").begin()->second;
        ASSERT_TRUE(connection.send_all("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: " + token +
                                        "\r\nContent-Type: application/json\r\nContent-Length: " +
                                        std::to_string(text.size()) + "\r\n\r\n" + text));
        const std::string received = connection.read_until(
            [](const std::string& r) { return r.find("word2") != std::string::npos; }, std::chrono::seconds(10));
        ASSERT_NE(received.find("word2"), std::string::npos) << received;
    }  // closed here, mid-stream
    bool cancelled = false;
    for (int i = 0; i < 100 && !cancelled; ++i) {
        const auto requests = gateway.provider.requests();
        cancelled = requests.size() == 1 && requests[0].client_disconnected;
        if (!cancelled) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(cancelled) << "the provider's request should be closed when the client leaves";
    json tokens;
    for (int i = 0; i < 100; ++i) {
        tokens = gateway.usage("alice");
        if (tokens["reserved"] == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(tokens["reserved"], 0);
    const std::int64_t used = tokens["used"].get<std::int64_t>();
    EXPECT_GT(used, prompt_count(body)) << "the prompt and what was streamed are charged";
    EXPECT_LT(used, prompt_count(body) + text_count("gpt-4o-mini", "Echo: " + words)) << "not the whole answer";
}

// 64 streams at once against a limit that holds a quarter of them: each is
// refused up front (402) or streams to its end and is settled; the ledger
// never goes past the limit and holds nothing afterwards.
TEST(Gateway, SixtyFourConcurrentStreamsNeverOverspend) {
    // Short words: the stand-in counts a prompt as its bytes / 4, fewer than
    // the exact count reserved, so its usage stays within each reservation.
    const json body = [] {
        json b = chat("a b c d e f g h i j k l m n o p", true, 20);
        b["stream_options"] = {{"include_usage", true}};
        return b;
    }();
    const std::int64_t reserved_each = prompt_count(body) + 20;
    const std::int64_t limit = 16 * reserved_each;
    standin::StandinOptions paced;
    paced.chunk_delay_ms = 20;
    Gateway gateway(paced, limit);
    std::atomic<int> refused{0};
    std::atomic<int> settled{0};
    std::atomic<std::int64_t> charged{0};
    std::atomic<int> broken{0};
    std::vector<std::thread> clients;
    for (int i = 0; i < 64; ++i) {
        clients.emplace_back([&] {
            const Streamed answer = post(gateway.server, "/v1/chat/completions", body, gateway.server.as_user("crowd"));
            if (answer.status == 402) {
                refused += 1;
            } else if (answer.status == 200 && answer.text.find("data: [DONE]") != std::string::npos &&
                       comment(answer.text, "X-Tokenmeter-Usage-Source") == "provider") {
                settled += 1;
                charged += streamed_usage(answer.text)["total_tokens"].get<std::int64_t>();
            } else {
                broken += 1;
            }
        });
    }
    for (auto& client : clients) client.join();
    EXPECT_EQ(broken, 0);
    EXPECT_EQ(refused + settled, 64);
    EXPECT_GE(settled, 16) << "a quarter fits at once";
    EXPECT_GT(refused, 0) << "not all fit";
    const json tokens = gateway.usage("crowd");
    EXPECT_EQ(tokens["reserved"], 0);
    EXPECT_EQ(tokens["used"], charged.load()) << "every settled stream charged once, by its usage";
    EXPECT_LE(tokens["used"].get<std::int64_t>(), limit) << "overspend";
    EXPECT_EQ(gateway.provider.requests().size(), static_cast<std::size_t>(settled.load()));
}

// Bounded memory (gateway_routes.hpp, GatewayOptions): a provider faster
// than its client, or an answer larger than any real one.

// A gateway metric from /metrics (loopback may read them), or -1.
std::int64_t metric(test::TestServer& server, const std::string& name) {
    auto response = server.client().Get("/metrics");
    if (!response) return -1;
    const auto at = response->body.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stoll(response->body.substr(at + name.size() + 2));
}

// What a call may hold past the bound: the one read that crossed it
// (httplib's receive buffer, CPPHTTPLIB_RECV_BUFSIZ).
constexpr std::int64_t one_read = 16 * 1024;

std::int64_t unrelayed_bound() { return static_cast<std::int64_t>(gateway::GatewayOptions{}.stream_unrelayed_bytes_max); }

// A streamed chat sent on a raw connection whose reader it is up to the
// test to be: one that stops reading, reads slowly, or hangs up.
struct RawStream {
    RawStream(Gateway& gateway, const json& body) : connection(gateway.server.port()) {
        // The client's kernel buffer holds little, so what the gateway sends
        // waits in the gateway, as it would behind a slow network.
        const int small = 64 * 1024;
        ::setsockopt(connection.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        const std::string text = body.dump();
        const std::string token = gateway.server.as_user("alice").begin()->second;
        sent = connection.send_all("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: " + token +
                                   "\r\nContent-Type: application/json\r\nContent-Length: " +
                                   std::to_string(text.size()) + "\r\n\r\n" + text);
    }

    // Reads to the end of the stream (or `patience`), keeping only its
    // last bytes: the usage chunk and the gateway's trailer. The bytes read.
    std::size_t read_to_end(std::string& tail, std::chrono::seconds patience) {
        std::size_t total = 0;
        const auto deadline = std::chrono::steady_clock::now() + patience;
        char buffer[65536];
        while (tail.find("data: [DONE]") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
            pollfd ready{connection.fd(), POLLIN, 0};
            if (::poll(&ready, 1, 1000) <= 0) continue;
            const ssize_t n = ::recv(connection.fd(), buffer, sizeof buffer, 0);
            if (n <= 0) break;
            total += static_cast<std::size_t>(n);
            tail.append(buffer, static_cast<std::size_t>(n));
            if (tail.size() > 16384) tail.erase(0, tail.size() - 16384);
        }
        return total;
    }

    test::RawConnection connection;
    bool sent = false;
};

// Waits until the gateway holds more than `bytes` of a provider's answer
// (a call paused for its reader holds just past its bound); the last count.
std::int64_t wait_until_held_past(test::TestServer& server, std::int64_t bytes) {
    std::int64_t held = 0;
    for (int i = 0; i < 200 && held <= bytes; ++i) {
        held = metric(server, "tokenmeter_gateway_held_bytes");
        if (held <= bytes) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return held;
}

// ~50 MB of chunks, sent as fast as the provider can: past the socket
// buffers between it and the client, and below the stream's 64 MiB bound.
constexpr std::int64_t flood_words = 40'000;

TEST(Gateway, AClientReadingSlowlyHoldsBackTheProviderNotTheGatewaysMemory) {
    Gateway gateway;
    ASSERT_TRUE(gateway.provider.queue_scenario("flood", 1));
    json body = chat("flood me", true, flood_words);
    body["stream_options"] = {{"include_usage", true}};
    RawStream stream(gateway, body);
    ASSERT_TRUE(stream.sent);
    const std::string first = stream.connection.read_until(
        [](const std::string& r) { return r.find("data: {") != std::string::npos; }, std::chrono::seconds(10));
    ASSERT_NE(first.find("200 OK"), std::string::npos) << first.substr(0, 300);
    // The client stops reading: the gateway pauses the provider, holding
    // no more than its bound.
    const std::int64_t held = wait_until_held_past(gateway.server, unrelayed_bound());
    EXPECT_GT(held, unrelayed_bound()) << "the call should pause just past its bound";
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_LE(metric(gateway.server, "tokenmeter_gateway_held_bytes"), unrelayed_bound() + one_read);
    ASSERT_EQ(gateway.provider.requests().size(), 1U);
    EXPECT_FALSE(gateway.provider.requests()[0].finished) << "the provider waits for the reader";
    // Then it reads on, to the end: the stream is whole and settled exactly.
    std::string tail;
    const std::size_t read = stream.read_to_end(tail, std::chrono::seconds(120));
    EXPECT_GT(read, static_cast<std::size_t>(flood_words) * standin::flood_word_bytes);
    ASSERT_NE(tail.find("data: [DONE]"), std::string::npos) << tail.substr(0, 300);
    EXPECT_EQ(comment(tail, "X-Tokenmeter-Usage-Source"), "provider");
    const json usage = streamed_usage(tail);
    ASSERT_TRUE(usage.is_object()) << tail.substr(0, 300);
    EXPECT_EQ(usage["completion_tokens"], flood_words);
    const json tokens = gateway.usage("alice");
    EXPECT_EQ(tokens["used"], usage["total_tokens"]);
    EXPECT_EQ(tokens["reserved"], 0);
    EXPECT_EQ(comment(tail, "X-Tokenmeter-Charged-Tokens"), std::to_string(tokens["used"].get<std::int64_t>()));
    EXPECT_LE(metric(gateway.server, "tokenmeter_gateway_held_bytes_call_max"), unrelayed_bound() + one_read)
        << "never more than the bound at once, over the whole stream";
    EXPECT_EQ(metric(gateway.server, "tokenmeter_gateway_held_bytes"), 0);
}

TEST(Gateway, AClientThatHangsUpWhileTheProviderIsHeldBackCancelsIt) {
    Gateway gateway;
    ASSERT_TRUE(gateway.provider.queue_scenario("flood", 1));
    const json body = chat("flood me", true, flood_words);
    {
        RawStream stream(gateway, body);
        ASSERT_TRUE(stream.sent);
        ASSERT_NE(stream.connection.read_until([](const std::string& r) { return r.find("data: {") != std::string::npos; },
                                               std::chrono::seconds(10)).find("data: {"),
                  std::string::npos);
        EXPECT_GT(wait_until_held_past(gateway.server, unrelayed_bound()), unrelayed_bound());
    }  // hangs up, paused
    bool cancelled = false;
    for (int i = 0; i < 200 && !cancelled; ++i) {
        const auto requests = gateway.provider.requests();
        cancelled = requests.size() == 1 && requests[0].client_disconnected;
        if (!cancelled) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(cancelled) << "the paused call is woken and the provider's request closed";
    json tokens;
    for (int i = 0; i < 200; ++i) {
        tokens = gateway.usage("alice");
        if (tokens["reserved"] == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(tokens["reserved"], 0);
    EXPECT_GT(tokens["used"].get<std::int64_t>(), prompt_count(body)) << "what was relayed is charged (counted)";
    EXPECT_LE(tokens["used"].get<std::int64_t>(), prompt_count(body) + flood_words) << "never past what was reserved";
    EXPECT_EQ(metric(gateway.server, "tokenmeter_gateway_held_bytes"), 0) << "nothing left held";
}

// One event that never ends grows in the relay, not in the call: past its
// bound the stream is taken as cut, counted, and the provider's call closed.
TEST(Gateway, AStreamEventPastItsBoundIsCutAndCounted) {
    Gateway gateway;
    ASSERT_TRUE(gateway.provider.queue_scenario("endless_event", 1));
    const std::int64_t writes = 8'192;  // 8 MiB of one event
    const json body = chat("never ending", true, writes);
    const Streamed answer = post(gateway.server, "/v1/chat/completions", body, gateway.server.as_user("alice"));
    ASSERT_EQ(answer.status, 200) << answer.text.substr(0, 300);
    EXPECT_EQ(answer.text.find("data: [DONE]"), std::string::npos);
    EXPECT_EQ(comment(answer.text, "X-Tokenmeter-Usage-Source"), "counted");
    EXPECT_EQ(answer.text.find("xxxx"), std::string::npos) << "the unended event is not passed on";
    const json tokens = gateway.usage("alice");
    EXPECT_EQ(tokens["used"], prompt_count(body)) << "no text came in a whole event";
    EXPECT_EQ(tokens["reserved"], 0);
    bool closed = false;
    for (int i = 0; i < 100 && !closed; ++i) {
        const auto requests = gateway.provider.requests();
        closed = requests.size() == 1 && requests[0].client_disconnected;
        if (!closed) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(closed) << "the provider's call is closed before its 8 MiB are sent";
}

// A whole answer past GatewayOptions::whole_answer_bytes_max: 502 in
// OpenAI's shape, the reservation released, nothing charged; whether its
// size shows in its head (Content-Length) or only as it comes (chunked).
// The largest real one, base64 embeddings of 2048 × 3072, passes.
TEST(Gateway, AWholeAnswerPastItsBoundIs502AndChargesNothing) {
    Gateway gateway;
    ASSERT_TRUE(gateway.provider.queue_scenario("flood", 1));
    const Streamed flood = post(gateway.server, "/v1/chat/completions", chat("flood me", false, 50'000),
                                gateway.server.as_user("alice"));  // 50 MB, chunked
    EXPECT_EQ(flood.status, 502);
    const json error = json::parse(flood.text)["error"];
    EXPECT_EQ(error["code"], "upstream_answer_too_large");
    EXPECT_EQ(error["type"], "server_error");
    EXPECT_TRUE(error.contains("message") && error.contains("param"));
    expect_released(gateway, "alice");

    json inputs = json::array();
    for (int i = 0; i < 2048; ++i) inputs.push_back("document " + std::to_string(i));
    // text-embedding-3-large's size (the catalog serves only -small here; the stand-in makes any dimensions).
    json embeddings = {{"model", "text-embedding-3-small"}, {"input", inputs}, {"dimensions", 3072},
                       {"encoding_format", "float"}};
    const Streamed floats = post(gateway.server, "/v1/embeddings", embeddings, gateway.server.as_user("alice"));
    EXPECT_EQ(floats.status, 502);  // ~130 MB of numbers, refused at its Content-Length
    EXPECT_EQ(json::parse(floats.text)["error"]["code"], "upstream_answer_too_large");
    expect_released(gateway, "alice");
    EXPECT_LE(metric(gateway.server, "tokenmeter_gateway_held_bytes_call_max"),
              static_cast<std::int64_t>(gateway::GatewayOptions{}.whole_answer_bytes_max));

    embeddings["encoding_format"] = "base64";
    const Streamed base64 = post(gateway.server, "/v1/embeddings", embeddings, gateway.server.as_user("alice"));
    ASSERT_EQ(base64.status, 200) << base64.text.substr(0, 300);
    EXPECT_GT(base64.text.size(), 32U << 20);
    const json reply = json::parse(base64.text);
    EXPECT_EQ(reply["data"].size(), 2048U);
    EXPECT_EQ(gateway.usage("alice")["used"], reply["usage"]["prompt_tokens"]);
    EXPECT_EQ(gateway.usage("alice")["reserved"], 0);
}

using gateway::CallEnd;

// UpstreamCall's pause itself: every way out of it.
struct FloodCall {
    explicit FloodCall(std::int64_t words = flood_words) : provider(standin::StandinOptions{}) {
        const int port = provider.start("127.0.0.1", 0);
        provider.queue_scenario("flood", 1);
        upstream = {{"gpt-4o-mini"}, "http://127.0.0.1:" + std::to_string(port) + "/v1", "", 10'000};
        body = chat("flood me", true, words).dump();
    }
    std::unique_ptr<gateway::UpstreamCall> start() {
        auto call = std::make_unique<gateway::UpstreamCall>(upstream, "/chat/completions", body,
                                                            gateway::AnswerBounds{64 << 20, bound}, held);
        call->wait_started();
        return call;
    }
    // Waits until the call holds more than its bound: paused.
    bool paused() {
        for (int i = 0; i < 200; ++i) {
            if (held->now() > static_cast<std::int64_t>(bound)) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }

    standin::Standin provider;
    config::UpstreamSettings upstream;
    std::string body;
    std::size_t bound = 64 * 1024;
    std::shared_ptr<gateway::HeldBytes> held = std::make_shared<gateway::HeldBytes>();
};

TEST(GatewayUpstreamCall, APausedCallReadsOnAsItsBytesAreTaken) {
    FloodCall flood;
    auto call = flood.start();
    ASSERT_TRUE(flood.paused());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_LE(flood.held->now(), static_cast<std::int64_t>(flood.bound) + one_read);
    EXPECT_FALSE(flood.provider.requests().at(0).finished);
    std::size_t taken = 0;
    std::string tail;
    for (;;) {
        const std::string bytes = call->take(std::chrono::milliseconds(200));
        if (bytes.empty() && call->end() != CallEnd::open) break;
        taken += bytes.size();
        tail = (tail + bytes).substr(std::max<std::size_t>(tail.size() + bytes.size(), 64) - 64);
    }
    EXPECT_EQ(call->end(), CallEnd::complete);
    EXPECT_GT(taken, static_cast<std::size_t>(flood_words) * standin::flood_word_bytes);
    EXPECT_NE(tail.find("data: [DONE]"), std::string::npos);
    EXPECT_LE(flood.held->call_max(), static_cast<std::int64_t>(flood.bound) + one_read);
    EXPECT_EQ(flood.held->now(), 0);
}

TEST(GatewayUpstreamCall, CancelWakesAPausedCall) {
    FloodCall flood;
    auto call = flood.start();
    ASSERT_TRUE(flood.paused());
    const auto started = std::chrono::steady_clock::now();
    call->cancel();
    call->wait_ended();
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
    EXPECT_EQ(call->end(), CallEnd::cancelled);
    call.reset();
    EXPECT_EQ(flood.held->now(), 0) << "what no one took leaves with the call";
}

TEST(GatewayUpstreamCall, DestroyingAPausedCallEndsIt) {
    FloodCall flood;
    auto call = flood.start();
    ASSERT_TRUE(flood.paused());
    const auto started = std::chrono::steady_clock::now();
    call.reset();
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
    EXPECT_EQ(flood.held->now(), 0);
    bool closed = false;
    for (int i = 0; i < 100 && !closed; ++i) {
        closed = flood.provider.requests().at(0).client_disconnected;
        if (!closed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(closed);
}

TEST(GatewayUpstreamCall, HoldWholeReadsAPausedCallToItsEndOrItsBound) {
    FloodCall flood(2'000);  // ~2.5 MB
    auto call = flood.start();
    ASSERT_TRUE(flood.paused());
    call->hold_whole(8 << 20);
    call->wait_ended();
    EXPECT_EQ(call->end(), CallEnd::complete);
    EXPECT_GT(call->take(std::chrono::milliseconds(0)).size(), 2'000U * standin::flood_word_bytes);

    FloodCall larger(2'000);
    auto bounded = larger.start();
    ASSERT_TRUE(larger.paused());
    bounded->hold_whole(1 << 20);
    bounded->wait_ended();
    EXPECT_EQ(bounded->end(), CallEnd::too_large);
}

// kill -9 of the server mid-stream: the provider's request is dropped with
// it, the reservation stays held (never charged), and expires after its TTL.
TEST(Gateway, KillNineMidStreamLeavesAReservationThatExpiresUncharged) {
    standin::StandinOptions slow_stream;
    slow_stream.chunk_delay_ms = 200;
    standin::Standin provider(slow_stream);
    const int provider_port = provider.start("127.0.0.1", 0);
    const std::string dir = test::make_temp_dir();
    (void)keys::generate_signing_key_file(dir + "/signing.jwk");
    const json config = {{"db", "sqlite:" + dir + "/ledger.db"},
                         {"jwt_secret", test::jwt_secret},
                         {"service_keys", {test::service_key}},
                         {"signing_key_file", dir + "/signing.jwk"},
                         {"reservation_ttl_seconds", "2"},
                         {"upstreams", {{{"models", {"gpt-4o-mini"}},
                                         {"base_url", "http://127.0.0.1:" + std::to_string(provider_port) + "/v1"}}}}};
    std::ofstream(dir + "/config.json") << config.dump();
    std::string words;
    for (int i = 0; i < 40; ++i) words += "w" + std::to_string(i) + " ";
    const std::string text = chat(words, true, 100).dump();
    const std::string token = "Bearer " + test::mint_user_token("alice", std::time(nullptr));
    auto usage_of = [&](int port) {
        httplib::Client client("127.0.0.1", port);
        return json::parse(client.Get("/v1/users/alice/usage", {{"Authorization", "Bearer " + test::service_key}})->body)["tokens"];
    };
    {
        test::ServerProcess server(dir + "/config.json");
        test::RawConnection connection(server.port());
        ASSERT_TRUE(connection.send_all("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: " + token +
                                        "\r\nContent-Type: application/json\r\nContent-Length: " +
                                        std::to_string(text.size()) + "\r\n\r\n" + text));
        const std::string received = connection.read_until(
            [](const std::string& r) { return r.find("w1") != std::string::npos; }, std::chrono::seconds(10));
        ASSERT_NE(received.find("w1"), std::string::npos);
        EXPECT_GT(usage_of(server.port())["reserved"].get<std::int64_t>(), 0);
        server.kill_hard();
    }
    bool dropped = false;
    for (int i = 0; i < 100 && !dropped; ++i) {
        dropped = provider.requests().size() == 1 && provider.requests()[0].client_disconnected;
        if (!dropped) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(dropped) << "the provider's request dies with the server";
    test::ServerProcess restarted(dir + "/config.json");
    std::this_thread::sleep_for(std::chrono::milliseconds(2'500));  // past the reservation's TTL
    const json tokens = usage_of(restarted.port());
    EXPECT_EQ(tokens["reserved"], 0);
    EXPECT_EQ(tokens["used"], 0) << "nothing was settled, so nothing is charged";
    // The stream is paid for when it is run again, once.
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tokenmeter

namespace tokenmeter {
namespace {

TEST(GatewayConfig, UpstreamsAreCheckedAtLoadNamingTheEntry) {
    auto good = config::parse_upstreams(
        R"([{"models":["gpt-4o"],"base_url":"https://api.openai.com/v1/","api_key":"sk-x","timeout_ms":5000}])");
    ASSERT_TRUE(good.has_value());
    EXPECT_EQ(good->at(0).base_url, "https://api.openai.com/v1");
    EXPECT_EQ(good->at(0).timeout_ms, 5000);
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"{}", "JSON array"},
        {R"([{"base_url":"http://x"}])", "upstreams[0]: models is missing"},
        {R"([{"models":[],"base_url":"http://x"}])", "upstreams[0]: models must be"},
        {R"([{"models":["m"]}])", "upstreams[0]: base_url is missing"},
        {R"([{"models":["m"],"base_url":"ftp://x"}])", "upstreams[0]: base_url must be"},
        {R"([{"models":["m"],"base_url":"http://x?q=1"}])", "upstreams[0]: base_url must be"},
        {R"([{"models":["m"],"base_url":"http://x","timeout_ms":5}])", "upstreams[0]: timeout_ms"},
        {R"([{"models":["m"],"base_url":"http://x","api_key":"a b"}])", "upstreams[0]: api_key"},
        {R"([{"models":["m"],"base_url":"http://x","extra":1}])", "upstreams[0]: unknown key \"extra\""},
        {R"([{"models":["m"],"base_url":"http://x"},{"models":["m"],"base_url":"http://y"}])",
         "upstreams[1]: model \"m\" is already served"},
    };
    for (const auto& [text, message] : bad) {
        auto parsed = config::parse_upstreams(text);
        ASSERT_FALSE(parsed.has_value()) << text;
        EXPECT_EQ(parsed.error().code, "config_invalid");
        EXPECT_NE(parsed.error().message.find(message), std::string::npos) << parsed.error().message;
    }
    // In a config file, and from the file TOKENMETER_UPSTREAMS_FILE names.
    config::ServerConfig config;
    EXPECT_FALSE(config::apply_file(config, R"({"upstreams":[{"models":["gpt-4o"],"base_url":"http://127.0.0.1:9/v1"}]})"));
    EXPECT_EQ(config.upstreams.size(), 1U);
    auto refused = config::apply_file(config, R"({"upstreams":[{"models":"gpt-4o","base_url":"http://x"}]})");
    ASSERT_TRUE(refused.has_value());
    EXPECT_NE(refused->message.find("upstreams[0]"), std::string::npos);
    EXPECT_FALSE(config::apply_environment(config, {{"TOKENMETER_UPSTREAMS_FILE", "/nonexistent/upstreams.json"}}));
    test::TestServerOptions options;
    options.configure = [](config::ServerConfig& c) { c.upstreams_file = "/nonexistent/upstreams.json"; };
    try {
        test::TestServer server(options);
        ADD_FAILURE() << "a missing upstreams file must stop the start";
    } catch (const std::runtime_error& error) {
        EXPECT_NE(std::string(error.what()).find("TOKENMETER_UPSTREAMS_FILE"), std::string::npos) << error.what();
    }
}

}  // namespace
}  // namespace tokenmeter
