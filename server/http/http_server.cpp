#include "http/http_server.hpp"

#include <httplib.h>
#include <sys/resource.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "http/api.hpp"
#include "http/edge_stream.hpp"
#include "http/worker_pool.hpp"

namespace tokenmeter::http {

namespace {

// Descriptors kept for everything that is not a client: the database, its
// WAL, PostgreSQL connections, outgoing API calls, files served.
constexpr std::size_t descriptors_reserved = 256;

// The request this worker thread is answering (for hand_over_event_stream).
thread_local Connection* current_connection = nullptr;
thread_local EdgeStream* current_stream = nullptr;

// Whether the request in the connection's input is for one of `paths`: its
// request line's target, up to a query, equals one of them.
bool requests_one_of(const Connection& connection, const std::vector<std::string>& paths) {
    const std::string_view input(connection.input);
    const auto space = input.find(' ');
    if (space == std::string_view::npos) return false;
    const std::string_view target = input.substr(space + 1, 256);
    for (const std::string& path : paths) {
        if (target.size() > path.size() && target.substr(0, path.size()) == path &&
            (target[path.size()] == ' ' || target[path.size()] == '?')) {
            return true;
        }
    }
    return false;
}

// httplib's accept loop hands each new socket to a task queue; the edge's
// adoption is a few system calls, so it runs right there, on the accept thread.
class AdoptingTaskQueue final : public httplib::TaskQueue {
public:
    bool enqueue(std::function<void()> fn) override {
        fn();
        return true;
    }
    void shutdown() override {}
};

// Raises the soft descriptor limit to the hard one and returns how many
// connections fit under it.
std::size_t connections_that_fit(std::size_t wanted) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return wanted;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
        ::getrlimit(RLIMIT_NOFILE, &limit);
    }
    if (limit.rlim_cur == RLIM_INFINITY) return wanted;
    const auto available = static_cast<std::size_t>(limit.rlim_cur);
    const std::size_t fit = available > descriptors_reserved * 2 ? available - descriptors_reserved : available / 2;
    return std::max<std::size_t>(16, std::min(wanted, fit));
}

CorsDecision cors_decision(const CorsPolicy& policy, const httplib::Request& request) {
    return decide_cors(policy, request.get_header_value("Origin"), request.method,
                       request.has_header("Access-Control-Request-Method"));
}

// Adds a header, folding a Vary into the one already there.
void add_header(httplib::Response& response, const std::string& name, const std::string& value) {
    if (name == "Vary" && response.has_header("Vary")) {
        const std::string merged = response.get_header_value("Vary") + ", " + value;
        response.headers.erase("Vary");
        response.set_header("Vary", merged);
        return;
    }
    response.set_header(name, value);
}

bool has_control_character(const std::string& text) {
    return std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

}  // namespace

// httplib's Server with its connection handling replaced: a socket it
// accepts goes to the connection loop, and a worker answers one request at a
// time through process_request (which httplib exposes to subclasses).
class EdgeServer final : public httplib::Server {
public:
    explicit EdgeServer(ConnectionLoop& loop) : loop_(loop) {}

    bool answer(EdgeStream& stream, const Connection& connection, bool close, bool& closed) {
        return process_request(stream, connection.remote_addr, connection.remote_port, connection.local_addr,
                               connection.local_port, close, closed, nullptr);
    }

private:
    bool process_and_close_socket(socket_t sock) override {
        loop_.adopt(sock);
        return true;
    }

    ConnectionLoop& loop_;
};

bool flush_response() {
    if (current_stream == nullptr) return false;
    current_stream->restart_write_deadline();
    return current_stream->flush();
}

bool client_hung_up() {
    // A client that shut its sending side before the answer began still
    // reads it (HTTP/1.0 style); only a failed write tells it is gone.
    if (current_connection == nullptr || current_connection->peer_closed) return false;
    pollfd watched{current_connection->fd, POLLRDHUP, 0};
    return ::poll(&watched, 1, 0) > 0 && (watched.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

bool hand_over_event_stream(EventStream stream) {
    if (current_connection == nullptr) return false;
    current_connection->handover = std::move(stream);
    return true;
}

HttpServer::HttpServer(HttpServerOptions options) : options_(options) {
    LoopOptions loop_options;
    loop_options.head.head_bytes_max = options_.head_bytes_max;
    loop_options.head.header_count_max = options_.header_count_max;
    loop_options.head.body_bytes_max = static_cast<std::int64_t>(options_.body_bytes_max);
    loop_options.connections_max = connections_that_fit(options_.connections_max);
    loop_options.head_timeout_ms = options_.head_timeout_ms;
    loop_options.body_timeout_ms = options_.body_timeout_ms;
    loop_options.idle_timeout_ms = options_.idle_timeout_ms;
    loop_options.write_stall_ms_max = options_.write_timeout_ms;
    loop_options.stream_heartbeat_ms = options_.stream_heartbeat_ms;
    options_.connections_max = loop_options.connections_max;

    pool_ = std::make_unique<WorkerPool>(options_.workers, options_.queue_max, [this](Connection& c) { serve(c); });
    if (options_.long_request_workers > 0 && !options_.long_request_paths.empty()) {
        long_pool_ = std::make_unique<WorkerPool>(options_.long_request_workers, options_.queue_max,
                                                  [this](Connection& c) { serve(c); });
    }
    loop_ = std::make_unique<ConnectionLoop>(loop_options, [this](Connection& c) {
        if (long_pool_ && requests_one_of(c, options_.long_request_paths)) return long_pool_->offer(c);
        return pool_->offer(c);
    });
    server_ = std::make_unique<EdgeServer>(*loop_);
    server_->new_task_queue = [] { return new AdoptingTaskQueue(); };
    server_->set_payload_max_length(options_.body_bytes_max);
    // Only what httplib writes into its Keep-Alive header: the loop enforces both.
    server_->set_keep_alive_timeout(static_cast<time_t>(options_.idle_timeout_ms / 1000));
    server_->set_keep_alive_max_count(static_cast<std::size_t>(options_.keep_alive_requests_max));
    // httplib's default sets SO_REUSEPORT, which lets a second server bind
    // the same port and silently take half the connections. SO_REUSEADDR
    // alone still allows a quick restart over TIME_WAIT connections.
    server_->set_socket_options([](socket_t socket) {
        int yes = 1;
        ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    const std::size_t header_count_max = options_.header_count_max;
    server_->set_pre_routing_handler([this, header_count_max](const httplib::Request& request, httplib::Response& response) {
        // httplib adds four headers of its own (REMOTE_ADDR, ...).
        if (request.headers.size() > header_count_max + 4) {
            reply_error(response, 431, "headers_too_large", "too many request headers");
            return httplib::Server::HandlerResponse::Handled;
        }
        // The path is percent-decoded by now: "/app.js%00.html" must not
        // reach a file lookup that stops at the NUL.
        if (has_control_character(request.path)) {
            reply_error(response, 400, "bad_request", "the request path holds control characters");
            return httplib::Server::HandlerResponse::Handled;
        }
        // A CORS preflight is answered here, before rate limits: it carries
        // no credentials, costs nothing, and a browser sends one ahead of
        // its users' requests (the headers are added after routing, below).
        if (options_.cors.enabled()) {
            const CorsDecision cors = cors_decision(options_.cors, request);
            if (cors.preflight) {
                if (cors.status == 204) {
                    response.status = 204;
                } else {
                    reply_error(response, 403, "origin_not_allowed", "this origin may not call the API from a browser");
                }
                return httplib::Server::HandlerResponse::Handled;
            }
        }
        if (admission_ && admission_(request, response)) return httplib::Server::HandlerResponse::Handled;
        return httplib::Server::HandlerResponse::Unhandled;
    });
    server_->set_post_routing_handler([this](const httplib::Request& request, httplib::Response& response) {
        // Every answer is what its Content-Type says; browsers must not guess.
        response.set_header("X-Content-Type-Options", "nosniff");
        // CORS for every answer httplib writes: replies, errors, 429s, and the
        // head of an event stream (the loop writes only the events after it).
        if (options_.cors.enabled()) {
            for (const auto& [name, value] : cors_decision(options_.cors, request).headers) add_header(response, name, value);
        }
    });
}

HttpServer::~HttpServer() { stop(); }

httplib::Server& HttpServer::routes() { return *server_; }

int HttpServer::bind(const std::string& host, int port) {
    if (port == 0) return server_->bind_to_any_port(host);
    return server_->bind_to_port(host, port) ? port : -1;
}

void HttpServer::start() {
    loop_->start();
    accept_thread_ = std::thread([this] { server_->listen_after_bind(); });
    // stop() only stops a server that is running; one stopped before its
    // thread reached accept() would block that join for ever.
    server_->wait_until_ready();
}

void HttpServer::stop() {
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
    if (server_->is_running() || accept_thread_.joinable()) server_->stop();
    if (accept_thread_.joinable()) accept_thread_.join();
    loop_->stop(options_.stop_grace_ms);
    pool_->stop();
    if (long_pool_) long_pool_->stop();
}

bool HttpServer::is_running() const { return server_->is_running(); }

void HttpServer::set_admission(Admission admission) { admission_ = std::move(admission); }

void HttpServer::notify_streams(const std::vector<std::string>& keys) { loop_->notify(keys); }

const LoopStats& HttpServer::stats() const { return loop_->stats(); }
std::size_t HttpServer::queued() const { return pool_->queued() + (long_pool_ ? long_pool_->queued() : 0); }
std::size_t HttpServer::busy_workers() const { return pool_->busy() + (long_pool_ ? long_pool_->busy() : 0); }

// Answers the one request the loop found complete in the connection's input,
// then gives the connection back: to keep alive, to close, or to stream.
void HttpServer::serve(Connection& connection) {
    EdgeStream stream(connection, options_.write_timeout_ms);
    const bool close = stopping_ || connection.requests + 1 >= options_.keep_alive_requests_max ||
                       connection.head.wants_close || connection.peer_closed;
    bool closed = false;
    current_connection = &connection;
    current_stream = &stream;
    const bool answered = server_->answer(stream, connection, close, closed);
    current_connection = nullptr;
    current_stream = nullptr;
    connection.requests += 1;
    const bool sent = stream.flush();
    stream.release_consumed();
    if (connection.handover) {
        if (sent) {  // the loop ends it at once, cleanly, when stopping
            loop_->stream(connection);
            return;
        }
        connection.handover.reset();
        loop_->finish(connection);
        return;
    }
    if (!answered || !sent || close || closed) {
        loop_->finish(connection);
    } else {
        loop_->resume(connection);
    }
}

}  // namespace tokenmeter::http
