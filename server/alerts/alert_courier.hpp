// The courier: delivers the alert outbox to the app's endpoints as
// Standard Webhooks, at least once (DESIGN.md §13).
//
// One thread of its own wakes when a batch enqueued alerts (wake()) and on a
// timer, takes the rows that are due (each leased, so another server on the
// same database does not take it meanwhile), and POSTs them on at most
// `deliveries_max` threads at a time. A 2xx marks the row delivered; any
// other answer, a refused connection or a timeout schedules the next
// attempt by the backoff schedule, until the row's retry_until, after which
// it is marked failed (given up). The courier never runs on the writer's
// thread and holds no ledger lock: the ledger only ever writes rows into the
// outbox, and a slow or dead endpoint delays nothing but its own alerts.
//
// Every attempt for one row carries the same webhook-id and the same body
// bytes; only webhook-timestamp and so the signature are the attempt's own,
// as the spec wants (receivers refuse stale timestamps). A delivery that
// succeeded but whose mark was lost (a crash between the 2xx and the write)
// is sent again with the same id: receivers deduplicate by webhook-id.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "alerts/standard_webhooks.hpp"
#include "clock.hpp"
#include "storage/store.hpp"

namespace tokenmeter::alerts {

struct CourierOptions {
    // POSTs in flight at once: a slow endpoint holds one thread, not the courier.
    int deliveries_max = 4;
    // Rows taken from the outbox per round.
    int rows_per_round_max = 32;
    // How often the outbox is looked at without a wake(): retries come due
    // on this timer, and so do alerts another server wrote.
    std::chrono::milliseconds poll_interval{1000};
    // Connect, send and read, each: an endpoint that takes longer is a
    // failed attempt, retried later.
    std::chrono::milliseconds timeout{10000};
    // Delay before attempt n + 1 after n failures; the last entry repeats.
    // Until the row's retry_until (a day after the alert by default).
    std::vector<std::int64_t> backoff_seconds = {5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800};
};

// When to try again after `attempts` failed attempts (this one included),
// at `now`: the schedule's delay, but never past `retry_until`; nothing once
// `retry_until` has come (given up).
std::optional<std::int64_t> next_attempt_at(std::int64_t attempts, std::int64_t now, std::int64_t retry_until,
                                            const std::vector<std::int64_t>& backoff_seconds);

struct CourierStats {
    std::uint64_t delivered = 0;
    std::uint64_t failed_attempts = 0;  // attempts that will be retried, and the last ones
    std::uint64_t given_up = 0;
};

// What one POST came to.
struct DeliveryResult {
    bool delivered = false;
    std::string error;  // why not: "HTTP 500", "timeout", "connection refused", …
};

class AlertCourier {
public:
    AlertCourier(storage::LedgerStore& store, WebhookSecret secret, CourierOptions options, const Clock& clock);
    ~AlertCourier();
    AlertCourier(const AlertCourier&) = delete;
    AlertCourier& operator=(const AlertCourier&) = delete;

    // Looks at the outbox now rather than at the next tick. Any thread.
    void wake();
    // Lets deliveries in flight finish (each bounded by the timeout), then
    // stops. What is still pending stays in the outbox for the next start.
    void stop();
    CourierStats stats() const;

    // One signed POST of a row (also what `tokenmeter webhooks` would use).
    DeliveryResult deliver(const storage::OutboxRow& row) const;

private:
    void loop();
    void run_round();
    void deliver_and_settle(const storage::OutboxRow& row);
    void settle(const storage::OutboxRow& row, const DeliveryResult& result);

    storage::LedgerStore& store_;
    const WebhookSecret secret_;
    const CourierOptions options_;
    const Clock& clock_;

    std::mutex mutex_;
    std::condition_variable woken_;
    bool wake_requested_ = false;
    bool stopping_ = false;

    std::atomic<std::uint64_t> delivered_{0};
    std::atomic<std::uint64_t> failed_attempts_{0};
    std::atomic<std::uint64_t> given_up_{0};

    std::thread thread_;
};

}  // namespace tokenmeter::alerts
