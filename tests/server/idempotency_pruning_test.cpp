// Stored answers are pruned as fast as they are made (DESIGN.md §5: keys are
// kept at least 24 hours, and then must not pile up). A change keeps its key
// in its journal row for good; what is pruned is the table of answers that
// are not changes (refusals). A fixed quota of 1,000 records a minute let it
// grow without bound once writes passed about 17 a second; these tests write
// faster than that, move the ManualClock past the retention, and count what
// is left in the database, on SQLite and on PostgreSQL.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "ledger/writer.hpp"
#include "storage/journal_codec.hpp"
#include "test_server.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::TestServer;

// One integer a query answers, read from the server's database directly.
std::int64_t query_integer(const TestServer& server, const std::string& sql) {
    const std::string& db = server.db();
    if (db.rfind("sqlite:", 0) != 0) return std::stoll(test::query_rows(db, sql).at(0).at(0));
    sqlite3* handle = nullptr;
    std::int64_t value = -1;
    if (sqlite3_open_v2(db.substr(7).c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_stmt* statement = nullptr;
        if (sqlite3_prepare_v2(handle, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK &&
            sqlite3_step(statement) == SQLITE_ROW) {
            value = sqlite3_column_int64(statement, 0);
        }
        sqlite3_finalize(statement);
    }
    sqlite3_close(handle);
    if (value < 0) throw std::runtime_error("query failed: " + sql);
    return value;
}

std::int64_t records_created_before(const TestServer& server, std::int64_t instant) {
    return query_integer(server, "SELECT COUNT(*) FROM idempotency_keys WHERE created_at < " + std::to_string(instant));
}

std::int64_t records_with_prefix(const TestServer& server, const std::string& prefix) {
    return query_integer(server, "SELECT COUNT(*) FROM idempotency_keys WHERE key LIKE '" + prefix + "%'");
}

const json small_charge = {{"user_id", "pia"}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                           {"input_tokens", 1}, {"output_tokens", 0}};

httplib::Result charge_with_key(TestServer& server, const std::string& key) {
    return server.client().Post("/v1/usage/record", server.as_service(key), small_charge.dump(), "application/json");
}

// A refusal (404: no such reservation) stored for its key.
httplib::Result refusal_with_key(TestServer& server, const std::string& key) {
    const json commit = {{"reservation_id", "rsv_" + key}, {"input_tokens", 1}, {"output_tokens", 0}};
    return server.client().Post("/v1/usage/commit", server.as_service(key), commit.dump(), "application/json");
}

// The server's own retention (App runs the writer with WriterOptions{}).
TEST(IdempotencyPruning, RecordsPastTheRetentionGoWhileYoungerOnesStayAndReplay) {
    const std::int64_t retention = ledger::WriterOptions{}.answer_retention_seconds;
    ASSERT_GE(retention, 24 * 3600) << "DESIGN.md §5 keeps keys at least 24 hours";
    TestServer server;
    const std::int64_t t0 = server.clock().now_seconds();

    // A burst of 3,000 records in one second, three times the old quota of a
    // minute, stored as a batch of the writer would store them.
    {
        auto transaction = server.app().store().begin();
        for (int i = 0; i < 3000; ++i) {
            transaction->insert_answer({"service", "burst-" + std::to_string(i), "hash", 404, "{}", t0});
        }
        transaction->commit();
    }
    for (int i = 0; i < 3; ++i) ASSERT_EQ(refusal_with_key(server, "old-" + std::to_string(i))->status, 404);

    // Records younger than the retention: older than a day, and a second old.
    std::vector<std::pair<std::string, std::string>> young;  // key, first response
    auto make_young = [&](const std::string& prefix) {
        for (int i = 0; i < 10; ++i) {
            const std::string key = prefix + std::to_string(i);
            auto response = refusal_with_key(server, key);
            ASSERT_TRUE(response);
            ASSERT_EQ(response->status, 404);
            young.emplace_back(key, response->body);
        }
    };
    server.clock().set(t0 + 20 * 3600);
    make_young("young-a-");
    server.clock().set(t0 + retention);
    make_young("young-b-");
    ASSERT_EQ(records_created_before(server, t0 + 1), 3003) << "nothing is pruned before the retention is over";

    // One second on, the burst and the first requests are past the
    // retention. The next batches, each a request of one record, delete them
    // all, a bounded chunk at a time; the old quota stopped at 1,000.
    server.clock().set(t0 + retention + 1);
    const std::int64_t due_before = server.clock().now_seconds() - retention;
    int batches = 0;
    for (; batches < 100 && records_created_before(server, due_before) > 0; ++batches) {
        ASSERT_EQ(charge_with_key(server, "drive-" + std::to_string(batches))->status, 200);
    }
    EXPECT_EQ(records_created_before(server, due_before), 0) << "after " << batches << " batches";
    EXPECT_GT(batches, 1) << "a bounded chunk per batch, not everything at once";
    std::cout << "3,003 records past the retention pruned in " << batches << " batches\n";

    // Everything younger than the retention stayed, and still replays: the
    // same answer, byte for byte.
    EXPECT_EQ(records_with_prefix(server, "young-"), 20);
    for (const auto& [key, first] : young) {
        auto replay = refusal_with_key(server, key);
        ASSERT_TRUE(replay);
        EXPECT_EQ(replay->status, 404);
        EXPECT_EQ(replay->body, first) << key;
    }
    // A change's key lives in its journal row and is never pruned: the first
    // charges, made before everything else, still replay without a second charge.
    const std::int64_t used = server.usage_of("pia")["tokens"]["used"].get<std::int64_t>();
    EXPECT_EQ(charge_with_key(server, "drive-0")->status, 200);
    EXPECT_EQ(server.usage_of("pia")["tokens"]["used"], used);
    EXPECT_EQ(server.app().store().read_events("pia", 0, 1000).size(), static_cast<std::size_t>(batches));
}

// Refusals at 1,500 a minute, simulated for several retentions: after each
// minute's writes nothing past the retention is left, so the table holds at
// most the answers of one retention. A writer of its own on the server's
// store, with a short retention, so the clock need not cross days per step.
TEST(IdempotencyPruning, TheTableStaysBoundedWhenWritesOutpaceTheOldQuota) {
    TestServer server;
    constexpr std::int64_t retention = 120;
    constexpr int threads = 30;
    constexpr int per_thread = 50;
    constexpr int per_minute = threads * per_thread;
    std::atomic<std::int64_t> now{server.clock().now_seconds()};
    ledger::WriterOptions options;
    options.answer_retention_seconds = retention;
    ledger::Writer writer(server.app().store(), server.app().ledger().rules(), server.app().prices(),
                          server.app().signing_key(), options,
                          [&now] { return now.load(); },
                          [](const ledger::LedgerReply&) { return std::make_pair(404, std::string("{}")); }, nullptr);
    auto write_a_minute = [&](int minute) {
        std::atomic<int> failures{0};
        std::vector<std::thread> writers;
        for (int t = 0; t < threads; ++t) {
            writers.emplace_back([&, t] {
                for (int i = 0; i < per_thread; ++i) {
                    const std::string key = "m" + std::to_string(minute) + "-" + std::to_string(t) + "-" + std::to_string(i);
                    ledger::Submission submission;
                    submission.command = CommitCommand{"rsv_" + key, 1, 0, "evt_" + key, key};
                    submission.idempotency = ledger::IdempotencyScope{"service", key, "hash"};
                    if (!writer.claim(*submission.idempotency)) {
                        failures += 1;
                        continue;
                    }
                    const ledger::LedgerReply reply = writer.submit(std::move(submission));
                    if (reply.kind != ledger::ReplyKind::refused) failures += 1;
                }
            });
        }
        for (auto& w : writers) w.join();
        return failures.load();
    };
    for (int minute = 0; minute < 8; ++minute) {
        ASSERT_EQ(write_a_minute(minute), 0) << "minute " << minute;
        EXPECT_EQ(records_created_before(server, now.load() - retention), 0) << "minute " << minute;
        EXPECT_LE(records_created_before(server, now.load() + 1), (retention / 60 + 1) * per_minute) << "minute " << minute;
        now += 60;
    }
    writer.stop();
}

}  // namespace
}  // namespace tokenmeter

namespace tokenmeter {
namespace {

// The writer's memory is a cache of storage with a bound: past
// resident_accounts_max it lets go of the least recently used accounts, and
// an account read back continues its chain and its open reservations.
TEST(WriterResidentAccounts, StayWithinTheirBoundAndComeBackWhole) {
    test::TestServer server;
    ledger::WriterOptions options;
    options.resident_accounts_max = 10;
    const std::int64_t now = server.clock().now_seconds();
    ledger::Writer writer(server.app().store(), server.app().ledger().rules(), server.app().prices(),
                          server.app().signing_key(), options,
                          [now] { return now; },
                          [](const ledger::LedgerReply&) { return std::make_pair(200, std::string("{}")); }, nullptr);
    auto submit = [&](ledger::LedgerCommand command, const std::string& user) {
        ledger::Submission submission;
        submission.command = std::move(command);
        submission.user_id = user;
        return writer.submit(std::move(submission));
    };
    // An open reservation for user 0, then a hundred other users one by one.
    const auto authorized = submit(AuthorizeCommand{"u0", "rsv_u0", "chat", "gpt-4o-mini", 100, 0}, "u0");
    ASSERT_EQ(authorized.kind, ledger::ReplyKind::done);
    for (int i = 1; i <= 100; ++i) {
        const std::string user = "u" + std::to_string(i);
        ASSERT_EQ(submit(RecordCommand{user, "chat", "gpt-4o-mini", 10, 0, "evt_" + user, ""}, user).kind,
                  ledger::ReplyKind::done);
    }
    const ledger::WriterStats stats = writer.stats();
    EXPECT_LE(stats.resident_accounts, 10U);
    EXPECT_GE(stats.evicted_accounts, 90U);
    // User 0 was let go with its reservation open: committed from storage,
    // its chain goes on from seq 2 (open, authorize) to 3.
    EXPECT_FALSE(writer.holds("u0"));
    ledger::Submission commit;
    commit.command = CommitCommand{"rsv_u0", 90, 0, "evt_c0", ""};
    commit.user_id = "u0";
    auto stored = server.app().store().read_account("u0");
    ASSERT_TRUE(stored.has_value());
    commit.account = storage::journal_codec::account_from(*stored);
    commit.account_receipt = stored->head_receipt;
    commit.account_prefetched = true;
    const auto committed = writer.submit(std::move(commit));
    ASSERT_EQ(committed.kind, ledger::ReplyKind::done);
    EXPECT_EQ(committed.claims.seq, 3);
    EXPECT_EQ(committed.claims.balance.tokens_used, 90);
    EXPECT_EQ(committed.claims.balance.tokens_reserved, 0);
    writer.stop();
}

}  // namespace
}  // namespace tokenmeter
