// Plan rules (DESIGN.md §9): which plan a user's subscriptions give at an
// instant. Pure: no storage, no clock; the caller passes `now`.
//
// - active, on_trial and past_due (the dunning grace) give the paid plan;
// - cancelled gives it until ends_at, then the free plan: the lapse is part
//   of the decision (ends_at, after), so it happens at ends_at even if
//   subscription_expired never arrives;
// - expired, unpaid and paused give the free plan (DESIGN.md wins over the
//   provider's "pause mode free", which continues the *provider's* service);
// - a variant that is not a paid variant gives the free plan;
// - the paid period is anchored on the day of renews_at.
// With several subscriptions the best one wins: unending paid, then paid
// ending latest, then free.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/billing_store.hpp"
#include "storage/store.hpp"

namespace tokenmeter::billing {

struct PlanRules {
    std::string paid_plan = "pro";
    std::string free_plan = "free";
    // Variants that give the paid plan; empty: every variant does.
    std::vector<std::string> paid_variant_ids;
};

// What the ledger account should say.
struct PlanDecision {
    std::string plan;
    std::optional<std::int64_t> ends_at;  // the plan lapses to `after` then
    std::string after;
    std::optional<int> anchor_day;  // the paid period's anchor, when known

    bool operator==(const PlanDecision&) const = default;
};

PlanDecision decide_plan(const storage::StoredSubscription& subscription, const PlanRules& rules, std::int64_t now);
PlanDecision decide_user_plan(const std::vector<storage::StoredSubscription>& subscriptions, const PlanRules& rules,
                              std::int64_t now);

// Whether the account already carries the decision (nothing to change).
bool account_follows(const Account& account, const PlanDecision& decision);

}  // namespace tokenmeter::billing
