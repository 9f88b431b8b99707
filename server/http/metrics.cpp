#include "http/metrics.hpp"

#include <sstream>

namespace tokenmeter::http {

namespace {

// Label values are our own route names and catalog ids, but escape anyway.
std::string label(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

}  // namespace

void Metrics::observe_request(const std::string& route, int status, double seconds) {
    std::lock_guard<std::mutex> guard(mutex_);
    requests_[{route, status}] += 1;
    Histogram& histogram = latency_[route];
    std::size_t bucket = 0;
    while (bucket < bounds_.size() && seconds > bounds_[bucket]) ++bucket;
    histogram.buckets[bucket] += 1;
    histogram.count += 1;
    histogram.sum += seconds;
}

void Metrics::count_authorization(bool granted) {
    std::lock_guard<std::mutex> guard(mutex_);
    (granted ? granted_ : refused_) += 1;
}

void Metrics::count_charge(const std::string& model, const std::string& operation, std::int64_t tokens) {
    std::lock_guard<std::mutex> guard(mutex_);
    charged_[{model, operation}] += tokens;
}

void Metrics::count_rate_limited(const std::string& scope) {
    std::lock_guard<std::mutex> guard(mutex_);
    rate_limited_[scope] += 1;
}

void Metrics::count_gateway_call(const std::string& outcome) {
    std::lock_guard<std::mutex> guard(mutex_);
    gateway_calls_[outcome] += 1;
}

void Metrics::add_gauge(std::string name, std::string help, Gauge gauge) {
    std::lock_guard<std::mutex> guard(mutex_);
    gauges_[std::move(name)] = {std::move(help), std::move(gauge)};
}

std::string Metrics::render() const {
    std::ostringstream out;
    std::lock_guard<std::mutex> guard(mutex_);
    out << "# HELP tokenmeter_http_requests_total HTTP requests by route and status.\n"
           "# TYPE tokenmeter_http_requests_total counter\n";
    for (const auto& [key, count] : requests_) {
        out << "tokenmeter_http_requests_total{route=\"" << label(key.first) << "\",status=\"" << key.second << "\"} "
            << count << "\n";
    }
    out << "# HELP tokenmeter_http_request_duration_seconds Request latency by route.\n"
           "# TYPE tokenmeter_http_request_duration_seconds histogram\n";
    for (const auto& [route, histogram] : latency_) {
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < histogram.buckets.size(); ++i) {
            cumulative += histogram.buckets[i];
            out << "tokenmeter_http_request_duration_seconds_bucket{route=\"" << label(route) << "\",le=\"";
            if (i < bounds_.size()) out << bounds_[i]; else out << "+Inf";
            out << "\"} " << cumulative << "\n";
        }
        out << "tokenmeter_http_request_duration_seconds_sum{route=\"" << label(route) << "\"} " << histogram.sum << "\n";
        out << "tokenmeter_http_request_duration_seconds_count{route=\"" << label(route) << "\"} " << histogram.count << "\n";
    }
    out << "# HELP tokenmeter_authorizations_total Authorizations by result.\n"
           "# TYPE tokenmeter_authorizations_total counter\n"
        << "tokenmeter_authorizations_total{result=\"granted\"} " << granted_ << "\n"
        << "tokenmeter_authorizations_total{result=\"refused\"} " << refused_ << "\n";
    out << "# HELP tokenmeter_rate_limited_total Requests refused by a rate limit (429), by the limit's scope.\n"
           "# TYPE tokenmeter_rate_limited_total counter\n";
    for (const char* scope : {"user", "service", "address"}) {
        auto found = rate_limited_.find(scope);
        out << "tokenmeter_rate_limited_total{scope=\"" << scope << "\"} " << (found == rate_limited_.end() ? 0 : found->second)
            << "\n";
    }
    out << "# HELP tokenmeter_gateway_calls_total Gateway calls by how they ended.\n"
           "# TYPE tokenmeter_gateway_calls_total counter\n";
    for (const char* outcome : {"settled_provider", "settled_counted", "released", "refused"}) {
        auto found = gateway_calls_.find(outcome);
        out << "tokenmeter_gateway_calls_total{outcome=\"" << outcome << "\"} "
            << (found == gateway_calls_.end() ? 0 : found->second) << "\n";
    }
    out << "# HELP tokenmeter_tokens_charged_total Charged tokens by model and operation.\n"
           "# TYPE tokenmeter_tokens_charged_total counter\n";
    for (const auto& [key, tokens] : charged_) {
        out << "tokenmeter_tokens_charged_total{model=\"" << label(key.first) << "\",operation=\"" << label(key.second)
            << "\"} " << tokens << "\n";
    }
    for (const auto& [name, entry] : gauges_) {
        out << "# HELP " << name << " " << entry.first << "\n# TYPE " << name << " gauge\n"
            << name << " " << entry.second() << "\n";
    }
    return out.str();
}

}  // namespace tokenmeter::http
