#include "cli/webhooks_command.hpp"

#include <ostream>
#include <string>

#include "app.hpp"
#include "keys/signing_key_file.hpp"
#include "tokenmeter/period.hpp"

namespace tokenmeter::cli {

namespace {

constexpr const char* usage =
    "usage: tokenmeter webhooks list [--db URL] [--config FILE]\n"
    "       tokenmeter webhooks replay ID [--db URL] [--config FILE]\n";

// The newest rows `list` shows: an outbox of a busy month is long, and its
// head is what an operator looks at.
constexpr int listed_rows_max = 1000;

// A replayed alert is retried for a day from the replay, as a new one is.
constexpr std::int64_t replay_retry_seconds = 24 * 3600;

struct WebhooksArgs {
    std::string action;
    std::string alert_id;
    std::string config_file;
    std::string db;
};

Result<WebhooksArgs, Error> parse_args(Args args) {
    WebhooksArgs parsed;
    if (args.empty()) return unexpected(make_error("usage", "list or replay?"));
    parsed.action = std::string(args[0]);
    if (parsed.action != "list" && parsed.action != "replay") {
        return unexpected(make_error("usage", "unknown action \"" + parsed.action + "\""));
    }
    std::size_t i = 1;
    if (parsed.action == "replay") {
        if (args.size() < 2 || args[1].rfind("--", 0) == 0) return unexpected(make_error("usage", "replay needs an alert id"));
        parsed.alert_id = std::string(args[1]);
        i = 2;
    }
    for (; i < args.size(); ++i) {
        if (i + 1 >= args.size()) return unexpected(make_error("usage", std::string(args[i]) + " needs a value"));
        if (args[i] == "--config") {
            parsed.config_file = std::string(args[++i]);
        } else if (args[i] == "--db") {
            parsed.db = std::string(args[++i]);
        } else {
            return unexpected(make_error("usage", "unknown option \"" + std::string(args[i]) + "\""));
        }
    }
    return parsed;
}

// The database the server uses: its config file, then the environment, then --db.
Result<std::string, Error> database_url(const WebhooksArgs& args) {
    config::ServerConfig config;
    if (!args.config_file.empty()) {
        auto text = keys::read_small_file(args.config_file, 1 << 20);
        if (!text) return unexpected(text.error());
        if (auto error = config::apply_file(config, *text)) {
            return unexpected(make_error(error->code, args.config_file + ": " + error->message));
        }
    }
    if (auto error = config::apply_environment(config, config::process_environment())) return unexpected(*error);
    if (!args.db.empty()) config.db = args.db;
    return config.db;
}

// One line per row, tab-separated, so `cut` and `awk` read it.
void print_rows(const std::vector<storage::OutboxRow>& rows, std::ostream& out) {
    out << "id\ttype\turl\tstate\tattempts\tnext_attempt\tlast_error\n";
    for (const storage::OutboxRow& row : rows) {
        const bool pending = row.state == storage::OutboxState::pending;
        std::string error = row.last_error.empty() ? "-" : row.last_error;
        for (char& c : error) {
            if (c == '\t' || c == '\n' || c == '\r') c = ' ';
        }
        out << row.alert_id << "\t" << row.type << "\t" << row.url << "\t" << storage::to_string(row.state) << "\t"
            << row.attempts << "\t" << (pending ? format_rfc3339(row.next_attempt_at) : "-") << "\t" << error << "\n";
    }
}

int run_action(storage::LedgerStore& store, const WebhooksArgs& args, Streams streams) {
    if (args.action == "list") {
        print_rows(store.list_alerts(listed_rows_max), streams.out);
        return 0;
    }
    const std::int64_t now = SystemClock().now_seconds();
    const int rows = store.replay_alert(args.alert_id, now, now + replay_retry_seconds);
    if (rows == 0) {
        streams.err << "tokenmeter webhooks: no alert \"" << args.alert_id << "\" in the outbox "
                    << "(`tokenmeter webhooks list` shows the ids)\n";
        return 1;
    }
    streams.out << "tokenmeter webhooks: " << args.alert_id << " is due again for " << rows << " endpoint(s)\n";
    return 0;
}

}  // namespace

int webhooks_command(Args args, Streams streams) {
    auto parsed = parse_args(args);
    if (!parsed) {
        streams.err << "tokenmeter webhooks: " << parsed.error().message << "\n" << usage;
        return 2;
    }
    auto db = database_url(*parsed);
    if (!db) {
        streams.err << "tokenmeter webhooks: " << db.error().message << "\n";
        return 2;
    }
    auto store = open_store(*db);
    if (!store) {
        streams.err << "tokenmeter webhooks: " << store.error().message << "\n";
        return 1;
    }
    try {
        return run_action(**store, *parsed, streams);
    } catch (const storage::StorageError& error) {
        streams.err << "tokenmeter webhooks: " << error.what() << "\n";
        return 1;
    }
}

}  // namespace tokenmeter::cli
