// The in-place upgrade of a PostgreSQL ledger made by the previous release
// (schema version 4, tests/fixtures/ledger-v4/ledger.pg.sql loaded into a
// fresh database of the suite's server): the same checks as the SQLite
// upgrade (../ledger_upgrade_test.cpp, ../ledger_v4_fixture.hpp).
#include <gtest/gtest.h>

#include <ctime>

#include "ledger_v4_fixture.hpp"
#include "test_database.hpp"

namespace tokenmeter {
namespace {

TEST(LedgerUpgradeV4Postgres, MigrateCommandThenServerKeepEverythingAndGoOn) {
    const auto e = test::v4::expectations("pg");
    test::ScratchDatabase database(test::postgres_server_url());
    test::v4::load_pg_dump(database.url());
    test::v4::Workspace workspace;
    test::v4::check_upgrade(e, database.url(), workspace.signing_key(), /*migrate_first=*/true);
}

TEST(LedgerUpgradeV4Postgres, ServerUpgradesAtStartKeepsEverythingAndGoesOn) {
    const auto e = test::v4::expectations("pg");
    test::ScratchDatabase database(test::postgres_server_url());
    test::v4::load_pg_dump(database.url());
    test::v4::Workspace workspace;
    test::v4::check_upgrade(e, database.url(), workspace.signing_key(), /*migrate_first=*/false);
}

TEST(LedgerUpgradeV4Postgres, ServeProcessOnTheRealClockAppliesWhatIsDue) {
    if (std::time(nullptr) < test::v4::at(2026, 2, 3)) GTEST_SKIP() << "the real clock is before the fixture's plan end";
    const auto e = test::v4::expectations("pg");
    test::ScratchDatabase database(test::postgres_server_url());
    test::v4::load_pg_dump(database.url());
    test::v4::Workspace workspace;
    test::v4::check_serve_process(e, database.url(), workspace);
}

}  // namespace
}  // namespace tokenmeter
