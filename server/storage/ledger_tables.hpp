// The ledger's tables (the journal, usage_limits, token_usage, stored
// answers), written and read once for both databases over a SqlSession.
// The stores add what differs: connections, transactions, migrations, and
// PostgreSQL's notifications.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "storage/sql_session.hpp"
#include "storage/store.hpp"

namespace tokenmeter::storage::ledger_tables {

void write_account(SqlSession& session, const AccountRow& row, std::optional<std::int64_t> seq_before);
void check_account(SqlSession& session, std::string_view user_id, std::int64_t period_start, std::int64_t seq);
void append(SqlSession& session, const JournalRow& row);
void insert_charge(SqlSession& session, const UsageEvent& event);
void insert_answer(SqlSession& session, const AnswerRecord& answer);
int prune_answers(SqlSession& session, std::int64_t before, int max);

std::optional<StoredAccount> read_account(SqlSession& session, std::string_view user_id);
std::optional<StoredAccount> lock_account(SqlSession& session, std::string_view user_id);
std::optional<AccountView> read_view(SqlSession& session, std::string_view user_id);
std::vector<JournalRow> read_reservation_rows(SqlSession& session, std::string_view reservation_id);
std::optional<StoredAnswer> read_answer(SqlSession& session, std::string_view caller, std::string_view key);
std::vector<UsageEvent> read_events(SqlSession& session, std::string_view user_id, std::int64_t before_id, int limit);
std::vector<UsageTotal> read_summary(SqlSession& session, std::string_view user_id, std::int64_t period_start,
                                     SummaryGrouping grouping);
std::vector<UsageEvent> read_period_charges(SqlSession& session, std::string_view user_id, std::int64_t period_start);
std::vector<JournalRow> read_journal(SqlSession& session, std::string_view user_id, std::int64_t from_seq, int limit);

}  // namespace tokenmeter::storage::ledger_tables
