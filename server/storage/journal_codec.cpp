#include "storage/journal_codec.hpp"

#include "storage/stored_values.hpp"

namespace tokenmeter::storage::journal_codec {

namespace {

using Json = nlohmann::json;

[[noreturn]] void corrupt(std::string_view what) {
    throw StorageError("a stored ledger value does not decode: " + std::string(what));
}

const Json& member(const Json& object, const char* key) {
    if (!object.is_object() || !object.contains(key)) corrupt(std::string("missing ") + key);
    return object[key];
}

std::int64_t integer(const Json& object, const char* key) {
    const Json& value = member(object, key);
    if (!value.is_number_integer()) corrupt(std::string(key) + " is not an integer");
    return value.get<std::int64_t>();
}

std::optional<std::int64_t> optional_integer(const Json& object, const char* key) {
    if (!object.contains(key) || object[key].is_null()) return std::nullopt;
    return integer(object, key);
}

std::string text(const Json& object, const char* key) {
    const Json& value = member(object, key);
    if (!value.is_string()) corrupt(std::string(key) + " is not text");
    return value.get<std::string>();
}

bool flag(const Json& object, const char* key) {
    const Json& value = member(object, key);
    if (!value.is_boolean()) corrupt(std::string(key) + " is not a boolean");
    return value.get<bool>();
}

Json balance_json(const Balance& b) {
    Json j{{"tokens_limit", b.tokens_limit}, {"tokens_used", b.tokens_used}, {"tokens_reserved", b.tokens_reserved},
           {"avatars_limit", b.avatars_limit}, {"avatars_used", b.avatars_used},
           {"avatars_reserved", b.avatars_reserved}};
    if (b.credits != 0 || b.credits_clawed != 0) {
        j["credits"] = b.credits;
        j["credits_clawed"] = b.credits_clawed;
    }
    return j;
}

Balance balance_from(const Json& j) {
    Balance b{integer(j, "tokens_limit"), integer(j, "tokens_used"), integer(j, "tokens_reserved"),
              integer(j, "avatars_limit"), integer(j, "avatars_used"), integer(j, "avatars_reserved")};
    if (j.contains("credits")) {
        b.credits = integer(j, "credits");
        b.credits_clawed = integer(j, "credits_clawed");
    }
    return b;
}

Json credit_json(const CreditChange& c) { return Json{{"id", c.id}, {"tokens", c.tokens}, {"reason", c.reason}}; }

CreditChange credit_from(const Json& j) { return CreditChange{text(j, "id"), integer(j, "tokens"), text(j, "reason")}; }

// A reservation's pinned token class weights, written only when they are not
// all 1, so reservations without them keep the bytes they had before.
Json weights_json(const TokenWeights& w) {
    return Json{{"input", to_string(w.input)},
                {"cached_input", to_string(w.cached_input)},
                {"output", to_string(w.output)},
                {"reasoning", to_string(w.reasoning)}};
}

TokenWeights weights_from(const Json& j) {
    // Cached input may weigh 0 (the catalog allows it); no multiplier may.
    const std::string cached = text(j, "cached_input");
    return TokenWeights{stored_multiplier(text(j, "input")), cached == "0" ? Multiplier{0, 1} : stored_multiplier(cached),
                        stored_multiplier(text(j, "output")), stored_multiplier(text(j, "reasoning"))};
}

Json reservation_json(const HeldReservation& held) {
    Json j{{"id", held.id},
                {"user_id", held.user_id},
                {"operation", to_string(held.operation)},
                {"model", held.model},
                {"multiplier", to_string(held.multiplier)},
                {"catalog_version", held.catalog_version},
                {"tokens", held.reservation.amount.tokens},
                {"avatars", held.reservation.amount.avatars},
                {"expires_at", held.reservation.expires_at_seconds},
                {"state", to_string(held.reservation.state)},
                {"created_at", held.created_at},
                {"settled_at", held.settled_at}};
    if (!held.weights.all_one()) j["weights"] = weights_json(held.weights);
    return j;
}

HeldReservation reservation_from(const Json& j) {
    HeldReservation held;
    held.id = text(j, "id");
    held.user_id = text(j, "user_id");
    held.operation = stored_operation(text(j, "operation"));
    held.model = text(j, "model");
    held.multiplier = stored_multiplier(text(j, "multiplier"));
    if (j.contains("weights")) held.weights = weights_from(j["weights"]);
    held.catalog_version = text(j, "catalog_version");
    held.reservation.amount = Amount{integer(j, "tokens"), integer(j, "avatars")};
    held.reservation.expires_at_seconds = integer(j, "expires_at");
    held.reservation.state = stored_reservation_state(text(j, "state"));
    held.created_at = integer(j, "created_at");
    held.settled_at = integer(j, "settled_at");
    return held;
}

// The class parts are written only when there are any, so the change of a
// charge without them is the same bytes as before token classes.
Json charge_fields(const Charge& c) {
    Json j{{"operation", to_string(c.operation)}, {"model", c.model},
           {"multiplier", to_string(c.multiplier)}, {"input_tokens", c.input_tokens},
           {"output_tokens", c.output_tokens}, {"raw_tokens", c.raw_tokens},
           {"charged_tokens", c.charged_tokens}, {"avatars", c.avatars}};
    if (c.cached_input_tokens != 0) j["cached_input_tokens"] = c.cached_input_tokens;
    if (c.reasoning_tokens != 0) j["reasoning_tokens"] = c.reasoning_tokens;
    return j;
}

Charge charge_fields_from(const Json& j) {
    Charge c;
    c.operation = stored_operation(text(j, "operation"));
    c.model = text(j, "model");
    c.multiplier = stored_multiplier(text(j, "multiplier"));
    c.input_tokens = integer(j, "input_tokens");
    c.output_tokens = integer(j, "output_tokens");
    c.raw_tokens = integer(j, "raw_tokens");
    c.charged_tokens = integer(j, "charged_tokens");
    c.avatars = integer(j, "avatars");
    c.cached_input_tokens = optional_integer(j, "cached_input_tokens").value_or(0);
    c.reasoning_tokens = optional_integer(j, "reasoning_tokens").value_or(0);
    return c;
}

Json usage_charge_json(const UsageCharge& u) {
    Json j = charge_fields(u.charge);
    j["event_id"] = u.event_id;
    j["user_id"] = u.user_id;
    j["period_start"] = u.period_start;
    j["reservation_id"] = u.reservation_id;
    j["idempotency_key"] = u.idempotency_key;
    j["catalog_version"] = u.catalog_version;
    j["created_at"] = u.created_at;
    j["late"] = u.late;
    return j;
}

UsageCharge usage_charge_from(const Json& j) {
    UsageCharge u;
    u.charge = charge_fields_from(j);
    u.event_id = text(j, "event_id");
    u.user_id = text(j, "user_id");
    u.period_start = integer(j, "period_start");
    u.reservation_id = text(j, "reservation_id");
    u.idempotency_key = text(j, "idempotency_key");
    u.catalog_version = text(j, "catalog_version");
    u.created_at = integer(j, "created_at");
    u.late = flag(j, "late");
    return u;
}

Json plan_terms_json(const PlanTerms& t) {
    return Json{{"plan", t.plan},
                {"ends_at", t.ends_at ? Json(*t.ends_at) : Json(nullptr)},
                {"after", t.after},
                {"anchor_day", t.anchor_day},
                {"period_start", t.period.start_seconds},
                {"period_end", t.period.end_seconds}};
}

PlanTerms plan_terms_from(const Json& j) {
    return PlanTerms{text(j, "plan"), optional_integer(j, "ends_at"), text(j, "after"),
                     static_cast<int>(integer(j, "anchor_day")), Period{integer(j, "period_start"), integer(j, "period_end")}};
}

Json closed_json(const ClosedPeriod& c) {
    return Json{{"plan", c.plan},
                {"period_start", c.period.start_seconds},
                {"period_end", c.period.end_seconds},
                {"balance", balance_json(c.balance)}};
}

ClosedPeriod closed_from(const Json& j) {
    return ClosedPeriod{text(j, "plan"), Period{integer(j, "period_start"), integer(j, "period_end")},
                        balance_from(member(j, "balance"))};
}

}  // namespace

std::string change_json(const LedgerChange& change, const ChangeExtras& extras) {
    Json j = Json::object();
    if (!change.reservations.empty()) {
        Json list = Json::array();
        for (const HeldReservation& held : change.reservations) list.push_back(reservation_json(held));
        j["reservations"] = std::move(list);
    }
    if (change.charge) j["charge"] = usage_charge_json(*change.charge);
    if (change.closed) j["closed"] = closed_json(*change.closed);
    if (change.plan_terms) j["plan_terms"] = plan_terms_json(*change.plan_terms);
    if (change.credit) j["credit"] = credit_json(*change.credit);
    if (extras.estimate) j["estimate"] = charge_fields(*extras.estimate);
    if (change.kind == ChangeKind::authorize) j["exact"] = extras.exact;
    return j.dump();
}

DecodedChange decode_change(const JournalRow& row) {
    const auto kind = change_kind_from_string(row.kind);
    if (!kind) corrupt("journal kind \"" + row.kind.substr(0, 32) + "\"");
    const Json j = Json::parse(row.change, nullptr, false);
    if (!j.is_object()) corrupt("a journal change is not a JSON object");
    DecodedChange decoded;
    decoded.kind = *kind;
    if (j.contains("reservations")) {
        for (const Json& item : member(j, "reservations")) decoded.reservations.push_back(reservation_from(item));
    }
    if (j.contains("charge")) decoded.charge = usage_charge_from(j["charge"]);
    if (j.contains("closed")) decoded.closed = closed_from(j["closed"]);
    if (j.contains("plan_terms")) decoded.plan_terms = plan_terms_from(j["plan_terms"]);
    if (j.contains("credit")) decoded.credit = credit_from(j["credit"]);
    if (j.contains("estimate")) decoded.extras.estimate = charge_fields_from(j["estimate"]);
    if (j.contains("exact")) decoded.extras.exact = flag(j, "exact");
    return decoded;
}

JournalRow legacy_reservation_row(const HeldReservation& held) {
    JournalRow row;
    row.user_id = held.user_id;
    row.kind = "legacy";
    row.reservation_id = held.id;
    row.change = Json{{"reservations", Json::array({reservation_json(held)})}}.dump();
    return row;
}

std::optional<HeldReservation> reservation_from_rows(const std::vector<JournalRow>& rows, bool still_open) {
    std::optional<HeldReservation> found;
    for (const JournalRow& row : rows) {
        const Json j = Json::parse(row.change, nullptr, false);
        if (!j.is_object() || !j.contains("reservations")) continue;
        for (const Json& item : j["reservations"]) {
            HeldReservation held = reservation_from(item);
            if (held.id == row.reservation_id) found = std::move(held);  // the latest row says how it ended
        }
    }
    if (found && found->reservation.state == ReservationState::open && !still_open) {
        // Neither committed nor released, and not open in the account: it expired.
        found->reservation.state = ReservationState::expired;
        found->settled_at = found->reservation.expires_at_seconds;
    }
    return found;
}

std::string reservations_json(const std::vector<HeldReservation>& reservations) {
    Json list = Json::array();
    for (const HeldReservation& held : reservations) list.push_back(reservation_json(held));
    return list.dump();
}

std::vector<HeldReservation> reservations_from(std::string_view text_value) {
    const Json list = Json::parse(text_value, nullptr, false);
    if (!list.is_array()) corrupt("usage_limits.reservations is not a JSON array");
    std::vector<HeldReservation> reservations;
    for (const Json& item : list) reservations.push_back(reservation_from(item));
    return reservations;
}

UsageEvent usage_event_of(const UsageCharge& u) {
    UsageEvent e;
    e.event_id = u.event_id;
    e.user_id = u.user_id;
    e.period_start = u.period_start;
    e.operation = u.charge.operation;
    e.model = u.charge.model;
    e.input_tokens = u.charge.input_tokens;
    e.output_tokens = u.charge.output_tokens;
    e.cached_input_tokens = u.charge.cached_input_tokens;
    e.reasoning_tokens = u.charge.reasoning_tokens;
    e.raw_tokens = u.charge.raw_tokens;
    e.multiplier = u.charge.multiplier;
    e.charged_tokens = u.charge.charged_tokens;
    e.avatars = u.charge.avatars;
    e.reservation_id = u.reservation_id;
    e.idempotency_key = u.idempotency_key;
    e.catalog_version = u.catalog_version;
    e.created_at = u.created_at;
    e.late = u.late;
    return e;
}

AccountRow account_row(const Account& account) {
    AccountRow row;
    row.user_id = account.user_id;
    row.plan = account.plan;
    row.period = account.period;
    row.balance = account.balance;
    row.seq = account.seq;
    row.anchor_day = account.anchor_day;
    row.plan_ends_at = account.plan_ends_at;
    row.plan_after = account.plan_after;
    row.created_at = account.created_at;
    row.reservations = reservations_json(account.reservations);
    row.attention_at = account.attention_at();
    return row;
}

AccountRow closed_row(const Account& account, const ClosedPeriod& closed, std::int64_t seq) {
    AccountRow row;
    row.user_id = account.user_id;
    row.plan = closed.plan;
    row.period = closed.period;
    row.balance = closed.balance;
    row.seq = seq;
    row.anchor_day = account.anchor_day;
    row.created_at = account.created_at;
    row.attention_at = closed.period.end_seconds;
    return row;
}

Account account_from(const StoredAccount& stored) {
    const AccountRow& row = stored.row;
    auto claims = decode_receipt_claims(stored.head_receipt);
    if (!claims) corrupt("the newest receipt of " + row.user_id.substr(0, 64) + ": " + claims.error().message);
    if (claims->seq != row.seq || claims->sub != row.user_id) corrupt("usage_limits and the journal disagree on seq");
    Account account;
    account.user_id = row.user_id;
    account.plan = row.plan;
    account.anchor_day = row.anchor_day;
    account.period = row.period;
    account.balance = row.balance;
    // Credits are not columns of usage_limits: the newest receipt, which
    // shows this same balance, carries them.
    account.balance.credits = claims->balance.credits;
    account.balance.credits_clawed = claims->balance.credits_clawed;
    account.seq = row.seq;
    account.head = *claims;
    account.head_digest = receipt_chain_digest(stored.head_receipt);
    account.plan_ends_at = row.plan_ends_at;
    account.plan_after = row.plan_after;
    account.created_at = row.created_at;
    account.reservations = reservations_from(row.reservations);
    return account;
}

}  // namespace tokenmeter::storage::journal_codec
