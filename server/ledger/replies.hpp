// What the ledger answers, as typed values: the decision of the state
// machine (core/state_machine.hpp) with the receipt that proves the balance
// after it. Only server/http turns a reply into a status code and JSON
// (http/ledger_replies.hpp), so a replay of an idempotency key, rebuilt from
// its journal row, renders the very same bytes as the first answer.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "storage/store.hpp"
#include "tokenmeter/error.hpp"
#include "tokenmeter/receipt.hpp"
#include "tokenmeter/state_machine.hpp"

namespace tokenmeter::ledger {

// The caller's idempotency scope: a key is the caller's own.
struct IdempotencyScope {
    std::string caller;
    std::string key;
    std::string request_hash;
};

enum class ReplyKind : std::uint8_t {
    done = 0,            // the command applied (or a read: the snapshot)
    refused = 1,         // a domain refusal, with the account's snapshot
    invalid = 2,         // bad input; nothing changed
    stored = 3,          // the bytes of an earlier answer to this key (a refusal's replay)
    key_reused = 4,      // 422 idempotency_key_reused
    in_flight = 5,       // 409 idempotency_in_flight
    unavailable = 6,     // 503 storage_unavailable: nothing was changed
    internal_error = 7,  // 500: nothing was changed
};

// Which command a reply answers.
enum class Command : std::uint8_t { open = 0, authorize = 1, commit = 2, release = 3, record = 4, plan_change = 5 };

struct LedgerReply {
    ReplyKind kind = ReplyKind::done;
    Command command = Command::open;
    Refusal refusal;  // refused
    Error error;      // invalid
    // done: what the command made or settled.
    std::optional<HeldReservation> reservation;
    std::optional<Charge> estimate;  // authorize
    bool exact = true;               // authorize: whether the input count was exact
    std::optional<UsageCharge> charge;
    // The snapshot after the command (done, refused): the account's newest
    // receipt and its claims.
    std::string receipt;
    ReceiptClaims claims;
    // stored: the earlier answer's status and body.
    int status = 0;
    std::string body;
    // Whether this answer is a replay of an earlier one (nothing metered).
    bool replayed = false;

    static LedgerReply of_kind(ReplyKind kind) {
        LedgerReply reply;
        reply.kind = kind;
        return reply;
    }
};

// The newest receipt of a user a batch changed, for live streams once it is
// durable.
struct PublishedReceipt {
    std::string user_id;
    ReceiptClaims claims;
    std::string receipt;
};

using PublishFn = std::function<void(const std::vector<PublishedReceipt>&)>;

// Renders a reply as the API answers it (status, body): set by server/http,
// used by the writer to store the bytes of refusals for their keys.
using RenderFn = std::function<std::pair<int, std::string>(const LedgerReply&)>;

// The answer a change's journal row holds, for a replay of its key: the same
// reply the first request got, so it renders the same bytes.
LedgerReply reply_of_journal_row(const storage::JournalRow& row);

}  // namespace tokenmeter::ledger
