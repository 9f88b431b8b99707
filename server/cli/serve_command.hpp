#pragma once

#include "cli/commands.hpp"

namespace tokenmeter::cli {

// tokenmeter serve [--config FILE] [--listen HOST:PORT] [--db URL] [--demo]
int serve_command(Args args, Streams streams);
// tokenmeter keygen --out FILE
int keygen_command(Args args, Streams streams);
// tokenmeter migrate --db URL
int migrate_command(Args args, Streams streams);

}  // namespace tokenmeter::cli
