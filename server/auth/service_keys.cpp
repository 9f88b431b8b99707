#include "auth/service_keys.hpp"

#include <sodium.h>

#include <cstddef>

namespace tokenmeter::auth {

namespace {

std::array<unsigned char, 32> sha256(std::string_view bytes) {
    static_assert(crypto_hash_sha256_BYTES == 32);
    std::array<unsigned char, 32> digest{};
    crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    return digest;
}

std::string caller_of_digest(const std::array<unsigned char, 32>& digest) {
    constexpr std::size_t hex_digits = 12;
    char hex[2 * 32 + 1];
    sodium_bin2hex(hex, sizeof hex, digest.data(), digest.size());
    return "service:" + std::string(hex, hex_digits);
}

}  // namespace

ServiceKeys::ServiceKeys(const std::vector<std::string>& keys) {
    entries_.reserve(keys.size());
    for (const std::string& key : keys) {
        const auto digest = sha256(key);
        entries_.push_back(Entry{digest, caller_of_digest(digest)});
    }
}

ServiceKeys::~ServiceKeys() {
    for (Entry& entry : entries_) sodium_memzero(entry.digest.data(), entry.digest.size());
}

Result<std::string, Error> ServiceKeys::caller_of(std::string_view token) const {
    const auto presented = sha256(token);
    const Entry* match = nullptr;
    for (const Entry& entry : entries_) {
        // Every entry is compared; the loop never stops at the first match.
        if (sodium_memcmp(presented.data(), entry.digest.data(), presented.size()) == 0) match = &entry;
    }
    if (token.empty() || match == nullptr) {
        return unexpected(make_error("service_key_invalid", "the bearer token is not a service key"));
    }
    return match->caller;
}

std::string ServiceKeys::caller_id(std::string_view key) { return caller_of_digest(sha256(key)); }

}  // namespace tokenmeter::auth
