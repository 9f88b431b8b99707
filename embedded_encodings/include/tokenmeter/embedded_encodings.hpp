// The encoding assets compiled into native executables (made by
// tools/tokenizer at build time, embedded by embedded_encodings/).
//
// The core loads encodings from bytes and does no I/O; native programs (the
// `tokenmeter` executable, the server, the tests) get those bytes from here.
// The browser SDK fetches the same assets from build/wasm/tokenizer/ instead.
#pragma once

#include <cstdint>
#include <span>

#include "tokenmeter/catalog.hpp"
#include "tokenmeter/tokenizer.hpp"

namespace tokenmeter {

// The embedded asset of o200k_base or cl100k_base (`kind` must be one of
// them).
std::span<const std::uint8_t> embedded_encoding_asset(TokenizerKind kind);

// The embedded encoding, loaded on first use and then shared for the life of
// the process (thread-safe). `kind` must be o200k_base or cl100k_base; use
// encoding_kind_for() to map a model's tokenizer. The embedded assets are
// pinned at build time, so a load failure is a broken build and aborts.
const Encoding& embedded_encoding(TokenizerKind kind);

}  // namespace tokenmeter
