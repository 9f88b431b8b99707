// A local LemonSqueezy stand-in for tests and the demo (never on the
// production path). It speaks the wire format of lemonsqueezy/SPEC.md for
// the calls tokenmeter makes:
//
//   POST /v1/checkouts                 201, JSON:API checkout with a URL here
//   GET  /v1/subscriptions/{id}        200 or a JSON:API 404
//   GET  /v1/subscriptions             paginated (page[number], page[size],
//                                      filter[store_id]), meta.page camelCase,
//                                      links.first/last/next/prev
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
// The checkout page (GET /checkout/custom/{id}) has a "Pay" button; paying
// creates an order and an active subscription, sends correctly signed
// order_created and subscription_created webhooks (compact JSON with `\/`
// escapes, like LemonSqueezy's PHP) to the webhook URL, then redirects (303)
// to the checkout's redirect_url. `?deliver=none|order_created` on the pay
// POST drops webhooks, for reconciliation tests.
//
// Other control endpoints: PUT /_standin/subscriptions/{id} {"attributes":{…}}
// (create or change a subscription), POST /_standin/subscriptions/{id}/webhook
// {"event_name", "user_id"} (send the subscription as that event),
// PUT /_standin/webhook-url {"url"} (where webhooks go from now on),
// GET /_standin/deliveries, POST /_standin/reset.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace tokenmeter::standin {

struct StandinOptions {
    std::string store_id = "1";
    std::string variant_id = "1";
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
    int status = 0;  // the receiver's answer, 0 when it could not be reached
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
    // The subscription a paid checkout created; empty before payment.
    std::string subscription_of_checkout(const std::string& checkout_id) const;

private:
    struct Checkout {
        std::string id;
        std::string user_id;
        std::string redirect_url;
        std::string subscription_id;  // set once paid
    };

    void install(httplib::Server& server);
    void install_control(httplib::Server& server);
    // A failure mode due for this API call, consumed; empty when none.
    std::string take_failure();
    // Answers as the due failure mode says; true when the call is answered.
    bool answer_failure(httplib::Response& response);
    bool authorized(const httplib::Request& request, httplib::Response& response) const;
    void create_checkout(const httplib::Request& request, httplib::Response& response);
    void get_subscription(const httplib::Request& request, httplib::Response& response);
    void list_subscriptions(const httplib::Request& request, httplib::Response& response);
    void checkout_page(const httplib::Request& request, httplib::Response& response);
    void pay_checkout(const httplib::Request& request, httplib::Response& response);
    std::int64_t now() const;
    std::string secret() const;
    std::string pay(const std::string& checkout_id, const std::string& deliver);
    nlohmann::json order_resource(const std::string& order_id, const std::string& subscription_id) const;

    StandinOptions options_;
    std::unique_ptr<httplib::Server> server_;
    std::thread thread_;
    std::string listen_base_;
    std::atomic<bool> stopping_{false};

    mutable std::mutex mutex_;
    std::map<std::string, nlohmann::json> subscriptions_;  // id -> attributes
    std::map<std::string, Checkout> checkouts_;
    std::map<std::string, std::string> orders_;            // order id -> subscription id
    std::vector<Delivery> deliveries_;
    std::string fail_mode_;
    int fail_count_ = 0;
    std::int64_t next_id_ = 1000001;
    std::int64_t micro_ = 0;  // keeps successive updated_at values distinct
};

// LemonSqueezy's body style: compact JSON with forward slashes escaped.
std::string lemonsqueezy_json(const nlohmann::json& document);
// Lowercase hex HMAC-SHA256, as X-Signature carries it.
std::string hex_hmac_sha256(const std::string& secret, const std::string& body);
// "2025-03-01T10:15:31.000000Z"
std::string lemonsqueezy_time(std::int64_t seconds, std::int64_t micros = 0);

}  // namespace tokenmeter::standin
