// A real tokenmeter server for tests: a temporary directory with a SQLite
// file (or a fresh PostgreSQL database, see test_database.hpp) and a signing key, the whole App on a free loopback port, and helpers
// to call it as a user (a JWT minted here, independently of the server's own
// code) or as the app's backend (a service key).
#pragma once

#include <httplib.h>
#include <sodium.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app.hpp"
#include "keys/signing_key_file.hpp"
#include "test_database.hpp"
#include "tokenmeter/base64url.hpp"

namespace tokenmeter::test {

inline const std::string jwt_secret = "test-jwt-secret-0123456789-abcdefghijklmnop";
inline const std::string service_key = "test-service-key-0123456789abcdef";
// A second backend's key, for servers configured with it (extra_service_keys).
inline const std::string other_service_key = "test-service-key-other-fedcba9876543210";

// An HS256 JWT as Supabase issues them, built from scratch here.
inline std::string mint_user_token(const std::string& sub, std::int64_t now, std::int64_t ttl = 3600,
                                   const std::string& secret = jwt_secret) {
    const std::string header = base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
    const nlohmann::json claims = {{"sub", sub}, {"aud", "authenticated"}, {"role", "authenticated"},
                                   {"iat", now}, {"exp", now + ttl}};
    const std::string input = header + "." + base64url_encode(claims.dump());
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
    crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    crypto_auth_hmacsha256_final(&state, mac);
    return input + "." + base64url_encode(mac, sizeof mac);
}

// The built-in catalog with the free plan's token limit set to `tokens`.
inline std::string catalog_with_free_limit(std::int64_t tokens) {
    nlohmann::json catalog = nlohmann::json::parse(std::string(default_catalog_json()));
    catalog["plans"][0]["tokens_per_period"] = tokens;
    return catalog.dump();
}

inline std::string make_temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tokenmeter-test-XXXXXX").string();
    const char* made = ::mkdtemp(pattern.data());
    return made == nullptr ? std::string() : std::string(made);
}

struct TestServerOptions {
    std::int64_t reservation_ttl_seconds = 600;
    std::optional<std::int64_t> late_commit_grace_seconds;  // absent: the server's default
    std::int64_t sse_heartbeat_seconds = 15;
    std::string catalog_json;  // empty: built-in
    std::string db;            // empty: sqlite in the temp dir, or a fresh PostgreSQL database
    std::string jwks;          // user-token keys (file or URL) besides the JWT secret
    std::vector<std::string> extra_service_keys;  // besides service_key
    // LemonSqueezy (billing); absent: billing is not configured.
    std::optional<config::LemonSqueezySettings> lemonsqueezy;
    // Any other setting (CORS origins, rate limits, a web root), applied last.
    std::function<void(config::ServerConfig&)> configure;
};

class TestServer {
public:
    explicit TestServer(TestServerOptions options = {}) : dir_(make_temp_dir()) {
        clock_ = std::make_shared<ManualClock>(1764000000);  // 2025-11-24T16:00:00Z
        config::ServerConfig config;
        config.db = options.db;
        if (config.db.empty()) {
            const std::string postgres = postgres_server_url();
            if (!postgres.empty()) database_ = std::make_unique<ScratchDatabase>(postgres);
            config.db = database_ ? database_->url() : "sqlite:" + dir_ + "/ledger.db";
        }
        db_ = config.db;
        config.listen = "127.0.0.1:0";
        config.jwt_secret = jwt_secret;
        config.service_keys = {service_key};
        for (const std::string& key : options.extra_service_keys) config.service_keys.push_back(key);
        config.jwks = options.jwks;
        config.signing_key_file = dir_ + "/signing.jwk";
        config.reservation_ttl_seconds = options.reservation_ttl_seconds;
        if (options.late_commit_grace_seconds) config.late_commit_grace_seconds = *options.late_commit_grace_seconds;
        config.sse_heartbeat_seconds = options.sse_heartbeat_seconds;
        if (options.lemonsqueezy) config.lemonsqueezy = *options.lemonsqueezy;
        if (options.configure) options.configure(config);
        (void)keys::generate_signing_key_file(config.signing_key_file);
        if (!options.catalog_json.empty()) {
            config.catalog_file = dir_ + "/catalog.json";
            std::ofstream(config.catalog_file) << options.catalog_json;
        }
        auto app = App::create(config, clock_);
        if (!app) throw std::runtime_error("test server: " + app.error().message);
        app_ = std::move(app).value();
        auto port = app_->start();
        if (!port) throw std::runtime_error("test server: " + port.error().message);
        port_ = *port;
    }

    ~TestServer() {
        app_.reset();
        database_.reset();
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    App& app() { return *app_; }
    ManualClock& clock() { return *clock_; }
    int port() const { return port_; }
    const std::string& dir() const { return dir_; }
    // The --db URL the server runs on (SQLite in dir(), or PostgreSQL).
    const std::string& db() const { return db_; }
    // The server's signing key (a JWK with its public "x").
    std::string signing_key_file() const { return dir_ + "/signing.jwk"; }

    httplib::Client client() const {
        httplib::Client client("127.0.0.1", port_);
        client.set_read_timeout(10, 0);
        return client;
    }

    httplib::Headers as_user(const std::string& user_id) const {
        return {{"Authorization", "Bearer " + mint_user_token(user_id, clock_->now_seconds())}};
    }

    httplib::Headers as_service(const std::string& idempotency_key = "") const {
        return as_service_key(service_key, idempotency_key);
    }

    // As the backend holding `key` (one of the configured service keys).
    httplib::Headers as_service_key(const std::string& key, const std::string& idempotency_key = "") const {
        httplib::Headers headers = {{"Authorization", "Bearer " + key}};
        if (!idempotency_key.empty()) headers.emplace("Idempotency-Key", idempotency_key);
        return headers;
    }

    // POST as the service with a fresh idempotency key.
    httplib::Result post(const std::string& path, const nlohmann::json& body) {
        auto client = this->client();
        return client.Post(path, as_service("key-" + std::to_string(++keys_)), body.dump(), "application/json");
    }

    nlohmann::json usage_of(const std::string& user_id) {
        auto client = this->client();
        auto response = client.Get("/v1/users/" + user_id + "/usage", as_service());
        if (!response || response->status != 200) return nullptr;
        return nlohmann::json::parse(response->body);
    }

private:
    std::string dir_;
    std::unique_ptr<ScratchDatabase> database_;
    std::string db_;
    std::shared_ptr<ManualClock> clock_;
    std::unique_ptr<App> app_;
    int port_ = 0;
    int keys_ = 0;
};

// A user's live stream (/v1/me/usage/stream) read on its own thread. The
// destructor ends it on every path, also when an assertion returns early:
// it shuts the server down (which closes streams cleanly) and joins.
class UsageStreamReader {
public:
    UsageStreamReader(TestServer& server, const std::string& user) : server_(server) {
        reader_ = std::thread([this, user] {
            auto client = server_.client();
            client.Get("/v1/me/usage/stream", server_.as_user(user), [this](const char* data, std::size_t size) {
                {
                    std::lock_guard<std::mutex> guard(mutex_);
                    received_.append(data, size);
                }
                arrived_.notify_all();
                return !stop_.load();
            });
        });
    }
    ~UsageStreamReader() {
        stop_ = true;
        server_.app().shutdown();
        if (reader_.joinable()) reader_.join();
    }
    UsageStreamReader(const UsageStreamReader&) = delete;
    UsageStreamReader& operator=(const UsageStreamReader&) = delete;

    // Everything received so far.
    std::string text() const {
        std::lock_guard<std::mutex> guard(mutex_);
        return received_;
    }

    // Waits until what was received satisfies `done`; whether it did. The
    // patience is for a hang only, not a performance bound: a change reaches
    // the stream in milliseconds, but a busy machine can take seconds.
    bool wait_for(const std::function<bool(const std::string&)>& done,
                  std::chrono::seconds patience = std::chrono::seconds(10)) const {
        std::unique_lock<std::mutex> lock(mutex_);
        return arrived_.wait_for(lock, patience, [&] { return done(received_); });
    }

    // How many `usage` events were received so far.
    static std::size_t usage_events(const std::string& received) {
        std::size_t n = 0;
        for (auto at = received.find("event: usage"); at != std::string::npos; at = received.find("event: usage", at + 1)) ++n;
        return n;
    }

private:
    TestServer& server_;
    mutable std::mutex mutex_;
    mutable std::condition_variable arrived_;
    std::string received_;
    std::atomic<bool> stop_{false};
    std::thread reader_;
};

inline nlohmann::json body_of(const httplib::Result& result) {
    if (!result) return nullptr;
    return nlohmann::json::parse(result->body, nullptr, false);
}

}  // namespace tokenmeter::test
