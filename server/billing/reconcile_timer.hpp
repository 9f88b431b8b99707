// Reconcile on a timer inside `serve` (--reconcile-every): webhooks that
// LemonSqueezy dropped for good (it gives up after three retries) are healed
// within one interval without an operator running `tokenmeter reconcile`.
//
// One thread of its own; a pass runs the same BillingService::reconcile the
// command runs, and its one-line summary goes to the log. A pass never
// overlaps the next, and stop() interrupts the wait at once (a pass already
// running finishes first: its ledger jobs are short and each is atomic).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <ostream>
#include <thread>

#include "billing/billing_service.hpp"

namespace tokenmeter::billing {

class ReconcileTimer {
public:
    ReconcileTimer(BillingService& billing, std::chrono::seconds every, std::ostream& log);
    ~ReconcileTimer();
    ReconcileTimer(const ReconcileTimer&) = delete;
    ReconcileTimer& operator=(const ReconcileTimer&) = delete;

    void stop();
    std::int64_t passes() const;

private:
    void run();

    BillingService& billing_;
    const std::chrono::seconds every_;
    std::ostream& log_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::int64_t passes_ = 0;
    std::thread thread_;
};

}  // namespace tokenmeter::billing
