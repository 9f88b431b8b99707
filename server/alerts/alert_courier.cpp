#include "alerts/alert_courier.hpp"

#include <httplib.h>

#include <algorithm>
#include <iostream>

#include "tokenmeter/assert.hpp"

namespace tokenmeter::alerts {

namespace {

// Delivery answers are not read beyond their status; a receiver's error page
// kept in last_error is cut short.
constexpr std::size_t answer_excerpt_bytes_max = 200;

std::int64_t ceil_seconds(std::chrono::milliseconds duration) {
    return (duration.count() + 999) / 1000;
}

}  // namespace

std::optional<std::int64_t> next_attempt_at(std::int64_t attempts, std::int64_t now, std::int64_t retry_until,
                                            const std::vector<std::int64_t>& backoff_seconds) {
    TM_ASSERT(attempts >= 1);
    TM_ASSERT(!backoff_seconds.empty());
    if (now >= retry_until) return std::nullopt;
    const std::size_t step = std::min(static_cast<std::size_t>(attempts - 1), backoff_seconds.size() - 1);
    // The last attempt lands on retry_until itself rather than past it.
    return std::min(now + backoff_seconds[step], retry_until);
}

AlertCourier::AlertCourier(storage::LedgerStore& store, WebhookSecret secret, CourierOptions options, const Clock& clock)
    : store_(store), secret_(std::move(secret)), options_(std::move(options)), clock_(clock) {
    TM_ASSERT(options_.deliveries_max >= 1);
    TM_ASSERT(options_.rows_per_round_max >= 1);
    TM_ASSERT(!options_.backoff_seconds.empty());
    thread_ = std::thread([this] { loop(); });
}

AlertCourier::~AlertCourier() { stop(); }

void AlertCourier::wake() {
    {
        std::lock_guard<std::mutex> guard(mutex_);
        wake_requested_ = true;
    }
    woken_.notify_one();
}

void AlertCourier::stop() {
    {
        std::lock_guard<std::mutex> guard(mutex_);
        stopping_ = true;
    }
    woken_.notify_one();
    if (thread_.joinable()) thread_.join();
}

CourierStats AlertCourier::stats() const {
    return CourierStats{delivered_.load(), failed_attempts_.load(), given_up_.load()};
}

void AlertCourier::loop() {
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            woken_.wait_for(lock, options_.poll_interval, [this] { return stopping_ || wake_requested_; });
            if (stopping_) return;
            wake_requested_ = false;
        }
        try {
            run_round();
        } catch (const std::exception& error) {
            // The database is away: the rows stay due, the next tick tries again.
            std::cerr << "tokenmeter: webhook outbox unavailable: " << error.what() << "\n";
        }
    }
}

// Takes what is due and delivers it, `deliveries_max` at a time, round after
// round while full rounds suggest more is due.
void AlertCourier::run_round() {
    const std::int64_t per_thread = (options_.rows_per_round_max + options_.deliveries_max - 1) / options_.deliveries_max;
    // Long enough for the whole round: connect, send and read of each row a
    // thread delivers, one after another, and a margin.
    const std::int64_t lease_seconds = per_thread * 3 * ceil_seconds(options_.timeout) + 30;
    for (;;) {
        const std::int64_t now = clock_.now_seconds();
        const std::vector<storage::OutboxRow> rows =
            store_.take_due_alerts(now, now + lease_seconds, options_.rows_per_round_max);
        if (rows.empty()) return;
        std::atomic<std::size_t> next{0};
        auto deliver_some = [&] {
            for (std::size_t i = next++; i < rows.size(); i = next++) deliver_and_settle(rows[i]);
        };
        std::vector<std::thread> workers;
        const std::size_t threads = std::min(rows.size(), static_cast<std::size_t>(options_.deliveries_max));
        for (std::size_t i = 1; i < threads; ++i) workers.emplace_back(deliver_some);
        deliver_some();
        for (std::thread& worker : workers) worker.join();
        if (rows.size() < static_cast<std::size_t>(options_.rows_per_round_max)) return;
        std::lock_guard<std::mutex> guard(mutex_);
        if (stopping_) return;
    }
}

DeliveryResult AlertCourier::deliver(const storage::OutboxRow& row) const {
    auto endpoint = parse_endpoint_url(row.url);
    if (!endpoint) return DeliveryResult{false, endpoint.error().message};
    httplib::Client client(endpoint->origin);
    client.set_connection_timeout(options_.timeout);
    client.set_read_timeout(options_.timeout);
    client.set_write_timeout(options_.timeout);
    const std::int64_t timestamp = clock_.now_seconds();
    const httplib::Headers headers = {{"webhook-id", row.alert_id},
                                      {"webhook-timestamp", std::to_string(timestamp)},
                                      {"webhook-signature", secret_.sign(row.alert_id, timestamp, row.body)},
                                      {"User-Agent", "tokenmeter-webhooks"}};
    const auto started = std::chrono::steady_clock::now();
    const httplib::Result result = client.Post(endpoint->path, headers, row.body, "application/json");
    if (!result) {
        const bool waited_out = std::chrono::steady_clock::now() - started >= options_.timeout;
        const std::string what = waited_out ? "timeout" : httplib::to_string(result.error());
        return DeliveryResult{false, what};
    }
    if (result->status >= 200 && result->status < 300) return DeliveryResult{true, {}};
    return DeliveryResult{false, "HTTP " + std::to_string(result->status) + " " +
                                     result->body.substr(0, answer_excerpt_bytes_max)};
}

// On a delivery thread: nothing may escape it. A row whose mark could not be
// written stays leased, and is delivered again when the lease ends (at
// least once; the receiver deduplicates by webhook-id).
void AlertCourier::deliver_and_settle(const storage::OutboxRow& row) {
    try {
        settle(row, deliver(row));
    } catch (const std::exception& error) {
        std::cerr << "tokenmeter: webhook " << row.alert_id << " not marked (retried after its lease): " << error.what()
                  << "\n";
    }
}

void AlertCourier::settle(const storage::OutboxRow& row, const DeliveryResult& result) {
    const std::int64_t now = clock_.now_seconds();
    if (result.delivered) {
        store_.mark_alert_delivered(row.id, now);
        delivered_ += 1;
        return;
    }
    const auto next = next_attempt_at(row.attempts + 1, now, row.retry_until, options_.backoff_seconds);
    store_.mark_alert_failed(row.id, next, result.error);
    failed_attempts_ += 1;
    if (!next) {
        given_up_ += 1;
        std::cerr << "tokenmeter: webhook " << row.alert_id << " to " << row.url << " given up after "
                  << row.attempts + 1 << " attempts: " << result.error << "\n";
    }
}

}  // namespace tokenmeter::alerts
