// lemonsqueezy_standin: the local LemonSqueezy stand-in as a process (see
// standin.hpp for what it serves).
//
//   lemonsqueezy_standin [--listen HOST:PORT] [--webhook-url URL]
//                        [--webhook-secret S | --webhook-secret-file FILE]
//                        [--store-id ID] [--variant-id ID] [--api-key KEY]
//                        [--public-url URL] [--page-size-max N]
//                        [--fail MODE] [--slow-ms MS]
//                        [--pack-variants ID,ID…] [--variant-price ID=CENTS]…
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "standin.hpp"

namespace {

const char* usage =
    "usage: lemonsqueezy_standin [--listen HOST:PORT] [--webhook-url URL]\n"
    "         [--webhook-secret S | --webhook-secret-file FILE] [--store-id ID] [--variant-id ID]\n"
    "         [--api-key KEY] [--public-url URL] [--page-size-max N] [--fail MODE] [--slow-ms MS]\n"
    "         [--pack-variants ID,ID...] [--variant-price ID=CENTS]...\n";

bool all_digits(const std::string& text) {
    return !text.empty() && text.size() <= 18 && text.find_first_not_of("0123456789") == std::string::npos;
}

// "7,8" -> {"7", "8"}; false on an empty or non-numeric id.
bool parse_pack_variants(const std::string& value, std::vector<std::string>& out) {
    std::size_t start = 0;
    while (start <= value.size()) {
        const std::size_t comma = std::min(value.find(',', start), value.size());
        const std::string id = value.substr(start, comma - start);
        if (!all_digits(id)) return false;
        out.push_back(id);
        start = comma + 1;
    }
    return true;
}

// "7=4900" -> prices["7"] = 4900; false unless both sides are numbers.
bool parse_variant_price(const std::string& value, std::map<std::string, std::int64_t>& prices) {
    const auto equals = value.find('=');
    if (equals == std::string::npos) return false;
    const std::string id = value.substr(0, equals);
    const std::string cents = value.substr(equals + 1);
    if (!all_digits(id) || !all_digits(cents)) return false;
    prices[id] = std::stoll(cents);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    tokenmeter::standin::StandinOptions options;
    std::string listen = "127.0.0.1:8788";
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::cout << usage;
            return 0;
        }
        if (i + 1 >= argc) {
            std::cerr << "lemonsqueezy_standin: " << arg << " needs a value\n" << usage;
            return 2;
        }
        const std::string value = argv[++i];
        if (arg == "--listen") listen = value;
        else if (arg == "--webhook-url") options.webhook_url = value;
        else if (arg == "--webhook-secret") options.webhook_secret = value;
        else if (arg == "--webhook-secret-file") options.webhook_secret_file = value;
        else if (arg == "--store-id") options.store_id = value;
        else if (arg == "--variant-id") options.variant_id = value;
        else if (arg == "--api-key") options.api_key = value;
        else if (arg == "--public-url") options.public_url = value;
        else if (arg == "--page-size-max") options.page_size_max = std::stoi(value);
        else if (arg == "--fail") options.fail_mode = value;
        else if (arg == "--slow-ms") options.slow_ms = std::stoi(value);
        else if (arg == "--pack-variants") {
            if (!parse_pack_variants(value, options.pack_variant_ids)) {
                std::cerr << "lemonsqueezy_standin: --pack-variants takes numeric ids separated by commas (7,8)\n";
                return 2;
            }
        } else if (arg == "--variant-price") {
            if (!parse_variant_price(value, options.variant_prices)) {
                std::cerr << "lemonsqueezy_standin: --variant-price takes ID=CENTS (7=4900)\n";
                return 2;
            }
        } else {
            std::cerr << "lemonsqueezy_standin: unknown option " << arg << "\n" << usage;
            return 2;
        }
    }
    const auto address = tokenmeter::standin_support::parse_listen(listen);
    if (!address) {
        std::cerr << "lemonsqueezy_standin: --listen must be HOST:PORT\n";
        return 2;
    }
    tokenmeter::standin::Standin standin(options);
    const int bound = standin.bind(address->first, address->second);
    if (bound <= 0) {
        std::cerr << "lemonsqueezy_standin: cannot listen on " << listen << "\n";
        return 1;
    }
    const std::string details = "store " + options.store_id + ", variant " + options.variant_id + ", webhooks to " +
                                (options.webhook_url.empty() ? std::string("nowhere") : options.webhook_url);
    return tokenmeter::standin_support::serve_until_signal(
        "lemonsqueezy_standin", "http://" + address->first + ":" + std::to_string(bound), details, [&] { return standin.serve(); }, [&] { standin.stop(); });
}
