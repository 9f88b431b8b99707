// The metering gateway (DESIGN.md §12): OpenAI's wire format in front of the
// providers the operator configures, so an OpenAI SDK pointed at tokenmeter
// works unchanged and every call is paid for exactly once:
//
//   POST /v1/chat/completions   user JWT, or service key + X-Tokenmeter-User
//   POST /v1/embeddings         the same
//
// Each call counts the prompt exactly, authorizes (402 before anything goes
// upstream), forwards with the output capped at what was reserved, and
// settles with the provider's usage. A stream passes through event by event
// and settles at its end: from the final usage chunk (asked for with
// stream_options.include_usage), or, when none comes (the client left, the
// provider cut or went silent), by counting the streamed text, marked
// "counted". An upstream that fails before its first byte is released:
// nothing is charged. Errors are in OpenAI's shape.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "http/api.hpp"
#include "http/callers.hpp"
#include "http/ledger_replies.hpp"
#include "http/metrics.hpp"
#include "ledger/ledger_service.hpp"
#include "tokens/token_counter.hpp"

namespace httplib {
class DataSink;
}  // namespace httplib

namespace tokenmeter::gateway {

class UpstreamCall;
class HeldBytes;

struct GatewayOptions {
    std::vector<config::UpstreamSettings> upstreams;
    // The output reserved (and asked of the provider as its cap) when a
    // call names no max_tokens / max_completion_tokens.
    std::int64_t default_max_output_tokens = 4096;
    // A whole (non-stream) answer larger than this is refused: 502
    // upstream_answer_too_large, the call released, nothing charged. It is
    // held whole (its usage is read before it goes out with the receipt),
    // once, as bytes, so this bounds such a call's memory. No real answer
    // reaches it:
    // - the largest embeddings: 2048 inputs (the most a call may send) of
    //   3072 dimensions (text-embedding-3-large) as base64 float32, the
    //   OpenAI SDKs' default: 2048 × (16,384 characters + ~80 of framing)
    //   ≈ 33.7 MB (32.2 MiB);
    // - a chat choice with logprobs (top_logprobs 20, ~1.3 KB a token) over
    //   16,384 output tokens: ≈ 21 MB (a call asking n such choices, n
    //   times that, is the one exception).
    // The same embeddings as JSON floats are not held: 6.3 million numbers
    // of 13 to 22 characters each (more pretty-printed) are 82 to 145 MB,
    // past the 64 MiB bound before this one too. Such a caller asks for
    // base64, or sends fewer inputs (600 to 1,000 of 3072 floats fit).
    std::size_t whole_answer_bytes_max = 40 << 20;
    // A stream larger than this in all is cut (settled by counting what was
    // relayed): a provider running past any output cap. It is not held at
    // once (below).
    std::size_t stream_bytes_max = 64 << 20;
    // A stream's bytes arrived from the provider and not yet relayed: past
    // this the gateway stops reading from the provider until its client has
    // read on (backpressure), so a slow client costs this, not the stream.
    // A client that keeps up drains the bytes as they come, so only a slow
    // one meets it; 256 KiB is some five seconds of a fast provider (200
    // chunks of ~250 bytes a second), so a client's short stall costs the
    // provider nothing. A stream holds at most about twice it (this, and
    // the batch the relay is writing): with 128 gateway workers, ~64 MiB in
    // all, where each stream could hold 64 MiB (8 GiB).
    std::size_t stream_unrelayed_bytes_max = 256 << 10;
    // One event of a stream, not yet ended by its blank line: past this the
    // provider's stream is taken as broken (cut, settled by counting). The
    // relay gathers an event apart from the bytes above, so a provider that
    // never ends one would otherwise be held up to stream_bytes_max. A chunk
    // carries a few tokens, a whole tool call at most: far below 1 MiB.
    std::size_t stream_event_bytes_max = 1 << 20;
    http::ReplyStyle reply_style;
};

struct GatewayDependencies {
    ledger::LedgerService& ledger;
    http::Callers& callers;
    tokens::TokenCounter& tokens;
    http::Metrics& metrics;
};

class GatewayRoutes final : public http::RouteSet {
public:
    GatewayRoutes(GatewayDependencies dependencies, GatewayOptions options);

    void install(httplib::Server& server,
                 const std::function<void(const std::string& route, int status, double seconds)>& observe) override;

    // The paths a long-request pool should answer (http_server.hpp).
    static std::vector<std::string> paths();

private:
    struct Call;

    void chat_completions(const httplib::Request& request, httplib::Response& response);
    void embeddings(const httplib::Request& request, httplib::Response& response);

    // Who calls, with which body, for a model this gateway serves for the
    // operation; otherwise the error is written.
    std::optional<nlohmann::json> begin_call(const httplib::Request& request, httplib::Response& response,
                                             OperationKind operation, Call& call);
    std::optional<std::string> caller(const httplib::Request& request, httplib::Response& response);
    const config::UpstreamSettings* upstream_of(const std::string& model) const;
    bool authorize(Call& call, httplib::Response& response);
    ledger::LedgerReply reserve(const Call& call);
    void forward_whole(Call& call, httplib::Response& response);
    void forward_stream(std::shared_ptr<Call> call, httplib::Response& response);
    void relay(Call& call, UpstreamCall& upstream, httplib::DataSink& sink);
    void count_text_piece(Call& call);
    std::string settle(Call& call, bool provider_usage_known);
    void release(Call& call);

    GatewayDependencies deps_;
    GatewayOptions options_;
    // What the calls hold of their providers' answers (metrics).
    std::shared_ptr<HeldBytes> held_;
};

}  // namespace tokenmeter::gateway
