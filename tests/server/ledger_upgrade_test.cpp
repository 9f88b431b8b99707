// The in-place upgrade of a SQLite ledger made by the previous release
// (schema version 4, tests/fixtures/ledger-v4/): balances, receipt chains,
// open reservations, idempotency records and charges survive it, and the
// ledger goes on from them (ledger_v4_fixture.hpp has the checks). The
// PostgreSQL counterpart is postgres/ledger_upgrade_test.cpp.
#include <gtest/gtest.h>

#include <ctime>

#include "ledger_v4_fixture.hpp"

namespace tokenmeter {
namespace {

TEST(LedgerUpgradeV4Sqlite, MigrateCommandThenServerKeepEverythingAndGoOn) {
    const auto e = test::v4::expectations("sqlite");
    test::v4::Workspace workspace;
    test::v4::check_upgrade(e, workspace.copy_sqlite(), workspace.signing_key(), /*migrate_first=*/true);
}

TEST(LedgerUpgradeV4Sqlite, ServerUpgradesAtStartKeepsEverythingAndGoesOn) {
    const auto e = test::v4::expectations("sqlite");
    test::v4::Workspace workspace;
    test::v4::check_upgrade(e, workspace.copy_sqlite(), workspace.signing_key(), /*migrate_first=*/false);
}

TEST(LedgerUpgradeV4Sqlite, ServeProcessOnTheRealClockAppliesWhatIsDue) {
    if (std::time(nullptr) < test::v4::at(2026, 2, 3)) GTEST_SKIP() << "the real clock is before the fixture's plan end";
    const auto e = test::v4::expectations("sqlite");
    test::v4::Workspace workspace;
    test::v4::check_serve_process(e, workspace.copy_sqlite(), workspace);
}

}  // namespace
}  // namespace tokenmeter
