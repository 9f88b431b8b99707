#include "gateway/gateway_routes.hpp"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <iostream>

#include "gateway/provider_stream.hpp"
#include "gateway/upstream_call.hpp"
#include "http/http_server.hpp"
#include "http/service_requests.hpp"
#include "ledger/ids.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter::gateway {

namespace {

using Json = nlohmann::json;
using httplib::Request;
using httplib::Response;

constexpr const char* json_type = "application/json";
constexpr std::int64_t choices_max = 128;
constexpr std::size_t embedding_inputs_max = 2048;
// How often a stream waiting on its provider looks whether its client left.
constexpr std::chrono::milliseconds hang_up_check{200};
// A stream's text is kept to be counted if no usage comes; past this much it
// is counted and let go, so a long stream is not held whole as its text.
constexpr std::size_t text_piece_bytes = 64 * 1024;

// OpenAI's error types by status, so its SDKs raise the class they document.
std::string_view error_type(int status) {
    switch (status) {
        case 401: return "authentication_error";
        case 402: return "insufficient_quota";
        case 403: return "permission_error";
        case 404:
        case 400:
        case 409:
        case 413:
        case 415:
        case 422: return "invalid_request_error";
        case 429: return "rate_limit_error";
        default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

void openai_error(Response& response, int status, std::string_view code, std::string_view message) {
    response.status = status;
    const Json body = {{"error",
                        {{"message", message}, {"type", error_type(status)}, {"param", nullptr}, {"code", code}}}};
    response.set_content(body.dump(), json_type);
}

// A tokenmeter error reply ({"error":{"code","message",…}}) in OpenAI's
// shape: the same object with `type` and `param`, its other fields kept
// (a 402's usage and upgrade URL).
void to_openai_shape(Response& response) {
    Json body = Json::parse(response.body, nullptr, false);
    if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) {
        openai_error(response, response.status, "error", response.body.substr(0, 200));
        return;
    }
    Json& error = body["error"];
    error["type"] = error_type(response.status);
    if (!error.contains("param")) error["param"] = nullptr;
    if (!error.contains("message")) error["message"] = "refused";
    response.set_content(body.dump(), json_type);
}

// A count member of the body: absent, or an integer in [low, high].
Result<std::optional<std::int64_t>, Error> count_field(const Json& body, const char* key, std::int64_t low,
                                                       std::int64_t high) {
    if (!body.contains(key) || body[key].is_null()) return std::optional<std::int64_t>();
    const Json& value = body[key];
    if (!value.is_number_integer() || value.get<std::int64_t>() < low || value.get<std::int64_t>() > high) {
        return unexpected(make_error("invalid_value", std::string(key) + " must be an integer from " +
                                                          std::to_string(low) + " to " + std::to_string(high)));
    }
    return std::optional<std::int64_t>(value.get<std::int64_t>());
}

// The parts of a whole answer the gateway reads: its usage and its
// choices. The rest (an embedding's vectors) is checked as JSON but not
// kept, so the answer is held once, as its bytes.
Json read_answer(const std::string& answer) {
    return Json::parse(
        answer,
        [](int depth, Json::parse_event_t event, Json& parsed) {
            return event != Json::parse_event_t::key || depth != 1 || parsed == "usage" || parsed == "choices";
        },
        false);
}

bool send_event(httplib::DataSink& sink, const std::string& event) {
    return sink.write(event.data(), event.size()) && http::flush_response();
}

}  // namespace

// One metered call from authorization to settlement.
struct GatewayRoutes::Call {
    std::string user_id;
    std::string operation;  // "chat" or "embedding"
    std::shared_ptr<const Catalog> catalog;  // the version in force when the call began
    const Model* model = nullptr;            // in it
    const config::UpstreamSettings* upstream = nullptr;
    std::string path;  // under the upstream's base URL
    Json body;         // as forwarded
    std::int64_t prompt_tokens = 0;
    bool exact = true;
    std::int64_t output_cap = 0;  // the output reserved, and the provider's cap
    std::int64_t choices = 1;
    // The caller named no output cap: the gateway's default, or less when
    // the user cannot afford that much (the answer is then shorter).
    bool cap_is_ours = false;
    bool stream = false;
    bool client_wants_usage = false;
    std::string reservation_id;
    // What the provider answered, for the settlement.
    std::optional<ProviderUsage> usage;
    std::string output_text;
    std::int64_t output_text_tokens = 0;  // of a stream's text counted and let go
    std::string usage_source;  // "provider" or "counted", once settled
    std::int64_t charged_tokens = 0;
};

GatewayRoutes::GatewayRoutes(GatewayDependencies dependencies, GatewayOptions options)
    : deps_(dependencies), options_(std::move(options)), held_(std::make_shared<HeldBytes>()) {
    deps_.metrics.add_gauge("tokenmeter_gateway_held_bytes",
                            "Bytes of providers' answers the gateway holds (arrived, not yet passed on).",
                            [held = held_] { return held->now(); });
    deps_.metrics.add_gauge("tokenmeter_gateway_held_bytes_call_max",
                            "The most bytes of a provider's answer one gateway call has held at once.",
                            [held = held_] { return held->call_max(); });
}

std::vector<std::string> GatewayRoutes::paths() { return {"/v1/chat/completions", "/v1/embeddings"}; }

void GatewayRoutes::install(httplib::Server& server,
                            const std::function<void(const std::string&, int, double)>& observe) {
    // A stream's time is to its start: its body goes out after the handler.
    server.Post("/v1/chat/completions", http::timed_route(observe, "/v1/chat/completions",
                                                         [this](const Request& q, Response& s) { chat_completions(q, s); }));
    server.Post("/v1/embeddings",
                http::timed_route(observe, "/v1/embeddings", [this](const Request& q, Response& s) { embeddings(q, s); }));
}

// A user calls with their JWT; the app's backend with its service key and
// the user it calls for in X-Tokenmeter-User.
std::optional<std::string> GatewayRoutes::caller(const Request& request, Response& response) {
    if (request.has_header("X-Tokenmeter-User")) {
        if (!deps_.callers.service(request, response)) {
            to_openai_shape(response);
            return std::nullopt;
        }
        std::string user_id = request.get_header_value("X-Tokenmeter-User");
        if (!is_valid_user_id(user_id)) {
            openai_error(response, 400, "invalid_user", "X-Tokenmeter-User must be 1-128 characters of A-Z a-z 0-9 - _ . : @ | +");
            return std::nullopt;
        }
        return user_id;
    }
    auto session = deps_.callers.user(request, response);
    if (!session) {
        to_openai_shape(response);
        return std::nullopt;
    }
    return std::move(session->user_id);
}

const config::UpstreamSettings* GatewayRoutes::upstream_of(const std::string& model) const {
    for (const auto& upstream : options_.upstreams) {
        if (std::find(upstream.models.begin(), upstream.models.end(), model) != upstream.models.end()) return &upstream;
    }
    return nullptr;
}

// The body as an object with a model this gateway serves for the operation;
// otherwise the error is written.
static std::optional<Json> call_body(const Request& request, Response& response) {
    Json body = Json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
        openai_error(response, 400, "invalid_json", "the body must be a JSON object");
        return std::nullopt;
    }
    if (!body.contains("model") || !body["model"].is_string() || body["model"].get_ref<const std::string&>().empty()) {
        openai_error(response, 400, "missing_model", "model is required (a model id of the catalog)");
        return std::nullopt;
    }
    return body;
}

std::optional<Json> GatewayRoutes::begin_call(const Request& request, Response& response, OperationKind operation,
                                              Call& call) {
    auto user = caller(request, response);
    if (!user) return std::nullopt;
    auto body = call_body(request, response);
    if (!body) return std::nullopt;
    call.user_id = std::move(*user);
    call.operation = std::string(to_string(operation));
    call.path = operation == OperationKind::chat ? "/chat/completions" : "/embeddings";
    const std::string model_id = (*body)["model"].get<std::string>();
    call.catalog = deps_.ledger.prices().catalog();
    call.model = call.catalog->find_model(model_id);
    call.upstream = upstream_of(model_id);
    if (call.model == nullptr || !call.model->supports(operation) || call.upstream == nullptr) {
        openai_error(response, 404, "model_not_found",
                     "the model '" + model_id.substr(0, 128) + "' is not served for " + call.operation + " here");
        return std::nullopt;
    }
    return body;
}

void GatewayRoutes::chat_completions(const Request& request, Response& response) {
    Call call;
    auto body = begin_call(request, response, OperationKind::chat, call);
    if (!body) return;
    const Json& messages = (*body)["messages"];
    if (!messages.is_array() || messages.empty()) {
        openai_error(response, 400, "invalid_messages", "messages must be a non-empty array");
        return;
    }
    auto counted = deps_.tokens.count_chat(*call.model, messages);
    if (!counted) {
        openai_error(response, 400, counted.error().code, counted.error().message);
        return;
    }
    call.prompt_tokens = counted->tokens;
    call.exact = counted->exact;
    auto n = count_field(*body, "n", 1, choices_max);
    auto max_tokens = count_field(*body, "max_tokens", 1, http::tokens_per_request_max);
    auto max_completion = count_field(*body, "max_completion_tokens", 1, http::tokens_per_request_max);
    for (const auto* checked : {&n, &max_tokens, &max_completion}) {
        if (!*checked) {
            openai_error(response, 400, "invalid_value", checked->error().message);
            return;
        }
    }
    if (body->contains("stream") && !(*body)["stream"].is_boolean() && !(*body)["stream"].is_null()) {
        openai_error(response, 400, "invalid_value", "stream must be a boolean");
        return;
    }
    call.stream = body->value("stream", false) == true;
    if (body->contains("stream_options") && !(*body)["stream_options"].is_object() && !(*body)["stream_options"].is_null()) {
        openai_error(response, 400, "invalid_value", "stream_options must be an object");
        return;
    }
    // The output is capped at what is reserved: the provider never makes
    // more than the ledger holds for it.
    const std::int64_t max_output =
        max_completion->value_or(max_tokens->value_or(options_.default_max_output_tokens));
    call.cap_is_ours = !max_completion->has_value() && !max_tokens->has_value();
    call.choices = n->value_or(1);
    call.output_cap = max_output * call.choices;
    if (call.stream) {
        Json& stream_options = (*body)["stream_options"];
        if (stream_options.is_null()) stream_options = Json::object();
        call.client_wants_usage = stream_options.value("include_usage", false) == true;
        stream_options["include_usage"] = true;
    }
    call.body = std::move(*body);
    if (!authorize(call, response)) return;
    if (call.cap_is_ours) call.body["max_completion_tokens"] = call.output_cap / call.choices;
    if (call.stream) {
        forward_stream(std::make_shared<Call>(std::move(call)), response);
    } else {
        forward_whole(call, response);
    }
}

void GatewayRoutes::embeddings(const Request& request, Response& response) {
    Call call;
    auto body = begin_call(request, response, OperationKind::embedding, call);
    if (!body) return;
    // input: a string, strings, a token array, or token arrays.
    const Json& input = (*body)["input"];
    const Json inputs = input.is_array() && !input.empty() && !input[0].is_number() ? input : Json::array({input});
    if (inputs.empty() || inputs.size() > embedding_inputs_max) {
        openai_error(response, 400, "invalid_input", "input must hold 1 to 2048 items");
        return;
    }
    for (const Json& item : inputs) {
        if (item.is_string()) {
            auto counted = deps_.tokens.count_text(*call.model, item.get_ref<const std::string&>());
            if (!counted) {
                openai_error(response, 400, counted.error().code, counted.error().message);
                return;
            }
            call.prompt_tokens += counted->tokens;
            call.exact = call.exact && counted->exact;
        } else if (item.is_array() && !item.empty() &&
                   std::all_of(item.begin(), item.end(), [](const Json& t) { return t.is_number_integer() && t.get<std::int64_t>() >= 0; })) {
            call.prompt_tokens += static_cast<std::int64_t>(item.size());
        } else {
            openai_error(response, 400, "invalid_input", "input must be a string, an array of strings, or token arrays");
            return;
        }
    }
    call.body = std::move(*body);
    if (!authorize(call, response)) return;
    forward_whole(call, response);
}

bool GatewayRoutes::authorize(Call& call, Response& response) {
    ledger::LedgerReply reply = reserve(call);
    if (reply.kind == ledger::ReplyKind::done) {
        deps_.metrics.count_authorization(true);
        call.reservation_id = reply.reservation->id;
        // What the ledger reserved: all of it, or (our own default cap) the
        // output per choice the user can still pay for.
        if (reply.estimate) call.output_cap = reply.estimate->output_tokens;
        return true;
    }
    if (reply.kind == ledger::ReplyKind::refused) {
        deps_.metrics.count_authorization(false);
        deps_.metrics.count_gateway_call("refused");
    }
    const http::RenderedReply rendered = http::render_reply(reply, options_.reply_style);
    response.status = rendered.status;
    response.set_content(rendered.body, json_type);
    to_openai_shape(response);
    return false;
}

ledger::LedgerReply GatewayRoutes::reserve(const Call& call) {
    AuthorizeCommand command;
    command.user_id = call.user_id;
    command.reservation_id = ledger::new_id("rsv_");
    command.operation = call.operation;
    command.model = call.model->id;
    command.input_tokens = call.prompt_tokens;
    command.max_output_tokens = call.output_cap;
    // Without a cap of the caller's, a user short of the default output
    // still gets the answer they can pay for, decided in the same ledger
    // change (whole tokens per choice, so every choice gets the same cap).
    if (call.cap_is_ours) command.output_step = call.choices;
    return deps_.ledger.authorize(std::move(command), call.exact, std::nullopt);
}

// Settles the call's reservation: with the provider's usage when it came,
// else by counting what was answered. The receipt, or empty when the ledger
// could not take the commit (the reservation then expires, charging nothing).
std::string GatewayRoutes::settle(Call& call, bool provider_usage_known) {
    CommitCommand command;
    command.reservation_id = call.reservation_id;
    command.event_id = ledger::new_id("evt_");
    const bool chat = call.operation == "chat";
    if (provider_usage_known && call.usage) {
        call.usage_source = "provider";
        // By token class (DESIGN.md §3): cached tokens are a part of the
        // input, reasoning tokens of the output, each weighted once.
        command.input_tokens = call.usage->input;
        if (call.usage->cached_input > 0) command.cached_input_tokens = call.usage->cached_input;
        if (chat) command.output_tokens = call.usage->output;
        if (chat && call.usage->reasoning > 0) command.reasoning_tokens = call.usage->reasoning;
    } else {
        call.usage_source = "counted";
        command.input_tokens = call.prompt_tokens;
        if (chat) {
            auto counted = deps_.tokens.count_text(*call.model, call.output_text);
            // The provider could not have made more than its cap.
            command.output_tokens = std::min(call.output_text_tokens + (counted ? counted->tokens : 0), call.output_cap);
        }
    }
    const ledger::LedgerReply reply = deps_.ledger.commit(std::move(command), std::nullopt);
    if (reply.kind != ledger::ReplyKind::done) {
        std::cerr << "tokenmeter: gateway: reservation " << call.reservation_id << " not settled ("
                  << http::render_reply(reply, options_.reply_style).body.substr(0, 200) << "); it expires\n";
        return {};
    }
    deps_.metrics.count_gateway_call("settled_" + call.usage_source);
    const Charge& charge = reply.charge->charge;
    call.charged_tokens = charge.charged_tokens;
    deps_.metrics.count_charge(charge.model, std::string(to_string(charge.operation)), charge.charged_tokens);
    return reply.receipt;
}

// The piece of a stream's text before its last space (where the tokenizer's
// words split anyway, so the pieces count as the whole does, but for a rare
// token across a run of spaces) is counted and let go once the text passes
// text_piece_bytes. Text without a space is cut at a character, later.
void GatewayRoutes::count_text_piece(Call& call) {
    std::string& text = call.output_text;
    if (text.size() < text_piece_bytes) return;
    std::size_t cut = text.find_last_of(" \n");
    if (cut == std::string::npos || cut == 0) {
        if (text.size() < 4 * text_piece_bytes) return;
        cut = text.size();
        while (cut > 0 && (static_cast<unsigned char>(text[cut - 1]) & 0xC0) == 0x80) --cut;  // UTF-8 continuation
        if (cut > 0) --cut;  // before the character's first byte
    }
    auto counted = deps_.tokens.count_text(*call.model, std::string_view(text).substr(0, cut));
    call.output_text_tokens += counted ? counted->tokens : 0;
    text.erase(0, cut);
}

void GatewayRoutes::release(Call& call) {
    ReleaseCommand command;
    command.reservation_id = call.reservation_id;
    const ledger::LedgerReply reply = deps_.ledger.release(std::move(command), std::nullopt);
    if (reply.kind != ledger::ReplyKind::done) {
        std::cerr << "tokenmeter: gateway: reservation " << call.reservation_id << " not released; it expires\n";
    }
    deps_.metrics.count_gateway_call("released");
}

// An upstream that answered no 200, or none at all: released, and the
// client told in OpenAI's shape. A 429 keeps its Retry-After; the
// provider's own errors pass through, apart from an upstream refusing our
// key, which the caller cannot mend.
static void answer_failed_call(const UpstreamCall& upstream, const std::string& answer, std::size_t answer_bytes_max,
                               Response& response) {
    if (upstream.end() == CallEnd::too_large) {
        openai_error(response, 502, "upstream_answer_too_large",
                     "the model provider's answer is larger than the gateway passes on (" +
                         std::to_string(answer_bytes_max >> 20) +
                         " MiB); ask for less (fewer inputs, base64 embeddings)");
        return;
    }
    const int status = upstream.status();
    if (status == 0) {
        const bool timed_out = upstream.end() == CallEnd::timed_out;
        openai_error(response, timed_out ? 504 : 502, timed_out ? "upstream_timeout" : "upstream_unavailable",
                     timed_out ? "the model provider did not answer in time" : "the model provider could not be reached");
        return;
    }
    if (status == 401 || status == 403) {
        openai_error(response, 502, "upstream_refused", "the model provider refused this gateway's credentials");
        return;
    }
    if (status >= 200 && status < 300) {
        openai_error(response, 502, "upstream_malformed", "the model provider's answer could not be read");
        return;
    }
    response.status = status;
    const Json body = Json::parse(answer, nullptr, false);
    if (body.is_object() && body.contains("error") && body["error"].is_object()) {
        response.set_content(answer, json_type);
    } else {
        openai_error(response, status, "upstream_error", "the model provider answered " + std::to_string(status));
    }
    const std::string retry_after = upstream.header("Retry-After");
    if (!retry_after.empty() && retry_after.size() < 32) response.set_header("Retry-After", retry_after);
}

void GatewayRoutes::forward_whole(Call& call, Response& response) {
    UpstreamCall upstream(*call.upstream, call.path, call.body.dump(), AnswerBounds{options_.whole_answer_bytes_max},
                          held_);
    upstream.wait_ended();
    std::string answer = upstream.take(std::chrono::milliseconds(0));
    const Json body = upstream.end() == CallEnd::complete && upstream.status() == 200 ? read_answer(answer) : Json(nullptr);
    if (!body.is_object()) {
        release(call);
        answer_failed_call(upstream, answer, options_.whole_answer_bytes_max, response);
        return;
    }
    if (body.contains("usage")) call.usage = provider_usage(body["usage"], call.operation == "chat");
    if (body.contains("choices")) append_choice_text(body["choices"], call.output_text);
    const std::string receipt = settle(call, true);
    response.status = 200;
    response.set_content(std::move(answer), json_type);
    if (!receipt.empty()) {
        response.set_header("X-Tokenmeter-Receipt", receipt);
        response.set_header("X-Tokenmeter-Charged-Tokens", std::to_string(call.charged_tokens));
    }
    response.set_header("X-Tokenmeter-Usage-Source", call.usage_source);
}

void GatewayRoutes::forward_stream(std::shared_ptr<Call> call, Response& response) {
    auto upstream = std::make_shared<UpstreamCall>(
        *call->upstream, call->path, call->body.dump(),
        AnswerBounds{options_.stream_bytes_max, options_.stream_unrelayed_bytes_max}, held_);
    // Nothing is sent to the client before the provider's first byte, so a
    // provider that fails or stays silent until then is an error the client
    // can read (and the call is released, charging nothing).
    upstream->wait_started();
    if (upstream->status() != 200 || !upstream->received_any()) {
        // Not a stream to relay: its error answer is read whole.
        upstream->hold_whole(options_.whole_answer_bytes_max);
        upstream->wait_ended();
        release(*call);
        answer_failed_call(*upstream, upstream->take(std::chrono::milliseconds(0)), options_.whole_answer_bytes_max,
                           response);
        return;
    }
    response.status = 200;
    response.set_header("Cache-Control", "no-cache");
    response.set_header("X-Accel-Buffering", "no");
    response.set_chunked_content_provider("text/event-stream", [this, call, upstream](std::size_t, httplib::DataSink& sink) {
        relay(*call, *upstream, sink);
        sink.done();
        return true;
    });
}

// Passes the provider's events to the client as they arrive, then settles
// and ends with the receipt. The client leaving cancels the provider's call,
// and so does an event past its bound (a broken stream: counted, as a cut).
void GatewayRoutes::relay(Call& call, UpstreamCall& upstream, httplib::DataSink& sink) {
    EventSplitter splitter;
    std::string event;
    bool done = false;
    bool client_gone = false;
    bool broken = false;
    while (!done && !client_gone && !broken) {
        const std::string bytes = upstream.take(hang_up_check);
        splitter.feed(bytes);
        while (!done && !client_gone && splitter.next(event)) {
            const StreamEvent read = read_event(event);
            if (read.done) {
                done = true;
                break;
            }
            if (read.chunk && read.chunk->is_object()) {
                const Json& chunk = *read.chunk;
                if (chunk.contains("choices")) append_choice_text(chunk["choices"], call.output_text);
                count_text_piece(call);
                if (chunk.contains("usage") && chunk["usage"].is_object()) call.usage = provider_usage(chunk["usage"], /*chat=*/true);
            }
            if (read.usage_only && !call.client_wants_usage) continue;  // not asked for: the gateway's own
            client_gone = !send_event(sink, event);
        }
        broken = splitter.pending().size() > options_.stream_event_bytes_max;
        if (!client_gone && http::client_hung_up()) client_gone = true;
        if (bytes.empty() && upstream.end() != CallEnd::open) break;
    }
    if (broken) {
        std::cerr << "tokenmeter: gateway: reservation " << call.reservation_id << ": the provider's stream has an event past "
                  << options_.stream_event_bytes_max << " bytes; cut\n";
    }
    if (client_gone || broken) upstream.cancel();
    // The usage chunk is the provider's own count of the whole answer (it
    // comes after the last choice): once seen, it settles the call even if
    // the stream was cut before [DONE]; without it the relayed text is counted.
    const std::string receipt = settle(call, call.usage.has_value());
    if (client_gone) return;
    std::string trailer;
    if (!receipt.empty()) {
        trailer += ": X-Tokenmeter-Receipt: " + receipt + "\n";
        trailer += ": X-Tokenmeter-Charged-Tokens: " + std::to_string(call.charged_tokens) + "\n";
    }
    trailer += ": X-Tokenmeter-Usage-Source: " + call.usage_source + "\n\n";
    if (done) trailer += "data: [DONE]\n\n";
    send_event(sink, trailer);
}

}  // namespace tokenmeter::gateway
