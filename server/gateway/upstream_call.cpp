#include "gateway/upstream_call.hpp"

#include "alerts/standard_webhooks.hpp"

namespace tokenmeter::gateway {

UpstreamCall::UpstreamCall(const config::UpstreamSettings& upstream, const std::string& path, std::string body,
                           std::size_t answer_bytes_max)
    : answer_bytes_max_(answer_bytes_max) {
    thread_ = std::thread([this, upstream, path, body = std::move(body)]() mutable {
        run(std::move(upstream), std::move(path), std::move(body));
    });
}

UpstreamCall::~UpstreamCall() {
    cancel();
    if (thread_.joinable()) thread_.join();
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
    request.response_handler = [this](const httplib::Response& response) {
        std::lock_guard<std::mutex> guard(mutex_);
        status_ = response.status;
        headers_ = response.headers;
        changed_.notify_all();
        return !cancelled_;
    };
    request.content_receiver = [this](const char* data, std::size_t length, std::uint64_t, std::uint64_t) {
        std::lock_guard<std::mutex> guard(mutex_);
        answer_bytes_ += length;
        if (cancelled_ || answer_bytes_ > answer_bytes_max_) return false;
        bytes_.append(data, length);
        received_any_ = true;
        changed_.notify_all();
        return true;
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
    } else if (cancelled_) {
        end_ = CallEnd::cancelled;
    } else if (answer_bytes_ > answer_bytes_max_) {
        end_ = CallEnd::failed;
        failure_ = "the answer is larger than " + std::to_string(answer_bytes_max_) + " bytes";
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
    return taken;
}

void UpstreamCall::wait_ended() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return end_ != CallEnd::open; });
}

void UpstreamCall::cancel() {
    std::lock_guard<std::mutex> guard(mutex_);
    if (end_ != CallEnd::open) return;
    cancelled_ = true;
    // Closes the provider's connection under the blocked read.
    if (client_ != nullptr) client_->stop();
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
