#include "billing/lemonsqueezy.hpp"

#include <httplib.h>

#include <algorithm>
#include <chrono>

#include "billing/webhook_signature.hpp"
#include "tokenmeter/json_input.hpp"
#include "tokenmeter/period.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter::billing {

namespace {

using Json = nlohmann::json;

constexpr const char* jsonapi_type = "application/vnd.api+json";
// Bounds what an error message may quote from a provider body.
constexpr std::size_t error_quote_bytes_max = 300;

Error payload_error(std::string message) { return make_error("invalid_payload", std::move(message)); }

// Ids arrive as strings ("1234567") or integers (1234567): both mean the same.
std::optional<std::string> id_text(const Json& value) {
    if (value.is_string()) return value.get<std::string>();
    if (value.is_number_unsigned()) return std::to_string(value.get<std::uint64_t>());
    if (value.is_number_integer()) return std::to_string(value.get<std::int64_t>());
    return std::nullopt;
}

// A member that should be a string: its text, or "" when it is absent or
// not a string. (Json::value(key, "") throws on a member of another type.)
std::string string_or_empty(const Json& object, const char* key) {
    const auto found = object.find(key);
    return found != object.end() && found->is_string() ? found->get<std::string>() : std::string();
}

std::string id_or_empty(const Json& object, const char* key) {
    if (!object.is_object() || !object.contains(key)) return {};
    return id_text(object[key]).value_or("");
}

// A nullable timestamp field: absent or null is nothing; anything else must parse.
Result<std::optional<std::int64_t>, Error> optional_seconds(const Json& attributes, const char* key) {
    if (!attributes.contains(key) || attributes[key].is_null()) return std::optional<std::int64_t>{};
    if (!attributes[key].is_string()) return unexpected(payload_error(std::string(key) + " is not a timestamp"));
    auto parsed = parse_rfc3339(attributes[key].get<std::string>());
    if (!parsed) return unexpected(payload_error(std::string(key) + ": " + parsed.error().message));
    return std::optional<std::int64_t>{*parsed};
}

std::string trimmed_quote(std::string_view text) {
    std::string out(text.substr(0, error_quote_bytes_max));
    std::replace(out.begin(), out.end(), '\n', ' ');
    return out;
}

// The path and query of a pagination link, so the next request goes to the
// configured API base with our key, never to a host a response named.
std::optional<std::string> path_of_link(const std::string& link) {
    std::string_view rest = link;
    if (const auto scheme = rest.find("://"); scheme != std::string_view::npos) {
        rest.remove_prefix(scheme + 3);
        const auto slash = rest.find('/');
        if (slash == std::string_view::npos) return std::nullopt;
        rest.remove_prefix(slash);
    }
    if (rest.rfind("/v1/subscriptions", 0) != 0) return std::nullopt;
    return std::string(rest);
}

ProviderError provider_error(std::string_view reason, std::string message, int status = 0) {
    return ProviderError{std::string(reason), std::move(message), status, 0};
}

}  // namespace

Result<std::int64_t, Error> parse_timestamp_us(std::string_view text) {
    auto seconds = parse_rfc3339(text);
    if (!seconds) return unexpected(seconds.error());
    std::int64_t micros = 0;
    if (text.size() > 19 && text[19] == '.') {
        std::int64_t scale = 100000;
        for (std::size_t i = 20; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
            micros += (text[i] - '0') * scale;
            scale /= 10;
        }
    }
    return *seconds * 1000000 + micros;
}

Result<SubscriptionSnapshot, Error> parse_subscription_resource(const Json& data) {
    if (!data.is_object() || !data.contains("attributes") || !data["attributes"].is_object()) {
        return unexpected(payload_error("data.attributes is missing"));
    }
    if (!data.contains("type") || data["type"] != "subscriptions") {
        return unexpected(payload_error("data.type is not subscriptions"));
    }
    const Json& attributes = data["attributes"];
    SubscriptionSnapshot s;
    s.subscription_id = data.contains("id") ? id_text(data["id"]).value_or("") : "";
    if (s.subscription_id.empty() || s.subscription_id.size() > 64) return unexpected(payload_error("data.id is missing"));
    if (!attributes.contains("status") || !attributes["status"].is_string()) {
        return unexpected(payload_error("attributes.status is missing"));
    }
    s.status = attributes["status"].get<std::string>();
    s.variant_id = id_or_empty(attributes, "variant_id");
    s.customer_id = id_or_empty(attributes, "customer_id");
    s.order_id = id_or_empty(attributes, "order_id");
    if (attributes.contains("user_email") && attributes["user_email"].is_string()) {
        s.user_email = attributes["user_email"].get<std::string>();
    }
    if (attributes.contains("pause") && attributes["pause"].is_object()) {
        s.pause_free = string_or_empty(attributes["pause"], "mode") == "free";
    }
    auto renews_at = optional_seconds(attributes, "renews_at");
    if (!renews_at) return unexpected(renews_at.error());
    auto ends_at = optional_seconds(attributes, "ends_at");
    if (!ends_at) return unexpected(ends_at.error());
    s.renews_at = *renews_at;
    s.ends_at = *ends_at;
    if (!attributes.contains("updated_at") || !attributes["updated_at"].is_string()) {
        return unexpected(payload_error("attributes.updated_at is missing"));
    }
    auto updated = parse_timestamp_us(attributes["updated_at"].get<std::string>());
    if (!updated) return unexpected(payload_error("attributes.updated_at: " + updated.error().message));
    s.updated_at_us = *updated;
    s.attributes_json = attributes.dump();
    return s;
}

namespace {

bool is_subscription_event(std::string_view name) {
    static constexpr std::string_view names[] = {
        "subscription_created", "subscription_updated", "subscription_cancelled", "subscription_resumed",
        "subscription_expired", "subscription_paused",  "subscription_unpaused"};
    return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

bool is_payment_event(std::string_view name) {
    return name == "subscription_payment_success" || name == "subscription_payment_failed" ||
           name == "subscription_payment_recovered";
}

// meta.custom_data.user_id as a string (LemonSqueezy may turn 123 into "123"
// or keep the number); empty when absent or not a valid user id.
std::string user_of(const Json& meta) {
    if (!meta.contains("custom_data") || !meta["custom_data"].is_object()) return {};
    const Json& custom = meta["custom_data"];
    if (!custom.contains("user_id")) return {};
    std::string user = id_text(custom["user_id"]).value_or("");
    return is_valid_user_id(user) ? user : std::string();
}

}  // namespace

Result<WebhookEvent, Error> parse_webhook_body(std::string_view body) {
    const Json document = Json::parse(body.begin(), body.end(), nullptr, false);
    if (document.is_discarded() || !document.is_object()) return unexpected(payload_error("the body is not a JSON object"));
    if (!document.contains("meta") || !document["meta"].is_object() || !document["meta"].contains("event_name") ||
        !document["meta"]["event_name"].is_string()) {
        return unexpected(payload_error("meta.event_name is missing"));
    }
    const Json& meta = document["meta"];
    WebhookEvent event;
    event.event_name = meta["event_name"].get<std::string>();
    event.body_sha256 = sha256_hex(body);
    if (meta.contains("webhook_id") && meta["webhook_id"].is_string()) {
        event.webhook_id = json_input::utf8_prefix(meta["webhook_id"].get<std::string>(), 64);
    }
    event.user_id = user_of(meta);
    const Json data = document.contains("data") ? document["data"] : Json();
    if (is_subscription_event(event.event_name)) {
        auto snapshot = parse_subscription_resource(data);
        if (!snapshot) return unexpected(snapshot.error());
        event.kind = WebhookKind::subscription;
        event.subscription_id = snapshot->subscription_id;
        event.subscription = std::move(snapshot).value();
    } else if (is_payment_event(event.event_name)) {
        // An invoice: its own id is not the subscription's (SPEC.md §8.3).
        if (!data.is_object() || !data.contains("attributes") || !data["attributes"].is_object()) {
            return unexpected(payload_error("data.attributes is missing"));
        }
        event.kind = WebhookKind::payment;
        event.subscription_id = id_or_empty(data["attributes"], "subscription_id");
        if (event.subscription_id.empty()) return unexpected(payload_error("the invoice names no subscription_id"));
    } else if (event.event_name == "order_created") {
        event.kind = WebhookKind::order;
        event.order_id = data.is_object() && data.contains("id") ? id_text(data["id"]).value_or("") : "";
        if (event.order_id.empty()) return unexpected(payload_error("the order has no id"));
    } else {
        event.kind = WebhookKind::ignored;
    }
    return event;
}

Result<WebhookEvent, Error> LemonSqueezyProvider::verify_webhook(std::string_view body, std::string_view signature) const {
    if (!webhook_signature_valid(options_.webhook_secret, body, signature)) {
        return unexpected(make_error("invalid_signature", "X-Signature is not the HMAC-SHA256 of this body"));
    }
    return parse_webhook_body(body);
}

std::string provider_error_message(int status, std::string_view body) {
    const Json document = Json::parse(body.begin(), body.end(), nullptr, false);
    std::string detail;
    if (document.is_object()) {
        if (document.contains("errors") && document["errors"].is_array() && !document["errors"].empty() &&
            document["errors"][0].is_object()) {
            const Json& first = document["errors"][0];
            detail = string_or_empty(first, "detail");
            if (detail.empty()) detail = string_or_empty(first, "title");
            if (first.contains("source") && first["source"].is_object() && first["source"].contains("pointer") &&
                first["source"]["pointer"].is_string()) {
                detail += " (" + first["source"]["pointer"].get<std::string>() + ")";
            }
        } else if (document.contains("message") && document["message"].is_string()) {
            detail = document["message"].get<std::string>();
        } else if (document.contains("error") && document["error"].is_string()) {
            detail = document["error"].get<std::string>();
        }
    }
    if (detail.empty()) detail = body.empty() ? "no body" : trimmed_quote(body);
    return "LemonSqueezy answered " + std::to_string(status) + ": " + trimmed_quote(detail);
}

Result<LemonSqueezyProvider::Reply, ProviderError> LemonSqueezyProvider::send(const std::string& method,
                                                                              const std::string& path,
                                                                              const std::string& body) {
    httplib::Client client(options_.api_base);
    if (!client.is_valid()) {
        return unexpected(provider_error(provider_reason::unreachable, "LEMONSQUEEZY_API_BASE is not a usable URL"));
    }
    const auto timeout = std::chrono::milliseconds(options_.timeout_ms);
    client.set_connection_timeout(timeout);
    client.set_read_timeout(timeout);
    client.set_write_timeout(timeout);
    const httplib::Headers headers = {{"Accept", jsonapi_type}, {"Authorization", "Bearer " + options_.api_key}};
    const auto started = std::chrono::steady_clock::now();
    httplib::Result result = method == "POST" ? client.Post(path, headers, body, jsonapi_type) : client.Get(path, headers);
    if (!result) {
        const httplib::Error error = result.error();
        const bool waited_out = std::chrono::steady_clock::now() - started >= timeout;
        if (error == httplib::Error::ConnectionTimeout || (error == httplib::Error::Read && waited_out)) {
            return unexpected(provider_error(provider_reason::timeout,
                                             "LemonSqueezy did not answer within " + std::to_string(options_.timeout_ms) + " ms"));
        }
        if (error == httplib::Error::Connection || error == httplib::Error::SSLConnection ||
            error == httplib::Error::SSLServerVerification) {
            return unexpected(provider_error(provider_reason::unreachable,
                                             "cannot connect to LemonSqueezy at " + options_.api_base + " (" +
                                                 httplib::to_string(error) + ")"));
        }
        return unexpected(provider_error(provider_reason::bad_response,
                                         "the connection to LemonSqueezy failed mid-answer (" + httplib::to_string(error) + ")"));
    }
    return Reply{result->status, result->body, result->get_header_value("Retry-After")};
}

namespace {

// A non-success reply as a ProviderError with the provider's own reason.
ProviderError failure_of(int status, const std::string& body, const std::string& retry_after) {
    std::string_view reason = provider_reason::failed;
    if (status == 429) {
        reason = provider_reason::rate_limited;
    } else if (status == 404) {
        reason = provider_reason::not_found;
    } else if (status >= 400 && status < 500) {
        reason = provider_reason::rejected;
    } else if (status < 500) {
        reason = provider_reason::bad_response;
    }
    ProviderError error = provider_error(reason, provider_error_message(status, body), status);
    if (!retry_after.empty() && retry_after.size() <= 6 &&
        std::all_of(retry_after.begin(), retry_after.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        error.retry_after_seconds = std::stoi(retry_after);
    }
    return error;
}

Result<Json, ProviderError> document_of(const std::string& body) {
    Json document = Json::parse(body, nullptr, false);
    if (document.is_discarded() || !document.is_object() || !document.contains("data")) {
        return unexpected(provider_error(provider_reason::bad_response, "LemonSqueezy answered with an unreadable body"));
    }
    return document;
}

Json checkout_body(const LemonSqueezyOptions& options, const CheckoutRequest& request) {
    Json product_options = Json::object();
    if (!request.redirect_url.empty()) product_options["redirect_url"] = request.redirect_url;
    // Only the pro variant: an empty list would offer every variant of the product.
    const bool numeric = !options.variant_id.empty() && options.variant_id.size() <= 18 &&
                         std::all_of(options.variant_id.begin(), options.variant_id.end(), ::isdigit);
    if (numeric) product_options["enabled_variants"] = Json::array({std::stoll(options.variant_id)});
    return Json{{"data",
                 {{"type", "checkouts"},
                  {"attributes", {{"checkout_data", {{"custom", {{"user_id", request.user_id}}}}},
                                  {"product_options", product_options}}},
                  {"relationships",
                   {{"store", {{"data", {{"type", "stores"}, {"id", options.store_id}}}}},
                    {"variant", {{"data", {{"type", "variants"}, {"id", options.variant_id}}}}}}}}}};
}

}  // namespace

Result<CheckoutSession, ProviderError> LemonSqueezyProvider::create_checkout(const CheckoutRequest& request) {
    auto reply = send("POST", "/v1/checkouts", checkout_body(options_, request).dump());
    if (!reply) return unexpected(reply.error());
    if (reply->status != 201 && reply->status != 200) return unexpected(failure_of(reply->status, reply->body, reply->retry_after));
    auto document = document_of(reply->body);
    if (!document) return unexpected(document.error());
    const Json& data = (*document)["data"];
    CheckoutSession session;
    session.id = data.is_object() && data.contains("id") ? id_text(data["id"]).value_or("") : "";
    if (data.is_object() && data.contains("attributes") && data["attributes"].is_object() &&
        data["attributes"].contains("url") && data["attributes"]["url"].is_string()) {
        session.url = data["attributes"]["url"].get<std::string>();
    }
    if (session.url.rfind("https://", 0) != 0 && session.url.rfind("http://", 0) != 0) {
        return unexpected(provider_error(provider_reason::bad_response, "LemonSqueezy's checkout has no URL"));
    }
    return session;
}

Result<SubscriptionSnapshot, ProviderError> LemonSqueezyProvider::fetch_subscription(std::string_view subscription_id) {
    const bool digits = !subscription_id.empty() && subscription_id.size() <= 32 &&
                        std::all_of(subscription_id.begin(), subscription_id.end(), ::isdigit);
    if (!digits) return unexpected(provider_error(provider_reason::not_found, "not a LemonSqueezy subscription id"));
    auto reply = send("GET", "/v1/subscriptions/" + std::string(subscription_id), "");
    if (!reply) return unexpected(reply.error());
    if (reply->status != 200) return unexpected(failure_of(reply->status, reply->body, reply->retry_after));
    auto document = document_of(reply->body);
    if (!document) return unexpected(document.error());
    auto snapshot = parse_subscription_resource((*document)["data"]);
    if (!snapshot) return unexpected(provider_error(provider_reason::bad_response, snapshot.error().message));
    return std::move(snapshot).value();
}

Result<SubscriptionPage, ProviderError> LemonSqueezyProvider::list_subscriptions(std::string_view next) {
    std::string path;
    if (next.empty()) {
        path = "/v1/subscriptions?filter%5Bstore_id%5D=" + httplib::detail::encode_query_param(options_.store_id) +
               "&page%5Bnumber%5D=1&page%5Bsize%5D=" + std::to_string(options_.page_size);
    } else {
        path = std::string(next);
    }
    auto reply = send("GET", path, "");
    if (!reply) return unexpected(reply.error());
    if (reply->status != 200) return unexpected(failure_of(reply->status, reply->body, reply->retry_after));
    auto document = document_of(reply->body);
    if (!document) return unexpected(document.error());
    const Json& data = (*document)["data"];
    if (!data.is_array()) return unexpected(provider_error(provider_reason::bad_response, "the list's data is not an array"));
    SubscriptionPage page;
    for (const Json& item : data) {
        auto snapshot = parse_subscription_resource(item);
        if (!snapshot) return unexpected(provider_error(provider_reason::bad_response, snapshot.error().message));
        page.subscriptions.push_back(std::move(snapshot).value());
    }
    const Json& links = document->contains("links") ? (*document)["links"] : Json();
    if (links.is_object() && links.contains("next") && links["next"].is_string()) {
        auto link = path_of_link(links["next"].get<std::string>());
        if (!link) return unexpected(provider_error(provider_reason::bad_response, "the next page link is not a subscriptions page"));
        page.next = *link;
    }
    return page;
}

}  // namespace tokenmeter::billing
