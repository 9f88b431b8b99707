#include "http/http_server.hpp"

#include <chrono>
#include <thread>

#include <httplib.h>
#include <sys/socket.h>

#include "http/api.hpp"

namespace tokenmeter::http {

HttpServer::HttpServer(HttpServerOptions options) : options_(options), server_(std::make_unique<httplib::Server>()) {
    const int threads = options_.threads;
    server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
    server_->set_payload_max_length(options_.body_bytes_max);
    server_->set_read_timeout(options_.read_timeout_seconds, 0);
    server_->set_write_timeout(options_.write_timeout_seconds, 0);
    server_->set_keep_alive_timeout(options_.keep_alive_seconds);
    server_->set_keep_alive_max_count(1000000);
    server_->set_tcp_nodelay(true);
    // httplib's default sets SO_REUSEPORT, which lets a second server bind
    // the same port and silently take half the connections. SO_REUSEADDR
    // alone still allows a quick restart over TIME_WAIT connections.
    server_->set_socket_options([this](socket_t socket) {
        int yes = 1;
        ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        listening_socket_ = socket;
    });
    const std::size_t header_count_max = options_.header_count_max;
    server_->set_pre_routing_handler([header_count_max](const httplib::Request& request, httplib::Response& response) {
        if (request.headers.size() > header_count_max) {
            reply_error(response, 431, "headers_too_large", "too many request headers");
            return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::bind(const std::string& host, int port) {
    const int bound = port == 0 ? server_->bind_to_any_port(host.c_str())
                                : (server_->bind_to_port(host.c_str(), port) ? port : -1);
    // Debian's httplib is a compiled library that listens with a backlog of
    // 5: a burst of new connections overflows the accept queue and clients
    // see resets. Listening again on the bound socket raises the backlog.
    if (bound > 0 && listening_socket_ >= 0) ::listen(listening_socket_, SOMAXCONN);
    return bound;
}

void HttpServer::start() {
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // stop() only stops a server that is running; one stopped before its
    // thread reached accept() would then block that join for ever (seen on a
    // loaded machine with tests that start and stop a server within
    // milliseconds). Debian's httplib 0.11 has no wait_until_ready(), so wait
    // here, bounded.
    for (int waited_ms = 0; !server_->is_running() && waited_ms < 5000; ++waited_ms) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

void HttpServer::stop() {
    if (server_->is_running()) server_->stop();
    if (thread_.joinable()) thread_.join();
}

bool HttpServer::is_running() const { return server_->is_running(); }

}  // namespace tokenmeter::http
