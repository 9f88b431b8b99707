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

// An id member's text, whether the JSON holds it as a number or a string.
std::string id_text_of(const Json& value) {
    if (value.is_string()) return value.get<std::string>();
    if (value.is_number_integer()) return std::to_string(value.get<std::int64_t>());
    return {};
}

// Numeric ids in descending order: the API lists newest first, and ids grow.
bool newest_first(const std::string& a, const std::string& b) { return a.size() != b.size() ? a.size() > b.size() : a > b; }

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
    return options_.public_url.empty() ? server_.base_url() : options_.public_url;
}

int Standin::bind(const std::string& host, int port) {
    return server_.bind(host, port, [this](httplib::Server& server) { install(server); });
}

bool Standin::serve() { return server_.serve(); }

int Standin::start(const std::string& host, int port) {
    const int bound = bind(host, port);
    if (bound > 0) server_.serve_in_background();
    return bound;
}

void Standin::stop() {
    stopping_ = true;
    server_.stop();
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

namespace {

// The relationships LemonSqueezy lists on each kind of resource.
const std::map<std::string, std::vector<const char*>>& relations_by_collection() {
    static const std::map<std::string, std::vector<const char*>> relations = {
        {"subscriptions", {"store", "customer", "order", "order-item", "product", "variant", "subscription-items",
                           "subscription-invoices"}},
        {"orders", {"store", "customer", "order-items", "subscriptions", "license-keys", "discount-redemptions"}},
        {"subscription-invoices", {"store", "subscription", "customer"}},
    };
    return relations;
}

// A JSON:API resource object of /v1/`collection` (the type is the collection's name).
Json resource_object(const std::string& base, const std::string& collection, const std::string& id, Json attributes) {
    const std::string self = base + "/v1/" + collection + "/" + id;
    Json relationships = Json::object();
    for (const char* name : relations_by_collection().at(collection)) {
        relationships[name] = {{"links", {{"related", self + "/" + name}, {"self", self + "/relationships/" + name}}}};
    }
    return Json{{"type", collection}, {"id", id}, {"attributes", std::move(attributes)},
                {"relationships", relationships}, {"links", {{"self", self}}}};
}

Json webhook_document(const std::string& event_name, const std::string& user_id, Json data) {
    Json meta = {{"test_mode", true}, {"event_name", event_name}, {"webhook_id", uuid()}};
    if (!user_id.empty()) meta["custom_data"] = {{"user_id", user_id}};
    return Json{{"meta", meta}, {"data", std::move(data)}};
}

std::int64_t cents_in(const Json& attributes, const char* key) {
    return attributes.contains(key) && attributes[key].is_number_integer() ? attributes[key].get<std::int64_t>() : 0;
}

// A refund of `amount_cents` more (everything left when negative), capped
// at the total: refunded_amount is cumulative, as LemonSqueezy keeps it.
// False when nothing is left to refund.
bool apply_refund(Json& attributes, std::int64_t amount_cents, const std::string& at) {
    const std::int64_t total = cents_in(attributes, "total");
    const std::int64_t before = cents_in(attributes, "refunded_amount");
    if (before >= total) return false;
    const std::int64_t after = amount_cents < 0 ? total : std::min(total, before + amount_cents);
    const bool full = after == total;
    attributes["refunded_amount"] = after;
    attributes["refunded_amount_usd"] = after;
    attributes["refunded_amount_formatted"] = dollars(after);
    attributes["status"] = full ? "refunded" : "partial_refund";
    attributes["status_formatted"] = full ? "Refunded" : "Partial refund";
    attributes["refunded"] = true;
    attributes["refunded_at"] = at;
    attributes["updated_at"] = at;
    return true;
}

// Merges `changes` into `stored` (one level; `deep` members one level deeper).
void merge_attributes(Json& stored, const Json& changes, const char* deep = nullptr) {
    if (!changes.is_object()) return;
    for (const auto& item : changes.items()) {
        if (deep != nullptr && item.key() == deep && item.value().is_object() && stored[deep].is_object()) {
            for (const auto& inner : item.value().items()) stored[deep][inner.key()] = inner.value();
        } else {
            stored[item.key()] = item.value();
        }
    }
}

}  // namespace

std::string dollars(std::int64_t cents) {
    const std::int64_t magnitude = cents < 0 ? -cents : cents;
    char text[48];
    std::snprintf(text, sizeof text, "%s$%lld.%02lld", cents < 0 ? "-" : "", static_cast<long long>(magnitude / 100),
                  static_cast<long long>(magnitude % 100));
    return text;
}

Json Standin::subscription_urls(const std::string& id, const Json& attributes) const {
    // Signed and short-lived like LemonSqueezy's (customer_portal observed to
    // expire after about 6 hours, SPEC.md §6). Nothing checks the signature
    // here; it is random, so every fetch hands out a new URL, as the real API
    // does, and a client that stored one would be caught by tests.
    const std::int64_t expires = now() + 6 * 3600;
    const std::int64_t customer = cents_in(attributes, "customer_id");
    const std::string user = std::to_string(7000000 + customer % 1000000);  // LemonSqueezy's user, not the customer id
    const std::string query = "?expires=" + std::to_string(expires);
    return Json{{"update_payment_method", base_url() + "/subscription/" + id + "/payment-details" + query +
                                              "&signature=" + random_hex(32)},
                {"customer_portal", base_url() + "/billing" + query + "&user=" + user + "&signature=" + random_hex(32)},
                {"customer_portal_update_subscription",
                 base_url() + "/billing/" + id + "/update" + query + "&user=" + user + "&signature=" + random_hex(32)}};
}

Json Standin::subscription_resource(const std::string& id) const {
    Json attributes;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        auto found = subscriptions_.find(id);
        if (found == subscriptions_.end()) return nullptr;
        attributes = found->second;
    }
    attributes["urls"] = subscription_urls(id, attributes);
    return resource_object(base_url(), "subscriptions", id, std::move(attributes));
}

std::string Standin::subscription_webhook_body(const std::string& event_name, const std::string& id,
                                               const std::string& user_id) const {
    return lemonsqueezy_json(webhook_document(event_name, user_id, subscription_resource(id)));
}

std::int64_t Standin::price_of(const std::string& variant_id) const {
    auto found = options_.variant_prices.find(variant_id);
    return found == options_.variant_prices.end() ? options_.default_price_cents : found->second;
}

bool Standin::is_pack(const std::string& variant_id) const {
    return std::find(options_.pack_variant_ids.begin(), options_.pack_variant_ids.end(), variant_id) !=
           options_.pack_variant_ids.end();
}

bool Standin::known_variant(const std::string& variant_id) const {
    return variant_id == options_.variant_id || is_pack(variant_id) || options_.variant_prices.count(variant_id) > 0;
}

std::int64_t Standin::customer_locked(const std::string& user_id) {
    auto found = customers_.find(user_id);
    if (found != customers_.end()) return found->second;
    const std::int64_t customer = next_id_++;
    customers_[user_id] = customer;
    return customer;
}

std::string Standin::customer_of_user(const std::string& user_id) {
    std::lock_guard<std::mutex> guard(mutex_);
    return std::to_string(customer_locked(user_id));
}

Json Standin::new_order_attributes(const std::string& id, const std::string& variant_id, std::int64_t customer_id,
                                   std::int64_t at) {
    const std::int64_t price = price_of(variant_id);
    const bool pack = is_pack(variant_id);
    const std::string stamp = lemonsqueezy_time(at, ++micro_);
    return Json{{"store_id", id_number(options_.store_id)}, {"customer_id", customer_id}, {"identifier", uuid()},
                {"order_number", std::stoll(id) % 100000}, {"user_name", "Demo User"},
                {"user_email", "buyer-" + std::to_string(customer_id) + "@example.com"}, {"currency", "USD"},
                {"currency_rate", "1.00000000"}, {"subtotal", price}, {"discount_total", 0}, {"tax", 0}, {"total", price},
                {"refunded_amount", 0}, {"subtotal_usd", price}, {"discount_total_usd", 0}, {"tax_usd", 0},
                {"total_usd", price}, {"refunded_amount_usd", 0}, {"tax_name", nullptr}, {"tax_rate", "0.00"},
                {"tax_inclusive", false}, {"status", "paid"}, {"status_formatted", "Paid"}, {"refunded", false},
                {"refunded_at", nullptr}, {"subtotal_formatted", dollars(price)}, {"discount_total_formatted", "$0.00"},
                {"tax_formatted", "$0.00"}, {"total_formatted", dollars(price)},
                {"refunded_amount_formatted", "$0.00"},
                {"first_order_item", {{"id", std::stoll(id) + 1}, {"order_id", std::stoll(id)}, {"product_id", pack ? 200002 : 200001},
                                      {"variant_id", id_number(variant_id)},
                                      {"product_name", pack ? "tokenmeter Credits" : "tokenmeter Pro"},
                                      {"variant_name", pack ? "Credit pack" : "Monthly"}, {"price", price},
                                      {"quantity", 1}, {"created_at", stamp}, {"updated_at", stamp}, {"test_mode", true}}},
                {"urls", {{"receipt", base_url() + "/my-orders/" + id}}},
                {"created_at", stamp}, {"updated_at", stamp}, {"test_mode", true}};
}

Json Standin::new_invoice_attributes(const std::string& id, const std::string& subscription_id, std::int64_t customer_id,
                                     std::int64_t total, std::int64_t at) {
    const std::string stamp = lemonsqueezy_time(at, ++micro_);
    return Json{{"store_id", id_number(options_.store_id)}, {"subscription_id", std::stoll(subscription_id)},
                {"customer_id", customer_id}, {"user_name", "Demo User"},
                {"user_email", "buyer-" + std::to_string(customer_id) + "@example.com"}, {"billing_reason", "initial"},
                {"card_brand", "visa"}, {"card_last_four", "4242"}, {"currency", "USD"}, {"currency_rate", "1.00000000"},
                {"status", "paid"}, {"status_formatted", "Paid"}, {"refunded", false}, {"refunded_at", nullptr},
                {"subtotal", total}, {"discount_total", 0}, {"tax", 0}, {"tax_inclusive", false}, {"total", total},
                {"refunded_amount", 0}, {"subtotal_usd", total}, {"discount_total_usd", 0}, {"tax_usd", 0},
                {"total_usd", total}, {"refunded_amount_usd", 0}, {"subtotal_formatted", dollars(total)},
                {"discount_total_formatted", "$0.00"}, {"tax_formatted", "$0.00"}, {"total_formatted", dollars(total)},
                {"refunded_amount_formatted", "$0.00"},
                {"urls", {{"invoice_url", base_url() + "/my-orders/" + uuid() + "/subscription-invoice/" + id +
                                              "?signature=" + random_hex(32)}}},
                {"created_at", stamp}, {"updated_at", stamp}, {"test_mode", true}};
}

Json Standin::put_order(const std::string& id, const Json& attributes, const std::string& user_id) {
    std::lock_guard<std::mutex> guard(mutex_);
    Json& stored = orders_[id];
    if (stored.is_null()) {
        stored = new_order_attributes(id, options_.variant_id, customer_locked(user_id.empty() ? "order-" + id : user_id), now());
    }
    const bool explicit_time = attributes.is_object() && attributes.contains("updated_at");
    merge_attributes(stored, attributes, "first_order_item");
    if (!explicit_time) stored["updated_at"] = lemonsqueezy_time(now(), ++micro_);
    if (!user_id.empty()) order_users_[id] = user_id;
    return stored;
}

Json Standin::put_invoice(const std::string& id, const Json& attributes, const std::string& user_id) {
    std::lock_guard<std::mutex> guard(mutex_);
    Json& stored = invoices_[id];
    if (stored.is_null()) {
        const std::string subscription = attributes.is_object() && attributes.contains("subscription_id")
                                             ? id_text_of(attributes["subscription_id"])
                                             : std::string("1");
        stored = new_invoice_attributes(id, subscription, customer_locked(user_id.empty() ? "invoice-" + id : user_id),
                                        options_.default_price_cents, now());
    }
    const bool explicit_time = attributes.is_object() && attributes.contains("updated_at");
    merge_attributes(stored, attributes);
    if (!explicit_time) stored["updated_at"] = lemonsqueezy_time(now(), ++micro_);
    if (!user_id.empty()) subscription_users_.emplace(id_text_of(stored["subscription_id"]), user_id);
    return stored;
}

Json Standin::order_resource(const std::string& id) const {
    std::lock_guard<std::mutex> guard(mutex_);
    auto found = orders_.find(id);
    return found == orders_.end() ? Json() : resource_object(base_url(), "orders", id, found->second);
}

Json Standin::invoice_resource(const std::string& id) const {
    std::lock_guard<std::mutex> guard(mutex_);
    auto found = invoices_.find(id);
    return found == invoices_.end() ? Json() : resource_object(base_url(), "subscription-invoices", id, found->second);
}

std::string Standin::order_webhook_body(const std::string& event_name, const std::string& id, const std::string& user_id) const {
    return lemonsqueezy_json(webhook_document(event_name, user_id, order_resource(id)));
}

std::string Standin::invoice_webhook_body(const std::string& event_name, const std::string& id,
                                          const std::string& user_id) const {
    return lemonsqueezy_json(webhook_document(event_name, user_id, invoice_resource(id)));
}

std::vector<std::string> Standin::invoices_of_subscription(const std::string& subscription_id) const {
    std::vector<std::string> ids;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        for (const auto& [id, attributes] : invoices_) {
            if (id_text_of(attributes["subscription_id"]) == subscription_id) ids.push_back(id);
        }
    }
    std::sort(ids.begin(), ids.end(), newest_first);
    return ids;
}

Json Standin::refund(std::map<std::string, Json>& resources, const std::string& id, std::int64_t amount_cents) {
    std::lock_guard<std::mutex> guard(mutex_);
    auto found = resources.find(id);
    if (found == resources.end()) return nullptr;
    if (!apply_refund(found->second, amount_cents, lemonsqueezy_time(now(), ++micro_))) return nullptr;
    return found->second;
}

std::string Standin::user_of_invoice(const std::string& id) const {
    std::lock_guard<std::mutex> guard(mutex_);
    auto invoice = invoices_.find(id);
    if (invoice == invoices_.end()) return {};
    auto user = subscription_users_.find(id_text_of(invoice->second["subscription_id"]));
    return user == subscription_users_.end() ? std::string() : user->second;
}

Json Standin::refund_order(const std::string& id, std::int64_t amount_cents) {
    Json after = refund(orders_, id, amount_cents);
    if (after.is_null()) return after;
    std::string user;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        auto found = order_users_.find(id);
        if (found != order_users_.end()) user = found->second;
    }
    send_webhook("order_refunded", order_webhook_body("order_refunded", id, user));
    return after;
}

Json Standin::refund_invoice(const std::string& id, std::int64_t amount_cents) {
    Json after = refund(invoices_, id, amount_cents);
    if (after.is_null()) return after;
    send_webhook("subscription_payment_refunded",
                 invoice_webhook_body("subscription_payment_refunded", id, user_of_invoice(id)));
    return after;
}

int Standin::send_webhook(const std::string& event_name, const std::string& body) {
    Delivery delivery{event_name, body, hex_hmac_sha256(secret(), body), 0, false};
    std::string url;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        url = options_.webhook_url;
        if (drop_count_ > 0) {
            // Lost for good, as after LemonSqueezy's last retry: only reconciliation finds it.
            --drop_count_;
            delivery.dropped = true;
            deliveries_.push_back(delivery);
            return 0;
        }
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

void Standin::drop_next_deliveries(int count) {
    std::lock_guard<std::mutex> guard(mutex_);
    drop_count_ = std::max(0, count);
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

std::string Standin::order_of_checkout(const std::string& checkout_id) const {
    std::lock_guard<std::mutex> guard(mutex_);
    auto found = checkouts_.find(checkout_id);
    return found == checkouts_.end() ? std::string() : found->second.order_id;
}

std::vector<Delivery> Standin::deliveries() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return deliveries_;
}

std::optional<Standin::Purchase> Standin::record_purchase(const std::string& checkout_id) {
    std::lock_guard<std::mutex> guard(mutex_);
    auto found = checkouts_.find(checkout_id);
    if (found == checkouts_.end()) return std::nullopt;
    Checkout& checkout = found->second;
    if (!checkout.order_id.empty()) return Purchase{checkout, true};  // paid already: nothing happens twice
    const std::int64_t t = now();
    const std::int64_t customer = customer_locked(checkout.user_id);
    checkout.order_id = std::to_string(next_id_);
    next_id_ += 2;  // the order and its first order item
    orders_[checkout.order_id] = new_order_attributes(checkout.order_id, checkout.variant_id, customer, t);
    order_users_[checkout.order_id] = checkout.user_id;
    if (!is_pack(checkout.variant_id)) {
        checkout.subscription_id = std::to_string(next_id_++);
        const std::string invoice = std::to_string(next_id_++);
        invoices_[invoice] = new_invoice_attributes(invoice, checkout.subscription_id, customer, price_of(checkout.variant_id), t);
        subscription_users_[checkout.subscription_id] = checkout.user_id;
    }
    return Purchase{checkout, false};
}

std::string Standin::pay(const std::string& checkout_id, const std::string& deliver) {
    const std::optional<Purchase> purchase = record_purchase(checkout_id);
    if (!purchase) return {};
    const Checkout& checkout = purchase->checkout;
    const std::string done =
        checkout.redirect_url.empty() ? "/checkout/custom/" + checkout_id + "/done" : checkout.redirect_url;
    if (purchase->paid_before) return done;
    if (!checkout.subscription_id.empty()) {
        const Json order = order_resource(checkout.order_id)["attributes"];
        put_subscription(checkout.subscription_id,
                         {{"order_id", std::stoll(checkout.order_id)}, {"order_item_id", std::stoll(checkout.order_id) + 1},
                          {"customer_id", order["customer_id"]}, {"user_email", order["user_email"]},
                          {"variant_id", id_number(checkout.variant_id)}, {"billing_anchor", 1}});
    }
    // LemonSqueezy sends the order, the subscription and its first payment as separate events.
    if (deliver != "none") {
        send_webhook("order_created", order_webhook_body("order_created", checkout.order_id, checkout.user_id));
    }
    if (!checkout.subscription_id.empty() && (deliver == "all" || deliver.empty())) {
        send_webhook("subscription_created",
                     subscription_webhook_body("subscription_created", checkout.subscription_id, checkout.user_id));
        const std::string invoice = invoices_of_subscription(checkout.subscription_id).front();
        send_webhook("subscription_payment_success",
                     invoice_webhook_body("subscription_payment_success", invoice, checkout.user_id));
    }
    return done;
}

namespace {

const char* checkout_page_html = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Checkout · {{PRODUCT}} (LemonSqueezy stand-in)</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}
.card{border:1px solid #ddd;border-radius:12px;padding:1.5rem}button{font-size:1.1rem;padding:.6rem 1.6rem;
background:#7047eb;color:#fff;border:0;border-radius:8px;cursor:pointer}small{color:#666}</style></head>
<body><div class="card"><h1>{{PRODUCT}}</h1><p>{{PRICE}}</p>
<p><small>Local LemonSqueezy stand-in: no card is charged. Paying sends signed
{{EVENTS}} webhooks for user <code>{{USER}}</code>.</small></p>
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
    const std::string variant = relationship_id("variant");
    if (relationship_id("store") != options_.store_id || !known_variant(variant)) {
        const bool store_wrong = relationship_id("store") != options_.store_id;
        reply_jsonapi(response, 422, jsonapi_errors(422, "Unprocessable Entity", "The related resource does not exist.",
                                                    store_wrong ? "/data/relationships/store" : "/data/relationships/variant"));
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
    checkout.variant_id = variant;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        checkouts_[checkout.id] = checkout;
    }
    const std::int64_t t = now();
    const std::string url = base_url() + "/checkout/custom/" + checkout.id + "?signature=" + random_hex(32);
    Json out_attributes = {{"store_id", id_number(options_.store_id)}, {"variant_id", id_number(variant)},
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

void Standin::get_resource(const Request& request, Response& response, const std::string& collection,
                           const Json& resource) {
    if (resource.is_null()) {
        reply_jsonapi(response, 404, jsonapi_errors(404, "Not Found", "The resource could not be found."));
        return;
    }
    reply_jsonapi(response, 200, Json{{"jsonapi", {{"version", "1.0"}}},
                                      {"links", {{"self", base_url() + "/v1/" + collection + "/" + request.matches[1].str()}}},
                                      {"data", resource}});
}

void Standin::reply_page(const Request& request, Response& response, const std::string& collection,
                         std::vector<std::string> ids, const Filters& filters,
                         const std::function<Json(const std::string&)>& resource) const {
    const int size = std::clamp(int_of(request.get_param_value("page[size]"), 10), 1, options_.page_size_max);
    const int number = std::max(1, int_of(request.get_param_value("page[number]"), 1));
    // Newest first, as the API orders lists by created_at descending.
    std::sort(ids.begin(), ids.end(), newest_first);
    const int total = static_cast<int>(ids.size());
    const int last = std::max(1, (total + size - 1) / size);
    Json data = Json::array();
    for (int i = (number - 1) * size; i < std::min(total, number * size); ++i) {
        data.push_back(resource(ids[static_cast<std::size_t>(i)]));
    }
    auto link = [this, size, &collection, &filters](int page) {
        std::string url = base_url() + "/v1/" + collection + "?page%5Bnumber%5D=" + std::to_string(page) +
                          "&page%5Bsize%5D=" + std::to_string(size);
        for (const auto& [name, value] : filters) {
            if (!value.empty()) url += "&filter%5B" + name + "%5D=" + httplib::detail::encode_query_param(value);
        }
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

void Standin::list_subscriptions(const Request& request, Response& response) {
    if (answer_failure(response) || !authorized(request, response)) return;
    const std::string store = request.get_param_value("filter[store_id]");
    std::vector<std::string> ids;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        for (const auto& [id, attributes] : subscriptions_) {
            if (store.empty() || store == options_.store_id) ids.push_back(id);
        }
    }
    reply_page(request, response, "subscriptions", std::move(ids), {{"store_id", store}},
               [this](const std::string& id) { return subscription_resource(id); });
}

void Standin::list_orders(const Request& request, Response& response) {
    if (answer_failure(response) || !authorized(request, response)) return;
    const std::string store = request.get_param_value("filter[store_id]");
    std::vector<std::string> ids;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        for (const auto& [id, attributes] : orders_) {
            if (store.empty() || store == options_.store_id) ids.push_back(id);
        }
    }
    reply_page(request, response, "orders", std::move(ids), {{"store_id", store}},
               [this](const std::string& id) { return order_resource(id); });
}

void Standin::list_invoices(const Request& request, Response& response) {
    if (answer_failure(response) || !authorized(request, response)) return;
    const std::string store = request.get_param_value("filter[store_id]");
    const std::string subscription = request.get_param_value("filter[subscription_id]");
    const std::string refunded = request.get_param_value("filter[refunded]");
    std::vector<std::string> ids;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        for (const auto& [id, attributes] : invoices_) {
            const bool in_store = store.empty() || store == options_.store_id;
            const bool of_subscription = subscription.empty() || id_text_of(attributes["subscription_id"]) == subscription;
            const bool is_refunded = attributes.value("refunded", false);
            const bool refund_matches = refunded.empty() || (refunded == "true") == is_refunded;
            if (in_store && of_subscription && refund_matches) ids.push_back(id);
        }
    }
    reply_page(request, response, "subscription-invoices", std::move(ids),
               {{"store_id", store}, {"subscription_id", subscription}, {"refunded", refunded}},
               [this](const std::string& id) { return invoice_resource(id); });
}

void Standin::checkout_page(const Request& request, Response& response) {
    Checkout checkout;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        auto found = checkouts_.find(request.matches[1]);
        if (found == checkouts_.end()) {
            response.status = 404;
            response.set_content("<!doctype html><p>This checkout does not exist.</p>", "text/html");
            return;
        }
        checkout = found->second;
    }
    const bool pack = is_pack(checkout.variant_id);
    const std::string price = dollars(price_of(checkout.variant_id));
    std::string page = replaced(checkout_page_html, "{{ID}}", request.matches[1]);
    page = replaced(page, "{{PRODUCT}}", pack ? "tokenmeter Credits" : "tokenmeter Pro");
    page = replaced(page, "{{PRICE}}", pack ? price + " once" : price + " / month");
    page = replaced(page, "{{EVENTS}}",
                    pack ? "<code>order_created</code>"
                         : "<code>order_created</code>, <code>subscription_created</code> and "
                           "<code>subscription_payment_success</code>");
    response.set_content(replaced(page, "{{USER}}", html_escape(checkout.user_id)), "text/html; charset=utf-8");
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
    server.Get(R"(/v1/subscriptions/(\d+))", [this](const Request& q, Response& s) {
        if (answer_failure(s) || !authorized(q, s)) return;
        get_resource(q, s, "subscriptions", subscription_resource(q.matches[1]));
    });
    server.Get("/v1/subscriptions", [this](const Request& q, Response& s) { list_subscriptions(q, s); });
    server.Get(R"(/v1/orders/(\d+))", [this](const Request& q, Response& s) {
        if (answer_failure(s) || !authorized(q, s)) return;
        get_resource(q, s, "orders", order_resource(q.matches[1]));
    });
    server.Get("/v1/orders", [this](const Request& q, Response& s) { list_orders(q, s); });
    server.Get(R"(/v1/subscription-invoices/(\d+))", [this](const Request& q, Response& s) {
        if (answer_failure(s) || !authorized(q, s)) return;
        get_resource(q, s, "subscription-invoices", invoice_resource(q.matches[1]));
    });
    server.Get("/v1/subscription-invoices", [this](const Request& q, Response& s) { list_invoices(q, s); });
    server.Get(R"(/checkout/custom/([0-9a-f-]+))", [this](const Request& q, Response& s) { checkout_page(q, s); });
    server.Post(R"(/checkout/custom/([0-9a-f-]+)/pay)", [this](const Request& q, Response& s) { pay_checkout(q, s); });
    install_control(server);
    install_refunds(server);
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
        for (const Delivery& d : deliveries()) {
            list.push_back({{"event_name", d.event_name}, {"status", d.status}, {"dropped", d.dropped}});
        }
        response.set_content(list.dump(), "application/json");
    });

    server.Post("/_standin/reset", [this](const Request&, Response& response) {
        std::lock_guard<std::mutex> guard(mutex_);
        subscriptions_.clear();
        checkouts_.clear();
        orders_.clear();
        invoices_.clear();
        order_users_.clear();
        subscription_users_.clear();
        customers_.clear();
        deliveries_.clear();
        drop_count_ = 0;
        fail_mode_ = options_.fail_mode;
        fail_count_ = options_.fail_mode.empty() ? 0 : -1;
        response.set_content(R"({"ok":true})", "application/json");
    });
}

namespace {

// {"amount": CENTS}: a positive amount, or none for everything left (the
// API's own refund call refunds in full without an amount). -1 stands for
// "everything left"; nullopt for a body that is not one of those.
std::optional<std::int64_t> refund_amount_of(const std::string& body_text) {
    if (body_text.empty()) return -1;
    const Json body = Json::parse(body_text, nullptr, false);
    if (!body.is_object()) return std::nullopt;
    if (!body.contains("amount") || body["amount"].is_null()) return -1;
    if (!body["amount"].is_number_integer() || body["amount"].get<std::int64_t>() <= 0) return std::nullopt;
    return body["amount"].get<std::int64_t>();
}

void reply_control_error(Response& response, int status, const std::string& message) {
    response.status = status;
    response.set_content(Json{{"error", message}}.dump(), "application/json");
}

}  // namespace

// Orders, invoices and their refunds; dropped deliveries; the portal page.
void Standin::install_refunds(httplib::Server& server) {
    using Refund = Json (Standin::*)(const std::string&, std::int64_t);
    auto refund_route = [this](Refund refund_of, const char* what) {
        return [this, refund_of, what](const Request& request, Response& response) {
            const std::optional<std::int64_t> amount = refund_amount_of(request.body);
            if (!amount) return reply_control_error(response, 400, "send {\"amount\": CENTS} with a positive amount");
            const Json after = (this->*refund_of)(request.matches[1], *amount);
            if (after.is_null()) {
                return reply_control_error(response, 404, std::string("no such ") + what + ", or nothing left to refund");
            }
            response.set_content(lemonsqueezy_json(Json{{"attributes", after}}), jsonapi_type);
        };
    };
    server.Post(R"(/_standin/orders/(\d+)/refund)", refund_route(&Standin::refund_order, "order"));
    server.Post(R"(/_standin/invoices/(\d+)/refund)", refund_route(&Standin::refund_invoice, "invoice"));

    using Put = Json (Standin::*)(const std::string&, const Json&, const std::string&);
    auto put_route = [this](Put put, Json (Standin::*resource_of)(const std::string&) const) {
        return [this, put, resource_of](const Request& request, Response& response) {
            const Json body = Json::parse(request.body, nullptr, false);
            const Json attributes = body.is_object() && body.contains("attributes") ? body["attributes"] : Json::object();
            const std::string user = body.is_object() && body.contains("user_id") ? id_text_of(body["user_id"]) : "";
            (this->*put)(request.matches[1], attributes, user);
            response.set_content(lemonsqueezy_json(Json{{"data", (this->*resource_of)(request.matches[1])}}), jsonapi_type);
        };
    };
    server.Put(R"(/_standin/orders/(\d+))", put_route(&Standin::put_order, &Standin::order_resource));
    server.Put(R"(/_standin/invoices/(\d+))", put_route(&Standin::put_invoice, &Standin::invoice_resource));

    server.Post("/_standin/drop", [this](const Request& request, Response& response) {
        const Json body = Json::parse(request.body, nullptr, false);
        if (!body.is_object() || !body.contains("count") || !body["count"].is_number_integer()) {
            return reply_control_error(response, 400, "send {\"count\": N}");
        }
        drop_next_deliveries(body["count"].get<int>());
        response.set_content(R"({"ok":true})", "application/json");
    });

    // Where urls.customer_portal leads (the demo's "Manage billing").
    server.Get("/billing", [](const Request& request, Response& response) {
        const std::string user = request.get_param_value("user");
        response.set_content("<!doctype html><h1>Customer portal</h1><p>LemonSqueezy stand-in: customer " +
                                 html_escape(user) + ". Plan changes and pauses are made with PUT /_standin/subscriptions/{id}.</p>",
                             "text/html; charset=utf-8");
    });
}

}  // namespace tokenmeter::standin
