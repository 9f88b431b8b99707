// Reading back values that the stores wrote as text. A value the core does
// not know means the database was changed behind the server's back: that is
// a storage error (503), not bad input.
#pragma once

#include <cstdint>
#include <string>

#include "storage/store.hpp"
#include "tokenmeter/pricing.hpp"
#include "tokenmeter/ledger.hpp"

namespace tokenmeter::storage {

OperationKind stored_operation(const std::string& text);
ReservationState stored_reservation_state(const std::string& text);
Multiplier stored_multiplier(const std::string& text);

// Wall-clock seconds, for bookkeeping columns such as a migration's applied_at.
std::int64_t unix_now();

}  // namespace tokenmeter::storage
