// Fuzzes the request bodies of the service calls (server/http/
// service_requests.hpp): the bytes are one body, read as the API reads it and
// then given to all four parsers, as if it had arrived on each route.
// authorize counts `text` and `messages` with the embedded tokenizers, so
// chat JSON and arbitrary text reach the token counter too.
//
// Invariants besides "no crash": a refusal can be answered (its message is
// valid UTF-8 for the JSON error body); what a parser accepts is in range (valid
// user ids, reservation ids of 1-64 bytes, counts up to
// tokens_per_request_max, `exact` as the model's tokenizer says), and the
// request written back as a JSON body (with counted text as input_tokens)
// parses to the same request.
#include <memory>

#include "fuzz_input.hpp"
#include "http/service_requests.hpp"
#include "ledger/views.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter::fuzz {
namespace {

using Json = nlohmann::json;

tokens::TokenCounter& counter() {
    static const std::unique_ptr<tokens::TokenCounter> instance = tokens::make_embedded_encoding_counter();
    return *instance;
}

bool is_count(std::int64_t count) { return count >= 0 && count <= http::tokens_per_request_max; }

bool is_reservation_id(const std::string& id) { return !id.empty() && id.size() <= 64; }

// A request written back as a body, read as the API reads bodies (through
// text, so counts are JSON numbers as a client sends them).
Json body_of(const Json& fields) {
    auto body = http::service_body(fields.dump());
    TM_ASSERT(body.has_value());
    return std::move(body).value();
}

// The 400 reply of a refused body, as the API writes it.
void check_refusal(const Error& error) {
    check_error_text(error);
    TM_ASSERT(!ledger::error_body(error.code, error.message).empty());
}

void check_authorize(const Json& body) {
    const Catalog& catalog = default_catalog();
    auto parsed = http::authorize_request(body, catalog, counter());
    if (!parsed) {
        check_refusal(parsed.error());
        return;
    }
    const AuthorizeCommand& request = parsed->command;
    TM_ASSERT(is_valid_user_id(request.user_id));
    TM_ASSERT(is_count(request.input_tokens));
    TM_ASSERT(is_count(request.max_output_tokens));
    TM_ASSERT(request.reservation_id.empty());
    const auto kind = operation_kind_from_string(request.operation);
    TM_ASSERT(kind.has_value());
    const Model* model = request.model.empty() ? nullptr : catalog.find_model(request.model);
    TM_ASSERT(request.model.empty() || model != nullptr);
    Json again = {{"user_id", request.user_id}, {"operation", request.operation}};
    if (model != nullptr) again["model"] = request.model;
    if (*kind != OperationKind::avatar) {
        TM_ASSERT(model != nullptr);
        TM_ASSERT(parsed->exact == model->exact());
        again["input_tokens"] = request.input_tokens;
        again["max_output_tokens"] = request.max_output_tokens;
    }
    auto reparsed = http::authorize_request(body_of(again), catalog, counter());
    TM_ASSERT(reparsed.has_value());
    TM_ASSERT(reparsed->command.user_id == request.user_id);
    TM_ASSERT(reparsed->command.operation == request.operation);
    TM_ASSERT(reparsed->command.model == request.model);
    TM_ASSERT(reparsed->command.input_tokens == request.input_tokens);
    TM_ASSERT(reparsed->command.max_output_tokens == request.max_output_tokens);
    TM_ASSERT(reparsed->exact == parsed->exact);
}

void check_commit(const Json& body) {
    auto parsed = http::commit_request(body);
    if (!parsed) {
        check_refusal(parsed.error());
        return;
    }
    TM_ASSERT(is_reservation_id(parsed->reservation_id));
    Json again = {{"reservation_id", parsed->reservation_id}};
    if (parsed->input_tokens) {
        TM_ASSERT(is_count(*parsed->input_tokens));
        again["input_tokens"] = *parsed->input_tokens;
    }
    if (parsed->output_tokens) {
        TM_ASSERT(is_count(*parsed->output_tokens));
        again["output_tokens"] = *parsed->output_tokens;
    }
    // A part is never larger than its whole once both are there.
    if (parsed->cached_input_tokens) {
        TM_ASSERT(is_count(*parsed->cached_input_tokens));
        TM_ASSERT(!parsed->input_tokens || *parsed->cached_input_tokens <= *parsed->input_tokens);
        again["cached_input_tokens"] = *parsed->cached_input_tokens;
    }
    if (parsed->reasoning_tokens) {
        TM_ASSERT(is_count(*parsed->reasoning_tokens));
        TM_ASSERT(*parsed->reasoning_tokens <= parsed->output_tokens.value_or(0));
        again["reasoning_tokens"] = *parsed->reasoning_tokens;
    }
    auto reparsed = http::commit_request(body_of(again));
    TM_ASSERT(reparsed.has_value());
    TM_ASSERT(reparsed->reservation_id == parsed->reservation_id);
    TM_ASSERT(reparsed->input_tokens == parsed->input_tokens);
    TM_ASSERT(reparsed->output_tokens == parsed->output_tokens);
    TM_ASSERT(reparsed->cached_input_tokens == parsed->cached_input_tokens);
    TM_ASSERT(reparsed->reasoning_tokens == parsed->reasoning_tokens);
}

void check_release(const Json& body) {
    auto parsed = http::release_request(body);
    if (!parsed) {
        check_refusal(parsed.error());
        return;
    }
    TM_ASSERT(is_reservation_id(parsed->reservation_id));
    auto reparsed = http::release_request(body_of(Json{{"reservation_id", parsed->reservation_id}}));
    TM_ASSERT(reparsed.has_value());
    TM_ASSERT(reparsed->reservation_id == parsed->reservation_id);
}

void check_record(const Json& body) {
    const Catalog& catalog = default_catalog();
    auto parsed = http::record_request(body, catalog);
    if (!parsed) {
        check_refusal(parsed.error());
        return;
    }
    TM_ASSERT(is_valid_user_id(parsed->user_id));
    TM_ASSERT(operation_kind_from_string(parsed->operation).has_value());
    TM_ASSERT(parsed->model.empty() || catalog.find_model(parsed->model) != nullptr);
    TM_ASSERT(is_count(parsed->input_tokens));
    TM_ASSERT(is_count(parsed->output_tokens));
    TM_ASSERT(is_count(parsed->cached_input_tokens) && parsed->cached_input_tokens <= parsed->input_tokens);
    TM_ASSERT(is_count(parsed->reasoning_tokens) && parsed->reasoning_tokens <= parsed->output_tokens);
    Json again = {{"user_id", parsed->user_id},
                  {"operation", parsed->operation},
                  {"input_tokens", parsed->input_tokens},
                  {"output_tokens", parsed->output_tokens},
                  {"cached_input_tokens", parsed->cached_input_tokens},
                  {"reasoning_tokens", parsed->reasoning_tokens}};
    if (!parsed->model.empty()) again["model"] = parsed->model;
    auto reparsed = http::record_request(body_of(again), catalog);
    TM_ASSERT(reparsed.has_value());
    TM_ASSERT(reparsed->user_id == parsed->user_id);
    TM_ASSERT(reparsed->operation == parsed->operation);
    TM_ASSERT(reparsed->model == parsed->model);
    TM_ASSERT(reparsed->input_tokens == parsed->input_tokens);
    TM_ASSERT(reparsed->output_tokens == parsed->output_tokens);
    TM_ASSERT(reparsed->cached_input_tokens == parsed->cached_input_tokens);
    TM_ASSERT(reparsed->reasoning_tokens == parsed->reasoning_tokens);
}

}  // namespace
}  // namespace tokenmeter::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tokenmeter::fuzz;
    auto body = tokenmeter::http::service_body(text_of(data, size));
    if (!body) {
        check_refusal(body.error());
        return 0;
    }
    TM_ASSERT(body->is_object());
    check_authorize(*body);
    check_commit(*body);
    check_release(*body);
    check_record(*body);
    return 0;
}
