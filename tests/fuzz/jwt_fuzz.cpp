// Fuzzes user-token checking (server/auth/jwt.hpp, authenticator.cpp) and
// the JWKS parser of ES256/RS256 keys (server/auth/jwks.hpp). The bytes are
// read four ways:
//   1. as an Authorization header, through the Authenticator the server
//      makes for an HS256 secret and a service key, and through its steps
//      (bearer_token, parse_jwt, the HS256 check, user_of_claims);
//   2. as a bare compact token, through parse_jwt and user_of_claims;
//   3. as the claims of a token signed here with the secret, so a fuzzed
//      payload gets past the signature to the claim checks;
//   4. as a JWKS document.
//
// Invariants besides "no crash": every refusal can be answered (a 401 JSON
// body, so its message is valid UTF-8); a token is accepted only with a valid
// signature and a valid user id; splitting and decoding is exact (the
// segments re-encode to the token's text); a signed payload is accepted
// exactly when its claims are; only the configured service key passes; a
// parsed JWKS holds 1-32 keys with distinct, non-empty kids.
#include <sodium.h>

#include <array>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "app.hpp"
#include "auth/jwks.hpp"
#include "auth/jwt.hpp"
#include "auth/limits.hpp"
#include "fuzz_input.hpp"
#include "tokenmeter/base64url.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter::fuzz {
namespace {

using Json = nlohmann::json;

// 32 bytes: crypto_auth_hmacsha256's key size, and the minimum the server takes.
constexpr std::string_view jwt_secret = "fuzz-jwt-secret-of-32-characters";
constexpr std::string_view service_key = "fuzz-service-key-0123456789";
// An instant inside the exp/nbf range of the seed tokens (2025-06-15).
constexpr std::int64_t now_seconds = 1'750'000'000;

http::Authenticator& authenticator() {
    static const std::unique_ptr<http::Authenticator> instance = [] {
        config::ServerConfig config;
        config.jwt_secret = std::string(jwt_secret);
        config.service_keys = {std::string(service_key)};
        auto made = make_authenticator(config);
        TM_ASSERT(made.has_value());
        return std::move(made).value();
    }();
    return *instance;
}

// Base64url of HMAC-SHA256 under the secret: what a token signed with it carries.
std::string hs256_signature(std::string_view signing_input) {
    static_assert(jwt_secret.size() == crypto_auth_hmacsha256_KEYBYTES);
    std::array<unsigned char, crypto_auth_hmacsha256_BYTES> mac{};
    crypto_auth_hmacsha256(mac.data(), reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(),
                           reinterpret_cast<const unsigned char*>(jwt_secret.data()));
    return base64url_encode(mac.data(), mac.size());
}

// parse_jwt's result says exactly what the token's text says.
void check_split(std::string_view token, const auth::UnverifiedJwt& jwt) {
    TM_ASSERT(token.size() <= auth::limits::token_bytes_max);
    TM_ASSERT(token.substr(0, jwt.signing_input.size()) == jwt.signing_input);
    TM_ASSERT(token.size() > jwt.signing_input.size());
    TM_ASSERT(token[jwt.signing_input.size()] == '.');
    TM_ASSERT(base64url_encode(jwt.signature) == token.substr(jwt.signing_input.size() + 1));
    TM_ASSERT(jwt.claims.is_object());
}

// The claim checks of any decoded token, signed or not.
void check_claims(const Json& claims) {
    auto user = auth::user_of_claims(claims, now_seconds);
    if (!user) return;
    TM_ASSERT(is_valid_user_id(*user));
    TM_ASSERT(auth::expiry_of_claims(claims) > now_seconds - auth::limits::clock_leeway_seconds);
}

void check_header(std::string_view authorization) {
    auto session = authenticator().user_session(authorization, now_seconds);
    auto token = auth::bearer_token(authorization);
    std::optional<auth::UnverifiedJwt> jwt;
    if (token) {
        TM_ASSERT(authorization.substr(authorization.size() - token->size()) == *token);
        if (auto parsed = auth::parse_jwt(*token)) jwt = std::move(parsed).value();
    }
    if (jwt) {
        check_split(*token, *jwt);
        check_claims(jwt->claims);
    }
    if (!session) check_error_text(session.error());
    if (session) {
        TM_ASSERT(is_valid_user_id(session->user_id));
        TM_ASSERT(jwt.has_value() && jwt->alg == "HS256" && auth::hs256_signature_matches(jwt_secret, *jwt));
        TM_ASSERT(session->user_id == auth::user_of_claims(jwt->claims, now_seconds).value());
    }
    auto caller = authenticator().service(authorization);
    if (!caller) check_error_text(caller.error());
    if (caller) TM_ASSERT(token.has_value() && *token == service_key);
}

void check_bare_token(std::string_view token) {
    auto jwt = auth::parse_jwt(token);
    if (!jwt) return;
    check_split(token, *jwt);
    check_claims(jwt->claims);
}

// The bytes as the payload of a token signed with the secret: past the
// signature, the token stands or falls by its claims alone.
void check_signed_payload(std::string_view payload) {
    const std::string input = base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url_encode(payload);
    const std::string token = input + "." + hs256_signature(input);
    auto session = authenticator().user_session("Bearer " + token, now_seconds);
    if (!session) check_error_text(session.error());
    if (token.size() > auth::limits::token_bytes_max) {
        TM_ASSERT(!session.has_value());
        return;
    }
    const Json claims = Json::parse(payload, nullptr, /*allow_exceptions=*/false);
    if (claims.is_discarded() || !claims.is_object()) {
        TM_ASSERT(!session.has_value());
        return;
    }
    auto user = auth::user_of_claims(claims, now_seconds);
    TM_ASSERT(session.has_value() == user.has_value());
    if (session) TM_ASSERT(session->user_id == *user);
}

void check_jwks(std::string_view text) {
    auto keys = auth::parse_token_jwks(text);
    if (!keys) return;
    TM_ASSERT(!keys->empty() && keys->size() <= auth::limits::jwks_keys_max);
    std::set<std::string> kids;
    for (const auth::TokenKey& key : *keys) {
        TM_ASSERT(!key.kid().empty());
        TM_ASSERT(kids.insert(key.kid()).second);
        // No key verifies an empty signature, whatever its material.
        TM_ASSERT(!key.verifies(text, ""));
    }
}

}  // namespace
}  // namespace tokenmeter::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tokenmeter::fuzz;
    TM_ASSERT(tokenmeter::crypto_ready());
    const std::string_view text = text_of(data, size);
    check_header(text);
    check_bare_token(text);
    check_signed_payload(text);
    check_jwks(text);
    return 0;
}
