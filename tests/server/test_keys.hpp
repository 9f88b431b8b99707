// Test signing keys for user tokens, made with OpenSSL in the test: EC P-256
// (ES256) and RSA 2048 (RS256), their public JWKs, and JWS signatures in the
// form JOSE uses (ES256 as raw r||s). Independent of server/auth.
#pragma once

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenmeter/base64url.hpp"

namespace tokenmeter::test {

class TestSigningKey {
public:
    // "ES256" or "RS256".
    TestSigningKey(std::string alg, std::string kid) : alg_(std::move(alg)), kid_(std::move(kid)) {
        key_ = alg_ == "ES256" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                               : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048));
        if (key_ == nullptr) throw std::runtime_error("OpenSSL key generation failed");
    }
    ~TestSigningKey() { EVP_PKEY_free(key_); }
    TestSigningKey(const TestSigningKey&) = delete;
    TestSigningKey& operator=(const TestSigningKey&) = delete;

    const std::string& alg() const { return alg_; }
    const std::string& kid() const { return kid_; }

    // The public JWK, as Supabase's JWKS lists it.
    nlohmann::json public_jwk() const {
        if (alg_ == "ES256") {
            return {{"kty", "EC"}, {"crv", "P-256"}, {"alg", "ES256"}, {"use", "sig"}, {"kid", kid_},
                    {"x", bn_param(OSSL_PKEY_PARAM_EC_PUB_X, 32)}, {"y", bn_param(OSSL_PKEY_PARAM_EC_PUB_Y, 32)}};
        }
        return {{"kty", "RSA"}, {"alg", "RS256"}, {"use", "sig"}, {"kid", kid_},
                {"n", bn_param(OSSL_PKEY_PARAM_RSA_N, 0)}, {"e", bn_param(OSSL_PKEY_PARAM_RSA_E, 0)}};
    }

    std::string public_pem() const {
        BIO* bio = BIO_new(BIO_s_mem());
        PEM_write_bio_PUBKEY(bio, key_);
        char* data = nullptr;
        const long size = BIO_get_mem_data(bio, &data);
        std::string pem(data, static_cast<std::size_t>(size));
        BIO_free(bio);
        return pem;
    }

    // The JWS signature of `input` (ES256: raw r||s, 64 bytes).
    std::string sign(const std::string& input) const {
        const std::string signature = sign_der(input);
        return alg_ == "ES256" ? der_to_raw(signature) : signature;
    }

    // The signature as OpenSSL makes it: DER for ECDSA (not what JWS uses),
    // the plain RSA signature for RS256.
    std::string sign_der(const std::string& input) const {
        EVP_MD_CTX* ctx = EVP_MD_CTX_new();
        std::size_t size = 0;
        EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_);
        EVP_DigestSign(ctx, nullptr, &size, reinterpret_cast<const unsigned char*>(input.data()), input.size());
        std::string signature(size, '\0');
        EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &size,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size());
        EVP_MD_CTX_free(ctx);
        signature.resize(size);
        return signature;
    }

    // A compact JWS with this key's alg and kid (unless the header overrides).
    std::string token(const nlohmann::json& claims, nlohmann::json header = nlohmann::json::object()) const {
        if (!header.contains("alg")) header["alg"] = alg_;
        if (!header.contains("kid")) header["kid"] = kid_;
        if (!header.contains("typ")) header["typ"] = "JWT";
        const std::string input = base64url_encode(header.dump()) + "." + base64url_encode(claims.dump());
        return input + "." + base64url_encode(sign(input));
    }

private:
    std::string bn_param(const char* name, int width) const {
        BIGNUM* value = nullptr;
        if (EVP_PKEY_get_bn_param(key_, name, &value) != 1) throw std::runtime_error("OpenSSL: no parameter");
        const int size = width > 0 ? width : BN_num_bytes(value);
        std::string bytes(static_cast<std::size_t>(size), '\0');
        BN_bn2binpad(value, reinterpret_cast<unsigned char*>(bytes.data()), size);
        BN_free(value);
        return base64url_encode(bytes);
    }

    static std::string der_to_raw(const std::string& der) {
        const auto* cursor = reinterpret_cast<const unsigned char*>(der.data());
        ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size()));
        std::string raw(64, '\0');
        BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
        ECDSA_SIG_free(sig);
        return raw;
    }

    std::string alg_;
    std::string kid_;
    EVP_PKEY* key_ = nullptr;
};

inline nlohmann::json jwks_of(std::initializer_list<const TestSigningKey*> keys) {
    nlohmann::json list = nlohmann::json::array();
    for (const TestSigningKey* key : keys) list.push_back(key->public_jwk());
    return {{"keys", list}};
}

}  // namespace tokenmeter::test
