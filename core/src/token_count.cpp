#include "tokenmeter/token_count.hpp"

#include "tokenmeter/assert.hpp"
#include "tokenmeter/limits.hpp"

namespace tokenmeter {

namespace {

using json_input::Json;

Error chat_invalid(std::string message) { return make_error("chat_invalid", std::move(message)); }

std::string where(std::size_t index, std::string_view field) {
    return "messages[" + std::to_string(index) + "]" + (field.empty() ? "" : "." + std::string(field));
}

Result<std::vector<std::string>, Error> content_parts(const Json& content, std::size_t index) {
    std::vector<std::string> parts;
    if (content.is_null()) return parts;
    if (content.is_string()) {
        parts.push_back(content.get<std::string>());
        return parts;
    }
    if (!content.is_array()) return unexpected(chat_invalid(where(index, "content") + " must be a string, null or an array"));
    for (std::size_t i = 0; i < content.size(); ++i) {
        const Json& part = content[i];
        const std::string at = where(index, "content") + "[" + std::to_string(i) + "]";
        if (!part.is_object()) return unexpected(chat_invalid(at + " must be an object"));
        const auto type = part.find("type");
        const auto text = part.find("text");
        if (type == part.end() || !type->is_string() || type->get<std::string>() != "text") {
            return unexpected(chat_invalid(at + " is not a {\"type\":\"text\"} part; only text can be counted"));
        }
        if (text == part.end() || !text->is_string()) return unexpected(chat_invalid(at + ".text must be a string"));
        parts.push_back(text->get<std::string>());
    }
    return parts;
}

Result<std::optional<std::string>, Error> optional_string(const Json& message, std::string_view key, std::size_t index) {
    const auto it = message.find(key);
    if (it == message.end()) return std::optional<std::string>{};
    if (!it->is_string()) return unexpected(chat_invalid(where(index, key) + " must be a string"));
    return std::optional<std::string>{it->get<std::string>()};
}

Result<ChatMessage, Error> message_from_json(const Json& message, std::size_t index) {
    if (!message.is_object()) return unexpected(chat_invalid(where(index, "") + " must be an object"));
    for (const auto& item : message.items()) {
        const std::string& key = item.key();
        if (key != "role" && key != "content" && key != "name" && key != "tool_call_id") {
            return unexpected(chat_invalid(where(index, key) + " is not counted (known fields: role, content, name, tool_call_id)"));
        }
    }
    ChatMessage out;
    const auto role = message.find("role");
    if (role == message.end() || !role->is_string()) return unexpected(chat_invalid(where(index, "role") + " must be a string"));
    out.role = role->get<std::string>();
    const auto content = message.find("content");
    if (content == message.end()) return unexpected(chat_invalid(where(index, "content") + " is missing"));
    auto parts = content_parts(*content, index);
    if (!parts) return unexpected(parts.error());
    out.content = std::move(parts).value();
    auto name = optional_string(message, "name", index);
    if (!name) return unexpected(name.error());
    out.name = std::move(name).value();
    auto tool_call_id = optional_string(message, "tool_call_id", index);
    if (!tool_call_id) return unexpected(tool_call_id.error());
    out.tool_call_id = std::move(tool_call_id).value();
    return out;
}

// The cookbook's constants for current OpenAI chat models.
constexpr std::int64_t tokens_per_message = 3;
constexpr std::int64_t tokens_per_name = 1;
constexpr std::int64_t tokens_reply_priming = 3;

}  // namespace

Result<std::vector<ChatMessage>, Error> chat_messages_from_json(const Json& messages) {
    if (!messages.is_array()) return unexpected(chat_invalid("messages must be a JSON array of message objects"));
    if (messages.size() > limits::chat_messages_max) {
        return unexpected(make_error("chat_too_many_messages", "a chat has at most " +
                                                                   std::to_string(limits::chat_messages_max) +
                                                                   " messages; this one has " +
                                                                   std::to_string(messages.size())));
    }
    std::vector<ChatMessage> out;
    out.reserve(messages.size());
    for (std::size_t i = 0; i < messages.size(); ++i) {
        auto message = message_from_json(messages[i], i);
        if (!message) return unexpected(message.error());
        out.push_back(std::move(message).value());
    }
    return out;
}

Result<std::vector<ChatMessage>, Error> parse_chat_messages(std::string_view json_text) {
    if (json_text.size() > limits::text_bytes_max) {
        return unexpected(make_error("chat_too_large", "the chat has " + std::to_string(json_text.size()) +
                                                           " bytes; at most " +
                                                           std::to_string(limits::text_bytes_max) + " are counted"));
    }
    if (const auto offset = utf8_error_offset(json_text)) {
        return unexpected(chat_invalid("the chat has invalid UTF-8 at byte offset " + std::to_string(*offset)));
    }
    auto document = json_input::parse(json_text);
    if (!document) return unexpected(chat_invalid("the chat is not valid JSON: " + document.error().message));
    return chat_messages_from_json(*document);
}

TokenizerKind encoding_kind_for(TokenizerKind tokenizer) {
    return tokenizer == TokenizerKind::estimate ? TokenizerKind::o200k_base : tokenizer;
}

std::int64_t claude_estimate_from_o200k(std::int64_t o200k_tokens) {
    TM_ASSERT(o200k_tokens >= 0 && o200k_tokens <= limits::count_max);
    // Counts are bounded by text_bytes_max (2^26), far from overflow.
    const std::int64_t numerator = claude_estimate_ratio.numerator;
    const std::int64_t denominator = claude_estimate_ratio.denominator;
    return (o200k_tokens * numerator + denominator - 1) / denominator;
}

Result<std::int64_t, Error> count_chat_tokens(const Encoding& encoding, std::span<const ChatMessage> messages) {
    std::int64_t total = tokens_reply_priming;
    auto add = [&](std::string_view text) -> std::optional<Error> {
        auto tokens = encoding.count(text);
        if (!tokens) return tokens.error();
        total += *tokens;
        return std::nullopt;
    };
    for (const ChatMessage& message : messages) {
        total += tokens_per_message;
        if (auto error = add(message.role)) return unexpected(std::move(*error));
        for (const std::string& part : message.content) {
            if (auto error = add(part)) return unexpected(std::move(*error));
        }
        if (message.name) {
            if (auto error = add(*message.name)) return unexpected(std::move(*error));
            total += tokens_per_name;
        }
        if (message.tool_call_id) {
            if (auto error = add(*message.tool_call_id)) return unexpected(std::move(*error));
        }
    }
    return total;
}

Result<TokenCount, Error> count_text_tokens(const Encoding& encoding, TokenizerKind tokenizer, std::string_view text) {
    TM_ASSERT(encoding.kind() == encoding_kind_for(tokenizer));
    auto tokens = encoding.count(text);
    if (!tokens) return unexpected(tokens.error());
    if (tokenizer == TokenizerKind::estimate) return TokenCount{claude_estimate_from_o200k(*tokens), false};
    return TokenCount{*tokens, true};
}

Result<TokenCount, Error> count_chat_tokens(const Encoding& encoding, TokenizerKind tokenizer,
                                            std::span<const ChatMessage> messages) {
    TM_ASSERT(encoding.kind() == encoding_kind_for(tokenizer));
    auto tokens = count_chat_tokens(encoding, messages);
    if (!tokens) return unexpected(tokens.error());
    if (tokenizer == TokenizerKind::estimate) return TokenCount{claude_estimate_from_o200k(*tokens), false};
    return TokenCount{*tokens, true};
}

}  // namespace tokenmeter
