// JWS in compact serialization (RFC 7515) with Ed25519 ("alg":"EdDSA",
// RFC 8037): header.payload.signature, each part base64url without padding.
//
// This layer knows nothing about what is signed: it signs given header and
// payload bytes and checks a signature under one key. Header policy (which
// algorithms and members are allowed) belongs to the caller, see receipt.hpp.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "tokenmeter/ed25519.hpp"
#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter {

// The three parts of a compact JWS as they appear in it, still encoded.
struct JwsSegments {
    std::string_view header;
    std::string_view payload;
    std::string_view signature;
};

// Splits at the two dots; nullopt unless there are exactly two.
std::optional<JwsSegments> split_compact(std::string_view jws);

// Signs `payload` under `header_json` (used for receipts, and to reproduce
// RFC 8037's examples).
std::string sign_compact(std::string_view header_json, std::string_view payload, const SigningKey& key);

struct CompactJws {
    std::string header_json;  // decoded header bytes
    std::string payload;      // decoded payload bytes
};

// Splits and checks the signature of a compact JWS under `key`, with no
// header policy. Errors: jws_malformed, jws_too_large, signature_invalid.
Result<CompactJws, Error> verify_compact(std::string_view jws, const PublicKey& key);

}  // namespace tokenmeter
