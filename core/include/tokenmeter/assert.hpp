// Assertions for invariants that must never break (TigerBeetle, Envoy).
//
// TM_ASSERT guards programmer errors and ledger invariants; it stays on in
// every build, because a ledger that has broken an invariant must stop rather
// than keep charging. Bad external input is never asserted: it is a Result.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace tokenmeter::detail {

[[noreturn]] inline void assertion_failed(const char* condition, const char* file, int line) {
    std::fprintf(stderr, "tokenmeter: assertion failed: %s (%s:%d)\n", condition, file, line);
    std::abort();
}

}  // namespace tokenmeter::detail

#define TM_ASSERT(condition)                                                         \
    do {                                                                             \
        if (!(condition)) ::tokenmeter::detail::assertion_failed(#condition, __FILE__, __LINE__); \
    } while (false)
