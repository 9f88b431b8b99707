// The alerts a batch of ledger changes raises, as outbox rows for the
// batch's own transaction (DESIGN.md §13: the outbox is written with the
// change it reports, so an alert is never lost nor sent for a change that
// rolled back). The writer feeds it each change in order; the rules are
// the core's (tokenmeter/alerts.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "storage/store.hpp"
#include "tokenmeter/alerts.hpp"

namespace tokenmeter::alerts {

// Where alerts go and which to raise: configuration.
struct OutboxSettings {
    std::vector<std::string> urls;  // endpoints; none: no alert is written at all
    AlertRules rules;
    // A delivery is retried with backoff until this long after the alert was written.
    std::int64_t retry_for_seconds = 24 * 3600;
    // Called, off the ledger's critical path, after a batch that enqueued
    // alerts is durable: wakes the courier.
    std::function<void()> enqueued;

    bool active() const { return !urls.empty(); }
};

class RaisedAlerts {
public:
    RaisedAlerts(const OutboxSettings& settings, std::int64_t now) : settings_(settings), now_(now) {}

    // The alerts of one change. The previous claims are the user's previous
    // change in this batch, or else `head_before_batch`: the account's
    // newest receipt before the batch (null when the batch opens it).
    void add(const std::string& user_id, const LedgerChange& change, const ReceiptClaims* head_before_batch);

    // Writes one row per alert and endpoint into the transaction; how many.
    std::size_t enqueue(storage::LedgerBatch& transaction) const;

private:
    const OutboxSettings& settings_;
    std::int64_t now_;
    std::unordered_map<std::string, ReceiptClaims> previous_;
    std::vector<Alert> alerts_;
};

}  // namespace tokenmeter::alerts
