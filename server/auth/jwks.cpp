#include "auth/jwks.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "auth/jwt.hpp"
#include "auth/limits.hpp"
#include "tokenmeter/base64url.hpp"

namespace tokenmeter::auth {

namespace {

using Json = nlohmann::json;

// Owners for OpenSSL objects, so every early return frees them.
struct FreePkey {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct FreePkeyCtx {
    void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
struct FreeParamBld {
    void operator()(OSSL_PARAM_BLD* bld) const { OSSL_PARAM_BLD_free(bld); }
};
struct FreeParams {
    void operator()(OSSL_PARAM* params) const { OSSL_PARAM_free(params); }
};
struct FreeBignum {
    void operator()(BIGNUM* n) const { BN_free(n); }
};
struct FreeMdCtx {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct FreeEcdsaSig {
    void operator()(ECDSA_SIG* sig) const { ECDSA_SIG_free(sig); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, FreePkey>;
using BignumPtr = std::unique_ptr<BIGNUM, FreeBignum>;

Error invalid(const std::string& kid, const std::string& message) {
    return make_error("jwks_invalid", "key \"" + excerpt(kid) + "\": " + message);
}

std::optional<std::string> string_member(const Json& object, const char* name) {
    const auto found = object.find(name);
    if (found == object.end() || !found->is_string()) return std::nullopt;
    return found->get<std::string>();
}

const unsigned char* bytes_of(const std::string& text) { return reinterpret_cast<const unsigned char*>(text.data()); }

// A public key from OpenSSL parameters, checked (for EC: the point is on the curve).
PkeyPtr key_from_params(const char* type, OSSL_PARAM_BLD& builder) {
    std::unique_ptr<OSSL_PARAM, FreeParams> params(OSSL_PARAM_BLD_to_param(&builder));
    std::unique_ptr<EVP_PKEY_CTX, FreePkeyCtx> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return nullptr;
    EVP_PKEY* raw = nullptr;
    if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) return nullptr;
    PkeyPtr key(raw);
    std::unique_ptr<EVP_PKEY_CTX, FreePkeyCtx> check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
    return key;
}

Result<PkeyPtr, Error> ec_p256_key(const Json& jwk, const std::string& kid) {
    const auto x = base64url_decode(string_member(jwk, "x").value_or("!"));
    const auto y = base64url_decode(string_member(jwk, "y").value_or("!"));
    if (!x || !y || x->size() != 32 || y->size() != 32) {
        return unexpected(invalid(kid, "x and y must be 32 bytes of canonical base64url"));
    }
    const std::string point = std::string(1, '\x04') + *x + *y;  // SEC1 uncompressed
    std::unique_ptr<OSSL_PARAM_BLD, FreeParamBld> builder(OSSL_PARAM_BLD_new());
    if (!builder ||
        OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
        return unexpected(invalid(kid, "OpenSSL could not build the key"));
    }
    PkeyPtr key = key_from_params("EC", *builder);
    if (!key) return unexpected(invalid(kid, "the point is not on P-256"));
    return key;
}

Result<PkeyPtr, Error> rsa_key(const Json& jwk, const std::string& kid) {
    const auto n = base64url_decode(string_member(jwk, "n").value_or("!"));
    const auto e = base64url_decode(string_member(jwk, "e").value_or("!"));
    if (!n || !e || n->empty() || e->empty() || e->size() > 8) {
        return unexpected(invalid(kid, "n and e must be canonical base64url"));
    }
    BignumPtr modulus(BN_bin2bn(bytes_of(*n), static_cast<int>(n->size()), nullptr));
    BignumPtr exponent(BN_bin2bn(bytes_of(*e), static_cast<int>(e->size()), nullptr));
    if (!modulus || !exponent) return unexpected(invalid(kid, "OpenSSL could not read n and e"));
    const int bits = BN_num_bits(modulus.get());
    if (bits < limits::rsa_modulus_bits_min || bits > limits::rsa_modulus_bits_max) {
        return unexpected(invalid(kid, "the RSA modulus has " + std::to_string(bits) + " bits (2048-8192 accepted)"));
    }
    std::unique_ptr<OSSL_PARAM_BLD, FreeParamBld> builder(OSSL_PARAM_BLD_new());
    if (!builder || OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, modulus.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, exponent.get()) != 1) {
        return unexpected(invalid(kid, "OpenSSL could not build the key"));
    }
    PkeyPtr key = key_from_params("RSA", *builder);
    if (!key) return unexpected(invalid(kid, "not a valid RSA public key"));
    return key;
}

// The algorithm a JWK is for, or nullopt for a kind of key this verifier
// does not use. An explicit "alg" must agree with the key type.
std::optional<KeyAlgorithm> algorithm_of(const Json& jwk) {
    const auto use = string_member(jwk, "use");
    if (jwk.contains("use") && use != "sig") return std::nullopt;
    const auto kty = string_member(jwk, "kty");
    const auto alg = string_member(jwk, "alg");
    if (jwk.contains("alg") && !alg) return std::nullopt;
    if (kty == "EC" && string_member(jwk, "crv") == "P-256" && (!alg || *alg == "ES256")) return KeyAlgorithm::es256;
    if (kty == "RSA" && (!alg || *alg == "RS256")) return KeyAlgorithm::rs256;
    return std::nullopt;
}

// One entry of "keys": a TokenKey, nullopt when skipped, or an error.
Result<std::optional<TokenKey>, Error> parse_key(const Json& jwk) {
    if (!jwk.is_object()) return unexpected(make_error("jwks_invalid", "a key is not a JSON object"));
    const auto algorithm = algorithm_of(jwk);
    if (!algorithm) return std::optional<TokenKey>();
    const auto kid = string_member(jwk, "kid");
    // Tokens choose a key by kid; a key without one could never be chosen.
    if (!kid || kid->empty()) return std::optional<TokenKey>();
    auto key = *algorithm == KeyAlgorithm::es256 ? ec_p256_key(jwk, *kid) : rsa_key(jwk, *kid);
    if (!key) return unexpected(key.error());
    return std::optional<TokenKey>(TokenKey(*kid, *algorithm, std::shared_ptr<EVP_PKEY>(key->release(), FreePkey())));
}

// JWS ES256 signatures are r||s (32 bytes each); OpenSSL wants DER.
std::optional<std::string> es256_der(std::string_view raw) {
    if (raw.size() != 64) return std::nullopt;
    const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
    std::unique_ptr<ECDSA_SIG, FreeEcdsaSig> sig(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(bytes, 32, nullptr);
    BIGNUM* s = BN_bin2bn(bytes + 32, 32, nullptr);
    if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
        BN_free(r);
        BN_free(s);
        return std::nullopt;
    }
    unsigned char* der = nullptr;
    const int length = i2d_ECDSA_SIG(sig.get(), &der);
    if (length <= 0) return std::nullopt;
    std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
    OPENSSL_free(der);
    return out;
}

bool sha256_signature_verifies(EVP_PKEY& key, std::string_view input, std::string_view signature) {
    std::unique_ptr<EVP_MD_CTX, FreeMdCtx> ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, &key) != 1) return false;
    return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                            reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

}  // namespace

std::string_view algorithm_name(KeyAlgorithm algorithm) {
    return algorithm == KeyAlgorithm::es256 ? "ES256" : "RS256";
}

TokenKey::TokenKey(std::string kid, KeyAlgorithm algorithm, std::shared_ptr<EVP_PKEY> key)
    : kid_(std::move(kid)), algorithm_(algorithm), key_(std::move(key)) {}

bool TokenKey::verifies(std::string_view signing_input, std::string_view signature) const {
    if (algorithm_ == KeyAlgorithm::es256) {
        const auto der = es256_der(signature);
        return der.has_value() && sha256_signature_verifies(*key_, signing_input, *der);
    }
    // PKCS#1 v1.5 signatures are exactly as long as the modulus.
    if (signature.size() != static_cast<std::size_t>(EVP_PKEY_get_size(key_.get()))) return false;
    return sha256_signature_verifies(*key_, signing_input, signature);
}

Result<std::vector<TokenKey>, Error> parse_token_jwks(std::string_view json_text) {
    if (json_text.size() > limits::jwks_bytes_max) {
        return unexpected(make_error("jwks_invalid", "the JWKS is larger than " +
                                                         std::to_string(limits::jwks_bytes_max) + " bytes"));
    }
    const Json document = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
    const auto keys = document.is_object() ? document.find("keys") : document.end();
    if (document.is_discarded() || !document.is_object() || keys == document.end() || !keys->is_array()) {
        return unexpected(make_error("jwks_invalid", "a JWKS is a JSON object with a \"keys\" array"));
    }
    if (keys->size() > limits::jwks_keys_max) {
        return unexpected(make_error("jwks_invalid", "the JWKS has more than " +
                                                         std::to_string(limits::jwks_keys_max) + " keys"));
    }
    std::vector<TokenKey> usable;
    std::set<std::string> kids;
    for (const Json& jwk : *keys) {
        auto key = parse_key(jwk);
        if (!key) return unexpected(key.error());
        if (!key->has_value()) continue;
        if (!kids.insert((*key)->kid()).second) {
            return unexpected(make_error("jwks_invalid", "two keys share the kid \"" + (*key)->kid() + "\""));
        }
        usable.push_back(std::move(**key));
    }
    if (usable.empty()) {
        return unexpected(make_error("jwks_invalid", "the JWKS has no ES256 (EC P-256) or RS256 (RSA) signing key with a kid"));
    }
    return usable;
}

}  // namespace tokenmeter::auth
