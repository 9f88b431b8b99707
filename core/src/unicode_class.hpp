// Unicode character classes for the pre-tokenizer (internal to the core).
//
// A code point's class is one byte: its general-category group in bits 0-2 and
// the White_Space property in bit 3. Those are exactly the properties the two
// tiktoken patterns use (\p{L} and its parts, \p{M}, \p{N}, and \s, which in
// Rust regex means White_Space). The table is generated from Debian's
// unicode-data by tools/tokenizer/gen_unicode_tables.mjs into
// unicode_class_table.cpp; every White_Space character is in group `other`.
#pragma once

#include <cstdint>
#include <string_view>

namespace tokenmeter::unicode {

// General-category groups, as stored in bits 0-2 of a class.
enum Category : std::uint8_t {
    category_other = 0,            // everything not below (Z*, C*, P*, S*, unassigned)
    category_letter_upper = 1,     // Lu
    category_letter_lower = 2,     // Ll
    category_letter_title = 3,     // Lt
    category_letter_modifier = 4,  // Lm
    category_letter_other = 5,     // Lo
    category_mark = 6,             // Mn, Mc, Me
    category_number = 7,           // Nd, Nl, No
};

inline constexpr std::uint8_t white_space_bit = 8;

// The class of a code point: a Category, plus white_space_bit for White_Space.
// Code points past U+10FFFF are `other`.
std::uint8_t code_point_class(std::uint32_t cp);

// The ASCII letter a code point matches under simple case folding, for the
// contraction suffixes 's 't 're 've 'm 'll 'd: 'S' and U+017F give 's'.
// Other ASCII characters give themselves; other code points give 0.
char contraction_letter_fold(std::uint32_t cp);

// The Unicode version of the generated table ("15.0.0").
std::string_view unicode_version();

}  // namespace tokenmeter::unicode
