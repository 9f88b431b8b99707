#include "alerts/raised_alerts.hpp"

namespace tokenmeter::alerts {

void RaisedAlerts::add(const std::string& user_id, const LedgerChange& change, const ReceiptClaims* head_before_batch) {
    auto previous = previous_.find(user_id);
    const ReceiptClaims* before = previous != previous_.end() ? &previous->second : head_before_batch;
    for (Alert& alert : alerts_of(before, change, settings_.rules)) alerts_.push_back(std::move(alert));
    previous_[user_id] = change.claims;
}

std::size_t RaisedAlerts::enqueue(storage::LedgerBatch& transaction) const {
    std::size_t rows = 0;
    for (const Alert& alert : alerts_) {
        for (const std::string& url : settings_.urls) {
            storage::OutboxRow row;
            row.alert_id = alert.id;
            row.url = url;
            row.type = std::string(to_string(alert.kind));
            row.user_id = alert.user_id;
            row.body = alert.body;
            row.next_attempt_at = now_;
            row.retry_until = now_ + settings_.retry_for_seconds;
            row.created_at = now_;
            transaction.enqueue_alert(row);
            rows += 1;
        }
    }
    return rows;
}

}  // namespace tokenmeter::alerts
