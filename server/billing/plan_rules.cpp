#include "billing/plan_rules.hpp"

#include <algorithm>

#include "tokenmeter/period.hpp"

namespace tokenmeter::billing {

namespace {

PlanDecision free_plan(const PlanRules& rules) { return PlanDecision{rules.free_plan, std::nullopt, "", std::nullopt}; }

bool paid_variant(const storage::StoredSubscription& subscription, const PlanRules& rules) {
    if (rules.paid_variant_ids.empty()) return true;
    return std::find(rules.paid_variant_ids.begin(), rules.paid_variant_ids.end(), subscription.variant_id) !=
           rules.paid_variant_ids.end();
}

std::optional<int> anchor_of(const std::optional<std::int64_t>& renews_at) {
    if (!renews_at || *renews_at < 0) return std::nullopt;
    return static_cast<int>(civil_date_of(*renews_at).day);
}

// Ranks decisions: free < paid ending earlier < paid ending later < paid unending.
bool better(const PlanDecision& a, const PlanDecision& b, const PlanRules& rules) {
    const bool a_paid = a.plan == rules.paid_plan;
    const bool b_paid = b.plan == rules.paid_plan;
    if (a_paid != b_paid) return a_paid;
    if (!a_paid) return false;
    if (!a.ends_at || !b.ends_at) return !a.ends_at && b.ends_at;
    return *a.ends_at > *b.ends_at;
}

}  // namespace

PlanDecision decide_plan(const storage::StoredSubscription& subscription, const PlanRules& rules, std::int64_t now) {
    if (!paid_variant(subscription, rules)) return free_plan(rules);
    const std::string& status = subscription.status;
    if (status == "active" || status == "on_trial") {
        return PlanDecision{rules.paid_plan, std::nullopt, "", anchor_of(subscription.renews_at)};
    }
    if (status == "past_due") {
        // Grace while payment is retried. Here renews_at is the next retry
        // date, not a renewal, so the period keeps its anchor.
        return PlanDecision{rules.paid_plan, std::nullopt, "", std::nullopt};
    }
    if (status == "cancelled") {
        // Cancelled keeps the paid plan to the end of what was paid for. The
        // provider always sets ends_at here; renews_at is the same instant
        // when it does not.
        const std::optional<std::int64_t> ends_at = subscription.ends_at ? subscription.ends_at : subscription.renews_at;
        if (!ends_at || *ends_at <= now) return free_plan(rules);
        return PlanDecision{rules.paid_plan, ends_at, rules.free_plan, anchor_of(subscription.renews_at)};
    }
    // expired, unpaid, paused, and statuses this server does not know.
    return free_plan(rules);
}

PlanDecision decide_user_plan(const std::vector<storage::StoredSubscription>& subscriptions, const PlanRules& rules,
                              std::int64_t now) {
    PlanDecision best = free_plan(rules);
    for (const auto& subscription : subscriptions) {
        PlanDecision decision = decide_plan(subscription, rules, now);
        if (better(decision, best, rules)) best = std::move(decision);
    }
    return best;
}

bool account_follows(const Account& account, const PlanDecision& decision) {
    if (account.plan != decision.plan) return false;
    if (account.plan_ends_at != decision.ends_at) return false;
    if (decision.ends_at && account.plan_after != decision.after) return false;
    if (decision.anchor_day && account.anchor_day != *decision.anchor_day) return false;
    return true;
}

}  // namespace tokenmeter::billing
