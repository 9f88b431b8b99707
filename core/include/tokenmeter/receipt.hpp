// Receipts: balances signed by the server, verifiable by anyone offline.
//
// A receipt is a JWS in compact serialization (RFC 7515, jws.hpp) signed with
// Ed25519 ("alg":"EdDSA", RFC 8037, ed25519.hpp), so any JOSE library verifies
// it and the wasm core verifies it in the browser.
//
// The header is {"alg":"EdDSA","kid":…,"typ":"tokenmeter-receipt+jwt"} and the
// payload the claims below as compact JSON with sorted keys. `prev` chains
// receipts: it is base64url(SHA-256(previous receipt's payload segment)), the
// ASCII bytes of the second dot-separated part, empty for a user's first.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

// Receipts are signed and checked with these keys, and chained with
// sha256_base64url: users of receipts get both from here.
#include "tokenmeter/crypto.hpp"
#include "tokenmeter/ed25519.hpp"
#include "tokenmeter/error.hpp"
#include "tokenmeter/ledger.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter {

inline constexpr std::string_view receipt_issuer = "tokenmeter";
inline constexpr std::string_view receipt_type = "tokenmeter-receipt+jwt";

// The claims of a receipt.
struct ReceiptClaims {
    std::string sub;  // user id
    std::int64_t iat = 0;
    std::int64_t seq = 0;  // per-user, +1 per ledger change, from 1
    std::string prev;      // chain digest of the previous receipt, "" for seq 1
    std::string plan;
    std::int64_t period_start = 0;  // unix seconds; RFC 3339 in the payload
    std::int64_t period_end = 0;
    Balance balance;
    std::string event;  // the ledger change that produced it; may be empty
    // The price book version that priced the change (authorize, commit,
    // record); empty, and not claimed, for every other change.
    std::string catalog_version;
};

bool operator==(const ReceiptClaims&, const ReceiptClaims&);

// User ids: 1-128 characters of A-Z a-z 0-9 and - _ . : @ | +.
bool is_valid_user_id(std::string_view id);

// The payload JSON of a receipt (sorted keys, compact).
std::string receipt_payload_json(const ReceiptClaims& claims);

// Signs a receipt. The claims must be valid (asserted): user id, counts,
// period order, prev form.
std::string sign_receipt(const ReceiptClaims& claims, const SigningKey& key);

// Verifies a receipt against a set of keys: size, strict base64url, the
// header exactly {alg: EdDSA, kid, typ}, a known kid, the signature, and every
// claim's presence and type. Errors: receipt_malformed, receipt_too_large,
// receipt_unknown_key, signature_invalid, receipt_claims_invalid.
Result<ReceiptClaims, Error> verify_receipt(std::string_view jws, const std::vector<VerificationKey>& keys);

// The claims of a receipt WITHOUT checking its signature: for receipts the
// server reads back from its own store. Errors as verify_receipt.
Result<ReceiptClaims, Error> decode_receipt_claims(std::string_view jws);

// The `prev` value for the receipt after this one.
std::string receipt_chain_digest(std::string_view jws);

}  // namespace tokenmeter
