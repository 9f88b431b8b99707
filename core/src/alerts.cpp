#include "tokenmeter/alerts.hpp"

#include <algorithm>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "tokenmeter/assert.hpp"
#include "tokenmeter/crypto.hpp"
#include "tokenmeter/limits.hpp"
#include "tokenmeter/period.hpp"

namespace tokenmeter {

namespace {

using Json = nlohmann::json;

// 32 base64url characters are 192 bits of the digest: no two alerts share an
// id by chance, and the id stays short enough to type into `webhooks replay`.
constexpr std::size_t alert_id_digest_chars = 32;

// The id of what an alert is about. The parts go through JSON so that no
// user id (which may hold ':' or '|') can make two different tuples one text.
std::string alert_id(const Json& about) {
    return "msg_" + sha256_base64url(about.dump()).substr(0, alert_id_digest_chars);
}

Json period_json(const ReceiptClaims& claims) {
    return Json{{"start", format_rfc3339(claims.period_start)}, {"end", format_rfc3339(claims.period_end)}};
}

Json tokens_json(const Balance& balance) {
    return Json{{"limit", balance.tokens_limit},
                {"used", balance.tokens_used},
                {"reserved", balance.tokens_reserved},
                {"credits", balance.credits},
                {"capacity", alert_capacity_tokens(balance)}};
}

Alert make_alert(AlertKind kind, const ReceiptClaims& claims, const Json& about, Json data) {
    data["user_id"] = claims.sub;
    data["seq"] = claims.seq;
    const Json event = {{"type", to_string(kind)}, {"timestamp", format_rfc3339(claims.iat)}, {"data", std::move(data)}};
    return Alert{alert_id(about), kind, claims.sub, event.dump()};
}

void add_thresholds(std::vector<Alert>& alerts, const ReceiptClaims* before, const ReceiptClaims& after,
                    const AlertRules& rules) {
    // Usage of another period (or of no account yet) reached nothing of this one.
    const bool same_period = before != nullptr && before->period_start == after.period_start;
    for (const int percent : rules.thresholds_percent) {
        if (!reaches_threshold(after.balance, percent)) continue;
        if (same_period && reaches_threshold(before->balance, percent)) continue;
        Json data = {{"threshold_percent", percent},
                     {"plan", after.plan},
                     {"period", period_json(after)},
                     {"tokens", tokens_json(after.balance)}};
        const Json about = {to_string(AlertKind::usage_threshold), after.sub, after.period_start, percent};
        alerts.push_back(make_alert(AlertKind::usage_threshold, after, about, std::move(data)));
    }
}

void add_plan_change(std::vector<Alert>& alerts, const ReceiptClaims* before, const LedgerChange& change) {
    if (change.kind != ChangeKind::plan_change) return;
    const ReceiptClaims& after = change.claims;
    // A renewal or a new end date of the same plan is not news for the app.
    if (before != nullptr && before->plan == after.plan) return;
    Json data = {{"plan", after.plan},
                 {"previous_plan", before == nullptr ? Json(nullptr) : Json(before->plan)},
                 {"period", period_json(after)},
                 {"tokens", tokens_json(after.balance)}};
    const Json about = {to_string(AlertKind::plan_changed), after.sub, after.seq};
    alerts.push_back(make_alert(AlertKind::plan_changed, after, about, std::move(data)));
}

void add_credit(std::vector<Alert>& alerts, const LedgerChange& change) {
    if (change.kind != ChangeKind::credit || !change.credit || change.credit->tokens == 0) return;
    const CreditChange& credit = *change.credit;
    const AlertKind kind = credit.tokens > 0 ? AlertKind::credits_added : AlertKind::credits_refunded;
    // The amount as a magnitude: the type already says which way it went.
    const std::int64_t tokens = credit.tokens > 0 ? credit.tokens : -credit.tokens;
    Json data = {{"credit_id", credit.id},
                 {"reason", credit.reason},
                 {"tokens", tokens},
                 {"credits", change.claims.balance.credits}};
    const Json about = {to_string(kind), change.claims.sub, credit.id};
    alerts.push_back(make_alert(kind, change.claims, about, std::move(data)));
}

}  // namespace

std::string_view to_string(AlertKind kind) {
    switch (kind) {
        case AlertKind::usage_threshold: return "usage.threshold";
        case AlertKind::plan_changed: return "plan.changed";
        case AlertKind::credits_added: return "credits.added";
        case AlertKind::credits_refunded: return "credits.refunded";
    }
    TM_ASSERT(false);
}

std::optional<AlertKind> alert_kind_from_string(std::string_view text) {
    for (AlertKind kind : {AlertKind::usage_threshold, AlertKind::plan_changed, AlertKind::credits_added,
                           AlertKind::credits_refunded}) {
        if (to_string(kind) == text) return kind;
    }
    return std::nullopt;
}

bool alert_rules_valid(const AlertRules& rules) {
    if (rules.thresholds_percent.size() > limits::alert_thresholds_max) return false;
    int previous = 0;
    for (const int percent : rules.thresholds_percent) {
        if (percent <= previous || percent > limits::alert_threshold_percent_max) return false;
        previous = percent;
    }
    return true;
}

std::int64_t alert_capacity_tokens(const Balance& balance) { return balance.tokens_capacity(); }

bool reaches_threshold(const Balance& balance, int percent) {
    TM_ASSERT(percent >= 1);
    TM_ASSERT(percent <= limits::alert_threshold_percent_max);
    const std::int64_t capacity = alert_capacity_tokens(balance);
    // Nothing can be spent (a debt as large as the allowance): every
    // threshold is reached, as used * 100 >= percent * capacity says.
    if (capacity <= 0) return true;
    // used <= count_max (2^53), so used * 100 fits; percent * capacity may
    // not (capacity is up to two counts), and where it would overflow it is
    // beyond anything used * 100 reaches.
    if (capacity > INT64_MAX / percent) return false;
    return balance.tokens_used * 100 >= std::int64_t{percent} * capacity;
}

std::vector<Alert> alerts_of(const ReceiptClaims* before, const LedgerChange& change, const AlertRules& rules) {
    TM_ASSERT(alert_rules_valid(rules));
    TM_ASSERT(before == nullptr || before->sub == change.claims.sub);
    std::vector<Alert> alerts;
    add_thresholds(alerts, before, change.claims, rules);
    add_plan_change(alerts, before, change);
    add_credit(alerts, change);
    return alerts;
}

}  // namespace tokenmeter
