#include "storage/postgres/pg_store.hpp"

#include <climits>
#include <set>

#include "storage/postgres/migrations.hpp"
#include "storage/postgres/pg_billing.hpp"
#include "storage/stored_values.hpp"

namespace tokenmeter::storage::postgres {

namespace {

// Serializes migrations of one database between processes starting together
// (an arbitrary constant: "tokenmeter" in ASCII, truncated).
constexpr const char* migration_lock = "SELECT pg_advisory_xact_lock(7310593858020516210)";

int current_version(Connection& connection) {
    return static_cast<int>(connection.exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").int64(0, 0));
}

std::vector<int> apply_migrations(Connection& connection) {
    connection.exec(std::string("BEGIN; ") + migration_lock +
                    "; CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                    "description text NOT NULL, applied_at bigint NOT NULL); COMMIT");
    std::vector<int> applied;
    for (const Migration& migration : migrations()) {
        // Each migration and its record in one transaction: all or nothing.
        connection.exec(std::string("BEGIN; ") + migration_lock);
        try {
            if (migration.version > current_version(connection)) {
                connection.exec(migration.sql);
                connection.run("INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)",
                               Params().add(migration.version).add(migration.description).add(unix_now()));
                applied.push_back(migration.version);
            }
            connection.exec("COMMIT");
        } catch (...) {
            if (!connection.broken()) connection.exec("ROLLBACK");
            throw;
        }
    }
    return applied;
}

// Acknowledged charges must survive a crash of the database's machine; with
// fsync=off they may not, whatever the commit says.
void refuse_fsync_off(Connection& connection) {
    if (connection.exec("SHOW fsync").text(0, 0) == "off") {
        throw StorageError(
            "the PostgreSQL server runs with fsync=off: a crash of its machine could lose acknowledged charges. "
            "tokenmeter refuses to start; turn fsync on (ALTER SYSTEM RESET fsync; SELECT pg_reload_conf())");
    }
}

constexpr const char* reservation_columns =
    "id, user_id, operation, model, multiplier_numerator, multiplier_denominator, catalog_version, tokens, avatars, "
    "state, created_at, expires_at, settled_at";

StoredReservation reservation_from(const Rows& rows, int i) {
    StoredReservation r;
    r.id = rows.text(i, 0);
    r.user_id = rows.text(i, 1);
    r.operation = stored_operation(rows.text(i, 2));
    r.model = rows.text(i, 3);
    r.multiplier = Multiplier{rows.int64(i, 4), rows.int64(i, 5)};
    r.catalog_version = rows.text(i, 6);
    r.reservation.amount = Amount{rows.int64(i, 7), rows.int64(i, 8)};
    r.reservation.state = stored_reservation_state(rows.text(i, 9));
    r.created_at = rows.int64(i, 10);
    r.reservation.expires_at_seconds = rows.int64(i, 11);
    r.settled_at = rows.int64(i, 12);
    return r;
}

class PgTransaction final : public LedgerTransaction {
public:
    explicit PgTransaction(Lease lease) : lease_(std::move(lease)), billing_(*lease_) { lease_->enter_pipeline(); }

    ~PgTransaction() override {
        if (!finished_ && !lease_->broken()) {
            try {
                lease_->run("ROLLBACK");
            } catch (const StorageError&) {
                // The connection failed while rolling back: the server rolls
                // the transaction back when the session ends, and the pool
                // drops the connection.
            }
        }
        lease_->leave_pipeline();
    }

    std::optional<Account> load_account(std::string_view user_id) override {
        // FOR UPDATE: both rows stay locked until commit, so no other process
        // can check or change this balance in between.
        //
        // An account an earlier job of this batch locked stays locked until
        // commit; locking it again from this job's savepoint would make
        // PostgreSQL record both in a MultiXact for every job, which costs a
        // hot account most of its throughput.
        static const std::string select =
            "SELECT a.user_id, a.plan, a.anchor_day, a.period_start, u.period_end, a.seq, a.last_receipt, "
            "a.plan_ends_at, a.plan_after, a.attention_at, a.created_at, u.tokens_limit, u.tokens_used, "
            "u.tokens_reserved, u.avatars_limit, u.avatars_used, u.avatars_reserved "
            "FROM accounts a JOIN usage_limits u ON u.user_id = a.user_id AND u.period_start = a.period_start "
            "WHERE a.user_id = $1";
        static const std::string select_for_update = select + " FOR UPDATE";
        const Rows row = lease_->run(holds(std::string(user_id)) ? select : select_for_update, Params().add(user_id));
        if (row.empty()) {
            // No row, or (after waiting for another process's lock) a row whose
            // period moved on: either way, an INSERT now collides if the
            // account exists, and the rerun sees it.
            return std::nullopt;
        }
        Account a;
        a.user_id = row.text(0, 0);
        a.plan = row.text(0, 1);
        a.anchor_day = static_cast<int>(row.int64(0, 2));
        a.period = Period{row.int64(0, 3), row.int64(0, 4)};
        a.seq = row.int64(0, 5);
        a.last_receipt = row.text(0, 6);
        a.plan_ends_at = row.optional_int64(0, 7);
        a.plan_after = row.text(0, 8);
        a.attention_at = row.int64(0, 9);
        a.created_at = row.int64(0, 10);
        a.balance = Balance{row.int64(0, 11), row.int64(0, 12), row.int64(0, 13),
                            row.int64(0, 14), row.int64(0, 15), row.int64(0, 16)};
        held_since_savepoint_.insert(a.user_id);
        return a;
    }

    void store_account(const Account& a) override {
        // An account this transaction has not locked is new: a plain INSERT,
        // which fails with 23505 (a StorageConflict) if another process
        // created it meanwhile, instead of overwriting that one's balance.
        const bool held = holds(a.user_id);
        static const std::string insert_account =
            "INSERT INTO accounts (user_id, plan, anchor_day, period_start, seq, last_receipt, plan_ends_at, plan_after, "
            "attention_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        static const std::string upsert_account =
            insert_account +
            " ON CONFLICT (user_id) DO UPDATE SET plan = $2, anchor_day = $3, period_start = $4, seq = $5, "
            "last_receipt = $6, plan_ends_at = $7, plan_after = $8, attention_at = $9";
        // The account row is locked (or new) here, so the period's row cannot
        // be changed by anyone else: an upsert is safe. Both rows in one
        // statement: one round trip.
        static const std::string upsert_limits =
            " INSERT INTO usage_limits (user_id, period_start, period_end, plan, tokens_limit, tokens_used, "
            "tokens_reserved, avatars_limit, avatars_used, avatars_reserved) "
            "VALUES ($1, $4, $11, $2, $12, $13, $14, $15, $16, $17) "
            "ON CONFLICT (user_id, period_start) DO UPDATE SET period_end = $11, plan = $2, tokens_limit = $12, "
            "tokens_used = $13, tokens_reserved = $14, avatars_limit = $15, avatars_used = $16, avatars_reserved = $17";
        static const std::string insert_both = "WITH account AS (" + insert_account + ")" + upsert_limits;
        static const std::string upsert_both = "WITH account AS (" + upsert_account + ")" + upsert_limits;
        const Balance& b = a.balance;
        lease_->defer(held ? upsert_both : insert_both,
                    Params().add(a.user_id).add(a.plan).add(a.anchor_day).add(a.period.start_seconds).add(a.seq)
                        .add(a.last_receipt).add(a.plan_ends_at).add(a.plan_after).add(a.attention_at).add(a.created_at)
                        .add(a.period.end_seconds).add(b.tokens_limit).add(b.tokens_used).add(b.tokens_reserved)
                        .add(b.avatars_limit).add(b.avatars_used).add(b.avatars_reserved));
        held_since_savepoint_.insert(a.user_id);
    }

    std::optional<StoredReservation> load_reservation(std::string_view id) override {
        static const std::string sql = std::string("SELECT ") + reservation_columns + " FROM reservations WHERE id = $1";
        const Rows rows = lease_->run(sql, Params().add(id));
        if (rows.empty()) return std::nullopt;
        return reservation_from(rows, 0);
    }

    void insert_reservation(const StoredReservation& r) override {
        static const std::string sql =
            "INSERT INTO reservations (id, user_id, operation, model, multiplier_numerator, multiplier_denominator, "
            "catalog_version, tokens, avatars, state, created_at, expires_at, settled_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
        lease_->defer(sql, Params().add(r.id).add(r.user_id).add(to_string(r.operation)).add(r.model)
                             .add(r.multiplier.numerator).add(r.multiplier.denominator).add(r.catalog_version)
                             .add(r.reservation.amount.tokens).add(r.reservation.amount.avatars)
                             .add(to_string(r.reservation.state)).add(r.created_at)
                             .add(r.reservation.expires_at_seconds).add(r.settled_at));
    }

    void update_reservation(const StoredReservation& r) override {
        static const std::string sql = "UPDATE reservations SET state = $1, settled_at = $2 WHERE id = $3";
        // Exactly one row, or the reservation vanished: checked when the
        // result arrives, which fails the batch.
        lease_->defer(sql, Params().add(to_string(r.reservation.state)).add(r.settled_at).add(r.id), 1);
    }

    std::vector<StoredReservation> due_reservations(std::string_view user_id, std::int64_t now) override {
        static const std::string sql = std::string("SELECT ") + reservation_columns +
                                       " FROM reservations WHERE user_id = $1 AND state = 'open' AND expires_at <= $2 "
                                       "ORDER BY expires_at";
        const Rows rows = lease_->run(sql, Params().add(user_id).add(now));
        std::vector<StoredReservation> due;
        for (int i = 0; i < rows.size(); ++i) due.push_back(reservation_from(rows, i));
        return due;
    }

    std::optional<std::int64_t> next_expiry(std::string_view user_id) override {
        static const std::string sql = "SELECT MIN(expires_at) FROM reservations WHERE user_id = $1 AND state = 'open'";
        return lease_->run(sql, Params().add(user_id)).optional_int64(0, 0);
    }

    void insert_usage(UsageEvent& e) override {
        static const std::string sql =
            "INSERT INTO token_usage (event_id, user_id, period_start, operation, model, input_tokens, output_tokens, "
            "raw_tokens, multiplier, charged_tokens, avatars, reservation_id, idempotency_key, catalog_version, "
            "created_at, late) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) "
            "RETURNING id";
        const Rows rows = lease_->run(
            sql, Params().add(e.event_id).add(e.user_id).add(e.period_start).add(to_string(e.operation)).add(e.model)
                     .add(e.input_tokens).add(e.output_tokens).add(e.raw_tokens).add(to_string(e.multiplier))
                     .add(e.charged_tokens).add(e.avatars).add_or_null(e.reservation_id)
                     .add_or_null(e.idempotency_key).add(e.catalog_version).add(e.created_at)
                     .add(e.late ? "true" : "false"));
        e.id = rows.int64(0, 0);
    }

    void insert_receipt(std::string_view user_id, std::int64_t seq, std::string_view jws, std::int64_t created_at) override {
        static const std::string sql = "INSERT INTO receipts (user_id, seq, jws, created_at) VALUES ($1, $2, $3, $4)";
        lease_->defer(sql, Params().add(user_id).add(seq).add(jws).add(created_at));
    }

    std::optional<IdempotencyRecord> load_idempotency(std::string_view caller, std::string_view key) override {
        static const std::string sql =
            "SELECT request_hash, status, response, created_at FROM idempotency_keys WHERE caller = $1 AND key = $2";
        const Rows row = lease_->run(sql, Params().add(caller).add(key));
        if (row.empty()) return std::nullopt;
        return IdempotencyRecord{std::string(caller), std::string(key), row.text(0, 0),
                                 static_cast<int>(row.int64(0, 1)), row.text(0, 2), row.int64(0, 3)};
    }

    void insert_idempotency(const IdempotencyRecord& r) override {
        // A key another process stored meanwhile collides here (23505): the
        // batch reruns and replays that process's answer.
        static const std::string sql =
            "INSERT INTO idempotency_keys (caller, key, request_hash, status, response, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6)";
        lease_->defer(sql, Params().add(r.caller).add(r.key).add(r.request_hash).add(r.status).add(r.response)
                               .add(r.created_at));
    }

    int prune_idempotency(std::int64_t before, int max) override {
        static const std::string sql =
            "DELETE FROM idempotency_keys WHERE (caller, key) IN "
            "(SELECT caller, key FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2 "
            "FOR UPDATE SKIP LOCKED)";
        return static_cast<int>(lease_->run(sql, Params().add(before).add(max)).affected());
    }

    void savepoint() override {
        lease_->defer("SAVEPOINT command");
        absorb_savepoint();
    }

    void rollback_to_savepoint() override {
        lease_->defer("ROLLBACK TO SAVEPOINT command");
        lease_->defer("RELEASE SAVEPOINT command");
        // Row locks taken inside the savepoint are gone with it.
        held_since_savepoint_.clear();
    }

    void release_savepoint() override {
        lease_->defer("RELEASE SAVEPOINT command");
        absorb_savepoint();
    }

    BillingTransaction* billing() override { return &billing_; }

    void commit() override {
        const Rows done = lease_->run("COMMIT");  // also reads every deferred result first
        finished_ = true;
        // COMMIT of a transaction that failed answers ROLLBACK, not an error.
        if (done.command() != "COMMIT") throw StorageError("PostgreSQL rolled the transaction back");
    }

private:
    bool holds(const std::string& user_id) const {
        return held_.count(user_id) > 0 || held_since_savepoint_.count(user_id) > 0;
    }

    void absorb_savepoint() {
        held_.merge(held_since_savepoint_);
        held_since_savepoint_.clear();
    }

    Lease lease_;
    PgBillingTransaction billing_;
    std::set<std::string> held_;                  // accounts locked or created by this transaction
    std::set<std::string> held_since_savepoint_;  // ... since the current savepoint
    bool finished_ = false;
};

}  // namespace

bool is_postgres_url(const std::string& url) {
    return url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0;
}

std::string redact_password(const std::string& url) {
    const auto scheme = url.find("://");
    if (scheme == std::string::npos) return url;
    const auto at = url.find('@', scheme + 3);
    if (at == std::string::npos) return url;
    const auto colon = url.find(':', scheme + 3);
    if (colon == std::string::npos || colon > at) return url;
    return url.substr(0, colon + 1) + "***" + url.substr(at);
}

PgStore::PgStore(PgOptions options)
    : options_(std::move(options)), pool_(options_.url, options_.connections_max, options_.connection_wait_max) {
    Lease lease = pool_.acquire();
    refuse_fsync_off(*lease);
    apply_migrations(*lease);
}

PgStore::~PgStore() = default;

std::vector<int> PgStore::migrate(const std::string& url) {
    Connection connection(url);
    return apply_migrations(connection);
}

std::unique_ptr<LedgerTransaction> PgStore::begin() {
    // An idle connection may have been cut by a database restart; BEGIN finds
    // out before anything is done, so one fresh attempt is safe.
    for (int attempt = 0;; ++attempt) {
        Lease lease = pool_.acquire();
        try {
            lease->exec("BEGIN ISOLATION LEVEL READ COMMITTED");
            return std::make_unique<PgTransaction>(std::move(lease));
        } catch (const StorageError&) {
            if (attempt > 0 || !lease->broken()) throw;
            pool_.drop_idle();
        }
    }
}

// Runs a read on a pooled connection, once more on a fresh one if the pooled
// one turns out to be cut (reads change nothing, so repeating is safe).
template <typename Read>
auto PgStore::read(Read&& read_with) {
    for (int attempt = 0;; ++attempt) {
        Lease lease = pool_.acquire();
        try {
            return read_with(*lease);
        } catch (const StorageError&) {
            if (attempt > 0 || !lease->broken()) throw;
            pool_.drop_idle();
        }
    }
}

std::optional<AccountView> PgStore::read_account(std::string_view user_id) {
    return read([&](Connection& connection) -> std::optional<AccountView> {
        const Rows row = connection.run("SELECT last_receipt, attention_at FROM accounts WHERE user_id = $1",
                                        Params().add(user_id));
        if (row.empty()) return std::nullopt;
        return AccountView{row.text(0, 0), row.int64(0, 1)};
    });
}

std::vector<UsageEvent> PgStore::read_events(std::string_view user_id, std::int64_t before_id, int limit) {
    return read([&](Connection& connection) {
        const Rows rows = connection.run(
            "SELECT id, event_id, user_id, period_start, operation, model, input_tokens, output_tokens, raw_tokens, "
            "multiplier, charged_tokens, avatars, COALESCE(reservation_id, ''), COALESCE(idempotency_key, ''), "
            "catalog_version, created_at, late FROM token_usage WHERE user_id = $1 AND id < $2 ORDER BY id DESC "
            "LIMIT $3",
            Params().add(user_id).add(before_id > 0 ? before_id : std::int64_t{INT64_MAX}).add(limit));
        std::vector<UsageEvent> events;
        for (int i = 0; i < rows.size(); ++i) {
            UsageEvent e;
            e.id = rows.int64(i, 0);
            e.event_id = rows.text(i, 1);
            e.user_id = rows.text(i, 2);
            e.period_start = rows.int64(i, 3);
            e.operation = stored_operation(rows.text(i, 4));
            e.model = rows.text(i, 5);
            e.input_tokens = rows.int64(i, 6);
            e.output_tokens = rows.int64(i, 7);
            e.raw_tokens = rows.int64(i, 8);
            e.multiplier = stored_multiplier(rows.text(i, 9));
            e.charged_tokens = rows.int64(i, 10);
            e.avatars = rows.int64(i, 11);
            e.reservation_id = rows.text(i, 12);
            e.idempotency_key = rows.text(i, 13);
            e.catalog_version = rows.text(i, 14);
            e.created_at = rows.int64(i, 15);
            e.late = rows.text(i, 16) == "t";
            events.push_back(std::move(e));
        }
        return events;
    });
}

std::vector<UsageTotal> PgStore::read_summary(std::string_view user_id, std::int64_t from, std::int64_t to,
                                              SummaryGrouping grouping) {
    std::string group;
    switch (grouping) {
        case SummaryGrouping::day: group = "to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"; break;
        case SummaryGrouping::model: group = "model"; break;
        case SummaryGrouping::operation: group = "operation"; break;
    }
    const std::string sql = "SELECT " + group +
                            ", COUNT(*), SUM(raw_tokens), SUM(charged_tokens), SUM(avatars) FROM token_usage "
                            "WHERE user_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY 1 ORDER BY 1";
    return read([&](Connection& connection) {
        const Rows rows = connection.run(sql, Params().add(user_id).add(from).add(to));
        std::vector<UsageTotal> totals;
        for (int i = 0; i < rows.size(); ++i) {
            totals.push_back(UsageTotal{rows.text(i, 0), rows.int64(i, 1), rows.int64(i, 2), rows.int64(i, 3),
                                        rows.int64(i, 4)});
        }
        return totals;
    });
}

std::vector<std::string> PgStore::read_receipts(std::string_view user_id, std::int64_t from_seq, int limit) {
    return read([&](Connection& connection) {
        const Rows rows = connection.run("SELECT jws FROM receipts WHERE user_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
                                         Params().add(user_id).add(from_seq).add(limit));
        std::vector<std::string> receipts;
        for (int i = 0; i < rows.size(); ++i) receipts.push_back(rows.text(i, 0));
        return receipts;
    });
}

bool PgStore::healthy() {
    try {
        return read([](Connection& connection) { return connection.exec("SELECT 1").size() == 1; });
    } catch (const StorageError&) {
        return false;
    }
}

int PgStore::schema_version() {
    return read([](Connection& connection) { return current_version(connection); });
}

}  // namespace tokenmeter::storage::postgres
