// A bounded pool of PostgreSQL connections shared by the writer and the
// readers. A connection found broken (the server restarted, the network
// failed) is dropped instead of returned, so the next lease reconnects: the
// store recovers by itself once the database is back.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/postgres/pg_connection.hpp"

namespace tokenmeter::storage::postgres {

class ConnectionPool;

class Lease {
public:
    Lease(ConnectionPool& pool, std::unique_ptr<Connection> connection)
        : pool_(&pool), connection_(std::move(connection)) {}
    ~Lease();
    Lease(Lease&& other) noexcept : pool_(other.pool_), connection_(std::move(other.connection_)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;

    Connection& operator*() { return *connection_; }
    Connection* operator->() { return connection_.get(); }

private:
    ConnectionPool* pool_;
    std::unique_ptr<Connection> connection_;
};

class ConnectionPool {
public:
    ConnectionPool(std::string url, int connections_max, std::chrono::milliseconds wait_max);

    // An idle connection, or a new one while fewer than connections_max are
    // open; waits up to wait_max for one to come back. Throws StorageError if
    // none can be had (the database is down, or the pool stays exhausted).
    Lease acquire();
    // An idle connection that fails its first statement may be one the server
    // dropped while it sat in the pool: this empties the idle list so the
    // next acquire() connects afresh.
    void drop_idle();

private:
    friend class Lease;
    void give_back(std::unique_ptr<Connection> connection);

    const std::string url_;
    const int connections_max_;
    const std::chrono::milliseconds wait_max_;
    std::mutex mutex_;
    std::condition_variable returned_;
    std::vector<std::unique_ptr<Connection>> idle_;
    int open_ = 0;  // leased plus idle
};

}  // namespace tokenmeter::storage::postgres
