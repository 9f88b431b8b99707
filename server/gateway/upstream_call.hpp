// One call to a model provider, made on a thread of its own so the gateway
// can answer its client while the provider's answer is still arriving:
// the worker that serves the client waits here for the answer's start,
// then takes its bytes as they come and passes them on unbuffered.
//
// What the call holds is bounded (AnswerBounds): the answer as a whole, and
// for a stream the bytes arrived and not yet taken. Past the second, the
// call's thread stops reading from the provider until the reader has taken
// them: a client reading slowly slows the provider (TCP's own flow control
// holds the rest, in the kernel's socket buffers), not the gateway's memory.
//
// The call ends when the provider's answer ends, when it fails (refused,
// cut, silent past the timeout), or when cancel() is called because the
// client is gone — which closes the provider's connection at once, so the
// provider stops generating what nobody will read.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "config/config.hpp"

namespace tokenmeter::gateway {

// How the call went, once it has ended.
enum class CallEnd : std::uint8_t {
    open = 0,       // not ended yet
    complete = 1,   // the provider's answer arrived whole
    failed = 2,     // refused or cut (no connection, reset, malformed)
    timed_out = 3,  // the provider was silent for longer than the timeout
    cancelled = 4,  // cancel(): the client went away
    too_large = 5,  // the answer passed AnswerBounds::answer_bytes_max
};

// How much of a provider's answer one call may hold.
struct AnswerBounds {
    // The answer's bytes in all: past it the call ends too_large.
    std::size_t answer_bytes_max = 0;
    // Bytes arrived and not yet taken: past it the call pauses reading from
    // the provider until take() has drained them. A whole answer is taken
    // only at its end, so it has none (answer_bytes_max bounds it).
    std::size_t untaken_bytes_max = std::numeric_limits<std::size_t>::max();
};

// The bytes the gateway's calls hold, arrived from their providers and not
// yet taken, for the metrics (shared by every call of a gateway).
class HeldBytes {
public:
    // One call's holding went from `before` to `after` bytes.
    void change(std::size_t before, std::size_t after);
    std::int64_t now() const { return now_.load(); }
    // The most one call has held at once since the start.
    std::int64_t call_max() const { return call_max_.load(); }

private:
    std::atomic<std::int64_t> now_{0};
    std::atomic<std::int64_t> call_max_{0};
};

class UpstreamCall {
public:
    // POSTs `body` (JSON) to the upstream's base_url + `path` with its key.
    UpstreamCall(const config::UpstreamSettings& upstream, const std::string& path, std::string body,
                 AnswerBounds bounds, std::shared_ptr<HeldBytes> held = nullptr);
    // Cancels a call still running and waits for its thread.
    ~UpstreamCall();
    UpstreamCall(const UpstreamCall&) = delete;
    UpstreamCall& operator=(const UpstreamCall&) = delete;

    // Waits until the answer's status and first body bytes are here, or the
    // call has ended.
    void wait_started();
    // Waits up to `wait` for bytes, and takes what has arrived (empty when
    // nothing came in time or the call has ended). A call paused for its
    // reader reads on.
    std::string take(std::chrono::milliseconds wait);
    // The answer will be taken whole, at its end (a stream's error answer,
    // which is not relayed): no more pauses, and `answer_bytes_max` bounds
    // it from here on.
    void hold_whole(std::size_t answer_bytes_max);
    // Waits for the call's end (for a short error body).
    void wait_ended();
    void cancel();

    // Read after wait_started(): 0 when no answer head came.
    int status() const;
    std::string header(const std::string& name) const;
    CallEnd end() const;
    // Bytes that arrived so far (with take(): those not yet taken).
    bool received_any() const;
    std::string failure() const;  // what went wrong, for the log

private:
    void run(config::UpstreamSettings upstream, std::string path, std::string body);
    // The provider's answer head: false to end the call (cancelled, or a
    // declared length past the bound).
    bool on_head(const httplib::Response& response);
    // Bytes of the answer: false to end the call. Waits while the reader is
    // behind (backpressure).
    bool on_bytes(const char* data, std::size_t length);
    // bytes_ changed size (under mutex_): the metrics follow.
    void held_changed(std::size_t before);

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    httplib::Client* client_ = nullptr;  // while the call runs, for cancel()
    int status_ = 0;
    httplib::Headers headers_;
    std::string bytes_;
    bool received_any_ = false;
    CallEnd end_ = CallEnd::open;
    bool cancelled_ = false;
    bool too_large_ = false;
    std::string failure_;
    AnswerBounds bounds_;
    std::shared_ptr<HeldBytes> held_;
    std::size_t answer_bytes_ = 0;
    std::thread thread_;
};

}  // namespace tokenmeter::gateway
