#include "gateway/upstream_call.hpp"

#include "alerts/standard_webhooks.hpp"

namespace tokenmeter::gateway {

void HeldBytes::change(std::size_t before, std::size_t after) {
    now_ += static_cast<std::int64_t>(after) - static_cast<std::int64_t>(before);
    const auto held = static_cast<std::int64_t>(after);
    std::int64_t most = call_max_.load();
    while (held > most && !call_max_.compare_exchange_weak(most, held)) {
    }
}

UpstreamCall::UpstreamCall(const config::UpstreamSettings& upstream, const std::string& path, std::string body,
                           AnswerBounds bounds, std::shared_ptr<HeldBytes> held)
    : bounds_(bounds), held_(std::move(held)) {
    thread_ = std::thread([this, upstream, path, body = std::move(body)]() mutable {
        run(std::move(upstream), std::move(path), std::move(body));
    });
}

UpstreamCall::~UpstreamCall() {
    cancel();
    if (thread_.joinable()) thread_.join();
    // What no one took leaves the metrics with the call.
    const std::size_t before = bytes_.size();
    bytes_.clear();
    held_changed(before);
}

void UpstreamCall::held_changed(std::size_t before) {
    if (held_) held_->change(before, bytes_.size());
}

bool UpstreamCall::on_head(const httplib::Response& response) {
    std::lock_guard<std::mutex> guard(mutex_);
    status_ = response.status;
    headers_ = response.headers;
    changed_.notify_all();
    // A declared length past the bound ends the call before its body is read.
    if (response.get_header_value_u64("Content-Length") > bounds_.answer_bytes_max) {
        too_large_ = true;
        return false;
    }
    return !cancelled_;
}

bool UpstreamCall::on_bytes(const char* data, std::size_t length) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (cancelled_) return false;
    answer_bytes_ += length;
    if (answer_bytes_ > bounds_.answer_bytes_max) {
        too_large_ = true;
        return false;
    }
    const std::size_t before = bytes_.size();
    bytes_.append(data, length);
    held_changed(before);
    received_any_ = true;
    changed_.notify_all();
    // Backpressure: the reader is behind, so the provider waits, unread.
    // The ways out: take() drains (the relay read on), hold_whole(), or
    // cancel(): by the relay when its client hung up or stalled past the
    // edge's write timeout or the stream broke, or by the destructor (the
    // relay over, or never begun). The relay waits on its client no longer
    // than that timeout a write, so this lasts as long as the client reads.
    changed_.wait(lock, [this] { return cancelled_ || bytes_.size() <= bounds_.untaken_bytes_max; });
    return !cancelled_;
}

void UpstreamCall::run(config::UpstreamSettings upstream, std::string path, std::string body) {
    // The base URL was checked at start-up (config::parse_upstreams).
    auto endpoint = alerts::parse_endpoint_url(upstream.base_url);
    if (!endpoint) {
        std::lock_guard<std::mutex> guard(mutex_);
        failure_ = endpoint.error().message;
        end_ = CallEnd::failed;
        changed_.notify_all();
        return;
    }
    httplib::Client client(endpoint->origin);
    const auto timeout = std::chrono::milliseconds(upstream.timeout_ms);
    client.set_connection_timeout(timeout);
    client.set_read_timeout(timeout);
    client.set_write_timeout(timeout);
    client.set_keep_alive(false);

    httplib::Request request;
    request.method = "POST";
    request.path = (endpoint->path == "/" ? std::string() : endpoint->path) + path;
    request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json, text/event-stream"},
                       {"User-Agent", "tokenmeter-gateway"}};
    if (!upstream.api_key.empty()) request.headers.emplace("Authorization", "Bearer " + upstream.api_key);
    request.body = std::move(body);
    request.response_handler = [this](const httplib::Response& response) { return on_head(response); };
    request.content_receiver = [this](const char* data, std::size_t length, std::uint64_t, std::uint64_t) {
        return on_bytes(data, length);
    };
    {
        std::lock_guard<std::mutex> guard(mutex_);
        if (cancelled_) {
            end_ = CallEnd::cancelled;
            changed_.notify_all();
            return;
        }
        client_ = &client;
    }
    httplib::Response response;
    httplib::Error error = httplib::Error::Success;
    const auto started = std::chrono::steady_clock::now();
    const bool sent = client.send(request, response, error);
    std::lock_guard<std::mutex> guard(mutex_);
    client_ = nullptr;
    if (sent) {
        end_ = CallEnd::complete;
    } else if (too_large_) {
        end_ = CallEnd::too_large;
        failure_ = "the answer is larger than " + std::to_string(bounds_.answer_bytes_max) + " bytes";
    } else if (cancelled_) {
        end_ = CallEnd::cancelled;
    } else {
        const bool waited_out = error == httplib::Error::Read || error == httplib::Error::ConnectionTimeout;
        end_ = waited_out && std::chrono::steady_clock::now() - started >= timeout ? CallEnd::timed_out : CallEnd::failed;
        failure_ = httplib::to_string(error);
    }
    changed_.notify_all();
}

void UpstreamCall::wait_started() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return end_ != CallEnd::open || (status_ != 0 && received_any_); });
}

std::string UpstreamCall::take(std::chrono::milliseconds wait) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, wait, [this] { return !bytes_.empty() || end_ != CallEnd::open; });
    std::string taken;
    taken.swap(bytes_);
    held_changed(taken.size());
    if (!taken.empty()) changed_.notify_all();  // a call paused for its reader reads on
    return taken;
}

void UpstreamCall::hold_whole(std::size_t answer_bytes_max) {
    std::lock_guard<std::mutex> guard(mutex_);
    bounds_ = AnswerBounds{answer_bytes_max, std::numeric_limits<std::size_t>::max()};
    changed_.notify_all();
}

void UpstreamCall::wait_ended() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return end_ != CallEnd::open; });
}

void UpstreamCall::cancel() {
    std::lock_guard<std::mutex> guard(mutex_);
    if (end_ != CallEnd::open) return;
    cancelled_ = true;
    // Closes the provider's connection under the blocked read, and wakes a
    // call paused for its reader.
    if (client_ != nullptr) client_->stop();
    changed_.notify_all();
}

int UpstreamCall::status() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return status_;
}

std::string UpstreamCall::header(const std::string& name) const {
    std::lock_guard<std::mutex> guard(mutex_);
    auto found = headers_.find(name);
    return found == headers_.end() ? std::string() : found->second;
}

CallEnd UpstreamCall::end() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return end_;
}

bool UpstreamCall::received_any() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return received_any_;
}

std::string UpstreamCall::failure() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return failure_;
}

}  // namespace tokenmeter::gateway
