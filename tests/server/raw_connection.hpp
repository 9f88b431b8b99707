// A raw TCP client for tests that must misbehave the way an attacker does:
// send half a head, a byte at a time, a body that never ends, more headers
// than anyone should; and read exactly what the server answered.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tokenmeter::test {

class RawConnection {
public:
    explicit RawConnection(int port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw std::runtime_error("socket");
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(port));
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
            ::close(fd_);
            throw std::runtime_error("connect");
        }
    }
    ~RawConnection() {
        if (fd_ >= 0) ::close(fd_);
    }
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;
    RawConnection(RawConnection&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

    int fd() const { return fd_; }

    // Sends everything, or stops at the first error (the server closed).
    // Waits at most `patience` for room in the socket buffer.
    bool send_all(std::string_view data, std::chrono::milliseconds patience = std::chrono::seconds(5)) {
        std::size_t sent = 0;
        while (sent < data.size()) {
            pollfd ready{fd_, POLLOUT, 0};
            if (::poll(&ready, 1, static_cast<int>(patience.count())) <= 0) return false;
            const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n <= 0) return false;
            sent += static_cast<std::size_t>(n);
        }
        return true;
    }

    // Whatever arrives until `done(received)` says enough, the peer closes,
    // or `timeout` passes.
    template <typename Done>
    std::string read_until(Done done, std::chrono::milliseconds timeout) {
        std::string received;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        char buffer[16384];
        while (!done(received)) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            pollfd ready{fd_, POLLIN, 0};
            if (::poll(&ready, 1, static_cast<int>(left.count())) <= 0) break;
            const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
            if (n <= 0) {
                closed_ = true;
                break;
            }
            received.append(buffer, static_cast<std::size_t>(n));
        }
        return received;
    }

    // One complete response (headers, and a Content-Length body).
    std::string read_response(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        return read_until([](const std::string& r) { return response_complete(r); }, timeout);
    }

    // Waits for the server to close; true when it did within `timeout`.
    bool closed_by_server(std::chrono::milliseconds timeout) {
        read_until([](const std::string&) { return false; }, timeout);
        return closed_;
    }

    static bool response_complete(const std::string& received) {
        const auto end = received.find("\r\n\r\n");
        if (end == std::string::npos) return false;
        const auto length_at = received.find("Content-Length: ");
        if (length_at == std::string::npos || length_at > end) return true;
        const auto length = std::stoul(received.substr(length_at + 16));
        return received.size() >= end + 4 + length;
    }

private:
    int fd_ = -1;
    bool closed_ = false;
};

// The status code of a raw response, or 0.
inline int status_of(const std::string& response) {
    if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
    return std::stoi(response.substr(9, 3));
}

// The value of a response header, or "".
inline std::string header_of(const std::string& response, const std::string& name) {
    const auto end = response.find("\r\n\r\n");
    const auto at = response.find("\r\n" + name + ": ");
    if (at == std::string::npos || at > end) return "";
    const auto start = at + name.size() + 4;
    return response.substr(start, response.find("\r\n", start) - start);
}

// Resident and peak resident memory of a process, in KiB (/proc/PID/status).
struct Memory {
    std::int64_t rss_kib = 0;
    std::int64_t peak_kib = 0;
};

inline Memory memory_of(int pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    Memory memory;
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) memory.rss_kib = std::stoll(line.substr(6));
        if (line.rfind("VmHWM:", 0) == 0) memory.peak_kib = std::stoll(line.substr(6));
    }
    return memory;
}

// Lets this process hold as many sockets as the hard limit allows.
inline void raise_descriptor_limit() {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
}

}  // namespace tokenmeter::test
