// A closed-loop load client for the ledger API: each connection runs
// authorize -> commit pairs back to back over one keep-alive HTTP connection
// and records how long each request and each pair took.
//
// Before the clock starts, every user's account is opened once (a read of
// /v1/users/{id}/usage), so the timed run measures the steady state of
// existing accounts, as pgbench measures initialized tables, not first uses.
//
//   load_client --port P --key SERVICE_KEY [--host H] [--connections 64]
//               [--seconds 10] [--users 10000 | --users 1 (one hot user)]
//
// Prints one JSON line: pairs/s, request and pair latency percentiles, errors.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <exception>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
    std::string host = "127.0.0.1";
    int port = 0;
    std::string key;
    int connections = 64;
    double seconds = 10;
    int users = 10000;
    std::string prefix = "load";
};

struct Samples {
    std::vector<double> request_ms;
    std::vector<double> pair_ms;
    std::uint64_t pairs = 0;
    std::uint64_t errors = 0;
};

std::string reservation_of(const std::string& body) {
    const std::string marker = "\"reservation_id\":\"";
    const auto at = body.find(marker);
    if (at == std::string::npos) return {};
    const auto end = body.find('"', at + marker.size());
    return body.substr(at + marker.size(), end - at - marker.size());
}

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void run_connection(const Options& options, int index, Clock::time_point deadline, Samples& samples) {
    httplib::Client client(options.host, options.port);
    client.set_keep_alive(true);
    client.set_tcp_nodelay(true);  // headers and body are separate writes: no Nagle wait between them
    client.set_read_timeout(10, 0);
    const httplib::Headers base = {{"Authorization", "Bearer " + options.key}};
    std::mt19937 random(static_cast<unsigned>(index) * 7919U + 1);
    std::uint64_t sequence = 0;
    while (Clock::now() < deadline) {
        const int user = options.users <= 1 ? 0 : static_cast<int>(random() % static_cast<unsigned>(options.users));
        const std::string key_prefix = options.prefix + "-" + std::to_string(index) + "-" + std::to_string(sequence++);
        httplib::Headers headers = base;
        headers.emplace("Idempotency-Key", key_prefix + "-a");
        const std::string authorize = R"({"user_id":"u)" + std::to_string(user) +
                                      R"(","operation":"chat","model":"gpt-4o-mini","input_tokens":100,"max_output_tokens":50})";
        const auto pair_start = Clock::now();
        auto first = client.Post("/v1/usage/authorize", headers, authorize, "application/json");
        samples.request_ms.push_back(ms_since(pair_start));
        if (!first || first->status != 200) {
            samples.errors += 1;
            continue;
        }
        const std::string id = reservation_of(first->body);
        headers = base;
        headers.emplace("Idempotency-Key", key_prefix + "-c");
        const std::string commit = R"({"reservation_id":")" + id + R"(","input_tokens":100,"output_tokens":20})";
        const auto second_start = Clock::now();
        auto second = client.Post("/v1/usage/commit", headers, commit, "application/json");
        samples.request_ms.push_back(ms_since(second_start));
        if (!second || second->status != 200) {
            samples.errors += 1;
            continue;
        }
        samples.pair_ms.push_back(ms_since(pair_start));
        samples.pairs += 1;
    }
}

// Opens the accounts of users index, index + stride, ... (one read each).
bool open_accounts(const Options& options, int index, int stride) {
    httplib::Client client(options.host, options.port);
    client.set_keep_alive(true);
    client.set_read_timeout(30, 0);
    const httplib::Headers headers = {{"Authorization", "Bearer " + options.key}};
    for (int user = index; user < std::max(options.users, 1); user += stride) {
        auto response = client.Get("/v1/users/u" + std::to_string(user) + "/usage", headers);
        if (!response || response->status != 200) return false;
    }
    return true;
}

double percentile(std::vector<double>& values, double p) {
    if (values.empty()) return 0;
    const auto rank = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
    std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(rank), values.end());
    return values[rank];
}

// A number written in full: "12abc" or "" is refused, not read as 12 or a crash.
bool number_in_full(const std::string& text, double& out) {
    std::size_t used = 0;
    try {
        out = std::stod(text, &used);
    } catch (const std::exception&) {
        return false;
    }
    return used == text.size();
}

bool parse(int argc, char** argv, Options& options) {
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        const std::string value = argv[i + 1];
        double number = 0;
        const bool numeric = number_in_full(value, number);
        if (flag == "--host") options.host = value;
        else if (flag == "--key") options.key = value;
        else if (flag == "--prefix") options.prefix = value;
        else if (!numeric || number > 1e6) return false;
        else if (flag == "--port") options.port = static_cast<int>(number);
        else if (flag == "--connections") options.connections = static_cast<int>(number);
        else if (flag == "--seconds") options.seconds = number;
        else if (flag == "--users") options.users = static_cast<int>(number);
        else return false;
    }
    return options.port > 0 && options.port < 65536 && !options.key.empty() && options.connections > 0 &&
           options.connections <= 4096 && options.seconds > 0 && options.users >= 1;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    if (argc % 2 == 0 || !parse(argc, argv, options)) {
        std::cerr << "usage: load_client --port P --key SERVICE_KEY [--host H] [--connections N] [--seconds S] "
                     "[--users N] [--prefix P]\n";
        return 2;
    }
    {
        std::atomic<int> failed{0};
        std::vector<std::thread> openers;
        for (int i = 0; i < options.connections; ++i) {
            openers.emplace_back([&, i] {
                if (!open_accounts(options, i, options.connections)) failed += 1;
            });
        }
        for (auto& opener : openers) opener.join();
        if (failed > 0) {
            std::cerr << "load_client: could not open the users' accounts before the run\n";
            return 1;
        }
    }
    std::vector<Samples> samples(static_cast<std::size_t>(options.connections));
    std::vector<std::thread> threads;
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.seconds));
    for (int i = 0; i < options.connections; ++i) {
        threads.emplace_back(run_connection, std::cref(options), i, deadline, std::ref(samples[static_cast<std::size_t>(i)]));
    }
    for (auto& thread : threads) thread.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    Samples all;
    for (auto& s : samples) {
        all.request_ms.insert(all.request_ms.end(), s.request_ms.begin(), s.request_ms.end());
        all.pair_ms.insert(all.pair_ms.end(), s.pair_ms.begin(), s.pair_ms.end());
        all.pairs += s.pairs;
        all.errors += s.errors;
    }
    std::printf(
        "{\"connections\":%d,\"users\":%d,\"seconds\":%.2f,\"pairs\":%llu,\"pairs_per_second\":%.0f,"
        "\"request_p50_ms\":%.3f,\"request_p99_ms\":%.3f,\"pair_p50_ms\":%.3f,\"pair_p99_ms\":%.3f,\"errors\":%llu}\n",
        options.connections, options.users, elapsed, static_cast<unsigned long long>(all.pairs),
        static_cast<double>(all.pairs) / elapsed, percentile(all.request_ms, 0.50), percentile(all.request_ms, 0.99),
        percentile(all.pair_ms, 0.50), percentile(all.pair_ms, 0.99), static_cast<unsigned long long>(all.errors));
    return all.errors == 0 ? 0 : 1;
}
