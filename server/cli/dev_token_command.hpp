#pragma once

#include "cli/commands.hpp"

namespace tokenmeter::cli {

// tokenmeter dev-token --secret S --sub USER [--ttl SECONDS]: prints an HS256
// user JWT, as Supabase would issue it, for local use against a server
// configured with the same TOKENMETER_JWT_SECRET.
int dev_token_command(Args args, Streams streams);

}  // namespace tokenmeter::cli
