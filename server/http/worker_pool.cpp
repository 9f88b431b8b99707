#include "http/worker_pool.hpp"

#include "tokenmeter/assert.hpp"

namespace tokenmeter::http {

WorkerPool::WorkerPool(std::size_t threads, std::size_t queue_max, Serve serve)
    : serve_(std::move(serve)), queue_max_(queue_max) {
    TM_ASSERT(threads > 0);
    threads_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

WorkerPool::~WorkerPool() { stop(); }

bool WorkerPool::offer(Connection& connection) {
    {
        std::lock_guard<std::mutex> guard(mutex_);
        if (stopping_ || queue_.size() >= queue_max_) return false;
        queue_.push_back(&connection);
    }
    ready_.notify_one();
    return true;
}

void WorkerPool::stop() {
    {
        std::lock_guard<std::mutex> guard(mutex_);
        if (stopping_ && threads_.empty()) return;
        stopping_ = true;
    }
    ready_.notify_all();
    for (auto& thread : threads_) {
        if (thread.joinable()) thread.join();
    }
    threads_.clear();
}

std::size_t WorkerPool::queued() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return queue_.size();
}

std::size_t WorkerPool::busy() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return busy_;
}

void WorkerPool::run() {
    for (;;) {
        Connection* connection = nullptr;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            // Stopping still drains the queue: a queued request was accepted.
            if (queue_.empty()) return;
            connection = queue_.front();
            queue_.pop_front();
            busy_ += 1;
        }
        serve_(*connection);
        std::lock_guard<std::mutex> guard(mutex_);
        busy_ -= 1;
    }
}

}  // namespace tokenmeter::http
