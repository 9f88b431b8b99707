#include "billing/webhook_signature.hpp"

#include <sodium.h>

#include <optional>

namespace tokenmeter::billing {

namespace {

std::span<const std::uint8_t> bytes_of(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

std::optional<std::uint8_t> lowercase_hex_digit(char c) {
    if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
    return std::nullopt;
}

// The 32 bytes of a 64-digit lowercase hex string; nothing for anything else.
std::optional<HmacSha256Tag> decode_lowercase_hex_tag(std::string_view hex) {
    if (hex.size() != 2 * hmac_sha256_bytes) return std::nullopt;
    HmacSha256Tag tag{};
    for (std::size_t i = 0; i < tag.size(); ++i) {
        auto high = lowercase_hex_digit(hex[2 * i]);
        auto low = lowercase_hex_digit(hex[2 * i + 1]);
        if (!high || !low) return std::nullopt;
        tag[i] = static_cast<std::uint8_t>((*high << 4) | *low);
    }
    return tag;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (std::uint8_t b : bytes) {
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 0x0f]);
    }
    return out;
}

}  // namespace

HmacSha256Tag hmac_sha256(std::span<const std::uint8_t> key, std::span<const std::uint8_t> message) {
    // The streaming API takes keys of any length (hashed when longer than a
    // block), as RFC 2104 and webhook secrets need.
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, key.data(), key.size());
    crypto_auth_hmacsha256_update(&state, message.data(), message.size());
    HmacSha256Tag tag{};
    crypto_auth_hmacsha256_final(&state, tag.data());
    sodium_memzero(&state, sizeof state);
    return tag;
}

std::string hmac_sha256_hex(std::string_view secret, std::string_view body) {
    const HmacSha256Tag tag = hmac_sha256(bytes_of(secret), bytes_of(body));
    return to_hex(tag);
}

bool hmac_sha256_tag_valid(std::span<const std::uint8_t> key, std::span<const std::uint8_t> message,
                           std::span<const std::uint8_t> tag) {
    if (tag.size() != hmac_sha256_bytes) return false;
    const HmacSha256Tag expected = hmac_sha256(key, message);
    return sodium_memcmp(expected.data(), tag.data(), expected.size()) == 0;
}

bool webhook_signature_valid(std::string_view secret, std::string_view body, std::string_view signature) {
    if (secret.empty()) return false;  // an unset secret verifies nothing
    auto tag = decode_lowercase_hex_tag(signature);
    if (!tag) return false;
    return hmac_sha256_tag_valid(bytes_of(secret), bytes_of(body), *tag);
}

std::string sha256_hex(std::string_view bytes) {
    std::array<std::uint8_t, crypto_hash_sha256_BYTES> digest{};
    crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    return to_hex(digest);
}

}  // namespace tokenmeter::billing
