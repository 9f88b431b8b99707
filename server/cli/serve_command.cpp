#include "cli/serve_command.hpp"

#include <pthread.h>
#include <signal.h>

#include <ostream>
#include <string>

#include "app.hpp"
#include "keys/signing_key_file.hpp"
#include "storage/postgres/pg_store.hpp"
#include "storage/sqlite/sqlite_store.hpp"

namespace tokenmeter::cli {

namespace {

struct ServeFlags {
    std::string config_file;
    std::optional<std::string> listen;
    std::optional<std::string> db;
    std::optional<std::string> web_root;
    std::optional<std::string> reconcile_every;
    bool demo = false;
};

// Parses the flags; an error message for anything unknown or incomplete.
std::optional<std::string> parse_flags(Args args, ServeFlags& flags) {
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        auto value = [&](std::string& target) -> bool {
            if (i + 1 >= args.size()) return false;
            target = std::string(args[++i]);
            return true;
        };
        std::string text;
        if (arg == "--demo") {
            flags.demo = true;
        } else if (arg == "--config") {
            if (!value(flags.config_file)) return "--config needs a file";
        } else if (arg == "--listen") {
            if (!value(text)) return "--listen needs HOST:PORT";
            flags.listen = text;
        } else if (arg == "--web-root") {
            if (!value(text)) return "--web-root needs a directory";
            flags.web_root = text;
        } else if (arg == "--reconcile-every") {
            if (!value(text)) return "--reconcile-every needs a duration (900, 90s, 15m, 2h, 1d)";
            flags.reconcile_every = text;
        } else if (arg == "--db") {
            if (!value(text)) return "--db needs a URL";
            flags.db = text;
        } else {
            return "unknown option \"" + std::string(arg) + "\"";
        }
    }
    return std::nullopt;
}

Result<config::ServerConfig, Error> build_config(const ServeFlags& flags, std::ostream& log) {
    config::ServerConfig config;
    if (!flags.config_file.empty()) {
        auto text = keys::read_small_file(flags.config_file, 1 << 20);
        if (!text) return unexpected(text.error());
        if (auto error = config::apply_file(config, *text)) {
            return unexpected(make_error(error->code, flags.config_file + ": " + error->message));
        }
    }
    if (auto error = config::apply_environment(config, config::process_environment())) return unexpected(*error);
    if (flags.listen) config.listen = *flags.listen;
    if (flags.db) config.db = *flags.db;
    if (flags.web_root) config.web_root = *flags.web_root;
    if (flags.reconcile_every) {
        auto seconds = config::parse_interval_seconds(*flags.reconcile_every);
        if (!seconds) {
            return unexpected(make_error("config_invalid", "--reconcile-every must be a duration like 900, 90s, 15m, "
                                                           "2h or 1d (at most 30 days)"));
        }
        config.reconcile_every_seconds = *seconds;
    }
    config.demo = flags.demo;
    if (config.demo) {
        if (!flags.db && config::process_environment().count("TOKENMETER_DB") == 0 && flags.config_file.empty()) {
            config.db = "sqlite:" + config.demo_dir + "/tokenmeter.db";
        }
        if (auto error = prepare_demo(config, log)) return unexpected(*error);
    }
    return config;
}

// Blocks the signals the server waits for in every thread it will start:
// SIGTERM and SIGINT stop it, SIGHUP reloads the catalog file.
sigset_t block_server_signals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    return signals;
}

}  // namespace

int serve_command(Args args, Streams streams) {
    ServeFlags flags;
    if (auto problem = parse_flags(args, flags)) {
        streams.err << "tokenmeter serve: " << *problem
                    << "\nusage: tokenmeter serve [--config FILE] [--listen HOST:PORT] [--db URL] [--web-root DIR] [--reconcile-every DURATION] [--demo]\n";
        return 2;
    }
    auto config = build_config(flags, streams.err);
    if (!config) {
        streams.err << "tokenmeter serve: " << config.error().message << "\n";
        return 2;
    }
    const sigset_t signals = block_server_signals();
    auto app = App::create(*config, std::make_shared<SystemClock>());
    if (!app) {
        streams.err << "tokenmeter serve: " << app.error().message << "\n";
        return 1;
    }
    auto port = (*app)->start();
    if (!port) {
        streams.err << "tokenmeter serve: " << port.error().message << "\n";
        return 1;
    }
    const auto listen = config::parse_listen(config->listen).value();
    streams.out << "tokenmeter: listening on http://" << listen.first << ":" << *port << " (db " << storage::postgres::redact_password(config->db) << ")"
                << std::endl;
    int received = 0;
    while (sigwait(&signals, &received) == 0 && received == SIGHUP) {
        auto reloaded = (*app)->reload_price_book();
        if (reloaded) {
            streams.err << "tokenmeter: catalog reloaded: " << *reloaded << std::endl;
        } else {
            streams.err << "tokenmeter: catalog not reloaded, the prices stay as they were: " << reloaded.error().message
                        << std::endl;
        }
    }
    streams.err << "tokenmeter: shutting down (signal " << received << "); finishing in-flight requests\n";
    (*app)->shutdown();
    streams.err << "tokenmeter: stopped\n";
    return 0;
}

int keygen_command(Args args, Streams streams) {
    if (args.size() != 2 || args[0] != "--out") {
        streams.err << "usage: tokenmeter keygen --out FILE\n";
        return 2;
    }
    auto jwk = keys::generate_signing_key_file(std::string(args[1]));
    if (!jwk) {
        streams.err << "tokenmeter keygen: " << jwk.error().message << "\n";
        return 1;
    }
    streams.out << *jwk << "\n";
    return 0;
}

int migrate_command(Args args, Streams streams) {
    if (args.size() != 2 || args[0] != "--db") {
        streams.err << "usage: tokenmeter migrate --db URL\n";
        return 2;
    }
    const std::string url(args[1]);
    const bool sqlite = url.rfind("sqlite:", 0) == 0 && url.size() > 7;
    if (!sqlite && !storage::postgres::is_postgres_url(url)) {
        streams.err << "tokenmeter migrate: unsupported database URL \"" << url
                    << "\" (use sqlite:PATH or postgres://...)\n";
        return 2;
    }
    try {
        auto applied = sqlite ? storage::sqlite::SqliteStore::migrate(url.substr(7))
                              : storage::postgres::PgStore::migrate(url);
        streams.out << "tokenmeter migrate: " << applied.size() << " migration(s) applied";
        for (int version : applied) streams.out << " " << version;
        streams.out << "\n";
        return 0;
    } catch (const storage::StorageError& error) {
        streams.err << "tokenmeter migrate: " << error.what() << "\n";
        return 1;
    }
}

}  // namespace tokenmeter::cli
