// The assembled server: configuration in, a listening API out. `tokenmeter
// serve` runs one; the server tests run one in-process on a free port.
#pragma once

#include <memory>
#include <string>

#include "alerts/alert_courier.hpp"
#include "billing/billing_setup.hpp"
#include "billing/reconcile_timer.hpp"
#include "clock.hpp"
#include "config/config.hpp"
#include "http/api.hpp"
#include "http/authenticator.hpp"
#include "http/http_server.hpp"
#include "http/static_files.hpp"
#include "http/metrics.hpp"
#include "ledger/ledger_service.hpp"
#include "ledger/live_price_book.hpp"
#include "live/usage_hub.hpp"
#include "storage/store.hpp"
#include "tokenmeter/catalog.hpp"
#include "tokenmeter/ed25519.hpp"
#include "tokens/token_counter.hpp"

namespace tokenmeter {

// Opens the store a `--db` URL names (sqlite:PATH or postgres://…).
Result<std::unique_ptr<storage::LedgerStore>, Error> open_store(const std::string& url);

// Creates what a local demo needs (signing key, JWT secret, service key) in
// config.demo_dir when missing, fills them into `config`, and says where.
std::optional<Error> prepare_demo(config::ServerConfig& config, std::ostream& log);

class App {
public:
    // Builds every part; nothing listens yet.
    static Result<std::unique_ptr<App>, Error> create(config::ServerConfig config, std::shared_ptr<const Clock> clock);
    ~App();

    int port() const { return port_; }
    // Binds the listen address (port 0: a free one) and serves on background
    // threads; returns the port.
    Result<int, Error> start();
    // Graceful: live streams end, in-flight requests finish, queued ledger
    // changes become durable, then everything stops.
    void shutdown();

    ledger::LedgerService& ledger() { return *ledger_; }
    storage::LedgerStore& store() { return *store_; }
    const SigningKey& signing_key() const { return *signing_key_; }
    const ledger::LivePriceBook& prices() const { return *prices_; }
    // Reads the catalog file again (SIGHUP): its versions price everything
    // authorized or recorded from now on. On any error nothing changes.
    // Returns what is in force now and what starts next, for the log.
    Result<std::string, Error> reload_price_book();
    http::Api& api() { return *api_; }
    http::HttpServer& http() { return *http_; }
    // Null when LemonSqueezy is not configured.
    billing::BillingService* billing() { return billing_.service.get(); }
    // Null when no webhook endpoint is configured.
    alerts::AlertCourier* alert_courier() { return courier_.get(); }

private:
    App() = default;

    config::ServerConfig config_;
    std::shared_ptr<const Clock> clock_;
    std::unique_ptr<ledger::LivePriceBook> prices_;
    std::unique_ptr<SigningKey> signing_key_;
    std::unique_ptr<storage::LedgerStore> store_;
    std::unique_ptr<live::UsageHub> hub_;
    http::Metrics metrics_;
    // Before the ledger: the writer wakes it, so it must outlive the writer.
    std::unique_ptr<alerts::AlertCourier> courier_;
    std::unique_ptr<ledger::LedgerService> ledger_;
    std::unique_ptr<http::Authenticator> authenticator_;
    std::unique_ptr<http::Callers> callers_;
    std::unique_ptr<tokens::TokenCounter> token_counter_;
    std::unique_ptr<http::Api> api_;
    std::unique_ptr<http::HttpServer> http_;
    std::unique_ptr<http::StaticFiles> static_files_;
    billing::BillingParts billing_;
    std::unique_ptr<billing::ReconcileTimer> reconcile_timer_;  // --reconcile-every
    int port_ = 0;
    bool stopped_ = false;
};

// Implemented by server/auth: the Authenticator for this configuration.
Result<std::unique_ptr<http::Authenticator>, Error> make_authenticator(const config::ServerConfig& config);

}  // namespace tokenmeter
