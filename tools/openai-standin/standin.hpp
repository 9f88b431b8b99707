// A local OpenAI-compatible stand-in for tests (never on the production
// path): the upstream the gateway (DESIGN.md §12) is tested against. It speaks
// OpenAI's wire format for the two calls the gateway forwards:
//
//   POST /v1/chat/completions   a deterministic reply ("Echo: " + the last
//                               user message), JSON or SSE (`stream: true`,
//                               one chunk per word, `data: [DONE]`; a final
//                               `choices: []` usage chunk when
//                               `stream_options.include_usage` is true)
//   POST /v1/embeddings         deterministic unit vectors (8 floats unless
//                               `dimensions` says otherwise), float or base64
//
// Token counts are stated, not measured (the stand-in has no tokenizer):
//   prompt_tokens      ceil(bytes / 4) of the text of every message's content
//                      (embeddings: the same per input, summed)
//   completion_tokens  one per word of the reply, i.e. one per streamed delta
// so a test can predict every number; see README.md for the details.
//
// Each request can behave differently, so one running stand-in serves many
// tests at once. The scenario of a request is, first that applies:
//   1. the header `X-Standin-Scenario: NAME`;
//   2. a model named `standin-NAME` (e.g. "standin-cut");
//   3. the next of the scenarios queued by POST /_standin/scenario
//      {"scenario": NAME, "count": N} (or queue_scenario());
//   4. StandinOptions::scenario (the --scenario flag), "normal" by default.
// Scenarios: normal, cut, no_usage, slow_first_byte, rate_limited,
// server_error, bad_request, cached, reasoning, hang, flood, endless_event
// (see Scenario below).
//
// Control endpoints: POST /_standin/scenario, GET /_standin/requests (what
// was received, and whether the client went away before the answer was
// complete), POST /_standin/reset.
//
// Invariants: the reply text and every count depend only on the request; a
// request is logged before it is answered, and its entry is final once the
// answer is complete or the client has gone; stop() ends every wait (slow,
// hang, chunk delays) promptly.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "local_server.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace tokenmeter::openai_standin {

namespace limits {
// Request bodies: far beyond any test's prompt, small enough that a runaway
// test cannot exhaust memory.
inline constexpr std::size_t body_bytes_max = 4 * 1024 * 1024;
// Requests kept for GET /_standin/requests: the oldest are dropped beyond it
// (ids keep counting), so a long-lived stand-in does not grow without bound.
inline constexpr std::size_t requests_logged_max = 1000;
// Bytes of each logged body; the rest is cut and `body_truncated` is set.
inline constexpr std::size_t logged_body_bytes_max = 64 * 1024;
// Scenarios waiting in the queue, and N of one POST /_standin/scenario.
inline constexpr std::size_t scenarios_queued_max = 10000;
// X-Standin-Delay-Ms and X-Standin-Chunk-Delay-Ms: a test never needs more,
// and a typo must not hold a worker for hours.
inline constexpr std::int64_t delay_ms_max = 600000;
// Words in a reply (so SSE chunks in a stream): bounds the work per request.
inline constexpr std::size_t reply_words_max = 100000;
// Embedding dimensions (`dimensions` in the request).
inline constexpr std::int64_t embedding_dimensions_max = 4096;
// Worker threads: each hanging or slow request holds one, and many tests
// share one stand-in; idle threads cost only their stacks.
inline constexpr std::size_t workers = 64;
}  // namespace limits

inline constexpr std::int64_t embedding_dimensions_default = 8;
inline constexpr std::int64_t slow_first_byte_ms_default = 1000;
inline constexpr std::int64_t retry_after_seconds_default = 1;

// What a request's answer looks like (see README.md for each one's bytes).
enum class Scenario {
    normal = 0,       // the reply, usage as stated
    cut = 1,          // a stream stops after half its words: connection closed, no [DONE], no usage
                      // (not streaming: headers, then the connection closes mid-body)
    no_usage = 2,     // a stream ends with [DONE] but ignores include_usage; a JSON reply has no usage
    slow_first_byte = 3,  // waits X-Standin-Delay-Ms (default 1000) before the first byte
    rate_limited = 4,     // 429, Retry-After (X-Standin-Retry-After, default 1), OpenAI's error object
    server_error = 5,     // 500, OpenAI's error object
    bad_request = 6,      // 400, OpenAI's error object (invalid_request_error)
    cached = 7,           // usage.prompt_tokens_details.cached_tokens = prompt_tokens / 2
    reasoning = 8,        // usage.completion_tokens_details.reasoning_tokens = 2 x words,
                          // counted in completion_tokens too (as OpenAI does)
    hang = 9,             // never answers; returns once the client has gone (or stop())
    flood = 10,           // a long answer as fast as it goes: max_completion_tokens (else max_tokens,
                          // else reply_words_max) "words" of flood_word_bytes of text, one a chunk,
                          // no chunk delay; JSON: one message of them, sent chunked (no Content-Length)
    endless_event = 11,   // a stream whose second event never ends: its data line runs on in
                          // flood_word_bytes writes, max_completion_tokens of them, then the
                          // connection closes; JSON: as normal
};

// The bytes of one word of a flood (and of one write of an endless event).
inline constexpr std::size_t flood_word_bytes = 1024;

// "normal", "cut", ...; nullopt for an unknown name.
std::optional<Scenario> scenario_from_name(std::string_view name);
const char* scenario_name(Scenario scenario);

struct StandinOptions {
    std::string api_key;          // empty: any request is accepted, with or without a key
    std::string scenario = "normal";  // the default when nothing else chooses one
    std::int64_t slow_first_byte_ms = slow_first_byte_ms_default;
    // A pause between streamed chunks when the request names none
    // (X-Standin-Chunk-Delay-Ms): for clients, such as a gateway, that do
    // not pass the caller's headers on.
    std::int64_t chunk_delay_ms = 0;
};

// One request as received, for GET /_standin/requests and requests().
struct RecordedRequest {
    std::uint64_t id = 0;
    std::string method;
    std::string path;
    std::string scenario;
    std::string body;             // at most limits::logged_body_bytes_max
    bool body_truncated = false;
    nlohmann::json headers;       // the headers of interest, lower-case names
    bool stream = false;
    int status = 0;               // 0 until an answer was chosen
    bool finished = false;        // the answer is complete, or the client has gone
    bool client_disconnected = false;  // the client went away before the answer was complete
};

nlohmann::json to_json(const RecordedRequest& request);

class Standin {
public:
    explicit Standin(StandinOptions options);
    ~Standin();
    Standin(const Standin&) = delete;
    Standin& operator=(const Standin&) = delete;

    // Binds (port 0: a free one); the port, or -1. Then serve() blocks
    // serving on the calling thread (the executable).
    int bind(const std::string& host, int port);
    bool serve();
    // bind(), then serves on a background thread; the port, or -1.
    int start(const std::string& host, int port);
    void stop();
    // http://HOST:PORT; an OpenAI SDK's base URL is this + "/v1".
    std::string base_url() const;

    // The same as the control endpoints, for in-process tests. false for an
    // unknown scenario or a count outside 1..limits::scenarios_queued_max.
    bool queue_scenario(std::string_view name, std::int64_t count);
    std::vector<RecordedRequest> requests() const;
    void reset();

private:
    struct Call;

    void install(httplib::Server& server);
    void install_control(httplib::Server& server);
    void chat_completions(const httplib::Request& request, httplib::Response& response);
    void embeddings(const httplib::Request& request, httplib::Response& response);
    // Logs the request, checks the key, picks the scenario and answers the
    // scenarios that end before any reply (errors, waits); nullopt when the
    // request is answered already.
    std::optional<Call> begin(const httplib::Request& request, httplib::Response& response);
    std::optional<Scenario> choose_scenario(const httplib::Request& request, const std::string& model,
                                            std::string& unknown);
    bool authorized(const httplib::Request& request, httplib::Response& response) const;
    // Sleeps up to `ms`, in short steps; false when the client went or stop() was called.
    bool wait(const httplib::Request& request, std::int64_t ms) const;
    void stream_reply(const Call& call, const std::vector<std::string>& words, const std::string& finish_reason,
                      const nlohmann::json& usage, bool include_usage, std::int64_t chunk_delay_ms,
                      httplib::Response& response);
    // endless_event: the role chunk, then an event that never ends.
    void stream_endless_event(const Call& call, std::size_t writes, httplib::Response& response);
    void finish(std::uint64_t id, int status, bool client_disconnected);
    std::uint64_t record(const httplib::Request& request);
    void set_scenario(std::uint64_t id, Scenario scenario, bool stream);

    StandinOptions options_;
    standin_support::LocalServer server_;
    std::atomic<bool> stopping_{false};

    mutable std::mutex mutex_;
    std::deque<RecordedRequest> requests_;
    std::deque<Scenario> queued_;
    std::uint64_t next_request_id_ = 1;
};

// The stated counts, exposed so tests predict them with the same rules.
// ceil(bytes / 4).
std::int64_t tokens_of_text(std::string_view text);
// The reply's words for a chat request body: "Echo:" then the words of the
// last user message, at most `max_words` of them (the request's
// max_completion_tokens, else max_tokens; no limit when absent).
std::vector<std::string> reply_words(const nlohmann::json& body, std::size_t max_words);
// prompt_tokens of a chat request body: tokens_of_text of every message's
// content text (string content, or the `text` of its text parts), concatenated.
std::int64_t chat_prompt_tokens(const nlohmann::json& body);
// The deterministic unit vector of an embedding input.
std::vector<float> embedding_of(std::string_view input, std::int64_t dimensions);

}  // namespace tokenmeter::openai_standin
