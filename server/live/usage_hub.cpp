#include "live/usage_hub.hpp"

#include <nlohmann/json.hpp>

namespace tokenmeter::live {

std::int64_t snapshot_seq(std::string_view snapshot) {
    auto parsed = nlohmann::json::parse(snapshot, nullptr, false);
    if (!parsed.is_object() || !parsed.contains("seq") || !parsed["seq"].is_number_integer()) return 0;
    return parsed["seq"].get<std::int64_t>();
}

UsageHub::Subscription::~Subscription() { hub_.unsubscribe(user_id_); }

void UsageHub::set_listener(Listener listener) {
    std::lock_guard<std::mutex> guard(mutex_);
    listener_ = std::move(listener);
}

UsageHub::Subscribed UsageHub::subscribe(const std::string& user_id) {
    std::lock_guard<std::mutex> guard(mutex_);
    if (shut_down_) return {nullptr, StreamRefusal::shutting_down};
    if (streams_ >= limits_.streams_max) return {nullptr, StreamRefusal::streams_exhausted};
    auto found = users_.find(user_id);
    if (found != users_.end() && found->second.subscribers >= limits_.streams_per_user_max) {
        return {nullptr, StreamRefusal::user_streams_exhausted};
    }
    users_[user_id].subscribers += 1;
    streams_ += 1;
    return {std::unique_ptr<Subscription>(new Subscription(*this, user_id)), std::nullopt};
}

void UsageHub::unsubscribe(const std::string& user_id) {
    std::lock_guard<std::mutex> guard(mutex_);
    auto found = users_.find(user_id);
    streams_ -= 1;
    if (found != users_.end() && --found->second.subscribers == 0) users_.erase(found);
}

bool UsageHub::watched(std::string_view user_id) const {
    std::lock_guard<std::mutex> guard(mutex_);
    return users_.find(user_id) != users_.end();
}

void UsageHub::publish(const std::vector<std::pair<std::string, std::string>>& snapshots) {
    std::vector<std::string> changed;
    Listener listener;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        for (const auto& [user_id, snapshot] : snapshots) {
            auto found = users_.find(user_id);
            if (found == users_.end()) continue;
            // Parsed once here, for watched users only, not by every stream.
            const std::int64_t seq = snapshot_seq(snapshot);
            if (seq != 0 && seq <= found->second.seq) continue;  // never replace a newer one
            found->second.seq = seq;
            found->second.snapshot = snapshot;
            changed.push_back(user_id);
        }
        listener = listener_;
    }
    if (!changed.empty() && listener) listener(changed);
}

std::optional<UsageHub::Update> UsageHub::newest(std::string_view user_id) const {
    std::lock_guard<std::mutex> guard(mutex_);
    auto found = users_.find(user_id);
    if (found == users_.end() || found->second.snapshot.empty()) return std::nullopt;
    return Update{found->second.seq, found->second.snapshot};
}

void UsageHub::shutdown() {
    std::lock_guard<std::mutex> guard(mutex_);
    shut_down_ = true;
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
