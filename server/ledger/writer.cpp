#include "ledger/writer.hpp"

#include <algorithm>
#include <iostream>

#include "storage/journal_codec.hpp"
#include "tokenmeter/assert.hpp"

namespace tokenmeter::ledger {

namespace codec = storage::journal_codec;

namespace {

// How long an account another process wrote is read locked at each batch:
// while two servers take turns on a user, each batch would otherwise decide
// from stale memory, collide and run again.
constexpr std::chrono::seconds contended_for{10};

LedgerReply unavailable() { return LedgerReply::of_kind(ReplyKind::unavailable); }

Command command_of(const LedgerCommand& command) {
    switch (command.index()) {
        case 1: return Command::authorize;
        case 2: return Command::commit;
        case 3: return Command::release;
        case 4: return Command::record;
        case 5: return Command::plan_change;
        default: return Command::open;
    }
}

const std::string* reservation_of(const LedgerCommand& command) {
    if (const auto* commit = std::get_if<CommitCommand>(&command)) return &commit->reservation_id;
    if (const auto* release = std::get_if<ReleaseCommand>(&command)) return &release->reservation_id;
    return nullptr;
}

std::string reservation_id_of(const LedgerChange& change) {
    const bool about_one = change.kind == ChangeKind::authorize || change.kind == ChangeKind::commit ||
                           change.kind == ChangeKind::release;
    return about_one && !change.reservations.empty() ? change.reservations.front().id : std::string();
}

}  // namespace

struct Writer::Pending {
    std::optional<Submission> submission;  // a command, or else
    Job job;                                // a billing job
    std::promise<LedgerReply> replied;
    std::promise<JobOutcome> job_done;
    // This attempt's outcome.
    LedgerReply reply;
    JobOutcome job_outcome;
    Decision decision;
    bool decided = false;  // false: answered before deciding (a replay found at a rerun)
    std::string user_id;   // whose account the decision is about
    std::size_t first_change = 0;
    std::size_t change_count = 0;
};

// One attempt at a batch: the changes it made, in order, and the accounts as
// they were before it touched them.
class Writer::Batch {
public:
    struct Made {
        std::string user_id;
        LedgerChange change;
        std::size_t pending = 0;
        std::string receipt;
    };

    struct Prune {
        std::int64_t before = 0;  // answers created before this were due
        int max = 0;
        int deleted = 0;
    };

    std::unordered_map<std::string, std::optional<Resident>> before;
    std::vector<Made> made;
    std::int64_t now = 0;
    // The writer's rules with the price book taken for this batch: every
    // decision in it prices with the same book, whatever a reload does.
    std::shared_ptr<const PriceBook> prices;
    LedgerRules rules;
    std::unique_ptr<storage::LedgerBatch> transaction;
    std::optional<Prune> pruned;
    std::size_t alerts_enqueued = 0;
};

// What a billing job sees: the batch's transaction and the writer's accounts.
class Writer::Context final : public JobContext {
public:
    Context(Writer& writer, Batch& batch, std::size_t index) : writer_(writer), batch_(batch), index_(index) {}

    storage::BillingTransaction& billing() override {
        storage::BillingTransaction* billing = batch_.transaction->billing();
        if (billing == nullptr) throw storage::StorageError("this database has no billing tables");
        return *billing;
    }
    std::int64_t now() const override { return batch_.now; }
    const LedgerRules& rules() const override { return batch_.rules; }

    const Account& account(const std::string& user_id) override {
        Resident& resident = touch(user_id);
        keep(user_id, open_account(resident.account, batch_.rules, batch_.now));
        return resident.account;
    }

    void change_plan(const PlanChangeCommand& command) override {
        Resident& resident = touch(command.user_id);
        Decision decision = tokenmeter::change_plan(resident.account, command, batch_.rules, batch_.now);
        if (decision.verdict == Verdict::invalid) {
            throw std::runtime_error("a billing plan change was refused: " + decision.error.message);
        }
        keep(command.user_id, std::move(decision));
    }

    bool credit(const CreditCommand& command) override {
        Resident& resident = touch(command.user_id);
        Decision decision = tokenmeter::credit(resident.account, command, batch_.rules, batch_.now);
        if (decision.verdict == Verdict::invalid) {
            throw std::runtime_error("a billing credit change was refused: " + decision.error.message);
        }
        const bool done = decision.verdict == Verdict::done;
        keep(command.user_id, std::move(decision));
        return done;
    }

private:
    Resident& touch(const std::string& user_id) {
        if (writer_.accounts_.count(user_id) == 0) {
            // A job names users no request prefetched: read them here.
            auto stored = writer_.store_.read_account(user_id);
            if (stored) writer_.accounts_[user_id] = Resident{codec::account_from(*stored), stored->head_receipt, writer_.batch_number_};
        }
        if (batch_.before.count(user_id) == 0) {
            auto found = writer_.accounts_.find(user_id);
            batch_.before[user_id] = found == writer_.accounts_.end() ? std::nullopt : std::optional<Resident>(found->second);
        }
        return writer_.resident(user_id);
    }

    void keep(const std::string& user_id, Decision decision) {
        for (LedgerChange& change : decision.changes) {
            batch_.made.push_back(Batch::Made{user_id, std::move(change), index_, {}});
        }
    }

    Writer& writer_;
    Batch& batch_;
    std::size_t index_;
};

Writer::Writer(storage::LedgerStore& store, LedgerRules rules, const LivePriceBook& prices, const SigningKey& key,
               WriterOptions options, std::function<std::int64_t()> now, RenderFn render, PublishFn publish)
    : store_(store),
      rules_(std::move(rules)),
      prices_(prices),
      options_(options),
      now_(std::move(now)),
      render_(std::move(render)),
      publish_(std::move(publish)),
      signer_(key, options.signer_threads) {
    thread_ = std::thread([this] { loop(); });
}

Writer::~Writer() { stop(); }

void Writer::stop() {
    {
        std::lock_guard<std::mutex> guard(mutex_);
        if (stopping_ && !thread_.joinable()) return;
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

WriterStats Writer::stats() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return stats_;
}

bool Writer::claim(const IdempotencyScope& scope) {
    std::lock_guard<std::mutex> guard(mutex_);
    return in_flight_.emplace(scope.caller, scope.key).second;
}

void Writer::unclaim(const IdempotencyScope& scope) {
    std::lock_guard<std::mutex> guard(mutex_);
    in_flight_.erase({scope.caller, scope.key});
}

bool Writer::holds(const std::string& user_id) const {
    std::shared_lock<std::shared_mutex> guard(hints_mutex_);
    return held_users_.count(user_id) > 0;
}

std::optional<std::string> Writer::owner_of(const std::string& reservation_id) const {
    std::shared_lock<std::shared_mutex> guard(hints_mutex_);
    auto found = open_owners_.find(reservation_id);
    if (found == open_owners_.end()) return std::nullopt;
    return found->second;
}

LedgerReply Writer::submit(Submission submission) {
    std::future<LedgerReply> result;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        if (stopping_) {
            if (submission.idempotency) in_flight_.erase({submission.idempotency->caller, submission.idempotency->key});
            return unavailable();
        }
        Pending pending;
        pending.submission = std::move(submission);
        result = pending.replied.get_future();
        queue_.push_back(std::move(pending));
    }
    wake_.notify_one();
    return result.get();
}

JobOutcome Writer::run_job(Job job) {
    std::future<JobOutcome> result;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        if (stopping_) return JobOutcome{503, ""};
        Pending pending;
        pending.job = std::move(job);
        result = pending.job_done.get_future();
        queue_.push_back(std::move(pending));
    }
    wake_.notify_one();
    return result.get();
}

void Writer::loop() {
    for (;;) {
        std::vector<Pending> batch;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping, and everything is done
            const std::size_t take = std::min(queue_.size(), options_.batch_max);
            for (std::size_t i = 0; i < take; ++i) {
                batch.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
        run_batch(batch);
    }
}

Writer::Resident& Writer::resident(const std::string& user_id) {
    auto found = accounts_.find(user_id);
    if (found == accounts_.end()) found = accounts_.emplace(user_id, Resident{unopened_account(user_id), {}, 0}).first;
    found->second.used_in_batch = batch_number_;
    return found->second;
}

void Writer::evict_idle() {
    if (accounts_.size() <= options_.resident_accounts_max) return;
    const std::size_t keep = options_.resident_accounts_max - options_.resident_accounts_max / 10;
    std::vector<std::pair<std::uint64_t, std::string>> by_age;
    by_age.reserve(accounts_.size());
    for (const auto& [user_id, held] : accounts_) {
        // What this batch touched stays: its answers are being published.
        if (held.used_in_batch != batch_number_) by_age.emplace_back(held.used_in_batch, user_id);
    }
    const std::size_t surplus = accounts_.size() - keep;
    const std::size_t evict = std::min(surplus, by_age.size());
    std::nth_element(by_age.begin(), by_age.begin() + static_cast<std::ptrdiff_t>(evict), by_age.end());
    for (std::size_t i = 0; i < evict; ++i) {
        forget_reservations(accounts_.at(by_age[i].second).account);
        forget(by_age[i].second);
    }
    std::lock_guard<std::mutex> guard(mutex_);
    stats_.evicted_accounts += evict;
}

void Writer::forget(const std::string& user_id) {
    accounts_.erase(user_id);
    std::unique_lock<std::shared_mutex> guard(hints_mutex_);
    held_users_.erase(user_id);
}

void Writer::forget_reservations(const Account& account) {
    std::unique_lock<std::shared_mutex> guard(hints_mutex_);
    for (const HeldReservation& held : account.reservations) open_owners_.erase(held.id);
}

void Writer::remember(const std::string& user_id) {
    auto found = accounts_.find(user_id);
    std::unique_lock<std::shared_mutex> guard(hints_mutex_);
    if (found == accounts_.end() || !found->second.account.exists()) {
        held_users_.erase(user_id);
        return;
    }
    held_users_.insert(user_id);
    for (const HeldReservation& held : found->second.account.reservations) open_owners_[held.id] = user_id;
}

// Puts into memory what the batch's commands need and the writer does not
// hold: prefetched accounts, or (a rerun, a hint that went stale) reads.
void Writer::load_missing(std::vector<Pending>& batch) {
    for (Pending& pending : batch) {
        if (!pending.submission) continue;
        Submission& submission = *pending.submission;
        if (submission.user_id.empty()) {
            if (const std::string* id = reservation_of(submission.command)) {
                // Open in an account the writer holds, or known to the journal.
                for (const auto& [user_id, held] : accounts_) {
                    if (held.account.find_reservation(*id) != nullptr) submission.user_id = user_id;
                }
                if (submission.user_id.empty() && submission.reservation_rows.empty()) {
                    submission.reservation_rows = store_.read_reservation_rows(*id);
                }
                if (submission.user_id.empty() && !submission.reservation_rows.empty()) {
                    submission.user_id = submission.reservation_rows.front().user_id;
                }
            }
        }
        if (submission.user_id.empty() || accounts_.count(submission.user_id) > 0) continue;
        if (submission.account_prefetched) {
            if (submission.account) accounts_[submission.user_id] = Resident{*submission.account, submission.account_receipt, batch_number_};
        } else if (auto stored = store_.read_account(submission.user_id)) {
            accounts_[submission.user_id] = Resident{codec::account_from(*stored), stored->head_receipt, batch_number_};
            continue;
        }
        submission.account_prefetched = false;
        submission.account.reset();
    }
}

// Accounts another process wrote lately are read again, locked, inside the
// batch's transaction: deciding from rows nobody else can change until the
// batch commits, the batch does not collide on them again. (An account only
// this process writes is decided from memory, with no read at all.)
void Writer::lock_contended(std::vector<Pending>& batch, Batch& attempt) {
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::string> users;
    for (const Pending& pending : batch) {
        if (!pending.submission || pending.submission->user_id.empty()) continue;
        auto found = contended_.find(pending.submission->user_id);
        if (found == contended_.end()) continue;
        if (found->second < now) {
            contended_.erase(found);
            continue;
        }
        users.push_back(pending.submission->user_id);
    }
    // One order for every process, so two batches lock without a deadlock.
    std::sort(users.begin(), users.end());
    users.erase(std::unique(users.begin(), users.end()), users.end());
    for (const std::string& user_id : users) {
        auto stored = attempt.transaction->lock_account(user_id);
        if (stored) {
            accounts_[user_id] = Resident{codec::account_from(*stored), stored->head_receipt, batch_number_};
        } else {
            accounts_.erase(user_id);
        }
    }
}

void Writer::mark_contended(const Batch& attempt) {
    const auto until = std::chrono::steady_clock::now() + contended_for;
    for (const auto& entry : attempt.before) contended_[entry.first] = until;
}

// A rerun after a conflict: another process may have answered a key
// meanwhile; its answer is the answer.
void Writer::replay_stored_keys(std::vector<Pending>& batch) {
    for (Pending& pending : batch) {
        if (!pending.submission || !pending.submission->idempotency || !pending.decided) continue;
        const IdempotencyScope& scope = *pending.submission->idempotency;
        auto stored = store_.read_answer(scope.caller, scope.key);
        if (!stored) continue;
        pending.decided = false;
        if (stored->request_hash != scope.request_hash) {
            pending.reply = LedgerReply::of_kind(ReplyKind::key_reused);
        } else if (stored->change) {
            pending.reply = reply_of_journal_row(*stored->change);
        } else {
            pending.reply = LedgerReply::of_kind(ReplyKind::stored);
            pending.reply.status = stored->status;
            pending.reply.body = stored->response;
        }
        pending.reply.replayed = true;
    }
}

namespace {

// The core decision for one command, on the account it is about.
Decision decide(Account& account, const Submission& submission, const HeldReservation* settled, const LedgerRules& rules,
                std::int64_t now) {
    return std::visit(
        [&](const auto& command) -> Decision {
            using T = std::decay_t<decltype(command)>;
            if constexpr (std::is_same_v<T, OpenCommand>) return open_account(account, rules, now);
            if constexpr (std::is_same_v<T, AuthorizeCommand>) return authorize(account, command, rules, now);
            if constexpr (std::is_same_v<T, CommitCommand>) return commit(account, command, settled, rules, now);
            if constexpr (std::is_same_v<T, ReleaseCommand>) return release(account, command, settled, rules, now);
            if constexpr (std::is_same_v<T, RecordCommand>) return record(account, command, rules, now);
            if constexpr (std::is_same_v<T, PlanChangeCommand>) return change_plan(account, command, rules, now);
        },
        submission.command);
}

Decision unknown_reservation() {
    Decision decision;
    decision.verdict = Verdict::refused;
    decision.refusal = Refusal{RefusalCode::reservation_unknown, 0, 0};
    return decision;
}

}  // namespace

void Writer::run_batch(std::vector<Pending>& batch) {
    batch_number_ += 1;
    for (Pending& pending : batch) pending.decided = true;
    bool durable = false;
    bool conflicted = false;
    Batch attempt;
    for (int run = 1; run <= options_.conflict_attempts_max && !durable; ++run) {
        attempt = Batch{};
        try {
            if (conflicted) replay_stored_keys(batch);
            load_missing(batch);
            attempt.now = now_();
            attempt.prices = prices_.book();
            attempt.rules = rules_;
            attempt.rules.prices = attempt.prices.get();
            attempt.transaction = store_.begin();
            lock_contended(batch, attempt);
            decide_all(batch, attempt);
            sign_all(attempt);
            write_all(batch, attempt);
            attempt.transaction->commit();
            attempt.transaction.reset();
            durable = true;
        } catch (const storage::StorageConflict& error) {
            attempt.transaction.reset();
            mark_contended(attempt);
            put_back(attempt);
            conflicted = true;
            std::lock_guard<std::mutex> guard(mutex_);
            stats_.conflicts += 1;
            if (run == options_.conflict_attempts_max) {
                std::cerr << "tokenmeter: batch of " << batch.size() << " refused after " << run
                          << " conflicts: " << error.what() << "\n";
            }
        } catch (const std::exception& error) {
            attempt.transaction.reset();
            put_back(attempt);
            std::cerr << "tokenmeter: ledger batch of " << batch.size() << " failed, nothing applied: " << error.what() << "\n";
            break;
        }
    }
    finish(batch, attempt, durable);
    evict_idle();
    std::lock_guard<std::mutex> guard(mutex_);
    stats_.resident_accounts = accounts_.size();
}

void Writer::decide_all(std::vector<Pending>& batch, Batch& attempt) {
    for (std::size_t i = 0; i < batch.size(); ++i) {
        Pending& pending = batch[i];
        if (!pending.submission) {
            Context context(*this, attempt, i);
            pending.job_outcome = pending.job(context);
            continue;
        }
        if (!pending.decided) continue;  // a replay found at a rerun
        Submission& submission = *pending.submission;
        pending.user_id = submission.user_id;
        pending.first_change = attempt.made.size();
        pending.change_count = 0;
        if (pending.user_id.empty()) {
            pending.decision = unknown_reservation();
            continue;
        }
        if (attempt.before.count(pending.user_id) == 0) {
            auto found = accounts_.find(pending.user_id);
            attempt.before[pending.user_id] = found == accounts_.end() ? std::nullopt : std::optional<Resident>(found->second);
        }
        Resident& resident = this->resident(pending.user_id);
        std::optional<HeldReservation> settled;
        if (const std::string* id = reservation_of(submission.command);
            id != nullptr && resident.account.find_reservation(*id) == nullptr) {
            // Settled, expired, or never this account's: the journal says
            // (read here when the request thread's hint said it was open).
            if (submission.reservation_rows.empty()) submission.reservation_rows = store_.read_reservation_rows(*id);
            settled = codec::reservation_from_rows(submission.reservation_rows, false);
            if (settled && settled->user_id != pending.user_id) settled.reset();
        }
        pending.decision = decide(resident.account, submission, settled ? &*settled : nullptr, attempt.rules, attempt.now);
        for (LedgerChange& change : pending.decision.changes) {
            attempt.made.push_back(Batch::Made{pending.user_id, std::move(change), i, {}});
        }
        pending.decision.changes.clear();
        pending.change_count = attempt.made.size() - pending.first_change;
    }
}

void Writer::sign_all(Batch& attempt) {
    std::vector<const ReceiptClaims*> claims;
    claims.reserve(attempt.made.size());
    for (const Batch::Made& made : attempt.made) claims.push_back(&made.change.claims);
    std::vector<std::string> receipts = signer_.sign(claims);
    for (std::size_t i = 0; i < attempt.made.size(); ++i) {
        attempt.made[i].receipt = std::move(receipts[i]);
        // The newest receipt of each account is the last one made for it.
        Resident& resident = accounts_.at(attempt.made[i].user_id);
        if (attempt.made[i].change.claims.seq == resident.account.seq) resident.head_receipt = attempt.made[i].receipt;
    }
}

LedgerReply Writer::reply_for(const Pending& pending, const Batch& attempt) const {
    if (!pending.decided) return pending.reply;  // a replay found at a rerun
    const Submission& submission = *pending.submission;
    const Decision& decision = pending.decision;
    LedgerReply reply;
    reply.command = command_of(submission.command);
    switch (decision.verdict) {
        case Verdict::invalid:
            reply.kind = ReplyKind::invalid;
            reply.error = decision.error;
            return reply;
        case Verdict::refused:
            reply.kind = ReplyKind::refused;
            reply.refusal = decision.refusal;
            break;
        case Verdict::done:
            reply.kind = ReplyKind::done;
            reply.reservation = decision.reservation;
            reply.estimate = decision.estimate;
            reply.exact = submission.exact;
            reply.charge = decision.charge;
            break;
    }
    if (pending.user_id.empty()) return reply;  // no account: an unknown reservation
    if (pending.change_count > 0) {
        const Batch::Made& last = attempt.made[pending.first_change + pending.change_count - 1];
        reply.claims = last.change.claims;
        reply.receipt = last.receipt;
    } else {
        const Resident& resident = accounts_.at(pending.user_id);
        reply.claims = resident.account.head;
        reply.receipt = resident.head_receipt;
    }
    return reply;
}

void Writer::write_journal(std::vector<Pending>& batch, Batch& attempt) {
    storage::LedgerBatch& transaction = *attempt.transaction;
    for (std::size_t i = 0; i < attempt.made.size(); ++i) {
        const Batch::Made& made = attempt.made[i];
        const Pending& pending = batch[made.pending];
        const LedgerChange& change = made.change;
        codec::ChangeExtras extras;
        if (change.kind == ChangeKind::authorize && pending.submission) {
            extras.estimate = pending.decision.estimate;
            extras.exact = pending.submission->exact;
        }
        storage::JournalRow row;
        row.user_id = made.user_id;
        row.seq = change.claims.seq;
        row.kind = std::string(to_string(change.kind));
        row.reservation_id = reservation_id_of(change);
        row.change = codec::change_json(change, extras);
        row.receipt = made.receipt;
        row.created_at = attempt.now;
        // The key goes on the command's own change, the last of its decision:
        // a replay renders the answer from that row.
        const bool own_change = pending.submission && pending.decision.verdict == Verdict::done &&
                                i + 1 == pending.first_change + pending.change_count;
        if (own_change && pending.submission->idempotency) {
            const IdempotencyScope& scope = *pending.submission->idempotency;
            row.caller = scope.caller;
            row.idempotency_key = scope.key;
            row.request_hash = scope.request_hash;
        }
        transaction.append(row);
        if (change.charge) transaction.insert_charge(codec::usage_event_of(*change.charge));
    }
}

// Each changed account's usage_limits rows, once per batch: the periods its
// rollovers closed, then its current period, each guarded by the seq the
// writer decided from where such a row was stored before.
void Writer::write_accounts(Batch& attempt) {
    std::vector<std::string> users;
    std::unordered_map<std::string, std::vector<const LedgerChange*>> changes;
    for (const Batch::Made& made : attempt.made) {
        if (changes.count(made.user_id) == 0) users.push_back(made.user_id);
        changes[made.user_id].push_back(&made.change);
    }
    for (const std::string& user_id : users) {
        const Account& after = accounts_.at(user_id).account;
        const std::optional<Resident>& before = attempt.before.at(user_id);
        const bool stored_before = before && before->account.exists();
        auto guard = [&](const Period& period) -> std::optional<std::int64_t> {
            if (stored_before && period.start_seconds == before->account.period.start_seconds) return before->account.seq;
            return std::nullopt;
        };
        for (const LedgerChange* change : changes[user_id]) {
            if (!change->closed) continue;
            const storage::AccountRow closed = codec::closed_row(after, *change->closed, change->claims.seq - 1);
            attempt.transaction->write_account(closed, guard(closed.period));
        }
        const storage::AccountRow current = codec::account_row(after);
        attempt.transaction->write_account(current, guard(current.period));
    }
    attempt.transaction->notify(users);
}

// A refusal changed nothing, so no guarded write proves it was decided on
// fresh state; its account's row is checked instead.
void Writer::check_unchanged(std::vector<Pending>& batch, Batch& attempt) {
    std::unordered_set<std::string> changed;
    for (const Batch::Made& made : attempt.made) changed.insert(made.user_id);
    std::unordered_set<std::string> checked;
    for (const Pending& pending : batch) {
        if (!pending.submission || !pending.decided || pending.user_id.empty()) continue;
        if (changed.count(pending.user_id) > 0 || !checked.insert(pending.user_id).second) continue;
        const std::optional<Resident>& before = attempt.before.at(pending.user_id);
        if (!before || !before->account.exists()) continue;
        attempt.transaction->check_account(pending.user_id, before->account.period.start_seconds, before->account.seq);
    }
}

void Writer::write_answers(std::vector<Pending>& batch, Batch& attempt) {
    int stored = 0;
    for (const Pending& pending : batch) {
        if (!pending.submission || !pending.submission->idempotency || !pending.decided) continue;
        if (pending.decision.verdict != Verdict::refused) continue;
        // An overflow is bad input in the end: like a 400, it leaves no trace.
        if (pending.decision.refusal.code == RefusalCode::count_overflow) continue;
        const auto [status, body] = render_(reply_for(pending, attempt));
        const IdempotencyScope& scope = *pending.submission->idempotency;
        attempt.transaction->insert_answer(
            storage::AnswerRecord{scope.caller, scope.key, scope.request_hash, status, body, attempt.now});
        stored += 1;
    }
    prune_answers(attempt, stored);
}

void Writer::prune_answers(Batch& attempt, int stored) {
    const std::int64_t before = attempt.now - options_.answer_retention_seconds;
    // A prune that deleted less than it could left nothing older than its
    // cutoff; until the clock moves on, another would find nothing.
    if (!prune_backlog_ && before <= pruned_before_) return;
    const int max = std::max(2 * stored, options_.answer_prune_min);
    const int deleted = attempt.transaction->prune_answers(before, max);
    attempt.pruned = Batch::Prune{before, max, deleted};
}

// The alerts the batch's changes raise, into the outbox in the same
// transaction; each user's first change compares with the account's head
// before the batch.
void Writer::write_alerts(Batch& attempt) {
    if (!options_.alerts.active()) return;
    alerts::RaisedAlerts raised(options_.alerts, attempt.now);
    for (const Batch::Made& made : attempt.made) {
        const std::optional<Resident>& before = attempt.before.at(made.user_id);
        raised.add(made.user_id, made.change, before && before->account.exists() ? &before->account.head : nullptr);
    }
    attempt.alerts_enqueued = raised.enqueue(*attempt.transaction);
}

void Writer::write_all(std::vector<Pending>& batch, Batch& attempt) {
    write_journal(batch, attempt);
    write_accounts(attempt);
    check_unchanged(batch, attempt);
    write_answers(batch, attempt);
    write_alerts(attempt);
}

// After a failed attempt memory must not hold what storage does not: every
// account the attempt touched is forgotten, to be read again when next needed.
void Writer::put_back(Batch& attempt) {
    for (const auto& entry : attempt.before) forget(entry.first);
}

void Writer::finish(std::vector<Pending>& batch, const Batch& attempt, bool durable) {
    std::vector<PublishedReceipt> published;
    if (durable) {
        std::unordered_map<std::string, std::size_t> newest;
        for (std::size_t i = 0; i < attempt.made.size(); ++i) newest[attempt.made[i].user_id] = i;
        for (const auto& [user_id, index] : newest) {
            published.push_back(PublishedReceipt{user_id, attempt.made[index].change.claims, attempt.made[index].receipt});
        }
        for (const auto& [user_id, before] : attempt.before) {
            if (before) forget_reservations(before->account);
            remember(user_id);
        }
        if (attempt.pruned) {
            pruned_before_ = attempt.pruned->before;
            prune_backlog_ = attempt.pruned->deleted >= attempt.pruned->max;
        }
    }
    std::vector<LedgerReply> replies;
    replies.reserve(batch.size());
    for (const Pending& pending : batch) {
        replies.push_back(pending.submission && durable ? reply_for(pending, attempt) : unavailable());
    }
    {
        std::lock_guard<std::mutex> guard(mutex_);
        stats_.batches += 1;
        stats_.jobs += batch.size();
        if (!durable) stats_.failed_batches += 1;
        for (const Pending& pending : batch) {
            if (pending.submission && pending.submission->idempotency) {
                in_flight_.erase({pending.submission->idempotency->caller, pending.submission->idempotency->key});
            }
        }
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
        if (batch[i].submission) {
            batch[i].replied.set_value(std::move(replies[i]));
        } else {
            batch[i].job_done.set_value(durable ? batch[i].job_outcome : JobOutcome{503, ""});
        }
    }
    if (!published.empty() && publish_) publish_(published);
    if (durable && attempt.alerts_enqueued > 0 && options_.alerts.enqueued) options_.alerts.enqueued();
}

}  // namespace tokenmeter::ledger
