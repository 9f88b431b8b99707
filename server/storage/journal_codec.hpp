// How ledger state is written into the tables and read back: a change as a
// journal row's JSON, the open reservations of usage_limits, and an account
// from its current row and newest receipt. Stored values the core would
// refuse mean the database was changed behind the server's back: a
// StorageError (503), never a guess.
//
// The change JSON holds what an answer to the change needs (so a replay of
// an idempotency key renders the same bytes from it and the receipt) and
// what recovery needs (a reservation's terms), nothing the receipt holds.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "storage/store.hpp"
#include "tokenmeter/state_machine.hpp"

namespace tokenmeter::storage::journal_codec {

// What a command added to its change beyond the change itself: authorize's
// price of the estimate and whether the input count was exact.
struct ChangeExtras {
    std::optional<Charge> estimate;
    bool exact = true;
};

// A journal row's parts, decoded.
struct DecodedChange {
    ChangeKind kind = ChangeKind::period_open;
    std::vector<HeldReservation> reservations;
    std::optional<UsageCharge> charge;
    std::optional<ClosedPeriod> closed;
    std::optional<PlanTerms> plan_terms;
    std::optional<CreditChange> credit;
    ChangeExtras extras;
};

std::string change_json(const LedgerChange& change, const ChangeExtras& extras);
DecodedChange decode_change(const JournalRow& row);

// The one row the upgrade keeps for a reservation made before the journal.
JournalRow legacy_reservation_row(const HeldReservation& held);
// A reservation from its journal rows (read_reservation_rows): its terms and
// how it ended. `still_open` says whether the account holds it open (an
// authorize without a commit or release that the account does not hold has
// expired: expiry is the one other way a reservation ends).
std::optional<HeldReservation> reservation_from_rows(const std::vector<JournalRow>& rows, bool still_open);

std::string reservations_json(const std::vector<HeldReservation>& reservations);
std::vector<HeldReservation> reservations_from(std::string_view text);

UsageEvent usage_event_of(const UsageCharge& charge);

// The current usage_limits row of an account, and a closed period's final row.
AccountRow account_row(const Account& account);
AccountRow closed_row(const Account& account, const ClosedPeriod& closed, std::int64_t seq);
// The account an AccountRow and its newest receipt describe.
Account account_from(const StoredAccount& stored);

}  // namespace tokenmeter::storage::journal_codec
