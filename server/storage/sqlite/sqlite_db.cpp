#include "storage/sqlite/sqlite_db.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace tokenmeter::storage::sqlite {

namespace {

// SQLite creates a new database file 0644 (less the umask), and its -wal and
// -shm files copy the database file's mode. The ledger holds every user's
// usage and the idempotency records of the service calls, which no other
// local account should read, so the file is made here first, 0600, and
// SQLite then opens it (an empty file is a new database) and gives the
// -wal and -shm the same mode. An existing file keeps the mode it has: an
// operator may have chosen one on purpose.
void create_private_file(const std::string& path) {
    if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0) return;
    // O_EXCL: an existing file is not touched. Any other failure (a missing
    // directory, no permission) is left to sqlite3_open_v2, whose error
    // names the path.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
}

}  // namespace

void Statement::fail(std::string_view what) const {
    const int code = sqlite3_extended_errcode(db_);
    // A row another writer (or an older copy of the ledger's state) made
    // first: running the batch again from fresh rows resolves it.
    if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY) {
        throw StorageConflict("sqlite: " + std::string(what) + ": " + sqlite3_errmsg(db_));
    }
    throw StorageError("sqlite: " + std::string(what) + ": " + sqlite3_errmsg(db_));
}

bool Statement::is_null(int column) const { return sqlite3_column_type(statement_, column) == SQLITE_NULL; }

Statement& Statement::bind(int index, std::int64_t value) {
    if (sqlite3_bind_int64(statement_, index, value) != SQLITE_OK) fail("bind");
    return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
    if (sqlite3_bind_text(statement_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT) != SQLITE_OK) {
        fail("bind");
    }
    return *this;
}

Statement& Statement::bind_null(int index) {
    if (sqlite3_bind_null(statement_, index) != SQLITE_OK) fail("bind");
    return *this;
}

Statement& Statement::bind(int index, const std::optional<std::int64_t>& value) {
    return value ? bind(index, *value) : bind_null(index);
}

bool Statement::step() {
    const int rc = sqlite3_step(statement_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail("step");
}

void Statement::run() {
    while (step()) {
    }
}

std::int64_t Statement::int64(int column) const { return sqlite3_column_int64(statement_, column); }

std::optional<std::int64_t> Statement::optional_int64(int column) const {
    if (sqlite3_column_type(statement_, column) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_int64(statement_, column);
}

std::string Statement::text(int column) const {
    const auto* bytes = sqlite3_column_text(statement_, column);
    const int size = sqlite3_column_bytes(statement_, column);
    if (bytes == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(size));
}

void Statement::reset() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
}

Connection::Connection(const std::string& path, bool create, int busy_timeout_ms) {
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    if (create) create_private_file(path);
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
        const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        throw StorageError("sqlite: cannot open " + path + ": " + message);
    }
    sqlite3_busy_timeout(db_, busy_timeout_ms);
    sqlite3_extended_result_codes(db_, 1);
    // WAL lets readers run beside the single writer; FULL syncs the WAL on
    // every commit, so an acknowledged change survives a crash or power cut.
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
    // Reads through a memory map instead of a read() per page, and a page
    // cache that holds the hot part of a ledger (the default is 2 MB); the
    // per-job savepoints journal in memory instead of in a temporary file.
    // A batch of random users dirties pages all over the file, so the WAL is
    // copied back every 16 MB rather than every 4 MB: fewer, larger
    // checkpoints copy a page changed by several batches once.
    exec("PRAGMA mmap_size=1073741824; PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=4000;");
}

Connection::~Connection() {
    statements_.clear();
    numbered_.clear();
    // Finalize what the map held before closing (close_v2 tolerates leftovers).
    sqlite3_stmt* statement = nullptr;
    while ((statement = sqlite3_next_stmt(db_, nullptr)) != nullptr) sqlite3_finalize(statement);
    sqlite3_close_v2(db_);
}

void Connection::exec(std::string_view sql) {
    char* error = nullptr;
    const std::string text(sql);
    if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
        const std::string message = error != nullptr ? error : sqlite3_errmsg(db_);
        sqlite3_free(error);
        throw StorageError("sqlite: " + message);
    }
}

StatementScope Connection::prepare(const char* sql) {
    auto found = statements_.find(sql);
    if (found == statements_.end()) {
        sqlite3_stmt* statement = nullptr;
        if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &statement, nullptr) != SQLITE_OK) {
            throw StorageError(std::string("sqlite: prepare: ") + sqlite3_errmsg(db_));
        }
        found = statements_.emplace(sql, std::make_unique<Statement>(db_, statement)).first;
    }
    return StatementScope(*found->second);
}

StatementScope Connection::prepare_numbered(std::string_view sql) {
    auto found = numbered_.find(std::string(sql));
    if (found == numbered_.end()) {
        std::string text(sql);
        for (std::size_t i = 0; i + 1 < text.size(); ++i) {
            if (text[i] == '$' && text[i + 1] >= '0' && text[i + 1] <= '9') text[i] = '?';
        }
        sqlite3_stmt* statement = nullptr;
        if (sqlite3_prepare_v3(db_, text.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &statement, nullptr) != SQLITE_OK) {
            throw StorageError(std::string("sqlite: prepare: ") + sqlite3_errmsg(db_));
        }
        found = numbered_.emplace(std::string(sql), std::make_unique<Statement>(db_, statement)).first;
    }
    return StatementScope(*found->second);
}

}  // namespace tokenmeter::storage::sqlite
