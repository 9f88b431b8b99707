#include "standin.hpp"

#include <httplib.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace tokenmeter::openai_standin {

// Design notes.
// - The scenario is chosen per request (header, model name, queue) rather
//   than per process, so parallel tests share one stand-in without racing on
//   a global mode; the queue exists for clients that cannot add a header
//   (an SDK behind the gateway) and cannot choose the model either.
// - Counts are a stated rule (bytes / 4, one token per word), not a real
//   tokenizer: the gateway under test counts exactly itself, and a test must
//   be able to tell the provider's reported numbers from its own.
// - cut returns false from the content provider, so httplib closes the
//   connection without the last chunk: what a client sees when an upstream
//   dies mid-stream (a clean end would look like a finished stream).

struct Standin::Call {
    std::uint64_t id = 0;
    Scenario scenario = Scenario::normal;
    nlohmann::json body;  // discarded when the body is not JSON
    std::string model;
};

namespace {

using Json = nlohmann::json;
using httplib::Request;
using httplib::Response;

constexpr std::array<const char*, 12> scenario_names = {
    "normal", "cut", "no_usage", "slow_first_byte", "rate_limited", "server_error",
    "bad_request", "cached", "reasoning", "hang", "flood", "endless_event"};
constexpr std::string_view model_prefix = "standin-";
constexpr std::int64_t wait_step_ms = 10;

// OpenAI's error object: {"error": {"message", "type", "param", "code"}}.
void reply_error(Response& response, int status, const std::string& message, const std::string& type,
                 const Json& param = nullptr, const Json& code = nullptr) {
    response.status = status;
    const Json error = {{"message", message}, {"type", type}, {"param", param}, {"code", code}};
    response.set_content(Json{{"error", error}}.dump(), "application/json");
}

// A non-negative integer header, at most `max`; `fallback` when absent or not a number.
std::int64_t header_int(const Request& request, const char* name, std::int64_t fallback, std::int64_t max) {
    const std::string text = request.get_header_value(name);
    if (text.empty() || text.size() > 12) return fallback;
    if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) return fallback;
    return std::min<std::int64_t>(std::stoll(text), max);
}

// The text of a message's content: a string, or the `text` of its text parts.
std::string content_text(const Json& content) {
    if (content.is_string()) return content.get<std::string>();
    std::string text;
    if (!content.is_array()) return text;
    for (const Json& part : content) {
        if (part.is_object() && part.contains("text") && part["text"].is_string()) text += part["text"].get<std::string>();
    }
    return text;
}

std::vector<std::string> split_words(const std::string& text, std::vector<std::string> words, std::size_t max) {
    std::size_t i = 0;
    while (i < text.size() && words.size() < max) {
        while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) != 0) ++i;
        const std::size_t start = i;
        while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) == 0) ++i;
        if (i > start) words.push_back(text.substr(start, i - start));
    }
    return words;
}

std::uint64_t fnv1a(std::string_view bytes) {
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    for (char c : bytes) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Usage as the scenario states it (README.md, "Usage").
Json chat_usage(const Request& request, const Json& body, Scenario scenario, std::size_t words) {
    const std::int64_t prompt = header_int(request, "X-Standin-Prompt-Tokens", chat_prompt_tokens(body), INT32_MAX);
    const std::int64_t visible =
        header_int(request, "X-Standin-Completion-Tokens", static_cast<std::int64_t>(words), INT32_MAX);
    const std::int64_t reasoning = scenario == Scenario::reasoning ? 2 * visible : 0;
    const std::int64_t completion = visible + reasoning;
    Json usage = {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
    if (scenario == Scenario::cached || scenario == Scenario::reasoning) {
        usage["prompt_tokens_details"] = {{"cached_tokens", scenario == Scenario::cached ? prompt / 2 : 0},
                                          {"audio_tokens", 0}};
        usage["completion_tokens_details"] = {{"reasoning_tokens", reasoning}, {"audio_tokens", 0},
                                              {"accepted_prediction_tokens", 0}, {"rejected_prediction_tokens", 0}};
    }
    return usage;
}

// Sends `text`'s first half after the headers, then drops the connection.
void reply_cut(Response& response, std::string text, const char* content_type) {
    const std::size_t length = text.size();  // before the move below
    response.set_content_provider(length, content_type,
                                  [text = std::move(text)](std::size_t offset, std::size_t, httplib::DataSink& sink) {
                                      if (offset == 0) sink.write(text.data(), text.size() / 2);
                                      return false;
                                  });
}

// Sends `text` in pieces of 64 KiB without a Content-Length (chunked), as
// fast as the client reads: an answer whose size shows only as it comes.
void reply_chunked(Response& response, std::string text, const char* content_type) {
    response.set_chunked_content_provider(
        content_type, [text = std::move(text)](std::size_t offset, httplib::DataSink& sink) {
            if (offset >= text.size()) {
                sink.done();
                return true;
            }
            return sink.write(text.data() + offset, std::min<std::size_t>(64 * 1024, text.size() - offset));
        });
}

// The "words" of a flood, one a chunk: each flood_word_bytes of ordinary
// text (a tokenizer counts it at its usual pace), told apart by number.
std::vector<std::string> flood_words(std::size_t count) {
    std::string filler;
    while (filler.size() < flood_word_bytes) filler += " lorem ipsum";
    std::vector<std::string> words;
    words.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        std::string word = "flood" + std::to_string(i) + filler;
        word.resize(flood_word_bytes);
        words.push_back(std::move(word));
    }
    return words;
}

std::string sse(const Json& event) { return "data: " + event.dump() + "\n\n"; }

// Typed reads of optional request fields: a field of the wrong type reads as
// absent here and is refused where it matters, never thrown.
bool flag(const Json& object, const char* name) {
    return object.is_object() && object.contains(name) && object[name].is_boolean() && object[name].get<bool>();
}

std::string text_field(const Json& object, const char* name, const std::string& fallback) {
    if (!object.is_object() || !object.contains(name) || !object[name].is_string()) return fallback;
    return object[name].get<std::string>();
}

}  // namespace

std::optional<Scenario> scenario_from_name(std::string_view name) {
    for (std::size_t i = 0; i < scenario_names.size(); ++i) {
        if (name == scenario_names[i]) return static_cast<Scenario>(i);
    }
    return std::nullopt;
}

const char* scenario_name(Scenario scenario) { return scenario_names.at(static_cast<std::size_t>(scenario)); }

Json to_json(const RecordedRequest& r) {
    return Json{{"id", r.id},         {"method", r.method},   {"path", r.path},
                {"scenario", r.scenario}, {"body", r.body},   {"body_truncated", r.body_truncated},
                {"headers", r.headers}, {"stream", r.stream}, {"status", r.status},
                {"finished", r.finished}, {"client_disconnected", r.client_disconnected}};
}

std::int64_t tokens_of_text(std::string_view text) { return static_cast<std::int64_t>((text.size() + 3) / 4); }

std::vector<std::string> reply_words(const Json& body, std::size_t max_words) {
    std::string last_user;
    if (body.is_object() && body.contains("messages") && body["messages"].is_array()) {
        for (const Json& message : body["messages"]) {
            if (message.is_object() && text_field(message, "role", "") == "user" && message.contains("content")) {
                last_user = content_text(message["content"]);
            }
        }
    }
    const std::size_t max = std::min(max_words, limits::reply_words_max);
    if (max == 0) return {};
    return split_words(last_user, {"Echo:"}, max);
}

std::int64_t chat_prompt_tokens(const Json& body) {
    std::string text;
    if (body.is_object() && body.contains("messages") && body["messages"].is_array()) {
        for (const Json& message : body["messages"]) {
            if (message.is_object() && message.contains("content")) text += content_text(message["content"]);
        }
    }
    return tokens_of_text(text);
}

std::vector<float> embedding_of(std::string_view input, std::int64_t dimensions) {
    const std::uint64_t seed = fnv1a(input);
    std::vector<float> vector(static_cast<std::size_t>(std::max<std::int64_t>(dimensions, 1)));
    double norm = 0;
    for (std::size_t i = 0; i < vector.size(); ++i) {
        const double unit = static_cast<double>(splitmix64(seed + i) >> 11) * 0x1.0p-53;  // [0, 1)
        vector[i] = static_cast<float>(unit * 2 - 1);
        norm += static_cast<double>(vector[i]) * static_cast<double>(vector[i]);
    }
    norm = std::sqrt(norm);
    if (norm > 0) {
        for (float& v : vector) v = static_cast<float>(static_cast<double>(v) / norm);
    }
    return vector;
}

Standin::Standin(StandinOptions options) : options_(std::move(options)) {
    if (!scenario_from_name(options_.scenario)) throw std::invalid_argument("unknown scenario " + options_.scenario);
}

Standin::~Standin() { stop(); }

std::string Standin::base_url() const { return server_.base_url(); }

int Standin::bind(const std::string& host, int port) {
    return server_.bind(host, port, [this](httplib::Server& server) {
        server.new_task_queue = [] { return new httplib::ThreadPool(limits::workers); };
        server.set_payload_max_length(limits::body_bytes_max);
        // An answer's head and body go out in separate writes; without this, a
        // keep-alive client's delayed ACK holds the body back ~40 ms, which a
        // real provider's front end does not (and which would swamp what the
        // gateway bench measures).
        server.set_tcp_nodelay(true);
        install(server);
    });
}

bool Standin::serve() { return server_.serve(); }

int Standin::start(const std::string& host, int port) {
    const int bound = bind(host, port);
    if (bound > 0) server_.serve_in_background();
    return bound;
}

void Standin::stop() {
    stopping_ = true;
    server_.stop();
}

bool Standin::queue_scenario(std::string_view name, std::int64_t count) {
    const auto scenario = scenario_from_name(name);
    if (!scenario || count < 1) return false;
    std::lock_guard<std::mutex> guard(mutex_);
    if (queued_.size() + static_cast<std::size_t>(count) > limits::scenarios_queued_max) return false;
    queued_.insert(queued_.end(), static_cast<std::size_t>(count), *scenario);
    return true;
}

std::vector<RecordedRequest> Standin::requests() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return {requests_.begin(), requests_.end()};
}

void Standin::reset() {
    std::lock_guard<std::mutex> guard(mutex_);
    requests_.clear();
    queued_.clear();
}

std::uint64_t Standin::record(const Request& request) {
    RecordedRequest entry;
    entry.method = request.method;
    entry.path = request.path;
    entry.body = request.body.substr(0, limits::logged_body_bytes_max);
    entry.body_truncated = request.body.size() > limits::logged_body_bytes_max;
    entry.headers = Json::object();
    for (const auto& [name, value] : request.headers) {
        std::string lower = name;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (lower == "host" || lower == "content-length" || lower.rfind("remote_", 0) == 0 || lower.rfind("local_", 0) == 0) continue;
        const std::string joined = entry.headers.contains(lower) ? entry.headers[lower].get<std::string>() + ", " + value : value;
        entry.headers[lower] = joined;
    }
    std::lock_guard<std::mutex> guard(mutex_);
    entry.id = next_request_id_++;
    requests_.push_back(std::move(entry));
    if (requests_.size() > limits::requests_logged_max) requests_.pop_front();
    return requests_.back().id;
}

void Standin::set_scenario(std::uint64_t id, Scenario scenario, bool stream) {
    std::lock_guard<std::mutex> guard(mutex_);
    for (auto it = requests_.rbegin(); it != requests_.rend(); ++it) {
        if (it->id != id) continue;
        it->scenario = scenario_name(scenario);
        it->stream = stream;
        return;
    }
}

void Standin::finish(std::uint64_t id, int status, bool client_disconnected) {
    std::lock_guard<std::mutex> guard(mutex_);
    for (auto it = requests_.rbegin(); it != requests_.rend(); ++it) {
        if (it->id != id) continue;
        it->status = status;
        it->finished = true;
        it->client_disconnected = client_disconnected;
        return;
    }
}

bool Standin::wait(const Request& request, std::int64_t ms) const {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
        if (stopping_ || request.is_connection_closed()) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(wait_step_ms));
    }
    return !stopping_ && !request.is_connection_closed();
}

std::optional<Scenario> Standin::choose_scenario(const Request& request, const std::string& model, std::string& unknown) {
    const std::string header = request.get_header_value("X-Standin-Scenario");
    if (!header.empty()) {
        unknown = header;
        return scenario_from_name(header);
    }
    if (model.rfind(model_prefix, 0) == 0) {
        unknown = model.substr(model_prefix.size());
        return scenario_from_name(unknown);
    }
    std::lock_guard<std::mutex> guard(mutex_);
    if (!queued_.empty()) {
        const Scenario next = queued_.front();
        queued_.pop_front();
        return next;
    }
    return scenario_from_name(options_.scenario);
}

bool Standin::authorized(const Request& request, Response& response) const {
    if (options_.api_key.empty()) return true;
    const std::string authorization = request.get_header_value("Authorization");
    if (authorization.rfind("Bearer ", 0) != 0 || authorization.size() <= 7) {
        reply_error(response, 401,
                    "You didn't provide an API key. You need to provide your API key in an Authorization header "
                    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    "invalid_request_error");
        return false;
    }
    if (authorization == "Bearer " + options_.api_key) return true;
    const std::string key = authorization.substr(7);
    const std::string shown = key.size() > 8 ? key.substr(0, 3) + "*****" + key.substr(key.size() - 4) : "*****";
    reply_error(response, 401, "Incorrect API key provided: " + shown + ".", "invalid_request_error", nullptr,
                "invalid_api_key");
    return false;
}

std::optional<Standin::Call> Standin::begin(const Request& request, Response& response) {
    Call call;
    call.id = record(request);
    if (!authorized(request, response)) {
        finish(call.id, response.status, false);
        return std::nullopt;
    }
    call.body = Json::parse(request.body, nullptr, false);
    if (call.body.is_object() && call.body.contains("model") && call.body["model"].is_string()) {
        call.model = call.body["model"].get<std::string>();
    }
    std::string name;
    const auto scenario = choose_scenario(request, call.model, name);
    if (!scenario) {
        reply_error(response, 400, "Unknown stand-in scenario '" + name + "'.", "invalid_request_error",
                    "X-Standin-Scenario", "unknown_standin_scenario");
        finish(call.id, 400, false);
        return std::nullopt;
    }
    call.scenario = *scenario;
    const bool stream = flag(call.body, "stream");
    set_scenario(call.id, call.scenario, stream);
    switch (call.scenario) {
        case Scenario::rate_limited:
            reply_error(response, 429, "Rate limit reached for requests. Please try again in 1s.", "requests", nullptr,
                        "rate_limit_exceeded");
            response.set_header("Retry-After", std::to_string(header_int(request, "X-Standin-Retry-After",
                                                                           retry_after_seconds_default, 86400)));
            response.set_header("x-ratelimit-remaining-requests", "0");
            break;
        case Scenario::server_error:
            reply_error(response, 500, "The server had an error while processing your request. Sorry about that!",
                        "server_error");
            break;
        case Scenario::bad_request:
            reply_error(response, 400, "Invalid value for 'messages': the stand-in was asked to refuse this request.",
                        "invalid_request_error", "messages", "invalid_value");
            break;
        case Scenario::hang:
            while (wait(request, 1000)) {
            }
            finish(call.id, 0, !stopping_);
            return std::nullopt;
        case Scenario::slow_first_byte:
            if (!wait(request, header_int(request, "X-Standin-Delay-Ms", options_.slow_first_byte_ms, limits::delay_ms_max))) {
                finish(call.id, 0, !stopping_);
                return std::nullopt;
            }
            return call;
        default:
            return call;
    }
    finish(call.id, response.status, false);
    return std::nullopt;
}

void Standin::chat_completions(const Request& request, Response& response) {
    auto began = begin(request, response);
    if (!began) return;
    const Call& call = *began;
    const Json& body = call.body;
    auto refuse = [&](const std::string& message, const Json& param, const Json& code) {
        reply_error(response, 400, message, "invalid_request_error", param, code);
        finish(call.id, 400, false);
    };
    if (!body.is_object()) {
        return refuse("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                      "HTTP library correctly. The OpenAI API expects a JSON payload.)", nullptr, nullptr);
    }
    if (call.model.empty()) return refuse("You must provide a model parameter.", "model", nullptr);
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
        return refuse("Invalid 'messages': expected a non-empty array.", "messages", "invalid_value");
    }
    std::size_t max_words = limits::reply_words_max;
    for (const char* name : {"max_tokens", "max_completion_tokens"}) {  // the second wins, as in OpenAI's API
        if (!body.contains(name) || body[name].is_null()) continue;
        if (!body[name].is_number_integer() || body[name].get<std::int64_t>() < 1) {
            return refuse(std::string("Invalid '") + name + "': expected an integer of at least 1.", name,
                          "integer_below_min_value");
        }
        max_words = static_cast<std::size_t>(std::min<std::int64_t>(body[name].get<std::int64_t>(), INT32_MAX));
    }
    if (call.scenario == Scenario::endless_event && flag(body, "stream")) {
        stream_endless_event(call, std::min(max_words, limits::reply_words_max), response);
        return;
    }
    const bool flood = call.scenario == Scenario::flood;
    const auto words = flood ? flood_words(std::min(max_words, limits::reply_words_max)) : reply_words(body, max_words);
    const auto all_words = reply_words(body, limits::reply_words_max);
    const std::string finish_reason = flood || words.size() < all_words.size() ? "length" : "stop";
    const Json usage = chat_usage(request, body, call.scenario, words.size());
    if (flag(body, "stream")) {
        const bool include_usage = body.contains("stream_options") && flag(body["stream_options"], "include_usage");
        const std::int64_t chunk_delay_ms =
            flood ? 0 : header_int(request, "X-Standin-Chunk-Delay-Ms", options_.chunk_delay_ms, limits::delay_ms_max);
        stream_reply(call, words, finish_reason, usage, include_usage, chunk_delay_ms, response);
        return;
    }
    std::string text;
    for (const std::string& word : words) text += (text.empty() ? "" : " ") + word;
    Json reply = {{"id", "chatcmpl-standin-" + std::to_string(call.id)}, {"object", "chat.completion"},
                  {"created", now_seconds()}, {"model", call.model}, {"system_fingerprint", "fp_standin"},
                  {"choices", Json::array({{{"index", 0},
                                            {"message", {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}}},
                                            {"logprobs", nullptr}, {"finish_reason", finish_reason}}})}};
    if (call.scenario != Scenario::no_usage) reply["usage"] = usage;
    response.set_header("x-request-id", "req_standin_" + std::to_string(call.id));
    if (call.scenario == Scenario::cut) {
        reply_cut(response, reply.dump(), "application/json");
        finish(call.id, 200, false);
        return;
    }
    if (flood) {
        reply_chunked(response, reply.dump(), "application/json");
    } else {
        response.set_content(reply.dump(), "application/json");
    }
    finish(call.id, 200, false);
}

void Standin::stream_endless_event(const Call& call, std::size_t writes, Response& response) {
    Json role = {{"id", "chatcmpl-standin-" + std::to_string(call.id)}, {"object", "chat.completion.chunk"},
                 {"created", now_seconds()}, {"model", call.model},
                 {"choices", Json::array({{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                                           {"finish_reason", nullptr}}})}};
    const std::string first = sse(role) + R"(data: {"choices":[{"index":0,"delta":{"content":")";
    const std::string run_on(flood_word_bytes, 'x');
    response.set_header("x-request-id", "req_standin_" + std::to_string(call.id));
    response.set_header("Cache-Control", "no-cache");
    const std::uint64_t id = call.id;
    auto ended = std::make_shared<bool>(false);
    // Like cut: false once every write is out drops the connection mid-event.
    response.set_chunked_content_provider(
        "text/event-stream; charset=utf-8",
        [this, first, run_on, writes, ended, sent = std::size_t{0}](std::size_t, httplib::DataSink& sink) mutable {
            if (stopping_) return false;
            if (sent > writes) {
                *ended = true;
                return false;
            }
            const std::string& next = sent == 0 ? first : run_on;
            ++sent;
            return sink.write(next.data(), next.size());
        },
        [this, id, ended](bool success) { finish(id, 200, !success && !*ended && !stopping_); });
}

void Standin::stream_reply(const Call& call, const std::vector<std::string>& words, const std::string& finish_reason,
                           const Json& usage, bool include_usage, std::int64_t chunk_delay_ms, Response& response) {
    // include_usage adds `"usage": null` to every chunk and a last usage chunk;
    // no_usage ignores it, as some providers do.
    const bool with_usage = include_usage && call.scenario != Scenario::no_usage;
    Json base = {{"id", "chatcmpl-standin-" + std::to_string(call.id)}, {"object", "chat.completion.chunk"},
                 {"created", now_seconds()}, {"model", call.model}, {"system_fingerprint", "fp_standin"}};
    if (with_usage) base["usage"] = nullptr;
    auto chunk = [&base](const Json& delta, const Json& finish) {
        Json event = base;
        event["choices"] = Json::array({{{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", finish}}});
        return sse(event);
    };
    auto events = std::make_shared<std::vector<std::string>>();
    events->push_back(chunk({{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}}, nullptr));
    for (std::size_t i = 0; i < words.size(); ++i) events->push_back(chunk({{"content", (i == 0 ? "" : " ") + words[i]}}, nullptr));
    // cut: the role chunk and half the words (at least one), then the connection drops.
    const std::size_t cut_after = call.scenario == Scenario::cut ? 1 + std::max<std::size_t>(1, words.size() / 2) : 0;
    events->push_back(chunk(Json::object(), finish_reason));
    if (with_usage) {
        Json last = base;
        last["choices"] = Json::array();
        last["usage"] = usage;
        events->push_back(sse(last));
    }
    events->push_back("data: [DONE]\n\n");
    if (cut_after > 0) events->resize(std::min(cut_after, events->size()));
    response.set_header("x-request-id", "req_standin_" + std::to_string(call.id));
    response.set_header("Cache-Control", "no-cache");
    // httplib stops calling the provider once the socket is gone, so the
    // releaser tells a client that left (success false) from a planned cut.
    auto cut_reached = std::make_shared<bool>(false);
    const std::uint64_t id = call.id;
    const bool cut = cut_after > 0;
    response.set_chunked_content_provider(
        "text/event-stream; charset=utf-8",
        [this, events, cut_reached, cut, chunk_delay_ms, next = std::size_t{0}](std::size_t, httplib::DataSink& sink) mutable {
            if (next == events->size()) {
                if (!cut) {
                    sink.done();
                    return true;
                }
                *cut_reached = true;
                return false;
            }
            for (std::int64_t waited = 0; next > 0 && waited < chunk_delay_ms && !stopping_; waited += wait_step_ms) {
                if (!sink.is_writable()) return false;
                std::this_thread::sleep_for(std::chrono::milliseconds(wait_step_ms));
            }
            const std::string& event = (*events)[next];
            if (stopping_ || !sink.write(event.data(), event.size())) return false;
            ++next;
            return true;
        },
        [this, id, cut_reached](bool success) { finish(id, 200, !success && !*cut_reached && !stopping_); });
}

void Standin::embeddings(const Request& request, Response& response) {
    auto began = begin(request, response);
    if (!began) return;
    const Call& call = *began;
    const Json& body = call.body;
    auto refuse = [&](const std::string& message, const Json& param) {
        reply_error(response, 400, message, "invalid_request_error", param, nullptr);
        finish(call.id, 400, false);
    };
    if (!body.is_object()) return refuse("We could not parse the JSON body of your request.", nullptr);
    if (call.model.empty()) return refuse("You must provide a model parameter.", "model");
    std::vector<std::string> inputs;
    const Json input = body.contains("input") ? body["input"] : Json();
    if (input.is_string()) inputs.push_back(input.get<std::string>());
    for (const Json& item : input.is_array() ? input : Json::array()) {
        if (!item.is_string()) return refuse("'input' must be a string or an array of strings here.", "input");
        inputs.push_back(item.get<std::string>());
    }
    if (inputs.empty()) return refuse("'input' must be a non-empty string or array of strings.", "input");
    if (body.contains("dimensions") && !body["dimensions"].is_number_integer()) return refuse("Invalid 'dimensions'.", "dimensions");
    const std::int64_t dimensions =
        body.contains("dimensions") ? body["dimensions"].get<std::int64_t>() : embedding_dimensions_default;
    if (dimensions < 1 || dimensions > limits::embedding_dimensions_max) return refuse("Invalid 'dimensions'.", "dimensions");
    const std::string format = text_field(body, "encoding_format", "float");
    if (format != "float" && format != "base64") return refuse("Invalid 'encoding_format'.", "encoding_format");
    Json data = Json::array();
    std::int64_t prompt = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        prompt += tokens_of_text(inputs[i]);
        const std::vector<float> vector = embedding_of(inputs[i], dimensions);
        Json embedding;
        if (format == "base64") {  // little-endian float32, as OpenAI sends it
            std::vector<char> text(sodium_base64_ENCODED_LEN(vector.size() * 4, sodium_base64_VARIANT_ORIGINAL));
            sodium_bin2base64(text.data(), text.size(), reinterpret_cast<const unsigned char*>(vector.data()),
                              vector.size() * sizeof(float), sodium_base64_VARIANT_ORIGINAL);
            embedding = std::string(text.data());
        } else {
            embedding = Json::array();
            for (float v : vector) embedding.push_back(static_cast<double>(v));
        }
        data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", embedding}});
    }
    Json reply = {{"object", "list"}, {"data", data}, {"model", call.model}};
    if (call.scenario != Scenario::no_usage) reply["usage"] = {{"prompt_tokens", prompt}, {"total_tokens", prompt}};
    response.set_header("x-request-id", "req_standin_" + std::to_string(call.id));
    if (call.scenario == Scenario::cut) {
        reply_cut(response, reply.dump(), "application/json");
    } else {
        response.set_content(reply.dump(), "application/json");
    }
    finish(call.id, 200, false);
}

void Standin::install(httplib::Server& server) {
    server.Post("/v1/chat/completions", [this](const Request& q, Response& s) { chat_completions(q, s); });
    server.Post("/v1/embeddings", [this](const Request& q, Response& s) { embeddings(q, s); });
    // Unknown paths answer in OpenAI's shape too, so a wrong base URL is obvious.
    server.set_error_handler([](const Request& request, Response& response) {
        if (response.status == 404 && response.body.empty()) {
            reply_error(response, 404, "Invalid URL (" + request.method + " " + request.path + ")",
                        "invalid_request_error");
        }
    });
    server.set_exception_handler([](const Request&, Response& response, std::exception_ptr error) {
        std::string what = "unknown";
        try {
            if (error) std::rethrow_exception(error);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        reply_error(response, 500, "The stand-in failed: " + what, "server_error");
    });
    install_control(server);
}

void Standin::install_control(httplib::Server& server) {
    server.Post("/_standin/scenario", [this](const Request& request, Response& response) {
        const Json body = Json::parse(request.body, nullptr, false);
        const bool named = body.is_object() && body.contains("scenario") && body["scenario"].is_string();
        const std::int64_t count = body.is_object() && body.contains("count") && body["count"].is_number_integer()
                                       ? body["count"].get<std::int64_t>()
                                       : 1;
        if (!named || !queue_scenario(body["scenario"].get<std::string>(), count)) {
            response.status = 400;
            response.set_content(R"({"error":"send {\"scenario\": NAME, \"count\": N} with a known NAME and N >= 1"})",
                                 "application/json");
            return;
        }
        response.set_content(R"({"ok":true})", "application/json");
    });

    // ?since=ID lists only the requests after ID (a test that shares the
    // stand-in reads what came after its own starting point).
    server.Get("/_standin/requests", [this](const Request& request, Response& response) {
        const std::string since_text = request.get_param_value("since");
        const bool numeric = !since_text.empty() && since_text.size() < 20 &&
                             std::all_of(since_text.begin(), since_text.end(), [](char c) { return c >= '0' && c <= '9'; });
        const std::uint64_t since = numeric ? std::stoull(since_text) : 0;
        Json list = Json::array();
        for (const RecordedRequest& entry : requests()) {
            if (entry.id > since) list.push_back(to_json(entry));
        }
        response.set_content(list.dump(), "application/json");
    });

    server.Post("/_standin/reset", [this](const Request&, Response& response) {
        reset();
        response.set_content(R"({"ok":true})", "application/json");
    });
}

}  // namespace tokenmeter::openai_standin
