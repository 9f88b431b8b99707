// The HTTP listener: a cpp-httplib server with the project's limits and a
// thread that runs it, started and stopped explicitly (tests bind port 0).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace tokenmeter::http {

struct HttpServerOptions {
    // Request bodies beyond this are refused with 413 before they are read.
    std::size_t body_bytes_max = 4 << 20;
    // Request headers beyond this count are refused with 431.
    std::size_t header_count_max = 64;
    // Worker threads: each open connection (and each live stream) holds one.
    int threads = 128;
    int read_timeout_seconds = 10;
    int write_timeout_seconds = 10;
    // httplib checks for shutdown only between requests, so an idle
    // keep-alive connection delays a graceful stop by up to this long.
    int keep_alive_seconds = 5;
};

class HttpServer {
public:
    explicit HttpServer(HttpServerOptions options);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    httplib::Server& routes() { return *server_; }

    // Binds host:port (port 0 picks a free one); returns the port or -1.
    int bind(const std::string& host, int port);
    // Serves on a background thread until stop().
    void start();
    // Stops accepting; in-flight requests finish before this returns.
    void stop();
    bool is_running() const;

private:
    HttpServerOptions options_;
    std::unique_ptr<httplib::Server> server_;
    std::thread thread_;
    int listening_socket_ = -1;
};

}  // namespace tokenmeter::http
