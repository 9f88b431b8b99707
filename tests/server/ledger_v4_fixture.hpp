// The schema-version-4 fixtures (tests/fixtures/ledger-v4/, made by commit
// 1670fcb) opened by this code: copies of them, a server on a copy (the
// fixture's signing key and service keys, a ManualClock at the fixture's
// clock_end), the requests behind the idempotency records they hold, and
// the checks that the in-place upgrade kept what expectations.*.json say
// and that the ledger goes on from there. Shared by the SQLite
// (ledger_upgrade_test.cpp) and the PostgreSQL (postgres/ledger_upgrade_test.cpp)
// suites; the database is read with plain SQL through ledger_upgrade_audit.hpp.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "app.hpp"
#include "clock.hpp"
#include "ledger_upgrade_audit.hpp"
#include "server_process.hpp"
#include "test_database.hpp"

namespace tokenmeter::test::v4 {

namespace audit = upgrade_audit;
using Json = nlohmann::json;

inline std::string fixture_file(const std::string& name) { return std::string(TM_LEDGER_V4_DIR) + "/" + name; }

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// "sqlite" or "pg".
inline Json expectations(const std::string& store) {
    return Json::parse(read_file(fixture_file("expectations." + store + ".json")));
}

inline std::string str(const Json& value) { return value.get<std::string>(); }

inline const Json& user_named(const Json& e, const std::string& nickname) {
    for (const Json& user : e.at("users")) {
        if (user.at("nickname") == nickname) return user;
    }
    throw std::logic_error("no fixture user " + nickname);
}

inline std::string service_key(const Json& e, int which) {
    return e.at("settings").at("service_keys").at(static_cast<std::size_t>(which - 1)).at("key").get<std::string>();
}

// Unix seconds of a UTC instant (as the generator's at()).
inline std::int64_t at(int year, int month, int day, int hour = 0, int minute = 0) {
    std::tm parts{};
    parts.tm_year = year - 1900;
    parts.tm_mon = month - 1;
    parts.tm_mday = day;
    parts.tm_hour = hour;
    parts.tm_min = minute;
    return static_cast<std::int64_t>(::timegm(&parts));
}

// A temporary directory with the fixture's signing key, copied with mode
// 0600 (git checks it out 0644, and the server refuses a key others can read).
class Workspace {
public:
    Workspace() {
        std::string pattern = (std::filesystem::temp_directory_path() / "tokenmeter-v4-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp");
        dir_ = pattern;
        signing_key_ = dir_ + "/signing-key.jwk";
        std::filesystem::copy_file(fixture_file("signing-key.jwk"), signing_key_);
        ::chmod(signing_key_.c_str(), 0600);
    }
    ~Workspace() {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    Workspace(const Workspace&) = delete;
    Workspace& operator=(const Workspace&) = delete;

    const std::string& dir() const { return dir_; }
    const std::string& signing_key() const { return signing_key_; }

    // A copy of ledger.sqlite (a server changes what it opens); its --db URL.
    std::string copy_sqlite() const {
        const std::string path = dir_ + "/ledger.sqlite";
        std::filesystem::copy_file(fixture_file("ledger.sqlite"), path, std::filesystem::copy_options::overwrite_existing);
        ::chmod(path.c_str(), 0600);
        return "sqlite:" + path;
    }

private:
    std::string dir_;
    std::string signing_key_;
};

// Loads ledger.pg.sql into an empty database, as psql would: the dump's
// \restrict and \unrestrict lines are psql's, the rest is plain SQL. The
// role its policies name is cluster-wide, so it is created first if missing
// (as migration 3 does: another test may be creating it at the same time).
inline void load_pg_dump(const std::string& url) {
    run_admin_sql(url, R"sql(
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
    BEGIN
      CREATE ROLE authenticated NOLOGIN NOINHERIT;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
END
$$)sql");
    std::istringstream dump(read_file(fixture_file("ledger.pg.sql")));
    std::string sql;
    std::string line;
    while (std::getline(dump, line)) {
        if (line.rfind("\\restrict", 0) == 0 || line.rfind("\\unrestrict", 0) == 0) continue;
        sql += line;
        sql += '\n';
    }
    run_admin_sql(url, sql);
}

// `tokenmeter migrate --db URL`: the exit status and what it printed.
inline std::pair<int, std::string> run_migrate(const std::string& db) {
    const std::string command = std::string(TM_TOKENMETER_BINARY) + " migrate --db '" + db + "' 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    std::string output;
    char buffer[256];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
    const int status = ::pclose(pipe);
    return {WEXITSTATUS(status), output};
}

// The App on a fixture database, configured as the fixture's server was
// (both service keys, its JWT secret, TTL and grace, its signing key), with
// a ManualClock at the fixture's clock_end.
class FixtureServer {
public:
    // `start`: the clock's first reading (the fixture's clock_end if 0).
    FixtureServer(const Json& e, const std::string& db, const std::string& signing_key_file, std::int64_t start = 0)
        : e_(e) {
        clock_ = std::make_shared<ManualClock>(start != 0 ? start : e.at("clock_end").at("unix").get<std::int64_t>());
        const Json& settings = e.at("settings");
        config::ServerConfig config;
        config.db = db;
        config.listen = "127.0.0.1:0";
        config.jwt_secret = settings.at("jwt_secret").get<std::string>();
        config.service_keys = {service_key(e, 1), service_key(e, 2)};
        config.signing_key_file = signing_key_file;
        config.reservation_ttl_seconds = settings.at("reservation_ttl_seconds").get<std::int64_t>();
        config.late_commit_grace_seconds = settings.at("late_commit_grace_seconds").get<std::int64_t>();
        auto app = App::create(config, clock_);
        if (!app) throw std::runtime_error("fixture server: " + app.error().message);
        app_ = std::move(app).value();
        auto port = app_->start();
        if (!port) throw std::runtime_error("fixture server: " + port.error().message);
        port_ = *port;
    }
    ~FixtureServer() { stop(); }
    FixtureServer(const FixtureServer&) = delete;
    FixtureServer& operator=(const FixtureServer&) = delete;

    App& app() { return *app_; }
    ManualClock& clock() { return *clock_; }
    void stop() {
        if (app_) app_->shutdown();
        app_.reset();
    }

    httplib::Client client() const {
        httplib::Client client("127.0.0.1", port_);
        client.set_read_timeout(20, 0);
        return client;
    }

    // A service call with the fixture's service key 1 or 2, body as given;
    // every answer is kept (sent()) for a later server to replay.
    httplib::Result post(int key, const std::string& idempotency_key, const std::string& path, const std::string& body) {
        auto response = client().Post(
            path, {{"Authorization", "Bearer " + service_key(e_, key)}, {"Idempotency-Key", idempotency_key}}, body,
            "application/json");
        if (response) sent_.push_back(Sent{key, idempotency_key, path, body, response->status, response->body});
        return response;
    }
    httplib::Result post(int key, const std::string& idempotency_key, const std::string& path, const Json& body) {
        return post(key, idempotency_key, path, body.dump());
    }

    // GET /v1/users/{id}/usage: status and body.
    std::pair<int, Json> usage(const std::string& user_id) {
        auto response = client().Get("/v1/users/" + user_id + "/usage",
                                     httplib::Headers{{"Authorization", "Bearer " + service_key(e_, 1)}});
        if (!response) return {0, nullptr};
        return {response->status, Json::parse(response->body, nullptr, false)};
    }

    struct Sent {
        int service_key = 0;
        std::string key, path, body;
        int status = 0;
        std::string response;
    };
    const std::vector<Sent>& sent() const { return sent_; }

private:
    Json e_;
    std::vector<Sent> sent_;
    std::shared_ptr<ManualClock> clock_;
    std::unique_ptr<App> app_;
    int port_ = 0;
};

// ---------------------------------------------------------------------------
// The requests behind the idempotency records left in the fixture (the last
// 48 hours of generate_ledger_v4.cpp's history), rebuilt byte for byte: the
// generator sent nlohmann::json's dump() of these objects, and the
// reservations they name are found by owner and creation time.

struct StoredRequest {
    int service_key = 0;
    std::string key;
    std::string path;
    std::string body;
};

// The id of `user`'s reservation made at `created_at`, from the table the
// upgrade kept them in.
inline std::string reservation_made(audit::SqlReader& db, const std::string& user_id, std::int64_t created_at) {
    return db.one("SELECT id FROM reservations_before_journal WHERE user_id = " + audit::quoted(user_id) +
                  " AND created_at = " + std::to_string(created_at));
}

inline std::vector<StoredRequest> stored_requests(audit::SqlReader& db, const Json& e) {
    const std::string ben = str(user_named(e, "ben").at("user_id"));
    const std::string cat = str(user_named(e, "cat").at("user_id"));
    const std::string dan = str(user_named(e, "dan").at("user_id"));
    const std::string eve = str(user_named(e, "eve").at("user_id"));
    const std::string fay = str(user_named(e, "fay").at("user_id"));
    auto chat = [](const std::string& user, const std::string& model, std::int64_t input, std::int64_t max_output) {
        return Json{{"user_id", user}, {"operation", "chat"}, {"model", model}, {"input_tokens", input},
                    {"max_output_tokens", max_output}};
    };
    auto used = [](const std::string& user, const std::string& model, std::int64_t input, std::int64_t output) {
        return Json{{"user_id", user}, {"operation", "chat"}, {"model", model}, {"input_tokens", input},
                    {"output_tokens", output}};
    };
    auto embedding = [](const std::string& user, std::int64_t input) {
        return Json{{"user_id", user}, {"operation", "embedding"}, {"model", "text-embedding-3-small"}, {"input_tokens", input}};
    };
    auto avatar = [](const std::string& user) { return Json{{"user_id", user}, {"operation", "avatar"}}; };
    auto commit = [](const std::string& reservation, std::int64_t input, std::int64_t output) {
        return Json{{"reservation_id", reservation}, {"input_tokens", input}, {"output_tokens", output}};
    };
    const std::string r_dan = reservation_made(db, dan, at(2026, 1, 8, 16, 0));
    const std::string r_cat = reservation_made(db, cat, at(2026, 1, 9, 8, 0));
    const std::string r_ben = reservation_made(db, ben, at(2026, 1, 9, 15, 0));
    const std::string fay_late = reservation_made(db, fay, at(2026, 1, 9, 10, 2));
    const std::string fay_lapsed = reservation_made(db, fay, at(2026, 1, 8, 13, 5));
    const std::string authorize = "/v1/usage/authorize";
    const std::string commit_path = "/v1/usage/commit";
    const std::string record = "/v1/usage/record";
    const std::vector<std::tuple<int, std::string, std::string, Json>> requests = {
        {2, "eve-0108-emb-1", record, embedding(eve, 1200)},
        {2, "fay-0108-chat-2-a", authorize, chat(fay, "gpt-4o-mini", 400, 300)},
        {2, "dan-0108-chat-4-a", authorize, chat(dan, "gpt-4o", 3000, 1000)},
        {2, "dan-0108-chat-4-c", commit_path, commit(r_dan, 3000, 900)},
        {2, "dan-0108-chat-4-c2", commit_path, commit(r_dan, 3000, 900)},
        {2, "dan-0108-chat-4-r", "/v1/usage/release", Json{{"reservation_id", r_dan}}},
        {1, "req-20260109-0001", authorize, chat(cat, "gpt-4o", 2000, 1000)},
        {1, "cat-0109-chat-8-c", commit_path, commit(r_cat, 2000, 800)},
        {1, "cat-0109-chat-9-a", authorize, chat(cat, "gpt-4o", 100000, 50000)},
        {2, "dan-0109-avatar-1", record, avatar(dan)},
        {2, "fay-0109-chat-3-a", authorize, chat(fay, "claude-3-5-sonnet", 1000, 500)},
        {2, "eve-0109-avatar-8", record, avatar(eve)},
        {2, "fay-0109-chat-3-c", commit_path, commit(fay_late, 1000, 450)},
        {2, "fay-0108-chat-2-c", commit_path, commit(fay_lapsed, 400, 250)},
        {2, "fay-0109-unknown-c", commit_path, commit("rsv_AAAAAAAAAAAAAAAAAAAAAA", 10, 10)},
        {2, "req-20260109-0001", record, used(fay, "gpt-4o-mini", 200, 100)},
        {1, "ben-0109-chat-5-a", authorize, chat(ben, "gpt-4o", 30000, 8000)},
        {1, "ben-0109-chat-5-c", commit_path, commit(r_ben, 30000, 7200)},
        {1, "ben-0109-emb-2", record, embedding(ben, 40000)},
        {2, "fay-0110-chat-4-a", authorize, chat(fay, "gpt-4o", 700, 300)},
        {1, "ben-0110-chat-7-a", authorize, chat(ben, "gpt-4o-mini", 1500, 1000)},
        {1, "cat-0110-chat-10-a", authorize, chat(cat, "claude-3-5-sonnet", 8000, 2000)},
        {2, "eve-0110-chat-9-a", authorize, chat(eve, "gpt-4o", 900, 600)},
        {2, "dan-0110-avatar-2-a", authorize, avatar(dan)},
        {2, "eve-0110-avatar-9-a", authorize, avatar(eve)},
    };
    std::vector<StoredRequest> out;
    for (const auto& [key_number, key, path, body] : requests) out.push_back({key_number, key, path, body.dump()});
    return out;
}

// What the server hashes for an Idempotency-Key (http/api_service.cpp):
// base64url SHA-256 of "METHOD PATH\nBODY".
inline std::string request_hash(const StoredRequest& request) {
    return audit::b64url_encode(audit::sha256("POST " + request.path + "\n" + request.body));
}

// ---------------------------------------------------------------------------
// The checks.

inline std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const std::string& line : lines) out += "  " + line + "\n";
    return out;
}

inline std::string normal_multiplier(std::string text) { return text.find('/') == std::string::npos ? text + "/1" : text; }

// Right after the upgrade, before any request: the tables hold what the
// fixture held, in the new shape.
inline void check_carried_over(audit::SqlReader& db, storage::LedgerStore& store, const Json& e) {
    const audit::PublicKeys keys = audit::ed25519_keys(e.at("receipt_keys"));
    ASSERT_EQ(keys.size(), 1U);

    // The schema: migration 5 applied once (and those after it), the tables it folds in gone.
    EXPECT_EQ(store.schema_version(), 6);
    EXPECT_EQ(db.one(db.is_postgres() ? "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations"
                                      : "SELECT group_concat(version, ',') FROM (SELECT version FROM schema_migrations "
                                        "ORDER BY version)"),
              "1,2,3,4,5,6");
    for (const Json& migration : e.at("made_by").at("migrations")) {
        EXPECT_EQ(db.one("SELECT description FROM schema_migrations WHERE version = " + migration.at("version").dump()),
                  migration.at("description").get<std::string>());
    }
    EXPECT_FALSE(db.has_table("accounts"));
    EXPECT_FALSE(db.has_table("receipts"));
    EXPECT_FALSE(db.has_table("reservations"));
    EXPECT_TRUE(db.has_table("reservations_before_journal"));
    EXPECT_TRUE(db.has_table("ledger_journal"));

    const Json& counts = e.at("row_counts");
    EXPECT_EQ(db.one("SELECT count(*) FROM ledger_journal"), counts.at("receipts").dump());
    EXPECT_EQ(db.one("SELECT count(*) FROM reservations_before_journal"), counts.at("reservations").dump());
    for (const char* table : {"usage_limits", "token_usage", "idempotency_keys", "subscriptions", "webhook_events",
                              "billing_orders"}) {
        EXPECT_EQ(db.one(std::string("SELECT count(*) FROM ") + table), counts.at(table).dump()) << table;
    }
    for (const Json& s : e.at("subscriptions")) {
        EXPECT_EQ(db.one("SELECT user_id || ' ' || status FROM subscriptions WHERE subscription_id = " +
                         audit::quoted(str(s.at("subscription_id")))),
                  s.at("user_id").get<std::string>() + " " + s.at("status").get<std::string>());
    }
    for (const Json& w : e.at("webhook_events")) {
        EXPECT_EQ(db.one("SELECT event_name FROM webhook_events WHERE id = " + audit::quoted(str(w.at("id")))),
                  w.at("event_name").get<std::string>());
    }

    // Every user: balance, terms, periods, chain, open reservations, charges.
    for (const Json& user : e.at("users")) {
        const std::string id = str(user.at("user_id"));
        const std::string who = str(user.at("nickname"));
        SCOPED_TRACE(who);
        const Json& account = user.at("account");
        const Json& balance = user.at("balance");

        auto current = audit::current_period(db, id);
        ASSERT_TRUE(current.has_value());
        EXPECT_EQ(current->period_start, account.at("period_start").get<std::int64_t>());
        EXPECT_EQ(current->period_end, account.at("period_end").get<std::int64_t>());
        EXPECT_EQ(current->plan, account.at("plan").get<std::string>());
        EXPECT_EQ(current->seq, account.at("seq").get<std::int64_t>());
        EXPECT_EQ(current->anchor_day, account.at("anchor_day").get<std::int64_t>());
        EXPECT_EQ(current->plan_ends_at, account.at("plan_ends_at").is_null()
                                             ? std::nullopt
                                             : std::optional<std::int64_t>(account.at("plan_ends_at").get<std::int64_t>()));
        EXPECT_EQ(current->plan_after, account.at("plan_after").get<std::string>());
        EXPECT_EQ(current->created_at, account.at("created_at").get<std::int64_t>());
        EXPECT_EQ(current->attention_at, account.at("attention_at").get<std::int64_t>());

        // Every period row, the current one's balance among them.
        const auto periods = audit::read_periods(db, "WHERE user_id = " + audit::quoted(id));
        ASSERT_EQ(periods.size(), user.at("periods").size());
        for (std::size_t i = 0; i < periods.size(); ++i) {
            const Json& p = user.at("periods")[i];
            const audit::PeriodRow& row = periods[i];
            const Json got = {{"period_start", row.period_start},   {"period_end", row.period_end},
                              {"plan", row.plan},                   {"tokens_limit", row.tokens_limit},
                              {"tokens_used", row.tokens_used},     {"tokens_reserved", row.tokens_reserved},
                              {"avatars_limit", row.avatars_limit}, {"avatars_used", row.avatars_used},
                              {"avatars_reserved", row.avatars_reserved}};
            EXPECT_EQ(got, p) << "period " << i;
        }
        const Json current_balance = {
            {"period_start", current->period_start},   {"period_end", current->period_end},
            {"plan", current->plan},                   {"tokens_limit", current->tokens_limit},
            {"tokens_used", current->tokens_used},     {"tokens_reserved", current->tokens_reserved},
            {"avatars_limit", current->avatars_limit}, {"avatars_used", current->avatars_used},
            {"avatars_reserved", current->avatars_reserved}};
        EXPECT_EQ(current_balance, balance);

        // The chain: one journal row per receipt, byte for byte, in order.
        const auto journal = audit::read_journal(db, id);
        const Json& receipts = user.at("receipts");
        ASSERT_EQ(journal.size(), receipts.size());
        EXPECT_EQ(static_cast<std::int64_t>(journal.size()), user.at("newest_receipt_seq").get<std::int64_t>());
        for (std::size_t i = 0; i < journal.size(); ++i) {
            EXPECT_EQ(journal[i].seq, receipts[i].at("seq").get<std::int64_t>());
            EXPECT_EQ(journal[i].kind, receipts[i].at("event").get<std::string>()) << "seq " << journal[i].seq;
            EXPECT_EQ(audit::sha256_hex(journal[i].receipt), receipts[i].at("jws_sha256").get<std::string>())
                << "seq " << journal[i].seq;
            auto receipt = audit::parse_receipt(journal[i].receipt);
            ASSERT_TRUE(receipt.has_value());
            EXPECT_EQ(receipt->claims.at("iat"), receipts[i].at("iat"));
        }
        EXPECT_EQ(audit::sha256_hex(journal.back().receipt), account.at("last_receipt_sha256").get<std::string>());
        const auto chain = audit::audit_chain(id, journal, keys);
        EXPECT_TRUE(chain.empty()) << joined(chain);
        const auto head = audit::audit_head(*current, journal.back().receipt);
        EXPECT_TRUE(head.empty()) << joined(head);

        // Open reservations: on the current row, with their terms.
        const Json held = Json::parse(current->reservations);
        const Json& open = user.at("open_reservations");
        ASSERT_EQ(held.size(), open.size()) << current->reservations;
        for (std::size_t i = 0; i < held.size(); ++i) {
            const Json& h = held[i];
            const Json& o = open[i];
            EXPECT_EQ(h.at("id"), o.at("id"));
            EXPECT_EQ(h.at("user_id"), id);
            EXPECT_EQ(h.at("state"), "open");
            for (const char* field : {"operation", "model", "catalog_version", "tokens", "avatars", "created_at", "expires_at"}) {
                EXPECT_EQ(h.at(field), o.at(field)) << o.at("id") << " " << field;
            }
            EXPECT_EQ(normal_multiplier(str(h.at("multiplier"))), o.at("multiplier").get<std::string>()) << o.at("id");
        }

        // Charges: every row, every column, `late` as it was.
        const auto charges = audit::read_charges(db, "WHERE user_id = " + audit::quoted(id));
        ASSERT_EQ(charges.size(), user.at("charges").size());
        for (std::size_t i = 0; i < charges.size(); ++i) {
            Json expected = user.at("charges")[i];
            expected["user_id"] = id;
            EXPECT_EQ(charges[i], expected);
        }
    }

    // Idempotency records: what a replay answers from.
    for (const Json& record : e.at("idempotency_keys")) {
        const std::string caller = str(record.at("caller"));
        const std::string key = str(record.at("key"));
        SCOPED_TRACE(caller + " " + key);
        auto answer = store.read_answer(caller, key);
        ASSERT_TRUE(answer.has_value());
        EXPECT_EQ(answer->request_hash, record.at("request_hash").get<std::string>());
        EXPECT_FALSE(answer->change.has_value()) << "a record from before the journal is its stored bytes";
        EXPECT_EQ(answer->status, record.at("status").get<int>());
        EXPECT_EQ(audit::sha256_hex(answer->response), record.at("response_sha256").get<std::string>());
    }

    const auto problems = audit::audit_ledger(db, keys);
    EXPECT_TRUE(problems.empty()) << joined(problems);
}

// Every stored answer replayed over HTTP, as a client retrying would: the
// rebuilt request must hash to the stored request_hash (so the rebuild is
// right and the hash did not change across the upgrade), and the answer is
// the stored status and bytes. Nothing changes in the ledger.
inline void check_replays(FixtureServer& server, audit::SqlReader& db, const Json& e) {
    const std::string journal_before = db.one("SELECT count(*) FROM ledger_journal");
    const auto requests = stored_requests(db, e);
    ASSERT_EQ(requests.size(), e.at("idempotency_keys").size());
    for (const StoredRequest& request : requests) {
        SCOPED_TRACE(request.key);
        const std::string caller = str(e.at("settings").at("service_keys").at(static_cast<std::size_t>(request.service_key - 1)).at("caller"));
        const Json* record = nullptr;
        for (const Json& r : e.at("idempotency_keys")) {
            if (r.at("caller") == caller && r.at("key") == request.key) record = &r;
        }
        ASSERT_NE(record, nullptr);
        ASSERT_EQ(request_hash(request), record->at("request_hash").get<std::string>()) << request.body;
        auto response = server.post(request.service_key, request.key, request.path, request.body);
        ASSERT_TRUE(response);
        EXPECT_EQ(response->status, record->at("status").get<int>()) << response->body;
        EXPECT_EQ(audit::sha256_hex(response->body), record->at("response_sha256").get<std::string>()) << response->body;
    }
    EXPECT_EQ(db.one("SELECT count(*) FROM ledger_journal"), journal_before) << "a replay changed the ledger";
}

// The snapshot's balance part, as numbers.
inline Json balance_of(const Json& usage) {
    return {{"plan", usage.at("plan")},
            {"tokens_used", usage.at("tokens").at("used")},
            {"tokens_reserved", usage.at("tokens").at("reserved")},
            {"avatars_used", usage.at("avatars").at("used")},
            {"avatars_reserved", usage.at("avatars").at("reserved")}};
}

inline Json error_code_of(const httplib::Result& response) {
    if (!response) return nullptr;
    const Json body = Json::parse(response->body, nullptr, false);
    return body.is_object() && body.contains("error") ? body["error"].value("code", Json()) : Json();
}

// After the upgrade the ledger goes on: reads apply what was due, open
// reservations are committed and released as a client would, settled ones
// are refused as settled, and every chain continues from its old head.
// `read_first`: the lazy changes due at clock_end (ada's rollover, fay's
// expiry) are applied by a read before anything else; otherwise by the
// first command that touches the account, in the same decision.
inline void check_goes_on(FixtureServer& server, audit::SqlReader& db, const Json& e, bool read_first) {
    const audit::PublicKeys keys = audit::ed25519_keys(e.at("receipt_keys"));
    const std::int64_t t_end = e.at("clock_end").at("unix").get<std::int64_t>();
    ASSERT_EQ(server.clock().now_seconds(), t_end);
    const std::string ada = str(user_named(e, "ada").at("user_id"));
    const std::string ben = str(user_named(e, "ben").at("user_id"));
    const std::string cat = str(user_named(e, "cat").at("user_id"));
    const std::string dan = str(user_named(e, "dan").at("user_id"));
    const std::string eve = str(user_named(e, "eve").at("user_id"));
    const std::string fay = str(user_named(e, "fay").at("user_id"));
    auto open_id = [&](const std::string& nickname, const std::string& operation) {
        for (const Json& r : user_named(e, nickname).at("open_reservations")) {
            if (r.at("operation") == operation) return r.at("id").get<std::string>();
        }
        throw std::logic_error("no open " + operation + " reservation of " + nickname);
    };
    // Each user's newest receipt before anything new.
    std::map<std::string, std::string> old_head;
    std::map<std::string, std::int64_t> old_seq;
    for (const Json& user : e.at("users")) {
        const auto journal = audit::read_journal(db, str(user.at("user_id")));
        ASSERT_FALSE(journal.empty());
        old_head[str(user.at("user_id"))] = journal.back().receipt;
        old_seq[str(user.at("user_id"))] = journal.back().seq;
    }

    // The fixture's public key is still the one served.
    {
        auto keys_response = server.client().Get("/v1/keys");
        ASSERT_TRUE(keys_response);
        const Json served = Json::parse(keys_response->body);
        bool listed = false;
        for (const Json& key : served.at("keys")) listed = listed || key == e.at("receipt_keys").at("keys").at(0);
        EXPECT_TRUE(listed) << keys_response->body;
    }

    // Reads at clock_end: nothing is due for ben, cat, dan, eve: their newest
    // receipt, byte for byte, and no new journal row.
    for (const char* nickname : {"ben", "cat", "dan", "eve"}) {
        SCOPED_TRACE(nickname);
        const Json& user = user_named(e, nickname);
        auto [status, usage] = server.usage(str(user.at("user_id")));
        ASSERT_EQ(status, 200);
        EXPECT_EQ(audit::sha256_hex(usage.at("receipt").get<std::string>()),
                  user.at("account").at("last_receipt_sha256").get<std::string>());
        EXPECT_EQ(usage.at("seq"), user.at("newest_receipt_seq"));
        EXPECT_EQ(usage.at("tokens").at("used"), user.at("balance").at("tokens_used"));
        EXPECT_EQ(usage.at("tokens").at("reserved"), user.at("balance").at("tokens_reserved"));
    }
    for (const auto& [id, seq] : old_seq) {
        if (id != ada && id != fay) {
            EXPECT_EQ(audit::read_journal(db, id).size(), static_cast<std::size_t>(seq));
        }
    }

    const std::int64_t ada_new_start = at(2025, 12, 31);
    if (read_first) {
        // ada: the rollover due since 2025-12-31, as the next receipt.
        auto [ada_status, ada_usage] = server.usage(ada);
        ASSERT_EQ(ada_status, 200);
        EXPECT_EQ(ada_usage.at("seq"), 16);
        EXPECT_EQ(ada_usage.at("period").at("start"), audit::rfc3339(ada_new_start));
        EXPECT_EQ(ada_usage.at("period").at("end"), audit::rfc3339(at(2026, 1, 31)));
        EXPECT_EQ(ada_usage.at("tokens").at("used"), 0);
        auto ada_receipt = audit::parse_receipt(str(ada_usage.at("receipt")));
        ASSERT_TRUE(ada_receipt.has_value());
        EXPECT_EQ(ada_receipt->claims.at("event"), "period_open");
        EXPECT_EQ(ada_receipt->claims.at("prev"), audit::chain_digest_of(old_head[ada]));
        // fay: her reservation past its expiry (11:10) expires now.
        auto [fay_status, fay_usage] = server.usage(fay);
        ASSERT_EQ(fay_status, 200);
        EXPECT_EQ(fay_usage.at("seq"), 11);
        EXPECT_EQ(fay_usage.at("tokens").at("reserved"), 0);
        EXPECT_EQ(fay_usage.at("tokens").at("used"), 3650);
        auto fay_receipt = audit::parse_receipt(str(fay_usage.at("receipt")));
        ASSERT_TRUE(fay_receipt.has_value());
        EXPECT_EQ(fay_receipt->claims.at("event"), "expire");
        EXPECT_EQ(fay_receipt->claims.at("prev"), audit::chain_digest_of(old_head[fay]));
    }

    // Open reservations carried over are usable.
    auto ben_commit = server.post(1, "upgrade-ben-commit", "/v1/usage/commit",
                                  Json{{"reservation_id", open_id("ben", "chat")}, {"input_tokens", 1500}, {"output_tokens", 800}});
    ASSERT_TRUE(ben_commit);
    ASSERT_EQ(ben_commit->status, 200) << ben_commit->body;
    {
        const Json body = Json::parse(ben_commit->body);
        EXPECT_EQ(body.at("event").at("charged_tokens"), 2300);
        EXPECT_EQ(body.at("event").at("late"), false);
        EXPECT_EQ(body.at("event").at("reservation_id"), open_id("ben", "chat"));
        EXPECT_EQ(balance_of(body.at("usage")), (Json{{"plan", "pro"}, {"tokens_used", 151600 + 2300}, {"tokens_reserved", 0},
                                                      {"avatars_used", 0}, {"avatars_reserved", 0}}));
        EXPECT_EQ(body.at("usage").at("seq"), 22);
    }
    auto ben_again = server.post(1, "upgrade-ben-commit-again", "/v1/usage/commit",
                                 Json{{"reservation_id", open_id("ben", "chat")}, {"input_tokens", 1500}, {"output_tokens", 800}});
    ASSERT_TRUE(ben_again);
    EXPECT_EQ(ben_again->status, 409) << ben_again->body;
    EXPECT_EQ(error_code_of(ben_again), "reservation_settled");

    auto cat_release = server.post(1, "upgrade-cat-release", "/v1/usage/release", Json{{"reservation_id", open_id("cat", "chat")}});
    ASSERT_TRUE(cat_release);
    ASSERT_EQ(cat_release->status, 200) << cat_release->body;
    EXPECT_EQ(balance_of(Json::parse(cat_release->body).at("usage")),
              (Json{{"plan", "free"}, {"tokens_used", 12660}, {"tokens_reserved", 0}, {"avatars_used", 0}, {"avatars_reserved", 0}}));
    auto cat_again = server.post(1, "upgrade-cat-release-again", "/v1/usage/release",
                                 Json{{"reservation_id", open_id("cat", "chat")}});
    ASSERT_TRUE(cat_again);
    EXPECT_EQ(cat_again->status, 409) << cat_again->body;

    auto dan_release = server.post(2, "upgrade-dan-release", "/v1/usage/release", Json{{"reservation_id", open_id("dan", "avatar")}});
    ASSERT_TRUE(dan_release);
    ASSERT_EQ(dan_release->status, 200) << dan_release->body;
    EXPECT_EQ(balance_of(Json::parse(dan_release->body).at("usage")),
              (Json{{"plan", "free"}, {"tokens_used", 24700}, {"tokens_reserved", 0}, {"avatars_used", 1}, {"avatars_reserved", 0}}));

    auto eve_avatar = server.post(2, "upgrade-eve-avatar", "/v1/usage/commit", Json{{"reservation_id", open_id("eve", "avatar")}});
    ASSERT_TRUE(eve_avatar);
    ASSERT_EQ(eve_avatar->status, 200) << eve_avatar->body;
    EXPECT_EQ(balance_of(Json::parse(eve_avatar->body).at("usage")),
              (Json{{"plan", "free"}, {"tokens_used", 21200}, {"tokens_reserved", 4500}, {"avatars_used", 2}, {"avatars_reserved", 0}}));
    auto eve_chat = server.post(2, "upgrade-eve-chat", "/v1/usage/commit",
                                Json{{"reservation_id", open_id("eve", "chat")}, {"input_tokens", 900}, {"output_tokens", 500}});
    ASSERT_TRUE(eve_chat);
    ASSERT_EQ(eve_chat->status, 200) << eve_chat->body;
    EXPECT_EQ(balance_of(Json::parse(eve_chat->body).at("usage")),
              (Json{{"plan", "free"}, {"tokens_used", 25400}, {"tokens_reserved", 0}, {"avatars_used", 2}, {"avatars_reserved", 0}}));

    // fay's reservation expired at 11:10, before the upgrade, still open in
    // the fixture: committed at 12:00, within the grace, it is charged late.
    auto fay_commit = server.post(2, "upgrade-fay-late", "/v1/usage/commit",
                                  Json{{"reservation_id", open_id("fay", "chat")}, {"input_tokens", 700}, {"output_tokens", 250}});
    ASSERT_TRUE(fay_commit);
    ASSERT_EQ(fay_commit->status, 200) << fay_commit->body;
    {
        const Json body = Json::parse(fay_commit->body);
        EXPECT_EQ(body.at("event").at("charged_tokens"), 2850);
        EXPECT_EQ(body.at("event").at("late"), true);
        EXPECT_EQ(balance_of(body.at("usage")),
                  (Json{{"plan", "free"}, {"tokens_used", 3650 + 2850}, {"tokens_reserved", 0}, {"avatars_used", 0},
                        {"avatars_reserved", 0}}));
        EXPECT_EQ(body.at("usage").at("seq"), 12);
    }
    {
        const auto fay_journal = audit::read_journal(db, fay);
        ASSERT_EQ(fay_journal.size(), 12U);
        EXPECT_EQ(fay_journal[10].kind, "expire");
        EXPECT_EQ(fay_journal[11].kind, "commit");
        EXPECT_EQ(fay_journal[11].reservation_id, open_id("fay", "chat"));
    }

    // A new change for every user continues the chain from its old head.
    std::map<std::string, std::int64_t> seq_before_record;
    for (const Json& user : e.at("users")) {
        const std::string id = str(user.at("user_id"));
        SCOPED_TRACE(user.at("nickname").get<std::string>());
        seq_before_record[id] = audit::read_journal(db, id).back().seq;
        auto response = server.post(1, "upgrade-record-" + user.at("nickname").get<std::string>(), "/v1/usage/record",
                                    Json{{"user_id", id}, {"operation", "embedding"}, {"model", "text-embedding-3-small"},
                                         {"input_tokens", 1000}});
        ASSERT_TRUE(response);
        ASSERT_EQ(response->status, 200) << response->body;
        const Json body = Json::parse(response->body);
        EXPECT_EQ(body.at("event").at("charged_tokens"), 1000);
        EXPECT_EQ(body.at("event").at("period_start"), body.at("usage").at("period").at("start"));
    }
    for (const Json& user : e.at("users")) {
        const std::string id = str(user.at("user_id"));
        const std::string who = str(user.at("nickname"));
        SCOPED_TRACE(who);
        const auto journal = audit::read_journal(db, id);
        ASSERT_GT(journal.size(), static_cast<std::size_t>(old_seq[id]));
        // The first row after the upgrade: seq N+1, prev the digest of N.
        const audit::JournalEntry& first_new = journal[static_cast<std::size_t>(old_seq[id])];
        EXPECT_EQ(first_new.seq, old_seq[id] + 1);
        auto receipt = audit::parse_receipt(first_new.receipt);
        ASSERT_TRUE(receipt.has_value());
        EXPECT_EQ(receipt->claims.at("prev"), audit::chain_digest_of(old_head[id]));
        EXPECT_EQ(journal.back().kind, "record");
        // Unless a read applied it first, ada's rollover comes with her record.
        const std::int64_t changes = who == "ada" && !read_first ? 2 : 1;
        EXPECT_EQ(journal.back().seq, seq_before_record[id] + changes);
        // ada's first change after the upgrade (a read, or this record)
        // rolled her into the period from 2025-12-31.
        if (who == "ada") {
            EXPECT_EQ(first_new.kind, "period_open");
            EXPECT_EQ(audit::current_period(db, id)->period_start, ada_new_start);
        }
    }
    // Reservations settled before the upgrade stay settled.
    const std::string ada_committed = str(user_named(e, "ada").at("charges").at(0).at("reservation_id"));
    const std::string ada_released =
        db.one("SELECT id FROM reservations_before_journal WHERE user_id = " + audit::quoted(ada) + " AND state = 'released'");
    const std::string eve_released =
        db.one("SELECT id FROM reservations_before_journal WHERE user_id = " + audit::quoted(eve) + " AND state = 'released'");
    const std::string eve_expired =
        db.one("SELECT id FROM reservations_before_journal WHERE user_id = " + audit::quoted(eve) + " AND state = 'expired'");
    const std::string fay_lapsed = reservation_made(db, fay, at(2026, 1, 8, 13, 5));
    const std::string dan_committed = reservation_made(db, dan, at(2026, 1, 8, 16, 0));
    ASSERT_FALSE(ada_released.empty());
    ASSERT_FALSE(eve_released.empty());
    ASSERT_FALSE(eve_expired.empty());
    ASSERT_FALSE(fay_lapsed.empty());
    ASSERT_FALSE(dan_committed.empty());
    const std::int64_t journal_before = std::stoll(db.one("SELECT count(*) FROM ledger_journal"));
    struct Refused {
        int service_key;
        std::string key, path;
        Json body;
        int status;
        const char* code;
    };
    const std::vector<Refused> refused = {
        {1, "upgrade-ada-commit-settled", "/v1/usage/commit",
         Json{{"reservation_id", ada_committed}, {"input_tokens", 10}, {"output_tokens", 10}}, 409, "reservation_settled"},
        {1, "upgrade-ada-release-released", "/v1/usage/release", Json{{"reservation_id", ada_released}}, 409,
         "reservation_settled"},
        {2, "upgrade-eve-commit-released", "/v1/usage/commit", Json{{"reservation_id", eve_released}}, 409,
         "reservation_settled"},
        {2, "upgrade-dan-release-committed", "/v1/usage/release", Json{{"reservation_id", dan_committed}}, 409,
         "reservation_settled"},
        // Expired before the upgrade and past the grace.
        {2, "upgrade-fay-commit-lapsed", "/v1/usage/commit",
         Json{{"reservation_id", fay_lapsed}, {"input_tokens", 400}, {"output_tokens", 250}}, 410, "reservation_expired"},
        {2, "upgrade-eve-commit-expired", "/v1/usage/commit",
         Json{{"reservation_id", eve_expired}, {"input_tokens", 500}, {"output_tokens", 100}}, 410, "reservation_expired"},
        {2, "upgrade-unknown", "/v1/usage/commit",
         Json{{"reservation_id", "rsv_BBBBBBBBBBBBBBBBBBBBBB"}, {"input_tokens", 1}, {"output_tokens", 1}}, 404,
         "reservation_unknown"},
    };
    for (const Refused& r : refused) {
        auto response = server.post(r.service_key, r.key, r.path, r.body);
        ASSERT_TRUE(response) << r.key;
        EXPECT_EQ(response->status, r.status) << r.key << ": " << response->body;
        EXPECT_EQ(error_code_of(response), r.code) << r.key;
        // A refusal is stored as an answer: its replay is the same bytes.
        auto replay = server.post(r.service_key, r.key, r.path, r.body);
        ASSERT_TRUE(replay) << r.key;
        EXPECT_EQ(replay->status, response->status) << r.key;
        EXPECT_EQ(replay->body, response->body) << r.key;
    }
    EXPECT_EQ(std::stoll(db.one("SELECT count(*) FROM ledger_journal")), journal_before) << "a refusal changed the ledger";

    // ada's closed period keeps what it used.
    EXPECT_EQ(db.one("SELECT tokens_used FROM usage_limits WHERE user_id = " + audit::quoted(ada) +
                     " AND period_start = " + std::to_string(at(2025, 11, 30))),
              "1820");

    // The charges of the fixture are all still there, as they were.
    std::map<std::string, Json> charges_now;
    for (const Json& charge : audit::read_charges(db)) charges_now[str(charge.at("event_id"))] = charge;
    std::size_t old_charges = 0;
    for (const Json& user : e.at("users")) {
        for (Json charge : user.at("charges")) {
            charge["user_id"] = user.at("user_id");
            EXPECT_EQ(charges_now[str(charge.at("event_id"))], charge);
            old_charges += 1;
        }
    }
    // The new ones: ben, eve's two, fay's late one, and one record each.
    EXPECT_EQ(charges_now.size(), old_charges + 4 + e.at("users").size());

    auto problems = audit::audit_ledger(db, keys);
    EXPECT_TRUE(problems.empty()) << joined(problems);

    // Later: ben's cancelled plan ends 2026-02-02T10:00Z; the next touch
    // after it makes him free, and rolls his period over.
    server.clock().set(at(2026, 2, 3));
    auto [ben_status, ben_usage] = server.usage(ben);
    ASSERT_EQ(ben_status, 200);
    EXPECT_EQ(ben_usage.at("plan"), "free");
    EXPECT_EQ(ben_usage.at("tokens").at("limit"), 250000);
    EXPECT_EQ(ben_usage.at("period").at("start"), audit::rfc3339(at(2026, 2, 2)));
    {
        const auto journal = audit::read_journal(db, ben);
        ASSERT_GE(journal.size(), 2U);
        EXPECT_EQ(journal[journal.size() - 2].kind, "plan_change");
        EXPECT_EQ(journal.back().kind, "period_open");
        auto current = audit::current_period(db, ben);
        ASSERT_TRUE(current.has_value());
        EXPECT_FALSE(current->plan_ends_at.has_value());
        EXPECT_EQ(current->plan_after, "");
    }
    // Everyone touched once more at the later time.
    for (const Json& user : e.at("users")) {
        auto [status, usage] = server.usage(str(user.at("user_id")));
        EXPECT_EQ(status, 200) << user.at("nickname");
    }
    problems = audit::audit_ledger(db, keys);
    EXPECT_TRUE(problems.empty()) << joined(problems);
}

// A new server on the upgraded database, with nothing in memory from the
// one before: the reservations carried over and settled after the upgrade
// (their rows in the journal, their terms in the renamed table) stay
// settled, the answers given after the upgrade replay byte for byte from
// the journal, every balance reads as the journal left it, and nothing is
// written for any of it.
inline void check_after_restart(FixtureServer& server, audit::SqlReader& db, const Json& e,
                                const std::vector<FixtureServer::Sent>& sent) {
    const audit::PublicKeys keys = audit::ed25519_keys(e.at("receipt_keys"));
    const std::string journal_before = db.one("SELECT count(*) FROM ledger_journal");
    for (const Json& user : e.at("users")) {
        const std::string id = str(user.at("user_id"));
        SCOPED_TRACE(str(user.at("nickname")));
        const auto journal = audit::read_journal(db, id);
        ASSERT_FALSE(journal.empty());
        auto [status, usage] = server.usage(id);
        ASSERT_EQ(status, 200);
        EXPECT_EQ(usage.at("receipt"), journal.back().receipt);
        EXPECT_EQ(usage.at("seq"), journal.back().seq);
        auto current = audit::current_period(db, id);
        ASSERT_TRUE(current.has_value());
        EXPECT_EQ(usage.at("tokens").at("used"), current->tokens_used);
        EXPECT_EQ(usage.at("tokens").at("reserved"), current->tokens_reserved);
        EXPECT_EQ(usage.at("avatars").at("used"), current->avatars_used);
    }
    std::size_t replayed = 0;
    for (const FixtureServer::Sent& before : sent) {
        if (before.status != 200 || before.key.rfind("upgrade-", 0) != 0) continue;
        SCOPED_TRACE(before.key);
        auto replay = server.post(before.service_key, before.key, before.path, before.body);
        ASSERT_TRUE(replay);
        EXPECT_EQ(replay->status, before.status);
        EXPECT_EQ(replay->body, before.response);
        replayed += 1;
    }
    // ben, cat, dan, eve (two), fay, and a record for each user.
    EXPECT_EQ(replayed, 6 + e.at("users").size());
    // Settled after the upgrade: a new request for any of them is refused.
    for (const auto& [nickname, operation, key_number] :
         std::vector<std::tuple<std::string, std::string, int>>{{"ben", "chat", 1}, {"cat", "chat", 1}, {"dan", "avatar", 2},
                                                               {"eve", "avatar", 2}, {"eve", "chat", 2}, {"fay", "chat", 2}}) {
        std::string reservation;
        for (const Json& r : user_named(e, nickname).at("open_reservations")) {
            if (r.at("operation") == operation) reservation = str(r.at("id"));
        }
        SCOPED_TRACE(nickname + " " + reservation);
        ASSERT_FALSE(reservation.empty());
        for (const char* path : {"/v1/usage/commit", "/v1/usage/release"}) {
            Json body = {{"reservation_id", reservation}};
            if (operation == "chat" && std::string_view(path) == "/v1/usage/commit") {
                body["input_tokens"] = 10;
                body["output_tokens"] = 10;
            }
            auto response = server.post(key_number, "restart-" + nickname + "-" + operation + path, path, body);
            ASSERT_TRUE(response);
            EXPECT_EQ(response->status, 409) << path << ": " << response->body;
            EXPECT_EQ(error_code_of(response), "reservation_settled") << path;
        }
    }
    EXPECT_EQ(db.one("SELECT count(*) FROM ledger_journal"), journal_before) << "the restart changed the ledger";
    const auto problems = audit::audit_ledger(db, keys);
    EXPECT_TRUE(problems.empty()) << joined(problems);
}

// A database the upgrade left, and the server that ran on it stopped: the
// upgrade is not run again.
inline void check_migrate_again_is_a_no_op(audit::SqlReader& db, const std::string& url) {
    const std::string journal = db.one("SELECT count(*) FROM ledger_journal");
    const std::string migrations = db.one("SELECT count(*) FROM schema_migrations");
    auto [status, output] = run_migrate(url);
    EXPECT_EQ(status, 0) << output;
    EXPECT_EQ(output, "tokenmeter migrate: 0 migration(s) applied\n");
    EXPECT_EQ(db.one("SELECT count(*) FROM ledger_journal"), journal);
    EXPECT_EQ(db.one("SELECT count(*) FROM schema_migrations"), migrations);
    EXPECT_TRUE(db.has_table("reservations_before_journal"));
}

// The whole upgrade of one fixture database at `url`: either through
// `tokenmeter migrate` first or by the server's own start, then the
// checks above, then a second migrate.
inline void check_upgrade(const Json& e, const std::string& url, const std::string& signing_key, bool migrate_first) {
    auto db = audit::open_reader(url);
    EXPECT_EQ(db->one("SELECT max(version) FROM schema_migrations"), "4") << "not a fixture at version 4";
    if (migrate_first) {
        auto [status, output] = run_migrate(url);
        ASSERT_EQ(status, 0) << output;
        EXPECT_EQ(output, "tokenmeter migrate: 2 migration(s) applied 5 6\n");
    }
    std::vector<FixtureServer::Sent> sent;
    std::int64_t stopped_at = 0;
    {
        FixtureServer server(e, url, signing_key);
        check_carried_over(*db, server.app().store(), e);
        if (::testing::Test::HasFatalFailure()) return;
        check_replays(server, *db, e);
        if (::testing::Test::HasFatalFailure()) return;
        check_goes_on(server, *db, e, migrate_first);
        if (::testing::Test::HasFatalFailure()) return;
        sent = server.sent();
        stopped_at = server.clock().now_seconds();
    }
    {
        FixtureServer server(e, url, signing_key, stopped_at);
        check_after_restart(server, *db, e, sent);
        if (::testing::Test::HasFatalFailure()) return;
    }
    if (!db->is_postgres()) {
        EXPECT_EQ(db->one("PRAGMA integrity_check"), "ok");
    }
    check_migrate_again_is_a_no_op(*db, url);
}

// `tokenmeter serve` as a process on the fixture database, on the real
// clock (long after clock_end): every account has something due (a
// rollover at least; ben's plan lapsed on 2026-02-02, every open
// reservation expired), applied at its first touch with receipts that
// continue the old chains; then one new charge for every user.
inline void check_serve_process(const Json& e, const std::string& url, const Workspace& workspace) {
    const Json& settings = e.at("settings");
    const Json config = {{"db", url},
                         {"jwt_secret", settings.at("jwt_secret")},
                         {"service_keys", Json::array({service_key(e, 1), service_key(e, 2)})},
                         {"signing_key_file", workspace.signing_key()},
                         {"reservation_ttl_seconds", settings.at("reservation_ttl_seconds")},
                         {"late_commit_grace_seconds", settings.at("late_commit_grace_seconds")}};
    const std::string config_file = workspace.dir() + "/config.json";
    std::ofstream(config_file) << config.dump();
    auto db = audit::open_reader(url);
    {
        ServerProcess process(config_file);
        httplib::Client client("127.0.0.1", process.port());
        client.set_read_timeout(20, 0);
        const httplib::Headers service = {{"Authorization", "Bearer " + service_key(e, 1)}};
        for (const Json& user : e.at("users")) {
            const std::string id = str(user.at("user_id"));
            SCOPED_TRACE(str(user.at("nickname")));
            auto first = client.Get("/v1/users/" + id + "/usage", service);
            ASSERT_TRUE(first);
            ASSERT_EQ(first->status, 200) << first->body;
            const Json usage = Json::parse(first->body);
            EXPECT_GT(usage.at("seq").get<std::int64_t>(), user.at("newest_receipt_seq").get<std::int64_t>());
            EXPECT_EQ(usage.at("tokens").at("used"), 0) << "a new period";
            EXPECT_EQ(usage.at("tokens").at("reserved"), 0) << "every reservation expired";
            EXPECT_EQ(usage.at("plan"), "free");
            // Nothing more is due: the same receipt again.
            auto second = client.Get("/v1/users/" + id + "/usage", service);
            ASSERT_TRUE(second);
            EXPECT_EQ(Json::parse(second->body).at("receipt"), usage.at("receipt"));
            auto record = client.Post("/v1/usage/record",
                                      httplib::Headers{{"Authorization", "Bearer " + service_key(e, 2)},
                                                       {"Idempotency-Key", "upgrade-process-" + str(user.at("nickname"))}},
                                      Json{{"user_id", id}, {"operation", "avatar"}}.dump(), "application/json");
            ASSERT_TRUE(record);
            EXPECT_EQ(record->status, 200) << record->body;
        }
        EXPECT_EQ(process.terminate(), 0);
    }
    for (const Json& user : e.at("users")) {
        const std::string id = str(user.at("user_id"));
        const auto journal = audit::read_journal(*db, id);
        ASSERT_GT(journal.size(), user.at("receipts").size());
        // The old chain is the start of the new one, byte for byte.
        for (std::size_t i = 0; i < user.at("receipts").size(); ++i) {
            EXPECT_EQ(audit::sha256_hex(journal[i].receipt), str(user.at("receipts")[i].at("jws_sha256")));
        }
        EXPECT_EQ(journal.back().kind, "record");
    }
    const auto problems = audit::audit_ledger(*db, audit::ed25519_keys(e.at("receipt_keys")));
    EXPECT_TRUE(problems.empty()) << joined(problems);
    if (!db->is_postgres()) {
        EXPECT_EQ(db->one("PRAGMA integrity_check"), "ok");
    }
}

}  // namespace tokenmeter::test::v4
