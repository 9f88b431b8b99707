#include "storage/postgres/pg_store.hpp"

#include "storage/ledger_tables.hpp"
#include "storage/sql_session.hpp"

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

// The ledger's tables (ledger_tables.hpp) on a PostgreSQL connection.
class PgSession final : public SqlSession {
public:
    explicit PgSession(Connection& connection) : connection_(connection) {}

    SqlDialect dialect() const override { return SqlDialect::postgres; }

    void execute(std::string_view sql, std::initializer_list<SqlValue> params, std::int64_t expected_changes) override {
        // In a batch the connection pipelines: the result is checked at the
        // next query or at COMMIT, and the batch fails as a whole either way.
        connection_.defer(std::string(sql), params_of(params), expected_changes);
    }

    void query(std::string_view sql, std::initializer_list<SqlValue> params,
               const std::function<void(const SqlRow&)>& each) override {
        const Rows rows = connection_.run(std::string(sql), params_of(params));
        for (int i = 0; i < rows.size(); ++i) each(Row(rows, i));
    }

private:
    class Row final : public SqlRow {
    public:
        Row(const Rows& rows, int index) : rows_(rows), index_(index) {}
        bool is_null(int column) const override { return rows_.is_null(index_, column); }
        std::string text(int column) const override { return rows_.text(index_, column); }
        std::int64_t int64(int column) const override { return rows_.int64(index_, column); }

    private:
        const Rows& rows_;
        int index_;
    };

    static Params params_of(std::initializer_list<SqlValue> values) {
        Params params;
        for (const SqlValue& value : values) {
            if (std::holds_alternative<std::int64_t>(value)) {
                params.add(std::get<std::int64_t>(value));
            } else if (std::holds_alternative<std::string_view>(value)) {
                params.add(std::get<std::string_view>(value));
            } else {
                params.add_null();
            }
        }
        return params;
    }

    Connection& connection_;
};

// The payload of one NOTIFY stays well under PostgreSQL's 8000 bytes.
constexpr std::size_t notify_payload_bytes_max = 7000;

class PgBatch final : public LedgerBatch {
public:
    explicit PgBatch(Lease lease) : lease_(std::move(lease)), session_(*lease_), billing_(*lease_) {
        lease_->enter_pipeline();
    }

    ~PgBatch() override {
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

    // Delivered to every listening process when the transaction commits,
    // and never when it rolls back.
    void notify(const std::vector<std::string>& user_ids) override {
        std::string payload;
        for (const std::string& user_id : user_ids) {
            if (!payload.empty() && payload.size() + user_id.size() + 1 > notify_payload_bytes_max) {
                send_notify(payload);
                payload.clear();
            }
            if (!payload.empty()) payload += ',';
            payload += user_id;
        }
        if (!payload.empty()) send_notify(payload);
    }

    BillingTransaction* billing() override { return &billing_; }

    void commit() override {
        const Rows done = lease_->run("COMMIT");  // also reads every deferred result first
        finished_ = true;
        // COMMIT of a transaction that failed answers ROLLBACK, not an error.
        if (done.command() != "COMMIT") throw StorageError("PostgreSQL rolled the transaction back");
    }

private:
    void send_notify(const std::string& payload) {
        lease_->defer("SELECT pg_notify('" + std::string(change_channel) + "', $1)", Params().add(payload));
    }

    Lease lease_;
    PgSession session_;
    PgBillingTransaction billing_;
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

PgStore::~PgStore() { stop_watching(); }

void PgStore::stop_watching() {
    stopping_ = true;
    if (listener_.joinable()) listener_.join();
}

void PgStore::watch_changes(ChangedUsers changed) {
    if (listener_.joinable()) return;
    listener_ = std::thread([this, changed = std::move(changed)] { listen(changed); });
}

// One connection of its own, LISTENing; reconnects after a failure (a
// database restart). A notification lost while disconnected only delays a
// live stream's update until the user's next change or reconnect.
void PgStore::listen(ChangedUsers changed) {
    while (!stopping_) {
        try {
            Connection connection(options_.url);
            connection.exec("LISTEN " + std::string(change_channel));
            while (!stopping_) {
                for (const std::string& payload : connection.wait_for_notifications(200)) {
                    std::vector<std::string> users;
                    std::size_t start = 0;
                    while (start <= payload.size()) {
                        const std::size_t comma = std::min(payload.find(',', start), payload.size());
                        if (comma > start) users.push_back(payload.substr(start, comma - start));
                        start = comma + 1;
                    }
                    if (!users.empty()) changed(users);
                }
            }
        } catch (const std::exception&) {
            for (int waited = 0; waited < 10 && !stopping_; ++waited) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
}

std::vector<int> PgStore::migrate(const std::string& url) {
    Connection connection(url);
    return apply_migrations(connection);
}

std::unique_ptr<LedgerBatch> PgStore::begin() {
    // An idle connection may have been cut by a database restart; BEGIN finds
    // out before anything is done, so one fresh attempt is safe.
    for (int attempt = 0;; ++attempt) {
        Lease lease = pool_.acquire();
        try {
            lease->exec("BEGIN ISOLATION LEVEL READ COMMITTED");
            return std::make_unique<PgBatch>(std::move(lease));
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

std::optional<StoredAccount> PgStore::read_account(std::string_view user_id) {
    return read([&](Connection& connection) {
        PgSession session(connection);
        return ledger_tables::read_account(session, user_id);
    });
}

std::optional<AccountView> PgStore::read_view(std::string_view user_id) {
    return read([&](Connection& connection) {
        PgSession session(connection);
        return ledger_tables::read_view(session, user_id);
    });
}

std::vector<JournalRow> PgStore::read_reservation_rows(std::string_view reservation_id) {
    return read([&](Connection& connection) {
        PgSession session(connection);
        return ledger_tables::read_reservation_rows(session, reservation_id);
    });
}

std::optional<StoredAnswer> PgStore::read_answer(std::string_view caller, std::string_view key) {
    return read([&](Connection& connection) {
        PgSession session(connection);
        return ledger_tables::read_answer(session, caller, key);
    });
}

std::vector<UsageEvent> PgStore::read_events(std::string_view user_id, std::int64_t before_id, int limit) {
    return read([&](Connection& connection) {
        PgSession session(connection);
        return ledger_tables::read_events(session, user_id, before_id, limit);
    });
}

std::vector<UsageTotal> PgStore::read_summary(std::string_view user_id, std::int64_t period_start,
                                              SummaryGrouping grouping) {
    return read([&](Connection& connection) {
        PgSession session(connection);
        return ledger_tables::read_summary(session, user_id, period_start, grouping);
    });
}

std::vector<UsageEvent> PgStore::read_period_charges(std::string_view user_id, std::int64_t period_start) {
    return read([&](Connection& connection) {
        PgSession session(connection);
        return ledger_tables::read_period_charges(session, user_id, period_start);
    });
}

std::vector<JournalRow> PgStore::read_journal(std::string_view user_id, std::int64_t from_seq, int limit) {
    return read([&](Connection& connection) {
        PgSession session(connection);
        return ledger_tables::read_journal(session, user_id, from_seq, limit);
    });
}

// Each outbox call is one statement in autocommit: its own short
// transaction. Run again on a fresh connection after a cut one (read()),
// each is harmless to repeat: a lease taken twice only delays a delivery,
// the marks and a replay set the same values again.
std::vector<OutboxRow> PgStore::take_due_alerts(std::int64_t now, std::int64_t lease_until, int max) {
    return read([&](Connection& connection) {
        PgSession session(connection);
        return outbox_tables::take_due(session, now, lease_until, max);
    });
}

void PgStore::mark_alert_delivered(std::int64_t row_id, std::int64_t at) {
    read([&](Connection& connection) {
        PgSession session(connection);
        outbox_tables::mark_delivered(session, row_id, at);
        return true;
    });
}

void PgStore::mark_alert_failed(std::int64_t row_id, std::optional<std::int64_t> next_attempt_at,
                                std::string_view error) {
    read([&](Connection& connection) {
        PgSession session(connection);
        outbox_tables::mark_failed(session, row_id, next_attempt_at, error);
        return true;
    });
}

std::vector<OutboxRow> PgStore::list_alerts(int limit) {
    return read([&](Connection& connection) {
        PgSession session(connection);
        return outbox_tables::list(session, limit);
    });
}

int PgStore::replay_alert(std::string_view alert_id, std::int64_t now, std::int64_t retry_until) {
    return read([&](Connection& connection) {
        PgSession session(connection);
        return outbox_tables::replay(session, alert_id, now, retry_until);
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
