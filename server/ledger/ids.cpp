#include "ledger/ids.hpp"

#include <array>
#include <cstdint>

#include <sodium.h>

#include "tokenmeter/base64url.hpp"

namespace tokenmeter::ledger {

std::string random_id(std::string_view prefix) {
    std::array<std::uint8_t, 16> bytes{};
    randombytes_buf(bytes.data(), bytes.size());
    return std::string(prefix) + base64url_encode(bytes.data(), bytes.size());
}

}  // namespace tokenmeter::ledger
