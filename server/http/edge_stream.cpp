#include "http/edge_stream.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace tokenmeter::http {

namespace {

// Gathered response bytes beyond this are sent before more are gathered.
constexpr std::size_t output_gather_bytes_max = 64 * 1024;

}  // namespace

std::int64_t monotonic_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

EdgeStream::EdgeStream(Connection& connection, std::int64_t write_timeout_ms)
    : connection_(connection), write_timeout_ms_(write_timeout_ms) {}

bool EdgeStream::wait(short events, std::int64_t deadline_ms) const {
    for (;;) {
        const std::int64_t left = deadline_ms - monotonic_ms();
        if (left <= 0) return false;
        pollfd descriptor{connection_.fd, events, 0};
        const int ready = ::poll(&descriptor, 1, static_cast<int>(std::min<std::int64_t>(left, 1000)));
        if (ready > 0) return (descriptor.revents & (events | POLLHUP | POLLERR)) != 0;
        if (ready < 0 && errno != EINTR) return false;
    }
}

std::int64_t EdgeStream::write_deadline() {
    if (write_deadline_ms_ == 0) write_deadline_ms_ = monotonic_ms() + write_timeout_ms_;
    return write_deadline_ms_;
}

bool EdgeStream::is_readable() const { return consumed_ < connection_.input.size(); }

bool EdgeStream::is_writable() const { return !failed_; }

ssize_t EdgeStream::read(char* ptr, size_t size) {
    if (consumed_ < connection_.input.size()) {
        const std::size_t n = std::min(size, connection_.input.size() - consumed_);
        std::memcpy(ptr, connection_.input.data() + consumed_, n);
        consumed_ += n;
        return static_cast<ssize_t>(n);
    }
    // The request ends where the loop's framing said it does: past it,
    // there is nothing for this request to read.
    return 0;
}

ssize_t EdgeStream::write(const char* ptr, size_t size) {
    if (failed_) return -1;
    output_.append(ptr, size);
    if (output_.size() >= output_gather_bytes_max && !flush()) return -1;
    return static_cast<ssize_t>(size);
}

bool EdgeStream::flush() {
    std::size_t sent = 0;
    while (!failed_ && sent < output_.size()) {
        const ssize_t n = ::send(connection_.fd, output_.data() + sent, output_.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait(POLLOUT, write_deadline())) failed_ = true;
        } else {
            failed_ = true;
        }
    }
    output_.clear();
    return !failed_;
}

void EdgeStream::release_consumed() {
    connection_.input.erase(0, consumed_);
    consumed_ = 0;
}

void EdgeStream::get_remote_ip_and_port(std::string& ip, int& port) const {
    ip = connection_.remote_addr;
    port = connection_.remote_port;
}

void EdgeStream::get_local_ip_and_port(std::string& ip, int& port) const {
    ip = connection_.local_addr;
    port = connection_.local_port;
}

socket_t EdgeStream::socket() const { return connection_.fd; }

}  // namespace tokenmeter::http
