// The alert outbox (DESIGN.md §13): alerts to the app's webhook endpoints,
// written in the transaction of the ledger change they report
// (LedgerBatch::enqueue_alert) and delivered at least once afterwards by a
// courier (server/alerts/) through the LedgerStore calls below.
//
// One row per (alert id, endpoint URL); a second enqueue of the same pair is
// ignored, so an alert decided again (a threshold crossed twice in a period,
// a batch run again after a conflict, two servers on one database) is still
// one delivery. The SQL is written once for both databases (outbox_tables,
// over a SqlSession); the stores add their connections and transactions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/sql_session.hpp"

namespace tokenmeter::storage {

enum class OutboxState : std::uint8_t {
    pending = 0,    // waiting for its next attempt (or being delivered)
    delivered = 1,  // an endpoint answered 2xx
    failed = 2,     // retry_until passed without a 2xx: given up
};

std::string_view to_string(OutboxState state);

// One alert to one endpoint.
struct OutboxRow {
    std::int64_t id = 0;  // assigned by the store
    std::string alert_id;  // the webhook-id, the same on every attempt
    std::string url;
    std::string type;  // the event type ("usage.threshold", …)
    std::string user_id;
    std::string body;  // the event's bytes, signed and sent as they are
    OutboxState state = OutboxState::pending;
    std::int64_t attempts = 0;
    std::int64_t next_attempt_at = 0;  // unix seconds
    std::int64_t retry_until = 0;      // no attempt is scheduled after this
    std::optional<std::int64_t> delivered_at;
    std::string last_error;
    std::int64_t created_at = 0;
};

// The SQL of the outbox, once for SQLite and PostgreSQL. The store runs each
// call in a transaction of its own, or the ledger batch's (enqueue).
namespace outbox_tables {

// Inserts the row unless one with its (alert_id, url) exists.
void enqueue(SqlSession& session, const OutboxRow& row);
// Pending rows due at `now`, oldest due first, at most `max`; each one's
// next attempt moved to `lease_until`, so no other courier takes it
// meanwhile and a courier that dies leaves it due again then.
std::vector<OutboxRow> take_due(SqlSession& session, std::int64_t now, std::int64_t lease_until, int max);
// Whether any pending row is due at `now` (a cheap read before take_due).
bool any_due(SqlSession& session, std::int64_t now);
void mark_delivered(SqlSession& session, std::int64_t row_id, std::int64_t at);
// One more failed attempt: due again at `next_attempt_at`, or given up.
void mark_failed(SqlSession& session, std::int64_t row_id, std::optional<std::int64_t> next_attempt_at,
                 std::string_view error);
// The rows, newest first, at most `limit`.
std::vector<OutboxRow> list(SqlSession& session, int limit);
// Makes every row of the alert pending and due at `now`, with attempts
// counted from zero again until `retry_until`; how many rows it has.
int replay(SqlSession& session, std::string_view alert_id, std::int64_t now, std::int64_t retry_until);

}  // namespace outbox_tables

}  // namespace tokenmeter::storage
