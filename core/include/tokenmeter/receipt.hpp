// Receipts: balances signed by the server, verifiable by anyone offline.
//
// A receipt is a JWS in compact serialization (RFC 7515) signed with Ed25519
// ("alg":"EdDSA", RFC 8037), so any JOSE library verifies it and the wasm core
// verifies it in the browser. Signing and verification use libsodium; the one
// verification policy is libsodium's crypto_sign_verify_detached (canonical S,
// no small-order keys).
//
// The header is {"alg":"EdDSA","kid":…,"typ":"tokenmeter-receipt+jwt"} and the
// payload the claims below as compact JSON with sorted keys. `prev` chains
// receipts: it is base64url(SHA-256(previous receipt's payload segment)), the
// ASCII bytes of the second dot-separated part, empty for a user's first.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenmeter/error.hpp"
#include "tokenmeter/ledger.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter {

inline constexpr std::size_t ed25519_seed_bytes = 32;
inline constexpr std::size_t ed25519_public_key_bytes = 32;
inline constexpr std::size_t ed25519_secret_key_bytes = 64;
inline constexpr std::size_t ed25519_signature_bytes = 64;

inline constexpr std::string_view receipt_issuer = "tokenmeter";
inline constexpr std::string_view receipt_type = "tokenmeter-receipt+jwt";

// Initializes libsodium once; false if it cannot run here.
[[nodiscard]] bool crypto_ready();

struct PublicKey {
    std::array<std::uint8_t, ed25519_public_key_bytes> bytes{};
};

bool operator==(const PublicKey&, const PublicKey&);

using Seed = std::array<std::uint8_t, ed25519_seed_bytes>;

// An Ed25519 signing key. The secret is wiped when the key is destroyed.
class SigningKey {
public:
    // Derives the key pair from a 32-byte seed (RFC 8032 private key "d").
    static SigningKey from_seed(const Seed& seed);
    SigningKey(const SigningKey&) = delete;
    SigningKey& operator=(const SigningKey&) = delete;
    SigningKey(SigningKey&& other) noexcept;
    SigningKey& operator=(SigningKey&& other) noexcept;
    ~SigningKey();

    const PublicKey& public_key() const { return public_key_; }
    // RFC 7638 JWK thumbprint of the public key.
    const std::string& kid() const { return kid_; }
    // The 64-byte detached Ed25519 signature of `message`.
    std::array<std::uint8_t, ed25519_signature_bytes> sign(std::string_view message) const;

private:
    SigningKey() = default;
    std::array<std::uint8_t, ed25519_secret_key_bytes> secret_{};
    PublicKey public_key_;
    std::string kid_;
};

// A public key as a JWKS lists it.
struct VerificationKey {
    std::string kid;
    PublicKey key;
};

// RFC 7638 thumbprint: base64url(SHA-256({"crv":"Ed25519","kty":"OKP","x":…})).
std::string jwk_thumbprint(const PublicKey& key);

// {"alg":"EdDSA","crv":"Ed25519","kid":…,"kty":"OKP","use":"sig","x":…}
std::string jwk_json(const VerificationKey& key);
// {"keys":[…]}
std::string jwks_json(const std::vector<VerificationKey>& keys);

// Reads the OKP/Ed25519 keys of a JWKS. Keys of other types are skipped (a
// JWKS may serve several); an Ed25519 key without kid or with a malformed x is
// an error. Errors: jwks_malformed, jwks_too_large, jwks_invalid_key.
Result<std::vector<VerificationKey>, Error> parse_jwks(std::string_view json_text);

// libsodium's Ed25519 verification (the one policy every verifier here uses):
// false for a signature that is not 64 bytes or does not verify.
[[nodiscard]] bool ed25519_verify(std::string_view message, std::string_view signature, const PublicKey& key);

// base64url(SHA-256(bytes)).
std::string sha256_base64url(std::string_view bytes);

// Generic JWS compact signing (used for receipts, and to reproduce RFC 8037).
std::string sign_compact(std::string_view header_json, std::string_view payload, const SigningKey& key);

struct CompactJws {
    std::string header_json;  // decoded header bytes
    std::string payload;      // decoded payload bytes
};

// Splits and checks the signature of a compact JWS under `key`, with no
// header policy. Errors: jws_malformed, jws_too_large, signature_invalid.
Result<CompactJws, Error> verify_compact(std::string_view jws, const PublicKey& key);

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
