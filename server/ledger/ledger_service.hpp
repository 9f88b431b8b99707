// LedgerService: what the HTTP API and billing call. It runs on the request
// threads: it settles idempotency (a key in flight, a stored answer), reads
// from storage what the writer does not hold (prefetch), and hands the
// command to the writer, which decides it in memory and answers once it is
// durable. Reads go straight to storage, and to the writer only when a lazy
// change is due, so a read never shows a balance without its receipt.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clock.hpp"
#include "ledger/replies.hpp"
#include "ledger/writer.hpp"
#include "storage/store.hpp"

namespace tokenmeter::ledger {

// What every ledger change needs and nothing changes.
struct LedgerConfig {
    const LivePriceBook* prices = nullptr;
    const SigningKey* signing_key = nullptr;
    std::int64_t reservation_ttl_seconds = 600;
    // A commit up to this long after the reservation's expiry is charged late.
    std::int64_t late_commit_grace_seconds = 24 * 3600;
    std::string default_plan = "free";
};

struct EventsPage {
    std::vector<storage::UsageEvent> events;
    std::optional<std::int64_t> next_before;  // the cursor of the next page, if any
};

struct UsageSummary {
    ReceiptClaims claims;  // of the snapshot the summary's period comes from
    std::vector<storage::UsageTotal> totals;
};

class LedgerService {
public:
    LedgerService(storage::LedgerStore& store, const Clock& clock, LedgerConfig config, WriterOptions writer_options,
                  RenderFn render, PublishFn publish);
    ~LedgerService();

    LedgerReply authorize(AuthorizeCommand command, bool exact, std::optional<IdempotencyScope> idempotency);
    LedgerReply commit(CommitCommand command, std::optional<IdempotencyScope> idempotency);
    LedgerReply release(ReleaseCommand command, std::optional<IdempotencyScope> idempotency);
    LedgerReply record(RecordCommand command, std::optional<IdempotencyScope> idempotency);

    // The user's current snapshot (opening the account on first use).
    LedgerReply snapshot(const std::string& user_id);
    // Usage events newest first; `before_id` 0 starts at the newest. Nothing
    // when storage is unavailable.
    std::optional<EventsPage> events(const std::string& user_id, std::int64_t before_id, int limit);
    // Totals of the current period's charges; nothing when storage is unavailable.
    std::optional<UsageSummary> summary(const std::string& user_id, storage::SummaryGrouping grouping);

    // Runs a billing job in the writer.
    JobOutcome run_job(Job job);

    // Stops taking work once queued work is durable.
    void stop();

    const LedgerConfig& config() const { return config_; }
    // The rules without prices (the writer takes the book per batch).
    const LedgerRules& rules() const { return rules_; }
    const LivePriceBook& prices() const { return *config_.prices; }
    WriterStats writer_stats() const { return writer_.stats(); }
    storage::LedgerStore& store() { return store_; }

private:
    LedgerReply run(Submission submission);
    LedgerReply replay(const storage::StoredAnswer& answer);
    void prefetch(Submission& submission, const std::string* reservation_id);

    storage::LedgerStore& store_;
    const Clock& clock_;
    LedgerConfig config_;
    LedgerRules rules_;
    Writer writer_;
};

}  // namespace tokenmeter::ledger
