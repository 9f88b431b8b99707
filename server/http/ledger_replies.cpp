#include "http/ledger_replies.hpp"

#include <nlohmann/json.hpp>

#include "ledger/views.hpp"
#include "tokenmeter/period.hpp"

namespace tokenmeter::http {

namespace {

using Json = nlohmann::json;
using ledger::Command;
using ledger::LedgerReply;
using ledger::ReplyKind;

std::string message_of(RefusalCode code) {
    switch (code) {
        case RefusalCode::limit_exceeded: return "not enough tokens left in this period";
        case RefusalCode::avatar_limit_exceeded: return "no avatars left in this period";
        case RefusalCode::reservation_unknown: return "no such reservation";
        case RefusalCode::reservation_settled: return "the reservation was already committed or released";
        case RefusalCode::reservation_expired:
            return "the reservation expired, and its grace period for a late commit has passed";
        case RefusalCode::reservation_not_due: return "the reservation is not due to expire";
        case RefusalCode::count_overflow: return "the charge would overflow the ledger's counters";
    }
    return "refused";
}

Json usage_of(const LedgerReply& reply) { return ledger::snapshot_object(reply.claims, reply.receipt); }

RenderedReply done(const LedgerReply& reply) {
    switch (reply.command) {
        case Command::open:
        case Command::plan_change: return {200, usage_of(reply).dump()};
        case Command::authorize: {
            const Charge& estimate = *reply.estimate;
            const Json body = {{"reservation_id", reply.reservation->id},
                               {"charged_tokens", estimate.charged_tokens},
                               {"raw_tokens", estimate.raw_tokens},
                               {"avatars", estimate.avatars},
                               {"multiplier", to_string(estimate.multiplier)},
                               {"exact", reply.exact},
                               {"expires_at", format_rfc3339(reply.reservation->reservation.expires_at_seconds)},
                               {"usage", usage_of(reply)}};
            return {200, body.dump()};
        }
        case Command::commit:
        case Command::record:
            return {200, Json{{"event", ledger::event_object(*reply.charge)}, {"usage", usage_of(reply)}}.dump()};
        case Command::release: return {200, Json{{"usage", usage_of(reply)}}.dump()};
    }
    return {500, ledger::error_body("internal_error", "the request failed")};
}

RenderedReply refused(const LedgerReply& reply, const ReplyStyle& style) {
    const RefusalCode code = reply.refusal.code;
    // An unknown reservation names no account: there is no balance to show.
    if (code == RefusalCode::reservation_unknown) return {404, ledger::error_body(to_string(code), message_of(code))};
    Json error = {{"code", to_string(code)}, {"message", message_of(code)}};
    if (code == RefusalCode::limit_exceeded || code == RefusalCode::avatar_limit_exceeded) {
        error["needed"] = reply.refusal.needed;
        error["remaining"] = reply.refusal.remaining;
        error["plan"] = reply.claims.plan;
        error["upgrade_url"] = style.upgrade_url;
    }
    return {status_of(code), Json{{"error", std::move(error)}, {"usage", usage_of(reply)}}.dump()};
}

}  // namespace

int status_of(RefusalCode code) {
    switch (code) {
        case RefusalCode::limit_exceeded:
        case RefusalCode::avatar_limit_exceeded: return 402;
        case RefusalCode::reservation_unknown: return 404;
        case RefusalCode::reservation_settled: return 409;
        case RefusalCode::reservation_expired: return 410;
        case RefusalCode::reservation_not_due:
        case RefusalCode::count_overflow: return 400;
    }
    return 400;
}

RenderedReply render_reply(const LedgerReply& reply, const ReplyStyle& style) {
    switch (reply.kind) {
        case ReplyKind::done: return done(reply);
        case ReplyKind::refused: return refused(reply, style);
        case ReplyKind::invalid: return {400, ledger::error_body(reply.error.code, reply.error.message)};
        case ReplyKind::stored: return {reply.status, reply.body};
        case ReplyKind::key_reused:
            return {422, ledger::error_body("idempotency_key_reused", "this Idempotency-Key was used with a different request")};
        case ReplyKind::in_flight:
            return {409, ledger::error_body("idempotency_in_flight",
                                            "a request with this Idempotency-Key is still being processed")};
        case ReplyKind::unavailable:
            return {503, ledger::error_body("storage_unavailable", "the ledger's storage is unavailable; nothing was changed")};
        case ReplyKind::internal_error:
            return {500, ledger::error_body("internal_error", "the request failed; nothing was changed")};
    }
    return {500, ledger::error_body("internal_error", "the request failed")};
}

std::string render_snapshot(const LedgerReply& reply) { return usage_of(reply).dump(); }

}  // namespace tokenmeter::http
