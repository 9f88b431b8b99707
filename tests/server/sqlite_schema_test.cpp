// The SQLite file itself: a database written by an older release upgrades in
// place and keeps what it held, the writer commits durably in WAL mode, and
// the ids the ledger mints sort by time.
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>
#include <string>

#include "app.hpp"
#include "ledger/ids.hpp"
#include "storage/sqlite/migrations.hpp"
#include "storage/sqlite/sqlite_store.hpp"

namespace tokenmeter {
namespace {

namespace fs = std::filesystem;

std::string fresh_path(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / ("tm-schema-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path path = dir / name;
    fs::remove(path);
    fs::remove(path.string() + "-wal");
    fs::remove(path.string() + "-shm");
    return path.string();
}

void exec(sqlite3* db, const std::string& sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    const std::string message = error ? error : "";
    sqlite3_free(error);
    ASSERT_EQ(rc, SQLITE_OK) << message << "\n" << sql;
}

// A database as a release with only the first `version` migrations left it.
void write_database_at_version(const std::string& path, int version) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    exec(db, "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
             "applied_at INTEGER NOT NULL)");
    for (const auto& migration : storage::sqlite::migrations()) {
        if (migration.version > version) break;
        exec(db, migration.sql);
        exec(db, "INSERT INTO schema_migrations VALUES (" + std::to_string(migration.version) + ", 'old', 0)");
    }
    sqlite3_close(db);
}

TEST(SqliteSchema, UpgradeFromVersionTwoKeepsIdempotencyRecords) {
    const std::string path = fresh_path("v2.db");
    write_database_at_version(path, 2);
    {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
        const std::string big(1500, 'r');  // bigger than a WITHOUT ROWID row may be inline
        exec(db, "INSERT INTO idempotency_keys VALUES ('svc', 'old-key', 'hash-1', 201, '" + big + "', 100)");
        exec(db, "INSERT INTO idempotency_keys VALUES ('svc', 'new-key', 'hash-2', 402, '{\"e\":1}', 5000)");
        sqlite3_close(db);
    }
    storage::sqlite::SqliteStore store({path});
    EXPECT_EQ(store.schema_version(), storage::sqlite::migrations().back().version);

    auto old_record = store.read_answer("svc", "old-key");
    ASSERT_TRUE(old_record.has_value());
    EXPECT_EQ(old_record->request_hash, "hash-1");
    EXPECT_EQ(old_record->status, 201);
    EXPECT_EQ(old_record->response, std::string(1500, 'r'));
    EXPECT_FALSE(old_record->change.has_value());
    ASSERT_TRUE(store.read_answer("svc", "new-key").has_value());
    EXPECT_FALSE(store.read_answer("other-caller", "old-key").has_value());

    // A key stays unique per caller after the rebuild.
    {
        auto transaction = store.begin();
        EXPECT_THROW(transaction->insert_answer({"svc", "old-key", "hash-3", 200, "{}", 6000}), storage::StorageError);
    }
    auto transaction = store.begin();
    transaction->insert_answer({"other-caller", "old-key", "hash-3", 200, "{}", 6000});
    // Pruning takes the oldest first and only what is older than asked.
    EXPECT_EQ(transaction->prune_answers(1000, 10), 1);
    transaction->commit();
    EXPECT_FALSE(store.read_answer("svc", "old-key").has_value());
    EXPECT_TRUE(store.read_answer("svc", "new-key").has_value());
    EXPECT_TRUE(store.read_answer("other-caller", "old-key").has_value());

    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* check = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &check, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(check), SQLITE_ROW);
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(check, 0)), "ok");
    sqlite3_finalize(check);
    sqlite3_close(db);
}

TEST(SqliteSchema, UpgradeFromVersionThreeKeepsChargesAsOnTime) {
    const std::string path = fresh_path("v3.db");
    write_database_at_version(path, 3);
    {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
        exec(db, "INSERT INTO token_usage (event_id, user_id, period_start, operation, model, input_tokens, "
                 "output_tokens, raw_tokens, multiplier, charged_tokens, avatars, catalog_version, created_at) "
                 "VALUES ('evt_old', 'ulla', 100, 'chat', 'gpt-4o', 10, 5, 15, '3', 45, 0, 'v', 200)");
        sqlite3_close(db);
    }
    storage::sqlite::SqliteStore store({path});
    EXPECT_EQ(store.schema_version(), storage::sqlite::migrations().back().version);
    auto transaction = store.begin();
    storage::UsageEvent late;
    late.event_id = "evt_late";
    late.user_id = "ulla";
    late.period_start = 100;
    late.model = "gpt-4o";
    late.catalog_version = "v";
    late.created_at = 300;
    late.late = true;
    transaction->insert_charge(late);
    transaction->commit();

    const auto events = store.read_events("ulla", 0, 10);  // newest first
    ASSERT_EQ(events.size(), 2U);
    EXPECT_EQ(events[0].event_id, "evt_late");
    EXPECT_TRUE(events[0].late);
    EXPECT_EQ(events[1].event_id, "evt_old");
    EXPECT_FALSE(events[1].late) << "a charge from before the upgrade was on time";
    EXPECT_EQ(events[1].charged_tokens, 45);
}

TEST(SqliteSchema, OpeningTwiceAppliesNothingAgain) {
    const std::string path = fresh_path("twice.db");
    EXPECT_EQ(storage::sqlite::SqliteStore::migrate(path).size(), storage::sqlite::migrations().size());
    EXPECT_TRUE(storage::sqlite::SqliteStore::migrate(path).empty());
}

// The permission bits of a file, or -1 when it does not exist.
int mode_of(const std::string& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) return -1;
    return static_cast<int>(info.st_mode & 07777);
}

TEST(SqliteSchema, TheDatabaseAndItsWalAndShmAreReadableByTheOwnerOnly) {
    const std::string path = fresh_path("private.db");
    // The usual umask, which leaves SQLite's own default (0644) group- and
    // world-readable; a umask of 077 would hide a missing fix.
    const mode_t previous = ::umask(022);
    {
        // Opening applies the migrations, which write through the WAL, so
        // the -wal and -shm exist while the store is open.
        storage::sqlite::SqliteStore store({path});
        for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
            EXPECT_EQ(mode_of(file), 0600) << file;
        }
    }
    ::umask(previous);
    // An existing file keeps the mode its operator gave it.
    const std::string shared = fresh_path("shared.db");
    ASSERT_EQ(storage::sqlite::SqliteStore::migrate(shared).size(), storage::sqlite::migrations().size());
    ASSERT_EQ(::chmod(shared.c_str(), 0640), 0);
    EXPECT_TRUE(storage::sqlite::SqliteStore::migrate(shared).empty());
    EXPECT_EQ(mode_of(shared), 0640);
}

// DESIGN.md §8: WAL, and durable commits. synchronous=FULL syncs the WAL at
// every commit; NORMAL (SQLite's usual choice with WAL) may lose the last
// commits at a power cut, acknowledged charges among them. A pragma SQLite
// does not take fails silently, so the writer connection's values are read
// back: on a new file, on the same file opened again, and in the store the
// server itself opens (open_store, what `--db sqlite:PATH` runs).
TEST(SqliteSchema, TheWriterCommitsDurablyInWalMode) {
    const std::string path = fresh_path("durable.db");
    {
        storage::sqlite::SqliteStore created({path});
        const auto durability = created.writer_durability();
        EXPECT_EQ(durability.journal_mode, "wal");
        EXPECT_EQ(durability.synchronous, 2) << "synchronous is not FULL";
    }
    {
        storage::sqlite::SqliteStore reopened({path});
        const auto durability = reopened.writer_durability();
        EXPECT_EQ(durability.journal_mode, "wal");
        EXPECT_EQ(durability.synchronous, 2) << "synchronous is not FULL";
    }
    auto opened = open_store("sqlite:" + path);
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    auto* store = dynamic_cast<storage::sqlite::SqliteStore*>(opened->get());
    ASSERT_NE(store, nullptr);
    const auto durability = store->writer_durability();
    EXPECT_EQ(durability.journal_mode, "wal");
    EXPECT_EQ(durability.synchronous, 2) << "synchronous is not FULL";
    // WAL is a property of the file too: another connection sees it.
    sqlite3* other = nullptr;
    ASSERT_EQ(sqlite3_open_v2(path.c_str(), &other, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* mode = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(other, "PRAGMA journal_mode", -1, &mode, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(mode), SQLITE_ROW);
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(mode, 0)), "wal");
    sqlite3_finalize(mode);
    sqlite3_close(other);
}

TEST(Ids, TimeOrderedIdsSortByTimeAndNeverRepeat) {
    const std::int64_t start = 1'764'500'000'000;  // 2025-11-30, in milliseconds
    std::vector<std::string> ids;
    std::set<std::string> distinct;
    for (std::int64_t step = 0; step < 2000; ++step) {
        // Many ids in one millisecond too: the random part keeps them apart.
        const std::string id = ledger::time_ordered_id("rsv_", start + step / 10);
        ids.push_back(id);
        distinct.insert(id);
        EXPECT_EQ(id.rfind("rsv_", 0), 0U);
        EXPECT_LE(id.size(), 64U);  // what the API accepts as a reservation id
        EXPECT_TRUE(std::all_of(id.begin() + 4, id.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
        })) << id;
    }
    EXPECT_EQ(distinct.size(), ids.size());
    for (std::size_t i = 10; i < ids.size(); i += 10) {
        EXPECT_LT(ids[i - 10], ids[i]) << "a later millisecond must sort later";
    }
    EXPECT_EQ(ledger::time_ordered_id("evt_", start).substr(4, 12), "019ad4654d00");
    EXPECT_LT(ledger::new_id("evt_").substr(4, 12), ledger::time_ordered_id("evt_", 1LL << 47).substr(4, 12));
}

}  // namespace
}  // namespace tokenmeter
