// The service endpoints: authorize, commit, release, record.
#include <httplib.h>

#include "http/api.hpp"
#include "http/service_requests.hpp"
#include "tokenmeter/receipt.hpp"
#include "ledger/ids.hpp"

namespace tokenmeter::http {

namespace {

using Json = nlohmann::json;
using httplib::Request;
using httplib::Response;

constexpr std::size_t idempotency_key_bytes_max = 255;

std::string_view header(const Request& request, const char* name) {
    auto found = request.headers.find(name);
    return found == request.headers.end() ? std::string_view() : std::string_view(found->second);
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

}  // namespace

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
    auto body = service_body(request.body);
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
        [this](const Json& body) { return authorize_request(body, *deps_.ledger.prices().catalog(), deps_.tokens); },
        [&](AuthorizeRequest parsed, ledger::IdempotencyScope scope) {
            parsed.command.reservation_id = ledger::new_id("rsv_");
            reply(response, deps_.ledger.authorize(std::move(parsed.command), parsed.exact, std::move(scope)));
        },
        [this](const Request& r, Response& s) { return require_service(r, s); });
}

void Api::commit(const Request& request, Response& response) {
    service_mutation(
        *this, request, response, [](const Json& body) { return commit_request(body); },
        [&](CommitCommand parsed, ledger::IdempotencyScope scope) {
            parsed.event_id = ledger::new_id("evt_");
            parsed.idempotency_key = scope.key;
            reply(response, deps_.ledger.commit(std::move(parsed), std::move(scope)));
        },
        [this](const Request& r, Response& s) { return require_service(r, s); });
}

void Api::release(const Request& request, Response& response) {
    service_mutation(
        *this, request, response,
        [](const Json& body) { return release_request(body); },
        [&](ReleaseCommand parsed, ledger::IdempotencyScope scope) {
            reply(response, deps_.ledger.release(std::move(parsed), std::move(scope)));
        },
        [this](const Request& r, Response& s) { return require_service(r, s); });
}

void Api::record(const Request& request, Response& response) {
    service_mutation(
        *this, request, response, [this](const Json& body) { return record_request(body, *deps_.ledger.prices().catalog()); },
        [&](RecordCommand parsed, ledger::IdempotencyScope scope) {
            parsed.event_id = ledger::new_id("evt_");
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
                   s.set_content(deps_.ledger.prices().catalog_json(), "application/json");
               }));
    server.Get("/v1/openapi.json", timed("/v1/openapi.json", [](const Request&, Response& s) {
                   s.set_content(std::string(openapi_document()), "application/json");
               }));
    server.Get("/v1/me/usage", timed("/v1/me/usage", [this](const Request& q, Response& s) { my_usage(q, s); }));
    server.Get("/v1/me/usage/stream", timed("/v1/me/usage/stream", [this](const Request& q, Response& s) { my_usage_stream(q, s); }));
    server.Get("/v1/me/usage/events", timed("/v1/me/usage/events", [this](const Request& q, Response& s) { my_events(q, s); }));
    server.Get("/v1/me/statement", timed("/v1/me/statement", [this](const Request& q, Response& s) { my_statement(q, s); }));
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
