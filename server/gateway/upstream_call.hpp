// One call to a model provider, made on a thread of its own so the gateway
// can answer its client while the provider's answer is still arriving:
// the worker that serves the client waits here for the answer's start,
// then takes its bytes as they come and passes them on unbuffered.
//
// The call ends when the provider's answer ends, when it fails (refused,
// cut, silent past the timeout), or when cancel() is called because the
// client is gone — which closes the provider's connection at once, so the
// provider stops generating what nobody will read.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
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
};

class UpstreamCall {
public:
    // POSTs `body` (JSON) to the upstream's base_url + `path` with its key.
    UpstreamCall(const config::UpstreamSettings& upstream, const std::string& path, std::string body,
                 std::size_t answer_bytes_max);
    // Cancels a call still running and waits for its thread.
    ~UpstreamCall();
    UpstreamCall(const UpstreamCall&) = delete;
    UpstreamCall& operator=(const UpstreamCall&) = delete;

    // Waits until the answer's status and first body bytes are here, or the
    // call has ended.
    void wait_started();
    // Waits up to `wait` for bytes, and takes what has arrived (empty when
    // nothing came in time or the call has ended).
    std::string take(std::chrono::milliseconds wait);
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

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    httplib::Client* client_ = nullptr;  // while the call runs, for cancel()
    int status_ = 0;
    httplib::Headers headers_;
    std::string bytes_;
    bool received_any_ = false;
    CallEnd end_ = CallEnd::open;
    bool cancelled_ = false;
    std::string failure_;
    std::size_t answer_bytes_max_;
    std::size_t answer_bytes_ = 0;
    std::thread thread_;
};

}  // namespace tokenmeter::gateway
