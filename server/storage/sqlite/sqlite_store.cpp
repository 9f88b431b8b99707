#include "storage/sqlite/sqlite_store.hpp"

#include "storage/ledger_tables.hpp"
#include "storage/sql_session.hpp"

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
                if (migration.step != nullptr) migration.step(connection);
                if (migration.sql_after != nullptr) connection.exec(migration.sql_after);
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

// The ledger's tables (ledger_tables.hpp) on a SQLite connection.
class SqliteSession final : public SqlSession {
public:
    explicit SqliteSession(Connection& connection) : connection_(connection) {}

    SqlDialect dialect() const override { return SqlDialect::sqlite; }

    void execute(std::string_view sql, std::initializer_list<SqlValue> params, std::int64_t expected_changes) override {
        auto statement = connection_.prepare_numbered(sql);
        bind(*statement, params);
        statement->run();
        if (expected_changes >= 0 && connection_.changes() != expected_changes) {
            throw StorageConflict("sqlite: a guarded write changed " + std::to_string(connection_.changes()) +
                                  " rows, not " + std::to_string(expected_changes));
        }
    }

    void query(std::string_view sql, std::initializer_list<SqlValue> params,
               const std::function<void(const SqlRow&)>& each) override {
        auto statement = connection_.prepare_numbered(sql);
        bind(*statement, params);
        const Row row(*statement);
        while (statement->step()) each(row);
    }

private:
    class Row final : public SqlRow {
    public:
        explicit Row(Statement& statement) : statement_(statement) {}
        bool is_null(int column) const override { return statement_.is_null(column); }
        std::string text(int column) const override { return statement_.text(column); }
        std::int64_t int64(int column) const override { return statement_.int64(column); }

    private:
        Statement& statement_;
    };

    static void bind(Statement& statement, std::initializer_list<SqlValue> params) {
        int index = 1;
        for (const SqlValue& value : params) {
            if (std::holds_alternative<std::int64_t>(value)) {
                statement.bind(index, std::get<std::int64_t>(value));
            } else if (std::holds_alternative<std::string_view>(value)) {
                statement.bind(index, std::get<std::string_view>(value));
            } else {
                statement.bind_null(index);
            }
            ++index;
        }
    }

    Connection& connection_;
};

class SqliteBatch final : public LedgerBatch {
public:
    SqliteBatch(Connection& connection, std::unique_lock<std::mutex> lock)
        : connection_(connection), lock_(std::move(lock)), session_(connection), billing_(connection) {
        connection_.exec("BEGIN IMMEDIATE");
    }

    ~SqliteBatch() override {
        if (!finished_) {
            try {
                connection_.exec("ROLLBACK");
            } catch (const StorageError&) {
                // Rolling back a transaction that SQLite already rolled back
                // (after an I/O error) fails harmlessly.
            }
        }
    }

    void write_account(const AccountRow& row, std::optional<std::int64_t> seq_before) override {
        ledger_tables::write_account(session_, row, seq_before);
    }
    std::optional<StoredAccount> lock_account(std::string_view user_id) override {
        return ledger_tables::lock_account(session_, user_id);
    }
    void check_account(std::string_view user_id, std::int64_t period_start, std::int64_t seq) override {
        ledger_tables::check_account(session_, user_id, period_start, seq);
    }
    void append(const JournalRow& row) override { ledger_tables::append(session_, row); }
    void insert_charge(const UsageEvent& event) override { ledger_tables::insert_charge(session_, event); }
    void insert_answer(const AnswerRecord& answer) override { ledger_tables::insert_answer(session_, answer); }
    int prune_answers(std::int64_t before, int max) override { return ledger_tables::prune_answers(session_, before, max); }
    void enqueue_alert(const OutboxRow& row) override { outbox_tables::enqueue(session_, row); }
    // One SQLite file has one writing process: nobody else to tell.
    void notify(const std::vector<std::string>&) override {}
    BillingTransaction* billing() override { return &billing_; }

    void commit() override {
        connection_.exec("COMMIT");
        finished_ = true;
    }

private:
    Connection& connection_;
    std::unique_lock<std::mutex> lock_;
    SqliteSession session_;
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

std::unique_ptr<LedgerBatch> SqliteStore::begin() {
    std::unique_lock<std::mutex> lock(writer_mutex_);
    return std::make_unique<SqliteBatch>(*writer_, std::move(lock));
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

template <typename Read>
auto SqliteStore::read(Read&& read_with) {
    auto reader = lease_reader();
    SqliteSession session(*reader.operator->());
    return read_with(session);
}

std::optional<StoredAccount> SqliteStore::read_account(std::string_view user_id) {
    return read([&](SqlSession& session) { return ledger_tables::read_account(session, user_id); });
}

std::optional<AccountView> SqliteStore::read_view(std::string_view user_id) {
    return read([&](SqlSession& session) { return ledger_tables::read_view(session, user_id); });
}

std::vector<JournalRow> SqliteStore::read_reservation_rows(std::string_view reservation_id) {
    return read([&](SqlSession& session) { return ledger_tables::read_reservation_rows(session, reservation_id); });
}

std::optional<StoredAnswer> SqliteStore::read_answer(std::string_view caller, std::string_view key) {
    return read([&](SqlSession& session) { return ledger_tables::read_answer(session, caller, key); });
}

std::vector<UsageEvent> SqliteStore::read_events(std::string_view user_id, std::int64_t before_id, int limit) {
    return read([&](SqlSession& session) { return ledger_tables::read_events(session, user_id, before_id, limit); });
}

std::vector<UsageTotal> SqliteStore::read_summary(std::string_view user_id, std::int64_t period_start,
                                                  SummaryGrouping grouping) {
    return read([&](SqlSession& session) { return ledger_tables::read_summary(session, user_id, period_start, grouping); });
}

std::vector<UsageEvent> SqliteStore::read_period_charges(std::string_view user_id, std::int64_t period_start) {
    return read([&](SqlSession& session) { return ledger_tables::read_period_charges(session, user_id, period_start); });
}

std::vector<JournalRow> SqliteStore::read_journal(std::string_view user_id, std::int64_t from_seq, int limit) {
    return read([&](SqlSession& session) { return ledger_tables::read_journal(session, user_id, from_seq, limit); });
}

template <typename Write>
auto SqliteStore::write(Write&& write_with) {
    std::lock_guard<std::mutex> guard(writer_mutex_);
    writer_->exec("BEGIN IMMEDIATE");
    try {
        SqliteSession session(*writer_);
        auto result = write_with(session);
        writer_->exec("COMMIT");
        return result;
    } catch (...) {
        try {
            writer_->exec("ROLLBACK");
        } catch (const StorageError&) {
            // Already rolled back by SQLite (an I/O error).
        }
        throw;
    }
}

std::vector<OutboxRow> SqliteStore::take_due_alerts(std::int64_t now, std::int64_t lease_until, int max) {
    // A reader looks first, so an idle outbox never takes the write lock
    // from the ledger's batches.
    if (!read([&](SqlSession& session) { return outbox_tables::any_due(session, now); })) return {};
    return write([&](SqlSession& session) { return outbox_tables::take_due(session, now, lease_until, max); });
}

void SqliteStore::mark_alert_delivered(std::int64_t row_id, std::int64_t at) {
    write([&](SqlSession& session) {
        outbox_tables::mark_delivered(session, row_id, at);
        return true;
    });
}

void SqliteStore::mark_alert_failed(std::int64_t row_id, std::optional<std::int64_t> next_attempt_at,
                                    std::string_view error) {
    write([&](SqlSession& session) {
        outbox_tables::mark_failed(session, row_id, next_attempt_at, error);
        return true;
    });
}

std::vector<OutboxRow> SqliteStore::list_alerts(int limit) {
    return read([&](SqlSession& session) { return outbox_tables::list(session, limit); });
}

int SqliteStore::replay_alert(std::string_view alert_id, std::int64_t now, std::int64_t retry_until) {
    return write([&](SqlSession& session) { return outbox_tables::replay(session, alert_id, now, retry_until); });
}

SqliteStore::Durability SqliteStore::writer_durability() {
    std::lock_guard<std::mutex> guard(writer_mutex_);
    Durability durability;
    auto mode = writer_->prepare("PRAGMA journal_mode");
    if (mode->step()) durability.journal_mode = mode->text(0);
    auto synchronous = writer_->prepare("PRAGMA synchronous");
    if (synchronous->step()) durability.synchronous = static_cast<int>(synchronous->int64(0));
    return durability;
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
