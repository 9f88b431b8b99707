#include "ledger/ledger_service.hpp"

#include <iostream>

#include <nlohmann/json.hpp>

#include "ledger/views.hpp"
#include "tokenmeter/base64url.hpp"
#include "tokenmeter/period.hpp"

namespace tokenmeter::ledger {

namespace {

Outcome unavailable() {
    return Outcome{503, error_body("storage_unavailable", "the ledger's storage is unavailable"), false, {}};
}

std::string grouping_name(storage::SummaryGrouping grouping) {
    switch (grouping) {
        case storage::SummaryGrouping::day: return "day";
        case storage::SummaryGrouping::model: return "model";
        case storage::SummaryGrouping::operation: return "operation";
    }
    return "day";
}

}  // namespace

LedgerService::LedgerService(storage::LedgerStore& store, const Clock& clock, LedgerConfig config,
                             WriterOptions writer_options, PublishFn publish)
    : store_(store),
      clock_(clock),
      config_(std::move(config)),
      writer_(store, writer_options, [&clock] { return clock.now_seconds(); }, std::move(publish)) {}

LedgerService::~LedgerService() { writer_.stop(); }

void LedgerService::stop() { writer_.stop(); }

Outcome LedgerService::run(std::function<Outcome(AccountChanges&)> job, std::optional<IdempotencyScope> idempotency) {
    return writer_.run(
        [this, job = std::move(job)](storage::LedgerTransaction& transaction) {
            AccountChanges changes(config_, transaction, clock_.now_seconds());
            return job(changes);
        },
        std::move(idempotency));
}

Outcome LedgerService::authorize(AuthorizeRequest request, std::optional<IdempotencyScope> idempotency) {
    return run([request = std::move(request)](AccountChanges& changes) { return ledger::authorize(changes, request); },
               std::move(idempotency));
}

Outcome LedgerService::commit(CommitRequest request, std::optional<IdempotencyScope> idempotency) {
    return run([request = std::move(request)](AccountChanges& changes) { return ledger::commit(changes, request); },
               std::move(idempotency));
}

Outcome LedgerService::release(ReleaseRequest request, std::optional<IdempotencyScope> idempotency) {
    return run([request = std::move(request)](AccountChanges& changes) { return ledger::release(changes, request); },
               std::move(idempotency));
}

Outcome LedgerService::record(RecordRequest request, std::optional<IdempotencyScope> idempotency) {
    return run([request = std::move(request)](AccountChanges& changes) { return ledger::record(changes, request); },
               std::move(idempotency));
}

Outcome LedgerService::snapshot(const std::string& user_id) {
    try {
        auto view = store_.read_account(user_id);
        if (view && clock_.now_seconds() < view->attention_at) {
            return Outcome{200, snapshot_of_receipt(view->last_receipt).dump(), false, {}};
        }
    } catch (const storage::StorageError& error) {
        std::cerr << "tokenmeter: read failed: " << error.what() << "\n";
        return unavailable();
    }
    // First use, or something lazy is due: the writer applies it with receipts.
    return run([user_id](AccountChanges& changes) { return open_snapshot(changes, user_id); });
}

Outcome LedgerService::events(const std::string& user_id, std::int64_t before_id, int limit) {
    try {
        auto rows = store_.read_events(user_id, before_id, limit + 1);
        nlohmann::json events = nlohmann::json::array();
        const bool more = static_cast<int>(rows.size()) > limit;
        if (more) rows.pop_back();
        for (const auto& row : rows) events.push_back(event_object(row));
        nlohmann::json body = {{"events", std::move(events)}, {"next_cursor", nullptr}};
        if (more) body["next_cursor"] = base64url_encode(std::to_string(rows.back().id));
        return Outcome{200, body.dump(), false, {}};
    } catch (const storage::StorageError& error) {
        std::cerr << "tokenmeter: read failed: " << error.what() << "\n";
        return unavailable();
    }
}

Outcome LedgerService::summary(const std::string& user_id, storage::SummaryGrouping grouping) {
    Outcome current = snapshot(user_id);
    if (current.status != 200) return current;
    try {
        auto snapshot_json = nlohmann::json::parse(current.body);
        auto start = parse_rfc3339(snapshot_json["period"]["start"].get<std::string>());
        auto end = parse_rfc3339(snapshot_json["period"]["end"].get<std::string>());
        auto totals = store_.read_summary(user_id, start.value(), end.value(), grouping);
        nlohmann::json groups = nlohmann::json::array();
        for (const auto& total : totals) {
            groups.push_back({{"key", total.group},
                              {"events", total.events},
                              {"raw_tokens", total.raw_tokens},
                              {"charged_tokens", total.charged_tokens},
                              {"avatars", total.avatars}});
        }
        nlohmann::json body = {{"group_by", grouping_name(grouping)},
                               {"period", snapshot_json["period"]},
                               {"groups", std::move(groups)}};
        return Outcome{200, body.dump(), false, {}};
    } catch (const storage::StorageError& error) {
        std::cerr << "tokenmeter: read failed: " << error.what() << "\n";
        return unavailable();
    }
}

}  // namespace tokenmeter::ledger
