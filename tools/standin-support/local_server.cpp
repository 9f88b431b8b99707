#include "local_server.hpp"

#include <csignal>
#include <iostream>

namespace tokenmeter::standin_support {

namespace {

// The stop of the one stand-in an executable runs, for its signal handler.
std::function<void()> stop_on_signal;

void on_signal(int) {
    if (stop_on_signal) stop_on_signal();
}

}  // namespace

int LocalServer::bind(const std::string& host, int port, const std::function<void(httplib::Server&)>& install) {
    server_ = std::make_unique<httplib::Server>();
    install(*server_);
    const int bound = port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
    if (bound <= 0) return -1;
    base_url_ = "http://" + host + ":" + std::to_string(bound);
    return bound;
}

bool LocalServer::serve() { return server_ != nullptr && server_->listen_after_bind(); }

void LocalServer::serve_in_background() {
    thread_ = std::thread([this] { serve(); });
}

void LocalServer::stop() {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
}

std::optional<std::pair<std::string, int>> parse_listen(std::string_view listen) {
    const auto colon = listen.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    const std::string_view digits = listen.substr(colon + 1);
    if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string_view::npos) {
        return std::nullopt;
    }
    const int port = std::stoi(std::string(digits));
    if (port > 65535) return std::nullopt;
    return std::make_pair(std::string(listen.substr(0, colon)), port);
}

std::optional<int> read_options(int argc, char** argv, const OptionTable& options, std::string_view name,
                                std::string_view usage) {
    const auto refuse = [&](const std::string& why) {
        std::cerr << name << ": " << why << "\n" << usage;
        return 2;
    };
    for (int i = 1; i < argc; ++i) {
        const std::string option = argv[i];
        if (option == "--help" || option == "-h") {
            std::cout << usage;
            return 0;
        }
        const auto handler = options.find(option);
        if (handler == options.end()) return refuse("unknown option " + option);
        if (i + 1 >= argc) return refuse(option + " needs a value");
        const std::string value = argv[++i];
        const std::string takes = handler->second(value);
        if (!takes.empty()) return refuse(option + " " + takes + ", not \"" + value + "\"");
    }
    return std::nullopt;
}

std::optional<std::int64_t> whole_number(std::string_view text, std::int64_t min, std::int64_t max) {
    // 18 digits cannot overflow an int64_t; more is out of any range asked for.
    if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string_view::npos) {
        return std::nullopt;
    }
    const std::int64_t number = std::stoll(std::string(text));
    if (number < min || number > max) return std::nullopt;
    return number;
}

int serve_until_signal(const std::string& name, const std::string& base_url, const std::string& details,
                       const std::function<bool()>& serve, std::function<void()> stop) {
    stop_on_signal = std::move(stop);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    // The port it got (port 0 asks for a free one): tests read it from this
    // line, like tokenmeter serve's, rather than guess a free port first.
    std::cout << name << ": listening on " << base_url << " (" << details << ")" << std::endl;
    return serve() ? 0 : 1;
}

}  // namespace tokenmeter::standin_support
