#include "tokenmeter/state_machine.hpp"

#include "tokenmeter/json_input.hpp"

#include <algorithm>

#include "tokenmeter/assert.hpp"
#include "tokenmeter/base64url.hpp"
#include "tokenmeter/limits.hpp"

namespace tokenmeter {

namespace {

const Plan& plan_named(const LedgerRules& rules, std::string_view id, std::int64_t now) {
    const Catalog& catalog = rules.catalog_at(now);
    const Plan* plan = catalog.find_plan(id);
    if (plan == nullptr) plan = catalog.find_plan(rules.default_plan);
    TM_ASSERT(plan != nullptr);
    return *plan;
}

Decision invalid(Error error) {
    Decision decision;
    decision.verdict = Verdict::invalid;
    decision.error = std::move(error);
    return decision;
}

void refuse(Decision& decision, const Refusal& refusal) {
    decision.verdict = Verdict::refused;
    decision.refusal = refusal;
}

// Appends a change whose receipt shows the account as it is now: the next
// seq, chained to the previous receipt. Called after the change is applied.
LedgerChange& append(Decision& decision, Account& account, ChangeKind kind, std::int64_t now,
                     std::string catalog_version = {}) {
    assert_balance(account.balance);
    TM_ASSERT(account.period.start_seconds < account.period.end_seconds);
    ReceiptClaims claims;
    claims.sub = account.user_id;
    claims.iat = now;
    claims.seq = account.seq + 1;
    claims.prev = account.head_digest;
    claims.plan = account.plan;
    claims.period_start = account.period.start_seconds;
    claims.period_end = account.period.end_seconds;
    claims.balance = account.balance;
    claims.event = std::string(to_string(kind));
    claims.catalog_version = std::move(catalog_version);
    // I5: one unbroken chain. The first receipt has no prev; every later one has.
    TM_ASSERT((claims.seq == 1) == claims.prev.empty());
    account.seq = claims.seq;
    account.head_digest = receipt_claims_digest(claims);
    account.head = claims;
    LedgerChange change;
    change.kind = kind;
    change.claims = std::move(claims);
    decision.changes.push_back(std::move(change));
    return decision.changes.back();
}

PlanTerms terms_of(const Account& account) {
    return PlanTerms{account.plan, account.plan_ends_at, account.plan_after, account.anchor_day, account.period};
}

bool create(Decision& decision, Account& account, const LedgerRules& rules, std::int64_t now) {
    auto anchor_instant = period_containing(now, 1);  // checks the instant is in range
    if (!anchor_instant) {
        decision = invalid(anchor_instant.error());
        return false;
    }
    const Plan& plan = plan_named(rules, rules.default_plan, now);
    account.plan = plan.id;
    // A free period is anchored on the day of first use.
    account.anchor_day = static_cast<int>(civil_date_of(now).day);
    account.period = period_containing(now, account.anchor_day).value();
    account.balance = open_balance(plan);
    account.created_at = now;
    append(decision, account, ChangeKind::period_open, now).plan_terms = terms_of(account);
    return true;
}

void lapse_plan(Decision& decision, Account& account, const LedgerRules& rules, std::int64_t now) {
    if (!account.plan_ends_at || now < *account.plan_ends_at) return;
    const Plan& next = plan_named(rules, account.plan_after.empty() ? rules.default_plan : account.plan_after,
                                  *account.plan_ends_at);
    account.plan_ends_at.reset();
    account.plan_after.clear();
    account.plan = next.id;
    account.balance = tokenmeter::change_plan(account.balance, next);
    append(decision, account, ChangeKind::plan_change, now).plan_terms = terms_of(account);
}

bool roll_over(Decision& decision, Account& account, const LedgerRules& rules, std::int64_t now) {
    if (now < account.period.end_seconds) return true;
    auto next = period_containing(now, account.anchor_day);
    if (!next) {
        decision = invalid(next.error());
        return false;
    }
    // The closed period keeps what it used; what was reserved moves on with
    // the open reservations, which are charged in the period they settle in.
    ClosedPeriod closed{account.plan, account.period, account.balance};
    closed.balance.tokens_reserved = 0;
    closed.balance.avatars_reserved = 0;
    account.period = *next;
    // The new period's limit is the one in force when it starts, however
    // late a command brings the account up to date.
    account.balance = tokenmeter::roll_over(account.balance, plan_named(rules, account.plan, next->start_seconds));
    append(decision, account, ChangeKind::period_open, now).closed = closed;
    return true;
}

void expire_due(Decision& decision, Account& account, std::int64_t now) {
    std::vector<HeldReservation> expired;
    auto due = [now](const HeldReservation& held) { return now >= held.reservation.expires_at_seconds; };
    for (HeldReservation& held : account.reservations) {
        if (!due(held)) continue;
        auto settled = tokenmeter::expire(account.balance, &held.reservation, now);
        TM_ASSERT(settled.has_value());
        account.balance = settled->balance;
        held.reservation = settled->reservation;
        held.settled_at = now;
        expired.push_back(held);
    }
    if (expired.empty()) return;
    account.reservations.erase(std::remove_if(account.reservations.begin(), account.reservations.end(), due),
                               account.reservations.end());
    append(decision, account, ChangeKind::expire, now).reservations = std::move(expired);
}

// The lazy changes due at `now`. False when the instant cannot be placed in
// a period (the decision is then invalid and nothing changed).
bool bring_up_to_date(Decision& decision, Account& account, const LedgerRules& rules, std::int64_t now) {
    TM_ASSERT(rules.prices != nullptr);
    if (!account.exists()) return create(decision, account, rules, now);
    if (now < account.attention_at()) return true;
    const Account before = account;
    // A plan that ends inside the period lapses in it; one that ends with
    // the period (a downgrade waiting for the next period, a cancellation at
    // the renewal date) lapses after the period closed on its own terms, so
    // the closed period keeps the limit it was used under.
    const bool lapses_within = account.plan_ends_at && *account.plan_ends_at < account.period.end_seconds;
    if (lapses_within) lapse_plan(decision, account, rules, now);
    if (!roll_over(decision, account, rules, now)) {
        account = before;
        return false;
    }
    if (!lapses_within) lapse_plan(decision, account, rules, now);
    expire_due(decision, account, now);
    return true;
}

// The counts of a token commit, checked against the reservation's operation.
Result<TokenCounts, Error> commit_counts(const HeldReservation& held, const CommitCommand& command) {
    if (!command.input_tokens) return unexpected(make_error("missing_field", "missing field input_tokens"));
    if (held.operation == OperationKind::chat && !command.output_tokens) {
        return unexpected(make_error("missing_field", "missing field output_tokens"));
    }
    if (held.operation == OperationKind::embedding && command.output_tokens.value_or(0) != 0) {
        return unexpected(make_error("output_not_allowed", "an embedding has no output tokens"));
    }
    const TokenCounts counts{*command.input_tokens, command.cached_input_tokens.value_or(0),
                             command.output_tokens.value_or(0), command.reasoning_tokens.value_or(0)};
    if (counts.input < 0 || counts.output < 0 || counts.input > limits::count_max - counts.output) {
        return unexpected(make_error("invalid_value", "token counts must be non-negative and bounded"));
    }
    if (auto error = check_counts(counts)) return unexpected(*error);
    return counts;
}

// The actual charge of a reservation, at the terms it was authorized under.
Result<Charge, Error> actual_charge(const HeldReservation& held, const CommitCommand& command) {
    Charge charge;
    charge.operation = held.operation;
    charge.model = held.model;
    charge.multiplier = held.multiplier;
    if (held.operation == OperationKind::avatar) {
        if (command.input_tokens.value_or(0) != 0 || command.output_tokens.value_or(0) != 0 ||
            command.cached_input_tokens.value_or(0) != 0 || command.reasoning_tokens.value_or(0) != 0) {
            return unexpected(make_error("tokens_not_allowed", "an avatar commit takes no token counts"));
        }
        charge.raw_tokens = held.reservation.amount.tokens;
        charge.charged_tokens = held.reservation.amount.tokens;
        charge.avatars = held.reservation.amount.avatars;
        return charge;
    }
    auto counts = commit_counts(held, command);
    if (!counts) return unexpected(counts.error());
    charge.input_tokens = counts->input;
    charge.output_tokens = counts->output;
    charge.cached_input_tokens = counts->cached_input;
    charge.reasoning_tokens = counts->reasoning;
    charge.raw_tokens = counts->input + counts->output;
    auto charged = weighted_charge(*counts, held.weights, held.multiplier);
    if (!charged) return unexpected(charged.error());
    charge.charged_tokens = *charged;
    return charge;
}

// The reservation as it stands after the lazy changes: still open in the
// account, expired by them just now, or as the shell knew it settled.
std::optional<HeldReservation> current_reservation(const Account& account, const Decision& decision,
                                                   std::string_view id, const HeldReservation* settled) {
    if (const HeldReservation* open = account.find_reservation(id)) return *open;
    for (const LedgerChange& change : decision.changes) {
        for (const HeldReservation& held : change.reservations) {
            if (held.id == id) return held;
        }
    }
    if (settled != nullptr) return *settled;
    return std::nullopt;
}

void remove_reservation(Account& account, std::string_view id) {
    account.reservations.erase(std::remove_if(account.reservations.begin(), account.reservations.end(),
                                              [id](const HeldReservation& held) { return held.id == id; }),
                               account.reservations.end());
}

UsageCharge usage_charge(const Account& account, const Charge& charge, std::string event_id,
                         std::string idempotency_key, std::string catalog_version, std::int64_t now) {
    UsageCharge usage;
    usage.event_id = std::move(event_id);
    usage.user_id = account.user_id;
    usage.period_start = account.period.start_seconds;
    usage.charge = charge;
    usage.idempotency_key = std::move(idempotency_key);
    usage.catalog_version = std::move(catalog_version);
    usage.created_at = now;
    return usage;
}

}  // namespace

bool operator==(const HeldReservation& a, const HeldReservation& b) {
    return a.id == b.id && a.user_id == b.user_id && a.operation == b.operation && a.model == b.model &&
           a.multiplier == b.multiplier && a.weights == b.weights && a.catalog_version == b.catalog_version &&
           a.reservation.amount == b.reservation.amount &&
           a.reservation.expires_at_seconds == b.reservation.expires_at_seconds &&
           a.reservation.state == b.reservation.state && a.created_at == b.created_at && a.settled_at == b.settled_at;
}

bool operator==(const Account& a, const Account& b) {
    return a.user_id == b.user_id && a.plan == b.plan && a.anchor_day == b.anchor_day && a.period == b.period &&
           a.balance == b.balance && a.seq == b.seq && a.head == b.head && a.head_digest == b.head_digest &&
           a.plan_ends_at == b.plan_ends_at && a.plan_after == b.plan_after && a.created_at == b.created_at &&
           a.reservations == b.reservations;
}

bool operator==(const UsageCharge& a, const UsageCharge& b) {
    const Charge& x = a.charge;
    const Charge& y = b.charge;
    return a.event_id == b.event_id && a.user_id == b.user_id && a.period_start == b.period_start &&
           x.operation == y.operation && x.model == y.model && x.multiplier == y.multiplier &&
           x.input_tokens == y.input_tokens && x.output_tokens == y.output_tokens &&
           x.cached_input_tokens == y.cached_input_tokens && x.reasoning_tokens == y.reasoning_tokens &&
           x.raw_tokens == y.raw_tokens &&
           x.charged_tokens == y.charged_tokens && x.avatars == y.avatars && a.reservation_id == b.reservation_id &&
           a.idempotency_key == b.idempotency_key && a.catalog_version == b.catalog_version &&
           a.created_at == b.created_at && a.late == b.late;
}

const HeldReservation* Account::find_reservation(std::string_view id) const {
    for (const HeldReservation& held : reservations) {
        if (held.id == id) return &held;
    }
    return nullptr;
}

std::int64_t Account::attention_at() const {
    std::int64_t attention = period.end_seconds;
    if (plan_ends_at) attention = std::min(attention, *plan_ends_at);
    for (const HeldReservation& held : reservations) {
        attention = std::min(attention, held.reservation.expires_at_seconds);
    }
    return attention;
}

Account unopened_account(std::string_view user_id) {
    Account account;
    account.user_id = std::string(user_id);
    return account;
}

std::string_view to_string(ChangeKind kind) {
    switch (kind) {
        case ChangeKind::period_open: return "period_open";
        case ChangeKind::plan_change: return "plan_change";
        case ChangeKind::expire: return "expire";
        case ChangeKind::authorize: return "authorize";
        case ChangeKind::commit: return "commit";
        case ChangeKind::release: return "release";
        case ChangeKind::record: return "record";
        case ChangeKind::credit: return "credit";
    }
    TM_ASSERT(false);
}

std::optional<ChangeKind> change_kind_from_string(std::string_view text) {
    for (ChangeKind kind : {ChangeKind::period_open, ChangeKind::plan_change, ChangeKind::expire, ChangeKind::authorize,
                            ChangeKind::commit, ChangeKind::release, ChangeKind::record, ChangeKind::credit}) {
        if (to_string(kind) == text) return kind;
    }
    return std::nullopt;
}

Decision open_account(Account& account, const LedgerRules& rules, std::int64_t now) {
    Decision decision;
    bring_up_to_date(decision, account, rules, now);
    return decision;
}

// The most output in whole steps, up to the command's maximum, whose charge
// fits in `remaining`; nothing when not even one step does. A charge never
// falls as output grows (every weight and the multiplier are positive), so
// the steps that fit are a prefix and a binary search finds the last.
std::optional<Charge> fitted_output(const Catalog& catalog, const AuthorizeCommand& command, std::int64_t remaining) {
    const std::int64_t step = command.output_step;
    auto charge_of = [&](std::int64_t steps) {
        return price(catalog, command.operation, command.model, command.input_tokens, steps * step);
    };
    std::int64_t fits = 0;  // steps known to fit (0 trivially)
    std::int64_t beyond = command.max_output_tokens / step + 1;  // steps known not to fit
    while (beyond - fits > 1) {
        const std::int64_t middle = fits + (beyond - fits) / 2;
        auto priced = charge_of(middle);
        if (priced && priced->charged_tokens <= remaining) {
            fits = middle;
        } else {
            beyond = middle;
        }
    }
    if (fits == 0) return std::nullopt;
    return charge_of(fits).value();
}

Decision authorize(Account& account, const AuthorizeCommand& command, const LedgerRules& rules, std::int64_t now) {
    TM_ASSERT(!command.reservation_id.empty());
    TM_ASSERT(command.output_step >= 0);
    const Catalog& catalog = rules.catalog_at(now);
    auto priced = price(catalog, command.operation, command.model, command.input_tokens, command.max_output_tokens);
    if (!priced) return invalid(priced.error());
    Decision decision;
    if (!bring_up_to_date(decision, account, rules, now)) return decision;
    Charge estimate = *priced;
    if (command.output_step > 0 && estimate.charged_tokens > account.balance.tokens_remaining()) {
        if (auto fitted = fitted_output(catalog, command, account.balance.tokens_remaining())) estimate = *fitted;
    }
    auto authorized = tokenmeter::authorize(account.balance, Amount{estimate.charged_tokens, estimate.avatars}, now,
                                            rules.reservation_ttl_seconds);
    decision.estimate = estimate;
    if (!authorized) {
        refuse(decision, authorized.error());
        return decision;
    }
    HeldReservation held;
    held.id = command.reservation_id;
    held.user_id = account.user_id;
    held.operation = priced->operation;
    held.model = priced->model;
    held.multiplier = priced->multiplier;
    if (const Model* model = catalog.find_model(priced->model)) held.weights = model->weights;
    held.catalog_version = catalog.version;
    held.reservation = authorized->reservation;
    held.created_at = now;
    account.balance = authorized->balance;
    account.reservations.push_back(held);
    append(decision, account, ChangeKind::authorize, now, held.catalog_version).reservations = {held};
    decision.reservation = std::move(held);
    return decision;
}

Decision commit(Account& account, const CommitCommand& command, const HeldReservation* settled,
                const LedgerRules& rules, std::int64_t now) {
    const HeldReservation* open = account.find_reservation(command.reservation_id);
    if (open == nullptr && settled == nullptr) {
        Decision decision;
        refuse(decision, Refusal{RefusalCode::reservation_unknown, 0, 0});
        return decision;
    }
    const HeldReservation& known = open != nullptr ? *open : *settled;
    TM_ASSERT(known.user_id == account.user_id);
    auto charge = actual_charge(known, command);
    if (!charge) return invalid(charge.error());
    Decision decision;
    if (!bring_up_to_date(decision, account, rules, now)) return decision;
    HeldReservation held = *current_reservation(account, decision, command.reservation_id, settled);
    auto committed = tokenmeter::commit(account.balance, &held.reservation, Amount{charge->charged_tokens, charge->avatars},
                                        now, rules.late_commit_grace_seconds);
    if (!committed) {
        refuse(decision, committed.error());
        return decision;
    }
    account.balance = committed->balance;
    remove_reservation(account, held.id);
    held.reservation = committed->reservation;
    held.settled_at = now;
    UsageCharge usage = usage_charge(account, *charge, command.event_id, command.idempotency_key, held.catalog_version, now);
    usage.reservation_id = held.id;
    usage.late = committed->late;
    LedgerChange& change = append(decision, account, ChangeKind::commit, now, held.catalog_version);
    change.reservations = {held};
    change.charge = usage;
    decision.reservation = std::move(held);
    decision.charge = std::move(usage);
    return decision;
}

Decision release(Account& account, const ReleaseCommand& command, const HeldReservation* settled,
                 const LedgerRules& rules, std::int64_t now) {
    const HeldReservation* open = account.find_reservation(command.reservation_id);
    if (open == nullptr && settled == nullptr) {
        Decision decision;
        refuse(decision, Refusal{RefusalCode::reservation_unknown, 0, 0});
        return decision;
    }
    TM_ASSERT((open != nullptr ? open->user_id : settled->user_id) == account.user_id);
    Decision decision;
    if (!bring_up_to_date(decision, account, rules, now)) return decision;
    HeldReservation held = *current_reservation(account, decision, command.reservation_id, settled);
    auto released = tokenmeter::release(account.balance, &held.reservation, now);
    if (!released) {
        refuse(decision, released.error());
        return decision;
    }
    account.balance = released->balance;
    remove_reservation(account, held.id);
    held.reservation = released->reservation;
    held.settled_at = now;
    append(decision, account, ChangeKind::release, now).reservations = {held};
    decision.reservation = std::move(held);
    return decision;
}

Decision record(Account& account, const RecordCommand& command, const LedgerRules& rules, std::int64_t now) {
    const TokenCounts counts{command.input_tokens, command.cached_input_tokens, command.output_tokens,
                             command.reasoning_tokens};
    const Catalog& catalog = rules.catalog_at(now);
    auto priced = price(catalog, command.operation, command.model, counts);
    if (!priced) return invalid(priced.error());
    Decision decision;
    if (!bring_up_to_date(decision, account, rules, now)) return decision;
    auto recorded = tokenmeter::record(account.balance, Amount{priced->charged_tokens, priced->avatars});
    if (!recorded) {
        refuse(decision, recorded.error());
        return decision;
    }
    account.balance = *recorded;
    UsageCharge usage = usage_charge(account, *priced, command.event_id, command.idempotency_key, catalog.version, now);
    append(decision, account, ChangeKind::record, now, catalog.version).charge = usage;
    decision.charge = std::move(usage);
    return decision;
}

Decision change_plan(Account& account, const PlanChangeCommand& command, const LedgerRules& rules, std::int64_t now) {
    const Plan* plan = rules.catalog_at(now).find_plan(command.plan);
    if (plan == nullptr) return invalid(make_error("unknown_plan", "the catalog has no plan \"" + json_input::utf8_prefix(command.plan, 64) + "\""));
    if (command.anchor_day && (*command.anchor_day < 1 || *command.anchor_day > 31)) {
        return invalid(make_error("invalid_anchor_day", "an anchor day is 1-31"));
    }
    Decision decision;
    if (!bring_up_to_date(decision, account, rules, now)) return decision;
    account.plan = plan->id;
    account.plan_ends_at = command.ends_at;
    account.plan_after = command.after;
    account.balance = tokenmeter::change_plan(account.balance, *plan);
    if (command.anchor_day && *command.anchor_day != account.anchor_day) {
        // The current period now ends where the new anchor's period does; it
        // keeps its start, so the usage so far stays in it.
        account.anchor_day = *command.anchor_day;
        auto next = period_containing(now, *command.anchor_day);
        TM_ASSERT(next.has_value());  // `now` was placed in a period above
        account.period.end_seconds = std::max(next->end_seconds, now + 1);
    }
    append(decision, account, ChangeKind::plan_change, now).plan_terms = terms_of(account);
    return decision;
}

Decision credit(Account& account, const CreditCommand& command, const LedgerRules& rules, std::int64_t now) {
    if (command.credit.id.empty() || command.credit.id.size() > 200) {
        return invalid(make_error("invalid_credit", "a credit change needs an id of 1-200 characters"));
    }
    if (command.credit.tokens == 0 || command.credit.tokens < -limits::count_max ||
        command.credit.tokens > limits::count_max) {
        return invalid(make_error("invalid_credit", "a credit change adds or takes back a non-zero, bounded token count"));
    }
    Decision decision;
    if (!bring_up_to_date(decision, account, rules, now)) return decision;
    auto next = add_credits(account.balance, command.credit.tokens);
    if (!next) {
        refuse(decision, next.error());
        return decision;
    }
    account.balance = *next;
    append(decision, account, ChangeKind::credit, now).credit = command.credit;
    return decision;
}

IdempotencyVerdict decide_idempotency(bool in_flight, const std::string* stored_request_hash,
                                      std::string_view request_hash) {
    if (stored_request_hash != nullptr) {
        return *stored_request_hash == request_hash ? IdempotencyVerdict::replay : IdempotencyVerdict::key_reused;
    }
    return in_flight ? IdempotencyVerdict::in_flight : IdempotencyVerdict::execute;
}

std::string receipt_claims_digest(const ReceiptClaims& claims) {
    return sha256_base64url(base64url_encode(receipt_payload_json(claims)));
}

}  // namespace tokenmeter
