#include "tokenmeter/ledger.hpp"

#include <algorithm>
#include <optional>

#include "tokenmeter/assert.hpp"
#include "tokenmeter/limits.hpp"

namespace tokenmeter {

namespace {

bool in_range(std::int64_t count) { return count >= 0 && count <= limits::count_max; }
bool in_signed_range(std::int64_t count) { return count >= -limits::count_max && count <= limits::count_max; }

void assert_amount(const Amount& amount) {
    TM_ASSERT(in_range(amount.tokens));
    TM_ASSERT(in_range(amount.avatars));
}

// I2 for one quantity.
void assert_within_limit(std::int64_t used, std::int64_t reserved, std::int64_t limit) {
    TM_ASSERT(used <= limit - reserved);
}

std::int64_t remaining(std::int64_t limit, std::int64_t used, std::int64_t reserved) {
    return std::max<std::int64_t>(0, limit - used - reserved);
}

// used + reserved + amount <= limit, without overflow (all terms <= 2^53).
bool fits(std::int64_t used, std::int64_t reserved, std::int64_t amount, std::int64_t limit) {
    return used + reserved + amount <= limit;
}

// Refuses an amount that does not fit; avatars take precedence because the
// avatar quota is the scarcer, plan-specific one.
std::optional<Refusal> refuse_over_limit(const Balance& balance, const Amount& amount) {
    if (!fits(balance.avatars_used, balance.avatars_reserved, amount.avatars, balance.avatars_limit)) {
        return Refusal{RefusalCode::avatar_limit_exceeded, amount.avatars, balance.avatars_remaining()};
    }
    if (!fits(balance.tokens_used, balance.tokens_reserved, amount.tokens, balance.tokens_capacity())) {
        return Refusal{RefusalCode::limit_exceeded, amount.tokens, balance.tokens_remaining()};
    }
    // With credits the capacity may pass what a count can hold.
    if (!fits(balance.tokens_used, balance.tokens_reserved, amount.tokens, limits::count_max)) {
        return Refusal{RefusalCode::count_overflow, amount.tokens, 0};
    }
    return std::nullopt;
}

// Whether a reservation is past its expiry: expired lazily already, or open
// and due.
bool past_expiry(const Reservation& reservation, std::int64_t now_seconds) {
    return reservation.state == ReservationState::expired || now_seconds >= reservation.expires_at_seconds;
}

// Refuses a reservation that is missing or that the client already settled.
std::optional<Refusal> refuse_settled(const Reservation* reservation) {
    if (reservation == nullptr) return Refusal{RefusalCode::reservation_unknown, 0, 0};
    switch (reservation->state) {
        case ReservationState::committed:
        case ReservationState::released: return Refusal{RefusalCode::reservation_settled, 0, 0};
        case ReservationState::expired:
        case ReservationState::open: break;
    }
    return std::nullopt;
}

// Refuses a release of a reservation that is settled or past its expiry:
// expiry gives the amount back, so there is nothing left to release.
std::optional<Refusal> refuse_unreleasable(const Reservation* reservation, std::int64_t now_seconds) {
    if (auto refusal = refuse_settled(reservation)) return refusal;
    if (past_expiry(*reservation, now_seconds)) return Refusal{RefusalCode::reservation_expired, 0, 0};
    return std::nullopt;
}

// Refuses a commit of a reservation that is settled, or past its expiry by
// the grace or more. A reservation that another server (whose clock ran
// ahead) expired before this clock reached its expiry is late by nothing,
// not by a negative time.
std::optional<Refusal> refuse_uncommittable(const Reservation* reservation, std::int64_t now_seconds,
                                            std::int64_t late_grace_seconds) {
    if (auto refusal = refuse_settled(reservation)) return refusal;
    if (!past_expiry(*reservation, now_seconds)) return std::nullopt;
    const std::int64_t late_by_seconds = std::max<std::int64_t>(0, now_seconds - reservation->expires_at_seconds);
    if (late_by_seconds >= late_grace_seconds) return Refusal{RefusalCode::reservation_expired, 0, 0};
    return std::nullopt;
}

Balance without_reservation(const Balance& balance, const Amount& amount) {
    TM_ASSERT(balance.tokens_reserved >= amount.tokens);
    TM_ASSERT(balance.avatars_reserved >= amount.avatars);
    Balance next = balance;
    next.tokens_reserved -= amount.tokens;
    next.avatars_reserved -= amount.avatars;
    return next;
}

Settlement settle(const Balance& balance, const Reservation& reservation, ReservationState state) {
    Reservation resolved = reservation;
    resolved.state = state;
    Balance next = without_reservation(balance, reservation.amount);
    assert_balance(next);
    return Settlement{next, resolved};
}

// Resolves a reservation being committed: an open one gives its amount back
// now, an expired one gave it back when it expired.
Settlement settle_commit(const Balance& balance, const Reservation& reservation) {
    if (reservation.state == ReservationState::open) return settle(balance, reservation, ReservationState::committed);
    TM_ASSERT(reservation.state == ReservationState::expired);
    Reservation resolved = reservation;
    resolved.state = ReservationState::committed;
    return Settlement{balance, resolved};
}

}  // namespace

bool operator==(const Amount& a, const Amount& b) { return a.tokens == b.tokens && a.avatars == b.avatars; }

bool operator==(const Balance& a, const Balance& b) {
    return a.tokens_limit == b.tokens_limit && a.tokens_used == b.tokens_used &&
           a.tokens_reserved == b.tokens_reserved && a.avatars_limit == b.avatars_limit &&
           a.avatars_used == b.avatars_used && a.avatars_reserved == b.avatars_reserved && a.credits == b.credits &&
           a.credits_clawed == b.credits_clawed;
}

std::int64_t Balance::tokens_capacity() const { return tokens_limit + credits; }
std::int64_t Balance::tokens_remaining() const { return remaining(tokens_capacity(), tokens_used, tokens_reserved); }
std::int64_t Balance::avatars_remaining() const { return remaining(avatars_limit, avatars_used, avatars_reserved); }

void assert_balance(const Balance& balance) {
    TM_ASSERT(in_range(balance.tokens_limit));
    TM_ASSERT(in_range(balance.tokens_used));
    TM_ASSERT(in_range(balance.tokens_reserved));
    TM_ASSERT(in_range(balance.avatars_limit));
    TM_ASSERT(in_range(balance.avatars_used));
    TM_ASSERT(in_range(balance.avatars_reserved));
    TM_ASSERT(in_signed_range(balance.credits));
    TM_ASSERT(in_range(balance.credits_clawed));
}

Balance open_balance(const Plan& plan) {
    Balance balance;
    balance.tokens_limit = plan.tokens_per_period;
    balance.avatars_limit = plan.avatars_per_period;
    assert_balance(balance);
    return balance;
}

std::string_view to_string(ReservationState state) {
    switch (state) {
        case ReservationState::open: return "open";
        case ReservationState::committed: return "committed";
        case ReservationState::released: return "released";
        case ReservationState::expired: return "expired";
    }
    TM_ASSERT(false);
}

std::optional<ReservationState> reservation_state_from_string(std::string_view text) {
    for (ReservationState state : {ReservationState::open, ReservationState::committed, ReservationState::released,
                                   ReservationState::expired}) {
        if (to_string(state) == text) return state;
    }
    return std::nullopt;
}

std::string_view to_string(RefusalCode code) {
    switch (code) {
        case RefusalCode::reservation_unknown: return "reservation_unknown";
        case RefusalCode::reservation_settled: return "reservation_settled";
        case RefusalCode::reservation_expired: return "reservation_expired";
        case RefusalCode::reservation_not_due: return "reservation_not_due";
        case RefusalCode::avatar_limit_exceeded: return "avatar_limit_exceeded";
        case RefusalCode::limit_exceeded: return "limit_exceeded";
        case RefusalCode::count_overflow: return "count_overflow";
    }
    TM_ASSERT(false);
}

Result<Settlement, Refusal> authorize(const Balance& balance, Amount amount, std::int64_t now_seconds,
                                      std::int64_t ttl_seconds) {
    assert_balance(balance);
    assert_amount(amount);
    TM_ASSERT(ttl_seconds >= limits::reservation_ttl_min && ttl_seconds <= limits::reservation_ttl_max);
    if (auto refusal = refuse_over_limit(balance, amount)) return unexpected(*refusal);
    Settlement result{balance, Reservation{amount, now_seconds + ttl_seconds, ReservationState::open}};
    result.balance.tokens_reserved += amount.tokens;
    result.balance.avatars_reserved += amount.avatars;
    assert_balance(result.balance);
    assert_within_limit(result.balance.tokens_used, result.balance.tokens_reserved, result.balance.tokens_capacity());
    assert_within_limit(result.balance.avatars_used, result.balance.avatars_reserved, result.balance.avatars_limit);
    return result;
}

Result<Commitment, Refusal> commit(const Balance& balance, const Reservation* reservation, Amount actual,
                                   std::int64_t now_seconds, std::int64_t late_grace_seconds) {
    assert_balance(balance);
    assert_amount(actual);
    TM_ASSERT(late_grace_seconds >= limits::late_commit_grace_min);
    TM_ASSERT(late_grace_seconds <= limits::late_commit_grace_max);
    if (auto refusal = refuse_uncommittable(reservation, now_seconds, late_grace_seconds)) return unexpected(*refusal);
    if (balance.tokens_used > limits::count_max - actual.tokens ||
        balance.avatars_used > limits::count_max - actual.avatars) {
        return unexpected(Refusal{RefusalCode::count_overflow, actual.tokens, 0});
    }
    const Settlement settled = settle_commit(balance, *reservation);
    Commitment result{settled.balance, settled.reservation, past_expiry(*reservation, now_seconds)};
    result.balance.tokens_used += actual.tokens;
    result.balance.avatars_used += actual.avatars;
    assert_balance(result.balance);
    TM_ASSERT(result.reservation.state == ReservationState::committed);
    return result;
}

Result<Settlement, Refusal> release(const Balance& balance, const Reservation* reservation,
                                    std::int64_t now_seconds) {
    assert_balance(balance);
    if (auto refusal = refuse_unreleasable(reservation, now_seconds)) return unexpected(*refusal);
    return settle(balance, *reservation, ReservationState::released);
}

Result<Settlement, Refusal> expire(const Balance& balance, const Reservation* reservation,
                                   std::int64_t now_seconds) {
    assert_balance(balance);
    if (reservation == nullptr) return unexpected(Refusal{RefusalCode::reservation_unknown, 0, 0});
    if (reservation->state == ReservationState::expired) return unexpected(Refusal{RefusalCode::reservation_expired, 0, 0});
    if (reservation->state != ReservationState::open) return unexpected(Refusal{RefusalCode::reservation_settled, 0, 0});
    if (now_seconds < reservation->expires_at_seconds) return unexpected(Refusal{RefusalCode::reservation_not_due, 0, 0});
    return settle(balance, *reservation, ReservationState::expired);
}

Result<Balance, Refusal> record(const Balance& balance, Amount amount) {
    assert_balance(balance);
    assert_amount(amount);
    if (auto refusal = refuse_over_limit(balance, amount)) return unexpected(*refusal);
    Balance next = balance;
    next.tokens_used += amount.tokens;
    next.avatars_used += amount.avatars;
    assert_balance(next);
    assert_within_limit(next.tokens_used, next.tokens_reserved, next.tokens_capacity());
    assert_within_limit(next.avatars_used, next.avatars_reserved, next.avatars_limit);
    return next;
}

Balance change_plan(const Balance& balance, const Plan& plan) {
    assert_balance(balance);
    Balance next = balance;
    next.tokens_limit = plan.tokens_per_period;
    next.avatars_limit = plan.avatars_per_period;
    assert_balance(next);
    return next;
}

Result<Balance, Refusal> add_credits(const Balance& balance, std::int64_t tokens) {
    assert_balance(balance);
    TM_ASSERT(in_signed_range(tokens));
    Balance next = balance;
    next.credits += tokens;
    if (tokens < 0) next.credits_clawed -= tokens;
    if (!in_signed_range(next.credits) || !in_range(next.credits_clawed)) {
        return unexpected(Refusal{RefusalCode::count_overflow, tokens, 0});
    }
    assert_balance(next);
    return next;
}

std::int64_t credits_carried(const Balance& balance) {
    assert_balance(balance);
    // What the period spent beyond its allowance came out of the credits;
    // what it left of its allowance pays down a debt carried in.
    const std::int64_t left = balance.credits - (balance.tokens_used - balance.tokens_limit);
    // A period never adds credits, and only a refund makes a debt: an
    // overrun of authorized work past the capacity is forgiven at the period
    // end, as it always was, while credits spent and then taken back stay owed.
    const std::int64_t ceiling = std::max<std::int64_t>(0, balance.credits);
    const std::int64_t floor =
        std::min<std::int64_t>(0, balance.credits + balance.credits_clawed) - balance.credits_clawed;
    return std::clamp(left, floor, ceiling);
}

Balance roll_over(const Balance& balance, const Plan& plan) {
    assert_balance(balance);
    Balance next = open_balance(plan);
    next.tokens_reserved = balance.tokens_reserved;
    next.avatars_reserved = balance.avatars_reserved;
    next.credits = credits_carried(balance);
    assert_balance(next);
    return next;
}

}  // namespace tokenmeter
