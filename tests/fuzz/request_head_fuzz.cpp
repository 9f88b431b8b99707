// Fuzzes the edge's scanners (server/http/request_head.hpp): the bytes are
// what a connection sent, a request head and, when the head says chunked,
// the body after it; the bytes are also scanned as a chunked body on their
// own. Each scan runs with the server's limits and with tight ones, so the
// bounds (head size, header count, target length, body size) are reached by
// short inputs too.
//
// The connection loop scans whatever has arrived, so the answer must not
// depend on how TCP split the bytes. The invariants check that for prefixes
// of the input: a head complete in a prefix is the same head in the whole;
// a refusal in a prefix is the same refusal in the whole; a chunked scan
// resumed from a prefix's progress gives what one scan gives. And no scan
// reports more bytes than it was given.
#include <algorithm>
#include <vector>

#include "fuzz_input.hpp"
#include "http/request_head.hpp"

namespace tokenmeter::fuzz {
namespace {

using http::BodyScanResult;
using http::HeadLimits;
using http::HeadScan;
using http::HeadScanResult;

constexpr HeadLimits server_limits{};
constexpr HeadLimits tight_limits{.head_bytes_max = 96, .header_count_max = 4, .target_bytes_max = 24, .body_bytes_max = 40};

// Prefix lengths to split at: every one for short inputs, else the ends of
// lines (where a read most often stops) and a spread of others, bounded so
// an input costs linear time.
std::vector<std::size_t> split_points(std::string_view bytes) {
    constexpr std::size_t all_below = 256;
    constexpr std::size_t points_max = 64;
    std::vector<std::size_t> points;
    if (bytes.size() <= all_below) {
        for (std::size_t i = 0; i < bytes.size(); ++i) points.push_back(i);
        return points;
    }
    for (std::size_t i = 0; i < bytes.size() && points.size() < points_max / 2; ++i) {
        if (bytes[i] == '\r' || bytes[i] == '\n') points.push_back(i + 1);
    }
    for (std::size_t k = 0; k < points_max / 2; ++k) points.push_back(bytes.size() * k / (points_max / 2));
    return points;
}

bool same_refusal(const http::HeadRefusal& a, const http::HeadRefusal& b) {
    return a.status == b.status && a.code == b.code;
}

bool same_head(const http::RequestHead& a, const http::RequestHead& b) {
    return a.head_bytes == b.head_bytes && a.framing == b.framing && a.content_length == b.content_length &&
           a.expects_continue == b.expects_continue && a.expect_line_offset == b.expect_line_offset &&
           a.expect_line_bytes == b.expect_line_bytes && a.wants_close == b.wants_close &&
           a.declares_no_length == b.declares_no_length;
}

void check_head_result(std::string_view bytes, const HeadScanResult& result, const HeadLimits& limits) {
    if (result.scan == HeadScan::refused) {
        TM_ASSERT(result.refusal.status >= 400 && !result.refusal.code.empty());
        return;
    }
    if (result.scan != HeadScan::complete) return;
    const http::RequestHead& head = result.head;
    TM_ASSERT(head.head_bytes >= 4 && head.head_bytes <= bytes.size());
    TM_ASSERT(head.head_bytes <= limits.head_bytes_max);
    TM_ASSERT(bytes.substr(head.head_bytes - 4, 4) == "\r\n\r\n");
    if (head.expects_continue) {
        TM_ASSERT(head.expect_line_offset > 0);
        TM_ASSERT(head.expect_line_offset + head.expect_line_bytes <= head.head_bytes - 2);
        TM_ASSERT(bytes.substr(head.expect_line_offset + head.expect_line_bytes - 2, 2) == "\r\n");
    }
    if (head.framing == http::BodyFraming::length) {
        TM_ASSERT(head.content_length > 0 && head.content_length <= limits.body_bytes_max);
    }
    if (head.declares_no_length) TM_ASSERT(head.framing == http::BodyFraming::none);
}

void check_head(std::string_view bytes, const HeadLimits& limits) {
    const HeadScanResult whole = http::scan_request_head(bytes, limits);
    check_head_result(bytes, whole, limits);
    for (std::size_t split : split_points(bytes)) {
        const HeadScanResult part = http::scan_request_head(bytes.substr(0, split), limits);
        check_head_result(bytes.substr(0, split), part, limits);
        TM_ASSERT(part.scan == HeadScan::incomplete || part.scan == whole.scan);
        if (part.scan == HeadScan::complete) TM_ASSERT(same_head(part.head, whole.head));
        if (part.scan == HeadScan::refused) TM_ASSERT(same_refusal(part.refusal, whole.refusal));
    }
}

void check_body_result(std::string_view bytes, const BodyScanResult& result, std::int64_t data_bytes_max) {
    if (result.scan == HeadScan::complete) {
        TM_ASSERT(result.body_bytes >= 5 && result.body_bytes <= bytes.size());
        TM_ASSERT(bytes.substr(result.body_bytes - 2, 2) == "\r\n");
    } else if (result.scan == HeadScan::incomplete) {
        TM_ASSERT(result.progress.pos <= bytes.size());
        TM_ASSERT(result.progress.data_bytes >= 0 && result.progress.data_bytes <= data_bytes_max);
    } else {
        TM_ASSERT(result.refusal.status >= 400 && !result.refusal.code.empty());
    }
}

bool same_body_scan(const BodyScanResult& a, const BodyScanResult& b) {
    if (a.scan != b.scan) return false;
    if (a.scan == HeadScan::complete) return a.body_bytes == b.body_bytes;
    if (a.scan == HeadScan::refused) return same_refusal(a.refusal, b.refusal);
    return a.progress.pos == b.progress.pos && a.progress.data_bytes == b.progress.data_bytes;
}

void check_chunked(std::string_view bytes, std::int64_t data_bytes_max) {
    const BodyScanResult whole = http::scan_chunked_body(bytes, data_bytes_max);
    check_body_result(bytes, whole, data_bytes_max);
    for (std::size_t split : split_points(bytes)) {
        const BodyScanResult part = http::scan_chunked_body(bytes.substr(0, split), data_bytes_max);
        check_body_result(bytes.substr(0, split), part, data_bytes_max);
        if (part.scan != HeadScan::incomplete) {
            TM_ASSERT(same_body_scan(part, whole));
            continue;
        }
        const BodyScanResult resumed = http::scan_chunked_body(bytes, data_bytes_max, part.progress);
        TM_ASSERT(same_body_scan(resumed, whole));
    }
}

// As the connection loop does: the head, then a chunked body after it.
void check_request(std::string_view bytes, const HeadLimits& limits) {
    check_head(bytes, limits);
    const HeadScanResult head = http::scan_request_head(bytes, limits);
    if (head.scan == HeadScan::complete && head.head.framing == http::BodyFraming::chunked) {
        check_chunked(bytes.substr(head.head.head_bytes), limits.body_bytes_max);
    }
}

}  // namespace
}  // namespace tokenmeter::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tokenmeter::fuzz;
    const std::string_view bytes = text_of(data, size);
    check_request(bytes, server_limits);
    check_request(bytes, tight_limits);
    check_chunked(bytes, server_limits.body_bytes_max);
    check_chunked(bytes, tight_limits.body_bytes_max);
    return 0;
}
