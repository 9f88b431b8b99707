// Helpers for the authentication tests: tokens built by hand (independently
// of server/auth) with any header and claims, and an Authenticator made from
// a configuration the way the server makes it.
#pragma once

#include <sodium.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "app.hpp"
#include "guarded_bytes.hpp"
#include "test_server.hpp"
#include "tokenmeter/base64url.hpp"

namespace tokenmeter::test {

inline constexpr std::int64_t auth_now = 1764000000;

// Claims of a valid Supabase user token for `sub` at auth_now.
inline nlohmann::json user_claims(const std::string& sub = "user-1") {
    return {{"sub", sub},           {"aud", "authenticated"}, {"role", "authenticated"},
            {"iat", auth_now - 10}, {"exp", auth_now + 3600}, {"email", "someone@example.com"}};
}

inline std::string hmac_sha256_base64url(const std::string& key, const std::string& input) {
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()), key.size());
    crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    crypto_auth_hmacsha256_final(&state, mac);
    return base64url_encode(mac, sizeof mac);
}

inline std::string signing_input(const nlohmann::json& header, const nlohmann::json& claims) {
    return base64url_encode(header.dump()) + "." + base64url_encode(claims.dump());
}

// An HS256 token with any header and claims.
inline std::string hs256_token(const nlohmann::json& header, const nlohmann::json& claims,
                               const std::string& secret = jwt_secret) {
    const std::string input = signing_input(header, claims);
    return input + "." + hmac_sha256_base64url(secret, input);
}

inline std::string hs256_token(const nlohmann::json& claims) {
    return hs256_token({{"alg", "HS256"}, {"typ", "JWT"}}, claims);
}

inline config::ServerConfig auth_config() {
    config::ServerConfig config;
    config.jwt_secret = jwt_secret;
    config.service_keys = {service_key};
    return config;
}

inline std::unique_ptr<http::Authenticator> authenticator_for(const config::ServerConfig& config) {
    auto made = make_authenticator(config);
    if (!made) throw std::runtime_error("make_authenticator: " + made.error().code + ": " + made.error().message);
    return std::move(made).value();
}

// The error code of a refused bearer token ("accepted:<user>" when accepted).
inline std::string user_outcome(http::Authenticator& authenticator, const std::string& token,
                                std::int64_t now = auth_now) {
    auto user = authenticator.user("Bearer " + token, now);
    return user ? "accepted:" + *user : user.error().code;
}

// user_outcome, where checking the token may read at most its first
// `token_bytes_readable` bytes: reading more stops the test (GuardedBytes).
inline std::string user_outcome_reading_at_most(http::Authenticator& authenticator, const std::string& token,
                                                std::size_t token_bytes_readable, std::int64_t now = auth_now) {
    const std::string scheme = "Bearer ";
    const GuardedBytes authorization(scheme + token, scheme.size() + token_bytes_readable);
    auto user = authenticator.user(authorization.view(), now);
    return user ? "accepted:" + *user : user.error().code;
}

}  // namespace tokenmeter::test
