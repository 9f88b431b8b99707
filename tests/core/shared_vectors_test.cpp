// The cases of tests/vectors/core_vectors.json, which the wasm suite
// (tests/wasm/core_vectors.test.mjs) checks too: both targets must agree with
// the same independently computed expectations.
#include <gtest/gtest.h>

#include "test_files.hpp"
#include "tokenmeter/base64url.hpp"
#include "tokenmeter/catalog.hpp"
#include "tokenmeter/crypto.hpp"
#include "tokenmeter/ed25519.hpp"
#include "tokenmeter/jws.hpp"
#include "tokenmeter/period.hpp"
#include "tokenmeter/pricing.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter {
namespace {

using Json = nlohmann::json;

const Json& vectors() {
    static const Json document = test::read_vector_json("core_vectors.json");
    return document;
}

std::int64_t as_int(const Json& value) { return value.get<std::int64_t>(); }

TEST(SharedVectors, Cost) {
    const Json& cases = vectors()["cost"];
    ASSERT_GT(cases.size(), 400U);
    for (const Json& c : cases) {
        auto charge = price(default_catalog(), c["operation"].get<std::string>(), c["model"].get<std::string>(),
                            as_int(c["input"]), as_int(c["output"]));
        const Json& expect = c["expect"];
        SCOPED_TRACE(c.dump());
        if (expect.contains("error")) {
            ASSERT_FALSE(charge.has_value());
            EXPECT_EQ(charge.error().code, expect["error"].get<std::string>());
        } else {
            ASSERT_TRUE(charge.has_value()) << charge.error().message;
            EXPECT_EQ(charge->raw_tokens, as_int(expect["raw"]));
            EXPECT_EQ(charge->charged_tokens, as_int(expect["charged"]));
            EXPECT_EQ(charge->avatars, as_int(expect["avatars"]));
        }
    }
}

TEST(SharedVectors, Periods) {
    const Json& cases = vectors()["periods"];
    ASSERT_GT(cases.size(), 1500U);
    for (const Json& c : cases) {
        auto period = period_containing(as_int(c["instant"]), c["anchor"].get<int>());
        const Json& expect = c["expect"];
        SCOPED_TRACE(c.dump());
        if (expect.contains("error")) {
            ASSERT_FALSE(period.has_value());
            EXPECT_EQ(period.error().code, expect["error"].get<std::string>());
        } else {
            ASSERT_TRUE(period.has_value());
            EXPECT_EQ(period->start_seconds, as_int(expect["start"]));
            EXPECT_EQ(period->end_seconds, as_int(expect["end"]));
        }
    }
}

TEST(SharedVectors, Receipts) {
    ASSERT_TRUE(crypto_ready());
    const Json& cases = vectors()["receipts"];
    ASSERT_GE(cases.size(), 15U);
    for (const Json& c : cases) {
        SCOPED_TRACE(c["name"].get<std::string>());
        auto keys = parse_jwks(c["jwks"].get<std::string>());
        ASSERT_TRUE(keys.has_value());
        auto verified = verify_receipt(c["jws"].get<std::string>(), *keys);
        const Json& expect = c["expect"];
        ASSERT_EQ(verified.has_value(), expect["valid"].get<bool>());
        if (!verified) {
            EXPECT_EQ(verified.error().code, expect["code"].get<std::string>());
            continue;
        }
        const Json& claims = expect["claims"];
        EXPECT_EQ(verified->sub, claims["sub"].get<std::string>());
        EXPECT_EQ(verified->seq, as_int(claims["seq"]));
        EXPECT_EQ(verified->iat, as_int(claims["iat"]));
        EXPECT_EQ(verified->prev, claims["prev"].get<std::string>());
        EXPECT_EQ(verified->plan, claims["plan"].get<std::string>());
        EXPECT_EQ(verified->period_start, as_int(claims["period_start"]));
        EXPECT_EQ(verified->period_end, as_int(claims["period_end"]));
        EXPECT_EQ(verified->balance.tokens_used, as_int(claims["tokens_used"]));
        EXPECT_EQ(verified->balance.tokens_reserved, as_int(claims["tokens_reserved"]));
        EXPECT_EQ(verified->balance.tokens_limit, as_int(claims["tokens_limit"]));
        EXPECT_EQ(verified->balance.avatars_used, as_int(claims["avatars_used"]));
        EXPECT_EQ(verified->balance.avatars_limit, as_int(claims["avatars_limit"]));
        EXPECT_EQ(verified->event, claims["event"].get<std::string>());
        EXPECT_EQ(verified->catalog_version, claims.value("catalog_version", std::string()));
        EXPECT_EQ(receipt_chain_digest(c["jws"].get<std::string>()), expect["chain_digest"].get<std::string>());
    }
}

TEST(SharedVectors, ReceiptsSignedHereMatchNodeCryptoByteForByte) {
    // Ed25519 is deterministic: the same key and claims give the same JWS in
    // Node's crypto and in the core.
    const Json& first = vectors()["receipts"][0];
    const Json& claims = first["expect"]["claims"];
    Seed seed{};
    seed.fill(7);
    const SigningKey key = SigningKey::from_seed(seed);
    ReceiptClaims ours;
    ours.sub = claims["sub"].get<std::string>();
    ours.iat = as_int(claims["iat"]);
    ours.seq = as_int(claims["seq"]);
    ours.prev = claims["prev"].get<std::string>();
    ours.plan = claims["plan"].get<std::string>();
    ours.period_start = as_int(claims["period_start"]);
    ours.period_end = as_int(claims["period_end"]);
    ours.balance = Balance{as_int(claims["tokens_limit"]),  as_int(claims["tokens_used"]),
                           as_int(claims["tokens_reserved"]), as_int(claims["avatars_limit"]),
                           as_int(claims["avatars_used"]),  as_int(claims["avatars_reserved"])};
    ours.event = claims["event"].get<std::string>();
    EXPECT_EQ(sign_receipt(ours, key), first["jws"].get<std::string>());
    const Json& rfc = vectors()["rfc8037"];
    Seed rfc_seed{};
    const std::string rfc_bytes = base64url_decode(rfc["seed"].get<std::string>()).value();
    std::copy(rfc_bytes.begin(), rfc_bytes.end(), rfc_seed.begin());
    EXPECT_EQ(sign_compact(rfc["header"].get<std::string>(), rfc["payload"].get<std::string>(),
                           SigningKey::from_seed(rfc_seed)),
              rfc["jws"].get<std::string>());
}

}  // namespace
}  // namespace tokenmeter
