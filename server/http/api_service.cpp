// The service endpoints: authorize, commit, release, record.
#include <httplib.h>

#include "http/api.hpp"
#include "tokenmeter/crypto.hpp"
#include "tokenmeter/estimate.hpp"
#include "tokenmeter/json_input.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter::http {

namespace {

using Json = nlohmann::json;
using httplib::Request;
using httplib::Response;

constexpr std::int64_t tokens_per_request_max = 1'000'000'000;  // see api.cpp
constexpr std::size_t idempotency_key_bytes_max = 255;

std::string_view header(const Request& request, const char* name) {
    auto found = request.headers.find(name);
    return found == request.headers.end() ? std::string_view() : std::string_view(found->second);
}

Result<Json, Error> parse_body(const Request& request) {
    auto body = json_input::parse(request.body);
    if (!body) return unexpected(make_error("malformed_json", "the body is not valid JSON"));
    if (!body->is_object()) return unexpected(make_error("invalid_body", "the body must be a JSON object"));
    return std::move(body).value();
}

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

Result<ledger::IdempotencyScope, Error> idempotency_scope(const Request& request, const std::string& caller) {
    const std::string_view key = header(request, "Idempotency-Key");
    if (key.empty()) {
        return unexpected(make_error("idempotency_key_missing", "mutating requests need an Idempotency-Key header"));
    }
    const bool visible = std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7F; });
    if (key.size() > idempotency_key_bytes_max || !visible) {
        return unexpected(make_error("invalid_idempotency_key", "an Idempotency-Key is 1-255 visible ASCII characters"));
    }
    const std::string hashed = request.method + " " + request.path + "\n" + request.body;
    return ledger::IdempotencyScope{caller, std::string(key), sha256_base64url(hashed)};
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

}  // namespace

// Parses an authorize body into a request: the caller's fields here, the
// operation's through the core's estimate rule, which counts text or
// messages with the model's tokenizer. Every error is bad input (400).
static Result<ledger::AuthorizeRequest, Error> authorize_request(const Json& body, const Catalog& catalog,
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
    ledger::AuthorizeRequest request;
    request.user_id = std::move(user_id).value();
    request.operation = std::string(to_string(sized->operation));
    if (sized->model != nullptr) request.model = sized->model->id;
    request.input_tokens = sized->input_tokens;
    request.max_output_tokens = sized->max_output_tokens;
    request.exact = sized->exact;
    return request;
}

static Result<ledger::CommitRequest, Error> commit_request(const Json& body) {
    if (auto unknown = json_input::refuse_unknown_fields(body, {"reservation_id", "input_tokens", "output_tokens"}, "")) {
        return unexpected(*unknown);
    }
    ledger::CommitRequest request;
    auto id = reservation_id_member(body);
    if (!id) return unexpected(id.error());
    request.reservation_id = std::move(id).value();
    for (const char* key : {"input_tokens", "output_tokens"}) {
        if (!body.contains(key)) continue;
        auto count = json_input::count_member(body, key, "", tokens_per_request_max);
        if (!count) return unexpected(count.error());
        (std::string_view(key) == "input_tokens" ? request.input_tokens : request.output_tokens) = *count;
    }
    return request;
}

static Result<ledger::RecordRequest, Error> record_request(const Json& body, const Catalog& catalog) {
    if (auto unknown = json_input::refuse_unknown_fields(
            body, {"user_id", "operation", "model", "input_tokens", "output_tokens"}, "")) {
        return unexpected(*unknown);
    }
    ledger::RecordRequest request;
    auto user_id = user_id_member(body);
    if (!user_id) return unexpected(user_id.error());
    request.user_id = std::move(user_id).value();
    auto operation = json_input::string_member(body, "operation", "");
    if (!operation) return unexpected(operation.error());
    request.operation = std::move(operation).value();
    if (!operation_kind_from_string(request.operation)) {
        return unexpected(make_error("unknown_operation", "unknown operation \"" + request.operation.substr(0, 64) + "\""));
    }
    if (body.contains("model")) {
        auto model = json_input::string_member(body, "model", "");
        if (!model) return unexpected(model.error());
        request.model = std::move(model).value();
        if (catalog.find_model(request.model) == nullptr) {
            return unexpected(make_error("unknown_model", "unknown model \"" + request.model.substr(0, 64) + "\""));
        }
    }
    auto input = json_input::optional_count_member(body, "input_tokens", "", tokens_per_request_max, 0);
    if (!input) return unexpected(input.error());
    auto output = json_input::optional_count_member(body, "output_tokens", "", tokens_per_request_max, 0);
    if (!output) return unexpected(output.error());
    request.input_tokens = *input;
    request.output_tokens = *output;
    return request;
}

// Runs a service mutation: credentials, idempotency key, body, then the ledger.
template <typename Parse, typename Apply>
static void service_mutation(Api& api, const Request& request, Response& response, Parse parse, Apply apply,
                             const std::function<std::optional<std::string>(const Request&, Response&)>& require) {
    (void)api;
    auto caller = require(request, response);
    if (!caller) return;
    auto scope = idempotency_scope(request, *caller);
    if (!scope) {
        reply_error(response, 400, scope.error().code, scope.error().message);
        return;
    }
    auto body = parse_body(request);
    if (!body) {
        reply_error(response, 400, body.error().code, body.error().message);
        return;
    }
    auto parsed = parse(*body);
    if (!parsed) {
        reply_error(response, 400, parsed.error().code, parsed.error().message);
        return;
    }
    apply(std::move(parsed).value(), std::move(scope).value());
}

void Api::authorize(const Request& request, Response& response) {
    service_mutation(
        *this, request, response,
        [this](const Json& body) { return authorize_request(body, deps_.catalog, deps_.tokens); },
        [&](ledger::AuthorizeRequest parsed, ledger::IdempotencyScope scope) {
            parsed.idempotency_key = scope.key;
            reply(response, deps_.ledger.authorize(std::move(parsed), std::move(scope)));
        },
        [this](const Request& r, Response& s) { return require_service(r, s); });
}

void Api::commit(const Request& request, Response& response) {
    service_mutation(
        *this, request, response, [](const Json& body) { return commit_request(body); },
        [&](ledger::CommitRequest parsed, ledger::IdempotencyScope scope) {
            parsed.idempotency_key = scope.key;
            reply(response, deps_.ledger.commit(std::move(parsed), std::move(scope)));
        },
        [this](const Request& r, Response& s) { return require_service(r, s); });
}

void Api::release(const Request& request, Response& response) {
    service_mutation(
        *this, request, response,
        [](const Json& body) -> Result<ledger::ReleaseRequest, Error> {
            if (auto unknown = json_input::refuse_unknown_fields(body, {"reservation_id"}, "")) return unexpected(*unknown);
            auto id = reservation_id_member(body);
            if (!id) return unexpected(id.error());
            return ledger::ReleaseRequest{std::move(id).value()};
        },
        [&](ledger::ReleaseRequest parsed, ledger::IdempotencyScope scope) {
            reply(response, deps_.ledger.release(std::move(parsed), std::move(scope)));
        },
        [this](const Request& r, Response& s) { return require_service(r, s); });
}

void Api::record(const Request& request, Response& response) {
    service_mutation(
        *this, request, response, [this](const Json& body) { return record_request(body, deps_.catalog); },
        [&](ledger::RecordRequest parsed, ledger::IdempotencyScope scope) {
            parsed.idempotency_key = scope.key;
            reply(response, deps_.ledger.record(std::move(parsed), std::move(scope)));
        },
        [this](const Request& r, Response& s) { return require_service(r, s); });
}

void Api::install(httplib::Server& server) {
    server.Get("/healthz", timed("/healthz", [this](const Request& q, Response& s) { healthz(q, s); }));
    server.Get("/metrics", timed("/metrics", [this](const Request& q, Response& s) { metrics(q, s); }));
    server.Get("/v1/keys", timed("/v1/keys", [this](const Request&, Response& s) {
                   s.set_content(options_.jwks_json, "application/json");
               }));
    server.Get("/v1/catalog", timed("/v1/catalog", [this](const Request&, Response& s) {
                   s.set_content(options_.catalog_json, "application/json");
               }));
    server.Get("/v1/openapi.json", timed("/v1/openapi.json", [](const Request&, Response& s) {
                   s.set_content(std::string(openapi_document()), "application/json");
               }));
    server.Get("/v1/me/usage", timed("/v1/me/usage", [this](const Request& q, Response& s) { my_usage(q, s); }));
    server.Get("/v1/me/usage/stream", timed("/v1/me/usage/stream", [this](const Request& q, Response& s) { my_usage_stream(q, s); }));
    server.Get("/v1/me/usage/events", timed("/v1/me/usage/events", [this](const Request& q, Response& s) { my_events(q, s); }));
    server.Get("/v1/me/usage/summary", timed("/v1/me/usage/summary", [this](const Request& q, Response& s) { my_summary(q, s); }));
    server.Get(R"(/v1/users/([^/]+)/usage)", timed("/v1/users/{id}/usage", [this](const Request& q, Response& s) { user_usage(q, s); }));
    server.Post("/v1/usage/authorize", timed("/v1/usage/authorize", [this](const Request& q, Response& s) { authorize(q, s); }));
    server.Post("/v1/usage/commit", timed("/v1/usage/commit", [this](const Request& q, Response& s) { commit(q, s); }));
    server.Post("/v1/usage/release", timed("/v1/usage/release", [this](const Request& q, Response& s) { release(q, s); }));
    server.Post("/v1/usage/record", timed("/v1/usage/record", [this](const Request& q, Response& s) { record(q, s); }));
    const auto observe = [this](const std::string& route, int status, double seconds) {
        deps_.metrics.observe_request(route, status, seconds);
    };
    for (auto& routes : route_sets_) routes->install(server, observe);

    server.set_error_handler([](const Request&, Response& response) {
        if (!response.body.empty()) return;
        switch (response.status) {
            case 404: reply_error(response, 404, "not_found", "no such endpoint"); break;
            case 413: reply_error(response, 413, "body_too_large", "the request body is too large"); break;
            case 400: reply_error(response, 400, "bad_request", "the request could not be read"); break;
            default: reply_error(response, response.status, "http_error", "the request failed"); break;
        }
    });
    server.set_exception_handler([](const Request&, Response& response, std::exception_ptr error) {
        try {
            if (error) std::rethrow_exception(error);
        } catch (const std::exception& e) {
            std::cerr << "tokenmeter: handler failed: " << e.what() << "\n";
        } catch (...) {
            std::cerr << "tokenmeter: handler failed\n";
        }
        reply_error(response, 500, "internal_error", "the request failed");
    });
}

}  // namespace tokenmeter::http
