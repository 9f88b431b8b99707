#include "demo/demo_routes.hpp"

#include <httplib.h>
#include <sodium.h>

#include <array>
#include <nlohmann/json.hpp>

#include "auth/jwt.hpp"
#include "tokenmeter/base64url.hpp"

namespace tokenmeter::demo {

namespace {

using Json = nlohmann::json;

constexpr const char* json_type = "application/json";

std::string random_key() {
    std::array<std::uint8_t, 16> bytes{};
    randombytes_buf(bytes.data(), bytes.size());
    return base64url_encode(bytes.data(), bytes.size());
}

void reply_json(httplib::Response& response, int status, const Json& body) {
    response.status = status;
    response.set_content(body.dump(), json_type);
}

void reply_error(httplib::Response& response, int status, const std::string& code, const std::string& message) {
    reply_json(response, status, {{"error", {{"code", code}, {"message", message}}}});
}

class DemoRoutes final : public http::RouteSet {
public:
    DemoRoutes(DemoDependencies dependencies, DemoSettings settings)
        : deps_(std::move(dependencies)), settings_(std::move(settings)) {}

    void install(httplib::Server& server,
                 const std::function<void(const std::string&, int, double)>& /*observe*/) override {
        server.Get("/demo/session", [this](const httplib::Request&, httplib::Response& response) { session(response); });
        server.Post("/demo/avatar", [this](const httplib::Request& request, httplib::Response& response) { avatar(request, response); });
        server.Post("/demo/embed", [this](const httplib::Request& request, httplib::Response& response) { embed(request, response); });
    }

private:
    void session(httplib::Response& response) {
        if (settings_.jwt_secret.empty()) {
            reply_error(response, 503, "no_dev_user", "the demo signs dev tokens with a JWT secret, and none is configured");
            return;
        }
        auto token = auth::mint_hs256_token(settings_.jwt_secret, settings_.user_id, deps_.clock.now_seconds(),
                                            settings_.token_ttl_seconds);
        if (!token) {
            reply_error(response, 500, token.error().code, token.error().message);
            return;
        }
        reply_json(response, 200, {{"user_id", settings_.user_id}, {"access_token", *token}});
    }

    // The caller's user id from their bearer token, or a 401 already written.
    std::optional<std::string> user_of(const httplib::Request& request, httplib::Response& response) {
        auto user = deps_.callers.user(request, response);
        if (!user) return std::nullopt;
        return std::move(user->user_id);
    }

    // One call of the service API on this very server, as an app backend makes it.
    httplib::Result service_call(const std::string& path, const Json& body) {
        httplib::Client client("127.0.0.1", deps_.port());
        client.set_read_timeout(10, 0);
        httplib::Headers headers = {{"Authorization", "Bearer " + settings_.service_key}, {"Idempotency-Key", random_key()}};
        return client.Post(path.c_str(), headers, body.dump(), json_type);
    }

    // Passes a refusal (402 limit_exceeded, 400, 503 …) through unchanged.
    static bool forwarded_failure(const httplib::Result& result, httplib::Response& response) {
        if (!result) {
            reply_error(response, 502, "backend_unreachable", "the service API did not answer");
            return true;
        }
        if (result->status == 200) return false;
        response.status = result->status;
        response.set_content(result->body, json_type);
        return true;
    }

    void avatar(const httplib::Request& request, httplib::Response& response) {
        auto user = user_of(request, response);
        if (!user) return;
        auto authorized = service_call("/v1/usage/authorize", {{"user_id", *user}, {"operation", "avatar"}});
        if (forwarded_failure(authorized, response)) return;
        const Json reservation = Json::parse(authorized->body, nullptr, false);
        auto committed = service_call("/v1/usage/commit", {{"reservation_id", reservation.value("reservation_id", "")}});
        if (forwarded_failure(committed, response)) return;
        const Json settled = Json::parse(committed->body, nullptr, false);
        reply_json(response, 200, {{"usage", settled.value("usage", Json::object())}});
    }

    // Embeds a document's chunks (no real model: the vectors are not the
    // point, the charge is). The server counts every chunk itself with the
    // model's tokenizer, as it would before sending them to a provider, and
    // charges the sum as one `embedding` record; the browser's preview counted
    // the same chunk texts with the same core, so the two agree exactly.
    void embed(const httplib::Request& request, httplib::Response& response) {
        auto user = user_of(request, response);
        if (!user) return;
        const Json body = Json::parse(request.body, nullptr, false);
        if (!body.is_object() || !body.contains("model") || !body["model"].is_string() || !body.contains("chunks") ||
            !body["chunks"].is_array() || body["chunks"].empty() || body["chunks"].size() > chunks_max) {
            reply_error(response, 400, "invalid_request",
                        "send {\"model\", \"chunks\": [1 to " + std::to_string(chunks_max) + " strings]}");
            return;
        }
        const auto catalog = deps_.prices.catalog();
        const Model* model = catalog->find_model(body["model"].get<std::string>());
        if (model == nullptr) {
            reply_error(response, 400, "unknown_model", "unknown model");
            return;
        }
        std::int64_t input_tokens = 0;
        Json counts = Json::array();
        for (const Json& chunk : body["chunks"]) {
            if (!chunk.is_string()) {
                reply_error(response, 400, "invalid_request", "every chunk is a string");
                return;
            }
            auto counted = deps_.tokens.count_text(*model, chunk.get_ref<const std::string&>());
            if (!counted) {
                reply_error(response, 400, counted.error().code, counted.error().message);
                return;
            }
            input_tokens += counted->tokens;
            counts.push_back(counted->tokens);
        }
        auto recorded = service_call("/v1/usage/record", {{"user_id", *user},
                                                          {"operation", "embedding"},
                                                          {"model", model->id},
                                                          {"input_tokens", input_tokens}});
        if (forwarded_failure(recorded, response)) return;
        const Json settled = Json::parse(recorded->body, nullptr, false);
        Json event = settled.value("event", Json::object());
        reply_json(response, 200, {{"model", model->id},
                                   {"chunks", counts},
                                   {"input_tokens", input_tokens},
                                   {"charged_tokens", event.value("charged_tokens", Json())},
                                   {"usage", settled.value("usage", Json::object())}});
    }

    static constexpr std::size_t chunks_max = 1024;

    DemoDependencies deps_;
    DemoSettings settings_;
};

}  // namespace

std::shared_ptr<http::RouteSet> make_demo_routes(DemoDependencies dependencies, DemoSettings settings) {
    return std::make_shared<DemoRoutes>(std::move(dependencies), std::move(settings));
}

}  // namespace tokenmeter::demo
