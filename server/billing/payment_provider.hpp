// PaymentProvider: what billing needs from a subscription provider, and
// nothing the ledger needs to know about. LemonSqueezy is the one there is
// (billing/lemonsqueezy.*); another provider implements these four calls and
// the plan rules, webhook bookkeeping and ledger changes stay as they are.
//
// Provider calls go over the network and fail in ordinary ways (refused,
// rate limited, slow, unreachable); they come back as ProviderError values
// with a stable `reason`, never as exceptions and never as a hang.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter::billing {

// A subscription as the provider described it at `updated_at_us`.
struct SubscriptionSnapshot {
    std::string subscription_id;
    std::string status;  // active, on_trial, past_due, unpaid, cancelled, expired, paused
    std::string variant_id;
    std::string customer_id;
    std::string order_id;
    std::string user_email;
    bool pause_free = false;  // paused, but "service continues for free" (pause.mode "free"; "void" otherwise)
    std::optional<std::int64_t> pause_resumes_at;  // pause.resumes_at, unix seconds; absent: no date set
    std::optional<std::int64_t> renews_at;  // unix seconds
    std::optional<std::int64_t> ends_at;
    std::int64_t updated_at_us = 0;  // microseconds: provider timestamps carry them, and ties are common
    std::string customer_portal_url;  // urls.customer_portal: signed, short-lived, never stored
    std::string attributes_json;
};

// An order as the provider described it: a one-time purchase (a credit
// pack) or the first order of a subscription. Refunds are cumulative:
// `refunded_amount` is everything refunded so far, so the newest snapshot
// alone says what is due, whatever order the deliveries came in.
struct OrderSnapshot {
    std::string order_id;
    std::string status;      // pending, failed, paid, refunded, partial_refund (or partial_refunded)
    std::string variant_id;  // first_order_item.variant_id
    std::string customer_id;
    std::string user_email;
    std::int64_t total = 0;            // smallest currency unit (cents)
    std::int64_t refunded_amount = 0;  // cents, cumulative
    std::int64_t created_at = 0;       // unix seconds
    std::int64_t updated_at_us = 0;
};

// A subscription invoice (the `*_payment_*` webhooks carry one).
struct InvoiceSnapshot {
    std::string invoice_id;
    std::string subscription_id;
    std::string customer_id;
    std::string status;          // pending, paid, void, refunded, partial_refund
    std::string billing_reason;  // initial, renewal, updated
    std::int64_t total = 0;
    std::int64_t refunded_amount = 0;  // cents, cumulative
    std::int64_t created_at = 0;       // unix seconds: when the payment it is for was made
    std::int64_t updated_at_us = 0;
};

enum class WebhookKind : std::uint8_t {
    subscription,  // carries a subscription snapshot
    payment,       // carries an invoice naming its subscription
    order,         // carries an order (and the user who placed it)
    ignored,       // anything else: acknowledged, stored, not applied
};

// A verified, parsed webhook delivery.
struct WebhookEvent {
    std::string event_name;
    WebhookKind kind = WebhookKind::ignored;
    std::string body_sha256;  // hex; identifies the delivered bytes
    std::string webhook_id;
    std::string user_id;  // from the checkout's custom data; empty when absent
    std::optional<SubscriptionSnapshot> subscription;
    std::string subscription_id;  // subscription and payment events
    std::string order_id;         // order events
    std::optional<OrderSnapshot> order;      // order events (order_created, order_refunded)
    std::optional<InvoiceSnapshot> invoice;  // payment events (subscription_payment_*)
};

struct CheckoutRequest {
    std::string user_id;
    std::string redirect_url;  // empty: the provider's default page
    std::string variant_id;    // what is bought: a plan's variant or a credit pack's
};

struct CheckoutSession {
    std::string id;
    std::string url;
};

// Why a provider call failed; `reason` is one of the names below.
struct ProviderError {
    std::string reason;
    std::string message;
    int provider_status = 0;      // the provider's HTTP status, 0 without one
    int retry_after_seconds = 0;  // from a 429's Retry-After, 0 when absent
};

namespace provider_reason {
inline constexpr std::string_view rejected = "provider_rejected";          // a 4xx with the provider's own reason
inline constexpr std::string_view not_found = "provider_not_found";        // 404 for the resource asked about
inline constexpr std::string_view failed = "provider_error";               // a 5xx
inline constexpr std::string_view rate_limited = "provider_rate_limited";  // 429
inline constexpr std::string_view timeout = "provider_timeout";            // no answer in time
inline constexpr std::string_view unreachable = "provider_unreachable";    // no connection
inline constexpr std::string_view bad_response = "provider_bad_response";  // an answer we cannot read
}  // namespace provider_reason

// One page of the store's subscriptions; `next` is opaque, empty on the last.
struct SubscriptionPage {
    std::vector<SubscriptionSnapshot> subscriptions;
    std::string next;
};

struct OrderPage {
    std::vector<OrderSnapshot> orders;
    std::string next;
};

struct InvoicePage {
    std::vector<InvoiceSnapshot> invoices;
    std::string next;
};

class PaymentProvider {
public:
    virtual ~PaymentProvider() = default;

    // The name of the header carrying the webhook signature.
    virtual std::string_view signature_header() const = 0;
    // Checks the signature over the raw body bytes, then parses. Errors:
    // invalid_signature (nothing about the body is trusted) or invalid_payload.
    virtual Result<WebhookEvent, Error> verify_webhook(std::string_view body, std::string_view signature) const = 0;

    virtual Result<CheckoutSession, ProviderError> create_checkout(const CheckoutRequest& request) = 0;
    virtual Result<SubscriptionSnapshot, ProviderError> fetch_subscription(std::string_view subscription_id) = 0;
    // The first page for an empty `next`, then the page `next` names.
    virtual Result<SubscriptionPage, ProviderError> list_subscriptions(std::string_view next) = 0;
    // The store's orders (GET /v1/orders?filter[store_id]=…), newest first, paged like subscriptions.
    virtual Result<OrderPage, ProviderError> list_orders(std::string_view next) = 0;
    // The store's refunded subscription invoices (GET /v1/subscription-invoices?filter[store_id]=…&filter[refunded]=true).
    virtual Result<InvoicePage, ProviderError> list_refunded_invoices(std::string_view next) = 0;
};

}  // namespace tokenmeter::billing
