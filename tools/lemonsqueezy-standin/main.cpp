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

// The largest --page-size-max and --slow-ms taken (--slow-ms: about 11.5
// days, far past any client's timeout).
constexpr std::int64_t number_max = 999'999'999;

}  // namespace

int main(int argc, char** argv) {
    using tokenmeter::standin_support::number_option;
    using tokenmeter::standin_support::text_option;
    tokenmeter::standin::StandinOptions options;
    std::string listen = "127.0.0.1:8788";
    const tokenmeter::standin_support::OptionTable table = {
        {"--listen", text_option(listen)},
        {"--webhook-url", text_option(options.webhook_url)},
        {"--webhook-secret", text_option(options.webhook_secret)},
        {"--webhook-secret-file", text_option(options.webhook_secret_file)},
        {"--store-id", text_option(options.store_id)},
        {"--variant-id", text_option(options.variant_id)},
        {"--api-key", text_option(options.api_key)},
        {"--public-url", text_option(options.public_url)},
        // Lists clamp page[size] to 1..this.
        {"--page-size-max", number_option(options.page_size_max, 1, number_max)},
        {"--fail", text_option(options.fail_mode)},
        {"--slow-ms", number_option(options.slow_ms, 0, number_max)},
        {"--pack-variants",
         [&](const std::string& value) {
             return parse_pack_variants(value, options.pack_variant_ids)
                        ? std::string()
                        : std::string("takes numeric ids separated by commas (7,8)");
         }},
        {"--variant-price",
         [&](const std::string& value) {
             return parse_variant_price(value, options.variant_prices) ? std::string()
                                                                       : std::string("takes ID=CENTS (7=4900)");
         }},
    };
    if (const auto exit_code =
            tokenmeter::standin_support::read_options(argc, argv, table, "lemonsqueezy_standin", usage)) {
        return *exit_code;
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
