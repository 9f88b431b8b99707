// The command line of DESIGN.md §11: one function per subcommand.
//
// Each command takes its arguments (after the subcommand name) and the three
// standard streams, and returns the process exit code: 0 success, 2 usage or
// input error, 1 anything else. They never call exit(), so tests run them
// in-process.
#pragma once

#include <iosfwd>
#include <span>
#include <string_view>

namespace tokenmeter::cli {

struct Streams {
    std::istream& in;
    std::ostream& out;
    std::ostream& err;
};

using Args = std::span<const std::string_view>;

// Dispatches `tokenmeter <command> ...`; prints usage for unknown commands.
int run(Args args, Streams streams);

}  // namespace tokenmeter::cli
