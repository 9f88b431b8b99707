// Plan rules (DESIGN.md §9): which plan a user's subscriptions give at an
// instant, and when a change of plan takes effect. Pure: no storage, no
// clock; the caller passes `now`.
//
// One subscription, by LemonSqueezy's meanings (lemonsqueezy/SPEC.md §3.2):
// - active and on_trial give the variant's plan; past_due too (the dunning
//   grace);
// - cancelled gives it until ends_at, then free: the lapse is part of the
//   decision (ends_at, after), so it happens at ends_at even if
//   subscription_expired never arrives;
// - paused with mode "free" keeps the plan (the service continues; only
//   payment collection stops); mode "void" gives free until resumes_at,
//   and the plan back then, by the same kind of lapse;
// - expired and unpaid give free, and so does a status this server does not
//   know;
// - a subscription payment refunded in full gives free until the end of the
//   cycle it paid for (refunded_until), then the subscription's own state;
// - a variant no plan names is unknown: the user's plan is left alone
//   (logged by the caller), since guessing could take away what was paid.
// With several subscriptions the best one wins: unending paid, then paid
// ending latest, a larger plan before a smaller one, then free.
//
// Against the account (settle_change): an upgrade applies at once (limit
// raised, usage kept); a switch to a smaller paid plan waits for the end of
// the current period, so nobody pays twice or keeps a higher limit for
// free; an ending subscription gives free at once.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "storage/billing_store.hpp"
#include "storage/store.hpp"
#include "tokenmeter/catalog.hpp"

namespace tokenmeter::billing {

struct PlanRules {
    std::string free_plan = "free";
    // Which plan each provider variant gives (from the catalog's plans'
    // variant_ids, and LEMONSQUEEZY_PRO_VARIANT_ID for pro).
    std::map<std::string, std::string> variant_plans;
    // Where no variant is named anywhere: every variant gives this plan
    // (a server with one paid plan and no variant configured).
    std::string any_variant_plan;
    // Plans, for ranking upgrades; those the decisions name must be here.
    std::vector<Plan> plans;

    const Plan* plan(const std::string& id) const;
    // The plan a variant gives; null when the variant is unknown.
    const Plan* plan_of_variant(const std::string& variant_id) const;
};

// The rules from a catalog; `pro_variant_id` (configuration) also gives pro.
PlanRules plan_rules_from(const Catalog& catalog, const std::string& pro_variant_id);

// What the ledger account should say.
struct PlanDecision {
    std::string plan;
    std::optional<std::int64_t> ends_at;  // the plan lapses to `after` then
    std::string after;
    std::optional<int> anchor_day;  // the paid period's anchor, when known
    // A subscription names a variant no plan gives: decide nothing.
    bool unknown_variant = false;

    bool operator==(const PlanDecision&) const = default;
};

PlanDecision decide_plan(const storage::StoredSubscription& subscription, const PlanRules& rules, std::int64_t now);
PlanDecision decide_user_plan(const std::vector<storage::StoredSubscription>& subscriptions, const PlanRules& rules,
                              std::int64_t now);

// What the account should say, given what it says now: a switch between
// paid plans that is not an upgrade waits for the current period's end.
PlanDecision settle_change(const PlanDecision& target, const Account& account, const PlanRules& rules);

// Whether the account already carries the decision (nothing to change).
bool account_follows(const Account& account, const PlanDecision& decision);

}  // namespace tokenmeter::billing
