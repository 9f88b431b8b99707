// verify_statement: a good statement, and each way of tampering with one
// failing with its own code (DESIGN.md §6; core/include/tokenmeter/statement.hpp).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "tokenmeter/period.hpp"
#include "tokenmeter/receipt.hpp"
#include "tokenmeter/state_machine.hpp"
#include "tokenmeter/statement.hpp"

namespace tokenmeter {
namespace {

using Json = nlohmann::json;

constexpr std::int64_t november = 1761955200;  // 2025-11-01T00:00:00Z
constexpr std::int64_t december = 1764547200;  // 2025-12-01T00:00:00Z
constexpr std::int64_t january = 1767225600;   // 2026-01-01T00:00:00Z

Seed seed_of(std::uint8_t fill) {
    Seed seed{};
    seed.fill(fill);
    return seed;
}

// One user's chain of receipts, made the way the state machine makes them.
class Chain {
public:
    Chain(std::string user, const SigningKey& key) : user_(std::move(user)), key_(key) {}

    // Appends a receipt; `tokens`/`avatars` move used (a charge), `reserved` sets tokens_reserved.
    const std::string& add(std::string event, std::int64_t start, std::int64_t end, std::int64_t tokens = 0,
                           std::int64_t avatars = 0, std::int64_t reserved = 0) {
        if (start != period_start_) balance_ = Balance{250000, 0, 0, 5, 0, 0};
        period_start_ = start;
        balance_.tokens_used += tokens;
        balance_.avatars_used += avatars;
        balance_.tokens_reserved = reserved;
        ReceiptClaims claims;
        claims.sub = user_;
        claims.iat = start + 3600 * static_cast<std::int64_t>(receipts_.size() + 1);
        claims.seq = static_cast<std::int64_t>(receipts_.size()) + 1;
        claims.prev = receipts_.empty() ? std::string() : receipt_chain_digest(receipts_.back());
        claims.plan = "free";
        claims.period_start = start;
        claims.period_end = end;
        claims.balance = balance_;
        claims.event = std::move(event);
        if (claims.event == "commit" || claims.event == "record") claims.catalog_version = "2026-11-01";
        receipts_.push_back(sign_receipt(claims, key_));
        return receipts_.back();
    }
    const std::vector<std::string>& receipts() const { return receipts_; }

private:
    std::string user_;
    const SigningKey& key_;
    std::int64_t period_start_ = -1;
    Balance balance_;
    std::vector<std::string> receipts_;
};

Json charge(const std::string& id, std::int64_t seq, std::int64_t tokens, std::int64_t avatars = 0) {
    return Json{{"id", id},           {"operation", avatars > 0 ? "avatar" : "chat"},
                {"model", "gpt-4o"},  {"input_tokens", tokens / 2},
                {"output_tokens", tokens - tokens / 2}, {"charged_tokens", tokens},
                {"avatars", avatars}, {"reservation_id", nullptr},
                {"created_at", "2025-12-02T10:00:00Z"}, {"catalog_version", "2026-11-01"}, {"seq", seq}};
}

class StatementTest : public ::testing::Test {
protected:
    StatementTest() : key(SigningKey::from_seed(seed_of(7))), other_key(SigningKey::from_seed(seed_of(9))), chain("u1", key) {
        EXPECT_TRUE(crypto_ready());
        chain.add("period_open", november, december);        // 1
        chain.add("record", november, december, 500);        // 2
        chain.add("period_open", december, january);         // 3: the statement's period
        chain.add("authorize", december, january, 0, 0, 900);  // 4
        chain.add("commit", december, january, 700);         // 5
        chain.add("record", december, january, 10000, 1);    // 6
        chain.add("expire", december, january);              // 7
        chain.add("record", december, january, 42);          // 8
    }

    // The statement of December: seq 3-8, anchored on seq 2.
    Json good() const {
        const auto& r = chain.receipts();
        return Json{{"format", "tokenmeter-statement/1"},
                    {"user_id", "u1"},
                    {"period", {{"start", format_rfc3339(december)}, {"end", format_rfc3339(january)}}},
                    {"plan", "free"},
                    {"anchor", r[1]},
                    {"receipts", {r[2], r[3], r[4], r[5], r[6], r[7]}},
                    {"charges", {charge("ev_a", 5, 700), charge("ev_b", 6, 10000, 1), charge("ev_c", 8, 42)}},
                    {"totals", {{"tokens_used", 10742}, {"avatars_used", 1}}},
                    {"keys", Json::parse(jwks_json({{key.kid(), key.public_key()}}))}};
    }

    std::vector<VerificationKey> keys() const { return {{key.kid(), key.public_key()}}; }

    std::string code_of(const Json& statement) const { return code_with(statement, keys()); }
    static std::string code_with(const Json& statement, const std::vector<VerificationKey>& keys) {
        auto result = verify_statement(statement.dump(), keys);
        return result ? std::string("ok") : result.error().code;
    }

    SigningKey key;
    SigningKey other_key;
    Chain chain;
};

TEST_F(StatementTest, AGoodStatementVerifies) {
    auto summary = verify_statement(good().dump(), keys());
    ASSERT_TRUE(summary.has_value()) << summary.error().code << ": " << summary.error().message;
    EXPECT_EQ(summary->user_id, "u1");
    EXPECT_EQ(summary->plan, "free");
    EXPECT_EQ(summary->period_start, december);
    EXPECT_EQ(summary->period_end, january);
    EXPECT_EQ(summary->first_seq, 3);
    EXPECT_EQ(summary->last_seq, 8);
    EXPECT_EQ(summary->receipts, 6u);
    EXPECT_TRUE(summary->anchored);
    EXPECT_EQ(summary->charges, 3u);
    EXPECT_EQ(summary->tokens_used, 10742);
    EXPECT_EQ(summary->avatars_used, 1);
}

TEST_F(StatementTest, TheFirstPeriodNeedsNoAnchor) {
    Json first = good();
    first["period"] = {{"start", format_rfc3339(november)}, {"end", format_rfc3339(december)}};
    first["anchor"] = nullptr;
    first["receipts"] = {chain.receipts()[0], chain.receipts()[1]};
    first["charges"] = {charge("ev_0", 2, 500)};
    first["totals"] = {{"tokens_used", 500}, {"avatars_used", 0}};
    EXPECT_EQ(code_of(first), "ok");
}

TEST_F(StatementTest, TheEmbeddedKeysAreTheServers) {
    auto embedded = statement_keys(good().dump());
    ASSERT_TRUE(embedded.has_value());
    ASSERT_EQ(embedded->size(), 1u);
    EXPECT_EQ((*embedded)[0].kid, key.kid());
    EXPECT_EQ(code_with(good(), *embedded), "ok");
}

// Each tampering, and the code it must fail with.
TEST_F(StatementTest, EachTamperingFailsWithItsCode) {
    struct Case {
        const char* name;
        std::function<void(Json&)> tamper;
        const char* code;
    };
    const auto& r = chain.receipts();
    Chain stranger("u2", key);
    stranger.add("period_open", december, january);
    const std::string strangers = stranger.add("record", december, january, 700);
    const std::string forged = [&] {
        // u1's seq 5 with the same claims, signed by a key the server does not have.
        auto claims = decode_receipt_claims(r[4]).value();
        return sign_receipt(claims, other_key);
    }();

    const std::vector<Case> cases = {
        {"a changed byte in a receipt signature",
         [](Json& s) {
             std::string jws = s["receipts"][2].get<std::string>();
             const std::size_t at = jws.size() - 10;
             jws[at] = jws[at] == 'A' ? 'B' : 'A';
             s["receipts"][2] = jws;
         },
         "bad_signature"},
        {"a changed byte in a receipt payload",
         [&](Json& s) {
             std::string jws = s["receipts"][3].get<std::string>();
             const std::size_t dot = jws.find('.');
             jws[dot + 5] = jws[dot + 5] == 'x' ? 'y' : 'x';
             s["receipts"][3] = jws;
         },
         "bad_signature"},
        {"a changed byte in the anchor's signature",
         [](Json& s) {
             std::string jws = s["anchor"].get<std::string>();
             jws[jws.size() - 3] = jws[jws.size() - 3] == 'A' ? 'B' : 'A';
             s["anchor"] = jws;
         },
         "bad_signature"},
        {"a receipt signed by another key", [&](Json& s) { s["receipts"][2] = forged; }, "bad_signature"},
        {"a removed receipt (a gap)", [](Json& s) { s["receipts"].erase(1); }, "broken_chain"},
        {"reordered receipts",
         [](Json& s) { std::swap(s["receipts"][1], s["receipts"][2]); },
         "broken_chain"},
        {"the anchor left out", [](Json& s) { s["anchor"] = nullptr; }, "broken_chain"},
        {"another anchor", [&](Json& s) { s["anchor"] = r[0]; }, "broken_chain"},
        {"the period's first receipt left out", [](Json& s) { s["receipts"].erase(0); }, "broken_chain"},
        {"a receipt of the period before appended", [&](Json& s) { s["receipts"].push_back(r[1]); }, "period_mismatch"},
        {"another plan stated", [](Json& s) { s["plan"] = "pro"; }, "period_mismatch"},
        {"a charge removed", [](Json& s) { s["charges"].erase(1); }, "charge_mismatch"},
        {"a charge removed, the totals lowered to match",
         [](Json& s) {
             s["charges"].erase(2);
             s["totals"]["tokens_used"] = 10700;
         },
         "charge_mismatch"},
        {"a charge's tokens changed", [](Json& s) { s["charges"][0]["charged_tokens"] = 699; }, "charge_mismatch"},
        {"a charge's avatars changed", [](Json& s) { s["charges"][1]["avatars"] = 0; }, "charge_mismatch"},
        {"a charge's catalog version changed", [](Json& s) { s["charges"][0]["catalog_version"] = "2027-01-01"; },
         "charge_mismatch"},
        {"a charge's catalog version left out", [](Json& s) { s["charges"][0].erase("catalog_version"); },
         "charge_mismatch"},
        {"a charge's catalog version not text", [](Json& s) { s["charges"][0]["catalog_version"] = 7; }, "malformed"},
        {"a charge added", [](Json& s) { s["charges"].push_back(charge("ev_x", 7, 0)); }, "charge_mismatch"},
        {"a charge moved to another receipt", [](Json& s) { s["charges"][2]["seq"] = 4; }, "charge_mismatch"},
        {"a charge naming a receipt outside the statement",
         [](Json& s) { s["charges"][2]["seq"] = 9; },
         "charge_mismatch"},
        {"two charges on one receipt", [](Json& s) { s["charges"][2]["seq"] = 5; }, "charge_mismatch"},
        {"the totals changed", [](Json& s) { s["totals"]["tokens_used"] = 10741; }, "charge_mismatch"},
        {"another user's receipt spliced in", [&](Json& s) { s["receipts"][3] = strangers; }, "wrong_user"},
        {"another user named", [](Json& s) { s["user_id"] = "u2"; }, "wrong_user"},
        {"no receipts", [](Json& s) { s["receipts"] = Json::array(); }, "malformed"},
        {"a receipt that is not a JWS", [](Json& s) { s["receipts"][0] = "not.a.receipt"; }, "malformed"},
        {"a charge without seq", [](Json& s) { s["charges"][0].erase("seq"); }, "malformed"},
        {"negative tokens", [](Json& s) { s["charges"][0]["charged_tokens"] = -1; }, "malformed"},
        {"another format", [](Json& s) { s["format"] = "tokenmeter-statement/9"; }, "malformed"},
    };
    for (const Case& c : cases) {
        Json statement = good();
        c.tamper(statement);
        EXPECT_EQ(code_of(statement), c.code) << c.name;
    }
}

TEST_F(StatementTest, AWrongKeyIsABadSignature) {
    EXPECT_EQ(code_with(good(), {{key.kid(), other_key.public_key()}}), "bad_signature");  // same kid, other key
    EXPECT_EQ(code_with(good(), {{other_key.kid(), other_key.public_key()}}), "bad_signature");  // unknown kid
    EXPECT_EQ(code_with(good(), {}), "bad_signature");
}

TEST_F(StatementTest, NotAJsonStatementIsMalformed) {
    for (const std::string text : {"", "event_id,seq\nev_a,5\n", "[]", "{}", "{\"format\":\"tokenmeter-statement/1\"}"}) {
        auto result = verify_statement(text, keys());
        ASSERT_FALSE(result.has_value()) << text;
        EXPECT_EQ(result.error().code, "malformed") << text;
    }
    auto csv = verify_statement("event_id,seq\n", keys());
    EXPECT_NE(csv.error().message.find("CSV"), std::string::npos);
    EXPECT_EQ(statement_keys("{\"format\":\"tokenmeter-statement/1\"}").error().code, "malformed");
}

TEST(StatementPeriod, CurrentDatesAndInstants) {
    EXPECT_FALSE(parse_statement_period("current")->has_value());
    EXPECT_FALSE(parse_statement_period("")->has_value());
    EXPECT_EQ(parse_statement_period("2025-12-01").value(), december);
    EXPECT_EQ(parse_statement_period("2025-12-01T00:00:00Z").value(), december);
    EXPECT_EQ(parse_statement_period("2025-12-01T01:00:00+01:00").value(), december);
    for (const char* bad : {"2025-13-01", "2025-02-30", "1969-12-31", "yesterday", "2025-12-1", "2025-12-01T00:00",
                            "99999-01-01", "2025-12-01 "}) {
        auto parsed = parse_statement_period(bad);
        ASSERT_FALSE(parsed.has_value()) << bad;
        EXPECT_EQ(parsed.error().code, "invalid_value") << bad;
    }
}

}  // namespace
}  // namespace tokenmeter
