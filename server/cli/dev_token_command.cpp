#include "cli/dev_token_command.hpp"

#include <charconv>
#include <chrono>
#include <optional>
#include <ostream>
#include <string>

#include "auth/jwt.hpp"

namespace tokenmeter::cli {

namespace {

constexpr const char* usage = "usage: tokenmeter dev-token --secret S --sub USER [--ttl SECONDS]\n";

// The server refuses shorter secrets (config validation), so a token minted
// with one could never be accepted.
constexpr std::size_t secret_chars_min = 32;

struct DevTokenFlags {
    std::optional<std::string> secret;
    std::optional<std::string> sub;
    std::int64_t ttl_seconds = 3600;
};

std::optional<std::string> parse_ttl(std::string_view text, std::int64_t& ttl) {
    std::int64_t parsed = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), parsed);
    if (error != std::errc() || end != text.data() + text.size() || parsed <= 0) {
        return "--ttl needs a positive number of seconds, not \"" + std::string(text) + "\"";
    }
    ttl = parsed;
    return std::nullopt;
}

std::optional<std::string> parse_flags(Args args, DevTokenFlags& flags) {
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        if (arg != "--secret" && arg != "--sub" && arg != "--ttl") return "unknown option \"" + std::string(arg) + "\"";
        if (i + 1 >= args.size()) return std::string(arg) + " needs a value";
        const std::string_view value = args[++i];
        if (arg == "--secret") flags.secret = std::string(value);
        if (arg == "--sub") flags.sub = std::string(value);
        if (arg == "--ttl") {
            if (auto problem = parse_ttl(value, flags.ttl_seconds)) return problem;
        }
    }
    if (!flags.secret) return "--secret is required";
    if (!flags.sub) return "--sub is required";
    if (flags.secret->size() < secret_chars_min) {
        return "--secret must be at least " + std::to_string(secret_chars_min) +
               " characters (the server refuses shorter JWT secrets)";
    }
    return std::nullopt;
}

}  // namespace

int dev_token_command(Args args, Streams streams) {
    DevTokenFlags flags;
    if (auto problem = parse_flags(args, flags)) {
        streams.err << "tokenmeter dev-token: " << *problem << "\n" << usage;
        return 2;
    }
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto token = auth::mint_hs256_token(*flags.secret, *flags.sub, now, flags.ttl_seconds);
    if (!token) {
        streams.err << "tokenmeter dev-token: " << token.error().message << "\n" << usage;
        return 2;
    }
    streams.out << *token << "\n";
    return 0;
}

}  // namespace tokenmeter::cli
