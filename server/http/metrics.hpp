// Prometheus metrics: requests by route and status, request latency, ledger
// outcomes. Counters are guarded by one mutex: a metrics update is a few map
// operations per request, far below the cost of the request itself.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace tokenmeter::http {

class Metrics {
public:
    void observe_request(const std::string& route, int status, double seconds);
    void count_authorization(bool granted);
    void count_charge(const std::string& model, const std::string& operation, std::int64_t tokens);
    // A request refused by a rate limit; scope: user, service or address.
    void count_rate_limited(const std::string& scope);
    // How a gateway call ended: settled (by the provider's usage or by
    // counting), released (the upstream failed), or refused (402).
    void count_gateway_call(const std::string& outcome);

    // Gauges read at scrape time.
    using Gauge = std::function<std::int64_t()>;
    void add_gauge(std::string name, std::string help, Gauge gauge);

    std::string render() const;

private:
    // Latency buckets in seconds; the last is +Inf.
    static constexpr std::array<double, 12> bounds_ = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,  0.5,   1.0,  2.5};
    struct Histogram {
        std::array<std::uint64_t, bounds_.size() + 1> buckets{};
        std::uint64_t count = 0;
        double sum = 0;
    };

    mutable std::mutex mutex_;
    std::map<std::pair<std::string, int>, std::uint64_t> requests_;
    std::map<std::string, Histogram> latency_;
    std::uint64_t granted_ = 0;
    std::uint64_t refused_ = 0;
    std::map<std::pair<std::string, std::string>, std::int64_t> charged_;
    std::map<std::string, std::uint64_t> rate_limited_;
    std::map<std::string, std::uint64_t> gateway_calls_;
    std::map<std::string, std::pair<std::string, Gauge>> gauges_;
};

}  // namespace tokenmeter::http
