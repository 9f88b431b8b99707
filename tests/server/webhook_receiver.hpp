// An app's webhook endpoint for tests: a loopback HTTP server that records
// every delivery and answers as the test scripts it (500, too slow, 200),
// and a Standard Webhooks signature check built on OpenSSL, independent of
// the server's libsodium code.
#pragma once

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace tokenmeter::test {

// A whsec_ secret of 32 fixed bytes, and the bytes.
inline const std::string webhook_secret_bytes = "tokenmeter-test-webhook-secret!!";
inline std::string webhook_secret() {
    std::string encoded(4 * ((webhook_secret_bytes.size() + 2) / 3) + 1, '\0');
    const int size = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                     reinterpret_cast<const unsigned char*>(webhook_secret_bytes.data()),
                                     static_cast<int>(webhook_secret_bytes.size()));
    encoded.resize(static_cast<std::size_t>(size));
    return "whsec_" + encoded;
}

// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" with OpenSSL.
inline std::string expected_signature(const std::string& id, const std::string& timestamp, const std::string& body,
                                      const std::string& key = webhook_secret_bytes) {
    const std::string content = id + "." + timestamp + "." + body;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_size = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(content.data()),
         content.size(), mac, &mac_size);
    std::string encoded(4 * ((mac_size + 2) / 3) + 1, '\0');
    const int size = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()), mac, static_cast<int>(mac_size));
    encoded.resize(static_cast<std::size_t>(size));
    return "v1," + encoded;
}

struct Delivery {
    std::string id;
    std::string timestamp;
    std::string signature;
    std::string body;
    int answered = 0;  // the status the receiver answered (0: it stalled past the sender's timeout)

    nlohmann::json event() const { return nlohmann::json::parse(body); }
    std::string type() const { return event()["type"].get<std::string>(); }
    bool signed_right() const { return signature == expected_signature(id, timestamp, body); }
};

class WebhookReceiver {
public:
    enum class Answer { ok, fail, stall };

    // Listens on a free loopback port (or `port`) at once.
    explicit WebhookReceiver(int port = 0) { listen(port); }
    ~WebhookReceiver() { down(); }
    WebhookReceiver(const WebhookReceiver&) = delete;
    WebhookReceiver& operator=(const WebhookReceiver&) = delete;

    int port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hooks/tokenmeter"; }

    // How the next deliveries are answered, in order; after the script, 200.
    void script(std::vector<Answer> answers) {
        std::lock_guard<std::mutex> guard(mutex_);
        script_.assign(answers.begin(), answers.end());
    }
    // How long a stalled answer takes.
    void set_stall(std::chrono::milliseconds stall) { stall_ = stall; }

    // Stops listening: deliveries are refused, as by an app that is down.
    void down() {
        if (!server_) return;
        server_->stop();
        if (thread_.joinable()) thread_.join();
        server_.reset();
    }
    // Listens again on the same port.
    void up() { listen(port_); }

    std::vector<Delivery> deliveries() const {
        std::lock_guard<std::mutex> guard(mutex_);
        return deliveries_;
    }

    // Waits until `count` deliveries arrived; whether they did.
    bool wait_for(std::size_t count, std::chrono::seconds patience = std::chrono::seconds(20)) const {
        std::unique_lock<std::mutex> lock(mutex_);
        return arrived_.wait_for(lock, patience, [&] { return deliveries_.size() >= count; });
    }

    // The deliveries answered 2xx.
    std::vector<Delivery> accepted() const {
        std::vector<Delivery> out;
        for (Delivery& d : deliveries()) {
            if (d.answered >= 200 && d.answered < 300) out.push_back(std::move(d));
        }
        return out;
    }

private:
    void listen(int port) {
        server_ = std::make_unique<httplib::Server>();
        server_->Post("/hooks/tokenmeter", [this](const httplib::Request& request, httplib::Response& response) {
            answer(request, response);
        });
        if (port == 0) {
            port_ = server_->bind_to_any_port("127.0.0.1");
        } else if (server_->bind_to_port("127.0.0.1", port)) {
            port_ = port;
        } else {
            throw std::runtime_error("webhook receiver: port " + std::to_string(port) + " is taken");
        }
        thread_ = std::thread([this] { server_->listen_after_bind(); });
        server_->wait_until_ready();
    }

    void answer(const httplib::Request& request, httplib::Response& response) {
        Answer how = Answer::ok;
        {
            std::lock_guard<std::mutex> guard(mutex_);
            if (!script_.empty()) {
                how = script_.front();
                script_.pop_front();
            }
        }
        const int status = how == Answer::fail ? 500 : 204;
        {
            // Recorded as it arrives, so deliveries are in the order they were made.
            std::lock_guard<std::mutex> guard(mutex_);
            deliveries_.push_back(Delivery{request.get_header_value("webhook-id"),
                                           request.get_header_value("webhook-timestamp"),
                                           request.get_header_value("webhook-signature"), request.body,
                                           how == Answer::stall ? 0 : status});
        }
        arrived_.notify_all();
        if (how == Answer::stall) std::this_thread::sleep_for(stall_);
        response.status = status;
    }

    std::unique_ptr<httplib::Server> server_;
    std::thread thread_;
    int port_ = 0;
    std::chrono::milliseconds stall_{1500};
    mutable std::mutex mutex_;
    mutable std::condition_variable arrived_;
    std::deque<Answer> script_;
    std::vector<Delivery> deliveries_;
};

}  // namespace tokenmeter::test
