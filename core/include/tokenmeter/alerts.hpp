// Alerts: the events a ledger change raises for the app's backend (DESIGN.md
// §13), decided from the change alone, as pure functions.
//
// Given the claims of the account's receipt before a change and the change
// (whose claims are the receipt after it), alerts_of says what to tell the
// app: usage.threshold when the tokens used reach a configured percent of
// the period's capacity, plan.changed when a plan change gives another plan,
// credits.added / credits.refunded when a credit change adds or takes back
// purchased tokens. The server writes them to an outbox in the transaction
// of the change, and delivers them as Standard Webhooks.
//
// Invariants:
//   an alert's id is a function of what it reports, never of when or by
//   which process it was decided: a threshold's id comes from (user, period
//   start, percent), so the outbox, which keeps one row per id, sends each
//   threshold once per period even when usage crosses it again (an upgrade
//   lowered the ratio, then usage grew back) or two writers decide it;
//   a plan change's id comes from (user, seq), a credit's from its credit id;
//   the body is fixed here, byte for byte, so every retry of a delivery
//   carries the same bytes under the same id;
//   integer arithmetic only: used * 100 >= percent * capacity.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenmeter/ledger.hpp"
#include "tokenmeter/receipt.hpp"
#include "tokenmeter/state_machine.hpp"

namespace tokenmeter {

enum class AlertKind : std::uint8_t {
    usage_threshold = 1,
    plan_changed = 2,
    credits_added = 3,
    credits_refunded = 4,
};

// The event type as Standard Webhooks' `type`: "usage.threshold", "plan.changed",
// "credits.added", "credits.refunded".
std::string_view to_string(AlertKind kind);
std::optional<AlertKind> alert_kind_from_string(std::string_view text);

struct Alert {
    // The webhook-id: "msg_" and 32 base64url characters of a SHA-256 of
    // what the alert is about (see the invariants above).
    std::string id;
    AlertKind kind = AlertKind::usage_threshold;
    std::string user_id;
    // The event as delivered: {"data":{…},"timestamp":"…","type":"…"},
    // compact with sorted keys; the timestamp is the change's (its receipt's iat).
    std::string body;
};

// Which alerts to raise; configuration.
struct AlertRules {
    // Percents of the period's capacity, strictly increasing, each in
    // [1, limits::alert_threshold_percent_max]; above 100 reports an overrun.
    std::vector<int> thresholds_percent = {80, 100};
};

// Checks the rules: how many thresholds, their range and order.
[[nodiscard]] bool alert_rules_valid(const AlertRules& rules);

// What the period can spend, as alerts measure it: the ledger's capacity,
// the plan's allowance plus credits (a debt shrinks it), so the alerts, the
// hook and the demo's bar agree on when a threshold is reached.
std::int64_t alert_capacity_tokens(const Balance& balance);

// Whether the tokens used reach `percent` of the capacity. With no capacity
// at all, any use reaches every threshold.
bool reaches_threshold(const Balance& balance, int percent);

// The alerts `change` raises, in order: thresholds from the lowest, then the
// change's own event. `before` is the claims of the account's receipt before
// the change; null when the change opened the account. The rules must be
// valid (asserted).
std::vector<Alert> alerts_of(const ReceiptClaims* before, const LedgerChange& change, const AlertRules& rules);

}  // namespace tokenmeter
