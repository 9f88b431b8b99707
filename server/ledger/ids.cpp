#include "ledger/ids.hpp"

#include <array>
#include <chrono>

#include <sodium.h>

#include "tokenmeter/base64url.hpp"

namespace tokenmeter::ledger {

std::string time_ordered_id(std::string_view prefix, std::int64_t unix_milliseconds) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string id(prefix);
    const auto time = static_cast<std::uint64_t>(unix_milliseconds < 0 ? 0 : unix_milliseconds);
    for (int shift = 44; shift >= 0; shift -= 4) id.push_back(hex[(time >> shift) & 0xF]);
    std::array<std::uint8_t, 12> random{};
    randombytes_buf(random.data(), random.size());
    id += base64url_encode(random.data(), random.size());
    return id;
}

std::string new_id(std::string_view prefix) {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    return time_ordered_id(prefix, std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

}  // namespace tokenmeter::ledger
