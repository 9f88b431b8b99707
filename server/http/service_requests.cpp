#include "http/service_requests.hpp"

#include <optional>
#include <utility>

#include "tokenmeter/estimate.hpp"
#include "tokenmeter/json_input.hpp"
#include "tokenmeter/token_count.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter::http {

namespace {

using Json = nlohmann::json;

Result<std::string, Error> user_id_member(const Json& body) {
    auto user_id = json_input::string_member(body, "user_id", "");
    if (!user_id) return user_id;
    if (!is_valid_user_id(*user_id)) {
        return unexpected(make_error("invalid_value", "user_id must be 1-128 characters of A-Z a-z 0-9 - _ . : @ | +"));
    }
    return user_id;
}

Result<std::string, Error> reservation_id_member(const Json& body) {
    auto id = json_input::string_member(body, "reservation_id", "");
    if (!id) return id;
    if (id->empty() || id->size() > 64) return unexpected(make_error("invalid_value", "reservation_id is not valid"));
    return id;
}

// A body's `text`: a view of the body's string, for the rule to count.
Result<std::string_view, Error> text_member(const Json& body) {
    const Json& text = body["text"];
    if (!text.is_string()) return unexpected(make_error("invalid_value", "text must be a string"));
    return std::string_view(text.get_ref<const std::string&>());
}

// The body's members as the core's estimate rule takes them: each one given
// is converted here, its error kept for the rule to report in its turn.
EstimateRequest estimate_request(const Json& body, std::string operation) {
    EstimateRequest request;
    request.operation = std::move(operation);
    if (body.contains("model")) request.model = json_input::string_member(body, "model", "");
    if (body.contains("input_tokens")) {
        request.input_tokens = json_input::count_member(body, "input_tokens", "", tokens_per_request_max);
    }
    if (body.contains("text")) request.text = text_member(body);
    if (body.contains("messages")) request.messages = chat_messages_from_json(body["messages"]);
    if (body.contains("max_output_tokens")) {
        request.max_output_tokens =
            json_input::optional_count_member(body, "max_output_tokens", "", tokens_per_request_max, 0);
    }
    return request;
}

// A part of a count (cached input of input, reasoning of output) is never
// larger than its whole: a provider reports it inside the whole.
std::optional<Error> refuse_part_over_whole(std::string_view part_key, std::int64_t part, std::string_view whole_key,
                                            std::int64_t whole) {
    if (part <= whole) return std::nullopt;
    return make_error("invalid_count", std::string(part_key) + " (" + std::to_string(part) + ") must not exceed " +
                                           std::string(whole_key) + " (" + std::to_string(whole) + "), which includes it");
}

}  // namespace

Result<Json, Error> service_body(std::string_view text) {
    auto body = json_input::parse(text);
    if (!body) return unexpected(make_error("malformed_json", "the body is not valid JSON"));
    if (!body->is_object()) return unexpected(make_error("invalid_body", "the body must be a JSON object"));
    return std::move(body).value();
}

Result<AuthorizeRequest, Error> authorize_request(const Json& body, const Catalog& catalog,
                                                  tokens::TokenCounter& counter) {
    if (auto unknown = json_input::refuse_unknown_fields(
            body, {"user_id", "operation", "model", "input_tokens", "text", "messages", "max_output_tokens"}, "")) {
        return unexpected(*unknown);
    }
    auto user_id = user_id_member(body);
    if (!user_id) return unexpected(user_id.error());
    auto operation = json_input::string_member(body, "operation", "");
    if (!operation) return unexpected(operation.error());
    auto sized = estimate(catalog, estimate_request(body, std::move(operation).value()), counter);
    if (!sized) return unexpected(sized.error());
    AuthorizeRequest parsed;
    AuthorizeCommand& request = parsed.command;
    request.user_id = std::move(user_id).value();
    request.operation = std::string(to_string(sized->operation));
    if (sized->model != nullptr) request.model = sized->model->id;
    request.input_tokens = sized->input_tokens;
    request.max_output_tokens = sized->max_output_tokens;
    parsed.exact = sized->exact;
    return parsed;
}

Result<CommitCommand, Error> commit_request(const Json& body) {
    if (auto unknown = json_input::refuse_unknown_fields(
            body, {"reservation_id", "input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens"}, "")) {
        return unexpected(*unknown);
    }
    CommitCommand request;
    auto id = reservation_id_member(body);
    if (!id) return unexpected(id.error());
    request.reservation_id = std::move(id).value();
    for (auto [key, target] : {std::pair<const char*, std::optional<std::int64_t>*>{"input_tokens", &request.input_tokens},
                               {"output_tokens", &request.output_tokens},
                               {"cached_input_tokens", &request.cached_input_tokens},
                               {"reasoning_tokens", &request.reasoning_tokens}}) {
        if (!body.contains(key)) continue;
        auto count = json_input::count_member(body, key, "", tokens_per_request_max);
        if (!count) return unexpected(count.error());
        *target = *count;
    }
    // A part without its whole is the ledger's to refuse (an avatar takes
    // no counts; a token commit needs input_tokens).
    if (request.cached_input_tokens && request.input_tokens) {
        if (auto error = refuse_part_over_whole("cached_input_tokens", *request.cached_input_tokens, "input_tokens",
                                                *request.input_tokens)) {
            return unexpected(*error);
        }
    }
    if (request.reasoning_tokens) {
        if (auto error = refuse_part_over_whole("reasoning_tokens", *request.reasoning_tokens, "output_tokens",
                                                request.output_tokens.value_or(0))) {
            return unexpected(*error);
        }
    }
    return request;
}

Result<ReleaseCommand, Error> release_request(const Json& body) {
    if (auto unknown = json_input::refuse_unknown_fields(body, {"reservation_id"}, "")) return unexpected(*unknown);
    auto id = reservation_id_member(body);
    if (!id) return unexpected(id.error());
    return ReleaseCommand{std::move(id).value()};
}

Result<RecordCommand, Error> record_request(const Json& body, const Catalog& catalog) {
    if (auto unknown = json_input::refuse_unknown_fields(
            body, {"user_id", "operation", "model", "input_tokens", "output_tokens", "cached_input_tokens",
                   "reasoning_tokens"}, "")) {
        return unexpected(*unknown);
    }
    RecordCommand request;
    auto user_id = user_id_member(body);
    if (!user_id) return unexpected(user_id.error());
    request.user_id = std::move(user_id).value();
    auto operation = json_input::string_member(body, "operation", "");
    if (!operation) return unexpected(operation.error());
    request.operation = std::move(operation).value();
    if (!operation_kind_from_string(request.operation)) {
        return unexpected(make_error("unknown_operation", "unknown operation \"" + json_input::utf8_prefix(request.operation, 64) + "\""));
    }
    if (body.contains("model")) {
        auto model = json_input::string_member(body, "model", "");
        if (!model) return unexpected(model.error());
        request.model = std::move(model).value();
        if (catalog.find_model(request.model) == nullptr) {
            return unexpected(make_error("unknown_model", "unknown model \"" + json_input::utf8_prefix(request.model, 64) + "\""));
        }
    }
    auto input = json_input::optional_count_member(body, "input_tokens", "", tokens_per_request_max, 0);
    if (!input) return unexpected(input.error());
    auto output = json_input::optional_count_member(body, "output_tokens", "", tokens_per_request_max, 0);
    if (!output) return unexpected(output.error());
    request.input_tokens = *input;
    request.output_tokens = *output;
    auto cached = json_input::optional_count_member(body, "cached_input_tokens", "", tokens_per_request_max, 0);
    if (!cached) return unexpected(cached.error());
    auto reasoning = json_input::optional_count_member(body, "reasoning_tokens", "", tokens_per_request_max, 0);
    if (!reasoning) return unexpected(reasoning.error());
    if (auto error = refuse_part_over_whole("cached_input_tokens", *cached, "input_tokens", *input)) return unexpected(*error);
    if (auto error = refuse_part_over_whole("reasoning_tokens", *reasoning, "output_tokens", *output)) return unexpected(*error);
    request.cached_input_tokens = *cached;
    request.reasoning_tokens = *reasoning;
    return request;
}

}  // namespace tokenmeter::http
