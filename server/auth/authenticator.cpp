// make_authenticator: user JWTs (HS256 with the legacy secret, ES256/RS256
// with a JWKS) and service keys, as DESIGN.md §7 describes.
//
// The algorithm is pinned per key: the secret verifies HS256 only, and a JWKS
// key verifies only the algorithm its kty/crv/alg imply. A token's header
// chooses among configured keys by kid, never supplies one.
#include <sodium.h>

#include <memory>
#include <string>

#include "app.hpp"
#include "auth/jwks_source.hpp"
#include "auth/jwt.hpp"
#include "auth/limits.hpp"
#include "auth/service_keys.hpp"

namespace tokenmeter {

namespace {

class SupabaseAuthenticator final : public http::Authenticator {
public:
    SupabaseAuthenticator(std::string jwt_secret, std::unique_ptr<auth::JwksSource> jwks,
                          const std::vector<std::string>& service_keys)
        : jwt_secret_(std::move(jwt_secret)), jwks_(std::move(jwks)), service_keys_(service_keys) {}

    ~SupabaseAuthenticator() override { sodium_memzero(jwt_secret_.data(), jwt_secret_.size()); }

    Result<http::UserSession, Error> user_session(std::string_view authorization, std::int64_t now_seconds) override {
        auto token = auth::bearer_token(authorization);
        if (!token) return unexpected(token.error());
        auto jwt = auth::parse_jwt(*token);
        if (!jwt) return unexpected(jwt.error());
        if (auto invalid = check_signature(*jwt, now_seconds)) return unexpected(*invalid);
        auto user_id = auth::user_of_claims(jwt->claims, now_seconds);
        if (!user_id) return unexpected(user_id.error());
        return http::UserSession{std::move(user_id).value(), auth::expiry_of_claims(jwt->claims)};
    }

    Result<std::string, Error> service(std::string_view authorization) override {
        auto token = auth::bearer_token(authorization);
        if (!token) return unexpected(token.error());
        return service_keys_.caller_of(*token);
    }

private:
    std::optional<Error> check_signature(const auth::UnverifiedJwt& jwt, std::int64_t now_seconds) {
        if (jwt.alg == "HS256" && !jwt_secret_.empty()) {
            if (auth::hs256_signature_matches(jwt_secret_, jwt)) return std::nullopt;
            return signature_invalid();
        }
        if ((jwt.alg == "ES256" || jwt.alg == "RS256") && jwks_ != nullptr) return check_jwks_signature(jwt, now_seconds);
        return make_error("token_algorithm_refused", "tokens signed with \"" + auth::excerpt(jwt.alg) + "\" are not accepted");
    }

    std::optional<Error> check_jwks_signature(const auth::UnverifiedJwt& jwt, std::int64_t now_seconds) {
        if (jwt.kid.empty()) return make_error("token_key_unknown", "the token names no key (kid)");
        auto key = jwks_->key_for(jwt.kid, now_seconds);
        if (!key) return key.error();
        // The key decides the algorithm: an RSA key never checks ES256 and
        // the other way round, whatever the header says.
        if (auth::algorithm_name(key->algorithm()) != jwt.alg) {
            return make_error("token_algorithm_refused", "the key \"" + auth::excerpt(jwt.kid) + "\" verifies " +
                                                             std::string(auth::algorithm_name(key->algorithm())) +
                                                             " only, not " + auth::excerpt(jwt.alg));
        }
        if (!key->verifies(jwt.signing_input, jwt.signature)) return signature_invalid();
        return std::nullopt;
    }

    static Error signature_invalid() {
        return make_error("token_signature_invalid", "the token's signature does not verify");
    }

    std::string jwt_secret_;                  // empty: HS256 is refused
    std::unique_ptr<auth::JwksSource> jwks_;  // null: ES256 and RS256 are refused
    auth::ServiceKeys service_keys_;
};

}  // namespace

Result<std::unique_ptr<http::Authenticator>, Error> make_authenticator(const config::ServerConfig& config) {
    if (config.jwt_secret.empty() && config.jwks.empty()) {
        return unexpected(make_error("config_missing",
                                     "neither TOKENMETER_JWT_SECRET nor TOKENMETER_JWKS is set: user tokens cannot be verified"));
    }
    if (config.service_keys.empty()) {
        return unexpected(make_error("config_missing", "TOKENMETER_SERVICE_KEYS is not set: the app's backend cannot authorize usage"));
    }
    if (!config.jwt_secret.empty() && config.jwt_secret.size() < 32) {
        return unexpected(make_error("config_invalid", "TOKENMETER_JWT_SECRET must be at least 32 characters"));
    }
    std::unique_ptr<auth::JwksSource> jwks;
    if (!config.jwks.empty()) {
        auto opened = auth::JwksSource::open(config.jwks);
        if (!opened) return unexpected(opened.error());
        jwks = std::move(opened).value();
    }
    std::unique_ptr<http::Authenticator> authenticator =
        std::make_unique<SupabaseAuthenticator>(config.jwt_secret, std::move(jwks), config.service_keys);
    return authenticator;
}

}  // namespace tokenmeter
