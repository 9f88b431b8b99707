#include "cli/verify_command.hpp"

#include <fstream>
#include <istream>
#include <iterator>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenmeter/period.hpp"
#include "tokenmeter/statement.hpp"

namespace tokenmeter::cli {

namespace {

constexpr const char* usage =
    "usage: tokenmeter verify FILE [--keys JWKS_FILE]\n"
    "\n"
    "Checks a statement offline: every receipt's Ed25519 signature, the prev\n"
    "chain from the receipt before the period (the anchor) to the period's last,\n"
    "and that the charges add up to the balances the receipts sign.\n"
    "\n"
    "  FILE             the JSON statement (GET /v1/me/statement); - reads stdin.\n"
    "                   The CSV form is for spreadsheets and is not verified.\n"
    "  --keys JWKS_FILE pin the server's keys: a JWKS as GET /v1/keys serves it\n"
    "                   (or one public JWK). Without it the keys embedded in the\n"
    "                   statement are used, which proves the statement is whole\n"
    "                   and unaltered, but not whose key signed it.\n"
    "\n"
    "Exit status: 0 verified (one summary line), 1 refused (the reason's code:\n"
    "malformed, bad_signature, wrong_user, period_mismatch, broken_chain,\n"
    "charge_mismatch), 2 usage error or unreadable file.\n";

// Statements of heavy users are large; past this it is not one of ours.
constexpr std::size_t statement_bytes_max = std::size_t{256} << 20;

std::optional<std::string> read_input(std::string_view path, std::istream& in, std::string& problem) {
    std::string text;
    if (path == "-") {
        text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else {
        std::ifstream file{std::string(path), std::ios::binary};
        if (!file) {
            problem = "cannot read " + std::string(path);
            return std::nullopt;
        }
        text.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    }
    if (text.size() > statement_bytes_max) {
        problem = std::string(path) + " is larger than any statement (" + std::to_string(statement_bytes_max) + " bytes)";
        return std::nullopt;
    }
    return text;
}

// A JWKS, or one JWK (as keygen prints it), as a JWKS.
std::string as_jwks(const std::string& text) {
    auto parsed = nlohmann::json::parse(text, nullptr, false);
    if (parsed.is_object() && parsed.contains("kty") && !parsed.contains("keys")) {
        return nlohmann::json{{"keys", nlohmann::json::array({parsed})}}.dump();
    }
    return text;
}

}  // namespace

int verify_command(Args args, Streams streams) {
    std::optional<std::string_view> file;
    std::optional<std::string_view> keys_file;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        if (arg == "--help" || arg == "-h") {
            streams.out << usage;
            return 0;
        }
        if (arg == "--keys") {
            if (i + 1 >= args.size() || keys_file) {
                streams.err << "tokenmeter verify: --keys needs one file\n" << usage;
                return 2;
            }
            keys_file = args[++i];
        } else if (arg.size() > 1 && arg[0] == '-') {
            streams.err << "tokenmeter verify: unknown option \"" << std::string(arg) << "\"\n" << usage;
            return 2;
        } else if (file) {
            streams.err << "tokenmeter verify: one statement at a time\n" << usage;
            return 2;
        } else {
            file = arg;
        }
    }
    if (!file) {
        streams.err << "tokenmeter verify: which statement? (a FILE, or - for stdin)\n" << usage;
        return 2;
    }
    std::string problem;
    auto statement = read_input(*file, streams.in, problem);
    if (!statement) {
        streams.err << "tokenmeter verify: " << problem << "\n";
        return 2;
    }
    std::vector<VerificationKey> keys;
    if (keys_file) {
        auto jwks = read_input(*keys_file, streams.in, problem);
        if (!jwks) {
            streams.err << "tokenmeter verify: " << problem << "\n";
            return 2;
        }
        auto parsed = parse_jwks(as_jwks(*jwks));
        if (!parsed || parsed->empty()) {
            streams.err << "tokenmeter verify: " << std::string(*keys_file) << " holds no Ed25519 key"
                        << (parsed ? std::string() : " (" + parsed.error().message + ")") << "\n";
            return 2;
        }
        keys = std::move(parsed).value();
    } else {
        auto embedded = statement_keys(*statement);
        if (!embedded) {
            streams.err << "tokenmeter verify: refused: " << embedded.error().code << ": " << embedded.error().message
                        << "\n";
            return 1;
        }
        keys = std::move(embedded).value();
    }
    auto summary = verify_statement(*statement, keys);
    if (!summary) {
        streams.err << "tokenmeter verify: refused: " << summary.error().code << ": " << summary.error().message << "\n";
        return 1;
    }
    streams.out << "verified: user " << summary->user_id << ", period " << format_rfc3339(summary->period_start)
                << " to " << format_rfc3339(summary->period_end) << " (" << summary->plan << "), " << summary->receipts
                << " receipts seq " << summary->first_seq << "-" << summary->last_seq
                << (summary->anchored ? " chained to seq " + std::to_string(summary->first_seq - 1) : std::string(" from the first"))
                << ", " << summary->charges << " charges adding up to " << summary->tokens_used << " tokens and "
                << summary->avatars_used << " avatars used; keys "
                << (keys_file ? "pinned from " + std::string(*keys_file) : std::string("embedded in the statement (not pinned)"))
                << "\n";
    return 0;
}

}  // namespace tokenmeter::cli
