// The ledger as one state machine (DESIGN.md §5, TigerBeetle's
// state_machine.zig): given an account's state, a command and the time, it
// decides the command's typed result and the ledger changes to append, and
// updates the state. It does no I/O, reads no clock and draws no random
// numbers (ids come in with the commands), so every rule can be tested
// without a database and replayed exactly.
//
// Every command first brings the account up to date, which may itself
// append changes, each with its own receipt:
//   open         a user's first use creates the account (period_open);
//   lapse        a plan whose end has passed gives way to the plan after it
//                (plan_change);
//   roll over    a period that has ended is closed and the next opened
//                (period_open), open reservations carried over;
//   expire       open reservations past their expiry release their amounts
//                (one expire change for all that are due).
// Then the command applies: authorize, commit, release, record, plan change.
//
// Invariants (asserted): every change's receipt has seq = previous + 1 and
// prev = the digest of the previous receipt's payload (I5); balances keep the
// core ledger's invariants (ledger.hpp, I2); a command refused for bad input
// changes nothing at all; a refusal leaves only the lazy changes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenmeter/catalog.hpp"
#include "tokenmeter/error.hpp"
#include "tokenmeter/ledger.hpp"
#include "tokenmeter/period.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter {

// The rules every decision follows; all of it is configuration.
struct LedgerRules {
    // Prices authorize and record with the version in force at the
    // command's time, and gives plans their limits; a commit prices with
    // what its reservation pinned, never with the book.
    const PriceBook* prices = nullptr;

    const Catalog& catalog_at(std::int64_t now) const { return prices->in_force(now); }
    std::int64_t reservation_ttl_seconds = 600;
    // A commit up to this long after the reservation's expiry is still charged (late).
    std::int64_t late_commit_grace_seconds = 24 * 3600;
    std::string default_plan = "free";
};

// A reservation with the terms it was made under: it is settled at the
// multiplier, token class weights and catalog version in force when it was
// authorized, whatever the price book says by then.
struct HeldReservation {
    std::string id;
    std::string user_id;
    OperationKind operation = OperationKind::chat;
    std::string model;
    Multiplier multiplier;
    TokenWeights weights;
    std::string catalog_version;
    Reservation reservation;  // amount, expiry, state
    std::int64_t created_at = 0;
    std::int64_t settled_at = 0;  // 0 while open
};

bool operator==(const HeldReservation&, const HeldReservation&);

// A user's account: plan, period, balance, receipt chain head, and the
// reservations still open.
struct Account {
    std::string user_id;
    std::string plan;
    int anchor_day = 1;
    Period period;
    Balance balance;
    std::int64_t seq = 0;  // receipts issued; 0: the account does not exist yet
    ReceiptClaims head;    // the claims of the newest receipt (seq)
    std::string head_digest;  // its chain digest: the next receipt's prev
    std::optional<std::int64_t> plan_ends_at;  // the plan lapses to plan_after then
    std::string plan_after;
    std::int64_t created_at = 0;
    std::vector<HeldReservation> reservations;  // open, in the order they were made

    bool exists() const { return seq > 0; }
    const HeldReservation* find_reservation(std::string_view id) const;
    // The earliest instant at which a lazy change may be due (period end,
    // plan end, the first open reservation's expiry).
    std::int64_t attention_at() const;
};

bool operator==(const Account&, const Account&);

// The account of a user never seen: opened by the first command.
Account unopened_account(std::string_view user_id);

// One token_usage row: one charge.
struct UsageCharge {
    std::string event_id;
    std::string user_id;
    std::int64_t period_start = 0;
    Charge charge;  // operation, model, multiplier, counts
    std::string reservation_id;
    std::string idempotency_key;
    std::string catalog_version;
    std::int64_t created_at = 0;
    bool late = false;  // a commit after the reservation's expiry
};

bool operator==(const UsageCharge&, const UsageCharge&);

enum class ChangeKind : std::uint8_t {
    period_open = 1,
    plan_change = 2,
    expire = 3,
    authorize = 4,
    commit = 5,
    release = 6,
    record = 7,
    credit = 8,  // purchased tokens added (a credit pack) or taken back (its refund)
};

std::string_view to_string(ChangeKind kind);
std::optional<ChangeKind> change_kind_from_string(std::string_view text);

// The final balance of a period that a rollover closed: what it used, and
// nothing reserved (open reservations move to the next period).
struct ClosedPeriod {
    std::string plan;
    Period period;
    Balance balance;
};

// A credit change: tokens added to (positive) or taken back from (negative)
// the account's credits, once per id (the order it is for).
struct CreditChange {
    std::string id;      // e.g. "order:123" for a pack, "refund:order:123:5000" for its refund
    std::int64_t tokens = 0;
    std::string reason;  // "pack" or "refund"
};

// A plan change's new terms.
struct PlanTerms {
    std::string plan;
    std::optional<std::int64_t> ends_at;
    std::string after;
    int anchor_day = 1;
    Period period;  // the current period after the change (an anchor change moves its end)
};

// One ledger change: what the journal appends. Its receipt's claims are
// fixed here; the shell signs them.
struct LedgerChange {
    ChangeKind kind = ChangeKind::period_open;
    ReceiptClaims claims;
    // authorize: the new reservation; commit, release: the one settled (in
    // its settled state); expire: every reservation expired.
    std::vector<HeldReservation> reservations;
    std::optional<UsageCharge> charge;     // commit, record
    std::optional<ClosedPeriod> closed;    // period_open after a rollover
    std::optional<PlanTerms> plan_terms;   // plan_change; period_open of a new account
    std::optional<CreditChange> credit;    // credit
};

// Commands. Ids are made by the shell (the core draws no random numbers).
struct AuthorizeCommand {
    std::string user_id;
    std::string reservation_id;
    std::string operation;
    std::string model;
    std::int64_t input_tokens = 0;
    std::int64_t max_output_tokens = 0;
    // When not 0, max_output_tokens is an upper bound counted in steps of
    // this many tokens (one per choice of a completion): a user who cannot
    // afford it all is reserved the most whole steps whose charge fits, and
    // is refused only when not even one does. The decision's estimate says
    // what was reserved. 0: all of max_output_tokens or a refusal.
    std::int64_t output_step = 0;
};

struct CommitCommand {
    std::string reservation_id;
    std::optional<std::int64_t> input_tokens;
    std::optional<std::int64_t> output_tokens;
    std::string event_id;
    std::string idempotency_key;
    // Parts of input and output that the model's class weights price (0 when
    // absent). Last, so the commands written before token classes still read.
    std::optional<std::int64_t> cached_input_tokens = std::nullopt;
    std::optional<std::int64_t> reasoning_tokens = std::nullopt;
};

struct ReleaseCommand {
    std::string reservation_id;
};

struct RecordCommand {
    std::string user_id;
    std::string operation;
    std::string model;
    std::int64_t input_tokens = 0;
    std::int64_t output_tokens = 0;
    std::string event_id;
    std::string idempotency_key;
    std::int64_t cached_input_tokens = 0;  // a part of input_tokens
    std::int64_t reasoning_tokens = 0;     // a part of output_tokens
};

struct PlanChangeCommand {
    std::string user_id;
    std::string plan;
    std::optional<std::int64_t> ends_at;
    std::string after;
    std::optional<int> anchor_day;
};

// Adds (tokens > 0) or takes back (tokens < 0) purchased tokens. Taking
// back more than is left leaves a debt (negative credits): used stays used.
struct CreditCommand {
    std::string user_id;
    CreditChange credit;
};

enum class Verdict : std::uint8_t {
    done = 0,     // the command applied
    refused = 1,  // a domain refusal (limit, unknown or settled reservation); lazy changes stand
    invalid = 2,  // bad input: nothing changed at all
};

struct Decision {
    Verdict verdict = Verdict::done;
    Refusal refusal;  // when refused
    Error error;      // when invalid
    // What to append, in order: lazy changes first, then the command's own.
    std::vector<LedgerChange> changes;
    // authorize: the price of the estimate.
    std::optional<Charge> estimate;
    // authorize: the reservation made; commit, release: the one settled.
    std::optional<HeldReservation> reservation;
    // commit, record: the charge.
    std::optional<UsageCharge> charge;
};

// Brings the account up to date at `now` (open, lapse, roll over, expire);
// the changes it makes. A read that must show a current balance runs this.
Decision open_account(Account& account, const LedgerRules& rules, std::int64_t now);

Decision authorize(Account& account, const AuthorizeCommand& command, const LedgerRules& rules, std::int64_t now);

// `settled` is what the shell knows of a reservation that is no longer open
// in the account (committed, released, or expired, from the journal); null
// when it knows none. The account is the reservation's user's.
Decision commit(Account& account, const CommitCommand& command, const HeldReservation* settled,
                const LedgerRules& rules, std::int64_t now);
Decision release(Account& account, const ReleaseCommand& command, const HeldReservation* settled,
                 const LedgerRules& rules, std::int64_t now);

Decision record(Account& account, const RecordCommand& command, const LedgerRules& rules, std::int64_t now);

// A plan change inside the current period: limits change at once, usage and
// reservations stay; `ends_at`/`after` describe a later lapse; a new anchor
// day moves the current period's end (it keeps its start).
Decision change_plan(Account& account, const PlanChangeCommand& command, const LedgerRules& rules, std::int64_t now);

Decision credit(Account& account, const CreditCommand& command, const LedgerRules& rules, std::int64_t now);

// The idempotency decision (DESIGN.md §5): the same key and body returns the
// first answer, the same key with another body is refused as reused, and a
// repeat while the first is still being decided is refused as in flight.
enum class IdempotencyVerdict : std::uint8_t {
    execute = 0,     // a new key: decide the command
    replay = 1,      // return the stored answer, byte for byte
    key_reused = 2,  // 422 idempotency_key_reused
    in_flight = 3,   // 409 idempotency_in_flight
};

// `stored_request_hash`: the hash stored with the key's first answer, null
// when there is none; `in_flight`: a request with the key is being decided.
IdempotencyVerdict decide_idempotency(bool in_flight, const std::string* stored_request_hash,
                                      std::string_view request_hash);

// The chain digest of a receipt with these claims (its `prev` successor),
// computed from the claims alone: the payload segment is fixed by them, so a
// change's successor can be decided before the change is signed.
std::string receipt_claims_digest(const ReceiptClaims& claims);

}  // namespace tokenmeter
