#include "storage/postgres/pg_pool.hpp"

namespace tokenmeter::storage::postgres {

Lease::~Lease() {
    if (connection_) pool_->give_back(std::move(connection_));
}

ConnectionPool::ConnectionPool(std::string url, int connections_max, std::chrono::milliseconds wait_max)
    : url_(std::move(url)), connections_max_(connections_max), wait_max_(wait_max) {}

Lease ConnectionPool::acquire() {
    {
        std::unique_lock<std::mutex> lock(mutex_);
        const bool available = returned_.wait_for(lock, wait_max_, [this] {
            return !idle_.empty() || open_ < connections_max_;
        });
        if (!available) throw StorageError("all " + std::to_string(connections_max_) + " PostgreSQL connections are busy");
        if (!idle_.empty()) {
            auto connection = std::move(idle_.back());
            idle_.pop_back();
            return Lease(*this, std::move(connection));
        }
        open_ += 1;  // reserved before connecting, outside the lock
    }
    try {
        return Lease(*this, std::make_unique<Connection>(url_));
    } catch (...) {
        std::lock_guard<std::mutex> guard(mutex_);
        open_ -= 1;
        returned_.notify_one();
        throw;
    }
}

void ConnectionPool::drop_idle() {
    std::lock_guard<std::mutex> guard(mutex_);
    open_ -= static_cast<int>(idle_.size());
    idle_.clear();
    returned_.notify_all();
}

void ConnectionPool::give_back(std::unique_ptr<Connection> connection) {
    std::lock_guard<std::mutex> guard(mutex_);
    if (connection->broken()) {
        open_ -= 1;
    } else {
        idle_.push_back(std::move(connection));
    }
    returned_.notify_one();
}

}  // namespace tokenmeter::storage::postgres
