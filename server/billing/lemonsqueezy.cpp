#include "billing/lemonsqueezy.hpp"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <limits>

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
// configured API base with our key, never to a host a response named, and
// only to the list it continues (/v1/`collection`).
std::optional<std::string> path_of_link(const std::string& link, std::string_view collection) {
    std::string_view rest = link;
    if (const auto scheme = rest.find("://"); scheme != std::string_view::npos) {
        rest.remove_prefix(scheme + 3);
        const auto slash = rest.find('/');
        if (slash == std::string_view::npos) return std::nullopt;
        rest.remove_prefix(slash);
    }
    const std::string list = "/v1/" + std::string(collection);
    if (rest.rfind(list, 0) != 0) return std::nullopt;
    if (rest.size() > list.size() && rest[list.size()] != '?') return std::nullopt;
    return std::string(rest);
}

ProviderError provider_error(std::string_view reason, std::string message, int status = 0) {
    return ProviderError{std::string(reason), std::move(message), status, 0};
}

// The attributes of a JSON:API resource object of `type`.
Result<const Json*, Error> attributes_of(const Json& data, std::string_view type) {
    if (!data.is_object() || !data.contains("attributes") || !data["attributes"].is_object()) {
        return unexpected(payload_error("data.attributes is missing"));
    }
    if (!data.contains("type") || data["type"] != type) {
        return unexpected(payload_error("data.type is not " + std::string(type)));
    }
    return &data["attributes"];
}

// An id billing is keyed by: present, a string or an integer, and short
// enough to store (the API's are numeric strings of a few digits).
Result<std::string, Error> required_id(const Json& object, const char* key, const std::string& label) {
    std::string id = object.is_object() && object.contains(key) ? id_text(object[key]).value_or("") : "";
    if (id.empty() || id.size() > 64) return unexpected(payload_error(label + " is missing"));
    return id;
}

Result<std::string, Error> required_string(const Json& object, const char* key) {
    if (!object.contains(key) || !object[key].is_string()) {
        return unexpected(payload_error("attributes." + std::string(key) + " is missing"));
    }
    return object[key].get<std::string>();
}

// Money: integer cents, never negative. A float (19.0) is refused too:
// LemonSqueezy sends integers, and anything else is not an amount we can
// take back tokens for exactly.
Result<std::int64_t, Error> cents_of(const Json& value, const std::string& label) {
    if (value.is_number_unsigned()) {
        const auto amount = value.get<std::uint64_t>();
        if (amount > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return unexpected(payload_error(label + " is too large"));
        return static_cast<std::int64_t>(amount);
    }
    if (value.is_number_integer()) {
        // Parsed JSON holds a non-negative number as unsigned, JSON built in
        // code (the stand-in, tests) as signed: both are amounts.
        const auto amount = value.get<std::int64_t>();
        if (amount < 0) return unexpected(payload_error(label + " is negative"));
        return amount;
    }
    return unexpected(payload_error(label + " is not an integer amount of cents"));
}

struct Amounts {
    std::int64_t total = 0;
    std::int64_t refunded = 0;
};

// `total` (required) and `refunded_amount` (cumulative; absent or null in
// some of the API's own examples, which means nothing refunded yet).
Result<Amounts, Error> amounts_of(const Json& attributes) {
    if (!attributes.contains("total")) return unexpected(payload_error("attributes.total is missing"));
    auto total = cents_of(attributes["total"], "attributes.total");
    if (!total) return unexpected(total.error());
    Amounts amounts{*total, 0};
    if (attributes.contains("refunded_amount") && !attributes["refunded_amount"].is_null()) {
        auto refunded = cents_of(attributes["refunded_amount"], "attributes.refunded_amount");
        if (!refunded) return unexpected(refunded.error());
        amounts.refunded = *refunded;
    }
    if (amounts.refunded > amounts.total) {
        return unexpected(payload_error("attributes.refunded_amount is more than attributes.total"));
    }
    return amounts;
}

struct Times {
    std::int64_t created_at = 0;  // seconds
    std::int64_t updated_at_us = 0;
};

// created_at and updated_at, both required: refunds are reckoned from when
// the payment was made, and snapshots are ordered by updated_at.
Result<Times, Error> times_of(const Json& attributes) {
    Times times;
    auto created = required_string(attributes, "created_at");
    if (!created) return unexpected(created.error());
    auto created_seconds = parse_rfc3339(*created);
    if (!created_seconds) return unexpected(payload_error("attributes.created_at: " + created_seconds.error().message));
    times.created_at = *created_seconds;
    auto updated = required_string(attributes, "updated_at");
    if (!updated) return unexpected(updated.error());
    auto updated_us = parse_timestamp_us(*updated);
    if (!updated_us) return unexpected(payload_error("attributes.updated_at: " + updated_us.error().message));
    times.updated_at_us = *updated_us;
    return times;
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

namespace {

struct Pause {
    bool free = false;
    std::optional<std::int64_t> resumes_at;
};

// `pause`: null when not paused, else {mode, resumes_at}; a null
// resumes_at is a pause without an end date.
Result<Pause, Error> pause_of(const Json& attributes) {
    Pause pause;
    if (!attributes.contains("pause") || !attributes["pause"].is_object()) return pause;
    const Json& object = attributes["pause"];
    pause.free = string_or_empty(object, "mode") == "free";
    auto resumes_at = optional_seconds(object, "resumes_at");
    if (!resumes_at) return unexpected(payload_error("pause." + resumes_at.error().message));
    pause.resumes_at = *resumes_at;
    return pause;
}

// urls.customer_portal: signed and short-lived, so only ever passed on,
// never stored; "" when absent or null (a customer without a subscription).
std::string portal_url_of(const Json& attributes) {
    if (!attributes.contains("urls") || !attributes["urls"].is_object()) return {};
    return string_or_empty(attributes["urls"], "customer_portal");
}

}  // namespace

Result<SubscriptionSnapshot, Error> parse_subscription_resource(const Json& data) {
    auto attributes_found = attributes_of(data, "subscriptions");
    if (!attributes_found) return unexpected(attributes_found.error());
    const Json& attributes = **attributes_found;
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
    auto pause = pause_of(attributes);
    if (!pause) return unexpected(pause.error());
    s.pause_free = pause->free;
    s.pause_resumes_at = pause->resumes_at;
    s.customer_portal_url = portal_url_of(attributes);
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

Result<OrderSnapshot, Error> parse_order_resource(const Json& data) {
    auto attributes_found = attributes_of(data, "orders");
    if (!attributes_found) return unexpected(attributes_found.error());
    const Json& attributes = **attributes_found;
    OrderSnapshot order;
    auto id = required_id(data, "id", "data.id");
    if (!id) return unexpected(id.error());
    order.order_id = std::move(id).value();
    auto status = required_string(attributes, "status");
    if (!status) return unexpected(status.error());
    order.status = std::move(status).value();
    // What was bought: a credit pack's variant adds its tokens, so an order
    // without one cannot be applied.
    const Json item = attributes.contains("first_order_item") ? attributes["first_order_item"] : Json();
    auto variant = required_id(item, "variant_id", "attributes.first_order_item.variant_id");
    if (!variant) return unexpected(variant.error());
    order.variant_id = std::move(variant).value();
    order.customer_id = id_or_empty(attributes, "customer_id");
    order.user_email = string_or_empty(attributes, "user_email");
    auto amounts = amounts_of(attributes);
    if (!amounts) return unexpected(amounts.error());
    order.total = amounts->total;
    order.refunded_amount = amounts->refunded;
    auto times = times_of(attributes);
    if (!times) return unexpected(times.error());
    order.created_at = times->created_at;
    order.updated_at_us = times->updated_at_us;
    return order;
}

Result<InvoiceSnapshot, Error> parse_invoice_resource(const Json& data) {
    auto attributes_found = attributes_of(data, "subscription-invoices");
    if (!attributes_found) return unexpected(attributes_found.error());
    const Json& attributes = **attributes_found;
    InvoiceSnapshot invoice;
    auto id = required_id(data, "id", "data.id");
    if (!id) return unexpected(id.error());
    invoice.invoice_id = std::move(id).value();
    // The invoice's own id is not the subscription's (SPEC.md §8.3).
    auto subscription = required_id(attributes, "subscription_id", "attributes.subscription_id");
    if (!subscription) return unexpected(subscription.error());
    invoice.subscription_id = std::move(subscription).value();
    invoice.customer_id = id_or_empty(attributes, "customer_id");
    auto status = required_string(attributes, "status");
    if (!status) return unexpected(status.error());
    invoice.status = std::move(status).value();
    invoice.billing_reason = string_or_empty(attributes, "billing_reason");
    auto amounts = amounts_of(attributes);
    if (!amounts) return unexpected(amounts.error());
    invoice.total = amounts->total;
    invoice.refunded_amount = amounts->refunded;
    auto times = times_of(attributes);
    if (!times) return unexpected(times.error());
    invoice.created_at = times->created_at;
    invoice.updated_at_us = times->updated_at_us;
    return invoice;
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
           name == "subscription_payment_recovered" || name == "subscription_payment_refunded";
}

bool is_order_event(std::string_view name) { return name == "order_created" || name == "order_refunded"; }

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
        auto invoice = parse_invoice_resource(data);
        if (!invoice) return unexpected(invoice.error());
        event.kind = WebhookKind::payment;
        event.subscription_id = invoice->subscription_id;
        event.invoice = std::move(invoice).value();
    } else if (is_order_event(event.event_name)) {
        auto order = parse_order_resource(data);
        if (!order) return unexpected(order.error());
        event.kind = WebhookKind::order;
        event.order_id = order->order_id;
        event.order = std::move(order).value();
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
    // The variant the caller buys (a plan or a credit pack); the configured
    // pro variant when it names none.
    const std::string& variant = request.variant_id.empty() ? options.variant_id : request.variant_id;
    Json product_options = Json::object();
    if (!request.redirect_url.empty()) product_options["redirect_url"] = request.redirect_url;
    // Only that variant: an empty list would offer every variant of the product.
    const bool numeric = !variant.empty() && variant.size() <= 18 && std::all_of(variant.begin(), variant.end(), ::isdigit);
    if (numeric) product_options["enabled_variants"] = Json::array({std::stoll(variant)});
    return Json{{"data",
                 {{"type", "checkouts"},
                  {"attributes", {{"checkout_data", {{"custom", {{"user_id", request.user_id}}}}},
                                  {"product_options", product_options}}},
                  {"relationships",
                   {{"store", {{"data", {{"type", "stores"}, {"id", options.store_id}}}}},
                    {"variant", {{"data", {{"type", "variants"}, {"id", variant}}}}}}}}}};
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

std::string LemonSqueezyProvider::first_page(std::string_view collection, std::string_view filters) const {
    return "/v1/" + std::string(collection) + "?filter%5Bstore_id%5D=" +
           httplib::detail::encode_query_param(options_.store_id) + std::string(filters) +
           "&page%5Bnumber%5D=1&page%5Bsize%5D=" + std::to_string(options_.page_size);
}

Result<LemonSqueezyProvider::ListReply, ProviderError> LemonSqueezyProvider::get_list(const std::string& path,
                                                                                      std::string_view collection) {
    auto reply = send("GET", path, "");
    if (!reply) return unexpected(reply.error());
    if (reply->status != 200) return unexpected(failure_of(reply->status, reply->body, reply->retry_after));
    auto document = document_of(reply->body);
    if (!document) return unexpected(document.error());
    ListReply list;
    list.data = std::move((*document)["data"]);
    if (!list.data.is_array()) return unexpected(provider_error(provider_reason::bad_response, "the list's data is not an array"));
    const Json& links = document->contains("links") ? (*document)["links"] : Json();
    if (links.is_object() && links.contains("next") && links["next"].is_string()) {
        auto link = path_of_link(links["next"].get<std::string>(), collection);
        if (!link) {
            return unexpected(provider_error(provider_reason::bad_response,
                                             "the next page link is not a page of " + std::string(collection)));
        }
        list.next = *link;
    }
    return list;
}

namespace {

// Every item of a list page through `parse`; an item that does not parse
// fails the page (a reconciliation must not skip what it cannot read).
template <typename Snapshot, typename Parse>
Result<std::vector<Snapshot>, ProviderError> parse_items(const Json& data, Parse parse) {
    std::vector<Snapshot> items;
    items.reserve(data.size());
    for (const Json& item : data) {
        auto snapshot = parse(item);
        if (!snapshot) return unexpected(provider_error(provider_reason::bad_response, snapshot.error().message));
        items.push_back(std::move(snapshot).value());
    }
    return items;
}

}  // namespace

Result<SubscriptionPage, ProviderError> LemonSqueezyProvider::list_subscriptions(std::string_view next) {
    auto list = get_list(next.empty() ? first_page("subscriptions", "") : std::string(next), "subscriptions");
    if (!list) return unexpected(list.error());
    auto items = parse_items<SubscriptionSnapshot>(list->data, parse_subscription_resource);
    if (!items) return unexpected(items.error());
    return SubscriptionPage{std::move(items).value(), std::move(list->next)};
}

Result<OrderPage, ProviderError> LemonSqueezyProvider::list_orders(std::string_view next) {
    auto list = get_list(next.empty() ? first_page("orders", "") : std::string(next), "orders");
    if (!list) return unexpected(list.error());
    auto items = parse_items<OrderSnapshot>(list->data, parse_order_resource);
    if (!items) return unexpected(items.error());
    return OrderPage{std::move(items).value(), std::move(list->next)};
}

Result<InvoicePage, ProviderError> LemonSqueezyProvider::list_refunded_invoices(std::string_view next) {
    // filter[refunded]=true, as the API documents it (SPEC.md §1.5).
    const std::string first = first_page("subscription-invoices", "&filter%5Brefunded%5D=true");
    auto list = get_list(next.empty() ? first : std::string(next), "subscription-invoices");
    if (!list) return unexpected(list.error());
    auto items = parse_items<InvoiceSnapshot>(list->data, parse_invoice_resource);
    if (!items) return unexpected(items.error());
    return InvoicePage{std::move(items).value(), std::move(list->next)};
}

}  // namespace tokenmeter::billing
