#include "ledger/operations.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "ledger/ids.hpp"
#include "ledger/views.hpp"
#include "tokenmeter/catalog.hpp"
#include "tokenmeter/ledger.hpp"
#include "tokenmeter/period.hpp"
#include "tokenmeter/pricing.hpp"

namespace tokenmeter::ledger {

namespace {

using Json = nlohmann::json;

// An answer to bad input: leaves no trace, so nothing is remembered.
Outcome bad_input(const Error& error) { return Outcome{400, error_body(error.code, error.message), false, {}}; }

Outcome with_snapshot(AccountChanges& changes, int status, Json body) {
    return Outcome{status, body.dump(), true, changes.published()};
}

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

std::string message_of(RefusalCode code) {
    switch (code) {
        case RefusalCode::limit_exceeded: return "not enough tokens left in this period";
        case RefusalCode::avatar_limit_exceeded: return "no avatars left in this period";
        case RefusalCode::reservation_unknown: return "no such reservation";
        case RefusalCode::reservation_settled: return "the reservation was already committed or released";
        case RefusalCode::reservation_expired: return "the reservation expired before it was settled";
        case RefusalCode::reservation_not_due: return "the reservation is not due to expire";
        case RefusalCode::count_overflow: return "the charge would overflow the ledger's counters";
    }
    return "refused";
}

// A refusal as the API answers it; the snapshot shows what is left.
Outcome refused(AccountChanges& changes, const storage::Account& account, const Refusal& refusal) {
    Json error = {{"code", to_string(refusal.code)}, {"message", message_of(refusal.code)}};
    if (refusal.code == RefusalCode::limit_exceeded || refusal.code == RefusalCode::avatar_limit_exceeded) {
        error["needed"] = refusal.needed;
        error["remaining"] = refusal.remaining;
        error["plan"] = account.plan;
        error["upgrade_url"] = changes.config().upgrade_url;
    }
    Json body = {{"error", std::move(error)}, {"usage", changes.usage(account)}};
    const bool input_error = refusal.code == RefusalCode::count_overflow;
    return Outcome{status_of(refusal.code), body.dump(), !input_error, input_error ? decltype(Outcome::published){} : changes.published()};
}

// The answer to a charge: the usage row and the snapshot after it.
Outcome charged(AccountChanges& changes, const storage::UsageEvent& event, const storage::Account& account) {
    Outcome outcome = with_snapshot(changes, 200,
                                    {{"event", event_object(event)}, {"usage", changes.usage(account)}});
    outcome.metering.model = event.model;
    outcome.metering.operation = std::string(to_string(event.operation));
    outcome.metering.charged_tokens = event.charged_tokens;
    return outcome;
}

storage::UsageEvent usage_event(const storage::Account& account, const Charge& charge, const Catalog& catalog,
                                std::int64_t now) {
    storage::UsageEvent event;
    event.event_id = new_id("evt_");
    event.user_id = account.user_id;
    event.period_start = account.period.start_seconds;
    event.operation = charge.operation;
    event.model = charge.model;
    event.input_tokens = charge.input_tokens;
    event.output_tokens = charge.output_tokens;
    event.raw_tokens = charge.raw_tokens;
    event.multiplier = charge.multiplier;
    event.charged_tokens = charge.charged_tokens;
    event.avatars = charge.avatars;
    event.catalog_version = catalog.version;
    event.created_at = now;
    return event;
}

// The actual charge of a reservation being committed, at the terms it was
// authorized under (its multiplier and catalog version).
Result<Charge, Error> actual_charge(const storage::StoredReservation& stored, const CommitRequest& request) {
    Charge charge;
    charge.operation = stored.operation;
    charge.model = stored.model;
    charge.multiplier = stored.multiplier;
    if (stored.operation == OperationKind::avatar) {
        if (request.input_tokens.value_or(0) != 0 || request.output_tokens.value_or(0) != 0) {
            return unexpected(make_error("tokens_not_allowed", "an avatar commit takes no token counts"));
        }
        charge.raw_tokens = stored.reservation.amount.tokens;
        charge.charged_tokens = stored.reservation.amount.tokens;
        charge.avatars = stored.reservation.amount.avatars;
        return charge;
    }
    if (!request.input_tokens) return unexpected(make_error("missing_field", "missing field input_tokens"));
    if (stored.operation == OperationKind::chat && !request.output_tokens) {
        return unexpected(make_error("missing_field", "missing field output_tokens"));
    }
    if (stored.operation == OperationKind::embedding && request.output_tokens.value_or(0) != 0) {
        return unexpected(make_error("output_not_allowed", "an embedding has no output tokens"));
    }
    charge.input_tokens = *request.input_tokens;
    charge.output_tokens = request.output_tokens.value_or(0);
    charge.raw_tokens = charge.input_tokens + charge.output_tokens;  // each <= tokens_per_request_max
    auto charged = apply_multiplier(charge.raw_tokens, stored.multiplier);
    if (!charged) return unexpected(charged.error());
    charge.charged_tokens = *charged;
    return charge;
}

}  // namespace

Outcome authorize(AccountChanges& changes, const AuthorizeRequest& request) {
    const Catalog& catalog = *changes.config().catalog;
    auto charge = price(catalog, request.operation, request.model, request.input_tokens, request.max_output_tokens);
    if (!charge) return bad_input(charge.error());
    storage::Account& account = changes.open(request.user_id);
    auto authorized = tokenmeter::authorize(account.balance, Amount{charge->charged_tokens, charge->avatars},
                                            changes.now(), changes.config().reservation_ttl_seconds);
    if (!authorized) {
        Outcome outcome = refused(changes, account, authorized.error());
        outcome.metering.authorization = -1;
        return outcome;
    }

    storage::StoredReservation stored;
    stored.id = new_id("rsv_");
    stored.user_id = account.user_id;
    stored.operation = charge->operation;
    stored.model = charge->model;
    stored.multiplier = charge->multiplier;
    stored.catalog_version = catalog.version;
    stored.reservation = authorized->reservation;
    stored.created_at = changes.now();
    changes.transaction().insert_reservation(stored);
    account.balance = authorized->balance;
    account.attention_at = std::min(account.attention_at, stored.reservation.expires_at_seconds);
    changes.commit_change(account, "authorize");
    Outcome outcome = with_snapshot(changes, 200,
                         {{"reservation_id", stored.id},
                          {"charged_tokens", charge->charged_tokens},
                          {"raw_tokens", charge->raw_tokens},
                          {"avatars", charge->avatars},
                          {"multiplier", to_string(charge->multiplier)},
                          {"exact", request.exact},
                          {"expires_at", format_rfc3339(stored.reservation.expires_at_seconds)},
                          {"usage", changes.usage(account)}});
    outcome.metering.authorization = 1;
    return outcome;
}

Outcome commit(AccountChanges& changes, const CommitRequest& request) {
    auto found = changes.transaction().load_reservation(request.reservation_id);
    if (!found) {
        return Outcome{404, error_body("reservation_unknown", "no such reservation"), true, {}};
    }
    storage::Account& account = changes.open(found->user_id);
    // Opening may have expired this very reservation: read it again.
    storage::StoredReservation stored = *changes.transaction().load_reservation(request.reservation_id);
    auto charge = actual_charge(stored, request);
    if (!charge) return bad_input(charge.error());
    // Opening the account expired the reservation if it was due; within the
    // grace it is still charged, marked late.
    auto settled = tokenmeter::commit(account.balance, &stored.reservation,
                                      Amount{charge->charged_tokens, charge->avatars}, changes.now(),
                                      changes.config().late_commit_grace_seconds);
    if (!settled) return refused(changes, account, settled.error());
    stored.reservation = settled->reservation;
    stored.settled_at = changes.now();
    changes.transaction().update_reservation(stored);
    storage::UsageEvent event = usage_event(account, *charge, *changes.config().catalog, changes.now());
    event.catalog_version = stored.catalog_version;
    event.reservation_id = stored.id;
    event.idempotency_key = request.idempotency_key;
    event.late = settled->late;
    changes.transaction().insert_usage(event);
    account.balance = settled->balance;
    changes.commit_change(account, "commit");
    return charged(changes, event, account);
}

Outcome release(AccountChanges& changes, const ReleaseRequest& request) {
    auto found = changes.transaction().load_reservation(request.reservation_id);
    if (!found) return Outcome{404, error_body("reservation_unknown", "no such reservation"), true, {}};
    storage::Account& account = changes.open(found->user_id);
    storage::StoredReservation stored = *changes.transaction().load_reservation(request.reservation_id);
    auto settled = tokenmeter::release(account.balance, &stored.reservation, changes.now());
    if (!settled) return refused(changes, account, settled.error());
    stored.reservation = settled->reservation;
    stored.settled_at = changes.now();
    changes.transaction().update_reservation(stored);
    account.balance = settled->balance;
    changes.commit_change(account, "release");
    return with_snapshot(changes, 200, {{"usage", changes.usage(account)}});
}

Outcome record(AccountChanges& changes, const RecordRequest& request) {
    const Catalog& catalog = *changes.config().catalog;
    auto charge = price(catalog, request.operation, request.model, request.input_tokens, request.output_tokens);
    if (!charge) return bad_input(charge.error());
    storage::Account& account = changes.open(request.user_id);
    auto recorded = tokenmeter::record(account.balance, Amount{charge->charged_tokens, charge->avatars});
    if (!recorded) return refused(changes, account, recorded.error());
    storage::UsageEvent event = usage_event(account, *charge, catalog, changes.now());
    event.idempotency_key = request.idempotency_key;
    changes.transaction().insert_usage(event);
    account.balance = *recorded;
    changes.commit_change(account, "record");
    return charged(changes, event, account);
}

Outcome open_snapshot(AccountChanges& changes, const std::string& user_id) {
    storage::Account& account = changes.open(user_id);
    return Outcome{200, changes.snapshot(account), false, changes.published()};
}

}  // namespace tokenmeter::ledger
