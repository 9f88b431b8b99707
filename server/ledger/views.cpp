#include "ledger/views.hpp"

#include <stdexcept>

#include "storage/journal_codec.hpp"
#include "tokenmeter/period.hpp"

namespace tokenmeter::ledger {

nlohmann::json snapshot_object(const ReceiptClaims& claims, std::string_view receipt) {
    const Balance& b = claims.balance;
    return nlohmann::json{
        {"user_id", claims.sub},
        {"plan", claims.plan},
        {"period", {{"start", format_rfc3339(claims.period_start)}, {"end", format_rfc3339(claims.period_end)}}},
        {"tokens",
         {{"limit", b.tokens_limit},
          {"used", b.tokens_used},
          {"reserved", b.tokens_reserved},
          {"remaining", b.tokens_remaining()},
          {"credits", b.credits}}},
        {"avatars",
         {{"limit", b.avatars_limit},
          {"used", b.avatars_used},
          {"reserved", b.avatars_reserved},
          {"remaining", b.avatars_remaining()}}},
        {"seq", claims.seq},
        {"as_of", format_rfc3339(claims.iat)},
        {"receipt", receipt},
    };
}

void add_alert_thresholds(nlohmann::json& snapshot, const std::vector<int>& percents) {
    snapshot["alerts"] = {{"thresholds", percents}};
}

std::string error_body(std::string_view code, std::string_view message) {
    return nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump();
}

nlohmann::json snapshot_of_receipt(std::string_view receipt) {
    auto claims = decode_receipt_claims(receipt);
    if (!claims) throw std::runtime_error("a stored receipt does not decode: " + claims.error().message);
    return snapshot_object(*claims, receipt);
}

nlohmann::json event_object(const storage::UsageEvent& e) {
    nlohmann::json event = {{"id", e.event_id},
                            {"user_id", e.user_id},
                            {"operation", to_string(e.operation)},
                            {"model", e.model},
                            {"input_tokens", e.input_tokens},
                            {"output_tokens", e.output_tokens},
                            {"raw_tokens", e.raw_tokens},
                            {"multiplier", to_string(e.multiplier)},
                            {"charged_tokens", e.charged_tokens},
                            {"avatars", e.avatars},
                            {"catalog_version", e.catalog_version},
                            {"period_start", format_rfc3339(e.period_start)},
                            {"created_at", format_rfc3339(e.created_at)},
                            {"late", e.late}};
    event["reservation_id"] = e.reservation_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.reservation_id);
    // Only when there are any: an event without token classes reads as before.
    if (e.cached_input_tokens != 0) event["cached_input_tokens"] = e.cached_input_tokens;
    if (e.reasoning_tokens != 0) event["reasoning_tokens"] = e.reasoning_tokens;
    return event;
}

nlohmann::json event_object(const UsageCharge& charge) {
    return event_object(storage::journal_codec::usage_event_of(charge));
}

}  // namespace tokenmeter::ledger
