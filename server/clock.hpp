// Time for the server: the core never reads a clock, the server reads this
// one, and tests substitute a clock they move by hand.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace tokenmeter {

class Clock {
public:
    virtual ~Clock() = default;
    virtual std::int64_t now_seconds() const = 0;
};

class SystemClock final : public Clock {
public:
    std::int64_t now_seconds() const override {
        return std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
};

// A clock tests set and advance; starts at the given instant.
class ManualClock final : public Clock {
public:
    explicit ManualClock(std::int64_t start_seconds) : now_(start_seconds) {}
    std::int64_t now_seconds() const override { return now_.load(); }
    void set(std::int64_t seconds) { now_.store(seconds); }
    void advance(std::int64_t seconds) { now_.fetch_add(seconds); }

private:
    std::atomic<std::int64_t> now_;
};

}  // namespace tokenmeter
