// `tokenmeter webhooks list|replay ID`: the outbound webhook outbox (DESIGN.md
// §11, §13), read and nudged from the command line while servers run on the
// same database.
#pragma once

#include "cli/commands.hpp"

namespace tokenmeter::cli {

int webhooks_command(Args args, Streams streams);

}  // namespace tokenmeter::cli
