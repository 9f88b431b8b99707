#include "http/http_server.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include "http/api.hpp"

namespace tokenmeter::http {

namespace {

constexpr int listen_backlog = 1024;  // capped by net.core.somaxconn

}  // namespace

HttpServer::HttpServer(HttpServerOptions options) : options_(options), server_(std::make_unique<httplib::Server>()) {
    const int threads = options_.threads;
    server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
    server_->set_payload_max_length(options_.body_bytes_max);
    server_->set_read_timeout(options_.read_timeout_seconds, 0);
    server_->set_write_timeout(options_.write_timeout_seconds, 0);
    server_->set_keep_alive_timeout(options_.keep_alive_seconds);
    server_->set_keep_alive_max_count(1000000);
    server_->set_tcp_nodelay(true);
    server_->set_socket_options([this](int socket) {
        httplib::default_socket_options(socket);
        listen_socket_ = socket;
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
    // Debian's cpp-httplib is a compiled library that listens with a backlog
    // of 5: a burst of new connections (a client pool opening, 25+ test
    // threads at once) overflows it, the kernel drops handshakes and clients
    // see resets a second later. listen() again on the bound socket widens it.
    if (bound > 0 && listen_socket_ >= 0) ::listen(listen_socket_, listen_backlog);
    return bound;
}

void HttpServer::start() {
    thread_ = std::thread([this] { server_->listen_after_bind(); });
}

void HttpServer::stop() {
    if (server_->is_running()) server_->stop();
    if (thread_.joinable()) thread_.join();
}

bool HttpServer::is_running() const { return server_->is_running(); }

}  // namespace tokenmeter::http
