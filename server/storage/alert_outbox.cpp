#include "storage/alert_outbox.hpp"

#include "storage/store.hpp"

namespace tokenmeter::storage {

namespace {

constexpr const char* outbox_columns =
    "id, alert_id, url, type, user_id, body, state, attempts, next_attempt_at, retry_until, delivered_at, "
    "COALESCE(last_error, ''), created_at";

OutboxState stored_state(const std::string& text) {
    if (text == "delivered") return OutboxState::delivered;
    if (text == "failed") return OutboxState::failed;
    if (text == "pending") return OutboxState::pending;
    throw StorageError("alert_outbox: unknown state \"" + text.substr(0, 32) + "\"");
}

OutboxRow outbox_row_from(const SqlRow& row) {
    OutboxRow o;
    o.id = row.int64(0);
    o.alert_id = row.text(1);
    o.url = row.text(2);
    o.type = row.text(3);
    o.user_id = row.text(4);
    o.body = row.text(5);
    o.state = stored_state(row.text(6));
    o.attempts = row.int64(7);
    o.next_attempt_at = row.int64(8);
    o.retry_until = row.int64(9);
    o.delivered_at = row.optional_int64(10);
    o.last_error = row.text(11);
    o.created_at = row.int64(12);
    return o;
}

// An error text is for operators; a receiver's whole answer is not.
constexpr std::size_t error_bytes_max = 512;

}  // namespace

std::string_view to_string(OutboxState state) {
    switch (state) {
        case OutboxState::pending: return "pending";
        case OutboxState::delivered: return "delivered";
        case OutboxState::failed: return "failed";
    }
    return "pending";
}

namespace outbox_tables {

void enqueue(SqlSession& session, const OutboxRow& r) {
    // Both SQLite (3.24+) and PostgreSQL (9.5+) read this upsert alike. On
    // PostgreSQL a concurrent insert of the same pair waits for the other
    // transaction and then does nothing: never a conflict for the batch.
    session.execute(
        "INSERT INTO alert_outbox (alert_id, url, type, user_id, body, next_attempt_at, retry_until, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (alert_id, url) DO NOTHING",
        {r.alert_id, r.url, r.type, r.user_id, r.body, r.next_attempt_at, r.retry_until, r.created_at});
}

std::vector<OutboxRow> take_due(SqlSession& session, std::int64_t now, std::int64_t lease_until, int max) {
    // PostgreSQL: rows another courier is taking are skipped, not waited for.
    static const std::string postgres =
        std::string("UPDATE alert_outbox SET next_attempt_at = $1 WHERE id IN (SELECT id FROM alert_outbox "
                    "WHERE state = 'pending' AND next_attempt_at <= $2 ORDER BY next_attempt_at, id LIMIT $3 "
                    "FOR UPDATE SKIP LOCKED) RETURNING ") + outbox_columns;
    static const std::string sqlite =
        std::string("UPDATE alert_outbox SET next_attempt_at = $1 WHERE id IN (SELECT id FROM alert_outbox "
                    "WHERE state = 'pending' AND next_attempt_at <= $2 ORDER BY next_attempt_at, id LIMIT $3) "
                    "RETURNING ") + outbox_columns;
    std::vector<OutboxRow> rows;
    session.query(session.dialect() == SqlDialect::postgres ? postgres : sqlite, {lease_until, now, std::int64_t{max}},
                  [&](const SqlRow& row) { rows.push_back(outbox_row_from(row)); });
    return rows;
}

bool any_due(SqlSession& session, std::int64_t now) {
    bool due = false;
    session.query("SELECT 1 FROM alert_outbox WHERE state = 'pending' AND next_attempt_at <= $1 LIMIT 1", {now},
                  [&](const SqlRow&) { due = true; });
    return due;
}

void mark_delivered(SqlSession& session, std::int64_t row_id, std::int64_t at) {
    session.execute(
        "UPDATE alert_outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = $2, last_error = NULL "
        "WHERE id = $1 AND state = 'pending'",
        {row_id, at});
}

void mark_failed(SqlSession& session, std::int64_t row_id, std::optional<std::int64_t> next_attempt_at,
                 std::string_view error) {
    const std::string_view kept = error.substr(0, error_bytes_max);
    if (next_attempt_at) {
        session.execute(
            "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 "
            "WHERE id = $1 AND state = 'pending'",
            {row_id, *next_attempt_at, kept});
        return;
    }
    session.execute(
        "UPDATE alert_outbox SET state = 'failed', attempts = attempts + 1, last_error = $2 "
        "WHERE id = $1 AND state = 'pending'",
        {row_id, kept});
}

std::vector<OutboxRow> list(SqlSession& session, int limit) {
    static const std::string select =
        std::string("SELECT ") + outbox_columns + " FROM alert_outbox ORDER BY id DESC LIMIT $1";
    std::vector<OutboxRow> rows;
    session.query(select, {std::int64_t{limit}}, [&](const SqlRow& row) { rows.push_back(outbox_row_from(row)); });
    return rows;
}

int replay(SqlSession& session, std::string_view alert_id, std::int64_t now, std::int64_t retry_until) {
    int rows = 0;
    session.query(
        "UPDATE alert_outbox SET state = 'pending', attempts = 0, next_attempt_at = $2, retry_until = $3, "
        "delivered_at = NULL WHERE alert_id = $1 RETURNING 1",
        {alert_id, now, retry_until}, [&](const SqlRow&) { rows += 1; });
    return rows;
}

}  // namespace outbox_tables

}  // namespace tokenmeter::storage
