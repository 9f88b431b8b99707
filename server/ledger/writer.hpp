// Group commit: ledger changes from many request threads go to one writer
// thread, which applies a batch of them in one transaction and acknowledges
// each only after that transaction is durable.
//
// A durable commit costs an fsync, so one transaction per request caps
// throughput at the disk's fsync rate; batching amortizes it. Every job runs
// inside a savepoint, so one failing job does not undo the others; a failed
// commit fails every job of the batch (503) and acknowledges none.
//
// Idempotency is enforced here, in the same transaction as the change: the
// stored response of a key is returned on replay, a different request under
// the same key is 422, and a repeat while the first is queued or running is
// 409 (tracked in memory, per process). Records are kept for the retention
// (at least 24 hours, DESIGN.md §5) and then pruned by the batches
// themselves, as fast as they are made (see WriterOptions).
#pragma once

#include <climits>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "storage/store.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter::ledger {

// What a durable answer changed, for metrics (absent on replays).
struct Metering {
    int authorization = 0;  // 1 granted, -1 refused, 0 not an authorization
    std::string model;
    std::string operation;
    std::int64_t charged_tokens = 0;
};

// The newest receipt of a user a job changed, for live streams once the batch
// is durable. It is rendered as a snapshot only if someone watches the user
// then, so a change nobody watches costs no rendering.
struct PublishedReceipt {
    std::string user_id;
    ReceiptClaims claims;
    std::string receipt;
};

// What a job answers: an HTTP status and a JSON body, plus the receipts of
// the users it changed.
struct Outcome {
    Outcome() = default;
    Outcome(int status_code, std::string json_body, bool remember_reply = true,
            std::vector<PublishedReceipt> published_receipts = {})
        : status(status_code),
          body(std::move(json_body)),
          remember(remember_reply),
          published(std::move(published_receipts)) {}

    int status = 200;
    std::string body;
    // Whether a replay of the same idempotency key must return this answer.
    // Bad input (400) leaves no trace, so it is not stored.
    bool remember = true;
    std::vector<PublishedReceipt> published;
    Metering metering;
};

struct IdempotencyScope {
    std::string caller;
    std::string key;
    std::string request_hash;
};

using Job = std::function<Outcome(storage::LedgerTransaction&)>;

// Called after each durable batch with the receipts it published.
using PublishFn = std::function<void(const std::vector<PublishedReceipt>&)>;

struct WriterOptions {
    std::size_t batch_max = 256;  // jobs per transaction
    std::int64_t idempotency_retention_seconds = 48 * 3600;
    // Every batch deletes up to twice as many records past the retention as
    // it stored, and at least this many. Deleting faster than records are
    // made drains any backlog at any write rate (a fixed quota per minute
    // lets the table grow without bound once writes outpace it), and a chunk
    // bounded by the batch's size never stalls the batch's jobs for long.
    int idempotency_prune_min = 128;
    // Runs of a batch that collides with another process (StorageConflict)
    // before its jobs fail with 503.
    int conflict_attempts_max = 8;
};

struct WriterStats {
    std::uint64_t batches = 0;
    std::uint64_t jobs = 0;
    std::uint64_t failed_batches = 0;
    std::uint64_t conflicts = 0;  // batch runs rolled back by a conflict and run again
};

class Writer {
public:
    Writer(storage::LedgerStore& store, WriterOptions options, std::function<std::int64_t()> now, PublishFn publish);
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    // Runs the job in the next batch and waits until it is durable (or failed).
    Outcome run(Job job, std::optional<IdempotencyScope> idempotency = std::nullopt);

    // Finishes queued jobs, then stops the thread. Later run() calls get 503.
    void stop();

    WriterStats stats() const;

private:
    struct Pending {
        Job job;
        std::optional<IdempotencyScope> idempotency;
        std::promise<Outcome> done;
    };

    // One prune of idempotency records inside a batch's transaction.
    struct Prune {
        std::int64_t before = 0;  // records created before this were due
        int max = 0;
        int deleted = 0;
    };

    void loop();
    void run_batch(std::vector<Pending>& batch);
    std::optional<Prune> prune_idempotency(storage::LedgerTransaction& transaction, int stored);
    Outcome run_one(storage::LedgerTransaction& transaction, Pending& pending);
    bool claim(const IdempotencyScope& scope);
    void unclaim(const IdempotencyScope& scope);

    storage::LedgerStore& store_;
    WriterOptions options_;
    std::function<std::int64_t()> now_;
    PublishFn publish_;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Pending> queue_;
    std::set<std::pair<std::string, std::string>> in_flight_;
    bool stopping_ = false;
    WriterStats stats_;
    // The writer thread's own: the cutoff of the newest durable prune, and
    // whether that prune may have left records older than it (it deleted as
    // many as it was allowed to).
    std::int64_t pruned_before_ = INT64_MIN;
    bool prune_backlog_ = true;
    std::thread thread_;
};

// The JSON error body every API error uses.
std::string error_body(std::string_view code, std::string_view message);

}  // namespace tokenmeter::ledger
