#include "storage/postgres/pg_connection.hpp"

#include <poll.h>

#include <cerrno>

#include <charconv>
#include <cstring>

namespace tokenmeter::storage::postgres {

namespace {

// SQLSTATEs after which the rolled-back transaction can simply run again:
// serialization_failure, deadlock_detected, and unique_violation (two server
// processes inserting the same new account or idempotency key: the rerun
// finds the row the other one committed).
bool is_conflict(std::string_view sqlstate) {
    return sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "23505";
}

// libpq's messages span lines ("...\n\tThis probably means..."): one line
// per log entry.
std::string one_line(const char* message) {
    std::string text;
    for (const char* c = message == nullptr ? "" : message; *c != '\0'; ++c) {
        const bool space = *c == '\n' || *c == '\t';
        if (space && (text.empty() || text.back() == ' ')) continue;
        text += space ? ' ' : *c;
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text;
}

}  // namespace

Params& Params::add(std::string_view value) {
    values_.emplace_back(std::string(value));
    return *this;
}

Params& Params::add(std::int64_t value) {
    values_.emplace_back(std::to_string(value));
    return *this;
}

Params& Params::add(const std::optional<std::int64_t>& value) {
    if (value) return add(*value);
    return add_null();
}

Params& Params::add_null() {
    values_.emplace_back(std::nullopt);
    return *this;
}

Params& Params::add_or_null(std::string_view value) {
    if (value.empty()) return add_null();
    return add(value);
}

std::vector<const char*> Params::pointers() const {
    std::vector<const char*> pointers;
    pointers.reserve(values_.size());
    for (const auto& value : values_) pointers.push_back(value ? value->c_str() : nullptr);
    return pointers;
}

std::string Rows::text(int row, int column) const {
    return std::string(PQgetvalue(result_.get(), row, column),
                       static_cast<std::size_t>(PQgetlength(result_.get(), row, column)));
}

std::int64_t Rows::int64(int row, int column) const {
    const char* value = PQgetvalue(result_.get(), row, column);
    const char* end = value + PQgetlength(result_.get(), row, column);
    std::int64_t parsed = 0;
    auto [stop, error] = std::from_chars(value, end, parsed);
    if (error != std::errc() || stop != end) {
        throw StorageError("column " + std::to_string(column) + " is not an integer: \"" + std::string(value, end) + "\"");
    }
    return parsed;
}

std::optional<std::int64_t> Rows::optional_int64(int row, int column) const {
    if (is_null(row, column)) return std::nullopt;
    return int64(row, column);
}

std::int64_t Rows::affected() const {
    const char* tuples = PQcmdTuples(result_.get());
    if (tuples == nullptr || *tuples == '\0') return 0;
    return std::strtoll(tuples, nullptr, 10);
}

Connection::Connection(const std::string& url) {
    // connect_timeout bounds a connect to an unreachable host (a refused one
    // fails at once); application_name shows who holds locks in pg_stat_activity.
    const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
    const char* values[] = {url.c_str(), "5", "tokenmeter", nullptr};
    connection_ = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
    if (connection_ == nullptr) throw StorageError("PostgreSQL: out of memory");
    if (PQstatus(connection_) != CONNECTION_OK) {
        std::string message = "cannot connect to PostgreSQL: " + one_line(PQerrorMessage(connection_));
        PQfinish(connection_);
        connection_ = nullptr;
        throw StorageError(message);
    }
    // Durability must not depend on the server's or the role's defaults: an
    // acknowledged charge has been flushed to the WAL on disk. lock_timeout
    // turns a lock held elsewhere for too long into 503, as SQLite's busy
    // timeout does, instead of hanging every request behind it.
    // client_min_messages keeps notices ("relation already exists, skipping")
    // off stderr.
    exec("SET synchronous_commit = on; SET lock_timeout = '5s'; SET TIME ZONE 'UTC'; "
         "SET client_min_messages = warning");
}

Connection::~Connection() {
    if (connection_ != nullptr) PQfinish(connection_);
}

Rows Connection::checked(PGresult* result, std::string_view what) {
    const ExecStatusType status = result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return Rows(result);
    const char* state = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
    const std::string sqlstate = state == nullptr ? "" : state;
    std::string message = one_line(result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(connection_));
    if (message.empty()) message = one_line(PQerrorMessage(connection_));
    if (result != nullptr) PQclear(result);
    message = "PostgreSQL" + (sqlstate.empty() ? std::string() : " " + sqlstate) + ": " + message + " (in " +
              std::string(what.substr(0, 60)) + ")";
    if (is_conflict(sqlstate)) throw StorageConflict(message);
    throw StorageError(message);
}

Rows Connection::run(const std::string& sql, const Params& params) {
    if (pipelined_) {
        send(sql, params, -1);
        return sync_and_collect();
    }
    auto found = prepared_.find(sql);
    if (found == prepared_.end()) {
        std::string name = "tm" + std::to_string(prepared_.size() + 1);
        checked(PQprepare(connection_, name.c_str(), sql.c_str(), 0, nullptr), sql);
        found = prepared_.emplace(sql, std::move(name)).first;
    }
    const auto values = params.pointers();
    return checked(PQexecPrepared(connection_, found->second.c_str(), params.size(), values.data(), nullptr, nullptr, 0),
                   sql);
}

Rows Connection::exec(const std::string& sql) {
    if (pipelined_) throw StorageError("a multi-statement command inside a pipeline: " + sql);
    return checked(PQexec(connection_, sql.c_str()), sql);
}

void Connection::enter_pipeline() {
    if (PQenterPipelineMode(connection_) != 1) {
        throw StorageError("PostgreSQL: cannot enter pipeline mode: " + one_line(PQerrorMessage(connection_)));
    }
    pipelined_ = true;
}

std::vector<std::string> Connection::wait_for_notifications(int wait_ms) {
    pollfd ready{PQsocket(connection_), POLLIN, 0};
    if (ready.fd < 0) throw StorageError("PostgreSQL: the listening connection is gone");
    if (::poll(&ready, 1, wait_ms) < 0 && errno != EINTR) throw StorageError("PostgreSQL: poll failed");
    if (PQconsumeInput(connection_) != 1) {
        unusable_ = true;
        throw StorageError("PostgreSQL: " + one_line(PQerrorMessage(connection_)));
    }
    std::vector<std::string> payloads;
    while (PGnotify* notification = PQnotifies(connection_)) {
        payloads.emplace_back(notification->extra);
        PQfreemem(notification);
    }
    return payloads;
}

void Connection::leave_pipeline() {
    if (!pipelined_) return;
    pipelined_ = false;
    if (!deferred_.empty() || PQexitPipelineMode(connection_) != 1) unusable_ = true;
}

void Connection::defer(const std::string& sql, const Params& params, std::int64_t affected_expected) {
    if (!pipelined_) {
        const Rows rows = run(sql, params);
        if (affected_expected >= 0 && rows.affected() != affected_expected) {
            throw StorageConflict("expected " + std::to_string(affected_expected) + " row(s) changed by " + sql.substr(0, 60));
        }
        return;
    }
    send(sql, params, affected_expected);
}

const std::string& Connection::prepared_name(const std::string& sql) {
    auto found = prepared_.find(sql);
    if (found != prepared_.end()) return found->second;
    std::string name = "tm" + std::to_string(prepared_.size() + 1);
    if (PQsendPrepare(connection_, name.c_str(), sql.c_str(), 0, nullptr) != 1) {
        unusable_ = true;
        throw StorageError("PostgreSQL: " + one_line(PQerrorMessage(connection_)));
    }
    deferred_.push_back(Deferred{sql.substr(0, 60), sql, -1});
    return prepared_.emplace(sql, std::move(name)).first->second;
}

void Connection::send(const std::string& sql, const Params& params, std::int64_t affected_expected) {
    const std::string& name = prepared_name(sql);
    const auto values = params.pointers();
    if (PQsendQueryPrepared(connection_, name.c_str(), params.size(), values.data(), nullptr, nullptr, 0) != 1) {
        unusable_ = true;
        throw StorageError("PostgreSQL: " + one_line(PQerrorMessage(connection_)));
    }
    deferred_.push_back(Deferred{sql.substr(0, 60), "", affected_expected});
}

// Sends a Sync and reads the result of every statement sent since the last
// one, in order; returns the last one's rows. After an error the server
// skips the rest up to the Sync (PGRES_PIPELINE_ABORTED); the first error is
// what is thrown, once everything is read and the connection is in step.
Rows Connection::sync_and_collect() {
    if (PQpipelineSync(connection_) != 1) {
        unusable_ = true;
        throw StorageError("PostgreSQL: " + one_line(PQerrorMessage(connection_)));
    }
    std::string failure;
    std::string failure_state;
    PGresult* last = nullptr;
    const std::size_t count = deferred_.size();
    for (std::size_t i = 0; i < count && !unusable_; ++i) {
        const Deferred& entry = deferred_[i];
        PGresult* result = PQgetResult(connection_);
        if (result == nullptr) {
            unusable_ = true;
            if (failure.empty()) failure = one_line(PQerrorMessage(connection_)) + " (in " + entry.what + ")";
            break;
        }
        const ExecStatusType status = PQresultStatus(result);
        const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
        if (!ok) {
            // A statement whose preparation failed does not exist here.
            if (!entry.prepared_sql.empty()) prepared_.erase(entry.prepared_sql);
            if (status != PGRES_PIPELINE_ABORTED && failure.empty()) {
                const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
                failure_state = state == nullptr ? "" : state;
                failure = one_line(PQresultErrorMessage(result)) + " (in " + entry.what + ")";
            }
        } else if (entry.affected_expected >= 0 && failure.empty()) {
            const char* tuples = PQcmdTuples(result);
            const std::int64_t affected = tuples == nullptr || *tuples == '\0' ? 0 : std::strtoll(tuples, nullptr, 10);
            if (affected != entry.affected_expected) {
                // A guarded write found the row changed by someone else: a conflict.
                failure_state = "40001";
                failure = "expected " + std::to_string(entry.affected_expected) + " row(s) changed, not " +
                          std::to_string(affected) + " (in " + entry.what + ")";
            }
        }
        if (i + 1 == count && ok) {
            last = result;
        } else {
            PQclear(result);
        }
        PGresult* end = PQgetResult(connection_);  // each statement's results end with NULL
        if (end != nullptr) {
            PQclear(end);
            unusable_ = true;
        }
    }
    deferred_.clear();
    if (!unusable_) {
        PGresult* sync = PQgetResult(connection_);
        if (sync == nullptr || PQresultStatus(sync) != PGRES_PIPELINE_SYNC) unusable_ = true;
        if (sync != nullptr) PQclear(sync);
    }
    if (failure.empty() && (unusable_ || last == nullptr)) failure = "lost track of the pipeline";
    if (!failure.empty()) {
        if (last != nullptr) PQclear(last);
        const std::string message =
            "PostgreSQL" + (failure_state.empty() ? std::string() : " " + failure_state) + ": " + failure;
        if (is_conflict(failure_state)) throw StorageConflict(message);
        throw StorageError(message);
    }
    return Rows(last);
}

}  // namespace tokenmeter::storage::postgres
