// The httplib::Stream a worker answers one request through. The connection
// loop has already received the whole request (head and body), so reads come
// from that buffer and never wait on the socket: a slow client cannot hold a
// worker by sending slowly. Writes are gathered and sent in few system calls,
// and a client that does not read its answer within the write timeout loses
// the connection, not the worker.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <string>

#include "http/connection.hpp"

namespace tokenmeter::http {

// Monotonic milliseconds, the clock of every edge deadline.
std::int64_t monotonic_ms();

class EdgeStream final : public httplib::Stream {
public:
    // write_timeout_ms: how long the response may take to send, counted
    // from its first byte.
    EdgeStream(Connection& connection, std::int64_t write_timeout_ms);

    bool is_readable() const override;
    bool is_writable() const override;
    ssize_t read(char* ptr, size_t size) override;
    ssize_t write(const char* ptr, size_t size) override;
    void get_remote_ip_and_port(std::string& ip, int& port) const override;
    void get_local_ip_and_port(std::string& ip, int& port) const override;
    socket_t socket() const override;

    // Sends what is gathered; false when the client is gone or too slow.
    bool flush();
    // Starts the write deadline again: an answer that streams for long
    // (the gateway's) must keep the client reading, not finish in one
    // deadline.
    void restart_write_deadline() { write_deadline_ms_ = 0; }
    // Drops the consumed prefix of the connection's input, keeping any
    // pipelined request after it.
    void release_consumed();
    bool failed() const { return failed_; }

private:
    // Waits until the socket is ready for `events` or the deadline passes.
    bool wait(short events, std::int64_t deadline_ms) const;
    std::int64_t write_deadline();

    Connection& connection_;
    std::size_t consumed_ = 0;
    std::string output_;
    std::int64_t write_timeout_ms_;
    std::int64_t write_deadline_ms_ = 0;
    bool failed_ = false;
};

}  // namespace tokenmeter::http
