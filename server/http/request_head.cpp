#include "http/request_head.hpp"

#include <algorithm>
#include <optional>

namespace tokenmeter::http {

namespace {

// Room for the method, two spaces and the version around the longest target.
constexpr std::size_t request_line_overhead_max = 32;
// A Content-Length of 18 digits cannot overflow int64 and is far above any cap.
constexpr std::size_t content_length_digits_max = 18;

bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_token(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim_ows(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

// Whether a comma-separated header value lists `token` (Connection: keep-alive, close).
bool lists_token(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        const std::size_t comma = value.find(',');
        if (iequals(trim_ows(value.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

HeadScanResult refused(int status, std::string_view code, std::string_view message) {
    HeadScanResult result;
    result.scan = HeadScan::refused;
    result.refusal = HeadRefusal{status, code, message};
    return result;
}

// What the header lines said that matters for framing.
struct Framing {
    std::optional<std::int64_t> content_length;
    bool chunked = false;
    bool expects_continue = false;
    std::size_t expect_line_offset = 0;
    std::size_t expect_line_bytes = 0;
    bool close = false;
    bool keep_alive = false;
};

std::optional<HeadScanResult> check_request_line(std::string_view line, const HeadLimits& limits, bool& http10) {
    const std::size_t first_space = line.find(' ');
    const std::size_t last_space = line.rfind(' ');
    if (first_space == std::string_view::npos || first_space == last_space) {
        return refused(400, "bad_request", "the request line is not METHOD TARGET VERSION");
    }
    const std::string_view method = line.substr(0, first_space);
    const std::string_view target = line.substr(first_space + 1, last_space - first_space - 1);
    const std::string_view version = line.substr(last_space + 1);
    if (!is_token(method)) return refused(400, "bad_request", "the request method is not a token");
    if (target.size() > limits.target_bytes_max) return refused(414, "uri_too_long", "the request target is too long");
    const bool visible = std::all_of(target.begin(), target.end(), [](char c) { return c > 0x20 && c < 0x7F; });
    if (target.empty() || !visible || (target.front() != '/' && target != "*")) {
        return refused(400, "bad_request", "the request target is not a path");
    }
    if (version == "HTTP/1.0") {
        http10 = true;
    } else if (version != "HTTP/1.1") {
        return refused(505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served");
    }
    return std::nullopt;
}

std::optional<HeadScanResult> apply_content_length(std::string_view value, Framing& framing) {
    const bool digits = !value.empty() && value.size() <= content_length_digits_max &&
                        std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) return refused(400, "bad_request", "Content-Length is not a number of bytes");
    std::int64_t length = 0;
    for (char c : value) length = length * 10 + (c - '0');
    if (framing.content_length && *framing.content_length != length) {
        return refused(400, "bad_request", "conflicting Content-Length headers");
    }
    framing.content_length = length;
    return std::nullopt;
}

std::optional<HeadScanResult> apply_header(std::string_view name, std::string_view value, Framing& framing) {
    if (iequals(name, "Content-Length")) return apply_content_length(value, framing);
    if (iequals(name, "Transfer-Encoding")) {
        if (framing.chunked) return refused(400, "bad_request", "repeated Transfer-Encoding");
        if (!iequals(value, "chunked")) {
            return refused(501, "not_implemented", "only Transfer-Encoding: chunked is understood");
        }
        framing.chunked = true;
    } else if (iequals(name, "Content-Encoding")) {
        // Request bodies are never inflated: a small compressed body can
        // expand a thousandfold (a "zip bomb"), and the API's bodies are small.
        if (!value.empty() && !iequals(value, "identity")) {
            return refused(415, "unsupported_content_encoding", "compressed request bodies are not accepted");
        }
    } else if (iequals(name, "Expect")) {
        framing.expects_continue = iequals(value, "100-continue");
    } else if (iequals(name, "Connection")) {
        framing.close = framing.close || lists_token(value, "close");
        framing.keep_alive = framing.keep_alive || lists_token(value, "keep-alive");
    }
    return std::nullopt;
}

// One header line (without its CRLF), which starts at `offset` in the head.
std::optional<HeadScanResult> check_header_line(std::string_view line, std::size_t offset, Framing& framing) {
    if (line.front() == ' ' || line.front() == '\t') {
        return refused(400, "bad_request", "folded header lines are not accepted");
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
        return refused(400, "bad_request", "a header line is not NAME: VALUE");
    }
    const std::string_view value = trim_ows(line.substr(colon + 1));
    const bool clean = std::all_of(value.begin(), value.end(), [](char c) {
        return c == '\t' || static_cast<unsigned char>(c) >= 0x20;
    }) && value.find('\x7f') == std::string_view::npos;
    if (!clean) return refused(400, "bad_request", "a header value holds control characters");
    if (iequals(line.substr(0, colon), "Expect")) {
        framing.expect_line_offset = offset;
        framing.expect_line_bytes = line.size() + 2;
    }
    return apply_header(line.substr(0, colon), value, framing);
}

HeadScanResult complete(std::size_t head_bytes, const Framing& framing, bool http10, const HeadLimits& limits) {
    if (framing.chunked && framing.content_length) {
        return refused(400, "bad_request", "Content-Length and Transfer-Encoding together");
    }
    if (framing.content_length && *framing.content_length > limits.body_bytes_max) {
        return refused(413, "body_too_large", "the request body is too large");
    }
    HeadScanResult result;
    result.scan = HeadScan::complete;
    result.head.head_bytes = head_bytes;
    result.head.expects_continue = framing.expects_continue;
    if (framing.expects_continue) {
        result.head.expect_line_offset = framing.expect_line_offset;
        result.head.expect_line_bytes = framing.expect_line_bytes;
    }
    result.head.wants_close = framing.close || (http10 && !framing.keep_alive);
    result.head.declares_no_length = !framing.chunked && !framing.content_length;
    if (framing.chunked) {
        result.head.framing = BodyFraming::chunked;
    } else if (framing.content_length && *framing.content_length > 0) {
        result.head.framing = BodyFraming::length;
        result.head.content_length = *framing.content_length;
    }
    return result;
}

// Whether a head with `position` bytes before any end is already too large:
// a request line longer than a target and its method and version (414), or
// a head that cannot end within head_bytes_max (its CRLF CRLF is at least
// two bytes on: 431). Checked before each byte is read, so a refusal depends
// only on the bytes before it, never on how TCP split them into reads.
std::optional<HeadScanResult> check_head_size(std::size_t position, std::size_t line_start, const HeadLimits& limits) {
    if (line_start == 0 && position > limits.target_bytes_max + request_line_overhead_max) {
        return refused(414, "uri_too_long", "the request target is too long");
    }
    if (position + 2 > limits.head_bytes_max) return refused(431, "headers_too_large", "the request head is too large");
    return std::nullopt;
}

// A chunk-size line is hex digits and an optional extension; no real client
// sends a long one.
constexpr std::size_t chunk_line_bytes_max = 256;
constexpr std::size_t chunk_size_digits_max = 15;  // below 2^60: no overflow
constexpr std::size_t trailer_count_max = 64;
constexpr std::size_t trailer_line_bytes_max = 8 * 1024;

BodyScanResult body_refused(int status, std::string_view code, std::string_view message) {
    BodyScanResult result;
    result.scan = HeadScan::refused;
    result.refusal = HeadRefusal{status, code, message};
    return result;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The line at `pos` (without CRLF); nullopt when its CRLF has not arrived.
// `bad` is set when the line is longer than `max` or holds a bare CR or LF.
std::optional<std::string_view> line_at(std::string_view bytes, std::size_t pos, std::size_t max, bool& bad) {
    const std::size_t end = std::min(bytes.size(), pos + max + 2);
    for (std::size_t i = pos; i < end; ++i) {
        if (bytes[i] == '\n') {
            bad = true;
            return std::nullopt;
        }
        if (bytes[i] != '\r') continue;
        if (i + 1 == bytes.size()) return std::nullopt;
        if (bytes[i + 1] != '\n') {
            bad = true;
            return std::nullopt;
        }
        return bytes.substr(pos, i - pos);
    }
    bad = end - pos > max + 1;
    return std::nullopt;
}

// The size of a chunk-size line, or -1 when it is not one.
std::int64_t chunk_size_of(std::string_view line) {
    std::size_t digits = 0;
    std::int64_t size = 0;
    while (digits < line.size() && hex_value(line[digits]) >= 0) {
        if (digits == chunk_size_digits_max) return -1;
        size = size * 16 + hex_value(line[digits]);
        ++digits;
    }
    if (digits == 0) return -1;
    const std::string_view extension = line.substr(digits);
    if (!extension.empty() && extension.front() != ';') return -1;
    const bool visible = std::all_of(extension.begin(), extension.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
    return visible ? size : -1;
}

BodyScanResult chunked_trailers(std::string_view bytes, std::size_t pos) {
    for (std::size_t count = 0;; ++count) {
        bool bad = false;
        auto line = line_at(bytes, pos, trailer_line_bytes_max, bad);
        if (bad) return body_refused(400, "bad_request", "a chunked body's trailer is malformed");
        if (!line) return BodyScanResult{};
        pos += line->size() + 2;
        if (line->empty()) {
            BodyScanResult result;
            result.scan = HeadScan::complete;
            result.body_bytes = pos;
            return result;
        }
        if (count == trailer_count_max) return body_refused(431, "headers_too_large", "too many trailer fields");
    }
}

}  // namespace

BodyScanResult scan_chunked_body(std::string_view bytes, std::int64_t data_bytes_max, ChunkedProgress progress) {
    std::size_t pos = progress.pos;
    std::int64_t data_bytes = progress.data_bytes;
    auto incomplete = [&] {
        BodyScanResult result;
        result.progress = ChunkedProgress{pos, data_bytes};
        return result;
    };
    for (;;) {
        bool bad = false;
        auto line = line_at(bytes, pos, chunk_line_bytes_max, bad);
        if (bad) return body_refused(400, "bad_request", "a chunk-size line is malformed");
        if (!line) return incomplete();
        const std::int64_t size = chunk_size_of(*line);
        if (size < 0) return body_refused(400, "bad_request", "a chunk-size line is malformed");
        pos += line->size() + 2;
        if (size == 0) {
            BodyScanResult result = chunked_trailers(bytes, pos);
            if (result.scan == HeadScan::incomplete) {
                result.progress = ChunkedProgress{pos - line->size() - 2, data_bytes};
            }
            return result;
        }
        if (size > data_bytes_max - data_bytes) return body_refused(413, "body_too_large", "the request body is too large");
        const auto chunk_end = pos + static_cast<std::size_t>(size);
        if (bytes.size() < chunk_end + 2) {
            pos -= line->size() + 2;  // resume at this chunk's size line
            return incomplete();
        }
        data_bytes += size;
        if (bytes.compare(chunk_end, 2, "\r\n") != 0) {
            return body_refused(400, "bad_request", "a chunk is not followed by CRLF");
        }
        pos = chunk_end + 2;
    }
}

HeadScanResult scan_request_head(std::string_view bytes, const HeadLimits& limits) {
    // A valid head ends within head_bytes_max bytes; nothing past them is read.
    const std::string_view view = bytes.substr(0, std::min(bytes.size(), limits.head_bytes_max));
    Framing framing;
    bool http10 = false;
    std::size_t header_count = 0;
    std::size_t line_start = 0;
    for (std::size_t i = 0;; ++i) {
        if (auto refusal = check_head_size(i, line_start, limits)) return *refusal;
        if (i == view.size()) break;  // more bytes are needed
        const unsigned char c = static_cast<unsigned char>(view[i]);
        if (c == '\n') return refused(400, "bad_request", "lines must end with CRLF");
        if (c == 0) return refused(400, "bad_request", "the request head holds a NUL byte");
        if (c != '\r') continue;
        if (i + 1 == view.size()) break;  // the LF may still come
        if (view[i + 1] != '\n') return refused(400, "bad_request", "lines must end with CRLF");
        const std::string_view line = view.substr(line_start, i - line_start);
        if (line_start == 0) {
            if (auto refusal = check_request_line(line, limits, http10)) return *refusal;
        } else if (line.empty()) {
            return complete(i + 2, framing, http10, limits);
        } else {
            if (++header_count > limits.header_count_max) {
                return refused(431, "headers_too_large", "too many request headers");
            }
            if (auto refusal = check_header_line(line, line_start, framing)) return *refusal;
        }
        line_start = i + 2;
        ++i;
    }
    return HeadScanResult{};
}

}  // namespace tokenmeter::http
