#include "standin.hpp"

#include <httplib.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>

namespace tokenmeter::standin {

namespace {

using Json = nlohmann::json;
using httplib::Request;
using httplib::Response;

constexpr const char* jsonapi_type = "application/vnd.api+json";

std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> buffer(bytes);
    randombytes_buf(buffer.data(), buffer.size());
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char b : buffer) {
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 0x0f]);
    }
    return out;
}

std::string uuid() {
    const std::string hex = random_hex(16);
    return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-4" + hex.substr(13, 3) + "-a" + hex.substr(17, 3) + "-" +
           hex.substr(20, 12);
}

// The same day next month (clamped to the month's end), like a monthly renewal.
std::int64_t one_month_later(std::int64_t seconds) {
    const std::time_t t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    const int day = tm.tm_mday;
    tm.tm_mday = 1;
    tm.tm_mon += 1;
    std::time_t first = timegm(&tm);
    std::tm next{};
    gmtime_r(&first, &next);
    static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const int year = next.tm_year + 1900;
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const int month_days = next.tm_mon == 1 && leap ? 29 : days[next.tm_mon];
    next.tm_mday = std::min(day, month_days);
    return static_cast<std::int64_t>(timegm(&next));
}

Json jsonapi_errors(int status, const std::string& title, const std::string& detail, const std::string& pointer = "") {
    Json error = {{"detail", detail}, {"status", std::to_string(status)}, {"title", title}};
    if (!pointer.empty()) error["source"] = {{"pointer", pointer}};
    return Json{{"jsonapi", {{"version", "1.0"}}}, {"errors", Json::array({error})}};
}

void reply_jsonapi(Response& response, int status, const Json& document) {
    response.status = status;
    response.set_content(lemonsqueezy_json(document), jsonapi_type);
}

int int_of(const std::string& text, int fallback) {
    if (text.empty() || text.size() > 9 || !std::all_of(text.begin(), text.end(), ::isdigit)) return fallback;
    return std::stoi(text);
}

Json id_number(const std::string& id) {
    if (!id.empty() && id.size() <= 18 && std::all_of(id.begin(), id.end(), ::isdigit)) return std::stoll(id);
    return id;
}

}  // namespace

std::string lemonsqueezy_json(const Json& document) {
    const std::string compact = document.dump();
    std::string out;
    out.reserve(compact.size() + compact.size() / 8);
    for (char c : compact) {
        if (c == '/') out.push_back('\\');
        out.push_back(c);
    }
    return out;
}

std::string hex_hmac_sha256(const std::string& secret, const std::string& body) {
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
    crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(body.data()), body.size());
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_final(&state, mac);
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char b : mac) {
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 0x0f]);
    }
    return out;
}

std::string lemonsqueezy_time(std::int64_t seconds, std::int64_t micros) {
    const std::time_t t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[96];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(((micros % 1000000) + 1000000) % 1000000));
    return text;
}

Standin::Standin(StandinOptions options) : options_(std::move(options)), fail_mode_(options_.fail_mode) {
    if (sodium_init() < 0) throw std::runtime_error("libsodium did not initialize");
    if (!options_.fail_mode.empty()) fail_count_ = -1;  // for ever
}

Standin::~Standin() { stop(); }

std::int64_t Standin::now() const {
    if (options_.now_seconds) return options_.now_seconds();
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string Standin::secret() const {
    if (!options_.webhook_secret.empty()) return options_.webhook_secret;
    if (options_.webhook_secret_file.empty()) return {};
    std::ifstream file(options_.webhook_secret_file);
    std::string text;
    std::getline(file, text);
    while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.pop_back();
    return text;
}

std::string Standin::base_url() const {
    return options_.public_url.empty() ? listen_base_ : options_.public_url;
}

int Standin::bind(const std::string& host, int port) {
    server_ = std::make_unique<httplib::Server>();
    install(*server_);
    const int bound = port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
    if (bound <= 0) return -1;
    listen_base_ = "http://" + host + ":" + std::to_string(bound);
    return bound;
}

bool Standin::serve() { return server_ != nullptr && server_->listen_after_bind(); }

int Standin::start(const std::string& host, int port) {
    const int bound = bind(host, port);
    if (bound <= 0) return -1;
    thread_ = std::thread([this] { serve(); });
    return bound;
}

void Standin::stop() {
    stopping_ = true;
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
}

void Standin::fail_next(const std::string& mode, int count) {
    std::lock_guard<std::mutex> guard(mutex_);
    fail_mode_ = mode;
    fail_count_ = count;
}

Json Standin::put_subscription(const std::string& id, const Json& attributes) {
    std::lock_guard<std::mutex> guard(mutex_);
    Json& stored = subscriptions_[id];
    if (stored.is_null()) {
        const std::int64_t t = now();
        stored = {{"store_id", id_number(options_.store_id)}, {"customer_id", 3000000 + std::stoll(id) % 1000000},
                  {"order_id", nullptr}, {"order_item_id", nullptr}, {"product_id", 200001},
                  {"variant_id", id_number(options_.variant_id)}, {"product_name", "tokenmeter Pro"},
                  {"variant_name", "Monthly"}, {"user_name", "Demo User"}, {"user_email", "buyer-" + id + "@example.com"},
                  {"status", "active"}, {"status_formatted", "Active"}, {"card_brand", "visa"},
                  {"card_last_four", "4242"}, {"payment_processor", "stripe"}, {"pause", nullptr},
                  {"cancelled", false}, {"trial_ends_at", nullptr}, {"billing_anchor", 1},
                  {"first_subscription_item", nullptr}, {"urls", Json::object()},
                  {"renews_at", lemonsqueezy_time(one_month_later(t))}, {"ends_at", nullptr},
                  {"created_at", lemonsqueezy_time(t)}, {"updated_at", lemonsqueezy_time(t, ++micro_)},
                  {"test_mode", true}};
    }
    const bool explicit_time = attributes.is_object() && attributes.contains("updated_at");
    if (attributes.is_object()) {
        for (const auto& item : attributes.items()) stored[item.key()] = item.value();
    }
    if (!explicit_time) stored["updated_at"] = lemonsqueezy_time(now(), ++micro_);
    return stored;
}

Json Standin::subscription_resource(const std::string& id) const {
    std::lock_guard<std::mutex> guard(mutex_);
    auto found = subscriptions_.find(id);
    if (found == subscriptions_.end()) return nullptr;
    const std::string self = base_url() + "/v1/subscriptions/" + id;
    Json relationships = Json::object();
    for (const char* name : {"store", "customer", "order", "order-item", "product", "variant", "subscription-items",
                             "subscription-invoices"}) {
        relationships[name] = {{"links", {{"related", self + "/" + name}, {"self", self + "/relationships/" + name}}}};
    }
    return Json{{"type", "subscriptions"}, {"id", id}, {"attributes", found->second},
                {"relationships", relationships}, {"links", {{"self", self}}}};
}

std::string Standin::subscription_webhook_body(const std::string& event_name, const std::string& id,
                                               const std::string& user_id) const {
    Json meta = {{"test_mode", true}, {"event_name", event_name}, {"webhook_id", uuid()}};
    if (!user_id.empty()) meta["custom_data"] = {{"user_id", user_id}};
    return lemonsqueezy_json(Json{{"meta", meta}, {"data", subscription_resource(id)}});
}

Json Standin::order_resource(const std::string& order_id, const std::string& subscription_id) const {
    const std::int64_t t = now();
    const std::string self = base_url() + "/v1/orders/" + order_id;
    Json attributes = {{"store_id", id_number(options_.store_id)}, {"customer_id", 3000000 + std::stoll(subscription_id) % 1000000},
                       {"identifier", uuid()}, {"order_number", std::stoll(order_id) % 100000},
                       {"user_name", "Demo User"}, {"user_email", "buyer-" + subscription_id + "@example.com"},
                       {"currency", "USD"}, {"currency_rate", "1.00000000"}, {"subtotal", 1900}, {"discount_total", 0},
                       {"tax", 0}, {"total", 1900}, {"subtotal_usd", 1900}, {"total_usd", 1900},
                       {"subtotal_formatted", "$19.00"}, {"total_formatted", "$19.00"}, {"status", "paid"},
                       {"status_formatted", "Paid"}, {"refunded", false}, {"refunded_at", nullptr},
                       {"first_order_item", {{"order_id", std::stoll(order_id)}, {"product_id", 200001},
                                             {"variant_id", id_number(options_.variant_id)},
                                             {"product_name", "tokenmeter Pro"}, {"variant_name", "Monthly"},
                                             {"price", 1900}, {"quantity", 1}, {"test_mode", true}}},
                       {"urls", {{"receipt", base_url() + "/my-orders/" + order_id}}},
                       {"created_at", lemonsqueezy_time(t)}, {"updated_at", lemonsqueezy_time(t)}, {"test_mode", true}};
    return Json{{"type", "orders"}, {"id", order_id}, {"attributes", attributes}, {"links", {{"self", self}}}};
}

int Standin::send_webhook(const std::string& event_name, const std::string& body) {
    Delivery delivery{event_name, body, hex_hmac_sha256(secret(), body), 0};
    std::string url;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        url = options_.webhook_url;
    }
    if (!url.empty()) {
        const auto scheme_end = url.find("://");
        const auto path_start = url.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
        const std::string origin = url.substr(0, path_start);
        const std::string path = path_start == std::string::npos ? "/" : url.substr(path_start);
        httplib::Client client(origin);
        client.set_connection_timeout(5, 0);
        client.set_read_timeout(10, 0);
        const httplib::Headers headers = {{"X-Event-Name", event_name}, {"X-Signature", delivery.signature}};
        auto result = client.Post(path, headers, body, "application/json");
        delivery.status = result ? result->status : 0;
    }
    std::lock_guard<std::mutex> guard(mutex_);
    deliveries_.push_back(delivery);
    return delivery.status;
}

void Standin::set_webhook_url(const std::string& url) {
    std::lock_guard<std::mutex> guard(mutex_);
    options_.webhook_url = url;
}

std::string Standin::subscription_of_checkout(const std::string& checkout_id) const {
    std::lock_guard<std::mutex> guard(mutex_);
    auto found = checkouts_.find(checkout_id);
    return found == checkouts_.end() ? std::string() : found->second.subscription_id;
}

std::vector<Delivery> Standin::deliveries() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return deliveries_;
}

std::string Standin::pay(const std::string& checkout_id, const std::string& deliver) {
    Checkout checkout;
    std::string subscription_id;
    std::string order_id;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        auto found = checkouts_.find(checkout_id);
        if (found == checkouts_.end()) return {};
        if (!found->second.subscription_id.empty()) {  // paid already: nothing happens twice
            return found->second.redirect_url.empty() ? "/checkout/custom/" + checkout_id + "/done" : found->second.redirect_url;
        }
        subscription_id = std::to_string(next_id_++);
        order_id = std::to_string(next_id_++);
        found->second.subscription_id = subscription_id;
        checkout = found->second;
        orders_[order_id] = subscription_id;
    }
    put_subscription(subscription_id, {{"order_id", std::stoll(order_id)}, {"order_item_id", std::stoll(order_id) + 1},
                                       {"billing_anchor", 1}});
    if (deliver != "none") {
        // LemonSqueezy sends the order and the subscription as separate events.
        Json meta = {{"test_mode", true}, {"event_name", "order_created"}, {"webhook_id", uuid()}};
        meta["custom_data"] = {{"user_id", checkout.user_id}};
        send_webhook("order_created", lemonsqueezy_json(Json{{"meta", meta}, {"data", order_resource(order_id, subscription_id)}}));
    }
    if (deliver == "all" || deliver.empty()) {
        send_webhook("subscription_created", subscription_webhook_body("subscription_created", subscription_id, checkout.user_id));
    }
    return checkout.redirect_url.empty() ? "/checkout/custom/" + checkout_id + "/done" : checkout.redirect_url;
}

namespace {

const char* checkout_page_html = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Checkout · tokenmeter Pro (LemonSqueezy stand-in)</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}
.card{border:1px solid #ddd;border-radius:12px;padding:1.5rem}button{font-size:1.1rem;padding:.6rem 1.6rem;
background:#7047eb;color:#fff;border:0;border-radius:8px;cursor:pointer}small{color:#666}</style></head>
<body><div class="card"><h1>tokenmeter Pro</h1><p>$19.00 / month</p>
<p><small>Local LemonSqueezy stand-in: no card is charged. Paying sends signed
<code>order_created</code> and <code>subscription_created</code> webhooks for user
<code>{{USER}}</code>.</small></p>
<form method="post" action="/checkout/custom/{{ID}}/pay"><button id="pay" type="submit">Pay</button></form>
</div></body></html>
)html";

std::string html_escape(const std::string& text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '&': out += "&amp;"; break;
            case '"': out += "&quot;"; break;
            default: out.push_back(c);
        }
    }
    return out;
}

std::string replaced(std::string text, const std::string& token, const std::string& value) {
    for (auto at = text.find(token); at != std::string::npos; at = text.find(token, at + value.size())) {
        text.replace(at, token.size(), value);
    }
    return text;
}

}  // namespace

std::string Standin::take_failure() {
    std::lock_guard<std::mutex> guard(mutex_);
    if (fail_mode_.empty() || fail_count_ == 0) return {};
    if (fail_count_ > 0) --fail_count_;
    return fail_mode_;
}

bool Standin::answer_failure(Response& response) {
    const std::string mode = take_failure();
    if (mode.empty()) return false;
    if (mode == "rejected") {
        reply_jsonapi(response, 422, jsonapi_errors(422, "Unprocessable Entity", "The related resource does not exist.",
                                                    "/data/relationships/variant"));
    } else if (mode == "unauthorized") {
        reply_jsonapi(response, 401, jsonapi_errors(401, "Unauthorized", "Unauthenticated."));
    } else if (mode == "server_error") {
        response.status = 500;
        response.set_content(Json{{"message", "An unexpected error occurred."}, {"request_id", uuid()}}.dump(),
                             "application/json");
    } else if (mode == "html_error") {
        response.status = 502;
        response.set_content("<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html");
    } else if (mode == "rate_limited") {
        reply_jsonapi(response, 429, jsonapi_errors(429, "Too Many Requests", "Too Many Attempts."));
        response.set_header("Retry-After", "1");
    } else if (mode == "slow") {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.slow_ms);
        while (!stopping_ && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;  // then answers normally, too late for the client
    } else if (mode == "close") {
        // Promise a body, send the headers, then drop the connection.
        response.set_content_provider(1024, jsonapi_type, [](std::size_t, std::size_t, httplib::DataSink&) { return false; });
    } else {
        return false;
    }
    return true;
}

bool Standin::authorized(const Request& request, Response& response) const {
    const std::string authorization = request.get_header_value("Authorization");
    const bool bearer = authorization.rfind("Bearer ", 0) == 0 && authorization.size() > 7;
    if (bearer && (options_.api_key.empty() || authorization == "Bearer " + options_.api_key)) return true;
    reply_jsonapi(response, 401, jsonapi_errors(401, "Unauthorized", "Unauthenticated."));
    return false;
}

void Standin::create_checkout(const Request& request, Response& response) {
    if (answer_failure(response) || !authorized(request, response)) return;
    if (request.get_header_value("Accept") != jsonapi_type || request.get_header_value("Content-Type") != jsonapi_type) {
        reply_jsonapi(response, 415, jsonapi_errors(415, "Unsupported Media Type", "Send and accept application/vnd.api+json."));
        return;
    }
    const Json body = Json::parse(request.body, nullptr, false);
    const bool shaped = body.is_object() && body.contains("data") && body["data"].is_object() &&
                        body["data"].value("type", "") == "checkouts";
    if (!shaped) {
        reply_jsonapi(response, 422, jsonapi_errors(422, "Unprocessable Entity", "The data.type field is required.", "/data/type"));
        return;
    }
    const Json& data = body["data"];
    auto relationship_id = [&data](const char* name) -> std::string {
        if (!data.contains("relationships") || !data["relationships"].contains(name)) return {};
        const Json& inner = data["relationships"][name]["data"];
        return inner.is_object() && inner.contains("id") && inner["id"].is_string() ? inner["id"].get<std::string>() : "";
    };
    if (relationship_id("store") != options_.store_id || relationship_id("variant") != options_.variant_id) {
        reply_jsonapi(response, 422, jsonapi_errors(422, "Unprocessable Entity", "The related resource does not exist.",
                                                    "/data/relationships/store"));
        return;
    }
    const Json attributes = data.contains("attributes") && data["attributes"].is_object() ? data["attributes"] : Json::object();
    Checkout checkout;
    checkout.id = uuid();
    const Json custom = attributes.contains("checkout_data") && attributes["checkout_data"].is_object() &&
                                attributes["checkout_data"].contains("custom")
                            ? attributes["checkout_data"]["custom"]
                            : Json();
    if (custom.is_object() && custom.contains("user_id")) {
        checkout.user_id = custom["user_id"].is_string() ? custom["user_id"].get<std::string>() : custom["user_id"].dump();
    }
    const Json product_options = attributes.contains("product_options") && attributes["product_options"].is_object()
                                     ? attributes["product_options"]
                                     : Json::object();
    checkout.redirect_url = product_options.value("redirect_url", "");
    {
        std::lock_guard<std::mutex> guard(mutex_);
        checkouts_[checkout.id] = checkout;
    }
    const std::int64_t t = now();
    const std::string url = base_url() + "/checkout/custom/" + checkout.id + "?signature=" + random_hex(32);
    Json out_attributes = {{"store_id", id_number(options_.store_id)}, {"variant_id", id_number(options_.variant_id)},
                           {"custom_price", nullptr}, {"product_options", product_options},
                           {"checkout_options", {{"embed", false}, {"media", true}, {"logo", true}, {"desc", true},
                                                 {"discount", true}, {"skip_trial", false}, {"quantity", 1},
                                                 {"subscription_preview", true}}},
                           {"checkout_data", {{"email", ""}, {"name", ""}, {"billing_address", Json::array()},
                                              {"tax_number", ""}, {"discount_code", ""},
                                              {"custom", custom.is_object() ? custom : Json::array()},
                                              {"variant_quantities", Json::array()}}},
                           {"preview", false}, {"expires_at", nullptr}, {"created_at", lemonsqueezy_time(t)},
                           {"updated_at", lemonsqueezy_time(t)}, {"test_mode", true}, {"url", url}};
    const std::string self = base_url() + "/v1/checkouts/" + checkout.id;
    reply_jsonapi(response, 201, Json{{"jsonapi", {{"version", "1.0"}}}, {"links", {{"self", self}}},
                                      {"data", {{"type", "checkouts"}, {"id", checkout.id}, {"attributes", out_attributes},
                                                {"links", {{"self", self}}}}}});
}

void Standin::get_subscription(const Request& request, Response& response) {
    if (answer_failure(response) || !authorized(request, response)) return;
    const std::string id = request.matches[1];
    Json resource = subscription_resource(id);
    if (resource.is_null()) {
        reply_jsonapi(response, 404, jsonapi_errors(404, "Not Found", "The resource could not be found."));
        return;
    }
    reply_jsonapi(response, 200, Json{{"jsonapi", {{"version", "1.0"}}},
                                      {"links", {{"self", base_url() + "/v1/subscriptions/" + id}}},
                                      {"data", resource}});
}

void Standin::list_subscriptions(const Request& request, Response& response) {
    if (answer_failure(response) || !authorized(request, response)) return;
    const std::string store = request.get_param_value("filter[store_id]");
    const int size = std::clamp(int_of(request.get_param_value("page[size]"), 10), 1, options_.page_size_max);
    const int number = std::max(1, int_of(request.get_param_value("page[number]"), 1));
    std::vector<std::string> ids;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        for (const auto& [id, attributes] : subscriptions_) {
            if (store.empty() || store == options_.store_id) ids.push_back(id);
        }
    }
    // Newest first, as the API orders lists by created_at descending.
    std::sort(ids.begin(), ids.end(), [](const std::string& a, const std::string& b) {
        return a.size() != b.size() ? a.size() > b.size() : a > b;
    });
    const int total = static_cast<int>(ids.size());
    const int last = std::max(1, (total + size - 1) / size);
    Json data = Json::array();
    for (int i = (number - 1) * size; i < std::min(total, number * size); ++i) {
        data.push_back(subscription_resource(ids[static_cast<std::size_t>(i)]));
    }
    auto link = [this, size, &store](int page) {
        std::string url = base_url() + "/v1/subscriptions?page%5Bnumber%5D=" + std::to_string(page) +
                          "&page%5Bsize%5D=" + std::to_string(size);
        if (!store.empty()) url += "&filter%5Bstore_id%5D=" + store;
        return url;
    };
    Json links = {{"first", link(1)}, {"last", link(last)}};
    if (number < last) links["next"] = link(number + 1);
    if (number > 1) links["prev"] = link(number - 1);
    const int from = total == 0 ? 0 : (number - 1) * size + 1;
    Json meta = {{"page", {{"currentPage", number}, {"from", from}, {"lastPage", last}, {"perPage", size},
                           {"to", std::min(total, number * size)}, {"total", total}}}};
    reply_jsonapi(response, 200, Json{{"jsonapi", {{"version", "1.0"}}}, {"meta", meta}, {"links", links}, {"data", data}});
}

void Standin::checkout_page(const Request& request, Response& response) {
    std::string user;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        auto found = checkouts_.find(request.matches[1]);
        if (found == checkouts_.end()) {
            response.status = 404;
            response.set_content("<!doctype html><p>This checkout does not exist.</p>", "text/html");
            return;
        }
        user = found->second.user_id;
    }
    std::string page = replaced(checkout_page_html, "{{ID}}", request.matches[1]);
    response.set_content(replaced(page, "{{USER}}", html_escape(user)), "text/html; charset=utf-8");
}

void Standin::pay_checkout(const Request& request, Response& response) {
    const std::string deliver = request.has_param("deliver") ? request.get_param_value("deliver") : "all";
    const std::string location = pay(request.matches[1], deliver);
    if (location.empty()) {
        response.status = 404;
        response.set_content("<!doctype html><p>This checkout does not exist.</p>", "text/html");
        return;
    }
    response.set_redirect(location, 303);
}

void Standin::install(httplib::Server& server) {
    server.Post("/v1/checkouts", [this](const Request& q, Response& s) { create_checkout(q, s); });
    server.Get(R"(/v1/subscriptions/(\d+))", [this](const Request& q, Response& s) { get_subscription(q, s); });
    server.Get("/v1/subscriptions", [this](const Request& q, Response& s) { list_subscriptions(q, s); });
    server.Get(R"(/checkout/custom/([0-9a-f-]+))", [this](const Request& q, Response& s) { checkout_page(q, s); });
    server.Post(R"(/checkout/custom/([0-9a-f-]+)/pay)", [this](const Request& q, Response& s) { pay_checkout(q, s); });
    install_control(server);
}

// The stand-in's own endpoints (tests and demo), beside the API.
void Standin::install_control(httplib::Server& server) {
    server.Get(R"(/checkout/custom/([0-9a-f-]+)/done)", [](const Request&, Response& response) {
        response.set_content("<!doctype html><h1>Thanks!</h1><p>Your subscription is active.</p>", "text/html");
    });

    server.Post("/_standin/fail", [this](const Request& request, Response& response) {
        const Json body = Json::parse(request.body, nullptr, false);
        if (!body.is_object() || !body.contains("mode") || !body["mode"].is_string()) {
            response.status = 400;
            response.set_content(R"({"error":"send {\"mode\": M, \"count\": N}"})", "application/json");
            return;
        }
        fail_next(body["mode"].get<std::string>(), body.contains("count") && body["count"].is_number_integer() ? body["count"].get<int>() : 1);
        response.set_content(R"({"ok":true})", "application/json");
    });

    server.Put(R"(/_standin/subscriptions/(\d+))", [this](const Request& request, Response& response) {
        const Json body = Json::parse(request.body, nullptr, false);
        const Json attributes = body.is_object() && body.contains("attributes") ? body["attributes"] : Json::object();
        put_subscription(request.matches[1], attributes);
        response.set_content(lemonsqueezy_json(Json{{"data", subscription_resource(request.matches[1])}}), jsonapi_type);
    });

    server.Post(R"(/_standin/subscriptions/(\d+)/webhook)", [this](const Request& request, Response& response) {
        const Json body = Json::parse(request.body, nullptr, false);
        const std::string event = body.is_object() ? body.value("event_name", "subscription_updated") : "subscription_updated";
        const std::string user = body.is_object() ? body.value("user_id", "") : "";
        if (subscription_resource(request.matches[1]).is_null()) {
            response.status = 404;
            return;
        }
        const int status = send_webhook(event, subscription_webhook_body(event, request.matches[1], user));
        response.set_content(Json{{"status", status}}.dump(), "application/json");
    });

    // Where webhooks go, for a receiver that learns its own port only after
    // it starts (it listens on port 0, so no free port is guessed and lost
    // to a race before it binds).
    server.Put("/_standin/webhook-url", [this](const Request& request, Response& response) {
        const Json body = Json::parse(request.body, nullptr, false);
        if (!body.is_object() || !body.contains("url") || !body["url"].is_string()) {
            response.status = 400;
            response.set_content(R"({"error":"send {\"url\": URL}"})", "application/json");
            return;
        }
        set_webhook_url(body["url"].get<std::string>());
        response.set_content(R"({"ok":true})", "application/json");
    });

    server.Get("/_standin/deliveries", [this](const Request&, Response& response) {
        Json list = Json::array();
        for (const Delivery& d : deliveries()) list.push_back({{"event_name", d.event_name}, {"status", d.status}});
        response.set_content(list.dump(), "application/json");
    });

    server.Post("/_standin/reset", [this](const Request&, Response& response) {
        std::lock_guard<std::mutex> guard(mutex_);
        subscriptions_.clear();
        checkouts_.clear();
        orders_.clear();
        deliveries_.clear();
        fail_mode_ = options_.fail_mode;
        fail_count_ = options_.fail_mode.empty() ? 0 : -1;
        response.set_content(R"({"ok":true})", "application/json");
    });
}

}  // namespace tokenmeter::standin
