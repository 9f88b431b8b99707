// What every local stand-in (tools/lemonsqueezy-standin, tools/openai-standin)
// needs to be a server: bound on a loopback port (0: a free one), served on
// the calling thread (the executable) or a background thread (in-process
// tests), stopped from any thread; and, for the executables, their command
// line (options, each with a value, and --help), the listen address read from
// --listen and the line tests wait for ("NAME: listening on
// http://HOST:PORT (…)", tests/support/spawn_listening.mjs).
#pragma once

#include <httplib.h>

#include <cstdint>
#include <functional>
#include <map>
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

// What an option does with its value: nothing returned when it takes it,
// else what the option takes ("takes a whole number from 0 to 9"), for the
// message refusing the value.
using OptionHandler = std::function<std::string(const std::string& value)>;
using OptionTable = std::map<std::string, OptionHandler, std::less<>>;

// Reads an executable's arguments: --help (or -h) prints `usage` on stdout;
// every other argument is an option of `options` followed by its value,
// which goes to the option's handler. Nothing when every option is taken;
// else the exit code: 0 after --help, 2 after printing on stderr
// "NAME: " what is wrong (an unknown option, an option without its value, a
// value its handler refuses), then `usage`.
std::optional<int> read_options(int argc, char** argv, const OptionTable& options, std::string_view name,
                                std::string_view usage);

// The handler of an option whose value is any text, stored in `target`.
inline OptionHandler text_option(std::string& target) {
    return [&target](const std::string& value) {
        target = value;
        return std::string();
    };
}

// A decimal whole number from `min` to `max` (digits only); nothing otherwise.
std::optional<std::int64_t> whole_number(std::string_view text, std::int64_t min, std::int64_t max);

// The handler of an option whose value is a whole number from `min` to
// `max` (within the range of `Number`), stored in `target`.
template <typename Number>
OptionHandler number_option(Number& target, std::int64_t min, std::int64_t max) {
    return [&target, min, max](const std::string& value) -> std::string {
        const auto number = whole_number(value, min, max);
        if (!number) return "takes a whole number from " + std::to_string(min) + " to " + std::to_string(max);
        target = static_cast<Number>(*number);
        return {};
    };
}

// For an executable whose stand-in is bound: prints the listening line with
// `details`, serves until SIGINT or SIGTERM (which call `stop`), and returns
// the exit code.
int serve_until_signal(const std::string& name, const std::string& base_url, const std::string& details,
                       const std::function<bool()>& serve, std::function<void()> stop);

}  // namespace tokenmeter::standin_support
