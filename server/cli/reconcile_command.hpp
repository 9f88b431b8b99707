#pragma once

#include <iosfwd>

#include "billing/billing_service.hpp"
#include "cli/commands.hpp"

namespace tokenmeter::cli {

// The summary reconcile prints: one line of counts, one line per repair.
void print_reconcile_summary(const billing::ReconcileSummary& summary, std::ostream& out);

// tokenmeter reconcile [--config FILE] [--db URL]: repairs every plan that
// disagrees with the LemonSqueezy API's list of subscriptions (DESIGN.md §9).
int reconcile_command(Args args, Streams streams);

}  // namespace tokenmeter::cli
