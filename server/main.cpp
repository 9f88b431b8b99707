// The tokenmeter executable: turns argv into a command and runs it. The only
// file the tests do not link.
#include <iostream>
#include <string_view>
#include <vector>

#include "cli/commands.hpp"

int main(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    return tokenmeter::cli::run(args, {std::cin, std::cout, std::cerr});
}
