// The threads that answer requests, behind a bounded queue. A request reaches
// a worker only once its head (and a small body) has fully arrived, so a slow
// or idle client never holds one; a full queue is refused at once (503) by
// the caller of offer() instead of growing without bound.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "http/connection.hpp"

namespace tokenmeter::http {

class WorkerPool {
public:
    using Serve = std::function<void(Connection&)>;

    WorkerPool(std::size_t threads, std::size_t queue_max, Serve serve);
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // Queues a connection whose request is ready; false when the queue is full.
    bool offer(Connection& connection);
    // Answers everything queued, then joins the threads.
    void stop();

    std::size_t queued() const;
    std::size_t busy() const;

private:
    void run();

    Serve serve_;
    const std::size_t queue_max_;
    mutable std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<Connection*> queue_;
    std::size_t busy_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace tokenmeter::http
