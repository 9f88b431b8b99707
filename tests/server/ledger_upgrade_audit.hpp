// An audit of a ledger database read with plain SQL, independent of the
// server's own code: each user's receipt chain in ledger_journal walked with
// OpenSSL's SHA-256 and Ed25519 (not the server's functions), the newest
// receipt's claims against the current usage_limits row, the open
// reservations against the reserved amounts, and I1 for every user-period.
// Written for the upgrade tests of the v4 fixtures (ledger_upgrade_test.cpp,
// postgres/ledger_upgrade_test.cpp); it needs nothing of theirs, so any test
// that leaves a database behind (crash tests, say) can walk it too.
//
// Every check returns what it found wrong as lines of text (empty: all
// holds), so a test prints every problem at once rather than the first.
#pragma once

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tokenmeter::test::upgrade_audit {

using Json = nlohmann::json;

// ---------------------------------------------------------------------------
// Primitives, from OpenSSL and written out here.

inline std::string sha256(std::string_view bytes) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    ::SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
    return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

inline std::string hex(std::string_view bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (const char byte : bytes) {
        const auto c = static_cast<unsigned char>(byte);
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

inline std::string sha256_hex(std::string_view bytes) { return hex(sha256(bytes)); }

// RFC 4648 §5, no padding.
inline std::string b64url_encode(std::string_view bytes) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::uint32_t buffer = 0;
    int bits = 0;
    for (const char byte : bytes) {
        buffer = (buffer << 8) | static_cast<unsigned char>(byte);
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += alphabet[(buffer >> bits) & 63];
        }
    }
    if (bits > 0) out += alphabet[(buffer << (6 - bits)) & 63];
    return out;
}

inline std::optional<std::string> b64url_decode(std::string_view text) {
    std::string out;
    std::uint32_t buffer = 0;
    int bits = 0;
    for (char c : text) {
        int value = -1;
        if (c >= 'A' && c <= 'Z') value = c - 'A';
        else if (c >= 'a' && c <= 'z') value = c - 'a' + 26;
        else if (c >= '0' && c <= '9') value = c - '0' + 52;
        else if (c == '-') value = 62;
        else if (c == '_') value = 63;
        if (value < 0) return std::nullopt;
        buffer = (buffer << 6) | static_cast<std::uint32_t>(value);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buffer >> bits) & 0xFF);
        }
    }
    if (bits >= 6) return std::nullopt;  // a dangling character is not base64url
    return out;
}

// The JWS signature check of Ed25519 (RFC 8037), through OpenSSL's EVP.
inline bool ed25519_verify(const std::string& public_key, std::string_view message, const std::string& signature) {
    if (public_key.size() != 32 || signature.size() != 64) return false;
    EVP_PKEY* key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                                reinterpret_cast<const unsigned char*>(public_key.data()), 32);
    if (key == nullptr) return false;
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    bool valid = EVP_DigestVerifyInit(context, nullptr, nullptr, nullptr, key) == 1 &&
                 EVP_DigestVerify(context, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                                  reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
    EVP_MD_CTX_free(context);
    EVP_PKEY_free(key);
    return valid;
}

// RFC 3339 UTC, as the receipts write period bounds.
inline std::string rfc3339(std::int64_t seconds) {
    const std::time_t t = static_cast<std::time_t>(seconds);
    std::tm parts{};
    ::gmtime_r(&t, &parts);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
}

// kid -> raw Ed25519 public key, from a JWKS document (GET /v1/keys).
using PublicKeys = std::map<std::string, std::string>;

inline PublicKeys ed25519_keys(const Json& jwks) {
    PublicKeys keys;
    for (const Json& key : jwks.at("keys")) {
        if (key.value("kty", "") != "OKP" || key.value("crv", "") != "Ed25519") continue;
        auto raw = b64url_decode(key.at("x").get<std::string>());
        if (raw) keys[key.at("kid").get<std::string>()] = *raw;
    }
    return keys;
}

// A receipt taken apart: compact JWS, header.payload.signature.
struct Receipt {
    Json header;
    Json claims;
    std::string payload_segment;
    std::string signing_input;
    std::string signature;
};

inline std::optional<Receipt> parse_receipt(const std::string& jws) {
    const auto first = jws.find('.');
    const auto second = first == std::string::npos ? first : jws.find('.', first + 1);
    if (second == std::string::npos || jws.find('.', second + 1) != std::string::npos) return std::nullopt;
    auto header = b64url_decode(std::string_view(jws).substr(0, first));
    auto payload = b64url_decode(std::string_view(jws).substr(first + 1, second - first - 1));
    auto signature = b64url_decode(std::string_view(jws).substr(second + 1));
    if (!header || !payload || !signature) return std::nullopt;
    Receipt receipt;
    receipt.header = Json::parse(*header, nullptr, false);
    receipt.claims = Json::parse(*payload, nullptr, false);
    if (!receipt.header.is_object() || !receipt.claims.is_object()) return std::nullopt;
    receipt.payload_segment = jws.substr(first + 1, second - first - 1);
    receipt.signing_input = jws.substr(0, second);
    receipt.signature = *signature;
    return receipt;
}

// What the next receipt's `prev` must be: base64url SHA-256 of this one's
// payload segment (DESIGN.md §6).
inline std::string chain_digest_of(const std::string& jws) {
    auto receipt = parse_receipt(jws);
    return receipt ? b64url_encode(sha256(receipt->payload_segment)) : std::string("(undecodable)");
}

// ---------------------------------------------------------------------------
// Reading a database with plain SQL: every value as text, NULL as nullopt.

using Value = std::optional<std::string>;
using Row = std::vector<Value>;

class SqlReader {
public:
    virtual ~SqlReader() = default;
    virtual std::vector<Row> rows(const std::string& sql) = 0;
    virtual bool is_postgres() const = 0;

    std::string one(const std::string& sql) {
        auto found = rows(sql);
        if (found.empty() || found[0].empty() || !found[0][0]) return "";
        return *found[0][0];
    }
    bool has_table(const std::string& name) {
        return one(is_postgres() ? "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND "
                                   "table_name = '" + name + "'"
                                 : "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '" + name + "'") == "1";
    }
};

// A SQLite file, opened for each query (read-only: a reader never writes).
class SqliteReader final : public SqlReader {
public:
    explicit SqliteReader(std::string path) : path_(std::move(path)) {}
    bool is_postgres() const override { return false; }
    std::vector<Row> rows(const std::string& sql) override {
        sqlite3* db = nullptr;
        if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
            sqlite3_close(db);
            throw std::runtime_error("sqlite: cannot open " + path_);
        }
        sqlite3_busy_timeout(db, 5000);
        sqlite3_stmt* statement = nullptr;
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) != SQLITE_OK) {
            const std::string failure = sqlite3_errmsg(db);
            sqlite3_close(db);
            throw std::runtime_error("sqlite: " + failure + ": " + sql);
        }
        std::vector<Row> out;
        int step = 0;
        while ((step = sqlite3_step(statement)) == SQLITE_ROW) {
            Row row;
            for (int c = 0; c < sqlite3_column_count(statement); ++c) {
                if (sqlite3_column_type(statement, c) == SQLITE_NULL) {
                    row.emplace_back(std::nullopt);
                } else {
                    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement, c));
                    row.emplace_back(std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(statement, c))));
                }
            }
            out.push_back(std::move(row));
        }
        const std::string failure = step == SQLITE_DONE ? "" : sqlite3_errmsg(db);
        sqlite3_finalize(statement);
        sqlite3_close(db);
        if (!failure.empty()) throw std::runtime_error("sqlite: " + failure + ": " + sql);
        return out;
    }

private:
    std::string path_;
};

class PostgresReader final : public SqlReader {
public:
    explicit PostgresReader(std::string url) : url_(std::move(url)) {}
    bool is_postgres() const override { return true; }
    std::vector<Row> rows(const std::string& sql) override {
        PGconn* connection = PQconnectdb(url_.c_str());
        if (PQstatus(connection) != CONNECTION_OK) {
            const std::string failure = PQerrorMessage(connection);
            PQfinish(connection);
            throw std::runtime_error("postgres: " + failure);
        }
        PGresult* result = PQexec(connection, sql.c_str());
        if (PQresultStatus(result) != PGRES_TUPLES_OK) {
            const std::string failure = PQresultErrorMessage(result);
            PQclear(result);
            PQfinish(connection);
            throw std::runtime_error("postgres: " + failure + ": " + sql);
        }
        std::vector<Row> out;
        for (int r = 0; r < PQntuples(result); ++r) {
            Row row;
            for (int c = 0; c < PQnfields(result); ++c) {
                if (PQgetisnull(result, r, c)) {
                    row.emplace_back(std::nullopt);
                } else {
                    row.emplace_back(std::string(PQgetvalue(result, r, c), static_cast<std::size_t>(PQgetlength(result, r, c))));
                }
            }
            out.push_back(std::move(row));
        }
        PQclear(result);
        PQfinish(connection);
        return out;
    }

private:
    std::string url_;
};

// "sqlite:PATH" or a postgres:// URL, as --db takes them.
inline std::unique_ptr<SqlReader> open_reader(const std::string& db) {
    if (db.rfind("sqlite:", 0) == 0) return std::make_unique<SqliteReader>(db.substr(7));
    return std::make_unique<PostgresReader>(db);
}

inline std::string quoted(const std::string& text) {
    std::string out = "'";
    for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
}

inline std::int64_t integer(const Value& value) { return value ? std::stoll(*value) : 0; }

// ---------------------------------------------------------------------------
// The tables.

struct JournalEntry {
    std::int64_t seq = 0;
    std::string kind;
    std::string reservation_id;  // "" for NULL
    std::string receipt;
    std::string caller;
    std::string idempotency_key;
    std::int64_t created_at = 0;
};

inline std::vector<JournalEntry> read_journal(SqlReader& db, const std::string& user_id) {
    std::vector<JournalEntry> entries;
    for (const Row& row : db.rows("SELECT seq, kind, reservation_id, receipt, caller, idempotency_key, created_at "
                                  "FROM ledger_journal WHERE user_id = " + quoted(user_id) + " ORDER BY seq")) {
        entries.push_back(JournalEntry{integer(row[0]), row[1].value_or(""), row[2].value_or(""), row[3].value_or(""),
                                       row[4].value_or(""), row[5].value_or(""), integer(row[6])});
    }
    return entries;
}

// One usage_limits row: the balance of a period, and on the current row the
// account's terms.
struct PeriodRow {
    std::string user_id;
    std::int64_t period_start = 0;
    std::int64_t period_end = 0;
    std::string plan;
    std::int64_t tokens_limit = 0, tokens_used = 0, tokens_reserved = 0;
    std::int64_t avatars_limit = 0, avatars_used = 0, avatars_reserved = 0;
    std::int64_t seq = 0;
    std::int64_t anchor_day = 0;
    std::optional<std::int64_t> plan_ends_at;
    std::string plan_after;
    std::int64_t created_at = 0;
    std::string reservations;
    std::int64_t attention_at = 0;
};

inline std::vector<PeriodRow> read_periods(SqlReader& db, const std::string& where = "") {
    std::vector<PeriodRow> periods;
    for (const Row& r : db.rows("SELECT user_id, period_start, period_end, plan, tokens_limit, tokens_used, "
                                "tokens_reserved, avatars_limit, avatars_used, avatars_reserved, seq, anchor_day, "
                                "plan_ends_at, plan_after, created_at, reservations, attention_at FROM usage_limits " +
                                where + " ORDER BY user_id, period_start")) {
        PeriodRow p;
        p.user_id = r[0].value_or("");
        p.period_start = integer(r[1]);
        p.period_end = integer(r[2]);
        p.plan = r[3].value_or("");
        p.tokens_limit = integer(r[4]);
        p.tokens_used = integer(r[5]);
        p.tokens_reserved = integer(r[6]);
        p.avatars_limit = integer(r[7]);
        p.avatars_used = integer(r[8]);
        p.avatars_reserved = integer(r[9]);
        p.seq = integer(r[10]);
        p.anchor_day = integer(r[11]);
        if (r[12]) p.plan_ends_at = integer(r[12]);
        p.plan_after = r[13].value_or("");
        p.created_at = integer(r[14]);
        p.reservations = r[15].value_or("");
        p.attention_at = integer(r[16]);
        periods.push_back(std::move(p));
    }
    return periods;
}

// A user's current row: the newest period.
inline std::optional<PeriodRow> current_period(SqlReader& db, const std::string& user_id) {
    auto periods = read_periods(db, "WHERE user_id = " + quoted(user_id));
    if (periods.empty()) return std::nullopt;
    return periods.back();
}

// token_usage as JSON objects, in the field names and types the v4
// expectations use (`late` a boolean, a missing reservation or key null).
inline std::vector<Json> read_charges(SqlReader& db, const std::string& where = "") {
    std::vector<Json> charges;
    for (const Row& r : db.rows("SELECT event_id, user_id, period_start, operation, model, input_tokens, output_tokens, "
                                "raw_tokens, multiplier, charged_tokens, avatars, reservation_id, idempotency_key, "
                                "catalog_version, created_at, CASE WHEN late THEN 1 ELSE 0 END FROM token_usage " +
                                where + " ORDER BY id")) {
        auto text = [](const Value& v) { return v ? Json(*v) : Json(nullptr); };
        charges.push_back({{"event_id", text(r[0])}, {"user_id", text(r[1])}, {"period_start", integer(r[2])},
                           {"operation", text(r[3])}, {"model", text(r[4])}, {"input_tokens", integer(r[5])},
                           {"output_tokens", integer(r[6])}, {"raw_tokens", integer(r[7])}, {"multiplier", text(r[8])},
                           {"charged_tokens", integer(r[9])}, {"avatars", integer(r[10])},
                           {"reservation_id", text(r[11])}, {"idempotency_key", text(r[12])},
                           {"catalog_version", text(r[13])}, {"created_at", integer(r[14])},
                           {"late", integer(r[15]) == 1}});
    }
    return charges;
}

// ---------------------------------------------------------------------------
// The checks.

// One user's chain, in seq order: seq 1..N with no gap, each `prev` the
// digest of the receipt before (empty for the first), each signature valid
// under one of `keys` with the header DESIGN.md §6 fixes, `sub` the user,
// `seq` the row's, and the row's kind the receipt's `event`.
inline std::vector<std::string> audit_chain(const std::string& user_id, const std::vector<JournalEntry>& entries,
                                            const PublicKeys& keys) {
    std::vector<std::string> problems;
    auto problem = [&](std::int64_t seq, const std::string& what) {
        problems.push_back(user_id + " seq " + std::to_string(seq) + ": " + what);
    };
    std::string previous;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const JournalEntry& entry = entries[i];
        const auto expected_seq = static_cast<std::int64_t>(i) + 1;
        if (entry.seq != expected_seq) problem(entry.seq, "expected seq " + std::to_string(expected_seq));
        auto receipt = parse_receipt(entry.receipt);
        if (!receipt) {
            problem(entry.seq, "the receipt is not a compact JWS");
            previous = entry.receipt;
            continue;
        }
        const Json& header = receipt->header;
        const Json& claims = receipt->claims;
        if (header.value("alg", "") != "EdDSA" || header.value("typ", "") != "tokenmeter-receipt+jwt") {
            problem(entry.seq, "header " + header.dump());
        }
        const auto key = keys.find(header.value("kid", ""));
        if (key == keys.end()) {
            problem(entry.seq, "signed with an unknown kid " + header.value("kid", ""));
        } else if (!ed25519_verify(key->second, receipt->signing_input, receipt->signature)) {
            problem(entry.seq, "the signature does not verify");
        }
        if (claims.value("iss", "") != "tokenmeter") problem(entry.seq, "iss " + claims.value("iss", ""));
        if (claims.value("sub", "") != user_id) problem(entry.seq, "sub " + claims.value("sub", ""));
        if (!claims.contains("seq") || claims["seq"] != entry.seq) problem(entry.seq, "claims seq " + claims.value("seq", Json()).dump());
        const std::string expected_prev = previous.empty() ? std::string() : chain_digest_of(previous);
        if (claims.value("prev", "") != expected_prev) {
            problem(entry.seq, "prev " + claims.value("prev", "") + ", the receipt before hashes to " + expected_prev);
        }
        if (claims.value("event", "") != entry.kind) {
            problem(entry.seq, "journal kind " + entry.kind + ", receipt event " + claims.value("event", ""));
        }
        previous = entry.receipt;
    }
    return problems;
}

// The newest receipt's claims against the user's current usage_limits row.
inline std::vector<std::string> audit_head(const PeriodRow& row, const std::string& head_receipt) {
    std::vector<std::string> problems;
    auto receipt = parse_receipt(head_receipt);
    if (!receipt) return {row.user_id + ": the newest receipt does not decode"};
    const Json& c = receipt->claims;
    const Json expected = {{"seq", row.seq},
                           {"plan", row.plan},
                           {"period_start", rfc3339(row.period_start)},
                           {"period_end", rfc3339(row.period_end)},
                           {"tokens_limit", row.tokens_limit},
                           {"tokens_used", row.tokens_used},
                           {"tokens_reserved", row.tokens_reserved},
                           {"avatars_limit", row.avatars_limit},
                           {"avatars_used", row.avatars_used},
                           {"avatars_reserved", row.avatars_reserved}};
    for (const auto& [name, value] : expected.items()) {
        if (!c.contains(name) || c[name] != value) {
            problems.push_back(row.user_id + ": newest receipt " + name + " " + (c.contains(name) ? c[name].dump() : "missing") +
                               ", usage_limits " + value.dump());
        }
    }
    return problems;
}

// The whole database: every user of usage_limits (the chain, the head, the
// reserved amounts against the open reservations), I1 for every row, and
// no charge outside a period row.
inline std::vector<std::string> audit_ledger(SqlReader& db, const PublicKeys& keys) {
    std::vector<std::string> problems;
    auto add = [&](const std::vector<std::string>& more) { problems.insert(problems.end(), more.begin(), more.end()); };

    std::map<std::pair<std::string, std::int64_t>, std::pair<std::int64_t, std::int64_t>> charged;
    for (const Row& r : db.rows("SELECT user_id, period_start, SUM(charged_tokens), SUM(avatars) FROM token_usage "
                                "GROUP BY user_id, period_start")) {
        charged[{r[0].value_or(""), integer(r[1])}] = {integer(r[2]), integer(r[3])};
    }
    std::map<std::string, PeriodRow> current;
    for (const PeriodRow& row : read_periods(db)) {
        current[row.user_id] = row;  // ordered by period_start: the last is the current one
        const auto found = charged.find({row.user_id, row.period_start});
        const auto sums = found == charged.end() ? std::pair<std::int64_t, std::int64_t>{0, 0} : found->second;
        if (found != charged.end()) charged.erase(found);
        if (sums.first != row.tokens_used || sums.second != row.avatars_used) {
            problems.push_back("I1: " + row.user_id + " period " + rfc3339(row.period_start) + " used " +
                               std::to_string(row.tokens_used) + "/" + std::to_string(row.avatars_used) +
                               ", its charges sum to " + std::to_string(sums.first) + "/" + std::to_string(sums.second));
        }
    }
    for (const auto& [where, sums] : charged) {
        problems.push_back("charges of " + where.first + " in period " + rfc3339(where.second) + " (" +
                           std::to_string(sums.first) + " tokens) have no usage_limits row");
    }
    for (const auto& [user_id, row] : current) {
        const auto entries = read_journal(db, user_id);
        add(audit_chain(user_id, entries, keys));
        if (entries.empty() || entries.back().seq != row.seq) {
            problems.push_back(user_id + ": usage_limits seq " + std::to_string(row.seq) + ", newest journal seq " +
                               (entries.empty() ? std::string("none") : std::to_string(entries.back().seq)));
        }
        if (!entries.empty()) add(audit_head(row, entries.back().receipt));
        const Json open = Json::parse(row.reservations, nullptr, false);
        if (!open.is_array()) {
            problems.push_back(user_id + ": usage_limits.reservations is not a JSON array");
            continue;
        }
        std::int64_t tokens = 0;
        std::int64_t avatars = 0;
        for (const Json& held : open) {
            tokens += held.value("tokens", std::int64_t{0});
            avatars += held.value("avatars", std::int64_t{0});
            if (held.value("state", "") != "open") problems.push_back(user_id + ": a held reservation is " + held.dump());
        }
        if (tokens != row.tokens_reserved || avatars != row.avatars_reserved) {
            problems.push_back(user_id + ": reserved " + std::to_string(row.tokens_reserved) + "/" +
                               std::to_string(row.avatars_reserved) + ", open reservations hold " + std::to_string(tokens) +
                               "/" + std::to_string(avatars));
        }
    }
    return problems;
}

}  // namespace tokenmeter::test::upgrade_audit
