// UsageHub: the newest snapshot of each watched user, and a way to wait for
// the next one. The writer publishes after each durable batch; every Server-
// Sent Events stream of a user waits here. Only users someone watches are
// kept, so memory follows open streams, not the number of users.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokenmeter::live {

// The receipt sequence number of a snapshot (0 when it has none).
std::int64_t snapshot_seq(std::string_view snapshot);

class UsageHub {
public:
    struct Update {
        std::uint64_t version = 0;
        std::int64_t seq = 0;  // the snapshot's receipt sequence number
        std::string snapshot;
    };

    // Keeps the user watched while it lives.
    class Subscription {
    public:
        Subscription(UsageHub& hub, std::string user_id);
        ~Subscription();
        Subscription(const Subscription&) = delete;
        Subscription& operator=(const Subscription&) = delete;
        const std::string& user_id() const { return user_id_; }

    private:
        UsageHub& hub_;
        std::string user_id_;
    };

    // Whether a stream watches the user. A stream that starts after this
    // answered no reads its first snapshot from the store, which already
    // holds the change being published.
    bool watched(std::string_view user_id) const;

    // Stores the snapshot as the user's newest and wakes its streams.
    void publish(const std::vector<std::pair<std::string, std::string>>& snapshots);

    // Waits until the user's version passes `seen`, `timeout` passes (nullopt),
    // or the hub shuts down (an Update with version 0).
    std::optional<Update> wait(const std::string& user_id, std::uint64_t seen, std::chrono::milliseconds timeout);

    // Wakes every waiting stream for the last time.
    void shutdown();
    bool is_shut_down() const;
    std::size_t streams() const;

private:
    struct Watched {
        int subscribers = 0;
        std::uint64_t version = 0;
        std::int64_t seq = 0;
        std::string snapshot;
    };

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::map<std::string, Watched, std::less<>> users_;
    bool shut_down_ = false;
    std::size_t streams_ = 0;
};

}  // namespace tokenmeter::live
