#include "gateway/provider_stream.hpp"

namespace tokenmeter::gateway {

namespace {

using Json = nlohmann::json;

// A billion tokens: far past any context window, far below the ledger's
// limits (http/service_requests.hpp says the same of request counts).
constexpr std::int64_t believable_count_max = 1'000'000'000;

std::optional<std::int64_t> count_at(const Json& object, const char* key) {
    if (!object.is_object() || !object.contains(key) || object[key].is_null()) return std::int64_t{0};
    const Json& value = object[key];
    if (!value.is_number_integer()) return std::nullopt;
    const auto count = value.get<std::int64_t>();
    if (count < 0 || count > believable_count_max) return std::nullopt;
    return count;
}

bool has_count(const Json& object, const char* key) {
    return object.contains(key) && object[key].is_number_integer();
}

}  // namespace

std::optional<ProviderUsage> provider_usage(const Json& usage, bool chat) {
    if (!usage.is_object() || !has_count(usage, "prompt_tokens")) return std::nullopt;
    // A chat's usage without its output would settle the answer as free.
    if (chat && !has_count(usage, "completion_tokens")) return std::nullopt;
    const Json empty = Json::object();
    const Json& prompt_details = usage.contains("prompt_tokens_details") ? usage["prompt_tokens_details"] : empty;
    const Json& completion_details =
        usage.contains("completion_tokens_details") ? usage["completion_tokens_details"] : empty;
    const auto input = count_at(usage, "prompt_tokens");
    const auto output = count_at(usage, "completion_tokens");
    const auto cached = count_at(prompt_details, "cached_tokens");
    const auto reasoning = count_at(completion_details, "reasoning_tokens");
    if (!input || !output || !cached || !reasoning || *cached > *input || *reasoning > *output) return std::nullopt;
    return ProviderUsage{*input, *cached, *output, *reasoning};
}

void append_choice_text(const Json& choices, std::string& text) {
    if (!choices.is_array()) return;
    for (const Json& choice : choices) {
        if (!choice.is_object()) continue;
        for (const char* part : {"message", "delta"}) {
            if (!choice.contains(part) || !choice[part].is_object()) continue;
            const Json& message = choice[part];
            for (const char* field : {"content", "refusal", "reasoning_content"}) {
                if (message.contains(field) && message[field].is_string()) text += message[field].get_ref<const std::string&>();
            }
            if (message.contains("tool_calls") && message["tool_calls"].is_array()) {
                for (const Json& call : message["tool_calls"]) {
                    if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) continue;
                    const Json& function = call["function"];
                    for (const char* field : {"name", "arguments"}) {
                        if (function.contains(field) && function[field].is_string()) text += function[field].get_ref<const std::string&>();
                    }
                }
            }
        }
    }
}

void EventSplitter::feed(std::string_view bytes) { buffer_.append(bytes); }

bool EventSplitter::next(std::string& event) {
    // An event ends at the first empty line: "\n\n" or "\r\n\r\n" (or mixed).
    for (std::size_t i = scanned_; i < buffer_.size(); ++i) {
        if (buffer_[i] != '\n') continue;
        std::size_t j = i + 1;
        if (j < buffer_.size() && buffer_[j] == '\r') ++j;
        if (j < buffer_.size() && buffer_[j] == '\n') {
            event.assign(buffer_, 0, j + 1);
            buffer_.erase(0, j + 1);
            scanned_ = 0;
            return true;
        }
    }
    // The next scan starts at the last LF that more bytes could make the
    // start of a blank line: the last byte, or the one before a last CR
    // ("\r\n\r" waiting for its "\n").
    scanned_ = buffer_.size() < 2 ? 0 : buffer_.size() - 2;
    return false;
}

StreamEvent read_event(std::string_view event) {
    std::string data;
    bool has_data = false;
    while (!event.empty()) {
        const auto end = event.find('\n');
        std::string_view line = event.substr(0, end);
        event = end == std::string_view::npos ? std::string_view() : event.substr(end + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.substr(0, 5) != "data:") continue;
        line.remove_prefix(5);
        if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        if (has_data) data += '\n';
        data.append(line);
        has_data = true;
    }
    StreamEvent read;
    if (!has_data) return read;
    if (data == "[DONE]") {
        read.done = true;
        return read;
    }
    Json chunk = Json::parse(data, nullptr, false);
    if (chunk.is_discarded()) return read;
    read.usage_only = chunk.is_object() && chunk.contains("usage") && chunk["usage"].is_object() &&
                      (!chunk.contains("choices") || (chunk["choices"].is_array() && chunk["choices"].empty()));
    read.chunk = std::move(chunk);
    return read;
}

}  // namespace tokenmeter::gateway
