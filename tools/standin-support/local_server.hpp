// What every local stand-in (tools/lemonsqueezy-standin, tools/openai-standin)
// needs to be a server: bound on a loopback port (0: a free one), served on
// the calling thread (the executable) or a background thread (in-process
// tests), stopped from any thread; and, for the executables, the listen
// address read from --listen and the line tests wait for
// ("NAME: listening on http://HOST:PORT (…)", tests/support/spawn_listening.mjs).
#pragma once

#include <httplib.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace tokenmeter::standin_support {

class LocalServer {
public:
    LocalServer() = default;
    ~LocalServer() { stop(); }
    LocalServer(const LocalServer&) = delete;
    LocalServer& operator=(const LocalServer&) = delete;

    // A new server, given its routes and settings by `install`, bound; the
    // port, or -1.
    int bind(const std::string& host, int port, const std::function<void(httplib::Server&)>& install);
    // Serves on the calling thread until stop().
    bool serve();
    // Serves on a thread of its own until stop().
    void serve_in_background();
    void stop();
    // http://HOST:PORT once bound.
    const std::string& base_url() const { return base_url_; }

private:
    std::unique_ptr<httplib::Server> server_;
    std::thread thread_;
    std::string base_url_;
};

// "HOST:PORT" (PORT 0-65535) as a host and a port.
std::optional<std::pair<std::string, int>> parse_listen(std::string_view listen);

// For an executable whose stand-in is bound: prints the listening line with
// `details`, serves until SIGINT or SIGTERM (which call `stop`), and returns
// the exit code.
int serve_until_signal(const std::string& name, const std::string& base_url, const std::string& details,
                       const std::function<bool()>& serve, std::function<void()> stop);

}  // namespace tokenmeter::standin_support
