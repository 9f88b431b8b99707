#include "tokenmeter/crypto.hpp"

#include <array>
#include <cstdint>

#include <sodium.h>

#include "tokenmeter/assert.hpp"
#include "tokenmeter/base64url.hpp"

namespace tokenmeter {

bool crypto_ready() {
    static const bool ready = sodium_init() >= 0;
    return ready;
}

std::string sha256_base64url(std::string_view bytes) {
    TM_ASSERT(crypto_ready());
    std::array<std::uint8_t, crypto_hash_sha256_BYTES> digest{};
    crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    return base64url_encode(digest.data(), digest.size());
}

}  // namespace tokenmeter
