#include "http/connection_loop.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include <nlohmann/json.hpp>

#include "http/edge_stream.hpp"
#include "tokenmeter/assert.hpp"

namespace tokenmeter::http {

namespace {

constexpr int events_per_wait = 256;
// How often deadlines, heartbeats and stream ends are checked: the loop's
// timers are coarse on purpose (one scan, no timer per connection).
constexpr std::int64_t sweep_interval_ms = 100;
constexpr std::size_t read_chunk_bytes = 16 * 1024;
// After a last reply, how long the client may keep sending before the close.
constexpr std::int64_t linger_ms = 2'000;
// A stream client sends nothing; one that sends this much is not a browser.
constexpr std::size_t stream_input_bytes_max = 16 * 1024;

std::string_view reason_of(int status) {
    switch (status) {
        case 400: return "Bad Request";
        case 408: return "Request Timeout";
        case 413: return "Payload Too Large";
        case 414: return "URI Too Long";
        case 415: return "Unsupported Media Type";
        case 431: return "Request Header Fields Too Large";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Error";
    }
}

// A complete response the loop sends itself, always closing the connection.
std::string reply_text(int status, std::string_view code, std::string_view message, int retry_after_seconds) {
    const std::string body =
        nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump();
    std::string text = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_of(status)) + "\r\n";
    text += "Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n";
    if (retry_after_seconds > 0) text += "Retry-After: " + std::to_string(retry_after_seconds) + "\r\n";
    text += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return text;
}

// One chunk of a chunked response body.
std::string chunk_of(std::string_view data) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string size;
    for (std::size_t n = data.size(); n > 0; n /= 16) size.insert(size.begin(), digits[n % 16]);
    if (size.empty()) size = "0";
    std::string chunk;
    chunk.reserve(size.size() + data.size() + 4);
    chunk.append(size).append("\r\n").append(data).append("\r\n");
    return chunk;
}

std::string numeric_address(const sockaddr_storage& address, int& port) {
    char text[INET6_ADDRSTRLEN] = {};
    if (address.ss_family == AF_INET) {
        const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
        ::inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
        port = ntohs(v4.sin_port);
    } else if (address.ss_family == AF_INET6) {
        const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
        ::inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
        port = ntohs(v6.sin6_port);
    }
    return text;
}

bool is_borrowed(const Connection& connection) {
    return connection.phase == ConnectionPhase::queued || connection.phase == ConnectionPhase::working;
}

}  // namespace

ConnectionLoop::ConnectionLoop(LoopOptions options, Dispatch dispatch)
    : options_(std::move(options)), dispatch_(std::move(dispatch)) {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    TM_ASSERT(epoll_ >= 0);
    TM_ASSERT(wake_ >= 0);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.ptr = nullptr;  // the wake-up descriptor
    TM_ASSERT(::epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &event) == 0);
}

ConnectionLoop::~ConnectionLoop() {
    stop(0);
    ::close(wake_);
    ::close(epoll_);
}

std::int64_t ConnectionLoop::time_ms() const { return monotonic_ms(); }

void ConnectionLoop::start() {
    TM_ASSERT(!thread_.joinable());
    thread_ = std::thread([this] { run(); });
}

void ConnectionLoop::stop(std::int64_t grace_ms) {
    if (!stopping_.exchange(true)) {
        stop_deadline_ms_ = time_ms() + grace_ms;
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t written = ::write(wake_, &one, sizeof one);
    }
    if (thread_.joinable()) thread_.join();
}

void ConnectionLoop::post(Message message, Connection* connection) {
    bool was_empty = false;
    {
        std::lock_guard<std::mutex> guard(inbox_mutex_);
        was_empty = inbox_.messages.empty() && inbox_.adopted.empty() && inbox_.keys.empty();
        inbox_.messages.emplace_back(message, connection);
    }
    if (was_empty) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t written = ::write(wake_, &one, sizeof one);
    }
}

void ConnectionLoop::adopt(int fd) {
    bool was_empty = false;
    {
        std::lock_guard<std::mutex> guard(inbox_mutex_);
        was_empty = inbox_.messages.empty() && inbox_.adopted.empty() && inbox_.keys.empty();
        inbox_.adopted.push_back(fd);
    }
    if (was_empty) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t written = ::write(wake_, &one, sizeof one);
    }
}

void ConnectionLoop::resume(Connection& connection) { post(Message::resume, &connection); }
void ConnectionLoop::finish(Connection& connection) { post(Message::finish, &connection); }
void ConnectionLoop::stream(Connection& connection) { post(Message::stream, &connection); }

void ConnectionLoop::notify(const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    bool was_empty = false;
    {
        std::lock_guard<std::mutex> guard(inbox_mutex_);
        was_empty = inbox_.messages.empty() && inbox_.adopted.empty() && inbox_.keys.empty();
        inbox_.keys.insert(keys.begin(), keys.end());
    }
    if (was_empty) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t written = ::write(wake_, &one, sizeof one);
    }
}

void ConnectionLoop::run() {
    std::array<epoll_event, events_per_wait> events{};
    bool stop_seen = false;
    for (;;) {
        const int ready = ::epoll_wait(epoll_, events.data(), events_per_wait, static_cast<int>(sweep_interval_ms));
        for (int i = 0; i < ready; ++i) {
            if (events[static_cast<std::size_t>(i)].data.ptr == nullptr) {
                std::uint64_t count = 0;
                [[maybe_unused]] const ssize_t read = ::read(wake_, &count, sizeof count);
                continue;
            }
            auto* connection = static_cast<Connection*>(events[static_cast<std::size_t>(i)].data.ptr);
            if (connection->phase != ConnectionPhase::closed) handle_event(*connection, events[static_cast<std::size_t>(i)].events);
        }
        drain_inbox();
        const std::int64_t now = time_ms();
        if (stopping_ && !stop_seen) {
            stop_seen = true;
            next_sweep_ms_ = 0;  // close what is idle and end the streams now
        }
        if (now >= next_sweep_ms_) {
            sweep(now);
            next_sweep_ms_ = now + sweep_interval_ms;
        }
        closed_.clear();
        if (!stopping_) continue;
        const bool any_borrowed = std::any_of(connections_.begin(), connections_.end(),
                                              [](const auto& entry) { return is_borrowed(*entry.second); });
        if (connections_.empty()) break;
        if (!any_borrowed && now >= stop_deadline_ms_) {
            std::vector<Connection*> rest;
            for (auto& entry : connections_) rest.push_back(entry.first);
            for (Connection* connection : rest) close(*connection);
            closed_.clear();
            break;
        }
    }
    done_ = true;
}

void ConnectionLoop::drain_inbox() {
    Inbox inbox;
    {
        std::lock_guard<std::mutex> guard(inbox_mutex_);
        std::swap(inbox, inbox_);
    }
    for (int fd : inbox.adopted) take(fd);
    for (auto& [message, connection] : inbox.messages) {
        TM_ASSERT(is_borrowed(*connection));
        switch (message) {
            case Message::resume:
                return_budget(*connection);
                connection->phase = ConnectionPhase::idle;
                connection->last_active_ms = time_ms();
                if (stopping_) {
                    linger(*connection);
                } else {
                    advance(*connection);
                }
                break;
            case Message::finish:
                return_budget(*connection);
                linger(*connection);
                break;
            case Message::stream: begin_stream(*connection); break;
            case Message::adopt: break;
        }
    }
    for (const std::string& key : inbox.keys) {
        auto [first, last] = streams_by_key_.equal_range(key);
        std::vector<Connection*> watching;
        for (auto it = first; it != last; ++it) watching.push_back(it->second);
        for (Connection* connection : watching) {
            if (connection->phase == ConnectionPhase::streaming) pump(*connection);
        }
    }
}

void ConnectionLoop::take(int fd) {
    if (stopping_) {
        ::close(fd);
        return;
    }
    if (connections_.size() >= options_.connections_max) make_room();
    if (connections_.size() >= options_.connections_max) {
        // Every connection is busy with a request: nothing can make room.
        const std::string text = reply_text(503, "overloaded", "the server is at its connection limit", options_.retry_after_seconds);
        [[maybe_unused]] const ssize_t sent = ::send(fd, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        ::close(fd);
        stats_.overloaded += 1;
        return;
    }
    const int flags = ::fcntl(fd, F_GETFL, 0);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    const int yes = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);

    auto owned = std::make_unique<Connection>();
    Connection& connection = *owned;
    connection.fd = fd;
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
        connection.remote_addr = numeric_address(address, connection.remote_port);
    }
    length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
        connection.local_addr = numeric_address(address, connection.local_port);
    }
    const std::int64_t now = time_ms();
    connection.last_active_ms = now;
    connection.deadline_ms = now + options_.idle_timeout_ms;
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    event.data.ptr = &connection;
    if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) != 0) {
        ::close(fd);
        return;
    }
    connections_.emplace(&connection, std::move(owned));
    stats_.connections += 1;
    stats_.accepted += 1;
}

// Closes the connections that have waited longest without a request in
// progress: idle keep-alive ones first, then half-sent heads. Room is made for
// a batch, so a flood at the limit does not scan the table per connection.
void ConnectionLoop::make_room() {
    std::vector<Connection*> idle;
    std::vector<Connection*> partial;
    for (auto& entry : connections_) {
        Connection& connection = *entry.second;
        if (connection.phase == ConnectionPhase::idle) idle.push_back(&connection);
        if (connection.phase == ConnectionPhase::head || connection.phase == ConnectionPhase::body) {
            partial.push_back(&connection);
        }
    }
    const std::size_t batch = std::max<std::size_t>(1, options_.connections_max / 64);
    auto oldest_first = [](const Connection* a, const Connection* b) { return a->last_active_ms < b->last_active_ms; };
    std::size_t evicted = 0;
    for (auto* candidates : {&idle, &partial}) {
        const std::size_t take = std::min(candidates->size(), batch - evicted);
        std::partial_sort(candidates->begin(), candidates->begin() + static_cast<std::ptrdiff_t>(take), candidates->end(),
                          oldest_first);
        for (std::size_t i = 0; i < take; ++i) close(*(*candidates)[i]);
        evicted += take;
        if (evicted >= batch) break;
    }
    stats_.evicted += evicted;
}

void ConnectionLoop::handle_event(Connection& connection, std::uint32_t events) {
    switch (connection.phase) {
        case ConnectionPhase::idle:
        case ConnectionPhase::head:
        case ConnectionPhase::body:
            read_input(connection);
            if (connection.phase != ConnectionPhase::closed) advance(connection);
            return;
        case ConnectionPhase::streaming:
        case ConnectionPhase::closing: {
            if ((events & EPOLLOUT) != 0) send_output(connection);
            if (connection.phase == ConnectionPhase::closed) return;
            if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0 && !drop_input(connection)) return;
            rearm(connection);
            return;
        }
        case ConnectionPhase::queued:
        case ConnectionPhase::working:
        case ConnectionPhase::closed: return;
    }
}

// Neither a stream nor a closing connection expects input: it is read to see
// the client close, and dropped. A closing connection may still be receiving
// the body of a refused request (its linger time bounds that); a stream
// client has nothing to send, so one that sends much is cut off.
bool ConnectionLoop::drop_input(Connection& connection) {
    std::array<char, read_chunk_bytes> buffer{};
    const std::size_t drop_max = connection.phase == ConnectionPhase::streaming ? stream_input_bytes_max : closing_drop_bytes_max();
    for (;;) {
        if (connection.phase == ConnectionPhase::closing && connection.dropped_bytes > drop_max) return true;
        const ssize_t n = ::recv(connection.fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (n > 0) {
            connection.dropped_bytes += static_cast<std::size_t>(n);
            if (connection.dropped_bytes <= drop_max || connection.phase == ConnectionPhase::closing) continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        close(connection);  // closed by the client, an error, or a flood
        return false;
    }
}

// How many bytes of input a connection may hold in its current phase: a
// head (and the start of a small body); then the head and its whole body,
// framing included, and no more (a pipelined request waits in the socket).
std::size_t ConnectionLoop::input_cap(const Connection& connection) const {
    const std::size_t head_cap = options_.head.head_bytes_max + 4 + options_.body_small_bytes_max;
    if (connection.phase != ConnectionPhase::body) return head_cap;
    if (connection.head.framing == BodyFraming::length) {
        return connection.head.head_bytes + static_cast<std::size_t>(connection.head.content_length);
    }
    return connection.head.head_bytes + chunked_raw_bytes_max();
}

// What a closing connection's input is drained by in all: enough for the
// rest of a refused request's body (most clients read the answer only once
// they have sent it all), not a stream that never ends. Past it the loop
// stops reading; the client's sends stall until the close. Dropped bytes
// cost no memory.
std::size_t ConnectionLoop::closing_drop_bytes_max() const { return chunked_raw_bytes_max(); }

// Chunk framing can outweigh the data (one-byte chunks take six bytes each);
// a chunked body's raw bytes are capped at twice the largest body.
std::size_t ConnectionLoop::chunked_raw_bytes_max() const {
    return 2 * static_cast<std::size_t>(options_.head.body_bytes_max) + options_.body_small_bytes_max;
}

void ConnectionLoop::read_input(Connection& connection) {
    const std::size_t cap = input_cap(connection);
    std::array<char, read_chunk_bytes> buffer{};
    while (connection.input.size() < cap && !connection.peer_closed) {
        const std::size_t want = std::min(buffer.size(), cap - connection.input.size());
        const ssize_t n = ::recv(connection.fd, buffer.data(), want, MSG_DONTWAIT);
        if (n > 0) {
            connection.input.append(buffer.data(), static_cast<std::size_t>(n));
            connection.last_active_ms = time_ms();
        } else if (n == 0) {
            connection.peer_closed = true;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            close(connection);
            return;
        }
    }
}

// Moves a connection on by what its input holds: waits for more, answers a
// refusal, or hands a complete request (head and body) to a worker.
void ConnectionLoop::advance(Connection& connection) {
    if (connection.phase == ConnectionPhase::idle) {
        // RFC 9112 2.2: an empty line before a request line is ignored.
        std::size_t blank = 0;
        while (connection.input.compare(blank, 2, "\r\n") == 0) blank += 2;
        connection.input.erase(0, blank);
        if (connection.input.empty()) {
            if (connection.peer_closed) {
                close(connection);
                return;
            }
            connection.deadline_ms = connection.last_active_ms + options_.idle_timeout_ms;
            rearm(connection);
            return;
        }
        connection.phase = ConnectionPhase::head;
        connection.deadline_ms = time_ms() + options_.head_timeout_ms;
    }
    if (connection.phase == ConnectionPhase::head) {
        const HeadScanResult scanned = scan_request_head(connection.input, options_.head);
        if (scanned.scan == HeadScan::incomplete) {
            if (connection.peer_closed) {
                close(connection);
            } else {
                rearm(connection);
            }
            return;
        }
        if (scanned.scan == HeadScan::refused) {
            stats_.refused_heads += 1;
            reply(connection, scanned.refusal.status, scanned.refusal.code, scanned.refusal.message);
            return;
        }
        connection.head = scanned.head;
        if (scanned.head.framing == BodyFraming::none) {
            if (scanned.head.declares_no_length) {
                static constexpr std::string_view no_body = "Content-Length: 0\r\n";
                connection.input.insert(scanned.head.head_bytes - 2, no_body);
                connection.head.head_bytes += no_body.size();
            }
            dispatch(connection);
            return;
        }
        begin_body(connection);
        if (connection.phase != ConnectionPhase::body) return;
    }
    if (connection.phase == ConnectionPhase::body) read_body(connection);
}

void ConnectionLoop::begin_body(Connection& connection) {
    RequestHead& head = connection.head;
    if (head.expects_continue) {
        // The loop answers the 100 itself (the client sends its body only
        // then) and takes the Expect line out, so httplib sends no second one.
        connection.input.erase(head.expect_line_offset, head.expect_line_bytes);
        head.head_bytes -= head.expect_line_bytes;
        head.expects_continue = false;
        static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
        if (::send(connection.fd, go_on.data(), go_on.size(), MSG_DONTWAIT | MSG_NOSIGNAL) != static_cast<ssize_t>(go_on.size())) {
            close(connection);
            return;
        }
    }
    if (head.framing == BodyFraming::length && static_cast<std::size_t>(head.content_length) > options_.body_small_bytes_max &&
        !take_budget(connection, static_cast<std::size_t>(head.content_length))) {
        stats_.overloaded += 1;
        reply(connection, 503, "overloaded", "the server is receiving too many large bodies; retry shortly");
        return;
    }
    connection.phase = ConnectionPhase::body;
    connection.body_started_ms = time_ms();
    connection.chunked = ChunkedProgress{};
}

void ConnectionLoop::read_body(Connection& connection) {
    const RequestHead& head = connection.head;
    const std::size_t received = connection.input.size() - head.head_bytes;
    if (head.framing == BodyFraming::length) {
        if (received >= static_cast<std::size_t>(head.content_length)) {
            dispatch(connection);
            return;
        }
    } else {
        const std::string_view body = std::string_view(connection.input).substr(head.head_bytes);
        const BodyScanResult scanned = scan_chunked_body(body, options_.head.body_bytes_max, connection.chunked);
        if (scanned.scan == HeadScan::refused) {
            reply(connection, scanned.refusal.status, scanned.refusal.code, scanned.refusal.message);
            return;
        }
        if (scanned.scan == HeadScan::complete) {
            // Anything after the body is the next request: it waits in the
            // socket only if it did not arrive in the same read.
            connection.input.resize(head.head_bytes + scanned.body_bytes);
            dispatch(connection);
            return;
        }
        connection.chunked = scanned.progress;
        if (received >= chunked_raw_bytes_max()) {
            reply(connection, 413, "body_too_large", "the request body is too large");
            return;
        }
        if (received > options_.body_small_bytes_max && connection.body_budget_bytes == 0 &&
            !take_budget(connection, chunked_raw_bytes_max())) {
            stats_.overloaded += 1;
            reply(connection, 503, "overloaded", "the server is receiving too many large bodies; retry shortly");
            return;
        }
    }
    if (connection.peer_closed) {
        close(connection);
        return;
    }
    // Each byte that arrived earns the time it takes at the minimum rate.
    connection.deadline_ms = connection.body_started_ms + options_.body_timeout_ms +
                             static_cast<std::int64_t>(received) * 1000 / options_.body_rate_min_bytes_per_second;
    rearm(connection);
}

bool ConnectionLoop::take_budget(Connection& connection, std::size_t bytes) {
    if (body_budget_used_ + bytes > options_.body_budget_bytes_max) return false;
    body_budget_used_ += bytes;
    connection.body_budget_bytes += bytes;
    return true;
}

void ConnectionLoop::return_budget(Connection& connection) {
    body_budget_used_ -= connection.body_budget_bytes;
    connection.body_budget_bytes = 0;
    // A large body's buffer is not kept for the rest of a keep-alive connection.
    if (connection.input.capacity() > options_.body_small_bytes_max) connection.input.shrink_to_fit();
}

void ConnectionLoop::dispatch(Connection& connection) {
    if (stopping_) {
        reply(connection, 503, "shutting_down", "the server is shutting down");
        return;
    }
    // The worker may run before offer() returns: mark the connection
    // borrowed first, and touch nothing of it after a successful offer.
    connection.phase = ConnectionPhase::queued;
    if (dispatch_(connection)) return;
    stats_.overloaded += 1;
    connection.phase = ConnectionPhase::head;
    reply(connection, 503, "overloaded", "the server is busy; retry shortly");
}

void ConnectionLoop::begin_stream(Connection& connection) {
    TM_ASSERT(connection.handover.has_value());
    connection.stream = std::make_unique<EventStream>(std::move(*connection.handover));
    connection.handover.reset();
    connection.phase = ConnectionPhase::streaming;
    connection.input.clear();
    const std::int64_t now = time_ms();
    connection.heartbeat_at_ms = now + options_.stream_heartbeat_ms;
    connection.deadline_ms = connection.stream->ends_at_ms;
    streams_by_key_.emplace(connection.stream->key, &connection);
    stats_.streams += 1;
    if (stopping_) {
        end_stream(connection);
        return;
    }
    // An event may have been published between the handler's first read and now.
    pump(connection);
    if (connection.phase == ConnectionPhase::streaming) rearm(connection);
}

void ConnectionLoop::pump(Connection& connection) {
    if (connection.output_sent < connection.output.size()) {
        connection.stream_dirty = true;  // sent once the current chunk is out
        return;
    }
    connection.stream_dirty = false;
    std::optional<std::string> event = connection.stream->next_event();
    if (!event) return;
    connection.output = chunk_of(*event);
    connection.output_sent = 0;
    connection.heartbeat_at_ms = time_ms() + options_.stream_heartbeat_ms;
    send_output(connection);
    if (connection.phase == ConnectionPhase::streaming) rearm(connection);
}

void ConnectionLoop::end_stream(Connection& connection) {
    auto [first, last] = streams_by_key_.equal_range(connection.stream->key);
    for (auto it = first; it != last; ++it) {
        if (it->second == &connection) {
            streams_by_key_.erase(it);
            break;
        }
    }
    connection.stream.reset();
    stats_.streams -= 1;
    connection.output.append("0\r\n\r\n");  // the last chunk: a clean end the client can tell from a cut
    linger(connection);
}

void ConnectionLoop::reply(Connection& connection, int status, std::string_view code, std::string_view message) {
    const int retry_after = (status == 503) ? options_.retry_after_seconds : 0;
    connection.output = reply_text(status, code, message, retry_after);
    connection.output_sent = 0;
    connection.dropped_bytes = 0;
    connection.input.clear();
    return_budget(connection);
    linger(connection);
}

// Sends what is left, shuts our side, and waits (bounded) for the client to
// close, reading and dropping what it still sends.
void ConnectionLoop::linger(Connection& connection) {
    connection.phase = ConnectionPhase::closing;
    connection.deadline_ms = time_ms() + linger_ms;
    send_output(connection);
    if (connection.phase == ConnectionPhase::closed) return;
    rearm(connection);
}

void ConnectionLoop::send_output(Connection& connection) {
    while (connection.output_sent < connection.output.size()) {
        const ssize_t n = ::send(connection.fd, connection.output.data() + connection.output_sent,
                                 connection.output.size() - connection.output_sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            connection.output_sent += static_cast<std::size_t>(n);
            connection.output_stalled_since_ms = 0;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (connection.output_stalled_since_ms == 0) connection.output_stalled_since_ms = time_ms();
            return;
        } else {
            close(connection);
            return;
        }
    }
    connection.output.clear();
    connection.output_sent = 0;
    connection.output_stalled_since_ms = 0;
    if (connection.phase == ConnectionPhase::closing && !connection.write_shut) {
        ::shutdown(connection.fd, SHUT_WR);
        connection.write_shut = true;
        if (connection.peer_closed) close(connection);
        return;
    }
    if (connection.phase == ConnectionPhase::streaming && connection.stream_dirty) pump(connection);
}

void ConnectionLoop::rearm(Connection& connection) {
    epoll_event event{};
    const bool deaf = connection.phase == ConnectionPhase::closing && connection.dropped_bytes > closing_drop_bytes_max();
    event.events = (deaf ? 0u : static_cast<std::uint32_t>(EPOLLIN)) | EPOLLRDHUP | EPOLLONESHOT;
    if (connection.output_sent < connection.output.size()) event.events |= EPOLLOUT;
    event.data.ptr = &connection;
    if (::epoll_ctl(epoll_, EPOLL_CTL_MOD, connection.fd, &event) != 0) close(connection);
}

void ConnectionLoop::close(Connection& connection) {
    if (connection.phase == ConnectionPhase::closed) return;
    if (connection.stream) {
        auto [first, last] = streams_by_key_.equal_range(connection.stream->key);
        for (auto it = first; it != last; ++it) {
            if (it->second == &connection) {
                streams_by_key_.erase(it);
                break;
            }
        }
        connection.stream.reset();
        stats_.streams -= 1;
    }
    return_budget(connection);
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, connection.fd, nullptr);
    ::close(connection.fd);
    connection.phase = ConnectionPhase::closed;
    auto found = connections_.find(&connection);
    TM_ASSERT(found != connections_.end());
    closed_.push_back(std::move(found->second));
    connections_.erase(found);
    stats_.connections -= 1;
}

void ConnectionLoop::sweep(std::int64_t now) {
    std::vector<Connection*> all;
    all.reserve(connections_.size());
    for (auto& entry : connections_) all.push_back(entry.first);
    for (Connection* connection : all) {
        if (connection->phase != ConnectionPhase::closed) expire(*connection, now);
    }
}

void ConnectionLoop::expire(Connection& connection, std::int64_t now) {
    const bool stalled = connection.output_stalled_since_ms != 0 &&
                         now - connection.output_stalled_since_ms > options_.write_stall_ms_max;
    switch (connection.phase) {
        case ConnectionPhase::idle:
            if (stopping_ || now >= connection.deadline_ms) close(connection);
            return;
        case ConnectionPhase::head:
        case ConnectionPhase::body:
            if (stopping_) {
                close(connection);
            } else if (now >= connection.deadline_ms) {
                stats_.timed_out += 1;
                reply(connection, 408, "request_timeout", "the request did not arrive in time");
            }
            return;
        case ConnectionPhase::streaming:
            if (stalled) {
                close(connection);
            } else if (stopping_ || now >= connection.stream->ends_at_ms) {
                end_stream(connection);
            } else if (now >= connection.heartbeat_at_ms && connection.output_sent >= connection.output.size()) {
                // An SSE comment: keeps proxies from timing the stream out,
                // and shows a client that quietly vanished.
                connection.output = chunk_of(": heartbeat\n\n");
                connection.output_sent = 0;
                connection.heartbeat_at_ms = now + options_.stream_heartbeat_ms;
                send_output(connection);
                if (connection.phase == ConnectionPhase::streaming) rearm(connection);
            }
            return;
        case ConnectionPhase::closing:
            if (stalled || now >= connection.deadline_ms) close(connection);
            return;
        case ConnectionPhase::queued:
        case ConnectionPhase::working:
        case ConnectionPhase::closed: return;
    }
}

}  // namespace tokenmeter::http
