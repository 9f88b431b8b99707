// A `tokenmeter serve` child process for tests that need a real process:
// crashes (kill -9), signals, and restarts on the same database.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

namespace tokenmeter::test {

class ServerProcess {
public:
    // Starts `tokenmeter serve --config FILE --listen 127.0.0.1:0` (plus any
    // extra arguments) and waits until it says where it listens.
    explicit ServerProcess(const std::string& config_file, std::vector<std::string> extra = {},
                           std::vector<std::string> environment = {}) {
        int out[2];
        if (::pipe(out) != 0) throw std::runtime_error("pipe");
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(out[1], STDOUT_FILENO);
            ::close(out[0]);
            ::close(out[1]);
            for (const std::string& entry : environment) ::putenv(const_cast<char*>(entry.c_str()));
            std::vector<std::string> args = {TM_TOKENMETER_BINARY, "serve", "--config", config_file, "--listen", "127.0.0.1:0"};
            args.insert(args.end(), extra.begin(), extra.end());
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(out[1]);
        output_ = out[0];
        port_ = read_port();
    }

    ~ServerProcess() {
        if (pid_ > 0) kill_hard();
        if (output_ >= 0) ::close(output_);
    }

    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    int port() const { return port_; }
    pid_t pid() const { return pid_; }

    // Both do nothing once the process is gone (kill(-1) would signal every
    // process this user may signal).
    void kill_hard() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

    // SIGTERM, then the exit status (or -1 if it did not exit in time).
    int terminate(std::chrono::seconds patience = std::chrono::seconds(20)) {
        if (pid_ <= 0) return -1;
        ::kill(pid_, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + patience;
        int status = 0;
        while (std::chrono::steady_clock::now() < deadline) {
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return -1;
    }

private:
    int read_port() {
        std::string line;
        char c = 0;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < deadline && ::read(output_, &c, 1) == 1) {
            if (c != '\n') {
                line += c;
                continue;
            }
            const auto at = line.find("listening on http://127.0.0.1:");
            if (at != std::string::npos) return std::stoi(line.substr(at + 30));
            line.clear();
        }
        throw std::runtime_error("tokenmeter serve did not start");
    }

    pid_t pid_ = -1;
    int output_ = -1;
    int port_ = 0;
};

}  // namespace tokenmeter::test
