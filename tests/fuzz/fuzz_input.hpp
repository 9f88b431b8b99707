// What every fuzz target shares: the input as text, and how a target says an
// invariant broke (TM_ASSERT aborts, which libFuzzer reports as a crash and
// the corpus replay as a failed test).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tokenmeter/assert.hpp"
#include "tokenmeter/error.hpp"
#include "tokenmeter/tokenizer.hpp"

namespace tokenmeter::fuzz {

inline std::string_view text_of(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// An error about external input is answered as JSON (or stored in a text
// column), both of which take UTF-8 only: a message that quotes the input
// must not cut a character in half.
inline void check_error_text(const Error& error) {
    TM_ASSERT(!error.code.empty());
    TM_ASSERT(!utf8_error_offset(error.code).has_value());
    TM_ASSERT(!utf8_error_offset(error.message).has_value());
}

}  // namespace tokenmeter::fuzz
