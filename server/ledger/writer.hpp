// The writer: one thread that runs the ledger's state machine over the
// accounts it holds in memory, in order, and makes each batch of decisions
// durable as one journal transaction (group commit).
//
// A batch goes through four steps:
//   decide  each command against the account in memory (the core's pure
//           state machine): no I/O, microseconds per command;
//   sign    every receipt the batch made, on the signer's threads;
//   write   journal rows, charges, each changed account's usage_limits row
//           once, refusals' answers, in one transaction, and commit;
//   answer  each request, only once the batch is durable, and publish.
// Accounts come into memory from the request threads, which read what the
// writer does not hold before they submit (prefetch); the writer reads
// storage itself only for what a prefetch could not know (a conflict, a
// reservation it never saw), which is rare.
//
// An account row is written only where its stored seq is the one the writer
// decided from, so a writer whose memory is stale (another process on the
// same PostgreSQL database changed the account, or a prefetch read an old
// copy) fails its batch with a conflict: the writer puts every account the
// batch touched back as it was, forgets them, reloads them, and decides the
// batch again. A batch that fails for any other reason is answered 503 and
// the accounts are put back: memory never holds what storage does not.
#pragma once

#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "alerts/raised_alerts.hpp"
#include "ledger/live_price_book.hpp"
#include "ledger/receipt_signer.hpp"
#include "ledger/replies.hpp"
#include "storage/store.hpp"
#include "tokenmeter/state_machine.hpp"

namespace tokenmeter::ledger {

// Brings a user's account up to date and answers with its snapshot.
struct OpenCommand {
    std::string user_id;
};

using LedgerCommand =
    std::variant<OpenCommand, AuthorizeCommand, CommitCommand, ReleaseCommand, RecordCommand, PlanChangeCommand>;

// A command and what the request thread already knows for it.
struct Submission {
    LedgerCommand command;
    std::optional<IdempotencyScope> idempotency;
    bool exact = true;  // authorize: whether the input count was exact
    // The account's user; empty for a commit or release whose reservation
    // no one knows (answered reservation_unknown).
    std::string user_id;
    // Read from storage because the writer did not hold the account (absent:
    // the writer holds it, or it does not exist yet).
    std::optional<Account> account;
    std::string account_receipt;  // the prefetched account's newest receipt
    bool account_prefetched = false;
    // Commit and release: the journal rows of the reservation, when the
    // writer did not hold it open.
    std::vector<storage::JournalRow> reservation_rows;
};

// A billing job: reads and writes billing's tables in the batch's
// transaction and may change plans there (billing/billing_service.cpp).
class JobContext {
public:
    virtual ~JobContext() = default;
    virtual storage::BillingTransaction& billing() = 0;
    virtual std::int64_t now() const = 0;
    virtual const LedgerRules& rules() const = 0;
    // The user's account, brought up to date (its lazy changes are part of the job).
    virtual const Account& account(const std::string& user_id) = 0;
    virtual void change_plan(const PlanChangeCommand& command) = 0;
    // Adds or takes back purchased tokens; false when refused (a count
    // past the ledger's bounds), which changes nothing but the lazy changes.
    virtual bool credit(const CreditCommand& command) = 0;
};

struct JobOutcome {
    int status = 200;
    std::string body;
};

using Job = std::function<JobOutcome(JobContext&)>;

struct WriterOptions {
    std::size_t batch_max = 256;  // commands per transaction
    std::size_t signer_threads = 2;
    // Refusals' answers are kept for their keys this long (at least 24 h,
    // DESIGN.md §5); changes keep their keys in the journal for good.
    std::int64_t answer_retention_seconds = 48 * 3600;
    // Every batch deletes up to twice as many answers past the retention as
    // it stored, and at least this many, so deletion outpaces any rate.
    int answer_prune_min = 128;
    // Runs of a batch that collides with another process before its
    // commands fail with 503.
    int conflict_attempts_max = 8;
    // Accounts the writer keeps in memory. Memory is a cache of storage
    // (every account can be read again, open reservations included), so
    // past this the least recently used are let go, down to 90 %, and a
    // server's memory stays bounded however many users it has seen.
    std::size_t resident_accounts_max = 200000;
    // Alerts to the app, written to the outbox in each batch's transaction.
    alerts::OutboxSettings alerts;
};

struct WriterStats {
    std::uint64_t batches = 0;
    std::uint64_t jobs = 0;  // commands and billing jobs run
    std::uint64_t failed_batches = 0;
    std::uint64_t conflicts = 0;  // batch runs rolled back by a conflict and run again
    std::uint64_t resident_accounts = 0;  // accounts held in memory after the last batch
    std::uint64_t evicted_accounts = 0;   // accounts let go to keep within resident_accounts_max
};

class Writer {
public:
    // `rules` without prices: each batch takes the book `prices` holds then.
    Writer(storage::LedgerStore& store, LedgerRules rules, const LivePriceBook& prices, const SigningKey& key,
           WriterOptions options, std::function<std::int64_t()> now, RenderFn render, PublishFn publish);
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    // Decides the command in the next batch; returns once that batch is
    // durable (or failed). A keyed submission must hold its claim.
    LedgerReply submit(Submission submission);
    JobOutcome run_job(Job job);

    // The in-flight set of idempotency keys (DESIGN §5's 409): a request
    // claims its key before it looks for a stored answer; the writer lets go
    // once the answer is durable.
    bool claim(const IdempotencyScope& scope);
    void unclaim(const IdempotencyScope& scope);

    // Hints for the request threads' prefetch, safe from any thread: whether
    // the writer holds the user's account, and whose open reservation an id is.
    bool holds(const std::string& user_id) const;
    std::optional<std::string> owner_of(const std::string& reservation_id) const;

    // Finishes queued work, then stops the thread. Later calls get 503.
    void stop();
    WriterStats stats() const;

private:
    struct Pending;
    struct Resident {
        Account account;
        std::string head_receipt;  // the signed receipt of account.seq
        std::uint64_t used_in_batch = 0;  // the last batch that touched it (recency for eviction)
    };
    class Batch;
    class Context;

    void loop();
    void run_batch(std::vector<Pending>& batch);
    void load_missing(std::vector<Pending>& batch);
    void replay_stored_keys(std::vector<Pending>& batch);
    void lock_contended(std::vector<Pending>& batch, Batch& attempt);
    void mark_contended(const Batch& attempt);
    void decide_all(std::vector<Pending>& batch, Batch& attempt);
    void sign_all(Batch& attempt);
    void write_all(std::vector<Pending>& batch, Batch& attempt);
    void write_journal(std::vector<Pending>& batch, Batch& attempt);
    void write_accounts(Batch& attempt);
    void check_unchanged(std::vector<Pending>& batch, Batch& attempt);
    void write_answers(std::vector<Pending>& batch, Batch& attempt);
    void write_alerts(Batch& attempt);
    void prune_answers(Batch& attempt, int stored);
    void put_back(Batch& attempt);
    void finish(std::vector<Pending>& batch, const Batch& attempt, bool durable);
    LedgerReply reply_for(const Pending& pending, const Batch& attempt) const;
    Resident& resident(const std::string& user_id);
    void forget(const std::string& user_id);
    void remember(const std::string& user_id);
    void forget_reservations(const Account& account);
    // Lets go of the least recently used accounts past resident_accounts_max.
    void evict_idle();

    storage::LedgerStore& store_;
    const LedgerRules rules_;
    const LivePriceBook& prices_;
    WriterOptions options_;
    std::function<std::int64_t()> now_;
    RenderFn render_;
    PublishFn publish_;
    ReceiptSigner signer_;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Pending> queue_;
    std::set<std::pair<std::string, std::string>> in_flight_;
    bool stopping_ = false;
    WriterStats stats_;

    // The writer thread's own.
    std::unordered_map<std::string, Resident> accounts_;
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> contended_;
    std::int64_t pruned_before_ = INT64_MIN;
    std::uint64_t batch_number_ = 0;
    bool prune_backlog_ = true;

    // The hints (holds, owner_of), kept by the writer thread after each batch.
    mutable std::shared_mutex hints_mutex_;
    std::unordered_set<std::string> held_users_;
    std::unordered_map<std::string, std::string> open_owners_;

    std::thread thread_;
};

}  // namespace tokenmeter::ledger
