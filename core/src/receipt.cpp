#include "tokenmeter/receipt.hpp"

#include <algorithm>
#include <utility>

#include <sodium.h>

#include "tokenmeter/assert.hpp"
#include "tokenmeter/base64url.hpp"
#include "tokenmeter/json_input.hpp"
#include "tokenmeter/jws.hpp"
#include "tokenmeter/limits.hpp"
#include "tokenmeter/period.hpp"

namespace tokenmeter {

namespace {

using json_input::Json;

// A SHA-256 in base64url is 43 characters.
constexpr std::size_t digest_text_bytes = 43;

Error receipt_error(std::string code, std::string message) { return make_error(std::move(code), std::move(message)); }

bool is_digest_text(std::string_view text) {
    if (text.size() != digest_text_bytes) return false;
    auto bytes = base64url_decode(text);
    return bytes.has_value() && bytes->size() == crypto_hash_sha256_BYTES;
}

void assert_claims(const ReceiptClaims& claims) {
    TM_ASSERT(is_valid_user_id(claims.sub));
    TM_ASSERT(claims.seq >= 1);
    TM_ASSERT(claims.iat >= 0);
    TM_ASSERT(claims.period_start >= limits::instant_min);
    TM_ASSERT(claims.period_start < claims.period_end);
    TM_ASSERT(claims.prev.empty() == (claims.seq == 1));
    TM_ASSERT(claims.prev.empty() || is_digest_text(claims.prev));
    assert_balance(claims.balance);
}

Json claims_json(const ReceiptClaims& claims) {
    Json payload = {
        {"iss", receipt_issuer},
        {"sub", claims.sub},
        {"iat", claims.iat},
        {"seq", claims.seq},
        {"prev", claims.prev},
        {"plan", claims.plan},
        {"period_start", format_rfc3339(claims.period_start)},
        {"period_end", format_rfc3339(claims.period_end)},
        {"tokens_limit", claims.balance.tokens_limit},
        {"tokens_used", claims.balance.tokens_used},
        {"tokens_reserved", claims.balance.tokens_reserved},
        {"avatars_limit", claims.balance.avatars_limit},
        {"avatars_used", claims.balance.avatars_used},
        {"avatars_reserved", claims.balance.avatars_reserved},
    };
    // Credits are claimed only by receipts of accounts that ever held them, so
    // every receipt made before credit packs existed keeps its exact shape.
    if (claims.balance.credits != 0 || claims.balance.credits_clawed != 0) {
        payload["credits"] = claims.balance.credits;
        payload["credits_clawed"] = claims.balance.credits_clawed;
    }
    if (!claims.event.empty()) payload["event"] = claims.event;
    // Only changes that price (authorize, commit, record) name the price
    // book's version; every other receipt keeps its earlier shape.
    if (!claims.catalog_version.empty()) payload["catalog_version"] = claims.catalog_version;
    return payload;
}

Error claims_invalid(std::string message) { return receipt_error("receipt_claims_invalid", std::move(message)); }

Result<std::int64_t, Error> timestamp_claim(const Json& payload, std::string_view key) {
    auto text = json_input::string_member(payload, key, "claims");
    if (!text) return unexpected(claims_invalid(text.error().message));
    auto instant = parse_rfc3339(*text);
    if (!instant) return unexpected(claims_invalid("claims." + std::string(key) + ": " + instant.error().message));
    return *instant;
}

Result<std::int64_t, Error> count_claim(const Json& payload, std::string_view key) {
    auto value = json_input::count_member(payload, key, "claims", limits::count_max);
    if (!value) return unexpected(claims_invalid(value.error().message));
    return *value;
}

// Reads the optional credit claims: both or neither; credits may be negative (a debt).
std::optional<Error> read_credit_claims(const Json& payload, ReceiptClaims& claims) {
    const bool has_credits = payload.contains("credits");
    if (has_credits != payload.contains("credits_clawed")) {
        return claims_invalid("claims.credits and claims.credits_clawed come together");
    }
    if (!has_credits) return std::nullopt;
    const Json& credits = payload["credits"];
    // An unsigned value past int64 would wrap in get<int64_t>: bound it as unsigned first.
    const bool in_range = credits.is_number_unsigned()
                              ? credits.get<std::uint64_t>() <= static_cast<std::uint64_t>(limits::count_max)
                              : credits.is_number_integer() && credits.get<std::int64_t>() >= -limits::count_max;
    if (!in_range) {
        return claims_invalid("claims.credits must be an integer within +-" + std::to_string(limits::count_max));
    }
    claims.balance.credits = credits.get<std::int64_t>();
    auto clawed = count_claim(payload, "credits_clawed");
    if (!clawed) return clawed.error();
    claims.balance.credits_clawed = *clawed;
    return std::nullopt;
}

// Reads the balance claims into `claims`.
std::optional<Error> read_balance_claims(const Json& payload, ReceiptClaims& claims) {
    const std::pair<std::string_view, std::int64_t*> fields[] = {
        {"tokens_limit", &claims.balance.tokens_limit},   {"tokens_used", &claims.balance.tokens_used},
        {"tokens_reserved", &claims.balance.tokens_reserved}, {"avatars_limit", &claims.balance.avatars_limit},
        {"avatars_used", &claims.balance.avatars_used},   {"avatars_reserved", &claims.balance.avatars_reserved},
    };
    for (const auto& [key, target] : fields) {
        auto value = count_claim(payload, key);
        if (!value) return value.error();
        *target = *value;
    }
    return read_credit_claims(payload, claims);
}

Result<ReceiptClaims, Error> parse_claims(std::string_view payload_text) {
    auto payload = json_input::parse(payload_text);
    if (!payload || !payload->is_object()) return unexpected(claims_invalid("the payload is not a JSON object"));
    ReceiptClaims claims;
    auto iss = json_input::string_member(*payload, "iss", "claims");
    if (!iss || *iss != receipt_issuer) return unexpected(claims_invalid("claims.iss must be \"tokenmeter\""));
    auto sub = json_input::string_member(*payload, "sub", "claims");
    if (!sub || !is_valid_user_id(*sub)) return unexpected(claims_invalid("claims.sub must be a user id"));
    claims.sub = std::move(sub).value();
    auto plan = json_input::string_member(*payload, "plan", "claims");
    if (!plan) return unexpected(claims_invalid(plan.error().message));
    claims.plan = std::move(plan).value();
    auto prev = json_input::string_member(*payload, "prev", "claims");
    if (!prev || (!prev->empty() && !is_digest_text(*prev))) {
        return unexpected(claims_invalid("claims.prev must be empty or a base64url SHA-256"));
    }
    claims.prev = std::move(prev).value();
    auto iat = count_claim(*payload, "iat");
    if (!iat) return unexpected(iat.error());
    claims.iat = *iat;
    auto seq = count_claim(*payload, "seq");
    if (!seq || *seq < 1) return unexpected(claims_invalid("claims.seq must be a positive integer"));
    claims.seq = *seq;
    if (claims.prev.empty() != (claims.seq == 1)) {
        return unexpected(claims_invalid("claims.prev must be empty exactly for seq 1"));
    }
    auto start = timestamp_claim(*payload, "period_start");
    if (!start) return unexpected(start.error());
    auto end = timestamp_claim(*payload, "period_end");
    if (!end) return unexpected(end.error());
    if (*start >= *end) return unexpected(claims_invalid("claims.period_start must precede claims.period_end"));
    // The signer asserts this (assert_claims); a verifier refuses what no
    // signer could have made.
    if (*start < limits::instant_min) return unexpected(claims_invalid("claims.period_start must not be before 1970"));
    claims.period_start = *start;
    claims.period_end = *end;
    if (auto error = read_balance_claims(*payload, claims)) return unexpected(*error);
    if (payload->contains("event")) {
        auto event = json_input::string_member(*payload, "event", "claims");
        if (!event) return unexpected(claims_invalid(event.error().message));
        claims.event = std::move(event).value();
    }
    if (payload->contains("catalog_version")) {
        auto version = json_input::string_member(*payload, "catalog_version", "claims");
        if (!version) return unexpected(claims_invalid(version.error().message));
        if (version->empty() || version->size() > limits::id_bytes_max) {
            return unexpected(claims_invalid("claims.catalog_version must be 1-" + std::to_string(limits::id_bytes_max) +
                                             " characters"));
        }
        claims.catalog_version = std::move(version).value();
    }
    return claims;
}

// The receipt header must be exactly {alg, kid, typ}: no jku, jwk, x5u or
// crit that another verifier might honour differently.
Result<std::string, Error> receipt_kid(std::string_view header_text) {
    auto header = json_input::parse(header_text);
    if (!header || !header->is_object()) return unexpected(receipt_error("receipt_malformed", "the header is not a JSON object"));
    if (auto unknown = json_input::refuse_unknown_fields(*header, {"alg", "kid", "typ"}, "header")) {
        return unexpected(receipt_error("receipt_malformed", unknown->message));
    }
    auto alg = json_input::string_member(*header, "alg", "header");
    if (!alg || *alg != "EdDSA") return unexpected(receipt_error("receipt_malformed", "header.alg must be EdDSA"));
    auto typ = json_input::string_member(*header, "typ", "header");
    if (!typ || *typ != receipt_type) {
        return unexpected(receipt_error("receipt_malformed", "header.typ must be " + std::string(receipt_type)));
    }
    auto kid = json_input::string_member(*header, "kid", "header");
    if (!kid) return unexpected(receipt_error("receipt_malformed", "header.kid is missing"));
    return std::move(kid).value();
}

}  // namespace

bool operator==(const ReceiptClaims& a, const ReceiptClaims& b) {
    return a.sub == b.sub && a.iat == b.iat && a.seq == b.seq && a.prev == b.prev && a.plan == b.plan &&
           a.period_start == b.period_start && a.period_end == b.period_end && a.balance == b.balance &&
           a.event == b.event && a.catalog_version == b.catalog_version;
}

bool is_valid_user_id(std::string_view id) {
    if (id.empty() || id.size() > 128) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
               c == '.' || c == ':' || c == '@' || c == '|' || c == '+';
    });
}

std::string receipt_payload_json(const ReceiptClaims& claims) {
    assert_claims(claims);
    return claims_json(claims).dump();
}

std::string sign_receipt(const ReceiptClaims& claims, const SigningKey& key) {
    const std::string header =
        Json{{"alg", "EdDSA"}, {"kid", key.kid()}, {"typ", receipt_type}}.dump();
    const std::string payload = receipt_payload_json(claims);
    std::string jws = sign_compact(header, payload, key);
    // Pair assertion: what is signed parses back to the same claims, within
    // the size every verifier accepts.
    TM_ASSERT(jws.size() <= limits::receipt_bytes_max);
    auto parsed = parse_claims(payload);
    TM_ASSERT(parsed.has_value());
    TM_ASSERT(*parsed == claims);
    return jws;
}

Result<ReceiptClaims, Error> verify_receipt(std::string_view jws, const std::vector<VerificationKey>& keys) {
    if (jws.size() > limits::receipt_bytes_max) {
        return unexpected(receipt_error("receipt_too_large", "a receipt is at most " + std::to_string(limits::receipt_bytes_max) + " bytes"));
    }
    auto segments = split_compact(jws);
    auto header_text = segments ? base64url_decode(segments->header) : std::nullopt;
    if (!header_text) return unexpected(receipt_error("receipt_malformed", "not a compact JWS"));
    auto kid = receipt_kid(*header_text);
    if (!kid) return unexpected(kid.error());
    auto key = std::find_if(keys.begin(), keys.end(), [&](const VerificationKey& k) { return k.kid == *kid; });
    if (key == keys.end()) return unexpected(receipt_error("receipt_unknown_key", "no key with kid \"" + json_input::utf8_prefix(*kid, 64) + "\""));
    auto verified = verify_compact(jws, key->key);
    if (!verified) {
        const bool bad_signature = verified.error().code == "signature_invalid";
        return unexpected(receipt_error(bad_signature ? "signature_invalid" : "receipt_malformed", verified.error().message));
    }
    return parse_claims(verified->payload);
}

Result<ReceiptClaims, Error> decode_receipt_claims(std::string_view jws) {
    if (jws.size() > limits::receipt_bytes_max) return unexpected(receipt_error("receipt_too_large", "receipt too large"));
    auto segments = split_compact(jws);
    auto payload = segments ? base64url_decode(segments->payload) : std::nullopt;
    if (!payload) return unexpected(receipt_error("receipt_malformed", "not a compact JWS"));
    return parse_claims(*payload);
}

std::string receipt_chain_digest(std::string_view jws) {
    auto segments = split_compact(jws);
    TM_ASSERT(segments.has_value());
    return sha256_base64url(segments->payload);
}

}  // namespace tokenmeter
