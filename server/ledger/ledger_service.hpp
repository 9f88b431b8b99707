// LedgerService: what the HTTP API calls. Mutations become writer jobs (group
// commit, idempotency); reads go straight to the store, falling back to the
// writer only when a lazy change is due, so a read never shows a balance
// without its receipt.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "clock.hpp"
#include "ledger/account_changes.hpp"
#include "ledger/operations.hpp"
#include "ledger/writer.hpp"
#include "storage/store.hpp"

namespace tokenmeter::ledger {

class LedgerService {
public:
    LedgerService(storage::LedgerStore& store, const Clock& clock, LedgerConfig config, WriterOptions writer_options,
                  PublishFn publish);
    ~LedgerService();

    Outcome authorize(AuthorizeRequest request, std::optional<IdempotencyScope> idempotency);
    Outcome commit(CommitRequest request, std::optional<IdempotencyScope> idempotency);
    Outcome release(ReleaseRequest request, std::optional<IdempotencyScope> idempotency);
    Outcome record(RecordRequest request, std::optional<IdempotencyScope> idempotency);

    // The user's current snapshot JSON.
    Outcome snapshot(const std::string& user_id);
    // Usage events newest first; `before_id` 0 starts at the newest.
    Outcome events(const std::string& user_id, std::int64_t before_id, int limit);
    // Totals of the current period grouped by day, model or operation.
    Outcome summary(const std::string& user_id, storage::SummaryGrouping grouping);

    // Runs any job in the writer (billing plan changes use this).
    Outcome run(std::function<Outcome(AccountChanges&)> job, std::optional<IdempotencyScope> idempotency = std::nullopt);

    // Stops taking work once queued work is durable.
    void stop();

    const LedgerConfig& config() const { return config_; }
    WriterStats writer_stats() const { return writer_.stats(); }
    storage::LedgerStore& store() { return store_; }

private:
    storage::LedgerStore& store_;
    const Clock& clock_;
    LedgerConfig config_;
    Writer writer_;
};

}  // namespace tokenmeter::ledger
