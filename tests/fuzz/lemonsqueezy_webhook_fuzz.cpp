// Fuzzes the LemonSqueezy webhook path (server/billing/): the X-Signature
// header and the raw body, as LemonSqueezyProvider::verify_webhook receives
// them. The input is the header value, a newline, then the body (no newline:
// all body, no header).
//
// The delivery is checked twice: with the fuzzed header, and with the body's
// true HMAC under the fixed secret, so every body reaches the payload parser
// (parse_webhook_body, parse_subscription_resource, parse_order_resource,
// parse_invoice_resource) the billing service runs
// on a verified delivery. Applying an event needs a ledger and is left to
// the server suites.
//
// The body is also read as an error answer of the LemonSqueezy API
// (provider_error_message), the other text the provider sends.
//
// Invariants besides "no crash": only the exact lowercase hex HMAC passes;
// a correctly signed body is never refused for its signature; an event names
// its body's SHA-256, a valid user id or none, an id fitting its kind; what
// is stored of a delivery (its fields, or the refusal's message for one that
// cannot be read) is valid UTF-8, as PostgreSQL's text columns require; a
// subscription's stored attributes parse back to the same snapshot; an order
// or invoice names its variant or subscription and never has more refunded
// than its total; and a
// provider error message stays within its bound.
#include <string>

#include "billing/lemonsqueezy.hpp"
#include "billing/webhook_signature.hpp"
#include "fuzz_input.hpp"
#include "tokenmeter/tokenizer.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter::fuzz {
namespace {

using Json = nlohmann::json;

constexpr std::string_view webhook_secret = "fuzz-webhook-secret";

const billing::LemonSqueezyProvider& provider() {
    static const billing::LemonSqueezyProvider instance([] {
        billing::LemonSqueezyOptions options;
        options.webhook_secret = std::string(webhook_secret);
        return options;
    }());
    return instance;
}

bool same_snapshot(const billing::SubscriptionSnapshot& a, const billing::SubscriptionSnapshot& b) {
    return a.subscription_id == b.subscription_id && a.status == b.status && a.variant_id == b.variant_id &&
           a.customer_id == b.customer_id && a.order_id == b.order_id && a.user_email == b.user_email &&
           a.pause_free == b.pause_free && a.pause_resumes_at == b.pause_resumes_at &&
           a.customer_portal_url == b.customer_portal_url && a.renews_at == b.renews_at && a.ends_at == b.ends_at &&
           a.updated_at_us == b.updated_at_us && a.attributes_json == b.attributes_json;
}

// The snapshot the store keeps (id and attributes) reads back as itself.
void check_snapshot(const billing::SubscriptionSnapshot& snapshot) {
    TM_ASSERT(!snapshot.subscription_id.empty() && snapshot.subscription_id.size() <= 64);
    const Json attributes = Json::parse(snapshot.attributes_json, nullptr, /*allow_exceptions=*/false);
    TM_ASSERT(attributes.is_object());
    const Json resource = {{"type", "subscriptions"}, {"id", snapshot.subscription_id}, {"attributes", attributes}};
    auto again = billing::parse_subscription_resource(resource);
    TM_ASSERT(again.has_value());
    TM_ASSERT(same_snapshot(*again, snapshot));
}

bool is_utf8(std::string_view text) { return !utf8_error_offset(text).has_value(); }

void check_event(const billing::WebhookEvent& event, std::string_view body) {
    TM_ASSERT(event.body_sha256 == billing::sha256_hex(body));
    TM_ASSERT(is_utf8(event.event_name) && is_utf8(event.webhook_id) && is_utf8(event.user_id));
    TM_ASSERT(is_utf8(event.subscription_id) && is_utf8(event.order_id));
    TM_ASSERT(event.webhook_id.size() <= 64);
    TM_ASSERT(event.user_id.empty() || is_valid_user_id(event.user_id));
    switch (event.kind) {
        case billing::WebhookKind::subscription:
            TM_ASSERT(event.subscription.has_value());
            TM_ASSERT(event.subscription_id == event.subscription->subscription_id);
            check_snapshot(*event.subscription);
            break;
        case billing::WebhookKind::payment:
            TM_ASSERT(!event.subscription_id.empty());
            TM_ASSERT(!event.subscription.has_value());
            TM_ASSERT(event.invoice.has_value() && event.invoice->subscription_id == event.subscription_id);
            TM_ASSERT(event.invoice->refunded_amount >= 0 && event.invoice->refunded_amount <= event.invoice->total);
            break;
        case billing::WebhookKind::order:
            TM_ASSERT(!event.order_id.empty());
            TM_ASSERT(event.order.has_value() && event.order->order_id == event.order_id);
            TM_ASSERT(!event.order->variant_id.empty());
            TM_ASSERT(event.order->refunded_amount >= 0 && event.order->refunded_amount <= event.order->total);
            break;
        case billing::WebhookKind::ignored:
            TM_ASSERT(!event.subscription.has_value());
            break;
    }
}

void check_delivery(std::string_view signature, std::string_view body) {
    const std::string expected = billing::hmac_sha256_hex(webhook_secret, body);
    const bool valid = billing::webhook_signature_valid(webhook_secret, body, signature);
    TM_ASSERT(valid == (signature == expected));
    auto as_sent = provider().verify_webhook(body, signature);
    if (!valid) TM_ASSERT(!as_sent.has_value() && as_sent.error().code == "invalid_signature");
    auto signed_here = provider().verify_webhook(body, expected);
    if (!signed_here) {
        TM_ASSERT(signed_here.error().code == "invalid_payload");
        check_error_text(signed_here.error());
        return;
    }
    check_event(*signed_here, body);
}

// The body as the API's answer to a failed call: "LemonSqueezy answered
// <status>: " and a quote of at most 300 bytes.
void check_provider_error(std::string_view body) {
    constexpr std::string_view prefix = "LemonSqueezy answered 422: ";
    const std::string message = billing::provider_error_message(422, body);
    TM_ASSERT(message.substr(0, prefix.size()) == prefix);
    TM_ASSERT(message.size() <= prefix.size() + 300);
}

}  // namespace
}  // namespace tokenmeter::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tokenmeter::fuzz;
    TM_ASSERT(tokenmeter::crypto_ready());
    const std::string_view input = text_of(data, size);
    const std::size_t newline = input.find('\n');
    const std::string_view signature = newline == std::string_view::npos ? "" : input.substr(0, newline);
    const std::string_view body = newline == std::string_view::npos ? input : input.substr(newline + 1);
    check_delivery(signature, body);
    check_provider_error(body);
    return 0;
}
