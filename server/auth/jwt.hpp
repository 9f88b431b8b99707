// User JWTs as Supabase issues them: the compact form split and decoded
// strictly, the header policy, HS256 (minting and checking), and the claims
// that make a token a user's.
//
// Invariants: nothing here trusts the token's header to choose a key or to
// fetch anything (jku, jwk, x5u, x5c and crit are refused outright); every
// check returns an Error with a precise code, which the API answers with 401.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter::auth {

// A token split and decoded, its signature not yet checked.
struct UnverifiedJwt {
    std::string alg;            // header "alg", present and a string
    std::string kid;            // header "kid", "" when absent
    nlohmann::json claims;      // the payload, a JSON object
    std::string signing_input;  // the first two segments, as signed
    std::string signature;      // decoded signature bytes
};

// The token of an `Authorization: Bearer <token>` header value.
// Errors: credentials_missing, credentials_malformed.
Result<std::string_view, Error> bearer_token(std::string_view authorization);

// Splits and decodes a compact JWS. Errors: token_too_large, token_malformed,
// token_algorithm_refused (alg missing or not a string), token_header_refused
// (jku, jwk, x5u, x5c or crit present).
Result<UnverifiedJwt, Error> parse_jwt(std::string_view token);

// HMAC-SHA256 of the signing input under `secret`, compared in constant time.
[[nodiscard]] bool hs256_signature_matches(std::string_view secret, const UnverifiedJwt& jwt);

// The user id of verified claims: exp (required) and nbf with leeway, aud
// "authenticated", role neither anon nor service_role, sub a valid user id.
// Errors: token_malformed, token_expired, token_not_yet_valid,
// token_audience_invalid, token_role_refused, token_subject_missing,
// token_subject_invalid.
Result<std::string, Error> user_of_claims(const nlohmann::json& claims, std::int64_t now_seconds);

// The exp claim of claims user_of_claims accepted (0 when absent).
std::int64_t expiry_of_claims(const nlohmann::json& claims);

// `text` made safe to echo in an error message: at most 64 characters,
// anything but printable ASCII replaced by '?'. Header values are attacker
// input; echoing them whole would let a token inflate every 401 body.
std::string excerpt(std::string_view text);

// A user token as Supabase would issue it (aud and role "authenticated"),
// signed HS256 with `secret`; for `tokenmeter dev-token` and tests.
// Errors: secret_invalid (empty), sub_invalid, ttl_invalid.
Result<std::string, Error> mint_hs256_token(std::string_view secret, std::string_view sub, std::int64_t now_seconds,
                                            std::int64_t ttl_seconds);

}  // namespace tokenmeter::auth
