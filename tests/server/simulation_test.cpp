// A deterministic simulation of the ledger (TigerBeetle's VOPR is the model):
// a seeded generator of commands for a few users (authorize, commit, release,
// record, retries with the same and with another body, plan changes, a read
// now and then), clock jumps over TTLs and period ends, crashes and restarts
// of the server at random points, storage failures injected into batches and
// reads, and answers the client never saw (then retried).
//
// Every command runs twice: against the real ledger (the writer over a SQLite
// file, reopened after each crash) and against a model, the core's state
// machine over accounts in memory, signing with the same key. After every
// step the two must agree on the answer byte for byte (receipts included),
// and the database straight from SQL must hold exactly the model's journal,
// account rows and charges: I1 (used = sum of charges, per period), I2
// (used + reserved <= limit after each authorize and record), I3 (every
// acknowledged change is there), I5 (seq 1..N, each prev the digest of the
// previous payload). I4 is concurrency: the other server suites cover it.
//
// A failure names its seed and the command that replays it alone:
//   TM_SIM_SEED=<seed> build/native/tests/server/tokenmeter_server_tests --gtest_filter='Simulation.*'
// TM_SIM_SEEDS=<n> runs more seeds.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "http/ledger_replies.hpp"
#include "ledger/ledger_service.hpp"
#include "storage/journal_codec.hpp"
#include "storage/sqlite/sqlite_store.hpp"
#include "test_server.hpp"
#include "tokenmeter/state_machine.hpp"

namespace tokenmeter {
namespace {

namespace codec = storage::journal_codec;
using ledger::LedgerReply;
using ledger::ReplyKind;

constexpr int users_count = 5;
constexpr int steps_per_seed = 250;
constexpr std::int64_t answer_window = 24 * 3600;  // keys are kept at least this long (DESIGN §5)

// ---------------------------------------------------------------- storage with failures

// Fails the batch call or read the test says, once.
class FlakyStore final : public storage::LedgerStore {
public:
    explicit FlakyStore(std::unique_ptr<storage::LedgerStore> inner) : inner_(std::move(inner)) {}

    void fail_batch_call(int call) { fail_call_ = call; }
    void fail_next_read() { fail_read_ = true; }

    class Batch final : public storage::LedgerBatch {
    public:
        Batch(std::unique_ptr<storage::LedgerBatch> inner, FlakyStore& store) : inner_(std::move(inner)), store_(store) {}
        void write_account(const storage::AccountRow& row, std::optional<std::int64_t> seq) override {
            tick();
            inner_->write_account(row, seq);
        }
        std::optional<storage::StoredAccount> lock_account(std::string_view user) override {
            tick();
            return inner_->lock_account(user);
        }
        void check_account(std::string_view user, std::int64_t start, std::int64_t seq) override {
            tick();
            inner_->check_account(user, start, seq);
        }
        void append(const storage::JournalRow& row) override {
            tick();
            inner_->append(row);
        }
        void insert_charge(const storage::UsageEvent& event) override {
            tick();
            inner_->insert_charge(event);
        }
        void insert_answer(const storage::AnswerRecord& answer) override {
            tick();
            inner_->insert_answer(answer);
        }
        int prune_answers(std::int64_t before, int max) override {
            tick();
            return inner_->prune_answers(before, max);
        }
        void enqueue_alert(const storage::OutboxRow& row) override {
            tick();
            inner_->enqueue_alert(row);
        }
        void notify(const std::vector<std::string>& users) override { inner_->notify(users); }
        storage::BillingTransaction* billing() override { return inner_->billing(); }
        void commit() override {
            tick();
            inner_->commit();
        }

    private:
        void tick() {
            if (store_.fail_call_ >= 0 && calls_++ == store_.fail_call_) {
                store_.fail_call_ = -1;
                throw storage::StorageError("injected: the disk failed");
            }
        }
        std::unique_ptr<storage::LedgerBatch> inner_;
        FlakyStore& store_;
        int calls_ = 0;
    };

    template <typename Read>
    auto read(Read&& read) -> decltype(read()) {
        if (fail_read_) {
            fail_read_ = false;
            throw storage::StorageError("injected: a read failed");
        }
        return read();
    }

    std::unique_ptr<storage::LedgerBatch> begin() override { return std::make_unique<Batch>(inner_->begin(), *this); }
    std::optional<storage::StoredAccount> read_account(std::string_view u) override { return read([&] { return inner_->read_account(u); }); }
    std::optional<storage::AccountView> read_view(std::string_view u) override { return read([&] { return inner_->read_view(u); }); }
    std::vector<storage::JournalRow> read_reservation_rows(std::string_view id) override {
        return read([&] { return inner_->read_reservation_rows(id); });
    }
    std::optional<storage::StoredAnswer> read_answer(std::string_view c, std::string_view k) override {
        return read([&] { return inner_->read_answer(c, k); });
    }
    std::vector<storage::UsageEvent> read_events(std::string_view u, std::int64_t b, int l) override { return inner_->read_events(u, b, l); }
    std::vector<storage::UsageTotal> read_summary(std::string_view u, std::int64_t p, storage::SummaryGrouping g) override {
        return inner_->read_summary(u, p, g);
    }
    std::vector<storage::UsageEvent> read_period_charges(std::string_view u, std::int64_t p) override {
        return inner_->read_period_charges(u, p);
    }
    std::vector<storage::JournalRow> read_journal(std::string_view u, std::int64_t f, int l) override {
        return inner_->read_journal(u, f, l);
    }
    std::vector<storage::OutboxRow> take_due_alerts(std::int64_t now, std::int64_t lease_until, int max) override {
        return inner_->take_due_alerts(now, lease_until, max);
    }
    void mark_alert_delivered(std::int64_t id, std::int64_t at) override { inner_->mark_alert_delivered(id, at); }
    void mark_alert_failed(std::int64_t id, std::optional<std::int64_t> next, std::string_view error) override {
        inner_->mark_alert_failed(id, next, error);
    }
    std::vector<storage::OutboxRow> list_alerts(int limit) override { return inner_->list_alerts(limit); }
    int replay_alert(std::string_view id, std::int64_t now, std::int64_t until) override {
        return inner_->replay_alert(id, now, until);
    }
    bool healthy() override { return inner_->healthy(); }
    int schema_version() override { return inner_->schema_version(); }

private:
    std::unique_ptr<storage::LedgerStore> inner_;
    int fail_call_ = -1;
    bool fail_read_ = false;
};

// ---------------------------------------------------------------- commands

struct SimCommand {
    ledger::LedgerCommand command;
    std::optional<ledger::IdempotencyScope> scope;
    bool exact = true;
};

std::string hash_of(const ledger::LedgerCommand& command) {
    return std::visit(
        [](const auto& c) -> std::string {
            using T = std::decay_t<decltype(c)>;
            if constexpr (std::is_same_v<T, AuthorizeCommand>) {
                return "authorize " + c.user_id + " " + c.operation + " " + c.model + " " + std::to_string(c.input_tokens) +
                       " " + std::to_string(c.max_output_tokens);
            } else if constexpr (std::is_same_v<T, CommitCommand>) {
                return "commit " + c.reservation_id + " " + std::to_string(c.input_tokens.value_or(-1)) + " " +
                       std::to_string(c.output_tokens.value_or(-1));
            } else if constexpr (std::is_same_v<T, ReleaseCommand>) {
                return "release " + c.reservation_id;
            } else if constexpr (std::is_same_v<T, RecordCommand>) {
                return "record " + c.user_id + " " + c.operation + " " + c.model + " " + std::to_string(c.input_tokens) +
                       " " + std::to_string(c.output_tokens);
            } else {
                return "other";
            }
        },
        command);
}

// ---------------------------------------------------------------- the model

// The core's state machine over accounts in memory, answering as the ledger
// service must: the reference the real ledger is held to.
class Model {
public:
    Model(LedgerRules rules, const SigningKey& key) : rules_(std::move(rules)), key_(key) {}

    struct Answer {
        std::string hash;
        LedgerReply reply;
        std::int64_t created_at = 0;
    };

    LedgerReply apply(const SimCommand& sim, std::int64_t now) {
        if (sim.scope) {
            auto found = answers_.find({sim.scope->caller, sim.scope->key});
            if (found != answers_.end()) {
                if (found->second.hash != sim.scope->request_hash) return LedgerReply::of_kind(ReplyKind::key_reused);
                LedgerReply replay = found->second.reply;
                replay.replayed = true;
                return replay;
            }
        }
        std::string user;
        std::optional<HeldReservation> settled;
        if (const std::string* id = reservation_of(sim.command)) {
            auto owner = owners_.find(*id);
            if (owner != owners_.end()) user = owner->second;
            auto gone = settled_.find(*id);
            if (gone != settled_.end()) settled = gone->second;
        } else {
            user = user_of(sim.command);
        }
        LedgerReply reply;
        reply.command = command_kind(sim.command);
        if (user.empty()) {
            reply.kind = ReplyKind::refused;
            reply.refusal = Refusal{RefusalCode::reservation_unknown, 0, 0};
        } else {
            Account& account = account_of(user);
            Decision decision = decide(account, sim, settled ? &*settled : nullptr, now);
            reply = reply_of(decision, sim, account, user);
        }
        if (sim.scope && (reply.kind == ReplyKind::done || reply.kind == ReplyKind::refused) &&
            !(reply.kind == ReplyKind::refused && reply.refusal.code == RefusalCode::count_overflow)) {
            answers_[{sim.scope->caller, sim.scope->key}] = Answer{sim.scope->request_hash, reply, now};
        }
        return reply;
    }

    // A plan change (billing's job).
    void change_plan(const PlanChangeCommand& command, std::int64_t now) {
        Account& account = account_of(command.user_id);
        Decision decision = tokenmeter::change_plan(account, command, rules_, now);
        keep(decision, account);
    }

    // Credits added or taken back (billing's job: a pack, a refund).
    void credit(const CreditCommand& command, std::int64_t now) {
        Account& account = account_of(command.user_id);
        Decision decision = tokenmeter::credit(account, command, rules_, now);
        keep(decision, account);
    }

    const std::map<std::string, Account>& accounts() const { return accounts_; }
    const std::vector<std::string>& receipts(const std::string& user) { return receipts_[user]; }
    const std::vector<UsageCharge>& charges(const std::string& user) { return charges_[user]; }
    const std::map<std::pair<std::string, std::string>, Answer>& answers() const { return answers_; }
    std::vector<std::string> reservation_ids() const {
        std::vector<std::string> ids;
        for (const auto& [id, user] : owners_) ids.push_back(id);
        return ids;
    }

private:
    static const std::string* reservation_of(const ledger::LedgerCommand& command) {
        if (const auto* c = std::get_if<CommitCommand>(&command)) return &c->reservation_id;
        if (const auto* r = std::get_if<ReleaseCommand>(&command)) return &r->reservation_id;
        return nullptr;
    }
    static std::string user_of(const ledger::LedgerCommand& command) {
        if (const auto* a = std::get_if<AuthorizeCommand>(&command)) return a->user_id;
        if (const auto* r = std::get_if<RecordCommand>(&command)) return r->user_id;
        if (const auto* o = std::get_if<ledger::OpenCommand>(&command)) return o->user_id;
        return "";
    }
    static ledger::Command command_kind(const ledger::LedgerCommand& command) {
        switch (command.index()) {
            case 1: return ledger::Command::authorize;
            case 2: return ledger::Command::commit;
            case 3: return ledger::Command::release;
            case 4: return ledger::Command::record;
            case 5: return ledger::Command::plan_change;
            default: return ledger::Command::open;
        }
    }

    Account& account_of(const std::string& user) {
        auto found = accounts_.find(user);
        if (found == accounts_.end()) found = accounts_.emplace(user, unopened_account(user)).first;
        return found->second;
    }

    Decision decide(Account& account, const SimCommand& sim, const HeldReservation* settled, std::int64_t now) {
        Decision decision = std::visit(
            [&](const auto& c) -> Decision {
                using T = std::decay_t<decltype(c)>;
                if constexpr (std::is_same_v<T, ledger::OpenCommand>) return open_account(account, rules_, now);
                if constexpr (std::is_same_v<T, AuthorizeCommand>) return authorize(account, c, rules_, now);
                if constexpr (std::is_same_v<T, CommitCommand>) return commit(account, c, settled, rules_, now);
                if constexpr (std::is_same_v<T, ReleaseCommand>) return release(account, c, settled, rules_, now);
                if constexpr (std::is_same_v<T, RecordCommand>) return record(account, c, rules_, now);
                if constexpr (std::is_same_v<T, PlanChangeCommand>) return tokenmeter::change_plan(account, c, rules_, now);
            },
            sim.command);
        return decision;
    }

    // Signs and keeps a decision's changes; the newest receipt.
    std::string keep(Decision& decision, const Account& account) {
        std::string newest;
        for (const LedgerChange& change : decision.changes) {
            newest = sign_receipt(change.claims, key_);
            receipts_[account.user_id].push_back(newest);
            for (const HeldReservation& held : change.reservations) {
                owners_[held.id] = account.user_id;
                if (held.reservation.state == ReservationState::open) {
                    settled_.erase(held.id);
                } else {
                    settled_[held.id] = held;
                }
            }
            if (change.charge) charges_[account.user_id].push_back(*change.charge);
        }
        return newest;
    }

    LedgerReply reply_of(Decision& decision, const SimCommand& sim, const Account& account, const std::string& user) {
        LedgerReply reply;
        reply.command = command_kind(sim.command);
        if (decision.verdict == Verdict::invalid) {
            reply.kind = ReplyKind::invalid;
            reply.error = decision.error;
            return reply;
        }
        const std::string newest = keep(decision, account);
        if (decision.verdict == Verdict::refused) {
            reply.kind = ReplyKind::refused;
            reply.refusal = decision.refusal;
        } else {
            reply.kind = ReplyKind::done;
            reply.reservation = decision.reservation;
            reply.estimate = decision.estimate;
            reply.exact = sim.exact;
            reply.charge = decision.charge;
        }
        reply.claims = account.head;
        reply.receipt = newest.empty() ? receipts_[user].back() : newest;
        return reply;
    }

    LedgerRules rules_;
    const SigningKey& key_;
    std::map<std::string, Account> accounts_;
    std::map<std::string, std::vector<std::string>> receipts_;
    std::map<std::string, std::vector<UsageCharge>> charges_;
    std::map<std::string, std::string> owners_;
    std::map<std::string, HeldReservation> settled_;
    std::map<std::pair<std::string, std::string>, Answer> answers_;
};

// ---------------------------------------------------------------- database reads (plain SQL)

struct Database {
    explicit Database(const std::string& path) {
        if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) throw std::runtime_error("open");
    }
    ~Database() { sqlite3_close(db); }
    std::vector<std::vector<std::string>> rows(const std::string& sql) const {
        sqlite3_stmt* statement = nullptr;
        std::vector<std::vector<std::string>> out;
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) != SQLITE_OK) throw std::runtime_error(sql);
        while (sqlite3_step(statement) == SQLITE_ROW) {
            std::vector<std::string> row;
            for (int i = 0; i < sqlite3_column_count(statement); ++i) {
                const auto* text = sqlite3_column_text(statement, i);
                row.emplace_back(text == nullptr ? "" : reinterpret_cast<const char*>(text));
            }
            out.push_back(std::move(row));
        }
        sqlite3_finalize(statement);
        return out;
    }
    sqlite3* db = nullptr;
};

std::string quoted(const std::string& text) { return "'" + text + "'"; }

// ---------------------------------------------------------------- the run

bool same_charge(const std::optional<Charge>& a, const std::optional<Charge>& b) {
    if (!a || !b) return a.has_value() == b.has_value();
    return a->operation == b->operation && a->model == b->model && a->multiplier == b->multiplier &&
           a->input_tokens == b->input_tokens && a->output_tokens == b->output_tokens && a->raw_tokens == b->raw_tokens &&
           a->charged_tokens == b->charged_tokens && a->avatars == b->avatars;
}

class Simulation {
public:
    explicit Simulation(std::uint64_t seed) : seed_(seed), random_(seed), dir_(make_dir()) {
        catalog_ = default_catalog();
        catalog_.version = "sim-1";
        for (Plan& plan : catalog_.plans) {
            if (plan.id == "free") {
                plan.tokens_per_period = 40'000;
                plan.avatars_per_period = 2;
            }
        }
        Seed seed_bytes{};
        for (std::size_t i = 0; i < seed_bytes.size(); ++i) seed_bytes[i] = static_cast<std::uint8_t>(seed >> (i % 8));
        key_ = std::make_unique<SigningKey>(SigningKey::from_seed(seed_bytes));
        clock_ = std::make_unique<ManualClock>(1764000000 + static_cast<std::int64_t>(seed % 86400));
        book_ = price_book_of(catalog_);
        prices_ = std::make_unique<ledger::LivePriceBook>(book_, *clock_);
        config_.prices = prices_.get();
        config_.signing_key = key_.get();
        config_.reservation_ttl_seconds = 600;
        config_.late_commit_grace_seconds = 3 * 3600;
        LedgerRules rules;
        rules.prices = &book_;
        rules.reservation_ttl_seconds = config_.reservation_ttl_seconds;
        rules.late_commit_grace_seconds = config_.late_commit_grace_seconds;
        model_ = std::make_unique<Model>(rules, *key_);
        start();
    }

    ~Simulation() {
        stop();
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    void run(int steps) {
        for (step_ = 0; step_ < steps && !::testing::Test::HasFailure(); ++step_) {
            one_step();
            check(touched_);
            if (step_ % 50 == 49) check_all();
        }
        if (!::testing::Test::HasFailure()) check_all();
    }

private:
    static std::string make_dir() {
        const std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path().string();
        std::string pattern = base + "/tokenmeter-sim-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp");
        return pattern;
    }
    std::string path() const { return dir_ + "/ledger.db"; }

    void start() {
        auto sqlite = std::make_unique<storage::sqlite::SqliteStore>(storage::sqlite::SqliteOptions{path(), 2000});
        store_ = std::make_unique<FlakyStore>(std::move(sqlite));
        // Every other seed runs the writer with room for two accounts, so it
        // lets go of accounts (open reservations and all) and reads them back
        // all the time, and must agree with the model just the same.
        ledger::WriterOptions writer_options;
        if (seed_ % 2 == 1) writer_options.resident_accounts_max = 2;
        ledger_ = std::make_unique<ledger::LedgerService>(
            *store_, *clock_, config_, writer_options,
            [](const LedgerReply& reply) {
                const http::RenderedReply rendered = http::render_reply(reply, http::ReplyStyle{});
                return std::make_pair(rendered.status, rendered.body);
            },
            nullptr);
    }
    void stop() {
        ledger_.reset();
        store_.reset();
    }

    std::uint64_t next(std::uint64_t bound) { return random_() % bound; }
    bool chance(int percent) { return next(100) < static_cast<std::uint64_t>(percent); }
    std::string user(int i) const { return "u" + std::to_string(i); }
    std::string fresh_id(const char* prefix) { return std::string(prefix) + std::to_string(seed_) + "_" + std::to_string(ids_++); }

    SimCommand generate() {
        SimCommand sim;
        const std::string who = user(static_cast<int>(next(users_count)));
        const int kind = static_cast<int>(next(100));
        static const char* models[] = {"gpt-4o-mini", "gpt-4o", "claude-3-7-sonnet", "nope-model"};
        if (kind < 35) {
            const char* operation = chance(85) ? "chat" : (chance(50) ? "avatar" : "embedding");
            const std::string model = std::string(operation) == "avatar" ? "" :
                                      std::string(operation) == "embedding" ? "text-embedding-3-small" : models[next(chance(95) ? 3 : 4)];
            sim.command = AuthorizeCommand{who, fresh_id("rsv_"), operation, model,
                                           std::string(operation) == "avatar" ? 0 : static_cast<std::int64_t>(next(6000)),
                                           std::string(operation) == "chat" ? static_cast<std::int64_t>(next(3000)) : 0};
            sim.exact = chance(80);
        } else if (kind < 60) {
            auto ids = model_->reservation_ids();
            const std::string id = ids.empty() || chance(10) ? fresh_id("rsv_unknown_") : ids[next(ids.size())];
            std::optional<std::int64_t> input = static_cast<std::int64_t>(next(8000));
            std::optional<std::int64_t> output = static_cast<std::int64_t>(next(4000));
            if (chance(10)) output.reset();
            sim.command = CommitCommand{id, input, output, fresh_id("evt_"), ""};
        } else if (kind < 70) {
            auto ids = model_->reservation_ids();
            sim.command = ReleaseCommand{ids.empty() ? fresh_id("rsv_unknown_") : ids[next(ids.size())]};
        } else if (kind < 90) {
            const char* operation = chance(70) ? "chat" : (chance(50) ? "avatar" : "embedding");
            const std::string model = std::string(operation) == "avatar" ? "" :
                                      std::string(operation) == "embedding" ? "text-embedding-3-small" : models[next(3)];
            sim.command = RecordCommand{who, operation, model,
                                        std::string(operation) == "avatar" ? 0 : static_cast<std::int64_t>(next(9000)),
                                        std::string(operation) == "chat" ? static_cast<std::int64_t>(next(2000)) : 0,
                                        fresh_id("evt_"), ""};
        } else {
            sim.command = ledger::OpenCommand{who};
        }
        const bool mutation = !std::holds_alternative<ledger::OpenCommand>(sim.command);
        if (mutation) {
            const std::string caller = chance(80) ? "service-a" : "service-b";
            const std::string key = fresh_id("key_");
            sim.scope = ledger::IdempotencyScope{caller, key, hash_of(sim.command)};
            if (auto* commit = std::get_if<CommitCommand>(&sim.command)) commit->idempotency_key = key;
            if (auto* record = std::get_if<RecordCommand>(&sim.command)) record->idempotency_key = key;
        }
        return sim;
    }

    // A retry of an earlier keyed request, within the window its key is
    // kept: the same body, or (a client bug) another body under the key.
    std::optional<SimCommand> retry() {
        if (sent_.empty()) return std::nullopt;
        const auto& [first, sent_at] = sent_[next(sent_.size())];
        if (clock_->now_seconds() - sent_at >= answer_window) return std::nullopt;
        SimCommand sim = first;
        if (chance(20)) sim.scope->request_hash += " (another body)";
        return sim;
    }

    LedgerReply submit(const SimCommand& sim) {
        return std::visit(
            [&](const auto& c) -> LedgerReply {
                using T = std::decay_t<decltype(c)>;
                if constexpr (std::is_same_v<T, ledger::OpenCommand>) return ledger_->snapshot(c.user_id);
                if constexpr (std::is_same_v<T, AuthorizeCommand>) return ledger_->authorize(c, sim.exact, sim.scope);
                if constexpr (std::is_same_v<T, CommitCommand>) return ledger_->commit(c, sim.scope);
                if constexpr (std::is_same_v<T, ReleaseCommand>) return ledger_->release(c, sim.scope);
                if constexpr (std::is_same_v<T, RecordCommand>) return ledger_->record(c, sim.scope);
                return LedgerReply::of_kind(ReplyKind::internal_error);
            },
            sim.command);
    }

    void one_step() {
        touched_.clear();
        const int what = static_cast<int>(next(100));
        if (what < 6) {
            // The clock jumps: over a TTL, a grace, a day, or past a period end.
            static const std::int64_t jumps[] = {5, 400, 700, 3 * 3600, 86400, 20 * 86400, 35 * 86400};
            clock_->advance(jumps[next(7)]);
            return;
        }
        if (what < 9) {
            stop();  // a crash: memory is gone, the file stays
            start();
            return;
        }
        if (what < 12) {
            // Credits too: packs and refunds, debts included, move the
            // capacity every other command is decided against.
            if (what == 11) {
                credit();
            } else {
                plan_change();
            }
            return;
        }
        SimCommand sim;
        if (what < 22) {
            auto again = retry();
            if (!again) return;
            sim = *again;
        } else {
            sim = generate();
        }
        const int failure = static_cast<int>(next(100));
        if (failure < 4) store_->fail_batch_call(static_cast<int>(next(8)));
        if (failure >= 4 && failure < 6) store_->fail_next_read();
        const LedgerReply real = submit(sim);
        store_->fail_batch_call(-1);
        if (real.kind == ReplyKind::unavailable) {
            // Nothing happened: the model does nothing either. The client may retry.
            if (sim.scope) sent_.emplace_back(sim, clock_->now_seconds());
            return;
        }
        const LedgerReply expected = model_->apply(sim, clock_->now_seconds());
        expect_same(real, expected, sim);
        // I2: an authorize or record that applied leaves used + reserved within
        // the capacity (the limit plus credits, which a debt makes smaller).
        if (real.kind == ReplyKind::done && !real.replayed &&
            (real.command == ledger::Command::authorize || real.command == ledger::Command::record)) {
            const Balance& b = real.claims.balance;
            EXPECT_LE(b.tokens_used + b.tokens_reserved, b.tokens_capacity()) << "seed " << seed_ << " step " << step_;
            EXPECT_LE(b.avatars_used + b.avatars_reserved, b.avatars_limit) << "seed " << seed_ << " step " << step_;
        }
        if (sim.scope && std::none_of(sent_.begin(), sent_.end(), [&](const auto& e) { return e.first.scope->key == sim.scope->key; })) {
            sent_.emplace_back(sim, clock_->now_seconds());
        }
        if (!expected.claims.sub.empty()) touched_.insert(expected.claims.sub);
        // Sometimes the client never sees the answer (the server died as it
        // sent it): the change is durable all the same, and a retry replays it.
        if (chance(3)) {
            stop();
            start();
        }
    }

    void plan_change() {
        const std::string who = user(static_cast<int>(next(users_count)));
        PlanChangeCommand command{who, chance(50) ? "pro" : "free", std::nullopt, "", std::nullopt};
        if (chance(40)) command.ends_at = clock_->now_seconds() + static_cast<std::int64_t>(next(40)) * 86400;
        if (command.ends_at) command.after = "free";
        if (chance(30)) command.anchor_day = static_cast<int>(1 + next(31));
        if (chance(4)) store_->fail_batch_call(static_cast<int>(next(6)));
        const ledger::JobOutcome outcome = ledger_->run_job([&](ledger::JobContext& context) {
            context.change_plan(command);
            return ledger::JobOutcome{200, ""};
        });
        store_->fail_batch_call(-1);
        if (outcome.status != 200) return;
        model_->change_plan(command, clock_->now_seconds());
        touched_.insert(who);
    }

    void credit() {
        const std::string who = user(static_cast<int>(next(users_count)));
        const std::int64_t tokens = chance(60) ? 1 + static_cast<std::int64_t>(next(400000))
                                               : -1 - static_cast<std::int64_t>(next(600000));
        const CreditCommand command{who, CreditChange{"sim:" + std::to_string(step_), tokens, tokens > 0 ? "pack" : "refund"}};
        if (chance(4)) store_->fail_batch_call(static_cast<int>(next(6)));
        const ledger::JobOutcome outcome = ledger_->run_job([&](ledger::JobContext& context) {
            context.credit(command);
            return ledger::JobOutcome{200, ""};
        });
        store_->fail_batch_call(-1);
        if (outcome.status != 200) return;
        model_->credit(command, clock_->now_seconds());
        touched_.insert(who);
    }

    void expect_same(const LedgerReply& real, const LedgerReply& expected, const SimCommand& sim) {
        const std::string where = "seed " + std::to_string(seed_) + " step " + std::to_string(step_) + ": " +
                                  hash_of(sim.command) + (sim.scope ? " key " + sim.scope->key : "");
        if (real.kind == ReplyKind::stored) {
            // A refusal's replay: its stored bytes are the first answer's.
            ASSERT_EQ(expected.kind, ReplyKind::refused) << where;
            const http::RenderedReply rendered = http::render_reply(expected, {});
            EXPECT_EQ(real.status, rendered.status) << where;
            EXPECT_EQ(real.body, rendered.body) << where;
            return;
        }
        ASSERT_EQ(real.kind, expected.kind) << where << " (" << http::render_reply(real, {}).body << ")";
        EXPECT_EQ(real.command, expected.command) << where;
        if (real.kind == ReplyKind::refused) {
            EXPECT_EQ(real.refusal.code, expected.refusal.code) << where;
            EXPECT_EQ(real.refusal.needed, expected.refusal.needed) << where;
            EXPECT_EQ(real.refusal.remaining, expected.refusal.remaining) << where;
        }
        if (real.kind == ReplyKind::invalid) {
            EXPECT_EQ(real.error.code, expected.error.code) << where;
        }
        EXPECT_EQ(real.receipt, expected.receipt) << where;
        EXPECT_TRUE(real.claims == expected.claims) << where;
        EXPECT_EQ(real.reservation.has_value(), expected.reservation.has_value()) << where;
        if (real.reservation && expected.reservation) {
            EXPECT_TRUE(*real.reservation == *expected.reservation) << where;
        }
        EXPECT_EQ(real.charge.has_value(), expected.charge.has_value()) << where;
        if (real.charge && expected.charge) {
            EXPECT_TRUE(*real.charge == *expected.charge) << where;
        }
        EXPECT_TRUE(same_charge(real.estimate, expected.estimate)) << where;
        // And the API's bytes: a replay renders exactly what the first answer did.
        EXPECT_EQ(http::render_reply(real, {}).body, http::render_reply(expected, {}).body) << where;
    }

    // The database, read with SQL, holds exactly what the model holds.
    void check(const std::set<std::string>& users) {
        Database db(path());
        for (const std::string& who : users) check_user(db, who);
    }
    void check_all() {
        std::set<std::string> all;
        for (const auto& [who, account] : model_->accounts()) all.insert(who);
        check(all);
    }

    void check_user(const Database& db, const std::string& who) {
        const std::string where = "seed " + std::to_string(seed_) + " step " + std::to_string(step_) + " user " + who;
        // I3 and I5: the journal is the model's receipts, in order, chained.
        const auto journal = db.rows("SELECT seq, receipt, kind FROM ledger_journal WHERE user_id = " + quoted(who) + " ORDER BY seq");
        const std::vector<std::string>& receipts = model_->receipts(who);
        ASSERT_EQ(journal.size(), receipts.size()) << where;
        std::string previous_digest;
        for (std::size_t i = 0; i < journal.size(); ++i) {
            EXPECT_EQ(journal[i][0], std::to_string(i + 1)) << where;
            EXPECT_EQ(journal[i][1], receipts[i]) << where << " seq " << i + 1;
            const auto claims = decode_receipt_claims(journal[i][1]);
            ASSERT_TRUE(claims.has_value()) << where;
            EXPECT_EQ(claims->prev, previous_digest) << where << " seq " << i + 1;
            EXPECT_EQ(claims->event, journal[i][2]) << where;
            previous_digest = receipt_chain_digest(journal[i][1]);
        }
        // The account row is the model's account.
        const Account& account = model_->accounts().at(who);
        if (!account.exists()) return;
        const storage::AccountRow expected = codec::account_row(account);
        const auto rows = db.rows(
            "SELECT plan, period_start, period_end, tokens_limit, tokens_used, tokens_reserved, avatars_limit, "
            "avatars_used, avatars_reserved, seq, anchor_day, COALESCE(plan_ends_at, -1), plan_after, reservations, "
            "attention_at FROM usage_limits WHERE user_id = " + quoted(who) + " ORDER BY period_start DESC LIMIT 1");
        ASSERT_EQ(rows.size(), 1U) << where;
        const auto& row = rows[0];
        const Balance& b = expected.balance;
        const std::vector<std::string> want = {
            expected.plan, std::to_string(expected.period.start_seconds), std::to_string(expected.period.end_seconds),
            std::to_string(b.tokens_limit), std::to_string(b.tokens_used), std::to_string(b.tokens_reserved),
            std::to_string(b.avatars_limit), std::to_string(b.avatars_used), std::to_string(b.avatars_reserved),
            std::to_string(expected.seq), std::to_string(expected.anchor_day),
            std::to_string(expected.plan_ends_at.value_or(-1)), expected.plan_after, expected.reservations,
            std::to_string(expected.attention_at)};
        EXPECT_EQ(row, want) << where;
        // I1, per period: used is the sum of the period's charges.
        const auto periods = db.rows(
            "SELECT period_start, tokens_used, avatars_used, (SELECT COALESCE(SUM(charged_tokens), 0) FROM token_usage t "
            "WHERE t.user_id = u.user_id AND t.period_start = u.period_start), (SELECT COALESCE(SUM(avatars), 0) FROM "
            "token_usage t WHERE t.user_id = u.user_id AND t.period_start = u.period_start) FROM usage_limits u "
            "WHERE user_id = " + quoted(who));
        for (const auto& period : periods) {
            EXPECT_EQ(period[1], period[3]) << where << " period " << period[0];
            EXPECT_EQ(period[2], period[4]) << where << " period " << period[0];
        }
        // The charges are the model's charges.
        const auto charged = db.rows("SELECT event_id, charged_tokens, late FROM token_usage WHERE user_id = " + quoted(who) +
                                     " ORDER BY id");
        const std::vector<UsageCharge>& charges = model_->charges(who);
        ASSERT_EQ(charged.size(), charges.size()) << where;
        for (std::size_t i = 0; i < charges.size(); ++i) {
            EXPECT_EQ(charged[i][0], charges[i].event_id) << where;
            EXPECT_EQ(charged[i][1], std::to_string(charges[i].charge.charged_tokens)) << where;
            EXPECT_EQ(charged[i][2], charges[i].late ? "1" : "0") << where;
        }
    }

    std::uint64_t seed_;
    std::mt19937_64 random_;
    std::string dir_;
    Catalog catalog_;
    PriceBook book_;
    std::unique_ptr<ledger::LivePriceBook> prices_;
    std::unique_ptr<SigningKey> key_;
    std::unique_ptr<ManualClock> clock_;
    ledger::LedgerConfig config_;
    std::unique_ptr<Model> model_;
    std::unique_ptr<FlakyStore> store_;
    std::unique_ptr<ledger::LedgerService> ledger_;
    std::vector<std::pair<SimCommand, std::int64_t>> sent_;
    std::set<std::string> touched_;
    std::uint64_t ids_ = 0;
    int step_ = 0;
};

std::vector<std::uint64_t> seeds() {
    if (const char* one = std::getenv("TM_SIM_SEED"); one != nullptr && *one != '\0') return {std::strtoull(one, nullptr, 10)};
    int count = 100;  // about 15 s here; TM_SIM_SEEDS=300 ran clean in 46 s
    if (const char* many = std::getenv("TM_SIM_SEEDS"); many != nullptr && *many != '\0') count = std::atoi(many);
    std::vector<std::uint64_t> out;
    for (int i = 0; i < count; ++i) out.push_back(0x5eed0000ULL + static_cast<std::uint64_t>(i) * 7919);
    return out;
}

TEST(Simulation, TheLedgerAgreesWithItsStateMachineThroughCrashesAndFailures) {
    ASSERT_TRUE(crypto_ready());
    for (std::uint64_t seed : seeds()) {
        {
            Simulation simulation(seed);
            simulation.run(steps_per_seed);
        }
        if (::testing::Test::HasFailure()) {
            ADD_FAILURE() << "replay: TM_SIM_SEED=" << seed
                          << " build/native/tests/server/tokenmeter_server_tests --gtest_filter='Simulation.*'";
            return;
        }
    }
}

}  // namespace
}  // namespace tokenmeter
