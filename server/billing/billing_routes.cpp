#include "billing/billing_routes.hpp"

#include <httplib.h>

#include <chrono>

#include <nlohmann/json.hpp>

#include "tokenmeter/json_input.hpp"

namespace tokenmeter::billing {

namespace {

using Json = nlohmann::json;
using httplib::Request;
using httplib::Response;

void reply(Response& response, const ledger::JobOutcome& outcome) {
    response.status = outcome.status;
    response.set_content(outcome.body, "application/json");
    if (outcome.status == 503) {
        const Json body = Json::parse(outcome.body, nullptr, false);
        if (body.is_object() && body["error"].is_object() && body["error"].contains("retry_after_seconds")) {
            response.set_header("Retry-After", std::to_string(body["error"]["retry_after_seconds"].get<int>()));
        }
    }
}

void not_configured(Response& response, const std::string& missing) {
    http::reply_error(response, 503, "billing_not_configured", "billing is not configured on this server: " + missing);
}

// A checkout request: what is bought and where the buyer returns.
struct CheckoutBody {
    BillingService::Product product;
    std::string redirect_url;
};

Result<std::string, Error> optional_string(const Json& document, const char* key) {
    if (!document.contains(key) || document[key].is_null()) return std::string();
    if (!document[key].is_string()) return unexpected(make_error("invalid_value", std::string(key) + " must be a string"));
    return document[key].get<std::string>();
}

// The body is optional; fields: plan or pack (not both), redirect_url (http(s), bounded).
Result<CheckoutBody, Error> checkout_body_of(const std::string& body, std::size_t bytes_max) {
    CheckoutBody parsed;
    if (body.empty()) return parsed;
    const Json document = Json::parse(body, nullptr, false);
    if (document.is_discarded() || !document.is_object()) {
        return unexpected(make_error("invalid_json", "the body must be a JSON object"));
    }
    if (auto unknown = json_input::refuse_unknown_fields(document, {"plan", "pack", "redirect_url"}, "body")) {
        return unexpected(*unknown);
    }
    auto plan = optional_string(document, "plan");
    if (!plan) return unexpected(plan.error());
    auto pack = optional_string(document, "pack");
    if (!pack) return unexpected(pack.error());
    if (!plan->empty() && !pack->empty()) {
        return unexpected(make_error("invalid_value", "a checkout buys a plan or a pack, not both"));
    }
    if (plan->size() > 64 || pack->size() > 64) return unexpected(make_error("invalid_value", "plan and pack ids are at most 64 bytes"));
    parsed.product = BillingService::Product{std::move(plan).value(), std::move(pack).value()};
    auto url = optional_string(document, "redirect_url");
    if (!url) return unexpected(url.error());
    const bool web = url->rfind("https://", 0) == 0 || url->rfind("http://", 0) == 0;
    if (!url->empty() && (!web || url->size() > bytes_max)) {
        return unexpected(make_error("invalid_value", "redirect_url must be an http(s) URL of at most " +
                                                          std::to_string(bytes_max) + " bytes"));
    }
    parsed.redirect_url = std::move(url).value();
    return parsed;
}

}  // namespace

BillingRoutes::BillingRoutes(BillingService* service, http::Callers& callers, BillingRoutesOptions options)
    : service_(service), callers_(callers), options_(std::move(options)) {}

void BillingRoutes::install(httplib::Server& server,
                            const std::function<void(const std::string&, int, double)>& observe) {
    auto timed = [observe](std::string route, std::function<void(const Request&, Response&)> handler) {
        return http::timed_route(observe, std::move(route), std::move(handler));
    };
    server.Post("/v1/me/checkout", timed("/v1/me/checkout", [this](const Request& q, Response& s) { checkout(q, s); }));
    server.Post("/v1/me/portal", timed("/v1/me/portal", [this](const Request& q, Response& s) { portal(q, s); }));
    server.Post("/v1/webhooks/lemonsqueezy",
                timed("/v1/webhooks/lemonsqueezy", [this](const Request& q, Response& s) { webhook(q, s); }));
}

void BillingRoutes::checkout(const Request& request, Response& response) {
    auto user = callers_.user(request, response);
    if (!user) return;
    if (service_ == nullptr || !options_.checkout_missing.empty()) {
        not_configured(response, service_ == nullptr ? "LemonSqueezy settings are missing" : options_.checkout_missing);
        return;
    }
    auto body = checkout_body_of(request.body, options_.redirect_url_bytes_max);
    if (!body) {
        http::reply_error(response, 400, body.error().code, body.error().message);
        return;
    }
    reply(response, service_->checkout(user->user_id, body->redirect_url, body->product));
}

void BillingRoutes::portal(const Request& request, Response& response) {
    auto user = callers_.user(request, response);
    if (!user) return;
    if (service_ == nullptr || !options_.checkout_missing.empty()) {
        not_configured(response, service_ == nullptr ? "LemonSqueezy settings are missing" : options_.checkout_missing);
        return;
    }
    reply(response, service_->portal(user->user_id));
}

void BillingRoutes::webhook(const Request& request, Response& response) {
    if (service_ == nullptr || !options_.webhook_missing.empty()) {
        not_configured(response, service_ == nullptr ? "LemonSqueezy settings are missing" : options_.webhook_missing);
        return;
    }
    const std::string header(service_->provider().signature_header());
    if (!request.has_header(header.c_str())) {
        http::reply_error(response, 401, "invalid_signature", header + " is missing");
        return;
    }
    // request.body is the raw bytes as received: nothing has parsed it yet.
    reply(response, service_->handle_webhook(request.body, request.get_header_value(header.c_str())));
}

}  // namespace tokenmeter::billing
