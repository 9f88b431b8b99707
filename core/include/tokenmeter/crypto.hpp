// The ground floor of the signatures: libsodium, initialized once, and the
// SHA-256 digests JOSE writes in base64url (key thumbprints, receipt chains).
//
// libsodium is the only cryptography here, natively and in wasm, so both
// builds hash and verify with the same code.
#pragma once

#include <string>
#include <string_view>

namespace tokenmeter {

// Initializes libsodium once; false if it cannot run here. Every function
// that signs, verifies or hashes asserts it.
[[nodiscard]] bool crypto_ready();

// base64url(SHA-256(bytes)).
std::string sha256_base64url(std::string_view bytes);

}  // namespace tokenmeter
