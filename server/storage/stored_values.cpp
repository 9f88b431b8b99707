#include "storage/stored_values.hpp"

#include <chrono>

namespace tokenmeter::storage {

OperationKind stored_operation(const std::string& text) {
    auto kind = operation_kind_from_string(text);
    if (!kind) throw StorageError("stored operation \"" + text + "\" is unknown");
    return *kind;
}

ReservationState stored_reservation_state(const std::string& text) {
    auto state = reservation_state_from_string(text);
    if (!state) throw StorageError("stored reservation state \"" + text + "\" is unknown");
    return *state;
}

Multiplier stored_multiplier(const std::string& text) {
    auto parsed = parse_multiplier(text);
    if (!parsed) throw StorageError("stored multiplier \"" + text + "\" is invalid");
    return *parsed;
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace tokenmeter::storage
