// Table-driven tests of the ledger rules: one row per event with the expected
// outcome, covering every refusal code (TigerBeetle state_machine_tests).
#include <gtest/gtest.h>

#include <optional>

#include "tokenmeter/ledger.hpp"
#include "tokenmeter/limits.hpp"

namespace tokenmeter {
namespace {

const Plan free_plan{"free", 1000, 2, {}};
const Plan pro_plan{"pro", 100000, 50, {}};
constexpr std::int64_t ttl = 600;
constexpr std::int64_t grace = 86400;

TEST(Ledger, AuthorizeReservesWhatFits) {
    Balance balance = open_balance(free_plan);
    auto first = authorize(balance, {600, 0}, 100, ttl);
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->balance.tokens_reserved, 600);
    EXPECT_EQ(first->reservation.expires_at_seconds, 700);
    EXPECT_EQ(first->reservation.state, ReservationState::open);
    // 600 + 400 = 1000 fits exactly; one more token does not.
    auto exact = authorize(first->balance, {400, 0}, 100, ttl);
    ASSERT_TRUE(exact.has_value());
    EXPECT_EQ(exact->balance.tokens_remaining(), 0);
    auto over = authorize(first->balance, {401, 0}, 100, ttl);
    ASSERT_FALSE(over.has_value());
    EXPECT_EQ(over.error().code, RefusalCode::limit_exceeded);
    EXPECT_EQ(over.error().needed, 401);
    EXPECT_EQ(over.error().remaining, 400);
}

TEST(Ledger, AvatarLimitComesFirst) {
    Balance balance = open_balance(free_plan);
    balance.avatars_used = 2;
    auto refused = authorize(balance, {5000, 1}, 0, ttl);  // both limits exceeded
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().code, RefusalCode::avatar_limit_exceeded);
    EXPECT_EQ(refused.error().needed, 1);
    EXPECT_EQ(refused.error().remaining, 0);
    auto recorded = record(balance, {10, 1});
    ASSERT_FALSE(recorded.has_value());
    EXPECT_EQ(recorded.error().code, RefusalCode::avatar_limit_exceeded);
}

TEST(Ledger, CommitChargesActualEvenPastTheLimit) {
    Balance balance = open_balance(free_plan);
    auto reserved = authorize(balance, {900, 0}, 0, ttl).value();
    auto committed = commit(reserved.balance, &reserved.reservation, {1500, 0}, 10, grace);
    ASSERT_TRUE(committed.has_value());
    EXPECT_EQ(committed->balance.tokens_used, 1500);
    EXPECT_EQ(committed->balance.tokens_reserved, 0);
    EXPECT_EQ(committed->balance.tokens_remaining(), 0);
    EXPECT_EQ(committed->reservation.state, ReservationState::committed);
    auto next = authorize(committed->balance, {1, 0}, 10, ttl);
    ASSERT_FALSE(next.has_value());
    EXPECT_EQ(next.error().code, RefusalCode::limit_exceeded);
    EXPECT_EQ(next.error().remaining, 0);
}

TEST(Ledger, CommitBelowTheEstimateFreesTheRest) {
    auto reserved = authorize(open_balance(free_plan), {900, 0}, 0, ttl).value();
    auto committed = commit(reserved.balance, &reserved.reservation, {100, 0}, 10, grace).value();
    EXPECT_EQ(committed.balance.tokens_used, 100);
    EXPECT_EQ(committed.balance.tokens_remaining(), 900);
}

// Every refusal code, in declaration order, negative cases first.
TEST(Ledger, EveryRefusalCode) {
    Balance balance = open_balance(free_plan);
    auto reserved = authorize(balance, {100, 1}, 0, ttl).value();
    const Reservation committed_one = commit(reserved.balance, &reserved.reservation, {50, 1}, 1, grace).value().reservation;
    const Reservation released_one = release(reserved.balance, &reserved.reservation, 1).value().reservation;
    const Reservation expired_one = expire(reserved.balance, &reserved.reservation, ttl).value().reservation;

    EXPECT_EQ(commit(reserved.balance, nullptr, {1, 0}, 1, grace).error().code, RefusalCode::reservation_unknown);
    EXPECT_EQ(release(reserved.balance, nullptr, 1).error().code, RefusalCode::reservation_unknown);
    EXPECT_EQ(expire(reserved.balance, nullptr, 1).error().code, RefusalCode::reservation_unknown);

    EXPECT_EQ(commit(reserved.balance, &committed_one, {1, 0}, 1, grace).error().code, RefusalCode::reservation_settled);
    EXPECT_EQ(commit(reserved.balance, &released_one, {1, 0}, 1, grace).error().code, RefusalCode::reservation_settled);
    EXPECT_EQ(release(reserved.balance, &committed_one, 1).error().code, RefusalCode::reservation_settled);
    EXPECT_EQ(expire(reserved.balance, &released_one, ttl).error().code, RefusalCode::reservation_settled);

    // A commit past the expiry is late, and refused once the grace is over.
    EXPECT_EQ(commit(reserved.balance, &expired_one, {1, 0}, ttl + grace, grace).error().code,
              RefusalCode::reservation_expired);
    EXPECT_EQ(commit(reserved.balance, &reserved.reservation, {1, 0}, ttl + grace, grace).error().code,
              RefusalCode::reservation_expired);  // due but not yet expired
    EXPECT_EQ(commit(reserved.balance, &reserved.reservation, {1, 0}, ttl, 0).error().code,
              RefusalCode::reservation_expired);  // no grace at all
    EXPECT_EQ(release(reserved.balance, &reserved.reservation, ttl + 5).error().code, RefusalCode::reservation_expired);
    EXPECT_EQ(release(reserved.balance, &expired_one, ttl + 5).error().code, RefusalCode::reservation_expired);
    EXPECT_EQ(expire(reserved.balance, &expired_one, ttl).error().code, RefusalCode::reservation_expired);

    EXPECT_EQ(expire(reserved.balance, &reserved.reservation, ttl - 1).error().code, RefusalCode::reservation_not_due);

    EXPECT_EQ(authorize(reserved.balance, {0, 2}, 0, ttl).error().code, RefusalCode::avatar_limit_exceeded);
    EXPECT_EQ(authorize(reserved.balance, {901, 0}, 0, ttl).error().code, RefusalCode::limit_exceeded);
    EXPECT_EQ(record(reserved.balance, {901, 0}).error().code, RefusalCode::limit_exceeded);

    Balance full = reserved.balance;
    full.tokens_used = limits::count_max - 10;
    full.tokens_limit = limits::count_max;
    full.tokens_reserved = 10;
    Reservation big{{10, 0}, ttl, ReservationState::open};
    EXPECT_EQ(commit(full, &big, {11, 0}, 1, grace).error().code, RefusalCode::count_overflow);
    EXPECT_TRUE(commit(full, &big, {10, 0}, 1, grace).has_value());
}

// Work that was authorized is always charged: a commit after the expiry is
// charged late until expires_at + grace; from then on it is refused.
TEST(Ledger, LateCommitsAreChargedWithinTheGrace) {
    const auto reserved = authorize(open_balance(free_plan), {300, 1}, 0, ttl).value();
    const auto expired = expire(reserved.balance, &reserved.reservation, ttl + 5).value();
    const Amount actual{1500, 1};  // more than the limit of 1000: an overrun like any other
    Balance charged = open_balance(free_plan);
    charged.tokens_used = 1500;
    charged.avatars_used = 1;

    struct Row {
        const char* what;
        const Settlement* from;
        std::int64_t now_seconds;
        std::int64_t grace_seconds;
        std::optional<RefusalCode> refusal;  // nullopt: charged
        bool late;
    };
    const Row rows[] = {
        // Refused: the grace is over (or there is none), nothing is charged.
        {"open, grace over", &reserved, ttl + grace, grace, RefusalCode::reservation_expired, false},
        {"expired, grace over", &expired, ttl + grace, grace, RefusalCode::reservation_expired, false},
        {"expired, long after", &expired, ttl + 10 * grace, grace, RefusalCode::reservation_expired, false},
        {"open and due, no grace", &reserved, ttl, 0, RefusalCode::reservation_expired, false},
        {"expired, no grace", &expired, ttl + 5, 0, RefusalCode::reservation_expired, false},
        // Charged on time: the last second before the expiry.
        {"open, on time", &reserved, ttl - 1, grace, std::nullopt, false},
        // Charged late: an open one gives its reservation back now, an
        // expired one gave it back at expiry; the balance ends the same.
        {"open and due", &reserved, ttl, grace, std::nullopt, true},
        {"open, last second of the grace", &reserved, ttl + grace - 1, grace, std::nullopt, true},
        {"expired", &expired, ttl + 5, grace, std::nullopt, true},
        {"expired, last second of the grace", &expired, ttl + grace - 1, grace, std::nullopt, true},
        {"expired, one second of grace", &expired, ttl, 1, std::nullopt, true},
        // Expired by a server whose clock ran ahead: late by nothing.
        {"expired, clock behind", &expired, ttl - 100, 1, std::nullopt, true},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.what);
        auto result = commit(row.from->balance, &row.from->reservation, actual, row.now_seconds, row.grace_seconds);
        if (row.refusal) {
            ASSERT_FALSE(result.has_value());
            EXPECT_EQ(result.error().code, *row.refusal);
            continue;
        }
        ASSERT_TRUE(result.has_value());
        EXPECT_EQ(result->late, row.late);
        EXPECT_EQ(result->balance, charged);
        EXPECT_EQ(result->reservation.state, ReservationState::committed);
        EXPECT_EQ(result->reservation.amount, reserved.reservation.amount);
    }
}

TEST(Ledger, ALateCommitSettlesTheReservation) {
    const auto reserved = authorize(open_balance(free_plan), {300, 0}, 0, ttl).value();
    const auto expired = expire(reserved.balance, &reserved.reservation, ttl).value();
    const auto late = commit(expired.balance, &expired.reservation, {200, 0}, ttl + 60, grace).value();
    EXPECT_EQ(commit(late.balance, &late.reservation, {200, 0}, ttl + 61, grace).error().code,
              RefusalCode::reservation_settled);
    EXPECT_EQ(release(late.balance, &late.reservation, ttl + 61).error().code, RefusalCode::reservation_settled);
    EXPECT_EQ(expire(late.balance, &late.reservation, ttl + 61).error().code, RefusalCode::reservation_settled);
    // A release past the expiry stays refused: expiry gave the amount back.
    EXPECT_EQ(release(expired.balance, &expired.reservation, ttl + 60).error().code, RefusalCode::reservation_expired);
    // Overflow is checked for late charges too.
    Balance full = expired.balance;
    full.tokens_limit = limits::count_max;
    full.tokens_used = limits::count_max - 10;
    EXPECT_EQ(commit(full, &expired.reservation, {11, 0}, ttl + 60, grace).error().code, RefusalCode::count_overflow);
    EXPECT_EQ(commit(full, &expired.reservation, {10, 0}, ttl + 60, grace).value().balance.tokens_used,
              limits::count_max);
}

TEST(Ledger, ExpiryAndReleaseReturnTheReservation) {
    auto reserved = authorize(open_balance(free_plan), {300, 1}, 0, ttl).value();
    auto expired = expire(reserved.balance, &reserved.reservation, ttl).value();
    EXPECT_EQ(expired.balance, open_balance(free_plan));
    EXPECT_EQ(expired.reservation.state, ReservationState::expired);
    auto released = release(reserved.balance, &reserved.reservation, ttl - 1).value();
    EXPECT_EQ(released.balance, open_balance(free_plan));
    EXPECT_EQ(released.reservation.state, ReservationState::released);
}

TEST(Ledger, RecordIsAuthorizeAndCommitInOne) {
    auto recorded = record(open_balance(free_plan), {1000, 2}).value();
    EXPECT_EQ(recorded.tokens_used, 1000);
    EXPECT_EQ(recorded.avatars_used, 2);
    EXPECT_EQ(record(recorded, {0, 0}).value(), recorded);
    EXPECT_EQ(record(recorded, {1, 0}).error().code, RefusalCode::limit_exceeded);
}

TEST(Ledger, PlanChangeKeepsUsageAndReservations) {
    auto reserved = authorize(open_balance(free_plan), {800, 1}, 0, ttl).value();
    Balance used = commit(reserved.balance, &reserved.reservation, {900, 1}, 1, grace).value().balance;
    auto second = authorize(used, {100, 0}, 1, ttl).value();
    Balance upgraded = change_plan(second.balance, pro_plan);
    EXPECT_EQ(upgraded.tokens_limit, 100000);
    EXPECT_EQ(upgraded.avatars_limit, 50);
    EXPECT_EQ(upgraded.tokens_used, 900);
    EXPECT_EQ(upgraded.tokens_reserved, 100);
    EXPECT_EQ(upgraded.tokens_remaining(), 100000 - 1000);
    // A downgrade below usage leaves nothing to spend, and nothing negative.
    Balance downgraded = change_plan(upgraded, Plan{"tiny", 500, 0, {}});
    EXPECT_EQ(downgraded.tokens_remaining(), 0);
    EXPECT_EQ(downgraded.avatars_remaining(), 0);
    // The open reservation still settles after the plan change.
    auto settled = commit(downgraded, &second.reservation, {50, 0}, 2, grace).value();
    EXPECT_EQ(settled.balance.tokens_used, 950);
    EXPECT_EQ(settled.balance.tokens_reserved, 0);
}

TEST(Ledger, RollOverStartsFreshAndCarriesOpenReservations) {
    auto reserved = authorize(open_balance(free_plan), {400, 1}, 0, ttl).value();
    Balance used = record(reserved.balance, {500, 1}).value();
    Balance next = roll_over(used, free_plan);
    EXPECT_EQ(next.tokens_used, 0);
    EXPECT_EQ(next.avatars_used, 0);
    EXPECT_EQ(next.tokens_reserved, 400);
    EXPECT_EQ(next.avatars_reserved, 1);
    auto settled = commit(next, &reserved.reservation, {350, 1}, 5, grace).value();
    EXPECT_EQ(settled.balance.tokens_used, 350);
    EXPECT_EQ(settled.balance.tokens_reserved, 0);
}

}  // namespace
}  // namespace tokenmeter
