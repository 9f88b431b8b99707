// openai_standin: the local OpenAI-compatible stand-in as a process (see
// standin.hpp for what it serves).
//
//   openai_standin [--listen HOST:PORT] [--api-key KEY] [--scenario NAME]
//                  [--slow-first-byte-ms MS] [--chunk-delay-ms MS]
#include <iostream>
#include <string>

#include "standin.hpp"

namespace {

const char* usage =
    "usage: openai_standin [--listen HOST:PORT] [--api-key KEY] [--scenario NAME] [--slow-first-byte-ms MS]\n"
    "                      [--chunk-delay-ms MS]\n"
    "  scenarios: normal cut no_usage slow_first_byte rate_limited server_error bad_request cached reasoning hang\n";

bool is_number(const std::string& text) {
    return !text.empty() && text.size() <= 9 && text.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

int main(int argc, char** argv) {
    tokenmeter::openai_standin::StandinOptions options;
    std::string listen = "127.0.0.1:8789";
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::cout << usage;
            return 0;
        }
        if (i + 1 >= argc) {
            std::cerr << "openai_standin: " << arg << " needs a value\n" << usage;
            return 2;
        }
        const std::string value = argv[++i];
        if (arg == "--listen") listen = value;
        else if (arg == "--api-key") options.api_key = value;
        else if (arg == "--scenario") options.scenario = value;
        else if (arg == "--slow-first-byte-ms" && is_number(value)) options.slow_first_byte_ms = std::stoll(value);
        else if (arg == "--chunk-delay-ms" && is_number(value)) options.chunk_delay_ms = std::stoll(value);
        else {
            std::cerr << "openai_standin: bad option " << arg << " " << value << "\n" << usage;
            return 2;
        }
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
