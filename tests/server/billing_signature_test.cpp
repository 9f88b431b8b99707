// Webhook signatures: only the exact bytes, signed with the exact secret, in
// lowercase hex, pass; Wycheproof's HMAC-SHA256 cases give their verdicts.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "billing/lemonsqueezy.hpp"
#include "billing/webhook_signature.hpp"
#include "standin.hpp"

namespace tokenmeter {
namespace {

using billing::webhook_signature_valid;

const std::string secret = "test_signing_secret";
// SPEC.md §4.5: the body as LemonSqueezy sends it, with `\/` escapes.
const std::string spec_body =
    R"({"meta":{"event_name":"subscription_created","test_mode":true},"data":{"type":"subscriptions","id":"1","links":{"self":"https:\/\/api.lemonsqueezy.com\/v1\/subscriptions\/1"}}})";
const std::string spec_signature = "4c28971827f305b2f463f779518181848584a4bb2b3c0431d93b7f2b75ef8952";

std::vector<std::uint8_t> hex_bytes(const std::string& hex) {
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        out.push_back(static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
}

std::string upper(std::string text) {
    for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return text;
}

TEST(WebhookSignature, SpecVectorPassesAndItsReserializationFails) {
    ASSERT_EQ(spec_body.size(), 176U);
    EXPECT_EQ(billing::hmac_sha256_hex(secret, spec_body), spec_signature);
    EXPECT_TRUE(webhook_signature_valid(secret, spec_body, spec_signature));
    // The same JSON without the `\/` escapes (what re-serializing produces,
    // key order kept as JavaScript's JSON.stringify keeps it).
    std::string reserialized = spec_body;
    for (auto at = reserialized.find("\\/"); at != std::string::npos; at = reserialized.find("\\/", at)) {
        reserialized.erase(at, 1);
    }
    EXPECT_EQ(billing::hmac_sha256_hex(secret, reserialized),
              "6c0c4446ebada77051f43ad14f26c9c1c0ca6a760f7c995a4fa9a5182dea2e6a");
    EXPECT_FALSE(webhook_signature_valid(secret, reserialized, spec_signature));
}

TEST(WebhookSignature, RefusesEverythingButTheExactSignature) {
    EXPECT_FALSE(webhook_signature_valid("another_secret", spec_body, spec_signature));
    EXPECT_FALSE(webhook_signature_valid("", spec_body, billing::hmac_sha256_hex("", spec_body)));  // unset secret
    std::string tampered = spec_body;
    tampered[10] = 'E';
    EXPECT_FALSE(webhook_signature_valid(secret, tampered, spec_signature));
    EXPECT_FALSE(webhook_signature_valid(secret, spec_body, ""));
    EXPECT_FALSE(webhook_signature_valid(secret, spec_body, spec_signature.substr(0, 63)));
    EXPECT_FALSE(webhook_signature_valid(secret, spec_body, spec_signature + "0"));
    EXPECT_FALSE(webhook_signature_valid(secret, spec_body, "zz" + spec_signature.substr(2)));
    EXPECT_FALSE(webhook_signature_valid(secret, spec_body, " " + spec_signature.substr(1)));
    EXPECT_FALSE(webhook_signature_valid(secret, spec_body, "sha256=" + spec_signature));
    // Uppercase hex is refused: LemonSqueezy sends lowercase and its own
    // verifiers compare the hex text exactly (webhook_signature.hpp).
    EXPECT_FALSE(webhook_signature_valid(secret, spec_body, upper(spec_signature)));
    // Other whitespace or key order is other bytes.
    const auto parsed = nlohmann::json::parse(spec_body);
    EXPECT_FALSE(webhook_signature_valid(secret, parsed.dump(2), spec_signature));
    EXPECT_FALSE(webhook_signature_valid(secret, standin::lemonsqueezy_json(parsed), spec_signature));  // keys sorted
    EXPECT_FALSE(webhook_signature_valid(secret, spec_body + "\n", spec_signature));
}

TEST(WebhookSignature, ThousandSingleBitFlipsForgeNothingAndRefuseNothingValid) {
    std::mt19937 random(20251124);
    int forged_accepted = 0;
    int valid_refused = 0;
    for (int round = 0; round < 1000; ++round) {
        std::string body = spec_body;
        std::string signature = spec_signature;
        if (round % 2 == 0) {
            const std::size_t bit = random() % (body.size() * 8);
            body[bit / 8] = static_cast<char>(body[bit / 8] ^ (1 << (bit % 8)));
        } else {
            const std::size_t bit = random() % (signature.size() * 8);
            signature[bit / 8] = static_cast<char>(signature[bit / 8] ^ (1 << (bit % 8)));
        }
        if (webhook_signature_valid(secret, body, signature)) ++forged_accepted;
        // The honest signature of the flipped body still passes.
        if (!webhook_signature_valid(secret, body, billing::hmac_sha256_hex(secret, body))) ++valid_refused;
    }
    EXPECT_EQ(forged_accepted, 0);
    EXPECT_EQ(valid_refused, 0);
}

TEST(WebhookSignature, WycheproofHmacSha256Verdicts) {
    std::ifstream file(std::string(TM_VECTORS_DIR) + "/wycheproof_hmac_sha256_test.json");
    ASSERT_TRUE(file) << "wycheproof_hmac_sha256_test.json is missing";
    std::stringstream text;
    text << file.rdbuf();
    const auto document = nlohmann::json::parse(text.str());
    int full_length = 0;
    int truncated = 0;
    for (const auto& group : document["testGroups"]) {
        const int tag_bits = group["tagSize"].get<int>();
        for (const auto& test : group["tests"]) {
            const auto key = hex_bytes(test["key"].get<std::string>());
            const auto message = hex_bytes(test["msg"].get<std::string>());
            const auto tag = hex_bytes(test["tag"].get<std::string>());
            const bool accepted = billing::hmac_sha256_tag_valid(key, message, tag);
            if (tag_bits == 256) {
                ++full_length;
                EXPECT_EQ(accepted, test["result"] == "valid") << "tcId " << test["tcId"] << ": " << test["comment"];
            } else {
                ++truncated;
                EXPECT_FALSE(accepted) << "a truncated tag must never pass, tcId " << test["tcId"];
            }
        }
    }
    EXPECT_EQ(full_length, 87);
    EXPECT_EQ(truncated, 87);
}

TEST(WebhookPayload, ParsesTheSpecPayloadsAndUserIdsOfEitherType) {
    std::ifstream file(std::string(TM_LEMONSQUEEZY_DIR) + "/webhook_subscription_created.json");
    ASSERT_TRUE(file);
    std::stringstream text;
    text << file.rdbuf();
    auto event = billing::parse_webhook_body(text.str());
    ASSERT_TRUE(event) << event.error().message;
    EXPECT_EQ(event->kind, billing::WebhookKind::subscription);
    EXPECT_EQ(event->user_id, "42");
    EXPECT_EQ(event->subscription_id, "1234567");
    EXPECT_EQ(event->subscription->status, "active");
    EXPECT_EQ(event->subscription->variant_id, "456789");
    EXPECT_EQ(event->subscription->updated_at_us, 1740824131000000);

    auto document = nlohmann::json::parse(text.str());
    document["meta"]["custom_data"]["user_id"] = 42;
    auto numeric = billing::parse_webhook_body(document.dump());
    ASSERT_TRUE(numeric);
    EXPECT_EQ(numeric->user_id, "42");
    document["meta"]["custom_data"] = nlohmann::json::array();  // PHP's empty object
    auto without = billing::parse_webhook_body(document.dump());
    ASSERT_TRUE(without);
    EXPECT_EQ(without->user_id, "");

    std::ifstream payment(std::string(TM_LEMONSQUEEZY_DIR) + "/webhook_subscription_payment_success.json");
    std::stringstream payment_text;
    payment_text << payment.rdbuf();
    auto invoice = billing::parse_webhook_body(payment_text.str());
    ASSERT_TRUE(invoice);
    EXPECT_EQ(invoice->kind, billing::WebhookKind::payment);
    EXPECT_EQ(invoice->subscription_id, "1234567");  // not the invoice's own id 8765432
    ASSERT_TRUE(invoice->invoice.has_value());
    EXPECT_EQ(invoice->invoice->invoice_id, "8765432");
    EXPECT_EQ(invoice->invoice->billing_reason, "initial");
    EXPECT_EQ(invoice->invoice->total, 1900);
    EXPECT_EQ(invoice->invoice->refunded_amount, 0);

    auto unknown = billing::parse_webhook_body(R"({"meta":{"event_name":"license_key_created"},"data":{}})");
    ASSERT_TRUE(unknown);
    EXPECT_EQ(unknown->kind, billing::WebhookKind::ignored);
    EXPECT_FALSE(billing::parse_webhook_body("not json"));
    EXPECT_FALSE(billing::parse_webhook_body(R"({"data":{}})"));
}

}  // namespace
}  // namespace tokenmeter
