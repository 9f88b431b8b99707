#include "cli/reconcile_command.hpp"

#include <ostream>
#include <string>

#include "app.hpp"
#include "billing/billing_service.hpp"
#include "keys/signing_key_file.hpp"

namespace tokenmeter::cli {

namespace {

constexpr const char* usage = "usage: tokenmeter reconcile [--config FILE] [--db URL]\n";

// The server's own configuration (file, environment, --db), so reconcile
// writes to the same ledger with the same keys and LemonSqueezy settings.
Result<config::ServerConfig, Error> reconcile_config(Args args) {
    config::ServerConfig config;
    std::string file;
    std::string db;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (i + 1 >= args.size()) return unexpected(make_error("usage", std::string(args[i]) + " needs a value"));
        if (args[i] == "--config") {
            file = std::string(args[++i]);
        } else if (args[i] == "--db") {
            db = std::string(args[++i]);
        } else {
            return unexpected(make_error("usage", "unknown option \"" + std::string(args[i]) + "\""));
        }
    }
    if (!file.empty()) {
        auto text = keys::read_small_file(file, 1 << 20);
        if (!text) return unexpected(text.error());
        if (auto error = config::apply_file(config, *text)) return unexpected(make_error(error->code, file + ": " + error->message));
    }
    if (auto error = config::apply_environment(config, config::process_environment())) return unexpected(*error);
    if (!db.empty()) config.db = db;
    config.listen = "127.0.0.1:0";  // nothing listens; the value only has to be valid
    return config;
}

}  // namespace

void print_reconcile_summary(const billing::ReconcileSummary& summary, std::ostream& out) {
    out << "tokenmeter reconcile: " << summary.pages << " page(s), " << summary.listed << " subscription(s) listed, "
        << summary.matched << " matched to users, " << summary.updated << " snapshot(s) updated, " << summary.repaired
        << " plan(s) repaired, " << summary.unmatched << " unmatched; " << summary.invoices
        << " refunded payment(s) listed, " << summary.invoices_applied << " applied; " << summary.orders
        << " order(s) listed, " << summary.orders_applied << " with credits changed\n";
    for (const std::string& note : summary.notes) out << "  " << note << "\n";
}

int reconcile_command(Args args, Streams streams) {
    auto config = reconcile_config(args);
    if (!config) {
        streams.err << "tokenmeter reconcile: " << config.error().message << "\n" << usage;
        return 2;
    }
    if (config->lemonsqueezy.api_key.empty()) {
        streams.err << "tokenmeter reconcile: LEMONSQUEEZY_API_KEY is not set: the subscriptions cannot be listed\n";
        return 2;
    }
    auto app = App::create(*config, std::make_shared<SystemClock>());
    if (!app) {
        streams.err << "tokenmeter reconcile: " << app.error().message << "\n";
        return 1;
    }
    const billing::ReconcileSummary summary = (*app)->billing()->reconcile();
    print_reconcile_summary(summary, streams.out);
    (*app)->shutdown();
    if (summary.failure) {
        streams.err << "tokenmeter reconcile: stopped early: " << summary.failure->reason << ": "
                    << summary.failure->message << "\n";
        return 1;
    }
    return 0;
}

}  // namespace tokenmeter::cli
