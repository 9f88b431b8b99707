#include "storage/sqlite/sqlite_store.hpp"

#include "storage/sqlite/migrations.hpp"
#include "storage/sqlite/sqlite_billing.hpp"
#include "storage/sqlite/sqlite_db.hpp"
#include "storage/stored_values.hpp"

namespace tokenmeter::storage::sqlite {

namespace {

int current_version(Connection& connection) {
    connection.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                    "description TEXT NOT NULL, applied_at INTEGER NOT NULL)");
    auto statement = connection.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    statement->step();
    return static_cast<int>(statement->int64(0));
}

std::vector<int> apply_migrations(Connection& connection) {
    std::vector<int> applied;
    for (const Migration& migration : migrations()) {
        // Each migration and its record in one transaction: all or nothing.
        connection.exec("BEGIN IMMEDIATE");
        try {
            if (migration.version > current_version(connection)) {
                connection.exec(migration.sql);
                auto record = connection.prepare(
                    "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)");
                record->bind(1, std::int64_t{migration.version}).bind(2, migration.description).bind(3, unix_now()).run();
                applied.push_back(migration.version);
            }
            connection.exec("COMMIT");
        } catch (...) {
            connection.exec("ROLLBACK");
            throw;
        }
    }
    return applied;
}

StoredReservation reservation_from(Statement& row) {
    StoredReservation r;
    r.id = row.text(0);
    r.user_id = row.text(1);
    r.operation = stored_operation(row.text(2));
    r.model = row.text(3);
    r.multiplier = Multiplier{row.int64(4), row.int64(5)};
    r.catalog_version = row.text(6);
    r.reservation.amount = Amount{row.int64(7), row.int64(8)};
    r.reservation.state = stored_reservation_state(row.text(9));
    r.created_at = row.int64(10);
    r.reservation.expires_at_seconds = row.int64(11);
    r.settled_at = row.int64(12);
    return r;
}

constexpr const char* reservation_columns =
    "id, user_id, operation, model, multiplier_numerator, multiplier_denominator, catalog_version, tokens, avatars, "
    "state, created_at, expires_at, settled_at";

class SqliteTransaction final : public LedgerTransaction {
public:
    SqliteTransaction(Connection& connection, std::unique_lock<std::mutex> lock)
        : connection_(connection), lock_(std::move(lock)), billing_(connection) {
        connection_.exec("BEGIN IMMEDIATE");
    }

    ~SqliteTransaction() override {
        if (!finished_) {
            try {
                connection_.exec("ROLLBACK");
            } catch (const StorageError&) {
                // Rolling back a transaction that SQLite already rolled back
                // (after an I/O error) fails harmlessly.
            }
        }
    }

    std::optional<Account> load_account(std::string_view user_id) override {
        auto row = connection_.prepare(
            "SELECT a.user_id, a.plan, a.anchor_day, a.period_start, u.period_end, a.seq, a.last_receipt, "
            "a.plan_ends_at, a.plan_after, a.attention_at, a.created_at, u.tokens_limit, u.tokens_used, "
            "u.tokens_reserved, u.avatars_limit, u.avatars_used, u.avatars_reserved "
            "FROM accounts a JOIN usage_limits u ON u.user_id = a.user_id AND u.period_start = a.period_start "
            "WHERE a.user_id = ?");
        row->bind(1, user_id);
        if (!row->step()) return std::nullopt;
        Account a;
        a.user_id = row->text(0);
        a.plan = row->text(1);
        a.anchor_day = static_cast<int>(row->int64(2));
        a.period = Period{row->int64(3), row->int64(4)};
        a.seq = row->int64(5);
        a.last_receipt = row->text(6);
        a.plan_ends_at = row->optional_int64(7);
        a.plan_after = row->text(8);
        a.attention_at = row->int64(9);
        a.created_at = row->int64(10);
        a.balance = Balance{row->int64(11), row->int64(12), row->int64(13), row->int64(14), row->int64(15), row->int64(16)};
        return a;
    }

    void store_account(const Account& a) override {
        auto account = connection_.prepare(
            "INSERT INTO accounts (user_id, plan, anchor_day, period_start, seq, last_receipt, plan_ends_at, plan_after, "
            "attention_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
            "ON CONFLICT (user_id) DO UPDATE SET plan = ?2, anchor_day = ?3, period_start = ?4, seq = ?5, "
            "last_receipt = ?6, plan_ends_at = ?7, plan_after = ?8, attention_at = ?9");
        account->bind(1, a.user_id).bind(2, a.plan).bind(3, std::int64_t{a.anchor_day}).bind(4, a.period.start_seconds);
        account->bind(5, a.seq).bind(6, a.last_receipt).bind(7, a.plan_ends_at).bind(8, a.plan_after);
        account->bind(9, a.attention_at).bind(10, a.created_at).run();
        auto limits = connection_.prepare(
            "INSERT INTO usage_limits (user_id, period_start, period_end, plan, tokens_limit, tokens_used, "
            "tokens_reserved, avatars_limit, avatars_used, avatars_reserved) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
            "ON CONFLICT (user_id, period_start) DO UPDATE SET period_end = ?3, plan = ?4, tokens_limit = ?5, "
            "tokens_used = ?6, tokens_reserved = ?7, avatars_limit = ?8, avatars_used = ?9, avatars_reserved = ?10");
        const Balance& b = a.balance;
        limits->bind(1, a.user_id).bind(2, a.period.start_seconds).bind(3, a.period.end_seconds).bind(4, a.plan);
        limits->bind(5, b.tokens_limit).bind(6, b.tokens_used).bind(7, b.tokens_reserved);
        limits->bind(8, b.avatars_limit).bind(9, b.avatars_used).bind(10, b.avatars_reserved).run();
    }

    std::optional<StoredReservation> load_reservation(std::string_view id) override {
        static const std::string sql = std::string("SELECT ") + reservation_columns + " FROM reservations WHERE id = ?";
        auto row = connection_.prepare(sql.c_str());
        row->bind(1, id);
        if (!row->step()) return std::nullopt;
        return reservation_from(*row);
    }

    void insert_reservation(const StoredReservation& r) override {
        auto insert = connection_.prepare(
            "INSERT INTO reservations (id, user_id, operation, model, multiplier_numerator, multiplier_denominator, "
            "catalog_version, tokens, avatars, state, created_at, expires_at, settled_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        insert->bind(1, r.id).bind(2, r.user_id).bind(3, to_string(r.operation)).bind(4, r.model);
        insert->bind(5, r.multiplier.numerator).bind(6, r.multiplier.denominator).bind(7, r.catalog_version);
        insert->bind(8, r.reservation.amount.tokens).bind(9, r.reservation.amount.avatars);
        insert->bind(10, to_string(r.reservation.state)).bind(11, r.created_at);
        insert->bind(12, r.reservation.expires_at_seconds).bind(13, r.settled_at).run();
    }

    void update_reservation(const StoredReservation& r) override {
        auto update = connection_.prepare("UPDATE reservations SET state = ?, settled_at = ? WHERE id = ?");
        update->bind(1, to_string(r.reservation.state)).bind(2, r.settled_at).bind(3, r.id).run();
        if (connection_.changes() != 1) throw StorageError("reservation " + r.id + " vanished");
    }

    std::vector<StoredReservation> due_reservations(std::string_view user_id, std::int64_t now) override {
        static const std::string sql = std::string("SELECT ") + reservation_columns +
                                       " FROM reservations WHERE user_id = ? AND state = 'open' AND expires_at <= ? "
                                       "ORDER BY expires_at";
        auto rows = connection_.prepare(sql.c_str());
        rows->bind(1, user_id).bind(2, now);
        std::vector<StoredReservation> due;
        while (rows->step()) due.push_back(reservation_from(*rows));
        return due;
    }

    std::optional<std::int64_t> next_expiry(std::string_view user_id) override {
        auto row = connection_.prepare(
            "SELECT MIN(expires_at) FROM reservations WHERE user_id = ? AND state = 'open'");
        row->bind(1, user_id);
        row->step();
        return row->optional_int64(0);
    }

    void insert_usage(UsageEvent& e) override {
        auto insert = connection_.prepare(
            "INSERT INTO token_usage (event_id, user_id, period_start, operation, model, input_tokens, output_tokens, "
            "raw_tokens, multiplier, charged_tokens, avatars, reservation_id, idempotency_key, catalog_version, "
            "created_at, late) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        insert->bind(1, e.event_id).bind(2, e.user_id).bind(3, e.period_start).bind(4, to_string(e.operation));
        insert->bind(5, e.model).bind(6, e.input_tokens).bind(7, e.output_tokens).bind(8, e.raw_tokens);
        insert->bind(9, to_string(e.multiplier)).bind(10, e.charged_tokens).bind(11, e.avatars);
        if (e.reservation_id.empty()) insert->bind_null(12); else insert->bind(12, e.reservation_id);
        if (e.idempotency_key.empty()) insert->bind_null(13); else insert->bind(13, e.idempotency_key);
        insert->bind(14, e.catalog_version).bind(15, e.created_at).bind(16, std::int64_t{e.late ? 1 : 0}).run();
        e.id = connection_.last_insert_rowid();
    }

    void insert_receipt(std::string_view user_id, std::int64_t seq, std::string_view jws, std::int64_t created_at) override {
        auto insert = connection_.prepare("INSERT INTO receipts (user_id, seq, jws, created_at) VALUES (?, ?, ?, ?)");
        insert->bind(1, user_id).bind(2, seq).bind(3, jws).bind(4, created_at).run();
    }

    std::optional<IdempotencyRecord> load_idempotency(std::string_view caller, std::string_view key) override {
        auto row = connection_.prepare(
            "SELECT request_hash, status, response, created_at FROM idempotency_keys WHERE caller = ? AND key = ?");
        row->bind(1, caller).bind(2, key);
        if (!row->step()) return std::nullopt;
        return IdempotencyRecord{std::string(caller), std::string(key), row->text(0), static_cast<int>(row->int64(1)),
                                 row->text(2), row->int64(3)};
    }

    void insert_idempotency(const IdempotencyRecord& r) override {
        auto insert = connection_.prepare(
            "INSERT INTO idempotency_keys (caller, key, request_hash, status, response, created_at) VALUES (?, ?, ?, ?, ?, ?)");
        insert->bind(1, r.caller).bind(2, r.key).bind(3, r.request_hash).bind(4, std::int64_t{r.status});
        insert->bind(5, r.response).bind(6, r.created_at).run();
    }

    int prune_idempotency(std::int64_t before, int max) override {
        auto prune = connection_.prepare(
            "DELETE FROM idempotency_keys WHERE id IN "
            "(SELECT id FROM idempotency_keys WHERE created_at < ? ORDER BY created_at LIMIT ?)");
        prune->bind(1, before).bind(2, std::int64_t{max}).run();
        return connection_.changes();
    }

    void savepoint() override { connection_.exec("SAVEPOINT command"); }
    void rollback_to_savepoint() override { connection_.exec("ROLLBACK TO command; RELEASE command"); }
    void release_savepoint() override { connection_.exec("RELEASE command"); }

    BillingTransaction* billing() override { return &billing_; }

    void commit() override {
        connection_.exec("COMMIT");
        finished_ = true;
    }

private:
    Connection& connection_;
    std::unique_lock<std::mutex> lock_;
    SqliteBillingTransaction billing_;
    bool finished_ = false;
};

}  // namespace

class SqliteStore::ReaderLease {
public:
    ReaderLease(SqliteStore& store, std::unique_ptr<Connection> connection)
        : store_(store), connection_(std::move(connection)) {}
    ~ReaderLease() {
        if (connection_) store_.return_reader(std::move(connection_));
    }
    ReaderLease(ReaderLease&& other) noexcept : store_(other.store_), connection_(std::move(other.connection_)) {}
    ReaderLease(const ReaderLease&) = delete;
    ReaderLease& operator=(const ReaderLease&) = delete;
    ReaderLease& operator=(ReaderLease&&) = delete;
    Connection* operator->() { return connection_.get(); }
    // A connection that failed is dropped rather than returned to the pool.
    void discard() { connection_.reset(); }

private:
    SqliteStore& store_;
    std::unique_ptr<Connection> connection_;
};

SqliteStore::SqliteStore(SqliteOptions options) : options_(std::move(options)) {
    writer_ = std::make_unique<Connection>(options_.path, /*create=*/true, options_.busy_timeout_ms);
    apply_migrations(*writer_);
}

SqliteStore::~SqliteStore() = default;

std::vector<int> SqliteStore::migrate(const std::string& path) {
    Connection connection(path, /*create=*/true, 5000);
    return apply_migrations(connection);
}

std::unique_ptr<LedgerTransaction> SqliteStore::begin() {
    std::unique_lock<std::mutex> lock(writer_mutex_);
    return std::make_unique<SqliteTransaction>(*writer_, std::move(lock));
}

SqliteStore::ReaderLease SqliteStore::lease_reader() {
    {
        std::lock_guard<std::mutex> guard(readers_mutex_);
        if (!readers_.empty()) {
            auto connection = std::move(readers_.back());
            readers_.pop_back();
            return ReaderLease(*this, std::move(connection));
        }
    }
    return ReaderLease(*this, std::make_unique<Connection>(options_.path, /*create=*/false, options_.busy_timeout_ms));
}

void SqliteStore::return_reader(std::unique_ptr<Connection> connection) {
    std::lock_guard<std::mutex> guard(readers_mutex_);
    readers_.push_back(std::move(connection));
}

std::optional<AccountView> SqliteStore::read_account(std::string_view user_id) {
    auto reader = lease_reader();
    auto row = reader->prepare("SELECT last_receipt, attention_at FROM accounts WHERE user_id = ?");
    row->bind(1, user_id);
    if (!row->step()) return std::nullopt;
    return AccountView{row->text(0), row->int64(1)};
}

std::vector<UsageEvent> SqliteStore::read_events(std::string_view user_id, std::int64_t before_id, int limit) {
    auto reader = lease_reader();
    auto rows = reader->prepare(
        "SELECT id, event_id, user_id, period_start, operation, model, input_tokens, output_tokens, raw_tokens, "
        "multiplier, charged_tokens, avatars, COALESCE(reservation_id, ''), COALESCE(idempotency_key, ''), "
        "catalog_version, created_at, late FROM token_usage WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?");
    rows->bind(1, user_id).bind(2, before_id > 0 ? before_id : INT64_MAX).bind(3, std::int64_t{limit});
    std::vector<UsageEvent> events;
    while (rows->step()) {
        UsageEvent e;
        e.id = rows->int64(0);
        e.event_id = rows->text(1);
        e.user_id = rows->text(2);
        e.period_start = rows->int64(3);
        e.operation = stored_operation(rows->text(4));
        e.model = rows->text(5);
        e.input_tokens = rows->int64(6);
        e.output_tokens = rows->int64(7);
        e.raw_tokens = rows->int64(8);
        e.multiplier = stored_multiplier(rows->text(9));
        e.charged_tokens = rows->int64(10);
        e.avatars = rows->int64(11);
        e.reservation_id = rows->text(12);
        e.idempotency_key = rows->text(13);
        e.catalog_version = rows->text(14);
        e.created_at = rows->int64(15);
        e.late = rows->int64(16) != 0;
        events.push_back(std::move(e));
    }
    return events;
}

std::vector<UsageTotal> SqliteStore::read_summary(std::string_view user_id, std::int64_t from, std::int64_t to,
                                                  SummaryGrouping grouping) {
    auto reader = lease_reader();
    const char* sql = nullptr;
    switch (grouping) {
        case SummaryGrouping::day:
            sql = "SELECT strftime('%Y-%m-%d', created_at, 'unixepoch'), COUNT(*), SUM(raw_tokens), "
                  "SUM(charged_tokens), SUM(avatars) FROM token_usage WHERE user_id = ? AND created_at >= ? "
                  "AND created_at < ? GROUP BY 1 ORDER BY 1";
            break;
        case SummaryGrouping::model:
            sql = "SELECT model, COUNT(*), SUM(raw_tokens), SUM(charged_tokens), SUM(avatars) FROM token_usage "
                  "WHERE user_id = ? AND created_at >= ? AND created_at < ? GROUP BY 1 ORDER BY 1";
            break;
        case SummaryGrouping::operation:
            sql = "SELECT operation, COUNT(*), SUM(raw_tokens), SUM(charged_tokens), SUM(avatars) FROM token_usage "
                  "WHERE user_id = ? AND created_at >= ? AND created_at < ? GROUP BY 1 ORDER BY 1";
            break;
    }
    auto rows = reader->prepare(sql);
    rows->bind(1, user_id).bind(2, from).bind(3, to);
    std::vector<UsageTotal> totals;
    while (rows->step()) {
        totals.push_back(UsageTotal{rows->text(0), rows->int64(1), rows->int64(2), rows->int64(3), rows->int64(4)});
    }
    return totals;
}

std::vector<std::string> SqliteStore::read_receipts(std::string_view user_id, std::int64_t from_seq, int limit) {
    auto reader = lease_reader();
    auto rows = reader->prepare("SELECT jws FROM receipts WHERE user_id = ? AND seq >= ? ORDER BY seq LIMIT ?");
    rows->bind(1, user_id).bind(2, from_seq).bind(3, std::int64_t{limit});
    std::vector<std::string> receipts;
    while (rows->step()) receipts.push_back(rows->text(0));
    return receipts;
}

bool SqliteStore::healthy() {
    try {
        auto reader = lease_reader();
        auto row = reader->prepare("SELECT COUNT(*) FROM schema_migrations");
        return row->step();
    } catch (const StorageError&) {
        return false;
    }
}

int SqliteStore::schema_version() {
    auto reader = lease_reader();
    auto row = reader->prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    row->step();
    return static_cast<int>(row->int64(0));
}

}  // namespace tokenmeter::storage::sqlite
