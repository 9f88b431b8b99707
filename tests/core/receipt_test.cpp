#include <gtest/gtest.h>

#include <algorithm>

#include "test_files.hpp"
#include "tokenmeter/base64url.hpp"
#include "tokenmeter/crypto.hpp"
#include "tokenmeter/ed25519.hpp"
#include "tokenmeter/jws.hpp"
#include "tokenmeter/limits.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter {
namespace {

using test::from_hex;

Seed seed_from_text(std::string_view base64url_seed) {
    auto bytes = base64url_decode(base64url_seed).value();
    Seed seed{};
    std::copy(bytes.begin(), bytes.end(), seed.begin());
    return seed;
}

Seed seed_of(std::uint8_t fill) {
    Seed seed{};
    seed.fill(fill);
    return seed;
}

ReceiptClaims sample_claims() {
    ReceiptClaims claims;
    claims.sub = "user-42";
    claims.iat = 1764000000;
    claims.seq = 1;
    claims.plan = "free";
    claims.period_start = 1763942400;  // 2025-11-24T00:00:00Z
    claims.period_end = 1766534400;    // 2025-12-24T00:00:00Z
    claims.balance = Balance{250000, 1234, 3000, 5, 1, 0};
    claims.event = "commit";
    return claims;
}

std::vector<VerificationKey> keys_of(const SigningKey& key) { return {{key.kid(), key.public_key()}}; }

TEST(Receipt, Rfc8037AppendixA4ByteForByte) {
    ASSERT_TRUE(crypto_ready());
    const SigningKey key = SigningKey::from_seed(seed_from_text("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"));
    EXPECT_EQ(base64url_encode(key.public_key().bytes.data(), key.public_key().bytes.size()),
              "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    EXPECT_EQ(sign_compact(R"({"alg":"EdDSA"})", "Example of Ed25519 signing", key),
              "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
              "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg");
    // RFC 8037 appendix A.3: the JWK thumbprint of the same key.
    EXPECT_EQ(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    auto verified = verify_compact(
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg",
        key.public_key());
    ASSERT_TRUE(verified.has_value());
    EXPECT_EQ(verified->payload, "Example of Ed25519 signing");
}

TEST(Receipt, WycheproofEd25519AllCases) {
    ASSERT_TRUE(crypto_ready());
    const auto document = test::read_vector_json("wycheproof_ed25519_test.json");
    int cases = 0;
    int agreed = 0;
    for (const auto& group : document["testGroups"]) {
        const std::string key_bytes = from_hex(group["publicKey"]["pk"].get<std::string>());
        ASSERT_EQ(key_bytes.size(), ed25519_public_key_bytes);
        PublicKey key;
        std::copy(key_bytes.begin(), key_bytes.end(), key.bytes.begin());
        for (const auto& test : group["tests"]) {
            const bool expected = test["result"].get<std::string>() == "valid";
            const bool verdict = ed25519_verify(from_hex(test["msg"].get<std::string>()),
                                                from_hex(test["sig"].get<std::string>()), key);
            EXPECT_EQ(verdict, expected) << "tcId " << test["tcId"].get<int>() << " " << test["comment"].get<std::string>();
            ++cases;
            agreed += verdict == expected ? 1 : 0;
        }
    }
    EXPECT_EQ(cases, 151);
    EXPECT_EQ(agreed, 151);
}

TEST(Receipt, SignsAndVerifiesWithTheSameClaims) {
    const SigningKey key = SigningKey::from_seed(seed_of(7));
    const ReceiptClaims claims = sample_claims();
    const std::string jws = sign_receipt(claims, key);
    auto verified = verify_receipt(jws, keys_of(key));
    ASSERT_TRUE(verified.has_value()) << verified.error().message;
    EXPECT_EQ(*verified, claims);
    const std::string header = base64url_decode(jws.substr(0, jws.find('.'))).value();
    EXPECT_EQ(header, R"({"alg":"EdDSA","kid":")" + key.kid() + R"(","typ":"tokenmeter-receipt+jwt"})");
}

TEST(Receipt, ChainsByPrev) {
    const SigningKey key = SigningKey::from_seed(seed_of(7));
    ReceiptClaims first = sample_claims();
    const std::string first_jws = sign_receipt(first, key);
    ReceiptClaims second = first;
    second.seq = 2;
    second.prev = receipt_chain_digest(first_jws);
    const std::string payload_segment = first_jws.substr(first_jws.find('.') + 1,
                                                         first_jws.rfind('.') - first_jws.find('.') - 1);
    EXPECT_EQ(second.prev, sha256_base64url(payload_segment));
    auto verified = verify_receipt(sign_receipt(second, key), keys_of(key));
    ASSERT_TRUE(verified.has_value());
    EXPECT_EQ(verified->prev, receipt_chain_digest(first_jws));
}

TEST(Receipt, EverySingleBitFlipIsRefused) {
    const SigningKey key = SigningKey::from_seed(seed_of(9));
    const std::string jws = sign_receipt(sample_claims(), key);
    const auto keys = keys_of(key);
    int flips = 0;
    int accepted = 0;
    for (std::size_t i = 0; i < jws.size(); ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            std::string forged = jws;
            forged[i] = static_cast<char>(forged[i] ^ (1 << bit));
            ++flips;
            if (verify_receipt(forged, keys).has_value()) {
                ++accepted;
                ADD_FAILURE() << "accepted a flip of bit " << bit << " at offset " << i;
            }
        }
    }
    EXPECT_EQ(flips, static_cast<int>(jws.size()) * 8);
    EXPECT_EQ(accepted, 0);
}

TEST(Receipt, WrongKeyIsRefused) {
    const SigningKey key = SigningKey::from_seed(seed_of(1));
    const SigningKey other = SigningKey::from_seed(seed_of(2));
    const std::string jws = sign_receipt(sample_claims(), key);
    EXPECT_EQ(verify_receipt(jws, keys_of(other)).error().code, "receipt_unknown_key");
    // The right kid bound to another key: the signature decides.
    EXPECT_EQ(verify_receipt(jws, {{key.kid(), other.public_key()}}).error().code, "signature_invalid");
    EXPECT_EQ(verify_receipt(jws, {}).error().code, "receipt_unknown_key");
    // Rotation: the right key among several is found.
    EXPECT_TRUE(verify_receipt(jws, {{other.kid(), other.public_key()}, {key.kid(), key.public_key()}}).has_value());
}

std::string signed_with(const SigningKey& key, const std::string& header, const std::string& payload) {
    return sign_compact(header, payload, key);
}

TEST(Receipt, MalformedAndHostileReceiptsAreRefusedWithAReason) {
    const SigningKey key = SigningKey::from_seed(seed_of(3));
    const auto keys = keys_of(key);
    const std::string good_header = R"({"alg":"EdDSA","kid":")" + key.kid() + R"(","typ":"tokenmeter-receipt+jwt"})";
    const std::string good_payload = receipt_payload_json(sample_claims());
    ASSERT_TRUE(verify_receipt(signed_with(key, good_header, good_payload), keys).has_value());

    auto code = [&](const std::string& jws) {
        auto verified = verify_receipt(jws, keys);
        return verified ? std::string("ok") : verified.error().code;
    };
    EXPECT_EQ(code(""), "receipt_malformed");
    EXPECT_EQ(code("..."), "receipt_malformed");
    EXPECT_EQ(code("a.b"), "receipt_malformed");
    EXPECT_EQ(code(signed_with(key, good_header, good_payload) + ".x"), "receipt_malformed");
    EXPECT_EQ(code(std::string(limits::receipt_bytes_max + 1, 'a')), "receipt_too_large");
    EXPECT_EQ(code(signed_with(key, R"({"alg":"none","kid":")" + key.kid() + R"(","typ":"tokenmeter-receipt+jwt"})", good_payload)),
              "receipt_malformed");
    EXPECT_EQ(code(signed_with(key, R"({"alg":"EdDSA","kid":")" + key.kid() + R"("})", good_payload)), "receipt_malformed");
    EXPECT_EQ(code(signed_with(key, R"({"alg":"EdDSA","kid":")" + key.kid() +
                                        R"(","typ":"tokenmeter-receipt+jwt","jku":"https://evil.example"})",
                               good_payload)),
              "receipt_malformed");
    // Unsigned: alg none with an empty signature.
    EXPECT_EQ(code(base64url_encode(R"({"alg":"none"})") + "." + base64url_encode(good_payload) + "."), "receipt_malformed");
    // Signed, but the claims are wrong.
    auto with = [&](const std::string& from, const std::string& to) {
        std::string payload = good_payload;
        payload.replace(payload.find(from), from.size(), to);
        return code(signed_with(key, good_header, payload));
    };
    EXPECT_EQ(with(R"("tokens_used":1234)", R"("tokens_used":-1)"), "receipt_claims_invalid");
    EXPECT_EQ(with(R"("tokens_used":1234)", R"("tokens_used":1234.5)"), "receipt_claims_invalid");
    EXPECT_EQ(with(R"("tokens_used":1234)", R"("tokens_used":"1234")"), "receipt_claims_invalid");
    EXPECT_EQ(with(R"("tokens_used":1234)", R"("tokens_used":99999999999999999999)"), "receipt_claims_invalid");
    EXPECT_EQ(with(R"("iss":"tokenmeter")", R"("iss":"someone-else")"), "receipt_claims_invalid");
    EXPECT_EQ(with(R"("seq":1)", R"("seq":0)"), "receipt_claims_invalid");
    EXPECT_EQ(with(R"("seq":1)", R"("seq":2)"), "receipt_claims_invalid");  // seq 2 needs a prev
    EXPECT_EQ(with(R"("period_end":"2025-12-24T00:00:00Z")", R"("period_end":"2025-02-30T00:00:00Z")"),
              "receipt_claims_invalid");
    EXPECT_EQ(with(R"("period_end":"2025-12-24T00:00:00Z")", R"("period_end":"2025-11-01T00:00:00Z")"),
              "receipt_claims_invalid");
    // A period no signer could have made (sign_receipt asserts against it).
    EXPECT_EQ(with(R"("period_start":"2025-11-24T00:00:00Z")", R"("period_start":"1012-11-24T00:00:00Z")"),
              "receipt_claims_invalid");
    EXPECT_EQ(with(R"("period_end":"2025-12-24T00:00:00Z")", R"("period_end":"9999-12-31T23:59:59-01:00")"),
              "receipt_claims_invalid");
    EXPECT_EQ(with(R"("sub":"user-42")", R"("sub":"")"), "receipt_claims_invalid");
    EXPECT_EQ(code(signed_with(key, good_header, "not json")), "receipt_claims_invalid");
    EXPECT_EQ(code(signed_with(key, good_header, "[1,2]")), "receipt_claims_invalid");
}

TEST(Jwks, RendersAndParsesKeys) {
    const SigningKey key = SigningKey::from_seed(seed_of(5));
    const std::vector<VerificationKey> keys = {{key.kid(), key.public_key()}};
    const std::string text = jwks_json(keys);
    auto parsed = parse_jwks(text);
    ASSERT_TRUE(parsed.has_value());
    ASSERT_EQ(parsed->size(), 1U);
    EXPECT_EQ((*parsed)[0].kid, key.kid());
    EXPECT_EQ((*parsed)[0].key, key.public_key());
    auto document = nlohmann::json::parse(text);
    EXPECT_EQ(document["keys"][0]["kty"], "OKP");
    EXPECT_EQ(document["keys"][0]["crv"], "Ed25519");
    EXPECT_EQ(document["keys"][0]["alg"], "EdDSA");
    EXPECT_EQ(document["keys"][0]["use"], "sig");
    // Keys of other types are skipped; broken Ed25519 keys are errors.
    auto mixed = parse_jwks(R"({"keys":[{"kty":"RSA","n":"x","e":"AQAB","kid":"r"},)" + jwk_json(keys[0]) + "]}");
    ASSERT_TRUE(mixed.has_value());
    EXPECT_EQ(mixed->size(), 1U);
    EXPECT_EQ(parse_jwks(R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"short","kid":"k"}]})").error().code, "jwks_invalid_key");
    EXPECT_EQ(parse_jwks(R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})").error().code,
              "jwks_invalid_key");
    EXPECT_EQ(parse_jwks("{}").error().code, "jwks_malformed");
    EXPECT_EQ(parse_jwks("nope").error().code, "jwks_malformed");
    EXPECT_EQ(parse_jwks(std::string(limits::jwks_bytes_max + 1, ' ')).error().code, "jwks_too_large");
}

}  // namespace
}  // namespace tokenmeter
