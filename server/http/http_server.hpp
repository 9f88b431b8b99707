// The HTTP listener: cpp-httplib's routing behind the project's own edge.
//
// cpp-httplib gives each connection a thread for its whole life, so a few
// hundred idle, slow or streaming clients take every thread and the server
// stops answering anyone. Here httplib only accepts and routes: the
// connection loop (connection_loop.hpp) holds every connection between
// requests and reads request heads itself, a fixed pool of workers answers
// complete requests from a bounded queue, and live event streams are written
// by the loop. Started and stopped explicitly (tests bind port 0).
//
// The defaults, and why (each is configuration, see config.hpp):
// - 64 workers: a worker is busy only while a handler runs (a ledger request
//   waits a few milliseconds for its group commit); 64 keeps two cores busy
//   and answers 64 ledger requests at once.
// - a queue of 1,024 complete requests; past it, 503 with Retry-After.
// - 8,192 connections (or what the descriptor limit allows): an idle
//   connection costs a descriptor and about a kilobyte; at the limit the
//   longest-idle ones make room, so idle clients never lock anyone out.
// - heads within 10 s of their first byte, bodies at 64 KiB/s at least,
//   idle keep-alive 5 s, a response that the client does not read for 30 s
//   is dropped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "http/connection.hpp"
#include "http/cors.hpp"
#include "http/connection_loop.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace tokenmeter::http {

struct HttpServerOptions {
    // Request bodies beyond this are refused with 413 before they are read.
    std::size_t body_bytes_max = 4 << 20;
    // Request headers beyond this count are refused with 431.
    std::size_t header_count_max = 64;
    std::size_t head_bytes_max = 16 * 1024;
    std::size_t workers = 64;
    std::size_t queue_max = 1024;
    std::size_t connections_max = 8192;
    std::int64_t head_timeout_ms = 10'000;
    std::int64_t body_timeout_ms = 10'000;
    std::int64_t idle_timeout_ms = 5'000;
    std::int64_t write_timeout_ms = 30'000;
    std::int64_t stream_heartbeat_ms = 15'000;
    // Requests answered on one connection before it is closed.
    int keep_alive_requests_max = 1000;
    // How long stop() waits for in-flight requests and stream ends.
    std::int64_t stop_grace_ms = 5'000;
    // Origins whose pages may call the API (cors.hpp); none: CORS is off.
    CorsPolicy cors;
    // Requests to these paths (the gateway's) are answered by a pool of
    // their own: a model's reply may stream for minutes, and must not hold
    // the workers that answer the ledger. 0 workers: the one pool answers all.
    std::vector<std::string> long_request_paths;
    std::size_t long_request_workers = 0;
};

// Hands the connection of the request being answered on this thread to the
// connection loop as an event stream, once the handler's response headers
// and first event are written. False when called off an edge worker.
bool hand_over_event_stream(EventStream stream);

// For a handler that streams its answer as it is made (the gateway): sends
// what the response has written so far, with a fresh write deadline. False
// when the client is gone or too slow.
bool flush_response();
// Whether the client of the request being answered on this thread has
// closed its side (it hung up mid-answer).
bool client_hung_up();

class EdgeServer;

class HttpServer {
public:
    explicit HttpServer(HttpServerOptions options);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    httplib::Server& routes();

    // Binds host:port (port 0 picks a free one); returns the port or -1.
    int bind(const std::string& host, int port);
    // Serves on background threads until stop().
    void start();
    // Stops accepting; in-flight requests finish and streams end cleanly
    // before this returns.
    void stop();
    bool is_running() const;

    // Runs before routing, after the edge's own checks; true when it answered.
    // Set before start().
    using Admission = std::function<bool(const httplib::Request&, httplib::Response&)>;
    void set_admission(Admission admission);

    // New events may exist for these stream keys (user ids).
    void notify_streams(const std::vector<std::string>& keys);

    const LoopStats& stats() const;
    std::size_t queued() const;
    std::size_t busy_workers() const;
    const HttpServerOptions& options() const { return options_; }

private:
    void serve(Connection& connection);

    HttpServerOptions options_;
    std::unique_ptr<EdgeServer> server_;
    std::unique_ptr<ConnectionLoop> loop_;
    std::unique_ptr<class WorkerPool> pool_;
    std::unique_ptr<class WorkerPool> long_pool_;  // long_request_paths
    std::thread accept_thread_;
    Admission admission_;
    std::atomic<bool> stopping_{false};
    bool stopped_ = false;
};

}  // namespace tokenmeter::http
