// The PostgreSQL schema: migrations from an empty database and again on a
// migrated one (through `tokenmeter migrate`, and at server start), and the
// row-level security a Supabase client meets: a signed-in user reads their
// own usage_limits and token_usage rows and writes nothing.
#include <gtest/gtest.h>

#include <cstdio>

#include "storage/postgres/migrations.hpp"
#include "storage/postgres/pg_store.hpp"
#include "test_database.hpp"
#include "test_server.hpp"

namespace tokenmeter {
namespace {

using test::query_rows;

// `tokenmeter migrate --db URL`: the exit status and what it printed.
std::pair<int, std::string> migrate(const std::string& url) {
    const std::string command = std::string(TM_TOKENMETER_BINARY) + " migrate --db '" + url + "' 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    std::string output;
    char buffer[256];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
    const int status = ::pclose(pipe);
    return {WEXITSTATUS(status), output};
}

std::string one_value(const std::string& url, const std::string& sql) { return query_rows(url, sql).at(0).at(0); }

TEST(PostgresSchema, MigratesAnEmptyDatabaseAndRerunsAsANoOp) {
    test::ScratchDatabase database(test::postgres_server_url());
    auto [status, output] = migrate(database.url());
    EXPECT_EQ(status, 0) << output;
    EXPECT_EQ(output, "tokenmeter migrate: 6 migration(s) applied 1 2 3 4 5 6\n");
    EXPECT_EQ(one_value(database.url(), "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations"),
              "1,2,3,4,5,6");
    // The original system's two tables keep their names.
    EXPECT_EQ(one_value(database.url(), "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' "
                                        "AND table_name IN ('usage_limits', 'token_usage')"),
              "2");
    auto [again, again_output] = migrate(database.url());
    EXPECT_EQ(again, 0) << again_output;
    EXPECT_EQ(again_output, "tokenmeter migrate: 0 migration(s) applied\n");
    // A server starting on the migrated database applies nothing and works.
    test::TestServerOptions options;
    options.db = database.url();
    test::TestServer server(options);
    EXPECT_EQ(server.app().store().schema_version(), 6);
    EXPECT_EQ(server.post("/v1/usage/record", {{"user_id", "u1"}, {"operation", "avatar"}})->status, 200);
    EXPECT_EQ(one_value(database.url(), "SELECT count(*) FROM schema_migrations"),
              std::to_string(storage::postgres::migrations().size()));
}

TEST(PostgresSchema, ConcurrentFirstStartsMigrateOnce) {
    test::ScratchDatabase database(test::postgres_server_url());
    std::vector<std::thread> starts;
    std::atomic<int> failures{0};
    for (int i = 0; i < 4; ++i) {
        starts.emplace_back([&] {
            try {
                storage::postgres::PgStore store(storage::postgres::PgOptions{database.url()});
                if (store.schema_version() != static_cast<int>(storage::postgres::migrations().size())) failures += 1;
            } catch (const storage::StorageError& error) {
                ADD_FAILURE() << error.what();
                failures += 1;
            }
        });
    }
    for (auto& start : starts) start.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(one_value(database.url(), "SELECT count(*) FROM schema_migrations"),
              std::to_string(storage::postgres::migrations().size()));
}

// A database as the release before late commits left it (migrations 1 to 3)
// upgrades in place: its charges stay, marked on time.
TEST(PostgresSchema, UpgradeFromVersionThreeKeepsChargesAsOnTime) {
    test::ScratchDatabase database(test::postgres_server_url());
    std::string sql = "CREATE TABLE schema_migrations (version integer PRIMARY KEY, description text NOT NULL, "
                      "applied_at bigint NOT NULL);";
    for (const auto& migration : storage::postgres::migrations()) {
        if (migration.version > 3) break;
        sql += std::string(migration.sql) + ";INSERT INTO schema_migrations VALUES (" +
               std::to_string(migration.version) + ", 'old', 0);";
    }
    sql += "INSERT INTO token_usage (event_id, user_id, period_start, operation, model, input_tokens, output_tokens, "
           "raw_tokens, multiplier, charged_tokens, avatars, catalog_version, created_at) VALUES ('evt_old', 'ulla', "
           "100, 'chat', 'gpt-4o', 10, 5, 15, '3', 45, 0, 'v', 200)";
    test::run_admin_sql(database.url(), sql);

    storage::postgres::PgStore store(storage::postgres::PgOptions{database.url()});
    EXPECT_EQ(store.schema_version(), static_cast<int>(storage::postgres::migrations().size()));
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

TEST(PostgresSchema, ASignedInUserReadsOnlyTheirOwnRowsAndWritesNothing) {
    test::ScratchDatabase database(test::postgres_server_url());
    const std::string alice = "0b7c1d2e-0000-4000-8000-00000000a11c";
    const std::string bob = "0b7c1d2e-0000-4000-8000-000000000b0b";
    {
        test::TestServerOptions options;
        options.db = database.url();
        test::TestServer server(options);
        for (const std::string& user : {alice, bob, alice}) {
            ASSERT_EQ(server.post("/v1/usage/record", {{"user_id", user}, {"operation", "chat"}, {"model", "gpt-4o"},
                                                       {"input_tokens", 100}, {"output_tokens", 10}})
                          ->status,
                      200);
        }
    }
    // What the Supabase client's requests run as: role authenticated, the
    // JWT's claims in request.jwt.claims.
    auto as_user = [&](const std::string& sub, const std::string& sql) {
        return query_rows(database.url(), "SET ROLE authenticated; SELECT set_config('request.jwt.claims', '{\"sub\":\"" +
                                              sub + "\",\"role\":\"authenticated\"}', false); " + sql);
    };
    auto users_in = [&](const std::string& sub, const std::string& table) {
        std::set<std::string> users;
        for (const auto& row : as_user(sub, "SELECT user_id FROM " + table)) users.insert(row.at(0));
        return users;
    };
    EXPECT_EQ(users_in(alice, "usage_limits"), std::set<std::string>{alice});
    EXPECT_EQ(users_in(bob, "usage_limits"), std::set<std::string>{bob});
    EXPECT_EQ(as_user(alice, "SELECT user_id FROM token_usage").size(), 2U);
    EXPECT_EQ(users_in(bob, "token_usage"), std::set<std::string>{bob});
    // Someone else's id, or no sign-in: nothing.
    EXPECT_TRUE(users_in("0b7c1d2e-0000-4000-8000-000000000000", "usage_limits").empty());
    EXPECT_TRUE(query_rows(database.url(), "SET ROLE authenticated; SELECT * FROM usage_limits").empty());
    // Writes are refused, own rows included.
    const char* writes[] = {
        "UPDATE usage_limits SET tokens_used = 0",
        "DELETE FROM token_usage",
        "INSERT INTO usage_limits (user_id, period_start, period_end, plan, tokens_limit, tokens_used, tokens_reserved, "
        "avatars_limit, avatars_used, avatars_reserved) VALUES ('0b7c1d2e-0000-4000-8000-00000000a11c', 1, 2, 'free', "
        "999999999, 0, 0, 9, 0, 0)",
        "INSERT INTO token_usage (event_id, user_id, period_start, operation, model, input_tokens, output_tokens, "
        "raw_tokens, multiplier, charged_tokens, avatars, catalog_version, created_at) VALUES ('x', "
        "'0b7c1d2e-0000-4000-8000-00000000a11c', 1, 'chat', 'm', 0, 0, 0, '1', 0, 0, 'v', 0)",
    };
    for (const char* write : writes) EXPECT_THROW(as_user(alice, write), std::runtime_error) << write;
    // The server's other tables are not the client's to read at all.
    for (const char* table : {"accounts", "receipts", "reservations", "idempotency_keys", "subscriptions",
                              "webhook_events", "billing_orders"}) {
        EXPECT_THROW(as_user(alice, std::string("SELECT * FROM ") + table), std::runtime_error) << table;
    }
    EXPECT_EQ(one_value(database.url(), "SELECT sum(tokens_used) FROM usage_limits"),
              one_value(database.url(), "SELECT sum(charged_tokens) FROM token_usage"))
        << "the refused writes changed nothing";
}

}  // namespace
}  // namespace tokenmeter

namespace tokenmeter {
namespace {

TEST(PostgresUrl, APasswordNeverReachesALogLine) {
    using storage::postgres::redact_password;
    EXPECT_EQ(redact_password("postgres://app:s3cr%40t@db.example.com:5432/ledger"),
              "postgres://app:***@db.example.com:5432/ledger");
    EXPECT_EQ(redact_password("postgresql://app@127.0.0.1:5432/ledger"), "postgresql://app@127.0.0.1:5432/ledger");
    EXPECT_EQ(redact_password("postgres://127.0.0.1:5432/ledger"), "postgres://127.0.0.1:5432/ledger");
    EXPECT_EQ(redact_password("sqlite:/var/lib/tokenmeter.db"), "sqlite:/var/lib/tokenmeter.db");
}

}  // namespace
}  // namespace tokenmeter
