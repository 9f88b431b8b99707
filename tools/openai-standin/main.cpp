// openai_standin: the local OpenAI-compatible stand-in as a process (see
// standin.hpp for what it serves).
//
//   openai_standin [--listen HOST:PORT] [--api-key KEY] [--scenario NAME]
//                  [--slow-first-byte-ms MS] [--chunk-delay-ms MS]
#include <cstdint>
#include <iostream>
#include <string>

#include "standin.hpp"

namespace {

const char* usage =
    "usage: openai_standin [--listen HOST:PORT] [--api-key KEY] [--scenario NAME] [--slow-first-byte-ms MS]\n"
    "                      [--chunk-delay-ms MS]\n"
    "  scenarios: normal cut no_usage slow_first_byte rate_limited server_error bad_request cached reasoning hang\n"
    "             flood endless_event\n";

// The longest pause the flags take (about 11.5 days: far past any test).
constexpr std::int64_t delay_ms_max = 999'999'999;

}  // namespace

int main(int argc, char** argv) {
    using tokenmeter::standin_support::number_option;
    using tokenmeter::standin_support::text_option;
    tokenmeter::openai_standin::StandinOptions options;
    std::string listen = "127.0.0.1:8789";
    const tokenmeter::standin_support::OptionTable table = {
        {"--listen", text_option(listen)},
        {"--api-key", text_option(options.api_key)},
        {"--scenario", text_option(options.scenario)},
        {"--slow-first-byte-ms", number_option(options.slow_first_byte_ms, 0, delay_ms_max)},
        {"--chunk-delay-ms", number_option(options.chunk_delay_ms, 0, delay_ms_max)},
    };
    if (const auto exit_code = tokenmeter::standin_support::read_options(argc, argv, table, "openai_standin", usage)) {
        return *exit_code;
    }
    if (!tokenmeter::openai_standin::scenario_from_name(options.scenario)) {
        std::cerr << "openai_standin: unknown scenario " << options.scenario << "\n" << usage;
        return 2;
    }
    const auto address = tokenmeter::standin_support::parse_listen(listen);
    if (!address) {
        std::cerr << "openai_standin: --listen must be HOST:PORT\n";
        return 2;
    }
    tokenmeter::openai_standin::Standin standin(options);
    const int bound = standin.bind(address->first, address->second);
    if (bound <= 0) {
        std::cerr << "openai_standin: cannot listen on " << listen << "\n";
        return 1;
    }
    const std::string details = std::string("API key ") + (options.api_key.empty() ? "not checked" : "required") +
                                ", default scenario " + options.scenario;
    return tokenmeter::standin_support::serve_until_signal(
        "openai_standin", "http://" + address->first + ":" + std::to_string(bound), details, [&] { return standin.serve(); }, [&] { standin.stop(); });
}
