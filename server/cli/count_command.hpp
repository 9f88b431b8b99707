#pragma once

#include "cli/commands.hpp"

namespace tokenmeter::cli {

// tokenmeter count (--model M | --encoding E) [--ids] [--chat] [FILE|-]
//
// Prints the token count of FILE (or standard input), or with --ids the token
// ids separated by spaces, or with --chat the prompt tokens of a JSON array of
// OpenAI chat messages. Exit 0 on success, 2 on a usage or input error
// (unknown model, invalid UTF-8 with its byte offset, unreadable file, ...).
int count_command(Args args, Streams streams);

}  // namespace tokenmeter::cli
