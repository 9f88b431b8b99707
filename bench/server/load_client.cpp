// A load client for the ledger API, in two modes.
//
// Closed loop (default): each connection runs authorize -> commit pairs back
// to back over one keep-alive HTTP connection and records how long each
// request and each pair took.
//
//   load_client --port P --key SERVICE_KEY [--host H] [--connections 64]
//               [--seconds 10] [--users 10000 | --users 1 (one hot user)]
//
// Prints one JSON line: pairs/s, requests/s, request and pair latency
// percentiles, errors. With --target healthz each connection sends GET
// /healthz back to back instead (no key needed): the same client's measure of
// what a trivial request costs, to set the ledger's figures against.
//
// Burst (--burst N): N clients, each with its own new connection, are held
// at a barrier and released together; each sends one request and records how
// long it waited for the answer (connect included). It measures what a crowd
// arriving at once sees, which the closed loop, with its few long-lived
// connections, never shows.
//
//   load_client --burst 500 --port P [--target healthz | authorize --key SERVICE_KEY]
//               [--users N (default: one distinct user per client) | --users 1]
//               [--rounds 1] [--timeout 30] [--keep-alive 1 | 0]
//
// - authorize: POST /v1/usage/authorize as the service key, each client with
//   its own Idempotency-Key, for user u(client % users).
// - --keep-alive 1 (default): HTTP/1.1's default, as a browser or a backend's
//   connection pool does: every client keeps its connection open after its
//   answer until the whole round is answered. 0: "Connection: close".
// - Rounds start with fresh connections, half a second after the last one.
//
// Prints one JSON line: the time from the release until every client had its
// answer or failure (median and worst round), p50/p99/max over the answered
// (200) requests, and the failures by kind; a failure that took the whole
// timeout is also counted as timed out.
//
// In both modes every user's account is opened once (a read of
// /v1/users/{id}/usage) before the clock starts, so the timed run measures
// existing accounts, as pgbench measures initialized tables, not first uses.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <random>
#include <exception>
#include <set>
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
    // Burst mode (0: closed loop).
    int burst = 0;
    std::string target;  // burst: healthz (default) or authorize; closed loop: pairs (default) or healthz
    int rounds = 1;
    double timeout_seconds = 30;
    bool keep_alive = true;
};

struct Samples {
    std::vector<double> request_ms;
    std::vector<double> pair_ms;
    std::uint64_t pairs = 0;
    std::uint64_t requests = 0;
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

void run_healthz_connection(const Options& options, Clock::time_point deadline, Samples& samples) {
    httplib::Client client(options.host, options.port);
    client.set_keep_alive(true);
    client.set_tcp_nodelay(true);
    client.set_read_timeout(10, 0);
    while (Clock::now() < deadline) {
        const auto start = Clock::now();
        auto response = client.Get("/healthz");
        samples.request_ms.push_back(ms_since(start));
        samples.requests += 1;
        if (!response || response->status != 200) samples.errors += 1;
    }
}

void run_connection(const Options& options, int index, Clock::time_point deadline, Samples& samples) {
    if (options.target == "healthz") return run_healthz_connection(options, deadline, samples);
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
        samples.requests += 1;
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
        samples.requests += 1;
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
    // Flags that only one mode reads: giving one to the other mode is a mistake.
    static const std::set<std::string> closed_loop_only = {"--connections", "--seconds"};
    static const std::set<std::string> burst_only = {"--rounds", "--timeout", "--keep-alive"};
    std::set<std::string> given;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        const std::string value = argv[i + 1];
        if (!given.insert(flag).second) return false;
        double number = 0;
        const bool numeric = number_in_full(value, number);
        // Counts and ports are whole: "1.5" clients is a typo, not 1.
        const bool whole = numeric && number >= 0 && number <= 1e6 && std::floor(number) == number;
        if (flag == "--host") options.host = value;
        else if (flag == "--key") options.key = value;
        else if (flag == "--prefix") options.prefix = value;
        else if (flag == "--target") options.target = value;
        else if (flag == "--seconds" || flag == "--timeout") {
            if (!numeric || !(number > 0) || number > 1e6) return false;
            (flag == "--seconds" ? options.seconds : options.timeout_seconds) = number;
        } else if (!whole) return false;
        else if (flag == "--port") options.port = static_cast<int>(number);
        else if (flag == "--connections") options.connections = static_cast<int>(number);
        else if (flag == "--users") options.users = static_cast<int>(number);
        else if (flag == "--burst") options.burst = static_cast<int>(number);
        else if (flag == "--rounds") options.rounds = static_cast<int>(number);
        else if (flag == "--keep-alive" && number <= 1) options.keep_alive = number == 1;
        else return false;
    }
    const bool burst = given.contains("--burst");
    if (options.target.empty()) options.target = burst ? "healthz" : "pairs";
    for (const auto& flag : burst ? closed_loop_only : burst_only) {
        if (given.contains(flag)) return false;
    }
    // One distinct user per client unless --users says otherwise.
    if (burst && !given.contains("--users")) options.users = options.burst;
    const bool needs_key = options.target == "pairs" || options.target == "authorize";
    const bool common = options.port > 0 && options.port < 65536 && (!needs_key || !options.key.empty()) && options.users >= 1;
    if (!burst) {
        return common && options.connections > 0 && options.connections <= 4096 &&
               (options.target == "pairs" || options.target == "healthz");
    }
    return common && options.burst >= 1 && options.burst <= 10000 && options.rounds >= 1 && options.rounds <= 1000 &&
           options.timeout_seconds <= 600 && (options.target == "healthz" || options.target == "authorize");
}

// Reads the clock when a barrier opens: in the completion step, before any
// party (the main thread included) is woken and scheduled.
struct Stamp {
    Clock::time_point* at;
    void operator()() noexcept { *at = Clock::now(); }
};
using Barrier = std::barrier<Stamp>;

struct Outcome {
    double ms = 0;
    int status = 0;  // 0: no answer (see error)
    httplib::Error error = httplib::Error::Success;
};

// One client of one round: a new connection, one request, its outcome. The
// connection stays open (keep-alive) until `round_over` is released.
void burst_client(const Options& options, int client, int round, Barrier& start, Barrier& round_over,
                  Outcome& outcome) {
    httplib::Client connection(options.host, options.port);
    connection.set_keep_alive(options.keep_alive);
    connection.set_tcp_nodelay(true);
    const auto whole = static_cast<time_t>(options.timeout_seconds);
    const auto micros = static_cast<time_t>((options.timeout_seconds - static_cast<double>(whole)) * 1e6);
    connection.set_connection_timeout(whole, micros);
    connection.set_read_timeout(whole, micros);
    connection.set_write_timeout(whole, micros);
    const std::string key = options.prefix + "-" + std::to_string(round) + "-" + std::to_string(client);
    const httplib::Headers headers = {{"Authorization", "Bearer " + options.key}, {"Idempotency-Key", key}};
    const std::string body = R"({"user_id":"u)" + std::to_string(client % options.users) +
                             R"(","operation":"chat","model":"gpt-4o-mini","input_tokens":100,"max_output_tokens":50})";
    start.arrive_and_wait();
    const auto sent = Clock::now();
    auto result = options.target == "healthz" ? connection.Get("/healthz")
                                              : connection.Post("/v1/usage/authorize", headers, body, "application/json");
    outcome.ms = ms_since(sent);
    outcome.status = result ? result->status : 0;
    outcome.error = result.error();
    round_over.arrive_and_wait();
}

int run_burst(const Options& options) {
    const auto clients = static_cast<std::size_t>(options.burst);
    std::vector<Outcome> outcomes(clients * static_cast<std::size_t>(options.rounds));
    std::vector<double> round_ms;
    Clock::time_point released;
    Clock::time_point all_done;
    // The main thread is one more party, so it knows when a round is over.
    Barrier start(options.burst + 1, Stamp{&released});
    Barrier round_over(options.burst + 1, Stamp{&all_done});
    for (int round = 0; round < options.rounds; ++round) {
        if (round > 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the last round's connections close
        std::vector<std::thread> threads;
        threads.reserve(clients);
        for (std::size_t i = 0; i < clients; ++i) {
            threads.emplace_back(burst_client, std::cref(options), static_cast<int>(i), round, std::ref(start),
                                 std::ref(round_over), std::ref(outcomes[static_cast<std::size_t>(round) * clients + i]));
        }
        start.arrive_and_wait();
        round_over.arrive_and_wait();
        round_ms.push_back(std::chrono::duration<double, std::milli>(all_done - released).count());
        for (auto& thread : threads) thread.join();
    }
    std::vector<double> answered_ms;
    std::map<std::string, int> failures;
    int timed_out = 0;
    for (const auto& outcome : outcomes) {
        if (outcome.status == 200) {
            answered_ms.push_back(outcome.ms);
            continue;
        }
        failures[outcome.status != 0 ? "status " + std::to_string(outcome.status) : httplib::to_string(outcome.error)] += 1;
        if (outcome.ms >= options.timeout_seconds * 1000 * 0.99) timed_out += 1;
    }
    std::string failure_json;
    for (const auto& [kind, count] : failures) {
        failure_json += (failure_json.empty() ? "\"" : ",\"") + kind + "\":" + std::to_string(count);
    }
    const std::size_t answered = answered_ms.size();
    const double max_ms = answered_ms.empty() ? 0 : *std::max_element(answered_ms.begin(), answered_ms.end());
    const double worst_round_ms = *std::max_element(round_ms.begin(), round_ms.end());
    std::printf(
        "{\"target\":\"%s\",\"clients\":%d,\"users\":%d,\"rounds\":%d,\"keep_alive\":%s,\"all_done_ms\":%.1f,"
        "\"all_done_worst_ms\":%.1f,\"answered\":%zu,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,"
        "\"failed\":%zu,\"timed_out\":%d,\"failures\":{%s}}\n",
        options.target.c_str(), options.burst, options.users, options.rounds, options.keep_alive ? "true" : "false",
        percentile(round_ms, 0.5), worst_round_ms, answered,
        percentile(answered_ms, 0.50), percentile(answered_ms, 0.99), max_ms, outcomes.size() - answered, timed_out,
        failure_json.c_str());
    return answered == outcomes.size() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    if (argc % 2 == 0 || !parse(argc, argv, options)) {
        std::cerr << "usage: load_client --port P [--target pairs --key SERVICE_KEY | --target healthz] [--host H] "
                     "[--connections N] [--seconds S] [--users N] [--prefix P]\n"
                     "       load_client --burst N --port P [--target healthz | authorize --key SERVICE_KEY] [--host H] "
                     "[--users N] [--rounds R] [--timeout S] [--keep-alive 1|0] [--prefix P]\n";
        return 2;
    }
    if (options.target != "healthz") {
        // The burst opens accounts over a few connections: a crowd of
        // openers would be a burst of its own before the measured one.
        const int openers_count = options.burst == 0 ? options.connections : 16;
        std::atomic<int> failed{0};
        std::vector<std::thread> openers;
        for (int i = 0; i < openers_count; ++i) {
            openers.emplace_back([&, i] {
                if (!open_accounts(options, i, openers_count)) failed += 1;
            });
        }
        for (auto& opener : openers) opener.join();
        if (failed > 0) {
            std::cerr << "load_client: could not open the users' accounts before the run\n";
            return 1;
        }
    }
    if (options.burst > 0) return run_burst(options);
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
        all.requests += s.requests;
        all.errors += s.errors;
    }
    std::printf(
        "{\"target\":\"%s\",\"connections\":%d,\"users\":%d,\"seconds\":%.2f,\"pairs\":%llu,\"pairs_per_second\":%.0f,"
        "\"requests_per_second\":%.0f,"
        "\"request_p50_ms\":%.3f,\"request_p99_ms\":%.3f,\"pair_p50_ms\":%.3f,\"pair_p99_ms\":%.3f,\"errors\":%llu}\n",
        options.target.c_str(), options.connections, options.users, elapsed, static_cast<unsigned long long>(all.pairs),
        static_cast<double>(all.pairs) / elapsed, static_cast<double>(all.requests) / elapsed, percentile(all.request_ms, 0.50), percentile(all.request_ms, 0.99),
        percentile(all.pair_ms, 0.50), percentile(all.pair_ms, 0.99), static_cast<unsigned long long>(all.errors));
    return all.errors == 0 ? 0 : 1;
}
