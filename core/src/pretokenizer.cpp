#include "pretokenizer.hpp"

namespace tokenmeter::pretokenizer {

std::vector<std::size_t> piece_lengths(Pattern pattern, std::string_view text) {
    std::vector<std::size_t> lengths;
    auto add = [&](std::size_t begin, std::size_t end) { lengths.push_back(end - begin); };
    if (pattern == Pattern::o200k) {
        for_each_piece<Pattern::o200k>(text, add);
    } else {
        for_each_piece<Pattern::cl100k>(text, add);
    }
    return lengths;
}

}  // namespace tokenmeter::pretokenizer
