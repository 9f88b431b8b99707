#include "cli/commands.hpp"
#include "cli/count_command.hpp"
#include "cli/dev_token_command.hpp"
#include "cli/reconcile_command.hpp"
#include "cli/serve_command.hpp"
#include "cli/verify_command.hpp"
#include "cli/webhooks_command.hpp"

#include <ostream>
#include <string>

namespace tokenmeter::cli {

namespace {

using Command = int (*)(Args, Streams);

struct Entry {
    std::string_view name;
    std::string_view summary;
    Command run;
};

// The subcommands; each file under cli/ adds one row.
constexpr Entry commands[] = {
    {"serve", "run the ledger server", serve_command},
    {"keygen", "create a receipt signing key", keygen_command},
    {"migrate", "apply database migrations", migrate_command},
    {"dev-token", "mint a user JWT (HS256) for local use", dev_token_command},
    {"count", "count the tokens of a text or chat (exact for OpenAI models)", count_command},
    {"reconcile", "repair plans from the LemonSqueezy API's list of subscriptions", reconcile_command},
    {"verify", "check a statement (GET /v1/me/statement, JSON) offline: signatures, prev chain, sums", verify_command},
    {"webhooks", "list the outbound webhook outbox, or replay an alert: webhooks list | webhooks replay ID", webhooks_command},
};

void print_usage(std::ostream& out) {
    out << "usage: tokenmeter <command> [options]\n\ncommands:\n";
    for (const Entry& entry : commands) {
        if (entry.run != nullptr) out << "  " << entry.name << "  " << entry.summary << "\n";
    }
}

}  // namespace

int run(Args args, Streams streams) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        print_usage(args.empty() ? streams.err : streams.out);
        return args.empty() ? 2 : 0;
    }
    for (const Entry& entry : commands) {
        if (entry.run != nullptr && entry.name == args[0]) return entry.run(args.subspan(1), streams);
    }
    streams.err << "tokenmeter: unknown command \"" << std::string(args[0]) << "\"\n";
    print_usage(streams.err);
    return 2;
}

}  // namespace tokenmeter::cli
