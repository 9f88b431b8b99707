#include "http/rate_limits.hpp"

#include <algorithm>
#include <functional>
#include <vector>

namespace tokenmeter::http {

namespace {

constexpr std::int64_t milli = 1000;
// Rates and bursts are capped far below where milli-requests could overflow.
constexpr std::int64_t rate_max = 1'000'000'000;

}  // namespace

RateLimiter::RateLimiter(RateLimit limit, std::size_t keys_max)
    : limit_{std::clamp<std::int64_t>(limit.per_second, 0, rate_max),
             std::clamp<std::int64_t>(limit.burst, 1, rate_max)},
      capacity_milli_(limit_.burst * milli),
      keys_per_shard_max_(std::max<std::size_t>(1, keys_max / shard_count)) {}

std::int64_t RateLimiter::refilled(const Bucket& bucket, std::int64_t now_ms) const {
    const std::int64_t elapsed_ms = std::max<std::int64_t>(0, now_ms - bucket.updated_ms);
    // per_second requests per 1000 ms is per_second milli-requests per ms;
    // once the gap alone fills the bucket, skip the product (no overflow).
    if (elapsed_ms >= capacity_milli_ / limit_.per_second + 1) return capacity_milli_;
    return std::min(capacity_milli_, bucket.level_milli + elapsed_ms * limit_.per_second);
}

RateDecision RateLimiter::take(std::string_view key, std::int64_t now_ms) {
    if (!limit_.enabled()) return {};
    Shard& shard = shards_[std::hash<std::string_view>{}(key) % shard_count];
    std::lock_guard<std::mutex> guard(shard.mutex);
    auto found = shard.buckets.find(std::string(key));
    if (found == shard.buckets.end()) {
        if (shard.buckets.size() >= keys_per_shard_max_) make_room(shard, now_ms);
        found = shard.buckets.emplace(std::string(key), Bucket{capacity_milli_, now_ms}).first;
    }
    Bucket& bucket = found->second;
    bucket.level_milli = refilled(bucket, now_ms);
    bucket.updated_ms = now_ms;
    if (bucket.level_milli >= milli) {
        bucket.level_milli -= milli;
        return {};
    }
    const std::int64_t missing_milli = milli - bucket.level_milli;
    const std::int64_t wait_ms = (missing_milli + limit_.per_second - 1) / limit_.per_second;
    return RateDecision{false, std::max<std::int64_t>(1, (wait_ms + 999) / 1000)};
}

void RateLimiter::make_room(Shard& shard, std::int64_t now_ms) {
    for (auto it = shard.buckets.begin(); it != shard.buckets.end();) {
        it = refilled(it->second, now_ms) >= capacity_milli_ ? shard.buckets.erase(it) : std::next(it);
    }
    if (shard.buckets.size() < keys_per_shard_max_) return;
    // Every bucket is in use: drop the least recently used half.
    std::vector<std::pair<std::int64_t, std::string>> by_age;
    by_age.reserve(shard.buckets.size());
    for (const auto& [key, bucket] : shard.buckets) by_age.emplace_back(bucket.updated_ms, key);
    const auto half = by_age.begin() + static_cast<std::ptrdiff_t>(by_age.size() / 2);
    std::nth_element(by_age.begin(), half, by_age.end());
    for (auto it = by_age.begin(); it != half; ++it) shard.buckets.erase(it->second);
}

std::size_t RateLimiter::keys() const {
    std::size_t total = 0;
    for (const Shard& shard : shards_) {
        std::lock_guard<std::mutex> guard(shard.mutex);
        total += shard.buckets.size();
    }
    return total;
}

}  // namespace tokenmeter::http
