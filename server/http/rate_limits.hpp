// Rate limits (DESIGN.md §7, 429): a token bucket per caller, with integer
// arithmetic. Each bucket holds up to `burst` requests and refills at
// `per_second`; a request takes one, or is refused with how long until one is
// back (Retry-After).
//
// Three kinds of caller are limited, each with its own rate: a user (by the
// user id of a verified token), a service key (by its caller id), and a client
// address for requests without credentials or whose credentials failed (so
// guessing tokens costs the guesser, not the server).
//
// Memory is bounded: at most `keys_max` buckets. When full, buckets that have
// refilled completely are dropped first (a full bucket is the same as a new
// one); if that is not enough, the least recently used go, which at worst
// gives an attacker with very many addresses a fresh burst per address.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tokenmeter::http {

struct RateLimit {
    std::int64_t per_second = 0;  // 0: no limit
    std::int64_t burst = 0;       // requests allowed at once; at least 1 when limited

    bool enabled() const { return per_second > 0; }
};

struct RateDecision {
    bool allowed = true;
    std::int64_t retry_after_seconds = 0;  // when refused: until a request is allowed again
};

class RateLimiter {
public:
    explicit RateLimiter(RateLimit limit, std::size_t keys_max = 100'000);

    // Takes one request from `key`'s bucket at monotonic time `now_ms`.
    RateDecision take(std::string_view key, std::int64_t now_ms);

    const RateLimit& limit() const { return limit_; }
    std::size_t keys() const;

private:
    // Milli-requests, so that any rate refills exactly per millisecond.
    struct Bucket {
        std::int64_t level_milli = 0;
        std::int64_t updated_ms = 0;
    };
    struct Shard {
        mutable std::mutex mutex;
        std::unordered_map<std::string, Bucket> buckets;
    };
    static constexpr std::size_t shard_count = 16;

    std::int64_t refilled(const Bucket& bucket, std::int64_t now_ms) const;
    void make_room(Shard& shard, std::int64_t now_ms);

    const RateLimit limit_;
    const std::int64_t capacity_milli_;
    const std::size_t keys_per_shard_max_;
    std::array<Shard, shard_count> shards_;
};

}  // namespace tokenmeter::http
