// The chain audit (chain_audit.hpp) itself, on SQLite and on PostgreSQL: an
// intact ledger passes, and each kind of damage it is there to find, made by
// hand in the tables and undone after, is found. An audit that cannot fail
// would prove nothing at the end of the crash tests.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include "chain_audit.hpp"
#include "test_server.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::TestServer;

// Runs SQL that changes the server's database behind its back.
void tamper(const TestServer& server, const std::string& sql) {
    const std::string& db = server.db();
    if (db.rfind("sqlite:", 0) != 0) {
        test::run_admin_sql(db, sql);
        return;
    }
    sqlite3* handle = nullptr;
    ASSERT_EQ(sqlite3_open(db.substr(7).c_str(), &handle), SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(handle, sql.c_str(), nullptr, nullptr, &error);
    const std::string message = error != nullptr ? error : "";
    sqlite3_free(error);
    sqlite3_close(handle);
    ASSERT_EQ(rc, SQLITE_OK) << message << "\n" << sql;
}

bool mentions(const test::chain_audit::Report& report, const std::string& words) {
    for (const std::string& problem : report.problems) {
        if (problem.find(words) != std::string::npos) return true;
    }
    return false;
}

TEST(ChainAudit, AnIntactLedgerPassesAndEachKindOfDamageIsFound) {
    TestServer server;
    auto ok = [](const httplib::Result& response) { return response && response->status == 200; };
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(ok(server.post("/v1/usage/record", {{"user_id", "ada"}, {"operation", "chat"}, {"model", "gpt-4o"},
                                                        {"input_tokens", 10 + i}, {"output_tokens", 1}})));
    }
    ASSERT_TRUE(ok(server.post("/v1/usage/record", {{"user_id", "bo"}, {"operation", "avatar"}})));
    ASSERT_TRUE(ok(server.post("/v1/usage/authorize", {{"user_id", "bo"}, {"operation", "chat"}, {"model", "gpt-4o"},
                                                       {"input_tokens", 100}, {"max_output_tokens", 10}})));
    server.clock().advance(31 * 86400);  // ada's next charge closes her first period
    ASSERT_TRUE(ok(server.post("/v1/usage/record", {{"user_id", "ada"}, {"operation", "avatar"}})));

    const std::string key_file = server.signing_key_file();
    auto audit = [&] { return test::chain_audit::audit_database(server.db(), key_file); };
    const auto intact = audit();
    ASSERT_TRUE(intact.ok()) << intact.describe();
    EXPECT_EQ(intact.users, 2);
    EXPECT_EQ(intact.receipts, 6 + 3);  // ada: open, 3 records, rollover, record; bo: open, record, authorize
    EXPECT_EQ(intact.periods, 3);
    EXPECT_EQ(intact.charges, 5);

    struct Damage {
        const char* what;
        std::string sql;
        std::string undo;
        std::string found;
    };
    const std::string ada = "user_id = 'ada'";
    const std::vector<Damage> damages = {
        {"a receipt replaced by the one before it",
         "UPDATE ledger_journal SET receipt = (SELECT receipt FROM ledger_journal WHERE " + ada + " AND seq = 2) WHERE " +
             ada + " AND seq = 3",
         "", "prev is not the digest of the receipt before (seq 3)"},
        {"a row missing from the chain", "UPDATE ledger_journal SET seq = seq + 100 WHERE " + ada + " AND seq = 2",
         "UPDATE ledger_journal SET seq = seq - 100 WHERE " + ada + " AND seq = 102", "a gap or a repeat"},
        {"a signature that does not verify",
         "UPDATE ledger_journal SET receipt = receipt || 'A' WHERE " + ada + " AND seq = 4",
         "UPDATE ledger_journal SET receipt = substr(receipt, 1, length(receipt) - 1) WHERE " + ada + " AND seq = 4",
         "signature does not verify (seq 4)"},
        {"a balance the newest receipt does not show",
         "UPDATE usage_limits SET tokens_used = tokens_used + 1 WHERE user_id = 'bo'",
         "UPDATE usage_limits SET tokens_used = tokens_used - 1 WHERE user_id = 'bo'",
         "the newest receipt and the current usage_limits row differ in tokens_used"},
        {"a charge that does not add up",
         "UPDATE token_usage SET avatars = avatars + 1 WHERE user_id = 'bo'",
         "UPDATE token_usage SET avatars = avatars - 1 WHERE user_id = 'bo'", "I1: avatars_used"},
        {"a closed period that still holds a reservation",
         "UPDATE usage_limits SET tokens_reserved = 5 WHERE " + ada + " AND period_start = (SELECT MIN(period_start) "
             "FROM usage_limits WHERE " + ada + ")",
         "UPDATE usage_limits SET tokens_reserved = 0 WHERE " + ada, "a closed period still holds 5 tokens"},
        {"a charge without its change", "UPDATE token_usage SET user_id = 'cy' WHERE user_id = 'bo'",
         "UPDATE token_usage SET user_id = 'bo' WHERE user_id = 'cy'", "charges of a period with no usage_limits row"},
        {"an open reservation the row does not count",
         "UPDATE usage_limits SET tokens_reserved = tokens_reserved + 1 WHERE user_id = 'bo'",
         "UPDATE usage_limits SET tokens_reserved = tokens_reserved - 1 WHERE user_id = 'bo'", "open reservations hold"},
        {"the current row behind the journal", "UPDATE usage_limits SET seq = seq - 1 WHERE user_id = 'bo'",
         "UPDATE usage_limits SET seq = seq + 1 WHERE user_id = 'bo'", "the current usage_limits row has seq"},
    };
    // The first damage has no undo of its own: the original receipt is put back.
    const std::string original = test::chain_audit::Database(server.db())
                                     .rows("SELECT receipt FROM ledger_journal WHERE " + ada + " AND seq = 3")
                                     .at(0)
                                     .at(0)
                                     .value();
    for (const Damage& damage : damages) {
        tamper(server, damage.sql);
        const auto found = audit();
        EXPECT_TRUE(mentions(found, damage.found)) << damage.what << ": " << found.describe();
        tamper(server, damage.undo.empty()
                           ? "UPDATE ledger_journal SET receipt = '" + original + "' WHERE " + ada + " AND seq = 3"
                           : damage.undo);
        const auto undone = audit();
        ASSERT_TRUE(undone.ok()) << "after undoing " << damage.what << ": " << undone.describe();
    }
    // Receipts signed by another key than the one given.
    const std::string other_key = server.dir() + "/other.jwk";
    ASSERT_TRUE(keys::generate_signing_key_file(other_key).has_value());
    const auto foreign = test::chain_audit::audit_database(server.db(), other_key);
    EXPECT_EQ(foreign.problems.size(), 9U) << foreign.describe();
    EXPECT_TRUE(mentions(foreign, "signature does not verify")) << foreign.describe();
}

}  // namespace
}  // namespace tokenmeter
