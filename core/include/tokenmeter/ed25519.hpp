// Ed25519 keys as JOSE knows them: signing and verifying detached
// signatures, RFC 7638 thumbprints as key ids, and JWK / JWKS documents
// (OKP keys, RFC 8037).
//
// Signing and verification use libsodium; the one verification policy is
// libsodium's crypto_sign_verify_detached (canonical S, no small-order keys).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenmeter/crypto.hpp"
#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter {

inline constexpr std::size_t ed25519_seed_bytes = 32;
inline constexpr std::size_t ed25519_public_key_bytes = 32;
inline constexpr std::size_t ed25519_secret_key_bytes = 64;
inline constexpr std::size_t ed25519_signature_bytes = 64;

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

// libsodium's Ed25519 verification (the one policy every verifier here uses):
// false for a signature that is not 64 bytes or does not verify.
[[nodiscard]] bool ed25519_verify(std::string_view message, std::string_view signature, const PublicKey& key);

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

}  // namespace tokenmeter
