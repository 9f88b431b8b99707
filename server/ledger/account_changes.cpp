#include "ledger/account_changes.hpp"

#include <algorithm>
#include <stdexcept>

#include "ledger/views.hpp"
#include "tokenmeter/assert.hpp"
#include "tokenmeter/period.hpp"

namespace tokenmeter::ledger {

namespace {

int anchor_day_of(std::int64_t instant) { return static_cast<int>(civil_date_of(instant).day); }

Period period_or_throw(std::int64_t instant, int anchor_day) {
    auto period = period_containing(instant, anchor_day);
    if (!period) throw std::runtime_error("no period for this instant: " + period.error().message);
    return *period;
}

}  // namespace

AccountChanges::AccountChanges(const LedgerConfig& config, storage::LedgerTransaction& transaction,
                               std::int64_t now_seconds)
    : config_(config), transaction_(transaction), now_(now_seconds) {
    TM_ASSERT(config_.catalog != nullptr);
    TM_ASSERT(config_.signing_key != nullptr);
}

const Plan& AccountChanges::plan_named(std::string_view id) const {
    const Plan* plan = config_.catalog->find_plan(id);
    if (plan == nullptr) plan = config_.catalog->find_plan(config_.default_plan);
    TM_ASSERT(plan != nullptr);
    return *plan;
}

storage::Account AccountChanges::create(std::string_view user_id) {
    storage::Account account;
    account.user_id = std::string(user_id);
    const Plan& plan = plan_named(config_.default_plan);
    account.plan = plan.id;
    account.anchor_day = anchor_day_of(now_);  // a free period is anchored on the day of first use
    account.period = period_or_throw(now_, account.anchor_day);
    account.balance = open_balance(plan);
    account.created_at = now_;
    return account;
}

storage::Account& AccountChanges::open(std::string_view user_id) {
    if (auto cached = accounts_.find(user_id); cached != accounts_.end()) return cached->second;
    auto loaded = transaction_.load_account(user_id);
    const bool is_new = !loaded.has_value();
    storage::Account& account = accounts_.emplace(std::string(user_id), is_new ? create(user_id) : std::move(*loaded)).first->second;
    if (is_new) {
        commit_change(account, "period_open");
        return account;
    }
    if (now_ < account.attention_at) return account;
    lapse_plan(account);
    roll_over(account);
    expire_due(account);
    refresh_attention(account);
    transaction_.store_account(account);
    return account;
}

void AccountChanges::lapse_plan(storage::Account& account) {
    if (!account.plan_ends_at || now_ < *account.plan_ends_at) return;
    const Plan& next = plan_named(account.plan_after.empty() ? config_.default_plan : account.plan_after);
    account.plan_ends_at.reset();
    account.plan_after.clear();
    account.plan = next.id;
    account.balance = tokenmeter::change_plan(account.balance, next);
    commit_change(account, "plan_change");
}

void AccountChanges::roll_over(storage::Account& account) {
    if (now_ < account.period.end_seconds) return;
    // The closed period's row keeps its final numbers; the new one starts.
    transaction_.store_account(account);
    account.period = period_or_throw(now_, account.anchor_day);
    account.balance = tokenmeter::roll_over(account.balance, plan_named(account.plan));
    commit_change(account, "period_open");
}

void AccountChanges::expire_due(storage::Account& account) {
    auto due = transaction_.due_reservations(account.user_id, now_);
    if (due.empty()) return;
    for (storage::StoredReservation& stored : due) {
        auto expired = tokenmeter::expire(account.balance, &stored.reservation, now_);
        TM_ASSERT(expired.has_value());
        account.balance = expired->balance;
        stored.reservation = expired->reservation;
        stored.settled_at = now_;
        transaction_.update_reservation(stored);
    }
    commit_change(account, "expire");
}

void AccountChanges::refresh_attention(storage::Account& account) {
    std::int64_t attention = account.period.end_seconds;
    if (account.plan_ends_at) attention = std::min(attention, *account.plan_ends_at);
    if (auto expiry = transaction_.next_expiry(account.user_id)) attention = std::min(attention, *expiry);
    account.attention_at = attention;
}

void AccountChanges::commit_change(storage::Account& account, std::string_view event) {
    if (account.attention_at == 0 || account.attention_at > account.period.end_seconds) {
        account.attention_at = account.period.end_seconds;
    }
    ReceiptClaims claims;
    claims.sub = account.user_id;
    claims.iat = now_;
    claims.seq = account.seq + 1;
    claims.prev = account.last_receipt.empty() ? std::string() : receipt_chain_digest(account.last_receipt);
    claims.plan = account.plan;
    claims.period_start = account.period.start_seconds;
    claims.period_end = account.period.end_seconds;
    claims.balance = account.balance;
    claims.event = std::string(event);
    account.last_receipt = sign_receipt(claims, *config_.signing_key);
    account.seq = claims.seq;
    signed_.insert_or_assign(account.user_id, std::make_pair(account.last_receipt, claims));
    transaction_.insert_receipt(account.user_id, account.seq, account.last_receipt, now_);
    transaction_.store_account(account);
    changed_[account.user_id] = true;
}

void AccountChanges::change_plan(storage::Account& account, const Plan& plan, std::optional<std::int64_t> ends_at,
                                 std::string_view after, std::optional<int> anchor_day) {
    account.plan = plan.id;
    account.plan_ends_at = ends_at;
    account.plan_after = std::string(after);
    account.balance = tokenmeter::change_plan(account.balance, plan);
    if (anchor_day && *anchor_day != account.anchor_day) {
        // The current period now ends where the new anchor's period does; it
        // keeps its start, so usage so far stays in it.
        account.anchor_day = *anchor_day;
        const Period next = period_or_throw(now_, *anchor_day);
        account.period.end_seconds = std::max(next.end_seconds, now_ + 1);
    }
    refresh_attention(account);
    commit_change(account, "plan_change");
}

nlohmann::json AccountChanges::usage(const storage::Account& account) const {
    auto found = signed_.find(account.user_id);
    if (found != signed_.end() && found->second.first == account.last_receipt) {
        return snapshot_object(found->second.second, account.last_receipt);
    }
    return snapshot_of_receipt(account.last_receipt);
}

std::string AccountChanges::snapshot(const storage::Account& account) const { return usage(account).dump(); }

std::vector<PublishedReceipt> AccountChanges::published() const {
    std::vector<PublishedReceipt> out;
    for (const auto& [user_id, changed] : changed_) {
        if (!changed) continue;
        // Every changed account signed its newest receipt here.
        const auto& [receipt, claims] = signed_.at(user_id);
        TM_ASSERT(receipt == accounts_.at(user_id).last_receipt);
        out.push_back(PublishedReceipt{user_id, claims, receipt});
    }
    return out;
}

}  // namespace tokenmeter::ledger
