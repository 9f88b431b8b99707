#include "billing/plan_rules.hpp"

#include <algorithm>

#include "tokenmeter/period.hpp"

namespace tokenmeter::billing {

const Plan* PlanRules::plan(const std::string& id) const {
    for (const Plan& candidate : plans) {
        if (candidate.id == id) return &candidate;
    }
    return nullptr;
}

const Plan* PlanRules::plan_of_variant(const std::string& variant_id) const {
    if (auto found = variant_plans.find(variant_id); found != variant_plans.end()) return plan(found->second);
    if (variant_plans.empty() && !any_variant_plan.empty()) return plan(any_variant_plan);
    return nullptr;
}

PlanRules plan_rules_from(const Catalog& catalog, const std::string& pro_variant_id) {
    PlanRules rules;
    rules.plans = catalog.plans;
    for (const Plan& plan : catalog.plans) {
        for (const std::string& variant : plan.variant_ids) rules.variant_plans[variant] = plan.id;
    }
    if (!pro_variant_id.empty()) rules.variant_plans.emplace(pro_variant_id, "pro");
    if (rules.variant_plans.empty()) rules.any_variant_plan = "pro";
    return rules;
}

namespace {

PlanDecision free_plan(const PlanRules& rules) { return PlanDecision{rules.free_plan, std::nullopt, "", std::nullopt}; }

PlanDecision paid_plan(const Plan& plan, std::optional<int> anchor) {
    return PlanDecision{plan.id, std::nullopt, "", anchor};
}

std::optional<int> anchor_of(const std::optional<std::int64_t>& renews_at) {
    if (!renews_at || *renews_at < 0) return std::nullopt;
    return static_cast<int>(civil_date_of(*renews_at).day);
}

bool paid(const PlanDecision& decision, const PlanRules& rules) { return decision.plan != rules.free_plan; }

// Ranks decisions: free for good < free until a plan returns (sooner is
// better) < paid ending earlier < paid ending later < paid unending; among
// equals, the larger plan.
bool better(const PlanDecision& a, const PlanDecision& b, const PlanRules& rules) {
    if (paid(a, rules) != paid(b, rules)) return paid(a, rules);
    if (!paid(a, rules)) {
        if (!a.ends_at || !b.ends_at) return a.ends_at && !b.ends_at;
        return *a.ends_at < *b.ends_at;
    }
    if (a.ends_at != b.ends_at) {
        if (!a.ends_at || !b.ends_at) return !a.ends_at;
        return *a.ends_at > *b.ends_at;
    }
    const Plan* plan_a = rules.plan(a.plan);
    const Plan* plan_b = rules.plan(b.plan);
    return plan_a != nullptr && plan_b != nullptr && is_upgrade(*plan_b, *plan_a);
}

// Free until `until`, then the plan the subscription gives at that instant
// when that is a paid plan without an end of its own.
PlanDecision free_until(std::int64_t until, const PlanDecision& then, const PlanRules& rules) {
    PlanDecision decision = free_plan(rules);
    if (paid(then, rules) && !then.ends_at) {
        decision.ends_at = until;
        decision.after = then.plan;
    }
    return decision;
}

// The subscription's own state, refunds aside.
PlanDecision decide_status(const storage::StoredSubscription& subscription, const Plan& plan, const PlanRules& rules,
                           std::int64_t now) {
    const std::string& status = subscription.status;
    if (status == "active" || status == "on_trial") return paid_plan(plan, anchor_of(subscription.renews_at));
    if (status == "past_due") {
        // Grace while payment is retried. Here renews_at is the next retry
        // date, not a renewal, so the period keeps its anchor.
        return paid_plan(plan, std::nullopt);
    }
    if (status == "cancelled") {
        // Cancelled keeps the plan to the end of what was paid for. The
        // provider always sets ends_at here; renews_at is the same instant
        // when it does not.
        const std::optional<std::int64_t> ends_at = subscription.ends_at ? subscription.ends_at : subscription.renews_at;
        if (!ends_at || *ends_at <= now) return free_plan(rules);
        return PlanDecision{plan.id, ends_at, rules.free_plan, anchor_of(subscription.renews_at)};
    }
    if (status == "paused") {
        // "free": the customer keeps the service while payment collection
        // stops. "void": no service until the pause ends; a resumes_at that
        // has passed ends it even before the unpause arrives.
        if (subscription.pause_free) return paid_plan(plan, std::nullopt);
        if (subscription.pause_resumes_at && *subscription.pause_resumes_at > now) {
            return free_until(*subscription.pause_resumes_at, paid_plan(plan, std::nullopt), rules);
        }
        if (subscription.pause_resumes_at) return paid_plan(plan, std::nullopt);
        return free_plan(rules);
    }
    // expired, unpaid, and statuses this server does not know.
    return free_plan(rules);
}

}  // namespace

PlanDecision decide_plan(const storage::StoredSubscription& subscription, const PlanRules& rules, std::int64_t now) {
    const Plan* plan = rules.plan_of_variant(subscription.variant_id);
    if (plan == nullptr) {
        PlanDecision unknown = free_plan(rules);
        unknown.unknown_variant = true;
        return unknown;
    }
    if (subscription.refunded_until && now < *subscription.refunded_until) {
        // The cycle whose payment was refunded is not paid for: free to its
        // end, then whatever the subscription says by then.
        storage::StoredSubscription after = subscription;
        after.refunded_until.reset();
        return free_until(*subscription.refunded_until, decide_status(after, *plan, rules, *subscription.refunded_until),
                          rules);
    }
    return decide_status(subscription, *plan, rules, now);
}

PlanDecision decide_user_plan(const std::vector<storage::StoredSubscription>& subscriptions, const PlanRules& rules,
                              std::int64_t now) {
    PlanDecision best = free_plan(rules);
    bool unknown = false;
    for (const auto& subscription : subscriptions) {
        PlanDecision decision = decide_plan(subscription, rules, now);
        // An expired subscription on a retired variant decides nothing either way.
        if (decision.unknown_variant) {
            unknown = unknown || subscription.status != "expired";
            continue;
        }
        if (better(decision, best, rules)) best = std::move(decision);
    }
    best.unknown_variant = unknown;
    return best;
}

PlanDecision settle_change(const PlanDecision& target, const Account& account, const PlanRules& rules) {
    if (target.unknown_variant || !account.exists()) return target;
    if (!paid(target, rules) || target.ends_at || account.plan == rules.free_plan || account.plan == target.plan) {
        return target;
    }
    const Plan* now = rules.plan(account.plan);
    const Plan* next = rules.plan(target.plan);
    if (now == nullptr || next == nullptr || is_upgrade(*now, *next)) return target;
    // A smaller paid plan: the current one stays to the period's end, and
    // the smaller one starts with the next period.
    return PlanDecision{account.plan, account.period.end_seconds, target.plan, std::nullopt};
}

bool account_follows(const Account& account, const PlanDecision& decision) {
    if (account.plan != decision.plan) return false;
    if (account.plan_ends_at != decision.ends_at) return false;
    if (decision.ends_at && account.plan_after != decision.after) return false;
    if (decision.anchor_day && account.anchor_day != *decision.anchor_day) return false;
    return true;
}

}  // namespace tokenmeter::billing
