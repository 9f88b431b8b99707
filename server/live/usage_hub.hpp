// UsageHub: the newest snapshot of each watched user, and who to tell when it
// changes. The writer publishes after each durable batch; the edge's
// connection loop holds the users' Server-Sent Events streams and, told which
// users changed, reads their newest snapshots here. Only users someone
// watches are kept, so memory follows open streams, not the number of users.
//
// Streams are capped per user and in total: a stream costs the server a
// descriptor and a little memory, so one user (or one stolen token) must not
// be able to hold them all. A browser needs one (the SDK shares it across
// tabs); the per-user cap leaves room for a few devices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokenmeter::live {

// The receipt sequence number of a snapshot (0 when it has none).
std::int64_t snapshot_seq(std::string_view snapshot);

struct StreamLimits {
    std::size_t streams_max = 4096;
    std::size_t streams_per_user_max = 8;
};

enum class StreamRefusal : std::uint8_t {
    shutting_down = 1,
    user_streams_exhausted = 2,
    streams_exhausted = 3,
};

class UsageHub {
public:
    struct Update {
        std::int64_t seq = 0;  // the snapshot's receipt sequence number
        std::string snapshot;
    };

    // Keeps the user watched while it lives; counts against the caps.
    class Subscription {
    public:
        ~Subscription();
        Subscription(const Subscription&) = delete;
        Subscription& operator=(const Subscription&) = delete;
        const std::string& user_id() const { return user_id_; }

    private:
        friend class UsageHub;
        Subscription(UsageHub& hub, std::string user_id) : hub_(hub), user_id_(std::move(user_id)) {}
        UsageHub& hub_;
        std::string user_id_;
    };

    using Listener = std::function<void(const std::vector<std::string>& user_ids)>;

    explicit UsageHub(StreamLimits limits = {}) : limits_(limits) {}

    // Called (on the publishing thread) with the users whose snapshot changed.
    void set_listener(Listener listener);

    // A new stream for the user, or why there is none.
    struct Subscribed {
        std::unique_ptr<Subscription> subscription;
        std::optional<StreamRefusal> refusal;
    };
    Subscribed subscribe(const std::string& user_id);

    // Whether a stream watches the user. A stream that starts after this
    // answered no reads its first snapshot from the store, which already
    // holds the change being published.
    bool watched(std::string_view user_id) const;

    // Stores the snapshots of watched users as their newest and tells the listener.
    void publish(const std::vector<std::pair<std::string, std::string>>& snapshots);

    // The newest published snapshot of a watched user.
    std::optional<Update> newest(std::string_view user_id) const;

    // Refuses new streams from now on.
    void shutdown();
    bool is_shut_down() const;
    std::size_t streams() const;

private:
    struct Watched {
        std::size_t subscribers = 0;
        std::int64_t seq = 0;
        std::string snapshot;
    };

    void unsubscribe(const std::string& user_id);

    const StreamLimits limits_;
    mutable std::mutex mutex_;
    std::map<std::string, Watched, std::less<>> users_;
    Listener listener_;
    bool shut_down_ = false;
    std::size_t streams_ = 0;
};

}  // namespace tokenmeter::live
