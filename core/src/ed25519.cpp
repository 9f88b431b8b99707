#include "tokenmeter/ed25519.hpp"

#include <algorithm>
#include <utility>

#include <sodium.h>

#include "tokenmeter/assert.hpp"
#include "tokenmeter/base64url.hpp"
#include "tokenmeter/json_input.hpp"
#include "tokenmeter/limits.hpp"

namespace tokenmeter {

namespace {

using json_input::Json;

Result<VerificationKey, Error> parse_okp_key(const Json& key, std::size_t index) {
    const std::string where = "keys[" + std::to_string(index) + "]";
    auto kid = json_input::string_member(key, "kid", where);
    if (!kid || kid->empty()) return unexpected(make_error("jwks_invalid_key", where + " has no kid"));
    auto x = json_input::string_member(key, "x", where);
    auto bytes = x ? base64url_decode(*x) : std::nullopt;
    if (!bytes || bytes->size() != ed25519_public_key_bytes) {
        return unexpected(make_error("jwks_invalid_key", where + ".x must be a base64url 32-byte key"));
    }
    if (key.contains("alg") && !(key["alg"].is_string() && key["alg"].get<std::string>() == "EdDSA")) {
        return unexpected(make_error("jwks_invalid_key", where + ".alg must be EdDSA"));
    }
    VerificationKey result;
    result.kid = std::move(kid).value();
    std::copy(bytes->begin(), bytes->end(), result.key.bytes.begin());
    return result;
}

Json jwk_object(const VerificationKey& key) {
    return Json{{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", base64url_encode(key.key.bytes.data(), key.key.bytes.size())},
                {"kid", key.kid}, {"alg", "EdDSA"}, {"use", "sig"}};
}

}  // namespace

bool operator==(const PublicKey& a, const PublicKey& b) { return a.bytes == b.bytes; }

SigningKey SigningKey::from_seed(const Seed& seed) {
    TM_ASSERT(crypto_ready());
    SigningKey key;
    crypto_sign_seed_keypair(key.public_key_.bytes.data(), key.secret_.data(), seed.data());
    key.kid_ = jwk_thumbprint(key.public_key_);
    return key;
}

SigningKey::SigningKey(SigningKey&& other) noexcept
    : secret_(other.secret_), public_key_(other.public_key_), kid_(std::move(other.kid_)) {
    sodium_memzero(other.secret_.data(), other.secret_.size());
}

SigningKey& SigningKey::operator=(SigningKey&& other) noexcept {
    if (this != &other) {
        secret_ = other.secret_;
        public_key_ = other.public_key_;
        kid_ = std::move(other.kid_);
        sodium_memzero(other.secret_.data(), other.secret_.size());
    }
    return *this;
}

SigningKey::~SigningKey() { sodium_memzero(secret_.data(), secret_.size()); }

std::array<std::uint8_t, ed25519_signature_bytes> SigningKey::sign(std::string_view message) const {
    std::array<std::uint8_t, ed25519_signature_bytes> signature{};
    crypto_sign_detached(signature.data(), nullptr, reinterpret_cast<const unsigned char*>(message.data()),
                         message.size(), secret_.data());
    return signature;
}

bool ed25519_verify(std::string_view message, std::string_view signature, const PublicKey& key) {
    TM_ASSERT(crypto_ready());
    if (signature.size() != ed25519_signature_bytes) return false;
    return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                                       key.bytes.data()) == 0;
}

std::string jwk_thumbprint(const PublicKey& key) {
    // RFC 7638: the required members in lexicographic order, no whitespace.
    const std::string canonical = R"({"crv":"Ed25519","kty":"OKP","x":")" +
                                  base64url_encode(key.bytes.data(), key.bytes.size()) + "\"}";
    return sha256_base64url(canonical);
}

std::string jwk_json(const VerificationKey& key) { return jwk_object(key).dump(); }

std::string jwks_json(const std::vector<VerificationKey>& keys) {
    Json list = Json::array();
    for (const VerificationKey& key : keys) list.push_back(jwk_object(key));
    return Json{{"keys", std::move(list)}}.dump();
}

Result<std::vector<VerificationKey>, Error> parse_jwks(std::string_view json_text) {
    if (json_text.size() > limits::jwks_bytes_max) return unexpected(make_error("jwks_too_large", "the JWKS is too large"));
    auto document = json_input::parse(json_text);
    if (!document || !document->is_object() || !document->contains("keys") || !(*document)["keys"].is_array()) {
        return unexpected(make_error("jwks_malformed", "a JWKS is an object with a \"keys\" array"));
    }
    const Json& keys = (*document)["keys"];
    if (keys.size() > limits::jwks_keys_max) return unexpected(make_error("jwks_too_large", "the JWKS has too many keys"));
    std::vector<VerificationKey> result;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        const Json& key = keys[i];
        if (!key.is_object()) return unexpected(make_error("jwks_malformed", "every JWKS key must be an object"));
        const bool okp = key.contains("kty") && key["kty"].is_string() && key["kty"].get<std::string>() == "OKP";
        const bool ed25519 = key.contains("crv") && key["crv"].is_string() && key["crv"].get<std::string>() == "Ed25519";
        if (!okp || !ed25519) continue;
        auto parsed = parse_okp_key(key, i);
        if (!parsed) return unexpected(parsed.error());
        result.push_back(std::move(parsed).value());
    }
    return result;
}

}  // namespace tokenmeter
