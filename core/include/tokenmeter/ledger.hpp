// Ledger rules: the balance of one user-period and its transitions, as pure
// functions (TigerBeetle's two-phase transfers: reserve -> commit | release |
// expire, plus one-shot record).
//
// Each transition takes the current state and returns the new state or a
// typed refusal; nothing is mutated in place and nothing is read from a clock
// (`now` is a parameter). Storage loads a balance and a reservation, applies a
// transition, and writes the result back in one transaction.
//
// Invariants (DESIGN.md §5), asserted after every transition:
//   every count is in [0, limits::count_max];
//   I2: used + reserved <= limit after authorize and record (tokens and
//       avatars); only a commit of authorized work may push used past limit,
//       and a plan change may lower the limit under what is already used.
// A reservation resolves at most once: open -> committed | released | expired,
// except that an expired one may still be committed late (expired ->
// committed) within a grace period after its expiry: work that was
// authorized is always charged (DESIGN.md §5).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "tokenmeter/catalog.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter {

// What an operation takes from the balance: charged tokens and avatars.
struct Amount {
    std::int64_t tokens = 0;
    std::int64_t avatars = 0;
};

bool operator==(const Amount&, const Amount&);

// The balance of one user in one period.
struct Balance {
    std::int64_t tokens_limit = 0;
    std::int64_t tokens_used = 0;
    std::int64_t tokens_reserved = 0;
    std::int64_t avatars_limit = 0;
    std::int64_t avatars_used = 0;
    std::int64_t avatars_reserved = 0;
    // Purchased tokens (credit packs) this period may spend after the plan's
    // allowance: carried over from period to period, never reset. Negative
    // is a debt: credits taken back by a refund after they were spent.
    std::int64_t credits = 0;
    // Credits taken back by refunds in this period: how far below the debt
    // carried in a roll over may leave the next period (see roll_over).
    std::int64_t credits_clawed = 0;

    // What can be spent in the period: the plan's allowance plus credits.
    std::int64_t tokens_capacity() const;
    // What can still be reserved: capacity - used - reserved, never below zero.
    std::int64_t tokens_remaining() const;
    std::int64_t avatars_remaining() const;
};

bool operator==(const Balance&, const Balance&);

// A fresh balance for a plan: limits from the plan, nothing used.
Balance open_balance(const Plan& plan);

enum class ReservationState : std::uint8_t {
    open = 0,
    committed = 1,
    released = 2,
    expired = 3,
};

std::string_view to_string(ReservationState state);
std::optional<ReservationState> reservation_state_from_string(std::string_view text);

struct Reservation {
    Amount amount;                     // what was reserved
    std::int64_t expires_at_seconds = 0;  // open reservations past this are expired
    ReservationState state = ReservationState::open;
};

// Why a transition was refused. Ordered by precedence; values never reused.
enum class RefusalCode : std::uint8_t {
    // No such reservation (for this user).
    reservation_unknown = 1,
    // The reservation is already committed or released.
    reservation_settled = 2,
    // The reservation expired (or is past its expiry and must be expired);
    // for a commit, the grace period after the expiry is over too.
    reservation_expired = 3,
    // The reservation is open and not yet due, so it cannot be expired.
    reservation_not_due = 4,
    // Not enough avatars left: avatars used + reserved + needed > limit.
    avatar_limit_exceeded = 5,
    // Not enough tokens left: tokens used + reserved + needed > limit.
    limit_exceeded = 6,
    // The amount would take a count past limits::count_max.
    count_overflow = 7,
};

std::string_view to_string(RefusalCode code);

struct Refusal {
    RefusalCode code = RefusalCode::limit_exceeded;
    std::int64_t needed = 0;     // for the two limit refusals: what was asked
    std::int64_t remaining = 0;  // and what was left
};

// The result of a transition that touches a reservation.
struct Settlement {
    Balance balance;
    Reservation reservation;
};

// Reserves `amount` until now + ttl if it fits under both limits (I2).
Result<Settlement, Refusal> authorize(const Balance& balance, Amount amount, std::int64_t now_seconds,
                                      std::int64_t ttl_seconds);

// The result of a commit: the settlement, and whether it came after the
// reservation's expiry (a late charge, which the usage row is marked with).
struct Commitment {
    Balance balance;
    Reservation reservation;
    bool late = false;
};

// A null reservation is reservation_unknown for the three calls below.

// Settles a reservation with the actual amount, charged in full even past the
// limit (work that was authorized is always charged). An open reservation
// before its expiry is released and charged. One past its expiry is charged
// late while now < expires_at + grace: if still open, its amount is released
// too; if already expired, that happened at expiry and only the charge is
// left. After the grace, or at once when the grace is 0, the commit is
// refused as reservation_expired and nothing is charged.
Result<Commitment, Refusal> commit(const Balance& balance, const Reservation* reservation, Amount actual,
                                   std::int64_t now_seconds, std::int64_t late_grace_seconds);

// Cancels an open reservation; nothing is charged. A reservation past its
// expiry is refused as expired, so that expiry stays the one way it ends.
Result<Settlement, Refusal> release(const Balance& balance, const Reservation* reservation,
                                    std::int64_t now_seconds);

// Expires an open reservation whose time has come (lazy expiry).
Result<Settlement, Refusal> expire(const Balance& balance, const Reservation* reservation,
                                   std::int64_t now_seconds);

// Authorize and commit in one step, for costs known up front.
Result<Balance, Refusal> record(const Balance& balance, Amount amount);

// A plan change inside the period: limits change, usage and reservations stay.
Balance change_plan(const Balance& balance, const Plan& plan);

// Adds purchased tokens (tokens > 0) or takes them back (tokens < 0, a
// refund). Taking back more than is left is allowed and leaves a debt:
// used stays used, and authorize refuses until the capacity is back above
// what is used. Refused only as count_overflow.
Result<Balance, Refusal> add_credits(const Balance& balance, std::int64_t tokens);

// The credits a period hands to the next: what it did not spend of them
// (tokens used beyond the allowance are spent from credits), less a debt a
// refund left, which the next period's unused allowance pays down.
std::int64_t credits_carried(const Balance& balance);

// The balance of the next period: nothing used, limits from `plan`, the
// credits carried (credits_carried), and the reservations still open
// carried over (they are charged where they settle).
Balance roll_over(const Balance& balance, const Plan& plan);

// Asserts the invariants every balance keeps (counts in range).
void assert_balance(const Balance& balance);

}  // namespace tokenmeter
