// What the gateway reads from a provider's answer, without a provider: the
// usage it believes (and the counts it refuses, so the call is settled by
// counting instead), and the events of an SSE stream however its bytes are
// cut into pieces.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/provider_stream.hpp"

namespace tokenmeter::gateway {
namespace {

using nlohmann::json;

// ---- provider_usage ---------------------------------------------------------

void expect_usage(const json& usage, const ProviderUsage& expected, bool chat = true) {
    const auto read = provider_usage(usage, chat);
    ASSERT_TRUE(read.has_value()) << usage.dump();
    EXPECT_EQ(read->input, expected.input) << usage.dump();
    EXPECT_EQ(read->cached_input, expected.cached_input) << usage.dump();
    EXPECT_EQ(read->output, expected.output) << usage.dump();
    EXPECT_EQ(read->reasoning, expected.reasoning) << usage.dump();
}

TEST(ProviderUsage, TakesBelievableCountsWithTheirDetails) {
    expect_usage(json::parse(R"({"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17})"), {12, 0, 5, 0});
    // OpenAI's details, with the fields the gateway does not read.
    expect_usage(json::parse(R"({"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                                "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                                "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0,
                                  "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}})"),
                 {2006, 1920, 300, 192});
    // A part may be all of its whole; every count may be 0, or a billion.
    expect_usage(json::parse(R"({"prompt_tokens": 8, "completion_tokens": 3,
                                "prompt_tokens_details": {"cached_tokens": 8},
                                "completion_tokens_details": {"reasoning_tokens": 3}})"),
                 {8, 8, 3, 3});
    expect_usage(json::parse(R"({"prompt_tokens": 0, "completion_tokens": 0})"), {0, 0, 0, 0});
    expect_usage(json::parse(R"({"prompt_tokens": 1000000000, "completion_tokens": 1000000000,
                                "prompt_tokens_details": {"cached_tokens": 1000000000},
                                "completion_tokens_details": {"reasoning_tokens": 1000000000}})"),
                 {1000000000, 1000000000, 1000000000, 1000000000});
    // Details missing or null (older models, other providers): no parts.
    expect_usage(json::parse(R"({"prompt_tokens": 9, "completion_tokens": 4,
                                "prompt_tokens_details": null, "completion_tokens_details": null})"),
                 {9, 0, 4, 0});
    expect_usage(json::parse(R"({"prompt_tokens": 9, "completion_tokens": 4,
                                "prompt_tokens_details": {"cached_tokens": null},
                                "completion_tokens_details": {}})"),
                 {9, 0, 4, 0});
    // An embedding's usage has no completion_tokens.
    expect_usage(json::parse(R"({"prompt_tokens": 8, "total_tokens": 8})"), {8, 0, 0, 0}, /*chat=*/false);
    // total_tokens is not read (the parts are what is charged).
    expect_usage(json::parse(R"({"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 1})"), {5, 0, 4, 0});
}

TEST(ProviderUsage, RefusesWhatIsNotBelievable) {
    const char* refused[] = {
        // No usage at all.
        "null",
        "[]",
        "\"usage\"",
        "12",
        "{}",
        R"({"completion_tokens": 5})",
        R"({"prompt_tokens": null, "completion_tokens": 5})",
        // Negative, above a billion, or beyond an int64_t.
        R"({"prompt_tokens": -1, "completion_tokens": 5})",
        R"({"prompt_tokens": 1000000001, "completion_tokens": 5})",
        R"({"prompt_tokens": 9223372036854775807, "completion_tokens": 5})",
        R"({"prompt_tokens": 9223372036854775808, "completion_tokens": 5})",
        R"({"prompt_tokens": 18446744073709551615, "completion_tokens": 5})",
        R"({"prompt_tokens": 5, "completion_tokens": -3})",
        R"({"prompt_tokens": 5, "completion_tokens": 1000000001})",
        R"({"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": -1}})",
        R"({"prompt_tokens": 5, "completion_tokens": 2, "completion_tokens_details": {"reasoning_tokens": -1}})",
        // Not integers.
        R"({"prompt_tokens": 5.5, "completion_tokens": 2})",
        R"({"prompt_tokens": 5.0, "completion_tokens": 2})",
        R"({"prompt_tokens": 1e30, "completion_tokens": 2})",
        R"({"prompt_tokens": "5", "completion_tokens": 2})",
        R"({"prompt_tokens": true, "completion_tokens": 2})",
        R"({"prompt_tokens": 5, "completion_tokens": "2"})",
        R"({"prompt_tokens": 5, "completion_tokens": 2.5})",
        R"({"prompt_tokens": 5, "completion_tokens": [2]})",
        R"({"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 1.5}})",
        R"({"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": "1"}})",
        R"({"prompt_tokens": 5, "completion_tokens": 2, "completion_tokens_details": {"reasoning_tokens": 1.0}})",
        // A part above its whole.
        R"({"prompt_tokens": 10, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 11}})",
        R"({"prompt_tokens": 10, "completion_tokens": 2, "completion_tokens_details": {"reasoning_tokens": 3}})",
        R"({"prompt_tokens": 0, "completion_tokens": 0, "prompt_tokens_details": {"cached_tokens": 1}})",
    };
    for (const char* text : refused) {
        const json usage = json::parse(text);
        EXPECT_FALSE(provider_usage(usage, /*chat=*/true).has_value()) << text;
        EXPECT_FALSE(provider_usage(usage, /*chat=*/false).has_value()) << text;
    }
}

TEST(ProviderUsage, AChatsUsageWithoutCompletionTokensIsNoUsage) {
    // Taken as 0 output, it would settle the answer as free; counting the
    // text streamed is what is left. An embedding's usage has none.
    for (const char* text : {R"({"prompt_tokens": 10, "total_tokens": 10})",
                             R"({"prompt_tokens": 10, "completion_tokens": null, "total_tokens": 10})",
                             R"({"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 4}})"}) {
        const json usage = json::parse(text);
        EXPECT_FALSE(provider_usage(usage, /*chat=*/true).has_value()) << text;
        const auto embedding = provider_usage(usage, /*chat=*/false);
        ASSERT_TRUE(embedding.has_value()) << text;
        EXPECT_EQ(embedding->input, 10) << text;
        EXPECT_EQ(embedding->output, 0) << text;
    }
}

// ---- EventSplitter ----------------------------------------------------------

struct Split {
    std::vector<std::string> events;
    std::string pending;

    bool operator==(const Split&) const = default;
};

// Feeds `pieces` in order, taking every complete event after each one.
Split split(const std::vector<std::string_view>& pieces) {
    EventSplitter splitter;
    Split out;
    std::string event;
    for (const std::string_view piece : pieces) {
        splitter.feed(piece);
        while (splitter.next(event)) out.events.push_back(event);
    }
    out.pending = splitter.pending();
    return out;
}

std::string shown(const Split& split) {
    std::string text;
    for (const std::string& event : split.events) text += "[" + json(event).dump() + "] ";
    return text + "pending " + json(split.pending).dump();
}

// The same events and the same pending bytes whether `stream` comes whole,
// one byte at a time, or in two pieces cut anywhere.
void expect_any_cut_gives(const std::string& stream, const Split& expected) {
    const Split whole = split({stream});
    EXPECT_EQ(whole, expected) << "whole: " << shown(whole);
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < stream.size(); ++i) bytes.push_back(std::string_view(stream).substr(i, 1));
    const Split one_by_one = split(bytes);
    EXPECT_EQ(one_by_one, expected) << "one byte at a time: " << shown(one_by_one);
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        const std::string_view all(stream);
        const Split two = split({all.substr(0, cut), all.substr(cut)});
        EXPECT_EQ(two, expected) << "cut at " << cut << ": " << shown(two);
    }
}

TEST(EventSplitter, LfEventsComeOutTheSameHoweverTheBytesArrive) {
    const std::string first = "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"Echo:\"}}]}\n\n";
    const std::string comment = ": keep-alive\n\n";
    const std::string multi_line = "event: message\nid: 7\n: a comment inside\ndata: {\"a\":\ndata: 1}\n\n";
    const std::string usage = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n";
    // A blank line too many goes with the next event (and is read past).
    const std::string after_extra_blank = "\ndata: {\"b\":2}\n\n";
    const std::string done = "data: [DONE]\n\n";
    expect_any_cut_gives(first + comment + multi_line + usage + after_extra_blank + done,
                         {{first, comment, multi_line, usage, after_extra_blank, done}, ""});
}

TEST(EventSplitter, AFinalEventWithoutItsBlankLineStaysPending) {
    // A stream cut before an event's blank line does not dispatch it (as
    // the SSE spec says of a stream ending mid-event).
    const std::string first = "data: {\"a\":1}\n\n";
    expect_any_cut_gives(first + "data: {\"b\":2}\n", {{first}, "data: {\"b\":2}\n"});
    expect_any_cut_gives(first + "data: [DONE]", {{first}, "data: [DONE]"});
    expect_any_cut_gives("data: {\"a\":1}", {{}, "data: {\"a\":1}"});
    expect_any_cut_gives("", {{}, ""});
}

TEST(EventSplitter, CrlfAndMixedEventsComeOutTheSameHoweverTheBytesArrive) {
    // Each blank line ending an event: CRLF CRLF, LF LF, and the mixes.
    const std::string crlf = "data: {\"a\":1}\r\n\r\n";
    const std::string comment = ": ping\r\n\r\n";
    const std::string lines = "event: message\r\ndata: {\"b\":\r\ndata: 2}\r\n\r\n";
    const std::string lf_blank = "data: {\"c\":3}\r\n\n";
    const std::string crlf_blank = "data: {\"d\":4}\n\r\n";
    const std::string done = "data: [DONE]\r\n\r\n";
    expect_any_cut_gives(crlf + comment + lines + lf_blank + crlf_blank + done + "data: {\"e\"",
                         {{crlf, comment, lines, lf_blank, crlf_blank, done}, "data: {\"e\""});
}

TEST(EventSplitter, ACrlfBlankLineCutBeforeItsLastByteStillEndsTheEvent) {
    // A read ending at "\r\n\r" and the next starting with its "\n" (where
    // a TCP segment may end): the two events must not run into one, which
    // would hide the first's text and the usage or [DONE] of the second.
    EventSplitter splitter;
    std::string event;
    splitter.feed("data: {\"a\":1}\r\n\r");
    EXPECT_FALSE(splitter.next(event));
    splitter.feed("\n");
    ASSERT_TRUE(splitter.next(event));
    EXPECT_EQ(event, "data: {\"a\":1}\r\n\r\n");
    splitter.feed("data: [DONE]\r\n\r\n");
    ASSERT_TRUE(splitter.next(event));
    EXPECT_TRUE(read_event(event).done) << event;
}

// ---- read_event -------------------------------------------------------------

TEST(ReadEvent, DataDoneUsageAndComments) {
    const StreamEvent chunk = read_event("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\r\n\r\n");
    ASSERT_TRUE(chunk.chunk.has_value());
    EXPECT_FALSE(chunk.done);
    EXPECT_FALSE(chunk.usage_only);
    EXPECT_EQ((*chunk.chunk)["choices"][0]["delta"]["content"], "hi");

    EXPECT_TRUE(read_event("data: [DONE]\n\n").done);
    EXPECT_TRUE(read_event("data:[DONE]\r\n\r\n").done);

    const StreamEvent usage = read_event("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n");
    EXPECT_TRUE(usage.usage_only);
    // A chunk with choices that also carries a usage is not usage-only.
    EXPECT_FALSE(read_event("data: {\"choices\":[{}],\"usage\":{\"prompt_tokens\":1}}\n\n").usage_only);
    // include_usage's earlier chunks carry "usage": null.
    EXPECT_FALSE(read_event("data: {\"choices\":[],\"usage\":null}\n\n").usage_only);

    // Data lines join with a newline; comments and other fields are skipped.
    const StreamEvent joined = read_event(": c\nevent: message\ndata: {\"a\":\ndata: 1}\nid: 4\n\n");
    ASSERT_TRUE(joined.chunk.has_value());
    EXPECT_EQ(*joined.chunk, json::parse(R"({"a": 1})"));

    for (const char* nothing : {": keep-alive\n\n", "event: ping\n\n", "\n\n", "data: not json\n\n"}) {
        const StreamEvent read = read_event(nothing);
        EXPECT_FALSE(read.done) << nothing;
        EXPECT_FALSE(read.usage_only) << nothing;
        EXPECT_FALSE(read.chunk.has_value()) << nothing;
    }
}

}  // namespace
}  // namespace tokenmeter::gateway
