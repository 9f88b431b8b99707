// What a request costs in tokens before it is sent: text, OpenAI chat
// messages, and the Claude estimate.
//
// OpenAI chat counts follow OpenAI's cookbook ("How to count tokens with
// tiktoken", the gpt-4o / gpt-4o-mini / gpt-4-0613 / gpt-3.5-turbo-0125
// rules): every message costs 3 tokens plus the tokens of each of its fields
// (role, content, name), a `name` costs 1 more, and the reply is primed with 3
// (<|start|>assistant<|message|>). The cookbook's 6-message example gives 124
// on o200k_base and 129 on cl100k_base; the tests check both.
//
// Claude (claude-3-5-sonnet, claude-3-7-sonnet) has no public tokenizer: the
// @anthropic-ai/tokenizer package covers only pre-Claude-3 models and its
// README calls it "a very rough approximation" for Claude 3. The estimate is
// therefore derived from o200k_base (GPT-4o's encoding), whose ratio to
// Claude's count has been measured: a published comparison of Claude 3.5
// Sonnet and GPT-4o on the same inputs found Claude's tokenizer producing
// about 16 % more tokens on English articles, 21 % more on math and 30 % more
// on Python code. The estimate is ceil(o200k count × 5/4):
//   * expected error: about +8 % (English), +3 % (math), -4 % (code) against
//     those measurements, so within ±10 % for English text, code and math;
//   * other scripts, emoji and unusual text were not measured and may be off
//     by more; the ratio also drifts as Anthropic changes tokenizers;
//   * counts are always flagged exact = false. The provider's `usage` in the
//     response is what a commit charges; the estimate only sizes the
//     reservation.
// Chat messages use the same per-message rules as OpenAI's, then the ratio.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenmeter/catalog.hpp"
#include "tokenmeter/error.hpp"
#include "tokenmeter/json_input.hpp"
#include "tokenmeter/result.hpp"
#include "tokenmeter/tokenizer.hpp"

namespace tokenmeter {

// One chat message in OpenAI's shape. `content` holds the text parts: one for
// a string content, none for null, one per {"type":"text"} part of an array.
struct ChatMessage {
    std::string role;
    std::vector<std::string> content;
    std::optional<std::string> name;
    std::optional<std::string> tool_call_id;
};

// Reads `messages` (a JSON array of message objects). Errors (each naming
// the message index and field): chat_invalid (not an array, a message not an
// object, a field of the wrong type, an unsupported content part, an
// unknown field such as tool_calls), chat_too_many_messages.
Result<std::vector<ChatMessage>, Error> chat_messages_from_json(const json_input::Json& messages);

// The same from JSON text. Errors: chat_invalid (also for malformed JSON or
// invalid UTF-8), chat_too_large, chat_too_many_messages.
Result<std::vector<ChatMessage>, Error> parse_chat_messages(std::string_view json_text);

// Token counts carry whether they are exact.
struct TokenCount {
    std::int64_t tokens = 0;
    bool exact = true;
};

// The encoding a tokenizer counts with: itself, or o200k_base for the estimate.
TokenizerKind encoding_kind_for(TokenizerKind tokenizer);

// The Claude estimate from an o200k_base count: ceil(tokens * 5 / 4).
inline constexpr Multiplier claude_estimate_ratio{5, 4};
std::int64_t claude_estimate_from_o200k(std::int64_t o200k_tokens);

// OpenAI's chat formula over `encoding`: exact ids per field plus the
// documented overhead. Errors: those of Encoding::count.
Result<std::int64_t, Error> count_chat_tokens(const Encoding& encoding, std::span<const ChatMessage> messages);

// Counts for a model's tokenizer. `encoding` must be the encoding of
// encoding_kind_for(tokenizer) (asserted). Errors: those of Encoding::count.
Result<TokenCount, Error> count_text_tokens(const Encoding& encoding, TokenizerKind tokenizer, std::string_view text);
Result<TokenCount, Error> count_chat_tokens(const Encoding& encoding, TokenizerKind tokenizer,
                                            std::span<const ChatMessage> messages);

}  // namespace tokenmeter
