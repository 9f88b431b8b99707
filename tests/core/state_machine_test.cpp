// The ledger state machine without a database: lifecycle rules (open, lapse,
// roll over, expire), every command's outcomes, the receipt chain of the
// changes it appends, and the idempotency decision. One row per case where a
// table fits (TigerBeetle state_machine_tests).
#include <gtest/gtest.h>

#include <string>

#include "tokenmeter/state_machine.hpp"

namespace tokenmeter {
namespace {

// 2025-11-24T16:00:00Z, and some instants around it.
constexpr std::int64_t t0 = 1764000000;
constexpr std::int64_t day = 86400;

Catalog test_catalog() {
    Catalog catalog = default_catalog();
    catalog.version = "test-1";
    for (Plan& plan : catalog.plans) {
        if (plan.id == "free") plan.tokens_per_period = 1000;
    }
    return catalog;
}

const Catalog& catalog() {
    static const Catalog c = test_catalog();
    return c;
}

LedgerRules rules() {
    LedgerRules r;
    static const PriceBook book = price_book_of(catalog());
    r.prices = &book;
    r.reservation_ttl_seconds = 600;
    r.late_commit_grace_seconds = day;
    return r;
}

AuthorizeCommand chat(const std::string& user, const std::string& id, std::int64_t input, std::int64_t output = 0) {
    return AuthorizeCommand{user, id, "chat", "gpt-4o-mini", input, output};
}

CommitCommand commit_of(const std::string& id, std::int64_t input, std::int64_t output, const std::string& event = "evt") {
    return CommitCommand{id, input, output, event, "key"};
}

std::vector<std::string> kinds(const Decision& decision) {
    std::vector<std::string> out;
    for (const LedgerChange& change : decision.changes) out.emplace_back(to_string(change.kind));
    return out;
}

using Kinds = std::vector<std::string>;

// I5 across a sequence of decisions: seq 1, 2, 3, … and prev chained.
class Chain {
public:
    void check(const Decision& decision) {
        for (const LedgerChange& change : decision.changes) {
            EXPECT_EQ(change.claims.seq, last_seq_ + 1);
            EXPECT_EQ(change.claims.prev, last_digest_);
            EXPECT_EQ(change.claims.event, to_string(change.kind));
            last_seq_ = change.claims.seq;
            last_digest_ = receipt_claims_digest(change.claims);
        }
    }

private:
    std::int64_t last_seq_ = 0;
    std::string last_digest_;
};

TEST(StateMachine, AFirstUseOpensTheAccountAnchoredOnThatDay) {
    Account account = unopened_account("ana");
    const Decision opened = open_account(account, rules(), t0);
    EXPECT_EQ(opened.verdict, Verdict::done);
    EXPECT_EQ(kinds(opened), (Kinds{"period_open"}));
    EXPECT_EQ(account.seq, 1);
    EXPECT_EQ(account.plan, "free");
    EXPECT_EQ(account.anchor_day, 24);
    EXPECT_EQ(account.period.start_seconds, t0 - 16 * 3600);
    EXPECT_EQ(account.balance.tokens_limit, 1000);
    ASSERT_TRUE(opened.changes[0].plan_terms.has_value());
    EXPECT_EQ(opened.changes[0].plan_terms->anchor_day, 24);
    EXPECT_TRUE(opened.changes[0].claims.prev.empty());
    // Nothing is due: opening again changes nothing.
    EXPECT_TRUE(open_account(account, rules(), t0 + 60).changes.empty());
}

TEST(StateMachine, AuthorizeCommitReleaseAndRecord) {
    Account account = unopened_account("ana");
    Chain chain;
    const Decision reserved = authorize(account, chat("ana", "rsv_1", 100, 200), rules(), t0);
    chain.check(reserved);
    ASSERT_EQ(reserved.verdict, Verdict::done);
    EXPECT_EQ(kinds(reserved), (Kinds{"period_open", "authorize"}));
    EXPECT_EQ(reserved.estimate->charged_tokens, 300);
    EXPECT_EQ(account.balance.tokens_reserved, 300);
    ASSERT_EQ(account.reservations.size(), 1u);
    EXPECT_EQ(account.reservations[0].catalog_version, "test-1");
    EXPECT_EQ(account.reservations[0].reservation.expires_at_seconds, t0 + 600);

    const Decision committed = commit(account, commit_of("rsv_1", 120, 30), nullptr, rules(), t0 + 5);
    chain.check(committed);
    ASSERT_EQ(committed.verdict, Verdict::done);
    EXPECT_EQ(kinds(committed), (Kinds{"commit"}));
    EXPECT_EQ(committed.charge->charge.charged_tokens, 150);
    EXPECT_EQ(committed.charge->reservation_id, "rsv_1");
    EXPECT_FALSE(committed.charge->late);
    EXPECT_EQ(account.balance.tokens_used, 150);
    EXPECT_EQ(account.balance.tokens_reserved, 0);
    EXPECT_TRUE(account.reservations.empty());

    const Decision second = authorize(account, chat("ana", "rsv_2", 10, 10), rules(), t0 + 6);
    chain.check(second);
    const Decision released = release(account, ReleaseCommand{"rsv_2"}, nullptr, rules(), t0 + 7);
    chain.check(released);
    EXPECT_EQ(kinds(released), (Kinds{"release"}));
    EXPECT_EQ(released.reservation->reservation.state, ReservationState::released);
    EXPECT_EQ(account.balance.tokens_reserved, 0);

    const Decision recorded =
        record(account, RecordCommand{"ana", "embedding", "text-embedding-3-small", 100, 0, "evt_a", "k"}, rules(), t0 + 8);
    chain.check(recorded);
    EXPECT_EQ(kinds(recorded), (Kinds{"record"}));
    EXPECT_EQ(recorded.charge->charge.charged_tokens, 100);
    EXPECT_EQ(account.balance.tokens_used, 250);
}

// Every refusal and bad input, negative cases first; each leaves the account
// exactly as it was (no lazy change is due here).
TEST(StateMachine, RefusalsAndBadInputChangeNothing) {
    Account account = unopened_account("ana");
    ASSERT_EQ(authorize(account, chat("ana", "rsv_1", 500), rules(), t0).verdict, Verdict::done);
    const Account before = account;
    struct Case {
        const char* name;
        Decision decision;
        Verdict verdict;
        std::string code;  // refusal code or error code
    };
    HeldReservation elsewhere = account.reservations[0];
    elsewhere.reservation.state = ReservationState::committed;
    const Case cases[] = {
        {"unknown model", authorize(account, AuthorizeCommand{"ana", "rsv_x", "chat", "gpt-9", 1, 0}, rules(), t0),
         Verdict::invalid, "unknown_model"},
        {"unknown operation", authorize(account, AuthorizeCommand{"ana", "rsv_x", "video", "gpt-4o", 1, 0}, rules(), t0),
         Verdict::invalid, "unknown_operation"},
        {"avatar with tokens", authorize(account, AuthorizeCommand{"ana", "rsv_x", "avatar", "", 1, 0}, rules(), t0),
         Verdict::invalid, "tokens_not_allowed"},
        {"commit without output", commit(account, CommitCommand{"rsv_1", 5, std::nullopt, "e", "k"}, nullptr, rules(), t0),
         Verdict::invalid, "missing_field"},
        {"commit unknown", commit(account, commit_of("rsv_nope", 1, 1), nullptr, rules(), t0), Verdict::refused,
         "reservation_unknown"},
        {"release unknown", release(account, ReleaseCommand{"rsv_nope"}, nullptr, rules(), t0), Verdict::refused,
         "reservation_unknown"},
        {"over the limit", authorize(account, chat("ana", "rsv_y", 501), rules(), t0), Verdict::refused, "limit_exceeded"},
        {"record over the limit", record(account, RecordCommand{"ana", "chat", "gpt-4o-mini", 501, 0, "e", "k"}, rules(), t0),
         Verdict::refused, "limit_exceeded"},
        {"unknown plan", change_plan(account, PlanChangeCommand{"ana", "gold", std::nullopt, "", std::nullopt}, rules(), t0),
         Verdict::invalid, "unknown_plan"},
    };
    for (const Case& c : cases) {
        EXPECT_EQ(c.decision.verdict, c.verdict) << c.name;
        const std::string code = c.verdict == Verdict::invalid ? c.decision.error.code
                                                               : std::string(to_string(c.decision.refusal.code));
        EXPECT_EQ(code, c.code) << c.name;
        EXPECT_TRUE(c.decision.changes.empty()) << c.name;
    }
    EXPECT_EQ(account, before);
    // A settled reservation the shell knows of is refused as settled.
    Account copy = account;
    copy.reservations.clear();
    copy.balance.tokens_reserved = 0;
    EXPECT_EQ(commit(copy, commit_of("rsv_1", 1, 1), &elsewhere, rules(), t0).refusal.code, RefusalCode::reservation_settled);
    EXPECT_EQ(release(copy, ReleaseCommand{"rsv_1"}, &elsewhere, rules(), t0).refusal.code, RefusalCode::reservation_settled);
}

TEST(StateMachine, ExpiryIsLazyAndOneChangeForAllThatAreDue) {
    Account account = unopened_account("ana");
    ASSERT_EQ(authorize(account, chat("ana", "rsv_1", 100), rules(), t0).verdict, Verdict::done);
    ASSERT_EQ(authorize(account, chat("ana", "rsv_2", 100), rules(), t0 + 1).verdict, Verdict::done);
    ASSERT_EQ(authorize(account, chat("ana", "rsv_3", 100), rules(), t0 + 500).verdict, Verdict::done);
    EXPECT_EQ(account.attention_at(), t0 + 600);
    // At t0 + 601 the first two are due, the third is not.
    const Decision opened = open_account(account, rules(), t0 + 601);
    EXPECT_EQ(kinds(opened), (Kinds{"expire"}));
    ASSERT_EQ(opened.changes[0].reservations.size(), 2u);
    for (const HeldReservation& held : opened.changes[0].reservations) {
        EXPECT_EQ(held.reservation.state, ReservationState::expired);
        EXPECT_EQ(held.settled_at, t0 + 601);
    }
    EXPECT_EQ(account.balance.tokens_reserved, 100);
    ASSERT_EQ(account.reservations.size(), 1u);
    EXPECT_EQ(account.reservations[0].id, "rsv_3");
}

TEST(StateMachine, ALateCommitIsChargedWithinTheGraceAndRefusedAfter) {
    Account account = unopened_account("ana");
    ASSERT_EQ(authorize(account, chat("ana", "rsv_1", 100), rules(), t0).verdict, Verdict::done);
    // The commit arrives after the expiry: the lazy expiry comes first, then
    // the charge, marked late, past the limit if need be.
    Account late = account;
    const Decision charged = commit(late, commit_of("rsv_1", 900, 300), nullptr, rules(), t0 + 700);
    ASSERT_EQ(charged.verdict, Verdict::done);
    EXPECT_EQ(kinds(charged), (Kinds{"expire", "commit"}));
    EXPECT_TRUE(charged.charge->late);
    EXPECT_EQ(late.balance.tokens_used, 1200);
    EXPECT_EQ(late.balance.tokens_reserved, 0);
    // The shell later knows it only from the journal, as expired: still
    // chargeable within the grace, refused after it.
    Account known = account;
    const Decision expired = open_account(known, rules(), t0 + 700);
    const HeldReservation settled = expired.changes[0].reservations[0];
    Account within = known;
    EXPECT_EQ(commit(within, commit_of("rsv_1", 1, 1), &settled, rules(), t0 + 600 + day - 1).verdict, Verdict::done);
    Account after = known;
    const Decision refused = commit(after, commit_of("rsv_1", 1, 1), &settled, rules(), t0 + 600 + day);
    EXPECT_EQ(refused.verdict, Verdict::refused);
    EXPECT_EQ(refused.refusal.code, RefusalCode::reservation_expired);
    EXPECT_EQ(after.balance.tokens_used, 0);
    // A release after the expiry is refused: nothing is held any more.
    Account released = known;
    EXPECT_EQ(release(released, ReleaseCommand{"rsv_1"}, &settled, rules(), t0 + 700).refusal.code,
              RefusalCode::reservation_expired);
}

TEST(StateMachine, ARolloverClosesThePeriodAndCarriesOpenReservations) {
    Account account = unopened_account("ana");  // anchored on the 24th
    ASSERT_EQ(record(account, RecordCommand{"ana", "chat", "gpt-4o-mini", 400, 0, "e1", "k1"}, rules(), t0).verdict,
              Verdict::done);
    ASSERT_EQ(authorize(account, chat("ana", "rsv_1", 100), rules(), t0 + 1).verdict, Verdict::done);
    const Period first = account.period;
    // A reservation made just before the period ends, still open after it.
    LedgerRules long_ttl = rules();
    long_ttl.reservation_ttl_seconds = 24 * 3600;
    ASSERT_EQ(authorize(account, chat("ana", "rsv_2", 50), long_ttl, first.end_seconds - 10).verdict, Verdict::done);
    const Decision rolled = open_account(account, rules(), first.end_seconds + 5);
    EXPECT_EQ(kinds(rolled), (Kinds{"period_open"}));  // rsv_1 expired when rsv_2 was made
    const LedgerChange& opened = rolled.changes[0];
    ASSERT_TRUE(opened.closed.has_value());
    EXPECT_EQ(opened.closed->period, first);
    EXPECT_EQ(opened.closed->balance.tokens_used, 400);
    EXPECT_EQ(opened.closed->balance.tokens_reserved, 0);  // moved on, not left behind
    EXPECT_EQ(account.period.start_seconds, first.end_seconds);
    EXPECT_EQ(account.balance.tokens_used, 0);
    EXPECT_EQ(account.balance.tokens_reserved, 50);
    // Committed in the new period, it is charged there.
    const Decision committed = commit(account, commit_of("rsv_2", 40, 0), nullptr, rules(), first.end_seconds + 6);
    EXPECT_EQ(committed.charge->period_start, account.period.start_seconds);
    EXPECT_EQ(account.balance.tokens_used, 40);
}

TEST(StateMachine, PlansChangeAtOnceAndLapseWhenTheirEndComes) {
    Account account = unopened_account("ana");
    ASSERT_EQ(record(account, RecordCommand{"ana", "chat", "gpt-4o-mini", 900, 0, "e1", "k1"}, rules(), t0).verdict,
              Verdict::done);
    const Decision upgraded =
        change_plan(account, PlanChangeCommand{"ana", "pro", t0 + 10 * day, "free", 3}, rules(), t0 + 60);
    ASSERT_EQ(upgraded.verdict, Verdict::done);
    EXPECT_EQ(kinds(upgraded), (Kinds{"plan_change"}));
    EXPECT_EQ(account.plan, "pro");
    EXPECT_EQ(account.balance.tokens_used, 900);  // usage kept
    EXPECT_EQ(account.balance.tokens_limit, catalog().find_plan("pro")->tokens_per_period);
    EXPECT_EQ(account.anchor_day, 3);
    // The period keeps its start and now ends on the new anchor day.
    EXPECT_EQ(account.period.end_seconds, 1764720000);  // 2025-12-03T00:00:00Z
    EXPECT_EQ(account.attention_at(), 1764720000);
    // Past both the period's end and the plan's, which came later: the new
    // period opens on the plan in force when it began (the closed one keeps
    // the limit it was used under), and the lapse follows inside it.
    const Decision lapsed = open_account(account, rules(), t0 + 11 * day);
    EXPECT_EQ(kinds(lapsed), (Kinds{"period_open", "plan_change"}));
    EXPECT_EQ(account.plan, "free");
    EXPECT_FALSE(account.plan_ends_at.has_value());
    EXPECT_EQ(account.balance.tokens_limit, 1000);
}

TEST(StateMachine, ThePeriodOfTheThirtyFirstEndsOnShortMonthsLastDay) {
    Account account = unopened_account("may");
    const std::int64_t jan31 = 1769817600;  // 2026-01-31T00:00:00Z
    ASSERT_EQ(open_account(account, rules(), jan31 + 3600).verdict, Verdict::done);
    EXPECT_EQ(account.anchor_day, 31);
    EXPECT_EQ(account.period.end_seconds, 1772236800);  // 2026-02-28T00:00:00Z
    open_account(account, rules(), 1772236800 + 1);
    EXPECT_EQ(account.period.start_seconds, 1772236800);
    EXPECT_EQ(account.period.end_seconds, 1774915200);  // 2026-03-31T00:00:00Z
}

TEST(StateMachine, AClockThatStepsBackChangesNothingLazily) {
    Account account = unopened_account("ana");
    ASSERT_EQ(authorize(account, chat("ana", "rsv_1", 100), rules(), t0).verdict, Verdict::done);
    const Account before = account;
    EXPECT_TRUE(open_account(account, rules(), t0 - 3600).changes.empty());
    EXPECT_EQ(account, before);
    // And a commit with the clock behind still settles on time.
    const Decision committed = commit(account, commit_of("rsv_1", 10, 0), nullptr, rules(), t0 - 3600);
    EXPECT_EQ(committed.verdict, Verdict::done);
    EXPECT_FALSE(committed.charge->late);
}

TEST(StateMachine, TheIdempotencyDecision) {
    const std::string stored = "hash-a";
    struct Case {
        bool in_flight;
        const std::string* stored;
        const char* hash;
        IdempotencyVerdict verdict;
    };
    const Case cases[] = {
        {false, nullptr, "hash-a", IdempotencyVerdict::execute},
        {true, nullptr, "hash-a", IdempotencyVerdict::in_flight},
        {false, &stored, "hash-a", IdempotencyVerdict::replay},
        {false, &stored, "hash-b", IdempotencyVerdict::key_reused},
    };
    for (const Case& c : cases) EXPECT_EQ(decide_idempotency(c.in_flight, c.stored, c.hash), c.verdict) << c.hash;
}

TEST(StateMachine, TheDigestOfClaimsIsTheDigestOfTheSignedReceipt) {
    ASSERT_TRUE(crypto_ready());
    Account account = unopened_account("ana");
    const Decision opened = open_account(account, rules(), t0);
    const SigningKey key = SigningKey::from_seed(Seed{});
    const std::string jws = sign_receipt(opened.changes[0].claims, key);
    EXPECT_EQ(receipt_chain_digest(jws), receipt_claims_digest(opened.changes[0].claims));
    EXPECT_EQ(account.head_digest, receipt_chain_digest(jws));
}

}  // namespace
}  // namespace tokenmeter
