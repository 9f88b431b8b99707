// A local LemonSqueezy stand-in for tests and the demo (never on the
// production path). It speaks the wire format of lemonsqueezy/SPEC.md for
// the calls tokenmeter makes:
//
//   POST /v1/checkouts                 201, JSON:API checkout with a URL here;
//                                      relationships.variant names what is bought
//   GET  /v1/subscriptions/{id}        200 or a JSON:API 404; urls.customer_portal
//                                      freshly signed on every GET
//   GET  /v1/subscriptions             paginated (page[number], page[size],
//                                      filter[store_id]), meta.page camelCase,
//                                      links.first/last/next/prev
//   GET  /v1/orders/{id}               an order (first_order_item, total, refunds)
//   GET  /v1/orders                    paginated like subscriptions (filter[store_id])
//   GET  /v1/subscription-invoices/{id}
//   GET  /v1/subscription-invoices     paginated (filter[store_id],
//                                      filter[subscription_id], filter[refunded])
//
// and it fails on request, so clients can be tested against each failure:
//
//   POST /_standin/fail {"mode": M, "count": N}   the next N API calls fail as M:
//     rejected      422 JSON:API errors ("The related resource does not exist.")
//     unauthorized  401 JSON:API errors
//     server_error  500 {"message","request_id"} (5xx bodies are not JSON:API)
//     html_error    502 text/html
//     rate_limited  429 JSON:API errors with Retry-After: 1
//     slow          answers after slow_ms (beyond a 5 s client timeout)
//     close         sends headers, then closes the connection mid-body
//
// Variants: the store sells the subscription variant (`variant_id`), any
// variant with a price (`variant_prices`, default 999 cents), and one-time
// credit packs (`pack_variant_ids`). The checkout page (GET
// /checkout/custom/{id}) has a "Pay" button. Paying a pack creates a paid
// order and sends order_created; paying a subscription variant creates the
// order, an active subscription and its paid initial invoice, and sends
// order_created, subscription_created and subscription_payment_success. Each
// user (checkout_data.custom.user_id) is one customer: their orders and
// subscriptions share a customer_id. Webhooks are correctly signed compact
// JSON with `\/` escapes, like LemonSqueezy's PHP, carrying
// meta.custom_data.user_id; paying then redirects (303) to the checkout's
// redirect_url. `?deliver=none|order_created` on the pay POST drops webhooks,
// for reconciliation tests.
//
// Other control endpoints: PUT /_standin/subscriptions/{id} {"attributes":{…}}
// (create or change a subscription: plan changes through variant_id, pauses
// through pause {mode, resumes_at}, status), POST
// /_standin/subscriptions/{id}/webhook {"event_name", "user_id"} (send the
// subscription as that event), PUT /_standin/orders/{id} and PUT
// /_standin/invoices/{id} {"attributes":{…}, "user_id"} (create or change),
// POST /_standin/orders/{id}/refund and /_standin/invoices/{id}/refund
// {"amount": CENTS} (a partial or, without an amount, full refund; sends
// order_refunded or subscription_payment_refunded), POST /_standin/drop
// {"count": N} (the next N webhooks are recorded as dropped, never sent),
// PUT /_standin/webhook-url {"url"} (where webhooks go from now on),
// GET /_standin/deliveries, POST /_standin/reset.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "local_server.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace tokenmeter::standin {

struct StandinOptions {
    std::string store_id = "1";
    std::string variant_id = "1";     // the subscription (pro) variant
    std::vector<std::string> pack_variant_ids;            // one-time variants (credit packs)
    std::map<std::string, std::int64_t> variant_prices;   // cents; a variant priced here is for sale
    std::int64_t default_price_cents = 999;               // the price of a variant not in variant_prices
    std::string api_key;              // empty: any Bearer key is accepted
    std::string webhook_url;          // empty: paying sends no webhooks
    std::string webhook_secret;
    std::string webhook_secret_file;  // read when sending, when webhook_secret is empty
    std::string public_url;           // base of URLs it hands out; empty: http://HOST:PORT it listens on
    int page_size_max = 100;
    std::string fail_mode;            // every API call fails this way (the --fail flag)
    int slow_ms = 7000;
    // The stand-in's clock (tests pass the server's manual clock).
    std::function<std::int64_t()> now_seconds;
};

// One webhook the stand-in sent.
struct Delivery {
    std::string event_name;
    std::string body;
    std::string signature;
    int status = 0;  // the receiver's answer, 0 when it could not be reached (or was dropped)
    bool dropped = false;  // recorded but never sent (drop_next_deliveries)
};

class Standin {
public:
    explicit Standin(StandinOptions options);
    ~Standin();
    Standin(const Standin&) = delete;
    Standin& operator=(const Standin&) = delete;

    // Binds (port 0: a free one); the port, or -1. Then serve() blocks
    // serving on the calling thread (the executable).
    int bind(const std::string& host, int port);
    bool serve();
    // bind(), then serves on a background thread; the port, or -1.
    int start(const std::string& host, int port);
    void stop();
    std::string base_url() const;

    // The same as the control endpoints, for in-process tests.
    void fail_next(const std::string& mode, int count);
    // Creates or changes a subscription; attributes merge into the stored ones.
    nlohmann::json put_subscription(const std::string& id, const nlohmann::json& attributes);
    // The JSON:API resource object of a subscription (null if unknown).
    nlohmann::json subscription_resource(const std::string& id) const;
    // The exact body a webhook of `event_name` about the subscription would carry.
    std::string subscription_webhook_body(const std::string& event_name, const std::string& id,
                                          const std::string& user_id) const;
    // Sends a body signed with the webhook secret; the receiver's status.
    int send_webhook(const std::string& event_name, const std::string& body);
    std::vector<Delivery> deliveries() const;
    // Where webhooks go (when the receiver starts after the stand-in).
    void set_webhook_url(const std::string& url);
    // The subscription a paid checkout created; empty before payment (and for a pack).
    std::string subscription_of_checkout(const std::string& checkout_id) const;
    // The order a paid checkout created; empty before payment.
    std::string order_of_checkout(const std::string& checkout_id) const;
    // The customer id of a user (the same for all their orders and subscriptions).
    std::string customer_of_user(const std::string& user_id);
    // The next `count` webhooks are recorded in deliveries() as dropped and never sent.
    void drop_next_deliveries(int count);

    // Creates or changes an order; attributes merge into the stored ones
    // (first_order_item one level deeper). `user_id`, when given, is the
    // custom data its webhooks carry.
    nlohmann::json put_order(const std::string& id, const nlohmann::json& attributes, const std::string& user_id = "");
    // The JSON:API resource object of an order (null if unknown).
    nlohmann::json order_resource(const std::string& id) const;
    // The exact body an order webhook (order_created, order_refunded) would carry.
    std::string order_webhook_body(const std::string& event_name, const std::string& id, const std::string& user_id) const;
    // Refunds `amount_cents` more of the order (capped at what is left; a
    // negative amount refunds everything left) and sends order_refunded. The
    // order's attributes after the refund; null when it is unknown or
    // nothing is left to refund (then nothing is sent).
    nlohmann::json refund_order(const std::string& id, std::int64_t amount_cents);

    // Subscription invoices, likewise (subscription_payment_* webhooks).
    nlohmann::json put_invoice(const std::string& id, const nlohmann::json& attributes, const std::string& user_id = "");
    nlohmann::json invoice_resource(const std::string& id) const;
    std::string invoice_webhook_body(const std::string& event_name, const std::string& id, const std::string& user_id) const;
    // Sends subscription_payment_refunded.
    nlohmann::json refund_invoice(const std::string& id, std::int64_t amount_cents);
    // The ids of a subscription's invoices, newest first.
    std::vector<std::string> invoices_of_subscription(const std::string& subscription_id) const;

    // What a variant costs, in cents, and whether it is a one-time pack.
    std::int64_t price_of(const std::string& variant_id) const;
    bool is_pack(const std::string& variant_id) const;

private:
    struct Checkout {
        std::string id;
        std::string user_id;
        std::string redirect_url;
        std::string variant_id;
        std::string order_id;         // set once paid
        std::string subscription_id;  // set once paid, for a subscription variant
    };
    // What paying a checkout created (ids empty when it did not).
    struct Purchase {
        Checkout checkout;
        bool paid_before = false;
    };
    // A list endpoint's filters, as given (decoded) and as its links repeat them.
    using Filters = std::vector<std::pair<std::string, std::string>>;

    void install(httplib::Server& server);
    void install_control(httplib::Server& server);
    void install_refunds(httplib::Server& server);
    // A failure mode due for this API call, consumed; empty when none.
    std::string take_failure();
    // Answers as the due failure mode says; true when the call is answered.
    bool answer_failure(httplib::Response& response);
    bool authorized(const httplib::Request& request, httplib::Response& response) const;
    void create_checkout(const httplib::Request& request, httplib::Response& response);
    void get_resource(const httplib::Request& request, httplib::Response& response, const std::string& collection,
                      const nlohmann::json& resource);
    void list_subscriptions(const httplib::Request& request, httplib::Response& response);
    void list_orders(const httplib::Request& request, httplib::Response& response);
    void list_invoices(const httplib::Request& request, httplib::Response& response);
    // One page of `ids` (newest first) as a JSON:API list of /v1/`collection`.
    void reply_page(const httplib::Request& request, httplib::Response& response, const std::string& collection,
                    std::vector<std::string> ids, const Filters& filters,
                    const std::function<nlohmann::json(const std::string&)>& resource) const;
    void checkout_page(const httplib::Request& request, httplib::Response& response);
    void pay_checkout(const httplib::Request& request, httplib::Response& response);
    std::int64_t now() const;
    std::string secret() const;
    std::string pay(const std::string& checkout_id, const std::string& deliver);
    // Records the payment of a checkout (order, subscription, invoice).
    std::optional<Purchase> record_purchase(const std::string& checkout_id);
    bool known_variant(const std::string& variant_id) const;
    std::int64_t customer_locked(const std::string& user_id);
    nlohmann::json new_order_attributes(const std::string& id, const std::string& variant_id, std::int64_t customer_id,
                                        std::int64_t at);
    nlohmann::json new_invoice_attributes(const std::string& id, const std::string& subscription_id,
                                          std::int64_t customer_id, std::int64_t total, std::int64_t at);
    // The signed, short-lived URLs of a subscription (fresh on every call).
    nlohmann::json subscription_urls(const std::string& id, const nlohmann::json& attributes) const;
    nlohmann::json refund(std::map<std::string, nlohmann::json>& resources, const std::string& id, std::int64_t amount_cents);
    std::string user_of_invoice(const std::string& id) const;

    StandinOptions options_;
    standin_support::LocalServer server_;
    std::atomic<bool> stopping_{false};

    mutable std::mutex mutex_;
    std::map<std::string, nlohmann::json> subscriptions_;  // id -> attributes
    std::map<std::string, nlohmann::json> orders_;         // id -> attributes
    std::map<std::string, nlohmann::json> invoices_;       // id -> attributes
    std::map<std::string, Checkout> checkouts_;
    // Custom data is not part of the API objects (SPEC.md §4.4): who bought
    // what is kept beside them, for the webhooks.
    std::map<std::string, std::string> order_users_;         // order id -> user id
    std::map<std::string, std::string> subscription_users_;  // subscription id -> user id
    std::map<std::string, std::int64_t> customers_;          // user id -> customer id
    std::vector<Delivery> deliveries_;
    std::string fail_mode_;
    int fail_count_ = 0;
    int drop_count_ = 0;
    std::int64_t next_id_ = 1000001;
    std::int64_t micro_ = 0;  // keeps successive updated_at values distinct
};

// LemonSqueezy's body style: compact JSON with forward slashes escaped.
std::string lemonsqueezy_json(const nlohmann::json& document);
// Lowercase hex HMAC-SHA256, as X-Signature carries it.
std::string hex_hmac_sha256(const std::string& secret, const std::string& body);
// "$19.00"
std::string dollars(std::int64_t cents);
// "2025-03-01T10:15:31.000000Z"
std::string lemonsqueezy_time(std::int64_t seconds, std::int64_t micros = 0);

}  // namespace tokenmeter::standin
