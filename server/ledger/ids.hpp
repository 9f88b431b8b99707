// Public identifiers: a short prefix naming the kind and 128 random bits in
// base64url ("rsv_…" reservations, "evt_…" usage events), unguessable so that
// knowing one id gives no way to another.
#pragma once

#include <string>
#include <string_view>

namespace tokenmeter::ledger {

std::string random_id(std::string_view prefix);

}  // namespace tokenmeter::ledger
