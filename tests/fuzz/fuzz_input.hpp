// What every fuzz target shares: the input as text, and how a target says an
// invariant broke (TM_ASSERT aborts, which libFuzzer reports as a crash and
// the corpus replay as a failed test).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tokenmeter/assert.hpp"

namespace tokenmeter::fuzz {

inline std::string_view text_of(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

}  // namespace tokenmeter::fuzz
