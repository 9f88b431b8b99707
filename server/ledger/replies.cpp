#include "ledger/replies.hpp"

#include "storage/journal_codec.hpp"

namespace tokenmeter::ledger {

LedgerReply reply_of_journal_row(const storage::JournalRow& row) {
    storage::journal_codec::DecodedChange decoded = storage::journal_codec::decode_change(row);
    LedgerReply reply;
    reply.kind = ReplyKind::done;
    reply.replayed = true;
    switch (decoded.kind) {
        case ChangeKind::authorize:
            reply.command = Command::authorize;
            reply.estimate = decoded.extras.estimate;
            reply.exact = decoded.extras.exact;
            break;
        case ChangeKind::commit: reply.command = Command::commit; break;
        case ChangeKind::release: reply.command = Command::release; break;
        case ChangeKind::record: reply.command = Command::record; break;
        case ChangeKind::plan_change: reply.command = Command::plan_change; break;
        case ChangeKind::period_open:
        case ChangeKind::expire:
        case ChangeKind::credit: reply.command = Command::open; break;  // no request key names these
    }
    if (!decoded.reservations.empty()) reply.reservation = decoded.reservations.front();
    reply.charge = std::move(decoded.charge);
    auto claims = decode_receipt_claims(row.receipt);
    if (!claims) throw storage::StorageError("a journal receipt does not decode: " + claims.error().message);
    reply.claims = std::move(claims).value();
    reply.receipt = row.receipt;
    return reply;
}

}  // namespace tokenmeter::ledger
