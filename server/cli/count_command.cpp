#include "cli/count_command.hpp"

#include <charconv>
#include <fstream>
#include <istream>
#include <optional>
#include <ostream>
#include <string>

#include "tokenmeter/catalog.hpp"
#include "tokenmeter/embedded_encodings.hpp"
#include "tokenmeter/limits.hpp"
#include "tokenmeter/token_count.hpp"

namespace tokenmeter::cli {

namespace {

constexpr std::string_view usage =
    "usage: tokenmeter count (--model M | --encoding E) [--ids] [--chat] [FILE|-]\n"
    "  --model M     count for model M of the default catalog (e.g. gpt-4o)\n"
    "  --encoding E  count with encoding E (o200k_base, cl100k_base)\n"
    "  --ids         print the token ids, separated by spaces, instead of the count\n"
    "  --chat        the input is a JSON array of OpenAI chat messages\n"
    "  FILE|-        the text to count (default: standard input)\n";

struct Options {
    std::optional<std::string> model;
    std::optional<std::string> encoding;
    bool ids = false;
    bool chat = false;
    std::optional<std::string> file;
    bool help = false;
};

// A usage error: the message, already phrased for the user.
struct UsageError {
    std::string message;
};

Result<Options, UsageError> parse_options(Args args) {
    Options options;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        auto value_of = [&](std::string_view name, std::optional<std::string>& out) -> std::optional<UsageError> {
            if (out) return UsageError{std::string(name) + " is given twice"};
            if (arg.size() > name.size() && arg[name.size()] == '=') {
                out = std::string(arg.substr(name.size() + 1));
            } else if (i + 1 < args.size()) {
                out = std::string(args[++i]);
            } else {
                return UsageError{std::string(name) + " needs a value"};
            }
            return std::nullopt;
        };
        std::optional<UsageError> error;
        if (arg == "--help" || arg == "-h") {
            options.help = true;
        } else if (arg == "--ids") {
            options.ids = true;
        } else if (arg == "--chat") {
            options.chat = true;
        } else if (arg == "--model" || arg.starts_with("--model=")) {
            error = value_of("--model", options.model);
        } else if (arg == "--encoding" || arg.starts_with("--encoding=")) {
            error = value_of("--encoding", options.encoding);
        } else if (arg != "-" && arg.starts_with("-")) {
            error = UsageError{"unknown option " + std::string(arg)};
        } else if (options.file) {
            error = UsageError{"only one FILE may be given"};
        } else {
            options.file = std::string(arg);
        }
        if (error) return unexpected(std::move(*error));
    }
    if (options.help) return options;
    if (options.model.has_value() == options.encoding.has_value()) {
        return unexpected(UsageError{"give exactly one of --model and --encoding"});
    }
    if (options.ids && options.chat) return unexpected(UsageError{"--ids and --chat do not go together"});
    return options;
}

std::string known_names() {
    std::string out = "known models:";
    for (const Model& model : default_catalog().models) out += " " + model.id;
    out += "; known encodings: o200k_base cl100k_base";
    return out;
}

// The tokenizer a --model or --encoding names.
Result<TokenizerKind, UsageError> tokenizer_of(const Options& options) {
    if (options.model) {
        const Model* model = default_catalog().find_model(*options.model);
        if (model == nullptr) return unexpected(UsageError{"unknown model \"" + *options.model + "\"; " + known_names()});
        return model->tokenizer;
    }
    const auto kind = tokenizer_kind_from_string(*options.encoding);
    if (!kind || *kind == TokenizerKind::estimate) {
        return unexpected(UsageError{"unknown encoding \"" + *options.encoding + "\"; " + known_names()});
    }
    return *kind;
}

// Reads all of `in`, refusing more than limits::text_bytes_max bytes.
std::optional<std::string> read_all(std::istream& in, std::string& error) {
    std::string text;
    constexpr std::size_t chunk = std::size_t{1} << 20;
    while (in) {
        const std::size_t used = text.size();
        text.resize(used + chunk);
        in.read(text.data() + used, static_cast<std::streamsize>(chunk));
        text.resize(used + static_cast<std::size_t>(in.gcount()));
        if (text.size() > limits::text_bytes_max) {
            error = "the input is larger than " + std::to_string(limits::text_bytes_max) + " bytes";
            return std::nullopt;
        }
    }
    if (in.bad()) {
        error = "the input could not be read";
        return std::nullopt;
    }
    return text;
}

std::optional<std::string> read_input(const Options& options, std::istream& standard_input, std::string& error) {
    if (!options.file || *options.file == "-") return read_all(standard_input, error);
    std::ifstream file(*options.file, std::ios::binary);
    if (!file) {
        error = "cannot open " + *options.file;
        return std::nullopt;
    }
    return read_all(file, error);
}

void print_ids(std::ostream& out, const std::vector<TokenId>& ids) {
    std::string line;
    line.reserve(ids.size() * 7 + 1);
    char buffer[16];
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (i > 0) line += ' ';
        const auto result = std::to_chars(buffer, buffer + sizeof buffer, ids[i]);
        line.append(buffer, result.ptr);
    }
    line += '\n';
    out << line;
}

int fail(Streams streams, std::string_view message) {
    streams.err << "tokenmeter count: " << message << "\n";
    return 2;
}

// Counts `text` (already read) as the options say; prints the result.
int count_input(const Options& options, TokenizerKind tokenizer, std::string_view text, Streams streams) {
    const Encoding& encoding = embedded_encoding(encoding_kind_for(tokenizer));
    if (options.ids) {
        if (tokenizer == TokenizerKind::estimate) {
            return fail(streams, "--ids needs an exact tokenizer; " + *options.model + " is counted by an estimate");
        }
        auto ids = encoding.encode_ordinary(text);
        if (!ids) return fail(streams, ids.error().message);
        print_ids(streams.out, *ids);
        return 0;
    }
    Result<TokenCount, Error> counted = TokenCount{};
    if (options.chat) {
        auto messages = parse_chat_messages(text);
        if (!messages) return fail(streams, messages.error().message);
        counted = count_chat_tokens(encoding, tokenizer, *messages);
    } else {
        counted = count_text_tokens(encoding, tokenizer, text);
    }
    if (!counted) return fail(streams, counted.error().message);
    streams.out << counted->tokens << "\n";
    if (!counted->exact) {
        streams.err << "tokenmeter count: " << *options.model
                    << " has no public tokenizer; this is an estimate (o200k_base count x 5/4, rounded up)\n";
    }
    return 0;
}

}  // namespace

int count_command(Args args, Streams streams) {
    auto options = parse_options(args);
    if (!options) {
        streams.err << "tokenmeter count: " << options.error().message << "\n" << usage;
        return 2;
    }
    if (options->help) {
        streams.out << usage;
        return 0;
    }
    auto tokenizer = tokenizer_of(*options);
    if (!tokenizer) return fail(streams, tokenizer.error().message);
    std::string error;
    const auto text = read_input(*options, streams.in, error);
    if (!text) return fail(streams, error);
    if (const auto offset = utf8_error_offset(*text)) {
        return fail(streams,
                    "invalid UTF-8 at byte offset " + std::to_string(*offset) + " (the input must be UTF-8 text)");
    }
    return count_input(*options, *tokenizer, *text, streams);
}

}  // namespace tokenmeter::cli
