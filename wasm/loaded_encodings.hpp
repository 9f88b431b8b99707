// The encodings the SDK has loaded (loadEncoding in tokenizer_bindings.cpp),
// for the bindings that count: the tokenizer's own and estimate().
#pragma once

#include "tokenmeter/estimate.hpp"

namespace tokenmeter::wasm {

// Gives an encoding once its asset has been loaded; until then its error is
// encoding_not_loaded.
const EncodingSource& loaded_encodings();

}  // namespace tokenmeter::wasm
