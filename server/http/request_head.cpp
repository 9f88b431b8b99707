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

// One header line (without its CRLF).
std::optional<HeadScanResult> check_header_line(std::string_view line, Framing& framing) {
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
    result.head.wants_close = framing.close || (http10 && !framing.keep_alive);
    if (framing.chunked) {
        result.head.framing = BodyFraming::chunked;
    } else if (framing.content_length && *framing.content_length > 0) {
        result.head.framing = BodyFraming::length;
        result.head.content_length = *framing.content_length;
    }
    return result;
}

}  // namespace

HeadScanResult scan_request_head(std::string_view bytes, const HeadLimits& limits) {
    // Never look past what a valid head could hold.
    const std::string_view view = bytes.substr(0, std::min(bytes.size(), limits.head_bytes_max + 4));
    Framing framing;
    bool http10 = false;
    std::size_t header_count = 0;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < view.size(); ++i) {
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
            if (auto refusal = check_header_line(line, framing)) return *refusal;
        }
        line_start = i + 2;
        ++i;
    }
    if (line_start == 0 && view.size() > limits.target_bytes_max + request_line_overhead_max) {
        return refused(414, "uri_too_long", "the request target is too long");
    }
    if (view.size() > limits.head_bytes_max) return refused(431, "headers_too_large", "the request head is too large");
    return HeadScanResult{};
}

}  // namespace tokenmeter::http
