#include "ledger/writer.hpp"

#include <algorithm>
#include <iostream>

#include <nlohmann/json.hpp>

namespace tokenmeter::ledger {

namespace {

Outcome storage_unavailable() {
    return Outcome{503, error_body("storage_unavailable", "the ledger's storage is unavailable; nothing was changed"),
                   false, {}};
}

// How many idempotency records a batch's jobs stored: every keyed job whose
// answer is remembered (replays, reused keys and bad input store none).
template <typename Pendings>
int records_stored(const Pendings& batch, const std::vector<Outcome>& outcomes) {
    int stored = 0;
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        if (batch[i].idempotency && outcomes[i].remember) stored += 1;
    }
    return stored;
}

}  // namespace

std::string error_body(std::string_view code, std::string_view message) {
    return nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump();
}

Writer::Writer(storage::LedgerStore& store, WriterOptions options, std::function<std::int64_t()> now, PublishFn publish)
    : store_(store), options_(options), now_(std::move(now)), publish_(std::move(publish)) {
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
    return in_flight_.emplace(scope.caller, scope.key).second;
}

void Writer::unclaim(const IdempotencyScope& scope) { in_flight_.erase({scope.caller, scope.key}); }

Outcome Writer::run(Job job, std::optional<IdempotencyScope> idempotency) {
    std::future<Outcome> result;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        if (stopping_) return storage_unavailable();
        if (idempotency && !claim(*idempotency)) {
            return Outcome{409, error_body("idempotency_in_flight",
                                           "a request with this Idempotency-Key is still being processed"),
                           false, {}};
        }
        queue_.push_back(Pending{std::move(job), std::move(idempotency), {}});
        result = queue_.back().done.get_future();
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

Outcome Writer::run_one(storage::LedgerTransaction& transaction, Pending& pending) {
    transaction.savepoint();
    try {
        if (pending.idempotency) {
            const IdempotencyScope& scope = *pending.idempotency;
            if (auto stored = transaction.load_idempotency(scope.caller, scope.key)) {
                transaction.release_savepoint();
                if (stored->request_hash != scope.request_hash) {
                    return Outcome{422, error_body("idempotency_key_reused",
                                                   "this Idempotency-Key was used with a different request"),
                                   false, {}};
                }
                return Outcome{stored->status, stored->response, false, {}};
            }
        }
        Outcome outcome = pending.job(transaction);
        if (pending.idempotency && outcome.remember) {
            const IdempotencyScope& scope = *pending.idempotency;
            transaction.insert_idempotency({scope.caller, scope.key, scope.request_hash, outcome.status, outcome.body, now_()});
        }
        if (outcome.remember || outcome.status < 400) {
            transaction.release_savepoint();
        } else {
            // Bad input leaves no trace: undo anything the job wrote.
            transaction.rollback_to_savepoint();
            outcome.published.clear();
        }
        return outcome;
    } catch (const storage::StorageError&) {
        throw;  // the whole batch fails
    } catch (const std::exception& error) {
        std::cerr << "tokenmeter: ledger job failed: " << error.what() << "\n";
        transaction.rollback_to_savepoint();
        return Outcome{500, error_body("internal_error", "the request failed; nothing was changed"), false, {}};
    }
}

std::optional<Writer::Prune> Writer::prune_idempotency(storage::LedgerTransaction& transaction, int stored) {
    const std::int64_t before = now_() - options_.idempotency_retention_seconds;
    // A prune that deleted less than it could left nothing created before
    // its cutoff; until the clock moves the cutoff on, another finds nothing.
    // So an idle or slow writer prunes at most once per second.
    if (!prune_backlog_ && before <= pruned_before_) return std::nullopt;
    const int max = std::max(2 * stored, options_.idempotency_prune_min);
    return Prune{before, max, transaction.prune_idempotency(before, max)};
}

void Writer::run_batch(std::vector<Pending>& batch) {
    std::vector<Outcome> outcomes;
    outcomes.reserve(batch.size());
    bool durable = false;
    std::optional<Prune> pruned;
    // A conflict with another server process on the same database (deadlock,
    // serialization failure, a row it inserted first) rolled the whole
    // transaction back, so running every job again applies each exactly once.
    for (int attempt = 1; attempt <= options_.conflict_attempts_max && !durable; ++attempt) {
        outcomes.clear();
        try {
            auto transaction = store_.begin();
            for (Pending& pending : batch) outcomes.push_back(run_one(*transaction, pending));
            pruned = prune_idempotency(*transaction, records_stored(batch, outcomes));
            transaction->commit();
            durable = true;
        } catch (const storage::StorageConflict& error) {
            std::lock_guard<std::mutex> guard(mutex_);
            stats_.conflicts += 1;
            if (attempt == options_.conflict_attempts_max) {
                std::cerr << "tokenmeter: batch of " << batch.size() << " refused after " << attempt
                          << " conflicts: " << error.what() << "\n";
            }
        } catch (const storage::StorageError& error) {
            std::cerr << "tokenmeter: storage failure, batch of " << batch.size() << " refused: " << error.what() << "\n";
            break;
        }
    }
    // Only a durable prune says what is left; a rolled-back one changed nothing.
    if (durable && pruned) {
        pruned_before_ = pruned->before;
        prune_backlog_ = pruned->deleted >= pruned->max;
    }
    std::vector<PublishedReceipt> published;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        stats_.batches += 1;
        stats_.jobs += batch.size();
        if (!durable) stats_.failed_batches += 1;
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (batch[i].idempotency) unclaim(*batch[i].idempotency);
        }
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
        if (!durable) {
            batch[i].done.set_value(storage_unavailable());
            continue;
        }
        for (auto& item : outcomes[i].published) published.push_back(std::move(item));
        outcomes[i].published.clear();
        batch[i].done.set_value(std::move(outcomes[i]));
    }
    if (durable && publish_ && !published.empty()) publish_(published);
}

}  // namespace tokenmeter::ledger
