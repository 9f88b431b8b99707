#include "live/usage_hub.hpp"

#include <nlohmann/json.hpp>

namespace tokenmeter::live {

std::int64_t snapshot_seq(std::string_view snapshot) {
    auto parsed = nlohmann::json::parse(snapshot, nullptr, false);
    if (!parsed.is_object() || !parsed.contains("seq") || !parsed["seq"].is_number_integer()) return 0;
    return parsed["seq"].get<std::int64_t>();
}

UsageHub::Subscription::Subscription(UsageHub& hub, std::string user_id) : hub_(hub), user_id_(std::move(user_id)) {
    std::lock_guard<std::mutex> guard(hub_.mutex_);
    hub_.users_[user_id_].subscribers += 1;
    hub_.streams_ += 1;
}

UsageHub::Subscription::~Subscription() {
    std::lock_guard<std::mutex> guard(hub_.mutex_);
    auto found = hub_.users_.find(user_id_);
    hub_.streams_ -= 1;
    if (found != hub_.users_.end() && --found->second.subscribers == 0) hub_.users_.erase(found);
}

bool UsageHub::watched(std::string_view user_id) const {
    std::lock_guard<std::mutex> guard(mutex_);
    return users_.find(user_id) != users_.end();
}

void UsageHub::publish(const std::vector<std::pair<std::string, std::string>>& snapshots) {
    bool any = false;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        for (const auto& [user_id, snapshot] : snapshots) {
            auto found = users_.find(user_id);
            if (found == users_.end()) continue;
            // Parsed once here, for watched users only, not by every stream.
            found->second.version += 1;
            found->second.seq = snapshot_seq(snapshot);
            found->second.snapshot = snapshot;
            any = true;
        }
    }
    if (any) changed_.notify_all();
}

std::optional<UsageHub::Update> UsageHub::wait(const std::string& user_id, std::uint64_t seen,
                                               std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    auto ready = [&] {
        if (shut_down_) return true;
        auto found = users_.find(user_id);
        return found != users_.end() && found->second.version > seen;
    };
    if (!changed_.wait_for(lock, timeout, ready)) return std::nullopt;
    if (shut_down_) return Update{0, 0, {}};
    const Watched& watched = users_.at(user_id);
    return Update{watched.version, watched.seq, watched.snapshot};
}

void UsageHub::shutdown() {
    {
        std::lock_guard<std::mutex> guard(mutex_);
        shut_down_ = true;
    }
    changed_.notify_all();
}

bool UsageHub::is_shut_down() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return shut_down_;
}

std::size_t UsageHub::streams() const {
    std::lock_guard<std::mutex> guard(mutex_);
    return streams_;
}

}  // namespace tokenmeter::live
