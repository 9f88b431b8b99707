// Bounds of user-token and service-key checking (TigerBeetle "limit
// everything"). Each refuses hostile input before it costs anything.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tokenmeter::auth::limits {

// A Supabase access token is about 1 KB (a few claims, user metadata). 8 KB
// leaves room for generous metadata; a larger token is refused before any
// base64 or JSON work, so a 1 MB token costs one length comparison.
inline constexpr std::size_t token_bytes_max = 8 * 1024;

// Clocks of the issuer and of this server differ a little; exp and nbf are
// checked with this much slack. Small, so an expired token dies quickly.
inline constexpr std::int64_t clock_leeway_seconds = 30;

// An unknown kid may mean the issuer rotated keys, so it triggers a refetch,
// but at most once per cooldown: otherwise every forged kid would make this
// server call the issuer.
inline constexpr std::int64_t jwks_refetch_cooldown_seconds = 30;

// Keys fetched from a URL are used this long before a refetch, so a key the
// issuer revoked stops verifying within ten minutes (Supabase's advice).
inline constexpr std::int64_t jwks_cache_seconds = 600;

// A JWKS is a few keys; a larger document is refused unread.
inline constexpr std::size_t jwks_bytes_max = 64 * 1024;
inline constexpr std::size_t jwks_keys_max = 32;

// A JWKS fetch must not hold verification up for long.
inline constexpr int jwks_fetch_timeout_seconds = 3;

// RSA moduli: below 2048 bits is forgeable in practice; above 8192 bits a
// verification gets slow enough to be a denial-of-service lever.
inline constexpr int rsa_modulus_bits_min = 2048;
inline constexpr int rsa_modulus_bits_max = 8192;

// dev-token: tokens minted for local use live at most this long.
inline constexpr std::int64_t dev_token_ttl_seconds_max = 366 * 24 * 3600;

}  // namespace tokenmeter::auth::limits
