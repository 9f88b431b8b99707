#include "app.hpp"

#include <sstream>

#include "gateway/gateway_routes.hpp"

#include <iostream>

#include <httplib.h>
#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <ostream>

#include "demo/demo_routes.hpp"
#include "http/static_files.hpp"
#include "keys/signing_key_file.hpp"
#include "ledger/views.hpp"
#include "storage/postgres/pg_store.hpp"
#include "storage/sqlite/sqlite_store.hpp"
#include "tokenmeter/base64url.hpp"
#include "tokenmeter/crypto.hpp"
#include "tokenmeter/ed25519.hpp"
#include "tokenmeter/limits.hpp"
#include "tokenmeter/period.hpp"

namespace tokenmeter {

namespace {

std::string random_secret() {
    std::array<std::uint8_t, 32> bytes{};
    randombytes_buf(bytes.data(), bytes.size());
    return base64url_encode(bytes.data(), bytes.size());
}

// Reads the secret kept in `path`, creating it (mode 0600) if missing.
Result<std::string, Error> demo_secret(const std::string& path) {
    if (std::filesystem::exists(path)) {
        auto text = keys::read_small_file(path, 4096);
        if (!text) return text;
        std::string secret = *text;
        while (!secret.empty() && (secret.back() == '\n' || secret.back() == ' ')) secret.pop_back();
        return secret;
    }
    const std::string secret = random_secret();
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << secret << "\n";
    if (!file) return unexpected(make_error("file_unwritable", "cannot write " + path));
    file.close();
    ::chmod(path.c_str(), 0600);
    return secret;
}

Result<PriceBook, Error> load_price_book(const std::string& path) {
    if (path.empty()) return default_price_book();
    auto text = keys::read_small_file(path, limits::catalog_bytes_max);
    if (!text) return unexpected(text.error());
    auto book = parse_price_book(*text);
    if (!book) return unexpected(make_error(book.error().code, path + ": " + book.error().message));
    return book;
}

void add_edge_gauges(http::Metrics& metrics, const http::HttpServer& server) {
    const http::HttpServer* edge = &server;
    metrics.add_gauge("tokenmeter_http_connections", "Open client connections.",
                      [edge] { return edge->stats().connections.load(); });
    metrics.add_gauge("tokenmeter_http_queued_requests", "Complete requests waiting for a worker.",
                      [edge] { return static_cast<std::int64_t>(edge->queued()); });
    metrics.add_gauge("tokenmeter_http_busy_workers", "Workers answering a request.",
                      [edge] { return static_cast<std::int64_t>(edge->busy_workers()); });
    metrics.add_gauge("tokenmeter_http_overloaded_total", "Requests refused with 503 because every worker was busy and the queue full.",
                      [edge] { return static_cast<std::int64_t>(edge->stats().overloaded.load()); });
    metrics.add_gauge("tokenmeter_http_evicted_total", "Idle or half-sent connections closed to make room at the connection limit.",
                      [edge] { return static_cast<std::int64_t>(edge->stats().evicted.load()); });
    metrics.add_gauge("tokenmeter_http_timed_out_total", "Requests whose head or body did not arrive in time (408).",
                      [edge] { return static_cast<std::int64_t>(edge->stats().timed_out.load()); });
    metrics.add_gauge("tokenmeter_http_refused_heads_total", "Requests refused from their head alone (4xx/5xx before any body).",
                      [edge] { return static_cast<std::int64_t>(edge->stats().refused_heads.load()); });
}

// The outbox's settings for the writer, and the courier that delivers it
// (none without endpoints). The secret was checked by config::validate.
alerts::OutboxSettings start_alert_courier(const config::ServerConfig& c, storage::LedgerStore& store, const Clock& clock,
                                           std::unique_ptr<alerts::AlertCourier>& courier) {
    alerts::OutboxSettings settings;
    if (c.webhook_urls.empty()) return settings;
    settings.urls = c.webhook_urls;
    settings.rules.thresholds_percent = c.alert_thresholds_percent;
    alerts::CourierOptions options;
    options.timeout = std::chrono::milliseconds(c.webhook_timeout_ms);
    courier = std::make_unique<alerts::AlertCourier>(store, alerts::WebhookSecret::parse(c.webhook_secret).value(),
                                                     options, clock);
    alerts::AlertCourier* woken = courier.get();
    settings.enqueued = [woken] { woken->wake(); };
    return settings;
}

void add_webhook_gauges(http::Metrics& metrics, const alerts::AlertCourier& courier) {
    const alerts::AlertCourier* c = &courier;
    metrics.add_gauge("tokenmeter_webhooks_delivered_total", "Webhook deliveries answered 2xx.",
                      [c] { return static_cast<std::int64_t>(c->stats().delivered); });
    metrics.add_gauge("tokenmeter_webhooks_failed_attempts_total",
                      "Webhook attempts that failed (not 2xx, refused, timed out); most are retried.",
                      [c] { return static_cast<std::int64_t>(c->stats().failed_attempts); });
    metrics.add_gauge("tokenmeter_webhooks_given_up_total", "Webhook deliveries given up after their retry window.",
                      [c] { return static_cast<std::int64_t>(c->stats().given_up); });
}

}  // namespace

Result<std::unique_ptr<storage::LedgerStore>, Error> open_store(const std::string& url) {
    try {
        if (url.rfind("sqlite:", 0) == 0) {
            const std::string path = url.substr(7);
            if (path.empty()) return unexpected(make_error("config_invalid", "sqlite: needs a path"));
            std::unique_ptr<storage::LedgerStore> store =
                std::make_unique<storage::sqlite::SqliteStore>(storage::sqlite::SqliteOptions{path, 2000});
            return store;
        }
        if (storage::postgres::is_postgres_url(url)) {
            std::unique_ptr<storage::LedgerStore> store =
                std::make_unique<storage::postgres::PgStore>(storage::postgres::PgOptions{url});
            return store;
        }
        return unexpected(make_error("config_invalid", "unsupported database URL (use sqlite:PATH or postgres://...)"));
    } catch (const storage::StorageError& error) {
        return unexpected(make_error("storage_unavailable", error.what()));
    }
}

std::optional<Error> prepare_demo(config::ServerConfig& config, std::ostream& log) {
    if (!crypto_ready()) return make_error("crypto_unavailable", "libsodium did not initialize");
    std::error_code ignored;
    std::filesystem::create_directories(config.demo_dir, ignored);
    ::chmod(config.demo_dir.c_str(), 0700);
    const std::string dir = config.demo_dir + "/";
    if (config.signing_key_file.empty()) {
        config.signing_key_file = dir + "signing-key.jwk";
        if (!std::filesystem::exists(config.signing_key_file)) {
            auto created = keys::generate_signing_key_file(config.signing_key_file);
            if (!created) return created.error();
        }
    }
    if (config.jwt_secret.empty() && config.jwks.empty()) {
        auto secret = demo_secret(dir + "jwt-secret");
        if (!secret) return secret.error();
        config.jwt_secret = *secret;
    }
    if (config.service_keys.empty()) {
        auto key = demo_secret(dir + "service-key");
        if (!key) return key.error();
        config.service_keys.push_back(*key);
    }
    if (!config.lemonsqueezy.configured()) {
        // The local LemonSqueezy stand-in (tools/lemonsqueezy-standin), which
        // reads the same webhook secret file to sign its webhooks.
        auto secret = demo_secret(dir + "lemonsqueezy-webhook-secret");
        if (!secret) return secret.error();
        config.lemonsqueezy.api_base = "http://127.0.0.1:8788";
        config.lemonsqueezy.api_key = "demo-standin-key";
        config.lemonsqueezy.store_id = "1";
        config.lemonsqueezy.pro_variant_id = "1";
        config.lemonsqueezy.webhook_secret = *secret;
        log << "tokenmeter: demo mode: LemonSqueezy is the local stand-in at " << config.lemonsqueezy.api_base
            << " (webhook secret " << dir << "lemonsqueezy-webhook-secret)\n";
    }
    log << "tokenmeter: demo mode: signing key " << config.signing_key_file << ", JWT secret " << dir
        << "jwt-secret, service key " << dir << "service-key\n";
    return std::nullopt;
}

// The gateway's upstreams: the config's, or those of TOKENMETER_UPSTREAMS_FILE;
// in demo mode without any, the local OpenAI stand-in (tools/openai-standin)
// serves every model of the catalog.
static Result<std::vector<config::UpstreamSettings>, Error> gateway_upstreams(const config::ServerConfig& config,
                                                                             const PriceBook& book) {
    if (config.upstreams_file.empty() && config.upstreams.empty() && config.demo) {
        config::UpstreamSettings standin;
        standin.base_url = "http://127.0.0.1:8789/v1";
        for (const Catalog& version : book.versions) {
            for (const Model& model : version.models) {
                if (std::find(standin.models.begin(), standin.models.end(), model.id) == standin.models.end()) {
                    standin.models.push_back(model.id);
                }
            }
        }
        return std::vector<config::UpstreamSettings>{standin};
    }
    if (config.upstreams_file.empty()) return config.upstreams;
    std::ifstream file(config.upstreams_file);
    if (!file) return unexpected(make_error("config_invalid", "TOKENMETER_UPSTREAMS_FILE: cannot read " + config.upstreams_file));
    std::ostringstream text;
    text << file.rdbuf();
    auto upstreams = config::parse_upstreams(text.str());
    if (!upstreams) {
        return unexpected(make_error(upstreams.error().code, config.upstreams_file + ": " + upstreams.error().message));
    }
    return upstreams;
}

Result<std::unique_ptr<App>, Error> App::create(config::ServerConfig config, std::shared_ptr<const Clock> clock) {
    if (auto invalid = config::validate(config)) return unexpected(*invalid);
    if (!crypto_ready()) return unexpected(make_error("crypto_unavailable", "libsodium did not initialize"));
    std::unique_ptr<App> app(new App());
    app->config_ = std::move(config);
    app->clock_ = std::move(clock);
    const config::ServerConfig& c = app->config_;
    auto book = load_price_book(c.catalog_file);
    if (!book) return unexpected(book.error());
    if (auto unstarted = ledger::refuse_unstarted(*book, app->clock_->now_seconds())) {
        return unexpected(make_error(unstarted->code, c.catalog_file + ": " + unstarted->message));
    }
    app->prices_ = std::make_unique<ledger::LivePriceBook>(std::move(book).value(), *app->clock_);
    auto key = keys::load_signing_key_file(c.signing_key_file);
    if (!key) return unexpected(key.error());
    app->signing_key_ = std::make_unique<SigningKey>(std::move(key).value());
    std::vector<VerificationKey> public_keys = {{app->signing_key_->kid(), app->signing_key_->public_key()}};
    if (!c.retired_keys_file.empty()) {
        auto retired = keys::load_public_keys_file(c.retired_keys_file);
        if (!retired) return unexpected(retired.error());
        for (auto& k : *retired) {
            if (k.kid != app->signing_key_->kid()) public_keys.push_back(k);
        }
    }
    auto store = open_store(c.db);
    if (!store) return unexpected(store.error());
    app->store_ = std::move(store).value();
    auto authenticator = make_authenticator(c);
    if (!authenticator) return unexpected(authenticator.error());
    app->authenticator_ = std::move(authenticator).value();
    app->token_counter_ = tokens::make_embedded_encoding_counter();

    ledger::LedgerConfig ledger_config;
    ledger_config.prices = app->prices_.get();
    ledger_config.signing_key = app->signing_key_.get();
    ledger_config.reservation_ttl_seconds = c.reservation_ttl_seconds;
    ledger_config.late_commit_grace_seconds = c.late_commit_grace_seconds;
    http::ReplyStyle reply_style;
    reply_style.upgrade_url = c.upgrade_url;
    App* raw = app.get();
    app->hub_ = std::make_unique<live::UsageHub>(live::StreamLimits{static_cast<std::size_t>(c.streams_max),
                                                                     static_cast<std::size_t>(c.streams_per_user_max)});
    ledger::WriterOptions writer_options;
    writer_options.alerts = start_alert_courier(c, *app->store_, *app->clock_, app->courier_);
    app->ledger_ = std::make_unique<ledger::LedgerService>(
        *app->store_, *app->clock_, ledger_config, writer_options,
        [reply_style](const ledger::LedgerReply& reply) {
            const http::RenderedReply rendered = http::render_reply(reply, reply_style);
            return std::make_pair(rendered.status, rendered.body);
        },
        [raw, thresholds = c.alert_thresholds_percent](const std::vector<ledger::PublishedReceipt>& published) {
            std::vector<std::pair<std::string, std::string>> snapshots;
            for (const auto& item : published) {
                if (!raw->hub_->watched(item.user_id)) continue;
                nlohmann::json snapshot = ledger::snapshot_object(item.claims, item.receipt);
                ledger::add_alert_thresholds(snapshot, thresholds);
                snapshots.emplace_back(item.user_id, snapshot.dump());
            }
            if (!snapshots.empty()) raw->hub_->publish(snapshots);
        });

    http::RateLimits rates;
    rates.user = {c.rate_limit_user_per_second, c.rate_limit_user_burst};
    rates.service = {c.rate_limit_service_per_second, c.rate_limit_service_burst};
    rates.address = {c.rate_limit_address_per_second, c.rate_limit_address_burst};
    app->callers_ = std::make_unique<http::Callers>(*app->authenticator_, *app->clock_, app->metrics_, rates);
    http::ApiOptions api_options;
    api_options.jwks_json = jwks_json(public_keys);
    api_options.metrics_token = c.metrics_token;
    api_options.reply_style = reply_style;
    api_options.alert_thresholds_percent = c.alert_thresholds_percent;
    app->api_ = std::make_unique<http::Api>(
        http::ApiDependencies{*app->ledger_, *app->callers_, *app->hub_, app->metrics_, *app->clock_,
                              *app->token_counter_},
        api_options);
    app->billing_ = billing::make_billing(c.lemonsqueezy, *app->ledger_, *app->callers_);
    app->api_->add_routes(app->billing_.routes);
    auto upstreams = gateway_upstreams(c, *app->prices_->book());
    if (!upstreams) return unexpected(upstreams.error());
    gateway::GatewayOptions gateway_options;
    gateway_options.upstreams = std::move(upstreams).value();
    gateway_options.reply_style = reply_style;
    app->api_->add_routes(std::make_shared<gateway::GatewayRoutes>(
        gateway::GatewayDependencies{*app->ledger_, *app->callers_, *app->token_counter_, app->metrics_},
        std::move(gateway_options)));
    if (c.reconcile_every_seconds > 0 && (app->billing_.service == nullptr || c.lemonsqueezy.api_key.empty())) {
        return unexpected(make_error("config_invalid", "reconcile_every needs LemonSqueezy configured with "
                                                       "LEMONSQUEEZY_API_KEY: reconcile lists from the API"));
    }
    if (c.demo) {
        demo::DemoSettings demo_settings;
        demo_settings.jwt_secret = c.jwt_secret;
        demo_settings.service_key = c.service_keys.empty() ? std::string() : c.service_keys.front();
        app->api_->add_routes(demo::make_demo_routes(
            {*app->callers_, *app->token_counter_, *app->prices_, *app->clock_, [raw] { return raw->port_; }},
            demo_settings));
    }
    app->metrics_.add_gauge("tokenmeter_live_streams", "Open usage streams (Server-Sent Events).",
                            [raw] { return static_cast<std::int64_t>(raw->hub_->streams()); });
    app->metrics_.add_gauge("tokenmeter_ledger_batches", "Ledger transactions committed (group commit batches).",
                            [raw] { return static_cast<std::int64_t>(raw->ledger_->writer_stats().batches); });
    app->metrics_.add_gauge("tokenmeter_ledger_resident_accounts", "Accounts the ledger writer holds in memory (bounded).",
                            [raw] { return static_cast<std::int64_t>(raw->ledger_->writer_stats().resident_accounts); });
    app->metrics_.add_gauge("tokenmeter_ledger_changes", "Ledger jobs run.",
                            [raw] { return static_cast<std::int64_t>(raw->ledger_->writer_stats().jobs); });

    http::HttpServerOptions http_options;
    http_options.body_bytes_max = static_cast<std::size_t>(c.body_bytes_max);
    http_options.workers = static_cast<std::size_t>(c.http_threads);
    http_options.queue_max = static_cast<std::size_t>(c.http_queue_max);
    http_options.connections_max = static_cast<std::size_t>(c.http_connections_max);
    http_options.head_timeout_ms = c.http_request_timeout_ms;
    http_options.body_timeout_ms = c.http_request_timeout_ms;
    http_options.idle_timeout_ms = c.http_idle_timeout_ms;
    http_options.stream_heartbeat_ms = c.sse_heartbeat_seconds * 1000;
    http_options.cors.origins = c.cors_origins;
    http_options.long_request_paths = gateway::GatewayRoutes::paths();
    http_options.long_request_workers = static_cast<std::size_t>(c.gateway_threads);
    app->http_ = std::make_unique<http::HttpServer>(http_options);
    app->hub_->set_listener([raw](const std::vector<std::string>& users) { raw->http_->notify_streams(users); });
    // Changes made through other servers on the same database (PostgreSQL):
    // the newest receipt of each watched user, for its streams here.
    app->store_->watch_changes([raw, thresholds = c.alert_thresholds_percent](const std::vector<std::string>& users) {
        std::vector<std::pair<std::string, std::string>> snapshots;
        for (const std::string& user_id : users) {
            if (!raw->hub_->watched(user_id)) continue;
            try {
                auto view = raw->store_->read_view(user_id);
                if (!view) continue;
                nlohmann::json snapshot = ledger::snapshot_of_receipt(view->last_receipt);
                ledger::add_alert_thresholds(snapshot, thresholds);
                snapshots.emplace_back(user_id, snapshot.dump());
            } catch (const std::exception&) {
                // The stream hears of the change at its user's next one.
            }
        }
        if (!snapshots.empty()) raw->hub_->publish(snapshots);
    });
    add_edge_gauges(app->metrics_, *app->http_);
    if (app->courier_) add_webhook_gauges(app->metrics_, *app->courier_);
    return app;
}

App::~App() { shutdown(); }

Result<std::string, Error> App::reload_price_book() {
    if (config_.catalog_file.empty()) {
        return unexpected(make_error("catalog_not_reloadable", "no catalog file is configured (the built-in catalog is in use)"));
    }
    auto book = load_price_book(config_.catalog_file);
    if (!book) return unexpected(book.error());
    if (auto refused = prices_->replace(std::move(book).value())) {
        return unexpected(make_error(refused->code, config_.catalog_file + ": " + refused->message));
    }
    const auto held = prices_->book();
    const std::int64_t now = clock_->now_seconds();
    std::string summary = "catalog version " + held->in_force(now).version + " in force";
    if (const Catalog* next = held->next_after(now)) {
        summary += "; " + next->version + " from " + format_rfc3339(*next->effective_from);
    }
    return summary;
}

Result<int, Error> App::start() {
    auto listen = config::parse_listen(config_.listen);
    if (!listen) return unexpected(listen.error());
    api_->install(http_->routes());
    http::Callers* callers = callers_.get();
    http_->set_admission([callers](const httplib::Request& request, httplib::Response& response) {
        return callers->refuse_anonymous(request, response);
    });
    if (!config_.web_root.empty()) {
        auto files = http::StaticFiles::open(config_.web_root);
        if (!files) return unexpected(files.error());
        static_files_ = std::move(files).value();
        // Registered last: every API route matches first.
        const http::StaticFiles* served = static_files_.get();
        http_->routes().Get(R"(/.*)", [served](const httplib::Request& request, httplib::Response& response) {
            if (request.path.rfind("/v1/", 0) == 0 || !served->serve(request, response)) {
                http::reply_error(response, 404, "not_found", "no such endpoint or file");
            }
        });
    }
    port_ = http_->bind(listen->first, listen->second);
    if (port_ <= 0) {
        return unexpected(make_error("listen_failed", "cannot listen on " + config_.listen + " (in use, or not an address here)"));
    }
    http_->start();
    if (config_.reconcile_every_seconds > 0) {
        reconcile_timer_ = std::make_unique<billing::ReconcileTimer>(
            *billing_.service, std::chrono::seconds(config_.reconcile_every_seconds), std::cerr);
    }
    return port_;
}

void App::shutdown() {
    if (stopped_) return;
    stopped_ = true;
    if (reconcile_timer_) reconcile_timer_->stop();
    if (store_) store_->stop_watching();
    if (hub_) hub_->shutdown();
    if (http_) http_->stop();
    if (ledger_) ledger_->stop();
    // Last: what the final batches enqueued is woken for, and what it could
    // not deliver stays in the outbox for the next start.
    if (courier_) courier_->stop();
}

}  // namespace tokenmeter
