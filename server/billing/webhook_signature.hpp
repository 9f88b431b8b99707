// Webhook signatures: hex HMAC-SHA256 of the raw body bytes (DESIGN.md §7,
// lemonsqueezy/SPEC.md §4.5), checked in constant time.
//
// Only the bytes as received count: a body parsed and re-serialized (other
// whitespace, key order, `\/` unescaped) has another digest and is refused.
//
// Uppercase hex is refused. LemonSqueezy sends lowercase, and its own
// reference verifiers (PHP hash_equals, Node timingSafeEqual over the hex
// strings) compare the hex text exactly, so an uppercase header is not one
// LemonSqueezy produced; accepting it would only widen what we take.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tokenmeter::billing {

inline constexpr std::size_t hmac_sha256_bytes = 32;
using HmacSha256Tag = std::array<std::uint8_t, hmac_sha256_bytes>;

HmacSha256Tag hmac_sha256(std::span<const std::uint8_t> key, std::span<const std::uint8_t> message);

// Lowercase hex of HMAC-SHA256(secret, body): what a sender puts in the header.
std::string hmac_sha256_hex(std::string_view secret, std::string_view body);

// Whether `tag` is the full-length HMAC-SHA256 of `message` under `key`
// (constant-time compare; any other length is refused).
[[nodiscard]] bool hmac_sha256_tag_valid(std::span<const std::uint8_t> key, std::span<const std::uint8_t> message,
                                         std::span<const std::uint8_t> tag);

// Whether `signature` is exactly the 64 lowercase hex digits of the body's
// HMAC under `secret`. Missing, empty, short, long, non-hex or uppercase: no.
[[nodiscard]] bool webhook_signature_valid(std::string_view secret, std::string_view body, std::string_view signature);

// Lowercase hex SHA-256 of the bytes (delivery identity).
std::string sha256_hex(std::string_view bytes);

}  // namespace tokenmeter::billing
