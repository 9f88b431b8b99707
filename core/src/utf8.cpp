#include "utf8.hpp"

#include <cstring>

namespace tokenmeter::utf8 {

namespace {

// The length of the well-formed sequence at `p` (bytes [p, end)), or 0 when it
// is ill-formed. Second-byte ranges per Unicode Table 3-7.
std::size_t sequence_length(const std::uint8_t* p, const std::uint8_t* end) {
    const std::uint8_t b0 = p[0];
    const auto available = static_cast<std::size_t>(end - p);
    auto continuation = [](std::uint8_t b) { return (b & 0xC0) == 0x80; };
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        return available >= 2 && continuation(p[1]) ? 2 : 0;
    }
    if (b0 >= 0xE0 && b0 <= 0xEF) {
        if (available < 3) return 0;
        const std::uint8_t low = b0 == 0xE0 ? 0xA0 : 0x80;  // no overlongs
        const std::uint8_t high = b0 == 0xED ? 0x9F : 0xBF;  // no surrogates
        if (p[1] < low || p[1] > high || !continuation(p[2])) return 0;
        return 3;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
        if (available < 4) return 0;
        const std::uint8_t low = b0 == 0xF0 ? 0x90 : 0x80;   // no overlongs
        const std::uint8_t high = b0 == 0xF4 ? 0x8F : 0xBF;  // nothing past U+10FFFF
        if (p[1] < low || p[1] > high || !continuation(p[2]) || !continuation(p[3])) return 0;
        return 4;
    }
    return 0;  // a continuation byte, C0, C1 or F5..FF
}

}  // namespace

std::optional<std::size_t> first_invalid_offset(std::string_view text) {
    const auto* begin = reinterpret_cast<const std::uint8_t*>(text.data());
    const std::uint8_t* end = begin + text.size();
    const std::uint8_t* p = begin;
    while (p < end) {
        // ASCII runs dominate real text: check eight bytes at a time.
        if (end - p >= 8) {
            std::uint64_t word;
            std::memcpy(&word, p, sizeof word);
            if ((word & 0x8080808080808080ull) == 0) {
                p += 8;
                continue;
            }
        }
        if (*p < 0x80) {
            ++p;
            continue;
        }
        const std::size_t length = sequence_length(p, end);
        if (length == 0) return static_cast<std::size_t>(p - begin);
        p += length;
    }
    return std::nullopt;
}

}  // namespace tokenmeter::utf8
