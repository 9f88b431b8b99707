// The dated price book (DESIGN.md §3): versions with effective_from, the
// version in force at an instant, and a ledger where a reservation settles at
// the version it was made under while new work prices with the new one.
#include <gtest/gtest.h>

#include <string>

#include "tokenmeter/catalog.hpp"
#include "tokenmeter/period.hpp"
#include "tokenmeter/receipt.hpp"
#include "tokenmeter/state_machine.hpp"

namespace tokenmeter {
namespace {

std::int64_t at(std::string_view rfc3339) { return parse_rfc3339(rfc3339).value(); }

// One version: gpt-4o at `multiplier`, o-cached weighing cached input at
// `cached_weight`, and a free plan of `free_tokens`.
std::string version_json(std::string_view version, std::string_view effective_from, std::string_view multiplier,
                         std::string_view cached_weight = "1", std::int64_t free_tokens = 250000) {
    std::string json = R"({"version": ")" + std::string(version) + "\"";
    if (!effective_from.empty()) json += R"(, "effective_from": ")" + std::string(effective_from) + "\"";
    json += R"(, "operations": [{"id": "chat"}],
      "models": [
        {"id": "gpt-4o", "multiplier": ")" + std::string(multiplier) + R"(", "tokenizer": "o200k_base", "operations": ["chat"]},
        {"id": "o-cached", "multiplier": "1", "tokenizer": "o200k_base", "operations": ["chat"],
         "weights": {"cached_input": ")" + std::string(cached_weight) + R"("}}
      ],
      "plans": [
        {"id": "free", "tokens_per_period": )" + std::to_string(free_tokens) + R"(, "avatars_per_period": 5},
        {"id": "pro", "tokens_per_period": 10000000, "avatars_per_period": 50}
      ]})";
    return json;
}

std::string book_json(std::initializer_list<std::string> versions) {
    std::string json = R"({"versions": [)";
    bool first = true;
    for (const std::string& v : versions) {
        if (!first) json += ",";
        json += v;
        first = false;
    }
    return json + "]}";
}

PriceBook three_versions() {
    auto book = parse_price_book(book_json({version_json("v1", "", "3"),
                                            version_json("v2", "2027-01-01T00:00:00Z", "4", "1/2", 300000),
                                            version_json("v3", "2027-02-01T00:00:00Z", "5", "1/4", 400000)}));
    EXPECT_TRUE(book.has_value()) << (book ? "" : book.error().message);
    return book ? *book : PriceBook{};
}

std::string book_error(std::string_view json) {
    auto book = parse_price_book(json);
    return book ? "ok" : book.error().code + ": " + book.error().message;
}

TEST(PriceBook, ACatalogInTodaysShapeIsABookOfOneVersion) {
    auto book = parse_price_book(default_catalog_json());
    ASSERT_TRUE(book.has_value()) << book.error().message;
    ASSERT_EQ(book->versions.size(), 1u);
    EXPECT_FALSE(book->versions[0].effective_from.has_value());
    EXPECT_EQ(book->in_force(0).version, default_catalog().version);
    EXPECT_EQ(book->in_force(at("9999-12-31T00:00:00Z")).version, default_catalog().version);
    EXPECT_EQ(book->next_after(0), nullptr);
    // A single dated catalog is one version too, in force whatever the time
    // (there is nothing before it).
    auto dated = parse_price_book(version_json("v9", "2030-01-01T00:00:00Z", "3"));
    ASSERT_TRUE(dated.has_value()) << dated.error().message;
    EXPECT_EQ(dated->in_force(at("2026-01-01T00:00:00Z")).version, "v9");
    EXPECT_EQ(*dated->versions[0].effective_from, at("2030-01-01T00:00:00Z"));
}

TEST(PriceBook, TheVersionInForceIsTheNewestThatHasStarted) {
    const PriceBook book = three_versions();
    ASSERT_EQ(book.versions.size(), 3u);
    EXPECT_EQ(book.in_force(at("2026-12-31T23:59:59Z")).version, "v1");
    EXPECT_EQ(book.in_force(at("2027-01-01T00:00:00Z")).version, "v2");  // from its first second
    EXPECT_EQ(book.in_force(at("2027-01-31T23:59:59Z")).version, "v2");
    EXPECT_EQ(book.in_force(at("2027-02-01T00:00:00Z")).version, "v3");
    EXPECT_EQ(book.in_force(at("2099-01-01T00:00:00Z")).version, "v3");
    ASSERT_NE(book.next_after(at("2026-12-31T23:59:59Z")), nullptr);
    EXPECT_EQ(book.next_after(at("2026-12-31T23:59:59Z"))->version, "v2");
    EXPECT_EQ(book.next_after(at("2027-01-01T00:00:00Z"))->version, "v3");
    EXPECT_EQ(book.next_after(at("2027-02-01T00:00:00Z")), nullptr);
    ASSERT_NE(book.find_version("v2"), nullptr);
    EXPECT_EQ(book.find_version("v2")->find_model("gpt-4o")->multiplier, (Multiplier{4, 1}));
    EXPECT_EQ(book.find_version("v0"), nullptr);
}

TEST(PriceBook, BadBooksAreRefusedNamingTheVersion) {
    const std::string v1 = version_json("v1", "", "3");
    const std::string v2 = version_json("v2", "2027-01-01T00:00:00Z", "4");
    EXPECT_EQ(book_error(R"({"versions": []})").substr(0, 21), "catalog_invalid_value");
    EXPECT_EQ(book_error(R"({"versions": {}})").substr(0, 21), "catalog_invalid_value");
    EXPECT_EQ(book_error(R"({"versions": [1]})"), "catalog_malformed: versions[0]: the catalog must be a JSON object");
    EXPECT_EQ(book_error(R"({"versions": [], "extra": 1})").substr(0, 21), "catalog_unknown_field");
    EXPECT_EQ(book_error(book_json({v1, v1})).substr(0, 20), "catalog_duplicate_id");
    EXPECT_EQ(book_error(book_json({v2, v1})),
              "catalog_missing_field: versions[1]: missing field effective_from (only the first version may have none)");
    EXPECT_EQ(book_error(book_json({v1, version_json("v2", "2027-01-01T00:00:00Z", "4"),
                                    version_json("v3", "2027-01-01T00:00:00Z", "5")})),
              "catalog_invalid_value: versions[2].effective_from must be after versions[1].effective_from");
    EXPECT_EQ(book_error(book_json({v1, version_json("v2", "next tuesday", "4")})),
              "catalog_invalid_value: versions[1]: catalog.effective_from must be an RFC 3339 timestamp "
              "(2027-01-01T00:00:00Z)");
    EXPECT_EQ(book_error(book_json({v1, version_json("v2", "2027-01-01T00:00:00Z", "-4")})).substr(0, 36),
              "catalog_invalid_value: versions[1]: ");
    std::string many = R"({"versions": [)" + v1;
    for (int i = 2; i <= 65; ++i) {
        many += "," + version_json("v" + std::to_string(i), "2027-01-01T00:00:00Z", "4");  // counted before read
    }
    EXPECT_EQ(book_error(many + "]}"), "catalog_invalid_value: versions has more than 64 entries");
}

TEST(PriceBook, TheServedCatalogNamesItsStartAndTheNextVersionAndParsesBack) {
    const PriceBook book = three_versions();
    const std::int64_t now = at("2027-01-15T00:00:00Z");
    const std::string served = catalog_to_json(book.in_force(now), book.next_after(now));
    EXPECT_NE(served.find(R"("effective_from":"2027-01-01T00:00:00Z")"), std::string::npos) << served;
    EXPECT_NE(served.find(R"("next":{"effective_from":"2027-02-01T00:00:00Z","version":"v3"})"), std::string::npos)
        << served;
    auto reparsed = parse_catalog(served);  // the browser's setCatalog reads it
    ASSERT_TRUE(reparsed.has_value()) << reparsed.error().message;
    EXPECT_EQ(reparsed->version, "v2");
    EXPECT_EQ(catalog_to_json(*reparsed), catalog_to_json(book.in_force(now)));
    // Without a next or a start, the document is what it always was.
    EXPECT_EQ(catalog_to_json(default_catalog()).find("effective_from"), std::string::npos);
    EXPECT_EQ(catalog_to_json(default_catalog()).find("next"), std::string::npos);
    auto bad_next = parse_catalog(R"({"version":"v","next":{"version":"w","effective_from":"soon"},)"
                                  R"("operations":[{"id":"chat"}],"models":[],)"
                                  R"("plans":[{"id":"free","tokens_per_period":1,"avatars_per_period":1},)"
                                  R"({"id":"pro","tokens_per_period":1,"avatars_per_period":1}]})");
    ASSERT_FALSE(bad_next.has_value());
    EXPECT_EQ(bad_next.error().code, "catalog_invalid_value");
}

// The ledger across a price change.
class PriceChange : public ::testing::Test {
protected:
    PriceChange() {
        book_ = three_versions();
        rules_.prices = &book_;
        rules_.reservation_ttl_seconds = 12 * 3600;
    }

    Decision authorize_at(const std::string& id, const std::string& model, std::int64_t now) {
        return authorize(account_, AuthorizeCommand{"ana", id, "chat", model, 1000, 100}, rules_, now);
    }

    Decision commit_at(const std::string& id, std::int64_t now) {
        CommitCommand command{id, 1000, 100, "evt_" + id, "key_" + id};
        command.cached_input_tokens = 400;
        return commit(account_, command, nullptr, rules_, now);
    }

    PriceBook book_;
    LedgerRules rules_;
    Account account_ = unopened_account("ana");
};

TEST_F(PriceChange, EachReservationSettlesAtTheVersionItWasMadeUnder) {
    const std::int64_t before = at("2026-12-31T23:00:00Z");
    const std::int64_t after = at("2027-01-01T01:00:00Z");
    const Decision old_4o = authorize_at("rsv_old_4o", "gpt-4o", before);
    const Decision old_cached = authorize_at("rsv_old_cached", "o-cached", before);
    ASSERT_EQ(old_4o.verdict, Verdict::done) << old_4o.error.message;
    ASSERT_EQ(old_cached.verdict, Verdict::done);
    EXPECT_EQ(old_4o.reservation->catalog_version, "v1");
    EXPECT_EQ(old_4o.changes.back().claims.catalog_version, "v1");  // the authorize receipt names it
    const Decision new_4o = authorize_at("rsv_new_4o", "gpt-4o", after);
    const Decision new_cached = authorize_at("rsv_new_cached", "o-cached", after);
    ASSERT_EQ(new_4o.verdict, Verdict::done);
    EXPECT_EQ(new_4o.reservation->catalog_version, "v2");
    EXPECT_EQ(new_4o.estimate->charged_tokens, 4 * 1100);  // new work, new prices

    // All four settle after v2 started, with the same counts.
    const Decision c_old_4o = commit_at("rsv_old_4o", after + 60);
    const Decision c_old_cached = commit_at("rsv_old_cached", after + 61);
    const Decision c_new_4o = commit_at("rsv_new_4o", after + 62);
    const Decision c_new_cached = commit_at("rsv_new_cached", after + 63);
    for (const Decision* d : {&c_old_4o, &c_old_cached, &c_new_4o, &c_new_cached}) {
        ASSERT_EQ(d->verdict, Verdict::done) << d->error.message;
    }
    EXPECT_EQ(c_old_4o.charge->charge.charged_tokens, 3 * 1100);
    EXPECT_EQ(c_old_4o.charge->catalog_version, "v1");
    EXPECT_EQ(c_old_4o.changes.back().claims.catalog_version, "v1");
    EXPECT_EQ(c_old_cached.charge->charge.charged_tokens, 1100);  // v1 weighs cached input 1
    EXPECT_EQ(c_new_4o.charge->charge.charged_tokens, 4 * 1100);
    EXPECT_EQ(c_new_4o.charge->catalog_version, "v2");
    EXPECT_EQ(c_new_4o.changes.back().claims.catalog_version, "v2");
    EXPECT_EQ(c_new_cached.charge->charge.charged_tokens, 600 + 200 + 100);  // cached 400 at 1/2
    EXPECT_EQ(account_.balance.tokens_used, 3300 + 1100 + 4400 + 900);
    EXPECT_EQ(account_.balance.tokens_reserved, 0);

    // A record prices with the version of its own time; changes that price
    // nothing claim no version.
    const Decision recorded =
        record(account_, RecordCommand{"ana", "chat", "gpt-4o", 10, 0, "evt_r", "key_r"}, rules_, at("2027-02-02T00:00:00Z"));
    ASSERT_EQ(recorded.verdict, Verdict::done);
    EXPECT_EQ(recorded.charge->charge.charged_tokens, 50);
    EXPECT_EQ(recorded.changes.back().claims.catalog_version, "v3");
    for (const LedgerChange& change : recorded.changes) {
        if (change.kind != ChangeKind::record) {
            EXPECT_EQ(change.claims.catalog_version, "") << to_string(change.kind);
        }
    }
}

TEST_F(PriceChange, APeriodTakesTheLimitInForceWhenItStartsHoweverLateItIsOpened) {
    // Ana starts on 2026-12-20 (v1: 250,000) and is not seen again until
    // 2027-03-05 (v3 by then). Her period of 2027-01-20 opened under v2
    // and the one of 2027-02-20 under v3, however late the rollover is made.
    ASSERT_EQ(open_account(account_, rules_, at("2026-12-20T10:00:00Z")).verdict, Verdict::done);
    EXPECT_EQ(account_.balance.tokens_limit, 250000);
    ASSERT_EQ(open_account(account_, rules_, at("2027-01-25T00:00:00Z")).verdict, Verdict::done);
    EXPECT_EQ(account_.balance.tokens_limit, 300000);
    ASSERT_EQ(open_account(account_, rules_, at("2027-03-05T00:00:00Z")).verdict, Verdict::done);
    EXPECT_EQ(account_.period.start_seconds, at("2027-02-20T00:00:00Z"));
    EXPECT_EQ(account_.balance.tokens_limit, 400000);
    // A period that started under v2 keeps v2's limit, though it is opened
    // lazily after v3 began.
    Account bob = unopened_account("bob");
    ASSERT_EQ(open_account(bob, rules_, at("2026-12-05T00:00:00Z")).verdict, Verdict::done);
    ASSERT_EQ(open_account(bob, rules_, at("2027-02-03T00:00:00Z")).verdict, Verdict::done);
    EXPECT_EQ(bob.period.start_seconds, at("2027-01-05T00:00:00Z"));
    EXPECT_EQ(bob.balance.tokens_limit, 300000);
}

TEST(PriceBookReceipts, TheVersionClaimRoundTripsAndIsAbsentWhenEmpty) {
    ReceiptClaims claims;
    claims.sub = "ana";
    claims.iat = 1;
    claims.seq = 1;
    claims.plan = "free";
    claims.period_start = at("2027-01-01T00:00:00Z");
    claims.period_end = at("2027-02-01T00:00:00Z");
    claims.balance.tokens_limit = 10;
    claims.event = "period_open";
    EXPECT_EQ(receipt_payload_json(claims).find("catalog_version"), std::string::npos);
    claims.event = "commit";
    claims.catalog_version = "v2";
    EXPECT_NE(receipt_payload_json(claims).find(R"("catalog_version":"v2")"), std::string::npos);
    const SigningKey key = SigningKey::from_seed(Seed{});
    auto verified = verify_receipt(sign_receipt(claims, key), {{key.kid(), key.public_key()}});
    ASSERT_TRUE(verified.has_value()) << verified.error().message;
    EXPECT_EQ(verified->catalog_version, "v2");
    EXPECT_EQ(*verified, claims);
}

}  // namespace
}  // namespace tokenmeter
