#include "auth/jwt.hpp"

#include <sodium.h>

#include <array>
#include <cmath>
#include <limits>
#include <optional>

#include "auth/limits.hpp"
#include "tokenmeter/base64url.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter::auth {

namespace {

using Json = nlohmann::json;

Error malformed(std::string message) { return make_error("token_malformed", std::move(message)); }

// Decodes one segment (strict base64url) into a JSON object.
Result<Json, Error> decode_json_segment(std::string_view segment, const char* what) {
    auto bytes = base64url_decode(segment);
    if (!bytes) return unexpected(malformed(std::string(what) + " is not canonical base64url"));
    Json parsed = Json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
        return unexpected(malformed(std::string(what) + " is not a JSON object"));
    }
    return parsed;
}

// Header parameters that point at keys or demand extensions. A verifier that
// honoured jku/x5u would fetch attacker URLs; one that honoured jwk/x5c would
// verify a token with the attacker's own key. Keys come from configuration only.
std::optional<Error> refused_header(const Json& header) {
    for (const char* name : {"jku", "jwk", "x5u", "x5c", "crit"}) {
        if (header.contains(name)) {
            return make_error("token_header_refused",
                              std::string("the token header carries \"") + name + "\", which is never honoured");
        }
    }
    return std::nullopt;
}

// A NumericDate (RFC 7519 §2): integer or fractional seconds, clamped to int64.
std::optional<std::int64_t> numeric_date(const Json& value) {
    constexpr std::int64_t most = std::numeric_limits<std::int64_t>::max();
    if (value.is_number_unsigned()) {
        const auto seconds = value.get<std::uint64_t>();
        return seconds > static_cast<std::uint64_t>(most) ? most : static_cast<std::int64_t>(seconds);
    }
    if (value.is_number_integer()) return value.get<std::int64_t>();
    if (value.is_number_float()) {
        const double seconds = std::floor(value.get<double>());
        if (!std::isfinite(seconds)) return std::nullopt;
        if (seconds >= 9.2e18) return most;
        if (seconds <= -9.2e18) return -most;
        return static_cast<std::int64_t>(seconds);
    }
    return std::nullopt;
}

std::optional<Error> check_times(const Json& claims, std::int64_t now) {
    const auto exp_field = claims.find("exp");
    if (exp_field == claims.end()) return malformed("the token has no exp claim");
    const auto exp = numeric_date(*exp_field);
    if (!exp) return malformed("exp is not a number");
    // Written as now - leeway so a huge exp cannot overflow the sum.
    if (now - limits::clock_leeway_seconds >= *exp) return make_error("token_expired", "the token has expired");
    const auto nbf_field = claims.find("nbf");
    if (nbf_field != claims.end()) {
        const auto nbf = numeric_date(*nbf_field);
        if (!nbf) return malformed("nbf is not a number");
        if (*nbf > now + limits::clock_leeway_seconds) {
            return make_error("token_not_yet_valid", "the token is not valid yet (nbf)");
        }
    }
    return std::nullopt;
}

bool audience_includes_authenticated(const Json& claims) {
    static const std::string wanted = "authenticated";
    const auto aud = claims.find("aud");
    if (aud == claims.end()) return false;
    if (aud->is_string()) return aud->get<std::string>() == wanted;
    if (!aud->is_array()) return false;
    for (const Json& entry : *aud) {
        if (entry.is_string() && entry.get<std::string>() == wanted) return true;
    }
    return false;
}

// Supabase puts the Postgres role in `role`: anon keys and the service_role
// key are JWTs signed with the same secret, but they are not users.
std::optional<Error> check_role(const Json& claims) {
    const auto role = claims.find("role");
    if (role == claims.end()) return std::nullopt;
    if (!role->is_string()) return malformed("role is not a string");
    const std::string name = role->get<std::string>();
    if (name == "anon" || name == "service_role") {
        return make_error("token_role_refused", "a token with role \"" + name + "\" is not a user token");
    }
    return std::nullopt;
}

std::array<unsigned char, crypto_auth_hmacsha256_BYTES> hmac_sha256(std::string_view key, std::string_view message) {
    std::array<unsigned char, crypto_auth_hmacsha256_BYTES> mac{};
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()), key.size());
    crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(message.data()), message.size());
    crypto_auth_hmacsha256_final(&state, mac.data());
    sodium_memzero(&state, sizeof state);
    return mac;
}

}  // namespace

Result<std::string_view, Error> bearer_token(std::string_view authorization) {
    if (authorization.empty()) {
        return unexpected(make_error("credentials_missing", "no Authorization header; send Authorization: Bearer <token>"));
    }
    constexpr std::string_view scheme = "bearer ";
    bool scheme_matches = authorization.size() > scheme.size();
    for (std::size_t i = 0; scheme_matches && i < scheme.size(); ++i) {
        const char c = authorization[i];
        scheme_matches = (c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) == scheme[i];
    }
    if (!scheme_matches) {
        return unexpected(make_error("credentials_malformed", "the Authorization header is not \"Bearer <token>\""));
    }
    return authorization.substr(scheme.size());
}

Result<UnverifiedJwt, Error> parse_jwt(std::string_view token) {
    if (token.size() > limits::token_bytes_max) {
        return unexpected(make_error("token_too_large", "the token is larger than " +
                                                            std::to_string(limits::token_bytes_max) + " bytes"));
    }
    const std::size_t first = token.find('.');
    const std::size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
    if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
        return unexpected(malformed("a token has three dot-separated segments"));
    }
    auto header = decode_json_segment(token.substr(0, first), "the header");
    if (!header) return unexpected(header.error());
    if (auto refused = refused_header(*header)) return unexpected(*refused);
    const auto alg = header->find("alg");
    if (alg == header->end() || !alg->is_string()) {
        return unexpected(make_error("token_algorithm_refused", "the token header names no algorithm"));
    }
    const auto kid = header->find("kid");
    if (kid != header->end() && !kid->is_string()) return unexpected(malformed("kid is not a string"));
    auto claims = decode_json_segment(token.substr(first + 1, second - first - 1), "the payload");
    if (!claims) return unexpected(claims.error());
    auto signature = base64url_decode(token.substr(second + 1));
    if (!signature) return unexpected(malformed("the signature is not canonical base64url"));
    UnverifiedJwt jwt;
    jwt.alg = alg->get<std::string>();
    jwt.kid = kid == header->end() ? std::string() : kid->get<std::string>();
    jwt.claims = std::move(claims).value();
    jwt.signing_input = std::string(token.substr(0, second));
    jwt.signature = std::move(signature).value();
    return jwt;
}

bool hs256_signature_matches(std::string_view secret, const UnverifiedJwt& jwt) {
    const auto mac = hmac_sha256(secret, jwt.signing_input);
    if (jwt.signature.size() != mac.size()) return false;
    return sodium_memcmp(mac.data(), jwt.signature.data(), mac.size()) == 0;
}

std::int64_t expiry_of_claims(const nlohmann::json& claims) {
    const auto exp_field = claims.find("exp");
    if (exp_field == claims.end()) return 0;
    return numeric_date(*exp_field).value_or(0);
}

Result<std::string, Error> user_of_claims(const nlohmann::json& claims, std::int64_t now_seconds) {
    if (auto problem = check_times(claims, now_seconds)) return unexpected(*problem);
    if (!audience_includes_authenticated(claims)) {
        return unexpected(make_error("token_audience_invalid", "the token's aud does not include \"authenticated\""));
    }
    if (auto problem = check_role(claims)) return unexpected(*problem);
    const auto sub = claims.find("sub");
    if (sub == claims.end() || (sub->is_string() && sub->get<std::string>().empty())) {
        return unexpected(make_error("token_subject_missing", "the token has no sub (user id)"));
    }
    if (!sub->is_string() || !is_valid_user_id(sub->get<std::string>())) {
        return unexpected(make_error("token_subject_invalid", "the token's sub is not a valid user id"));
    }
    return sub->get<std::string>();
}

std::string excerpt(std::string_view text) {
    constexpr std::size_t chars_max = 64;
    std::string out;
    for (std::size_t i = 0; i < text.size() && i < chars_max; ++i) {
        const char c = text[i];
        out.push_back(c >= 0x20 && c <= 0x7e ? c : '?');
    }
    if (text.size() > chars_max) out += "...";
    return out;
}

Result<std::string, Error> mint_hs256_token(std::string_view secret, std::string_view sub, std::int64_t now_seconds,
                                            std::int64_t ttl_seconds) {
    if (secret.empty()) return unexpected(make_error("secret_invalid", "the JWT secret is empty"));
    if (!is_valid_user_id(sub)) {
        return unexpected(make_error("sub_invalid", "the user id must be 1-128 characters of A-Z a-z 0-9 - _ . : @ | +"));
    }
    if (ttl_seconds <= 0 || ttl_seconds > limits::dev_token_ttl_seconds_max) {
        return unexpected(make_error("ttl_invalid", "the lifetime must be 1 to " +
                                                        std::to_string(limits::dev_token_ttl_seconds_max) + " seconds"));
    }
    const Json header = {{"alg", "HS256"}, {"typ", "JWT"}};
    const Json claims = {{"sub", std::string(sub)},       {"aud", "authenticated"}, {"role", "authenticated"},
                         {"iat", now_seconds},            {"exp", now_seconds + ttl_seconds}};
    const std::string input = base64url_encode(header.dump()) + "." + base64url_encode(claims.dump());
    const auto mac = hmac_sha256(secret, input);
    return input + "." + base64url_encode(mac.data(), mac.size());
}

}  // namespace tokenmeter::auth
