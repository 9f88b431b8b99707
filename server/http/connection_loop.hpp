// The connection loop: one thread and epoll hold every client connection
// between requests. It reads request heads (and small bodies) as they trickle
// in, hands only complete requests to the worker pool, keeps idle keep-alive
// connections and live event streams without a thread each, and enforces the
// edge's deadlines and caps. So a client that is slow, idle, or hostile costs
// a descriptor and a few kilobytes, never a worker.
//
// Every Connection is created, changed and destroyed on the loop's thread,
// except while a worker borrows it for one request. Other threads talk to the
// loop through its inbox (a short mutex-guarded list and an eventfd).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/connection.hpp"
#include "http/request_head.hpp"

namespace tokenmeter::http {

struct LoopOptions {
    HeadLimits head;
    // The loop reads every request body before a worker sees the request,
    // so no worker ever waits on a slow client. Each connection may hold a
    // body this large; larger ones (up to head.body_bytes_max) draw on a
    // shared budget, and a request that finds it spent is answered 503.
    std::size_t body_small_bytes_max = 64 * 1024;
    std::size_t body_budget_bytes_max = 64 << 20;
    // Open connections; beyond it the longest-idle one makes room.
    std::size_t connections_max = 8192;
    // A request head must arrive within this of its first byte.
    std::int64_t head_timeout_ms = 10'000;
    // A body must start within this, and every byte after earns the time it
    // takes at body_rate_min: a client that trickles is cut off.
    std::int64_t body_timeout_ms = 10'000;
    std::int64_t body_rate_min_bytes_per_second = 64 * 1024;
    // An idle keep-alive connection is closed after this.
    std::int64_t idle_timeout_ms = 5'000;
    // A client that reads nothing of what is sent to it for this long is dropped.
    std::int64_t write_stall_ms_max = 30'000;
    std::int64_t stream_heartbeat_ms = 15'000;
    int retry_after_seconds = 1;
};

struct LoopStats {
    std::atomic<std::int64_t> connections{0};
    std::atomic<std::int64_t> streams{0};
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> overloaded{0};     // 503: the worker queue was full
    std::atomic<std::uint64_t> evicted{0};        // closed to make room under connections_max
    std::atomic<std::uint64_t> timed_out{0};      // a head or body that did not arrive in time
    std::atomic<std::uint64_t> refused_heads{0};  // 4xx/5xx answered by the loop from the head alone
};

class ConnectionLoop {
public:
    // Offers a connection with a complete request to a worker; false when
    // no worker can take it (the loop answers 503).
    using Dispatch = std::function<bool(Connection&)>;

    ConnectionLoop(LoopOptions options, Dispatch dispatch);
    ~ConnectionLoop();
    ConnectionLoop(const ConnectionLoop&) = delete;
    ConnectionLoop& operator=(const ConnectionLoop&) = delete;

    void start();
    // Closes what is idle or half-read, ends every event stream cleanly,
    // and returns once the connections that workers still hold are back
    // and closed, or `grace_ms` has passed.
    void stop(std::int64_t grace_ms);

    // From any thread:
    void adopt(int fd);                   // a new connection (accept thread)
    void resume(Connection& connection);  // a worker answered; keep it alive
    void finish(Connection& connection);  // a worker answered; close it
    void stream(Connection& connection);  // a worker's handler handed it over as an event stream
    // New events may exist for these stream keys (user ids).
    void notify(const std::vector<std::string>& keys);

    const LoopStats& stats() const { return stats_; }
    std::int64_t time_ms() const;

private:
    enum class Message : std::uint8_t { adopt, resume, finish, stream };
    struct Inbox {
        std::vector<std::pair<Message, Connection*>> messages;
        std::vector<int> adopted;
        std::set<std::string> keys;
    };

    void run();
    void post(Message message, Connection* connection);
    void drain_inbox();
    void handle_event(Connection& connection, std::uint32_t events);

    void take(int fd);
    void make_room();
    std::size_t input_cap(const Connection& connection) const;
    std::size_t chunked_raw_bytes_max() const;
    std::size_t closing_drop_bytes_max() const;
    void read_input(Connection& connection);
    bool drop_input(Connection& connection);
    void advance(Connection& connection);
    void dispatch(Connection& connection);
    void begin_body(Connection& connection);
    void read_body(Connection& connection);
    bool take_budget(Connection& connection, std::size_t bytes);
    void return_budget(Connection& connection);
    void begin_stream(Connection& connection);
    void pump(Connection& connection);
    void end_stream(Connection& connection);
    void reply(Connection& connection, int status, std::string_view code, std::string_view message);
    void send_output(Connection& connection);
    void linger(Connection& connection);
    void close(Connection& connection);
    void rearm(Connection& connection);
    void sweep(std::int64_t now);
    void expire(Connection& connection, std::int64_t now);

    LoopOptions options_;
    Dispatch dispatch_;
    LoopStats stats_;
    int epoll_ = -1;
    int wake_ = -1;
    std::thread thread_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> done_{false};
    std::int64_t stop_deadline_ms_ = 0;

    std::mutex inbox_mutex_;
    Inbox inbox_;

    // Loop thread only.
    std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
    std::multimap<std::string, Connection*, std::less<>> streams_by_key_;
    std::vector<std::unique_ptr<Connection>> closed_;  // freed after the round that closed them
    std::int64_t next_sweep_ms_ = 0;
    std::size_t body_budget_used_ = 0;
};

}  // namespace tokenmeter::http
