// What the gateway reads from a provider's answer (OpenAI's wire format):
// the usage it reports, by token class, and, for a stream, the events it is
// made of and the text it carried, to count when no usage comes.
//
// Pure functions and a byte-fed splitter: no I/O, so every way a provider
// can end a stream is tested without one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace tokenmeter::gateway {

// The token classes of DESIGN.md §3 as a provider reports them. Cached
// tokens are a part of `input`, reasoning tokens a part of `output`.
struct ProviderUsage {
    std::int64_t input = 0;         // prompt_tokens
    std::int64_t cached_input = 0;  // prompt_tokens_details.cached_tokens
    std::int64_t output = 0;        // completion_tokens (0 for embeddings)
    std::int64_t reasoning = 0;     // completion_tokens_details.reasoning_tokens
};

// The `usage` object of a response or a final stream chunk, a chat's
// (`chat`) or an embedding's (which has no completion_tokens: output 0).
// Nothing when it is missing, null, incomplete (no prompt_tokens; a chat's
// without completion_tokens) or not believable (a negative or huge count,
// more cached than input, more reasoning than output): the caller then counts.
std::optional<ProviderUsage> provider_usage(const nlohmann::json& usage, bool chat);

// The text a chat answer carried in its choices (message or delta content,
// refusals, tool call arguments), appended to `text`.
void append_choice_text(const nlohmann::json& choices, std::string& text);

// Splits a Server-Sent Events byte stream into its events (blocks ended by
// a blank line, LF or CRLF), as the bytes arrive in any pieces.
class EventSplitter {
public:
    void feed(std::string_view bytes);
    // The next complete event, with its terminating blank line; false when
    // none is complete yet.
    bool next(std::string& event);
    // Bytes of an event not yet terminated (a stream cut mid-event).
    const std::string& pending() const { return buffer_; }

private:
    std::string buffer_;
    std::size_t scanned_ = 0;
};

// One event as the gateway sees it.
struct StreamEvent {
    bool done = false;            // data: [DONE]
    bool usage_only = false;      // a chunk with no choices and a usage (include_usage's last)
    std::optional<nlohmann::json> chunk;  // the data's JSON, when it is JSON
};

// Reads the data lines of one event.
StreamEvent read_event(std::string_view event);

}  // namespace tokenmeter::gateway
