#include "storage/ledger_tables.hpp"

#include <climits>

#include "storage/journal_codec.hpp"
#include "storage/stored_values.hpp"

namespace tokenmeter::storage::ledger_tables {

namespace {

constexpr const char* account_columns =
    "user_id, plan, period_start, period_end, tokens_limit, tokens_used, tokens_reserved, avatars_limit, "
    "avatars_used, avatars_reserved, seq, anchor_day, plan_ends_at, plan_after, created_at, reservations, attention_at";

constexpr const char* journal_columns =
    "user_id, seq, kind, COALESCE(reservation_id, ''), change, receipt, COALESCE(caller, ''), "
    "COALESCE(idempotency_key, ''), COALESCE(request_hash, ''), created_at";

AccountRow account_row_from(const SqlRow& row) {
    AccountRow a;
    a.user_id = row.text(0);
    a.plan = row.text(1);
    a.period = Period{row.int64(2), row.int64(3)};
    a.balance = Balance{row.int64(4), row.int64(5), row.int64(6), row.int64(7), row.int64(8), row.int64(9)};
    a.seq = row.int64(10);
    a.anchor_day = static_cast<int>(row.int64(11));
    a.plan_ends_at = row.optional_int64(12);
    a.plan_after = row.text(13);
    a.created_at = row.int64(14);
    a.reservations = row.text(15);
    a.attention_at = row.int64(16);
    return a;
}

// Columns as journal_columns lists them, from `first` on.
JournalRow journal_row_from(const SqlRow& row, int first = 0) {
    JournalRow j;
    j.user_id = row.text(first + 0);
    j.seq = row.int64(first + 1);
    j.kind = row.text(first + 2);
    j.reservation_id = row.text(first + 3);
    j.change = row.text(first + 4);
    j.receipt = row.text(first + 5);
    j.caller = row.text(first + 6);
    j.idempotency_key = row.text(first + 7);
    j.request_hash = row.text(first + 8);
    j.created_at = row.int64(first + 9);
    return j;
}

UsageEvent usage_event_from(const SqlRow& row) {
    UsageEvent e;
    e.id = row.int64(0);
    e.event_id = row.text(1);
    e.user_id = row.text(2);
    e.period_start = row.int64(3);
    e.operation = stored_operation(row.text(4));
    e.model = row.text(5);
    e.input_tokens = row.int64(6);
    e.output_tokens = row.int64(7);
    e.raw_tokens = row.int64(8);
    e.multiplier = stored_multiplier(row.text(9));
    e.charged_tokens = row.int64(10);
    e.avatars = row.int64(11);
    e.reservation_id = row.text(12);
    e.idempotency_key = row.text(13);
    e.catalog_version = row.text(14);
    e.created_at = row.int64(15);
    e.late = row.int64(16) != 0;
    e.cached_input_tokens = row.int64(17);
    e.reasoning_tokens = row.int64(18);
    return e;
}

}  // namespace

void write_account(SqlSession& session, const AccountRow& a, std::optional<std::int64_t> seq_before) {
    const Balance& b = a.balance;
    if (seq_before) {
        static const std::string update =
            "UPDATE usage_limits SET period_end = $3, plan = $4, tokens_limit = $5, tokens_used = $6, "
            "tokens_reserved = $7, avatars_limit = $8, avatars_used = $9, avatars_reserved = $10, seq = $11, "
            "anchor_day = $12, plan_ends_at = $13, plan_after = $14, created_at = $15, reservations = $16, "
            "attention_at = $17 WHERE user_id = $1 AND period_start = $2 AND seq = $18";
        // Exactly one row, or the account is not what this writer read: another
        // process changed it (or the writer held an old copy).
        session.execute(update,
                        {a.user_id, a.period.start_seconds, a.period.end_seconds, a.plan, b.tokens_limit, b.tokens_used,
                         b.tokens_reserved, b.avatars_limit, b.avatars_used, b.avatars_reserved, a.seq,
                         std::int64_t{a.anchor_day}, sql_optional(a.plan_ends_at), a.plan_after, a.created_at,
                         a.reservations, a.attention_at, *seq_before},
                        1);
        return;
    }
    // A new row; an existing one (another process made it first) collides.
    static const std::string insert = std::string("INSERT INTO usage_limits (") + account_columns +
                                      ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";
    session.execute(insert, {a.user_id, a.plan, a.period.start_seconds, a.period.end_seconds, b.tokens_limit,
                             b.tokens_used, b.tokens_reserved, b.avatars_limit, b.avatars_used, b.avatars_reserved,
                             a.seq, std::int64_t{a.anchor_day}, sql_optional(a.plan_ends_at), a.plan_after,
                             a.created_at, a.reservations, a.attention_at});
}

void check_account(SqlSession& session, std::string_view user_id, std::int64_t period_start, std::int64_t seq) {
    std::optional<std::int64_t> stored;
    session.query("SELECT seq FROM usage_limits WHERE user_id = $1 AND period_start = $2", {user_id, period_start},
                  [&](const SqlRow& row) { stored = row.int64(0); });
    if (stored != seq) {
        throw StorageConflict("the account of " + std::string(user_id).substr(0, 64) +
                              " changed since it was read: another process wrote it");
    }
}

void append(SqlSession& session, const JournalRow& j) {
    static const std::string insert =
        "INSERT INTO ledger_journal (user_id, seq, kind, reservation_id, change, receipt, caller, idempotency_key, "
        "request_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    session.execute(insert, {j.user_id, j.seq, j.kind, sql_text_or_null(j.reservation_id), j.change, j.receipt,
                             sql_text_or_null(j.caller), sql_text_or_null(j.idempotency_key),
                             sql_text_or_null(j.request_hash), j.created_at});
}

void insert_charge(SqlSession& session, const UsageEvent& e) {
    static const std::string insert =
        "INSERT INTO token_usage (event_id, user_id, period_start, operation, model, input_tokens, output_tokens, "
        "raw_tokens, multiplier, charged_tokens, avatars, reservation_id, idempotency_key, catalog_version, "
        "created_at, late, cached_input_tokens, reasoning_tokens) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";
    const std::string multiplier = to_string(e.multiplier);
    // SQLite keeps `late` as 0/1, PostgreSQL as a boolean; both read '1'/'0'.
    session.execute(insert, {e.event_id, e.user_id, e.period_start, to_string(e.operation), e.model, e.input_tokens,
                             e.output_tokens, e.raw_tokens, multiplier, e.charged_tokens, e.avatars,
                             sql_text_or_null(e.reservation_id), sql_text_or_null(e.idempotency_key),
                             e.catalog_version, e.created_at, std::string_view(e.late ? "1" : "0"),
                             e.cached_input_tokens, e.reasoning_tokens});
}

void insert_answer(SqlSession& session, const AnswerRecord& r) {
    // A key another process stored meanwhile collides here: the batch runs
    // again and replays that process's answer.
    session.execute(
        "INSERT INTO idempotency_keys (caller, key, request_hash, status, response, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        {r.caller, r.key, r.request_hash, std::int64_t{r.status}, r.response, r.created_at});
}

int prune_answers(SqlSession& session, std::int64_t before, int max) {
    const char* sql =
        session.dialect() == SqlDialect::postgres
            ? "DELETE FROM idempotency_keys WHERE (caller, key) IN (SELECT caller, key FROM idempotency_keys "
              "WHERE created_at < $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING 1"
            : "DELETE FROM idempotency_keys WHERE id IN (SELECT id FROM idempotency_keys WHERE created_at < $1 "
              "ORDER BY created_at LIMIT $2) RETURNING 1";
    int deleted = 0;
    session.query(sql, {before, std::int64_t{max}}, [&](const SqlRow&) { deleted += 1; });
    return deleted;
}

namespace {

// One statement, so the row and the receipt come from one snapshot: the
// receipt is the one with the row's seq.
std::optional<StoredAccount> select_account(SqlSession& session, std::string_view user_id) {
    static const std::string select = std::string("SELECT ") + account_columns +
                                      ", (SELECT j.receipt FROM ledger_journal j WHERE j.user_id = u.user_id AND "
                                      "j.seq = u.seq) FROM usage_limits u WHERE u.user_id = $1 "
                                      "ORDER BY u.period_start DESC LIMIT 1";
    std::optional<StoredAccount> found;
    session.query(select, {user_id}, [&](const SqlRow& row) {
        found = StoredAccount{account_row_from(row), row.is_null(17) ? std::string() : row.text(17)};
    });
    if (found && found->head_receipt.empty()) {
        throw StorageError("the journal has no receipt for " + std::string(user_id).substr(0, 64) + " at seq " +
                           std::to_string(found->row.seq));
    }
    return found;
}

}  // namespace

std::optional<StoredAccount> read_account(SqlSession& session, std::string_view user_id) {
    return select_account(session, user_id);
}

std::optional<StoredAccount> lock_account(SqlSession& session, std::string_view user_id) {
    if (session.dialect() == SqlDialect::postgres) {
        // Lock first, read after: a row locked by a transaction that then
        // committed is re-read by the locking statement, but the journal
        // subquery of the same statement keeps its older snapshot. A new
        // statement sees both as committed.
        session.query("SELECT 1 FROM usage_limits WHERE user_id = $1 FOR UPDATE", {user_id}, [](const SqlRow&) {});
    }
    return select_account(session, user_id);
}

std::optional<AccountView> read_view(SqlSession& session, std::string_view user_id) {
    static const std::string select =
        "SELECT (SELECT j.receipt FROM ledger_journal j WHERE j.user_id = u.user_id AND j.seq = u.seq), "
        "u.attention_at FROM usage_limits u WHERE u.user_id = $1 ORDER BY u.period_start DESC LIMIT 1";
    std::optional<AccountView> view;
    session.query(select, {user_id}, [&](const SqlRow& row) {
        if (!row.is_null(0)) view = AccountView{row.text(0), row.int64(1)};
    });
    return view;
}

std::vector<JournalRow> read_reservation_rows(SqlSession& session, std::string_view reservation_id) {
    static const std::string select =
        std::string("SELECT ") + journal_columns + " FROM ledger_journal WHERE reservation_id = $1 ORDER BY seq";
    std::vector<JournalRow> rows;
    session.query(select, {reservation_id}, [&](const SqlRow& row) { rows.push_back(journal_row_from(row)); });
    if (!rows.empty()) return rows;
    // Made before the journal existed: the upgrade kept its row.
    session.query(
        "SELECT id, user_id, operation, model, multiplier_numerator, multiplier_denominator, catalog_version, "
        "tokens, avatars, state, created_at, expires_at, settled_at FROM reservations_before_journal WHERE id = $1",
        {reservation_id}, [&](const SqlRow& row) {
            HeldReservation held;
            held.id = row.text(0);
            held.user_id = row.text(1);
            held.operation = stored_operation(row.text(2));
            held.model = row.text(3);
            held.multiplier = Multiplier{row.int64(4), row.int64(5)};
            held.catalog_version = row.text(6);
            held.reservation.amount = Amount{row.int64(7), row.int64(8)};
            held.reservation.state = stored_reservation_state(row.text(9));
            held.created_at = row.int64(10);
            held.reservation.expires_at_seconds = row.int64(11);
            held.settled_at = row.int64(12);
            rows.push_back(journal_codec::legacy_reservation_row(held));
        });
    return rows;
}

std::optional<StoredAnswer> read_answer(SqlSession& session, std::string_view caller, std::string_view key) {
    static const std::string change = std::string("SELECT ") + journal_columns +
                                       " FROM ledger_journal WHERE caller = $1 AND idempotency_key = $2";
    std::optional<StoredAnswer> answer;
    session.query(change, {caller, key}, [&](const SqlRow& row) {
        JournalRow j = journal_row_from(row);
        answer = StoredAnswer{j.request_hash, std::move(j), 0, {}};
    });
    if (answer) return answer;
    session.query("SELECT request_hash, status, response FROM idempotency_keys WHERE caller = $1 AND key = $2",
                  {caller, key}, [&](const SqlRow& row) {
                      answer = StoredAnswer{row.text(0), std::nullopt, static_cast<int>(row.int64(1)), row.text(2)};
                  });
    return answer;
}

namespace {

constexpr const char* usage_event_select =
    "SELECT id, event_id, user_id, period_start, operation, model, input_tokens, output_tokens, raw_tokens, "
    "multiplier, charged_tokens, avatars, COALESCE(reservation_id, ''), COALESCE(idempotency_key, ''), "
    "catalog_version, created_at, CASE WHEN late THEN 1 ELSE 0 END, cached_input_tokens, reasoning_tokens "
    "FROM token_usage ";

}  // namespace

std::vector<UsageEvent> read_events(SqlSession& session, std::string_view user_id, std::int64_t before_id, int limit) {
    static const std::string select =
        std::string(usage_event_select) + "WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3";
    std::vector<UsageEvent> events;
    session.query(
        select,
        {user_id, before_id > 0 ? before_id : std::int64_t{INT64_MAX}, std::int64_t{limit}},
        [&](const SqlRow& row) { events.push_back(usage_event_from(row)); });
    return events;
}

std::vector<UsageTotal> read_summary(SqlSession& session, std::string_view user_id, std::int64_t period_start,
                                     SummaryGrouping grouping) {
    std::string group;
    switch (grouping) {
        case SummaryGrouping::day:
            group = session.dialect() == SqlDialect::postgres
                        ? "to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
                        : "strftime('%Y-%m-%d', created_at, 'unixepoch')";
            break;
        case SummaryGrouping::model: group = "model"; break;
        case SummaryGrouping::operation: group = "operation"; break;
    }
    // By period, not by time: the period a charge belongs to is the ledger's
    // word, whatever the clock said when it was made, so the totals always
    // add up to the snapshot's `used`.
    const std::string sql = "SELECT " + group +
                            ", COUNT(*), SUM(raw_tokens), SUM(charged_tokens), SUM(avatars) FROM token_usage "
                            "WHERE user_id = $1 AND period_start = $2 GROUP BY 1 ORDER BY 1";
    std::vector<UsageTotal> totals;
    session.query(sql, {user_id, period_start}, [&](const SqlRow& row) {
        totals.push_back(UsageTotal{row.text(0), row.int64(1), row.int64(2), row.int64(3), row.int64(4)});
    });
    return totals;
}

std::vector<UsageEvent> read_period_charges(SqlSession& session, std::string_view user_id, std::int64_t period_start) {
    static const std::string select = std::string(usage_event_select) + "WHERE user_id = $1 AND period_start = $2 ORDER BY id";
    std::vector<UsageEvent> events;
    session.query(select, {user_id, period_start}, [&](const SqlRow& row) { events.push_back(usage_event_from(row)); });
    return events;
}

std::vector<JournalRow> read_journal(SqlSession& session, std::string_view user_id, std::int64_t from_seq, int limit) {
    static const std::string select = std::string("SELECT ") + journal_columns +
                                      " FROM ledger_journal WHERE user_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3";
    std::vector<JournalRow> rows;
    session.query(select, {user_id, from_seq, std::int64_t{limit}},
                  [&](const SqlRow& row) { rows.push_back(journal_row_from(row)); });
    return rows;
}

}  // namespace tokenmeter::storage::ledger_tables
