// UTF-8 validation and decoding (internal to the core).
//
// Text is validated once, up front; the scanner then decodes without checks.
// Validation follows the Unicode standard's definition of well-formed UTF-8
// (Table 3-7): no overlong forms, no surrogates (U+D800..U+DFFF), nothing past
// U+10FFFF, no truncated sequences.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tokenmeter::utf8 {

// The offset of the first byte that does not begin a well-formed sequence (the
// start of the first ill-formed sequence), or nullopt when `text` is valid.
std::optional<std::size_t> first_invalid_offset(std::string_view text);

struct Decoded {
    std::uint32_t code_point;
    std::uint32_t length;  // 1..4 bytes
};

// Decodes the (valid) sequence starting at `p`; `p` must point at a lead byte
// of well-formed UTF-8.
inline Decoded decode(const std::uint8_t* p) {
    const std::uint32_t b0 = p[0];
    if (b0 < 0x80) return {b0, 1};
    if (b0 < 0xE0) return {((b0 & 0x1Fu) << 6) | (p[1] & 0x3Fu), 2};
    if (b0 < 0xF0) return {((b0 & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu), 3};
    return {((b0 & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu), 4};
}

}  // namespace tokenmeter::utf8
