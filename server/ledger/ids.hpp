// Public identifiers: a short prefix naming the kind ("rsv_…" reservations,
// "evt_…" usage events), then the creation time in milliseconds as 12 hex
// digits, then 96 random bits in base64url. The random part keeps ids
// unguessable, so knowing one gives no way to another; the time part makes
// new ids sort after old ones, so the b-trees keyed by them take inserts at
// their right edge instead of dirtying a random page per insert.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tokenmeter::ledger {

std::string time_ordered_id(std::string_view prefix, std::int64_t unix_milliseconds);

// time_ordered_id at the system clock's current time.
std::string new_id(std::string_view prefix);

}  // namespace tokenmeter::ledger
