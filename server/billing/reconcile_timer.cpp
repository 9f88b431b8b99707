#include "billing/reconcile_timer.hpp"


namespace tokenmeter::billing {

ReconcileTimer::ReconcileTimer(BillingService& billing, std::chrono::seconds every, std::ostream& log)
    : billing_(billing), every_(every), log_(log), thread_([this] { run(); }) {}

ReconcileTimer::~ReconcileTimer() { stop(); }

void ReconcileTimer::stop() {
    {
        std::lock_guard<std::mutex> guard(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

std::int64_t ReconcileTimer::passes() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return passes_;
}

void ReconcileTimer::run() {
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            if (wake_.wait_for(lock, every_, [this] { return stopping_; })) return;
        }
        const ReconcileSummary summary = billing_.reconcile();
        log_ << "tokenmeter: reconcile: " << summary.listed << " subscription(s), " << summary.orders << " order(s), "
             << summary.invoices << " refunded payment(s) listed; " << summary.repaired << " plan(s) repaired, "
             << summary.orders_applied << " order(s) and " << summary.invoices_applied << " refund(s) applied";
        if (summary.failure) log_ << "; stopped early: " << summary.failure->reason << ": " << summary.failure->message;
        log_ << std::endl;
        for (const std::string& note : summary.notes) log_ << "tokenmeter: reconcile:   " << note << "\n";
        std::lock_guard<std::mutex> guard(mutex_);
        passes_ += 1;
    }
}

}  // namespace tokenmeter::billing
