// The framing of an HTTP/1.1 request head (RFC 9112), read before any thread
// is given to the request: where the head ends, how the body is framed, and
// whether the request must be refused before a byte of its body is read.
//
// The edge scans the bytes a connection has sent so far; only a complete head
// that passes these checks reaches cpp-httplib, which parses it again for
// routing. Both parsers must agree on framing, so anything they could read
// differently (Content-Length beside Transfer-Encoding, a folded header line,
// a bare LF) is refused here rather than guessed at.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tokenmeter::http {

struct HeadLimits {
    // The request line and every header line, through the blank line.
    std::size_t head_bytes_max = 16 * 1024;
    std::size_t header_count_max = 64;
    // The request target (path and query).
    std::size_t target_bytes_max = 8 * 1024;
    // A declared Content-Length above this is refused (413) unread.
    std::int64_t body_bytes_max = 4 << 20;
};

enum class BodyFraming : std::uint8_t {
    none = 0,     // no body
    length = 1,   // Content-Length bytes
    chunked = 2,  // Transfer-Encoding: chunked
};

struct RequestHead {
    std::size_t head_bytes = 0;  // through the CRLF CRLF that ends the head
    BodyFraming framing = BodyFraming::none;
    std::int64_t content_length = 0;  // for BodyFraming::length
    // Expect: 100-continue: the client waits for a 100 before sending its
    // body. Where that header line is (with its CRLF), so the edge, which
    // answers the 100 itself, can take it out before httplib sees the head.
    bool expects_continue = false;
    std::size_t expect_line_offset = 0;
    std::size_t expect_line_bytes = 0;
    bool wants_close = false;  // Connection: close, or HTTP/1.0 without keep-alive
    // Neither Content-Length nor Transfer-Encoding: no body (RFC 9112 §6.3).
    // httplib would read such a request's body until the connection closes,
    // so the edge adds "Content-Length: 0" to the head for it.
    bool declares_no_length = false;
};

struct HeadRefusal {
    int status = 400;
    std::string_view code;     // the API's error code
    std::string_view message;  // for the client
};

enum class HeadScan : std::uint8_t {
    incomplete = 0,  // more bytes are needed; nothing wrong so far
    complete = 1,    // `head` holds the framing
    refused = 2,     // `refusal` says why; answer it and close
};

struct HeadScanResult {
    HeadScan scan = HeadScan::incomplete;
    RequestHead head;
    HeadRefusal refusal;
};

// Where a scan of a chunked body stopped: at the start of a chunk-size
// line, with this much chunk data before it. Scanning again from here reads
// only what is new, so a body sent in many small pieces costs linear time.
struct ChunkedProgress {
    std::size_t pos = 0;
    std::int64_t data_bytes = 0;
};

struct BodyScanResult {
    HeadScan scan = HeadScan::incomplete;
    std::size_t body_bytes = 0;  // when complete: the framed body's bytes, through its last CRLF
    ChunkedProgress progress;    // when incomplete: where to resume
    HeadRefusal refusal;
};

// Scans a chunked body (RFC 9112 §7.1) at the start of `bytes`, from
// `progress`: chunk sizes in hex with optional extensions, each chunk's CRLF,
// the last chunk, a bounded trailer section and the final CRLF. Refuses a
// body whose data would pass `data_bytes_max` (413) or whose framing is
// broken (400).
BodyScanResult scan_chunked_body(std::string_view bytes, std::int64_t data_bytes_max, ChunkedProgress progress = {});

// Scans the start of `bytes` for one request head. Pure and bounded: it reads
// at most limits.head_bytes_max bytes whatever the input, and refuses as soon
// as the bytes seen so far cannot start a valid head. The answer does not
// depend on how the bytes arrived: a prefix of them gives the same head or
// refusal, or incomplete.
HeadScanResult scan_request_head(std::string_view bytes, const HeadLimits& limits);

}  // namespace tokenmeter::http
