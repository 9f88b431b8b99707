// The receipt signing key on disk: a private Ed25519 JWK (RFC 8037) written
// with mode 0600, and JWKS files of retired public keys kept for rotation.
#pragma once

#include <string>
#include <vector>

#include "tokenmeter/error.hpp"
#include "tokenmeter/ed25519.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter::keys {

// Generates a key from fresh randomness and writes it to `path` (mode 0600,
// refusing to overwrite an existing file). Returns the public JWK JSON.
Result<std::string, Error> generate_signing_key_file(const std::string& path);

// Reads a key file written by generate_signing_key_file (or any OKP Ed25519
// private JWK); checks that `x` belongs to `d`.
Result<SigningKey, Error> load_signing_key_file(const std::string& path);

// Reads the public keys of a JWKS file.
Result<std::vector<VerificationKey>, Error> load_public_keys_file(const std::string& path);

// Reads a whole file (bounded), for configuration files.
Result<std::string, Error> read_small_file(const std::string& path, std::size_t bytes_max);

}  // namespace tokenmeter::keys
