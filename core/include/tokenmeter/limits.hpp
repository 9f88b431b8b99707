// Every bound the core enforces, in one place (TigerBeetle "limit everything").
//
// Counts cross into JavaScript (the wasm SDK, JSON in the browser), where
// integers are exact only up to 2^53 - 1; every token and avatar count is
// therefore bounded by that, which also keeps every sum of two counts far from
// int64 overflow.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tokenmeter::limits {

// The largest count of tokens or avatars anywhere in the ledger: the largest
// integer JavaScript represents exactly (Number.MAX_SAFE_INTEGER).
inline constexpr std::int64_t count_max = (std::int64_t{1} << 53) - 1;

// A multiplier is numerator/denominator; both are bounded so that
// raw * numerator never overflows int64 for raw <= count_max.
// (2^53 * 2^10 = 2^63 would overflow, so the bound is 1000 < 2^10.)
inline constexpr std::int64_t multiplier_term_max = 1000;
static_assert(count_max <= INT64_MAX / multiplier_term_max);

// A catalog is a small configuration document; anything larger is a mistake.
inline constexpr std::size_t catalog_bytes_max = 1 << 20;
inline constexpr std::size_t catalog_models_max = 256;
inline constexpr std::size_t catalog_plans_max = 64;
inline constexpr std::size_t catalog_operations_max = 16;
// Versions one price book file may hold (past, current and scheduled).
inline constexpr std::size_t price_book_versions_max = 64;
// Ids of models, plans, operations: short identifiers, not free text.
inline constexpr std::size_t id_bytes_max = 64;

// Unix seconds the period arithmetic accepts: 1970-01-01T00:00:00Z up to the
// last instant whose period still ends within year 9999 (RFC 3339 has four-digit
// years): any instant before 9999-12-01T00:00:00Z.
inline constexpr std::int64_t instant_min = 0;
inline constexpr std::int64_t instant_end = 253399622400;  // 9999-12-01T00:00:00Z, exclusive

// A receipt is a few hundred bytes; refuse to parse anything much larger, so a
// hostile receipt cannot make a verifier allocate or hash megabytes.
inline constexpr std::size_t receipt_bytes_max = 4096;
// A JWKS of a few rotated keys; refuse huge sets.
inline constexpr std::size_t jwks_bytes_max = 64 * 1024;
inline constexpr std::size_t jwks_keys_max = 16;

// Reservation time-to-live bounds, seconds.
inline constexpr std::int64_t reservation_ttl_min = 1;
inline constexpr std::int64_t reservation_ttl_max = 24 * 3600;

// How long after its expiry a reservation may still be committed (a late
// commit: the work was authorized, so it is charged), seconds. 0 means no
// grace: a commit past the expiry is refused. A month covers a client that
// retries a commit across a long outage; longer would keep a user's past
// reservations chargeable indefinitely.
inline constexpr std::int64_t late_commit_grace_min = 0;
inline constexpr std::int64_t late_commit_grace_max = 30 * 24 * 3600;
// An expiry plus the grace stays far inside int64 for any accepted instant.
static_assert(instant_end + reservation_ttl_max + late_commit_grace_max < INT64_MAX / 2);

// Text the tokenizer takes in one call. Counting holds ids only for the piece
// at hand, but encode_ordinary returns up to one 4-byte id per input byte, so
// this bounds its result at 256 MiB. The largest context windows are about a million
// tokens (4-5 MB of text), so 64 MiB leaves room for whole files through
// `tokenmeter count` while keeping a hostile input from exhausting memory.
inline constexpr std::size_t text_bytes_max = std::size_t{64} << 20;
// An encoding asset (tools/tokenizer): o200k_base's is 1.6 MB; anything much
// larger is not one, and is refused before it is hashed.
inline constexpr std::size_t encoding_asset_bytes_max = std::size_t{8} << 20;
// A chat to count (`messages` of a request, `tokenmeter count --chat`): far
// more messages than any conversation that fits a context window, few enough
// that the per-message work stays bounded. The JSON text itself is bounded by
// text_bytes_max.
inline constexpr std::size_t chat_messages_max = 10000;

// Usage alerts (alerts.hpp): a few thresholds per period, each a percent of
// the period's capacity. Each threshold is an outbox row per webhook URL
// per user and period, so their number bounds that table's growth; past
// 1000 % a threshold is no longer a warning but a report of a runaway.
inline constexpr std::size_t alert_thresholds_max = 16;
inline constexpr int alert_threshold_percent_max = 1000;

}  // namespace tokenmeter::limits
