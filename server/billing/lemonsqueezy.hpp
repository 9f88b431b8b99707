// LemonSqueezy behind PaymentProvider (lemonsqueezy/SPEC.md): JSON:API over
// HTTPS with a Bearer key, webhooks signed with hex HMAC-SHA256.
//
// Every call has a connect and a read timeout (5 s by default), so a slow or
// silent API becomes provider_timeout instead of a hung request thread.
// Failures keep the provider's own words: JSON:API errors[0].detail for 4xx,
// `message` of the non-JSON:API 5xx bodies.
//
// Parsing is lenient where the API is loose (ids as strings or numbers, `[]`
// for empty objects, unknown fields ignored, nulls where a value is optional)
// and strict where billing depends on it (status, updated_at, the resource's
// own id and the ids it is billed by, amounts as non-negative integer cents,
// never more refunded than paid).
#pragma once

#include <cstdint>
#include <string>

#include "billing/payment_provider.hpp"
#include <nlohmann/json.hpp>

namespace tokenmeter::billing {

struct LemonSqueezyOptions {
    std::string api_base = "https://api.lemonsqueezy.com";
    std::string api_key;
    std::string store_id;
    std::string variant_id;  // the variant a checkout is for when the request names none (the pro plan)
    std::string webhook_secret;
    std::int64_t timeout_ms = 5000;  // connect and read, each
    int page_size = 100;             // the API's maximum
};

class LemonSqueezyProvider final : public PaymentProvider {
public:
    explicit LemonSqueezyProvider(LemonSqueezyOptions options) : options_(std::move(options)) {}

    std::string_view signature_header() const override { return "X-Signature"; }
    Result<WebhookEvent, Error> verify_webhook(std::string_view body, std::string_view signature) const override;
    Result<CheckoutSession, ProviderError> create_checkout(const CheckoutRequest& request) override;
    Result<SubscriptionSnapshot, ProviderError> fetch_subscription(std::string_view subscription_id) override;
    Result<SubscriptionPage, ProviderError> list_subscriptions(std::string_view next) override;
    Result<OrderPage, ProviderError> list_orders(std::string_view next) override;
    Result<InvoicePage, ProviderError> list_refunded_invoices(std::string_view next) override;

    const LemonSqueezyOptions& options() const { return options_; }

private:
    struct Reply {
        int status = 0;
        std::string body;
        std::string retry_after;
    };
    // One page of a list endpoint: its `data` array and the path of the next page.
    struct ListReply {
        nlohmann::json data;
        std::string next;
    };
    Result<Reply, ProviderError> send(const std::string& method, const std::string& path, const std::string& body);
    // GETs `path` (a page of /v1/`collection`) and checks the list's shape.
    Result<ListReply, ProviderError> get_list(const std::string& path, std::string_view collection);
    // The first page of /v1/`collection` for the store, with `filters` (already encoded) appended.
    std::string first_page(std::string_view collection, std::string_view filters) const;

    LemonSqueezyOptions options_;
};

// Parsing, public for tests and the stand-in.

// "2025-03-01T10:15:31.123456Z" -> microseconds since the epoch.
Result<std::int64_t, Error> parse_timestamp_us(std::string_view text);

// A JSON:API subscription resource object (`data` of a subscription response
// or of a subscription webhook).
Result<SubscriptionSnapshot, Error> parse_subscription_resource(const nlohmann::json& data);

// A JSON:API order resource object (`orders`: an order webhook's `data`, or
// one item of GET /v1/orders).
Result<OrderSnapshot, Error> parse_order_resource(const nlohmann::json& data);

// A JSON:API subscription invoice resource object (`subscription-invoices`:
// a subscription_payment_* webhook's `data`, or one item of
// GET /v1/subscription-invoices).
Result<InvoiceSnapshot, Error> parse_invoice_resource(const nlohmann::json& data);

// The webhook body, already verified.
Result<WebhookEvent, Error> parse_webhook_body(std::string_view body);

// The human part of an error body: JSON:API errors[0].detail (and pointer),
// else `message` or `error`, else a bounded prefix of the raw text.
std::string provider_error_message(int status, std::string_view body);

}  // namespace tokenmeter::billing
