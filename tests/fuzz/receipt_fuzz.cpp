// Fuzzes receipts (core/include/tokenmeter/receipt.hpp). The bytes are read
// three ways:
//   1. as a compact JWS receipt: verify_receipt against the key of the test
//      vectors (its JWKS, tests/vectors/core_vectors.json, key seed 7...7),
//      decode_receipt_claims, verify_compact;
//   2. as a receipt payload, signed here with that key, so fuzzed claims get
//      past the signature to the claim checks;
//   3. as a JWKS document (parse_jwks).
//
// Invariants besides "no crash": a refusal's message is valid UTF-8 (the wasm
// SDK hands it to JavaScript); accepted claims are ones the server could
// have signed (sign_receipt asserts them), and signed again they verify to
// the same claims; a verified receipt decodes to the claims it verified to; a
// parsed JWKS written out parses to the same keys.
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "tokenmeter/base64url.hpp"
#include "tokenmeter/jws.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter::fuzz {
namespace {

const SigningKey& signing_key() {
    static const SigningKey key = [] {
        Seed seed{};
        seed.fill(7);
        return SigningKey::from_seed(seed);
    }();
    return key;
}

const std::vector<VerificationKey>& verification_keys() {
    static const std::vector<VerificationKey> keys = {{signing_key().kid(), signing_key().public_key()}};
    return keys;
}

// Claims a verifier accepted, signed again, verify to themselves.
void check_claims(const ReceiptClaims& claims) {
    const std::string receipt = sign_receipt(claims, signing_key());
    auto again = verify_receipt(receipt, verification_keys());
    TM_ASSERT(again.has_value());
    TM_ASSERT(*again == claims);
}

void check_receipt(std::string_view jws) {
    auto verified = verify_receipt(jws, verification_keys());
    auto decoded = decode_receipt_claims(jws);
    if (!verified) check_error_text(verified.error());
    if (verified) {
        TM_ASSERT(decoded.has_value());
        TM_ASSERT(*decoded == *verified);
        TM_ASSERT(receipt_chain_digest(jws).size() == 43);
    }
    if (decoded) check_claims(*decoded);
    auto compact = verify_compact(jws, signing_key().public_key());
    if (compact) {
        // Only a genuine signature verifies, and its parts are exactly the text's.
        const std::string signed_part = base64url_encode(compact->header_json) + "." + base64url_encode(compact->payload);
        TM_ASSERT(jws.substr(0, signed_part.size()) == signed_part);
    }
}

void check_signed_payload(std::string_view payload) {
    const std::string header = R"({"alg":"EdDSA","kid":")" + signing_key().kid() + R"(","typ":"tokenmeter-receipt+jwt"})";
    const std::string jws = sign_compact(header, payload, signing_key());
    auto verified = verify_receipt(jws, verification_keys());
    auto decoded = decode_receipt_claims(jws);
    TM_ASSERT(verified.has_value() == decoded.has_value());
    if (!verified) return;
    TM_ASSERT(*verified == *decoded);
    check_claims(*verified);
}

void check_jwks(std::string_view text) {
    auto keys = parse_jwks(text);
    if (!keys) return;
    for (const VerificationKey& key : *keys) TM_ASSERT(!key.kid.empty());
    auto again = parse_jwks(jwks_json(*keys));
    TM_ASSERT(again.has_value());
    TM_ASSERT(again->size() == keys->size());
    for (std::size_t i = 0; i < keys->size(); ++i) {
        TM_ASSERT((*again)[i].kid == (*keys)[i].kid);
        TM_ASSERT((*again)[i].key == (*keys)[i].key);
    }
}

}  // namespace
}  // namespace tokenmeter::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tokenmeter::fuzz;
    TM_ASSERT(tokenmeter::crypto_ready());
    const std::string_view text = text_of(data, size);
    check_receipt(text);
    check_signed_payload(text);
    check_jwks(text);
    return 0;
}
