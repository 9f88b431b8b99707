// Public keys for user tokens from a JWKS (Supabase's signing keys): ES256
// (EC P-256) and RS256 (RSA, 2048-8192 bits), verified with OpenSSL.
//
// The algorithm a key verifies is decided by the key itself (kty, crv, alg),
// never by a token: an EC key only ever checks ES256, an RSA key RS256. Keys
// of other kinds (oct, OKP, PS256, use "enc") are skipped, not trusted.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

typedef struct evp_pkey_st EVP_PKEY;

namespace tokenmeter::auth {

enum class KeyAlgorithm { es256, rs256 };

// "ES256" or "RS256", as a JWS header names it.
std::string_view algorithm_name(KeyAlgorithm algorithm);

class TokenKey {
public:
    TokenKey(std::string kid, KeyAlgorithm algorithm, std::shared_ptr<EVP_PKEY> key);

    const std::string& kid() const { return kid_; }
    KeyAlgorithm algorithm() const { return algorithm_; }

    // The JWS signature (ES256: raw r||s, 64 bytes; RS256: PKCS#1 v1.5, the
    // modulus' length) over `signing_input`.
    [[nodiscard]] bool verifies(std::string_view signing_input, std::string_view signature) const;

private:
    std::string kid_;
    KeyAlgorithm algorithm_;
    std::shared_ptr<EVP_PKEY> key_;  // immutable after parsing, so shared across threads
};

// The usable keys of a JWKS document. Errors (jwks_invalid): not a JSON object
// with a "keys" array, too large, too many keys, a usable kind of key with bad
// material (not canonical base64url, a point off the curve, a short modulus),
// duplicate kids, or no usable key at all.
Result<std::vector<TokenKey>, Error> parse_token_jwks(std::string_view json_text);

}  // namespace tokenmeter::auth
