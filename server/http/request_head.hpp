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
    bool expects_continue = false;    // Expect: 100-continue: the client waits before sending its body
    bool wants_close = false;         // Connection: close, or HTTP/1.0 without keep-alive
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

// Scans the start of `bytes` for one request head. Pure and bounded: it reads
// at most limits.head_bytes_max + 4 bytes whatever the input, and refuses as
// soon as the bytes seen so far cannot start a valid head.
HeadScanResult scan_request_head(std::string_view bytes, const HeadLimits& limits);

}  // namespace tokenmeter::http
