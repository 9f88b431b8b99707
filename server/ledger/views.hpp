// How the API shows ledger state (DESIGN.md §7). The usage snapshot's numbers
// are the claims of the receipt it carries, so a client can check every number
// against the signature.
#pragma once

#include <vector>

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "storage/store.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter::ledger {

nlohmann::json snapshot_object(const ReceiptClaims& claims, std::string_view receipt);

// The JSON error body every API error uses.
// A user's view of a snapshot (GET /v1/me/usage and the live stream) also
// says at which percents of capacity the app is alerted (DESIGN.md §13), so
// the browser marks the same thresholds the outbound webhooks use. Service
// replies leave it out: they are replayed byte for byte for idempotency keys.
void add_alert_thresholds(nlohmann::json& snapshot, const std::vector<int>& percents);

std::string error_body(std::string_view code, std::string_view message);

// Decodes a stored receipt into its snapshot.
nlohmann::json snapshot_of_receipt(std::string_view receipt);

// One token_usage row.
nlohmann::json event_object(const storage::UsageEvent& event);
nlohmann::json event_object(const UsageCharge& charge);

}  // namespace tokenmeter::ledger
