// One client connection at the edge, and the phases it moves through.
//
// The connection loop owns every Connection. A worker borrows one for exactly
// one request (phase `working`) and gives it back; while borrowed, only that
// worker touches it. So no Connection needs a lock: ownership moves by
// handing the pointer through a queue, never by sharing it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "http/request_head.hpp"

namespace tokenmeter::http {

enum class ConnectionPhase : std::uint8_t {
    idle = 0,       // between requests (keep-alive): nothing of the next request yet
    head = 1,       // part of a request head has arrived
    body = 2,       // the head is complete; the loop is reading a small body
    queued = 3,     // a complete request waits for a worker
    working = 4,    // a worker is answering it
    streaming = 5,  // an event stream: the loop writes events as they come
    closing = 6,    // a last reply is being sent; then the connection closes
    closed = 7,     // gone; freed at the end of the loop's round
};

// A response that outlives its request (Server-Sent Events): after its
// headers and first event, the loop keeps the connection and writes each
// newer event, a heartbeat when there is none, and ends it at `ends_at_ms`.
struct EventStream {
    std::string key;  // what notifications address it (the user id)
    std::int64_t ends_at_ms = 0;
    // The next event to send, or nothing when nothing is newer than what
    // was sent. Called on the loop's thread only.
    std::function<std::optional<std::string>()> next_event;
};

struct Connection {
    int fd = -1;
    std::string remote_addr;
    int remote_port = 0;
    std::string local_addr;
    int local_port = 0;

    ConnectionPhase phase = ConnectionPhase::idle;
    // When the current phase times out (idle, head, body, closing), or the
    // stream ends (streaming).
    std::int64_t deadline_ms = 0;
    std::int64_t last_active_ms = 0;

    // Received and not yet consumed: the request being read, and any
    // pipelined request after it.
    std::string input;
    // The client shut its side after sending; answer what it sent, then close.
    bool peer_closed = false;
    RequestHead head;  // of the request in `input`, once complete
    int requests = 0;
    // The body: when its first byte could arrive, and how many bytes of the
    // loop's body budget (beyond the small bodies every connection may
    // hold) this connection has taken.
    std::int64_t body_started_ms = 0;
    std::size_t body_budget_bytes = 0;
    ChunkedProgress chunked;

    // Bytes the loop sends (event-stream chunks, its own short replies).
    std::string output;
    std::size_t output_sent = 0;
    std::int64_t output_stalled_since_ms = 0;
    // Our side is shut after a last reply; what the client still sends is
    // read and dropped until it closes, so the reply is not lost to a reset.
    bool write_shut = false;
    std::size_t dropped_bytes = 0;  // read and dropped since the last reply

    // Set by a handler on a worker; the loop takes the connection over.
    std::optional<EventStream> handover;
    std::unique_ptr<EventStream> stream;
    std::int64_t heartbeat_at_ms = 0;
    bool stream_dirty = false;  // a newer event arrived while one was still being sent
};

}  // namespace tokenmeter::http
