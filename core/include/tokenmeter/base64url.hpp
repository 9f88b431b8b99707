// base64url without padding (RFC 4648 §5, as JOSE uses it), decoded strictly.
//
// Strict means one text per byte string: no padding, no whitespace, and the
// unused low bits of the last character must be zero. Without that rule a
// flipped bit in a signature's last character could decode to the same bytes,
// and a receipt with a changed text would still verify.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokenmeter {

std::string base64url_encode(std::string_view bytes);
std::string base64url_encode(const std::uint8_t* bytes, std::size_t size);

// nullopt for any text that is not the canonical encoding of some bytes.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace tokenmeter
