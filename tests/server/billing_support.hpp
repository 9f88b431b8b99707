// Helpers for the billing suites: LemonSqueezy settings for a TestServer, a
// scripted provider for in-process webhook runs, subscription webhook bodies
// built by the stand-in (the same wire format it sends), and a view of a
// user's plan and plan-change receipts.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "billing/billing_service.hpp"
#include "billing/lemonsqueezy.hpp"
#include "billing/webhook_signature.hpp"
#include "ledger/views.hpp"
#include "standin.hpp"
#include "test_server.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter::test {

inline const std::string webhook_secret = "test-webhook-secret-0123456789";
inline const std::string api_key = "test-lemonsqueezy-api-key";

inline config::LemonSqueezySettings lemonsqueezy_settings(const std::string& api_base, std::int64_t timeout_ms = 1000) {
    config::LemonSqueezySettings settings;
    settings.api_base = api_base;
    settings.api_key = api_key;
    settings.store_id = "1";
    settings.pro_variant_id = "1";
    settings.webhook_secret = webhook_secret;
    settings.timeout_ms = timeout_ms;
    return settings;
}

// A directory on tmpfs when there is one: the permutation runs commit
// thousands of durable transactions, and fsync on a disk would dominate.
//
// On the PostgreSQL run of the suite: "", the fixture's fresh PostgreSQL
// database, so billing is covered on both backends.
inline std::string fast_db_url(const std::string& fallback_dir) {
    if (!postgres_server_url().empty()) return "";
    if (std::filesystem::is_directory("/dev/shm")) {
        std::string pattern = "/dev/shm/tokenmeter-billing-XXXXXX";
        if (::mkdtemp(pattern.data()) != nullptr) return "sqlite:" + pattern + "/ledger.db";
    }
    return "sqlite:" + fallback_dir + "/billing.db";
}

inline void remove_db_dir(const std::string& url) {
    if (url.rfind("sqlite:/dev/shm/", 0) != 0) return;
    std::error_code ignored;
    std::filesystem::remove_all(std::filesystem::path(url.substr(7)).parent_path(), ignored);
}

// Verifies like LemonSqueezy's provider; answers fetches from a script.
class ScriptedProvider final : public billing::PaymentProvider {
public:
    ScriptedProvider() : verifier_(billing::LemonSqueezyOptions{"", "", "1", "1", webhook_secret, 1000, 100}) {}

    std::string_view signature_header() const override { return "X-Signature"; }
    Result<billing::WebhookEvent, Error> verify_webhook(std::string_view body, std::string_view signature) const override {
        return verifier_.verify_webhook(body, signature);
    }
    Result<billing::CheckoutSession, billing::ProviderError> create_checkout(const billing::CheckoutRequest&) override {
        return unexpected(billing::ProviderError{"provider_unreachable", "scripted", 0, 0});
    }
    Result<billing::SubscriptionSnapshot, billing::ProviderError> fetch_subscription(std::string_view id) override {
        fetches += 1;
        if (down) return unexpected(billing::ProviderError{"provider_unreachable", "scripted outage", 0, 0});
        std::lock_guard<std::mutex> guard(mutex_);
        auto found = current_.find(std::string(id));
        if (found == current_.end()) return unexpected(billing::ProviderError{"provider_not_found", "unknown", 404, 0});
        return found->second;
    }
    Result<billing::SubscriptionPage, billing::ProviderError> list_subscriptions(std::string_view) override {
        std::lock_guard<std::mutex> guard(mutex_);
        billing::SubscriptionPage page;
        for (const auto& [id, snapshot] : current_) page.subscriptions.push_back(snapshot);
        return page;
    }
    Result<billing::OrderPage, billing::ProviderError> list_orders(std::string_view) override {
        std::lock_guard<std::mutex> guard(mutex_);
        return billing::OrderPage{orders_, ""};
    }
    Result<billing::InvoicePage, billing::ProviderError> list_refunded_invoices(std::string_view) override {
        std::lock_guard<std::mutex> guard(mutex_);
        return billing::InvoicePage{refunded_invoices_, ""};
    }
    // What reconcile lists: the store's orders and refunded invoices.
    void set_orders(std::vector<billing::OrderSnapshot> orders) {
        std::lock_guard<std::mutex> guard(mutex_);
        orders_ = std::move(orders);
    }
    void set_refunded_invoices(std::vector<billing::InvoiceSnapshot> invoices) {
        std::lock_guard<std::mutex> guard(mutex_);
        refunded_invoices_ = std::move(invoices);
    }
    void set_current(const billing::SubscriptionSnapshot& snapshot) {
        std::lock_guard<std::mutex> guard(mutex_);
        current_[snapshot.subscription_id] = snapshot;
    }

    std::atomic<int> fetches{0};
    std::atomic<bool> down{false};

private:
    billing::LemonSqueezyProvider verifier_;
    std::mutex mutex_;
    std::map<std::string, billing::SubscriptionSnapshot> current_;
    std::vector<billing::OrderSnapshot> orders_;
    std::vector<billing::InvoiceSnapshot> refunded_invoices_;
};

// A signed webhook delivery.
struct Delivery {
    std::string body;
    std::string signature;
};

inline Delivery signed_delivery(const std::string& body) {
    return Delivery{body, billing::hmac_sha256_hex(webhook_secret, body)};
}

// The subscription as the body says (for scripting the provider's answer).
inline billing::SubscriptionSnapshot snapshot_of(const std::string& body) {
    auto document = nlohmann::json::parse(body);
    return billing::parse_subscription_resource(document["data"]).value();
}

// The same event delivered anew: same snapshot, another webhook id, so other bytes.
inline std::string with_new_webhook_id(const std::string& body, const std::string& webhook_id) {
    auto document = nlohmann::json::parse(body);
    document["meta"]["webhook_id"] = webhook_id;
    return standin::lemonsqueezy_json(document);
}

// A subscription_payment_* body: an invoice naming its subscription.
inline std::string invoice_body(const std::string& event_name, const std::string& subscription_id,
                                const std::string& user_id, const std::string& invoice_id, std::int64_t updated_at) {
    std::ifstream file(std::string(TM_LEMONSQUEEZY_DIR) + "/webhook_subscription_payment_success.json");
    std::stringstream text;
    text << file.rdbuf();
    auto document = nlohmann::json::parse(text.str());
    document["meta"]["event_name"] = event_name;
    document["meta"]["webhook_id"] = "invoice-" + invoice_id + "-" + event_name;
    document["meta"]["custom_data"]["user_id"] = user_id;
    document["data"]["id"] = invoice_id;
    document["data"]["attributes"]["subscription_id"] = std::stoll(subscription_id);
    document["data"]["attributes"]["updated_at"] = standin::lemonsqueezy_time(updated_at);
    return standin::lemonsqueezy_json(document);
}

struct PlanView {
    std::string plan;
    std::optional<std::int64_t> tokens_limit;
    std::int64_t tokens_used = 0;
    std::int64_t period_end = 0;
    int plan_changes = 0;
};

// The user's plan as a read shows it (lazy changes applied), and how many
// plan_change receipts the ledger issued for them.
inline PlanView plan_view(App& app, const std::string& user_id) {
    PlanView view;
    auto snapshot = app.ledger().snapshot(user_id);
    if (snapshot.kind == ledger::ReplyKind::done) {
        view.plan = snapshot.claims.plan;
        view.tokens_limit = snapshot.claims.balance.tokens_limit;
        view.tokens_used = snapshot.claims.balance.tokens_used;
        view.period_end = snapshot.claims.period_end;
    }
    for (const std::string& receipt : app.store().read_receipts(user_id, 1, 100000)) {
        auto claims = decode_receipt_claims(receipt);
        if (claims && claims->event == "plan_change") view.plan_changes += 1;
    }
    return view;
}

}  // namespace tokenmeter::test
