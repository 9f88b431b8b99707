// After a crash test: how each acknowledged idempotency key fared in the
// ledger's token_usage rows (I3: none lost, none charged twice).
#pragma once

#include <cstddef>
#include <map>
#include <string>

namespace tokenmeter::test {

struct ChargeAudit {
    int lost = 0;     // acknowledged, but no charge
    int doubled = 0;  // acknowledged, and charged more than once
};

// `acknowledged` maps each key a client saw succeed to anything;
// `charges_per_key` counts the token_usage rows of each idempotency key.
template <typename Acknowledged>
ChargeAudit audit_charges(const Acknowledged& acknowledged, const std::map<std::string, int>& charges_per_key) {
    ChargeAudit audit;
    for (const auto& entry : acknowledged) {
        const auto found = charges_per_key.find(entry.first);
        const int count = found == charges_per_key.end() ? 0 : found->second;
        audit.lost += count == 0 ? 1 : 0;
        audit.doubled += count > 1 ? 1 : 0;
    }
    return audit;
}

}  // namespace tokenmeter::test
