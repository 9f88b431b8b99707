// The edge's pure parts, table by table: the request-head and chunked-body
// scanners (every refusal they can give, and framings they must agree on
// with httplib), and the rate limiter's buckets on an explicit clock.
#include <gtest/gtest.h>

#include <string>

#include "http/rate_limits.hpp"
#include "http/request_head.hpp"

namespace tokenmeter::http {
namespace {

struct HeadCase {
    const char* name;
    std::string bytes;
    HeadScan scan;
    int status;  // for refusals
};

TEST(RequestHead, EveryOutcomeInOrder) {
    const std::string long_target(9000, 'a');
    std::string many_headers = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 65; ++i) many_headers += "X-" + std::to_string(i) + ": 1\r\n";
    many_headers += "\r\n";
    const HeadCase cases[] = {
        // Refusals first, in the order the scanner meets them.
        {"bare LF", "GET / HTTP/1.1\nHost: a\n\n", HeadScan::refused, 400},
        {"NUL", std::string("GET /\0 HTTP/1.1\r\n\r\n", 19), HeadScan::refused, 400},
        {"CR without LF", "GET / HTTP/1.1\rX\r\n\r\n", HeadScan::refused, 400},
        {"no version", "GET /\r\n\r\n", HeadScan::refused, 400},
        {"method not a token", "G(T / HTTP/1.1\r\n\r\n", HeadScan::refused, 400},
        {"target too long", "GET /" + long_target + " HTTP/1.1\r\n\r\n", HeadScan::refused, 414},
        {"target too long, still arriving", "GET /" + long_target, HeadScan::refused, 414},
        {"request line too long", std::string(9000, 'M') + " / HTTP/1.1\r\n\r\n", HeadScan::refused, 414},
        {"target not a path", "GET http://x/ HTTP/1.1\r\n\r\n", HeadScan::refused, 400},
        {"target with a space", "GET /a b HTTP/1.1\r\n\r\n", HeadScan::refused, 400},
        {"HTTP/2", "GET / HTTP/2.0\r\n\r\n", HeadScan::refused, 505},
        {"too many headers", many_headers, HeadScan::refused, 431},
        {"folded line", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", HeadScan::refused, 400},
        {"header without colon", "GET / HTTP/1.1\r\nAb\r\n\r\n", HeadScan::refused, 400},
        {"space before colon", "GET / HTTP/1.1\r\nA : b\r\n\r\n", HeadScan::refused, 400},
        {"control in value", "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", HeadScan::refused, 400},
        {"length not a number", "POST / HTTP/1.1\r\nContent-Length: 1e19\r\n\r\n", HeadScan::refused, 400},
        {"negative length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HeadScan::refused, 400},
        {"length of 19 digits", "POST / HTTP/1.1\r\nContent-Length: 1000000000000000000\r\n\r\n", HeadScan::refused, 400},
        {"two lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", HeadScan::refused, 400},
        {"gzip transfer coding", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HeadScan::refused, 501},
        {"two transfer codings", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
         HeadScan::refused, 400},
        {"compressed body", "POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\n\r\n", HeadScan::refused, 415},
        {"length and chunked", "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", HeadScan::refused,
         400},
        {"body over the cap", "POST / HTTP/1.1\r\nContent-Length: 4194305\r\n\r\n", HeadScan::refused, 413},
        {"head over the cap", "GET / HTTP/1.1\r\nA: " + std::string(17000, 'b'), HeadScan::refused, 431},
        {"head ending one byte past the cap", "GET / HTTP/1.1\r\nA: " + std::string(16384 - 19 - 4 + 1, 'b') + "\r\n\r\n",
         HeadScan::refused, 431},
        // Then what is still arriving, and what is complete.
        {"empty", "", HeadScan::incomplete, 0},
        {"half a request line", "GET /hea", HeadScan::incomplete, 0},
        {"a CR at the end", "GET / HTTP/1.1\r", HeadScan::incomplete, 0},
        {"no blank line yet", "GET / HTTP/1.1\r\nHost: a\r\n", HeadScan::incomplete, 0},
        {"complete GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", HeadScan::complete, 0},
        {"head ending at the cap", "GET / HTTP/1.1\r\nA: " + std::string(16384 - 19 - 4, 'b') + "\r\n\r\n",
         HeadScan::complete, 0},
        {"identity coding", "POST / HTTP/1.1\r\nContent-Encoding: identity\r\nContent-Length: 2\r\n\r\n", HeadScan::complete, 0},
        {"equal lengths twice", "POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n", HeadScan::complete, 0},
    };
    for (const HeadCase& c : cases) {
        const HeadScanResult result = scan_request_head(c.bytes, HeadLimits{});
        EXPECT_EQ(result.scan, c.scan) << c.name;
        if (c.scan == HeadScan::refused) {
            EXPECT_EQ(result.refusal.status, c.status) << c.name;
            EXPECT_FALSE(result.refusal.code.empty()) << c.name;
        }
    }
}

TEST(RequestHead, FramingOfCompleteHeads) {
    auto scan = [](const std::string& bytes) { return scan_request_head(bytes, HeadLimits{}).head; };
    const RequestHead get = scan("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next");
    EXPECT_EQ(get.head_bytes, std::string("GET / HTTP/1.1\r\nHost: a\r\n\r\n").size());
    EXPECT_EQ(get.framing, BodyFraming::none);
    EXPECT_TRUE(get.declares_no_length);
    EXPECT_FALSE(get.wants_close);

    const RequestHead post = scan("POST / HTTP/1.1\r\ncontent-LENGTH:  12 \r\n\r\n");
    EXPECT_EQ(post.framing, BodyFraming::length);
    EXPECT_EQ(post.content_length, 12);
    EXPECT_FALSE(post.declares_no_length);

    EXPECT_EQ(scan("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").framing, BodyFraming::none);
    EXPECT_FALSE(scan("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").declares_no_length);
    EXPECT_EQ(scan("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n").framing, BodyFraming::chunked);

    const std::string expecting = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    const RequestHead expect = scan(expecting);
    EXPECT_TRUE(expect.expects_continue);
    EXPECT_EQ(expecting.substr(expect.expect_line_offset, expect.expect_line_bytes), "Expect: 100-continue\r\n");

    EXPECT_TRUE(scan("GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n").wants_close);
    EXPECT_TRUE(scan("GET / HTTP/1.0\r\n\r\n").wants_close);
    EXPECT_FALSE(scan("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").wants_close);
}

TEST(RequestHead, ReadsNoFurtherThanTheCapWhateverItIsGiven) {
    // Ten million header lines: refused after the cap, in time linear in the cap.
    std::string flood = "GET / HTTP/1.1\r\n";
    while (flood.size() < (std::size_t{8} << 20)) flood += "X-A: b\r\n";
    HeadLimits limits;
    limits.header_count_max = 1'000'000;  // so that the byte cap is what stops it
    const HeadScanResult result = scan_request_head(flood, limits);
    EXPECT_EQ(result.scan, HeadScan::refused);
    EXPECT_EQ(result.refusal.status, 431);
}

struct ChunkedCase {
    const char* name;
    std::string bytes;
    HeadScan scan;
    int status;
    std::size_t body_bytes;
};

TEST(ChunkedBody, EveryOutcome) {
    const ChunkedCase cases[] = {
        {"not hex", "zz\r\n", HeadScan::refused, 400, 0},
        {"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", HeadScan::refused, 400, 0},
        {"leading space", " 5\r\nhello\r\n0\r\n\r\n", HeadScan::refused, 400, 0},
        {"sixteen digits", "1000000000000000\r\n", HeadScan::refused, 400, 0},
        {"data without CRLF", "5\r\nhelloXX0\r\n\r\n", HeadScan::refused, 400, 0},
        {"bare LF", "5\nhello\n0\n\n", HeadScan::refused, 400, 0},
        {"over the cap", "400001\r\n", HeadScan::refused, 413, 0},
        {"over the cap in two chunks", "200000\r\n" + std::string(0x200000, 'x') + "\r\n200001\r\n", HeadScan::refused, 413, 0},
        {"a size line that never ends", std::string(300, '1'), HeadScan::refused, 400, 0},
        {"empty", "", HeadScan::incomplete, 0, 0},
        {"part of a chunk", "5\r\nhel", HeadScan::incomplete, 0, 0},
        {"no final CRLF yet", "5\r\nhello\r\n0\r\n", HeadScan::incomplete, 0, 0},
        {"complete", "5\r\nhello\r\n0\r\n\r\n", HeadScan::complete, 0, 15},
        {"with extensions", "5;a=b\r\nhello\r\n0;last\r\n\r\n", HeadScan::complete, 0, 24},
        {"with a trailer", "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\nGET", HeadScan::complete, 0, 25},
        {"upper-case hex", "A\r\n0123456789\r\n0\r\n\r\n", HeadScan::complete, 0, 20},
    };
    for (const ChunkedCase& c : cases) {
        const BodyScanResult result = scan_chunked_body(c.bytes, 4 << 20);
        EXPECT_EQ(result.scan, c.scan) << c.name;
        if (c.scan == HeadScan::refused) {
            EXPECT_EQ(result.refusal.status, c.status) << c.name;
        }
        if (c.scan == HeadScan::complete) {
            EXPECT_EQ(result.body_bytes, c.body_bytes) << c.name;
        }
    }
}

TEST(ChunkedBody, ResumingGivesTheSameAnswerAsOneScan) {
    std::string body;
    for (int i = 1; i <= 200; ++i) body += "3\r\nabc\r\n";
    body += "0\r\n\r\n";
    const BodyScanResult whole = scan_chunked_body(body, 4 << 20);
    ASSERT_EQ(whole.scan, HeadScan::complete);
    // Byte by byte, resuming each time where the last scan stopped.
    ChunkedProgress progress;
    BodyScanResult last;
    std::size_t scanned_lines = 0;
    for (std::size_t end = 1; end <= body.size(); ++end) {
        last = scan_chunked_body(std::string_view(body).substr(0, end), 4 << 20, progress);
        if (last.scan != HeadScan::incomplete) break;
        EXPECT_LE(last.progress.pos, end);
        scanned_lines += last.progress.pos > progress.pos ? 1 : 0;
        progress = last.progress;
    }
    EXPECT_EQ(last.scan, HeadScan::complete);
    EXPECT_EQ(last.body_bytes, whole.body_bytes);
    EXPECT_EQ(scanned_lines, 200u);  // progress moved once per chunk, never back
}

TEST(RateLimiter, BurstThenRefillThenRefuseWithTheWait) {
    RateLimiter limiter(RateLimit{2, 4});
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(limiter.take("u", 1000).allowed) << i;
    const RateDecision refused = limiter.take("u", 1000);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.retry_after_seconds, 1);
    EXPECT_FALSE(limiter.take("u", 1499).allowed);  // 2 per second: one back after 500 ms
    EXPECT_TRUE(limiter.take("u", 1500).allowed);
    EXPECT_FALSE(limiter.take("u", 1500).allowed);
    // Others are not affected; a long pause refills only to the burst.
    EXPECT_TRUE(limiter.take("v", 1500).allowed);
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(limiter.take("u", 1'000'000'000).allowed) << i;
    EXPECT_FALSE(limiter.take("u", 1'000'000'000).allowed);
}

TEST(RateLimiter, SlowRatesTellTheWholeWait) {
    RateLimiter limiter(RateLimit{1, 1});
    EXPECT_TRUE(limiter.take("u", 0).allowed);
    EXPECT_EQ(limiter.take("u", 0).retry_after_seconds, 1);
    EXPECT_EQ(limiter.take("u", 999).retry_after_seconds, 1);
    EXPECT_TRUE(limiter.take("u", 1000).allowed);
}

TEST(RateLimiter, OffAllowsEverything) {
    RateLimiter limiter(RateLimit{0, 0});
    for (int i = 0; i < 10000; ++i) ASSERT_TRUE(limiter.take("u", 0).allowed);
    EXPECT_EQ(limiter.keys(), 0u);
}

TEST(RateLimiter, MemoryStaysBoundedUnderManyKeys) {
    RateLimiter limiter(RateLimit{1, 1}, 1600);
    for (int i = 0; i < 100'000; ++i) {
        (void)limiter.take("address-" + std::to_string(i), i);
        ASSERT_LE(limiter.keys(), 1600u);
    }
    // Keys still in use keep their state: a busy caller is not reset by others.
    RateLimiter busy(RateLimit{1, 1}, 1600);
    EXPECT_TRUE(busy.take("busy", 0).allowed);
    for (int i = 0; i < 50; ++i) (void)busy.take("other-" + std::to_string(i), 0);
    EXPECT_FALSE(busy.take("busy", 0).allowed);
}

}  // namespace
}  // namespace tokenmeter::http
