// The receipt chains (I5) and balances (I1) of a ledger database, audited
// straight from its tables, the way an outside auditor would: plain SQL
// through sqlite3 or libpq (not the server's store code), SHA-256 and
// Ed25519 through OpenSSL (not the server's libsodium functions), and its own
// base64url and RFC 3339. What only a walk over the stored rows catches: a
// `prev` that points at an older receipt (a writer that lost its place after
// a restart, or a stale PostgreSQL process), a receipt stored twice or not at
// all, a usage_limits row that says something its newest receipt does not.
//
// Checked, per user:
// - the journal's seq runs 1..N, no gap, no repeat;
// - each receipt is a compact JWS whose header is EdDSA and whose Ed25519
//   signature verifies under the given public key;
// - its claims name the user and its row's seq, and its `prev` is
//   base64url(SHA-256(payload segment of the receipt before)), empty for seq 1;
// - the newest receipt's claims (plan, period, the six balance numbers, seq)
//   equal the user's current usage_limits row, whose open reservations add
//   up to its reserved numbers;
// - each closed period's row holds nothing reserved and the numbers of the
//   receipt that ended it (the one at its seq);
// - I1: tokens_used and avatars_used of every user-period equal the sums of
//   charged_tokens and avatars of that user-period's token_usage rows, and
//   no charge belongs to a period without a row;
// - every commit and record in the journal has its token_usage row, and no
//   token_usage row lacks its change.
// Everything is read in one read transaction, so a server may still run.
//
// Self-contained on purpose (a sibling branch has a walker for upgraded
// databases); the two are meant to be unified.
#pragma once

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include <array>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace tokenmeter::test::chain_audit {

using PublicKeyBytes = std::array<unsigned char, 32>;

struct Report {
    std::int64_t users = 0;
    std::int64_t receipts = 0;
    std::int64_t periods = 0;  // usage_limits rows
    std::int64_t charges = 0;  // token_usage rows
    std::vector<std::string> problems;

    bool ok() const { return problems.empty(); }
    // What was walked, and the first problems (enough to diagnose a red run).
    std::string describe() const {
        std::ostringstream out;
        out << users << " users, " << receipts << " receipts, " << periods << " periods, " << charges << " charges; "
            << problems.size() << " problem(s)";
        for (std::size_t i = 0; i < problems.size() && i < 20; ++i) out << "\n  " << problems[i];
        return out.str();
    }
};

namespace detail {

// Strict base64url without padding (RFC 4648 §5); nothing on any invalid input.
inline std::optional<std::string> base64url_decode(const std::string& text) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '-') return 62;
        if (c == '_') return 63;
        return -1;
    };
    if (text.size() % 4 == 1) return std::nullopt;
    std::string out;
    std::uint32_t buffer = 0;
    int bits = 0;
    for (char c : text) {
        const int v = value(c);
        if (v < 0) return std::nullopt;
        buffer = (buffer << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
        }
    }
    if (bits > 0 && (buffer & ((1U << bits) - 1)) != 0) return std::nullopt;  // non-canonical trailing bits
    return out;
}

inline std::string base64url_encode(const unsigned char* bytes, std::size_t size) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::uint32_t buffer = 0;
    int bits = 0;
    for (std::size_t i = 0; i < size; ++i) {
        buffer = (buffer << 8) | bytes[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(alphabet[(buffer >> bits) & 0x3F]);
        }
    }
    if (bits > 0) out.push_back(alphabet[(buffer << (6 - bits)) & 0x3F]);
    return out;
}

// base64url(SHA-256(text)), with OpenSSL.
inline std::string sha256_base64url(const std::string& text) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    return base64url_encode(digest, sizeof digest);
}

// Ed25519 with OpenSSL's EVP interface.
inline bool ed25519_verifies(const PublicKeyBytes& key, const std::string& message, const std::string& signature) {
    if (signature.size() != 64) return false;
    EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.data(), key.size());
    if (pkey == nullptr) return false;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const bool ok = ctx != nullptr && EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pkey) == 1 &&
                    EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok;
}

// "YYYY-MM-DDTHH:MM:SSZ" as unix seconds; nothing for any other form.
inline std::optional<std::int64_t> parse_utc(const std::string& text) {
    if (text.size() != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
        text[16] != ':' || text[19] != 'Z') {
        return std::nullopt;
    }
    std::tm tm{};
    char tail = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                    &tm.tm_min, &tm.tm_sec, &tail) != 7 || tail != 'Z') {
        return std::nullopt;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<std::int64_t>(::timegm(&tm));
}

using Row = std::vector<std::optional<std::string>>;  // nullopt: NULL

// Rows of plain SQL from either database, all in one read transaction.
class Database {
public:
    explicit Database(const std::string& url) {
        if (url.rfind("sqlite:", 0) == 0) {
            if (sqlite3_open_v2(url.substr(7).c_str(), &sqlite_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
                const std::string message = sqlite_ != nullptr ? sqlite3_errmsg(sqlite_) : "out of memory";
                sqlite3_close(sqlite_);
                throw std::runtime_error("chain audit: cannot open " + url + ": " + message);
            }
            sqlite3_busy_timeout(sqlite_, 10000);
            rows("BEGIN");
        } else {
            postgres_ = PQconnectdb(url.c_str());
            if (PQstatus(postgres_) != CONNECTION_OK) {
                const std::string message = PQerrorMessage(postgres_);
                PQfinish(postgres_);
                throw std::runtime_error("chain audit: cannot connect: " + message);
            }
            rows("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        }
    }
    ~Database() {
        if (sqlite_ != nullptr) {
            sqlite3_exec(sqlite_, "COMMIT", nullptr, nullptr, nullptr);
            sqlite3_close(sqlite_);
        }
        if (postgres_ != nullptr) PQfinish(postgres_);
    }
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    std::vector<Row> rows(const std::string& sql) {
        std::vector<Row> out;
        if (sqlite_ != nullptr) {
            sqlite3_stmt* statement = nullptr;
            if (sqlite3_prepare_v2(sqlite_, sql.c_str(), -1, &statement, nullptr) != SQLITE_OK) {
                throw std::runtime_error("chain audit (" + sql + "): " + sqlite3_errmsg(sqlite_));
            }
            int rc = 0;
            while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
                Row row;
                for (int c = 0; c < sqlite3_column_count(statement); ++c) {
                    const auto* text = sqlite3_column_text(statement, c);
                    if (text == nullptr) {
                        row.emplace_back(std::nullopt);
                    } else {
                        row.emplace_back(std::string(reinterpret_cast<const char*>(text),
                                                     static_cast<std::size_t>(sqlite3_column_bytes(statement, c))));
                    }
                }
                out.push_back(std::move(row));
            }
            sqlite3_finalize(statement);
            if (rc != SQLITE_DONE) throw std::runtime_error("chain audit (" + sql + "): " + sqlite3_errmsg(sqlite_));
            return out;
        }
        PGresult* result = PQexec(postgres_, sql.c_str());
        if (PQresultStatus(result) != PGRES_TUPLES_OK && PQresultStatus(result) != PGRES_COMMAND_OK) {
            const std::string message = PQresultErrorMessage(result);
            PQclear(result);
            throw std::runtime_error("chain audit (" + sql + "): " + message);
        }
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
        return out;
    }

private:
    sqlite3* sqlite_ = nullptr;
    PGconn* postgres_ = nullptr;
};

inline std::int64_t integer(const std::optional<std::string>& value) {
    if (!value) return 0;
    // Whole numbers only (PostgreSQL's SUM of bigint is a numeric, printed without a fraction).
    std::size_t used = 0;
    const std::int64_t number = std::stoll(*value, &used);
    if (used != value->size()) throw std::runtime_error("chain audit: not an integer: " + *value);
    return number;
}

struct Receipt {
    std::int64_t seq = 0;
    std::string payload_segment;
    nlohmann::json claims;  // null when it did not decode
};

struct Period {
    std::int64_t start = 0;
    std::int64_t end = 0;
    std::string plan;
    std::int64_t balance[6] = {};  // tokens limit, used, reserved; avatars limit, used, reserved
    std::int64_t seq = 0;
    std::string reservations;
};

inline const char* const balance_claims[6] = {"tokens_limit",  "tokens_used",  "tokens_reserved",
                                              "avatars_limit", "avatars_used", "avatars_reserved"};

}  // namespace detail

// Plain SQL on a ledger database (sqlite:PATH or postgres://…), every query
// in one read transaction; values as text, NULL as nullopt. For tests that
// read a table directly, independently of the server's store.
using Database = detail::Database;

// The public key ("x") of a JWK file, such as the server's signing key file.
inline PublicKeyBytes public_key_of_jwk_file(const std::string& path) {
    std::ifstream file(path);
    const nlohmann::json jwk = nlohmann::json::parse(file, nullptr, false);
    if (!jwk.is_object() || !jwk.contains("x") || !jwk["x"].is_string()) {
        throw std::runtime_error("chain audit: no public key in " + path);
    }
    const auto bytes = detail::base64url_decode(jwk["x"].get<std::string>());
    if (!bytes || bytes->size() != 32) throw std::runtime_error("chain audit: the key in " + path + " is not 32 bytes");
    PublicKeyBytes key{};
    std::copy(bytes->begin(), bytes->end(), key.begin());
    return key;
}

// Audits every user of the database at `db_url` (sqlite:PATH or postgres://…)
// against the server's Ed25519 public key.
inline Report audit_database(const std::string& db_url, const PublicKeyBytes& key) {
    using detail::integer;
    Report report;
    auto problem = [&report](const std::string& user, const std::string& what) {
        report.problems.push_back("user " + user + ": " + what);
    };
    detail::Database db(db_url);

    // The journal, per user, in seq order.
    std::map<std::string, std::vector<detail::Receipt>> journal;
    std::map<std::string, std::int64_t> journal_charges;  // commit and record rows
    for (const auto& row : db.rows("SELECT user_id, seq, receipt, kind FROM ledger_journal ORDER BY user_id, seq")) {
        const std::string user = row.at(0).value_or("");
        const std::int64_t seq = integer(row.at(1));
        const std::string jws = row.at(2).value_or("");
        const std::string kind = row.at(3).value_or("");
        if (kind == "commit" || kind == "record") journal_charges[user] += 1;
        report.receipts += 1;
        detail::Receipt receipt;
        receipt.seq = seq;
        const std::string at = " (seq " + std::to_string(seq) + ")";
        const auto first = jws.find('.');
        const auto second = first == std::string::npos ? first : jws.find('.', first + 1);
        if (second == std::string::npos || jws.find('.', second + 1) != std::string::npos) {
            problem(user, "the receipt is not a compact JWS" + at);
            journal[user].push_back(std::move(receipt));
            continue;
        }
        const std::string header_segment = jws.substr(0, first);
        receipt.payload_segment = jws.substr(first + 1, second - first - 1);
        const auto header_text = detail::base64url_decode(header_segment);
        const auto payload_text = detail::base64url_decode(receipt.payload_segment);
        const auto signature = detail::base64url_decode(jws.substr(second + 1));
        const nlohmann::json header = header_text ? nlohmann::json::parse(*header_text, nullptr, false) : nlohmann::json();
        if (!header.is_object() || header.value("alg", "") != "EdDSA" ||
            header.value("typ", "") != "tokenmeter-receipt+jwt") {
            problem(user, "the receipt's header is not EdDSA tokenmeter-receipt+jwt" + at);
        }
        if (!signature || !detail::ed25519_verifies(key, jws.substr(0, second), *signature)) {
            problem(user, "the receipt's signature does not verify" + at);
        }
        receipt.claims = payload_text ? nlohmann::json::parse(*payload_text, nullptr, false) : nlohmann::json();
        if (!receipt.claims.is_object()) {
            problem(user, "the receipt's payload is not a JSON object" + at);
            receipt.claims = nullptr;
        }
        journal[user].push_back(std::move(receipt));
    }

    // Each chain: seq 1..N, claims about this user and seq, prev linking.
    for (const auto& [user, receipts] : journal) {
        std::int64_t expected = 1;
        for (std::size_t i = 0; i < receipts.size(); ++i) {
            const detail::Receipt& receipt = receipts[i];
            const std::string at = " (seq " + std::to_string(receipt.seq) + ")";
            if (receipt.seq != expected) {
                problem(user, "seq " + std::to_string(receipt.seq) + " where " + std::to_string(expected) +
                                  " was due: a gap or a repeat");
            }
            expected = receipt.seq + 1;
            if (receipt.claims.is_null()) continue;
            const nlohmann::json& claims = receipt.claims;
            if (claims.value("iss", "") != "tokenmeter") problem(user, "iss is not tokenmeter" + at);
            if (!claims.contains("sub") || claims["sub"] != user) problem(user, "the receipt's sub is another user" + at);
            if (!claims.contains("seq") || claims["seq"] != receipt.seq) {
                problem(user, "the receipt's seq claim is not its row's" + at);
            }
            const std::string prev = claims.contains("prev") && claims["prev"].is_string() ? claims["prev"].get<std::string>() : "?";
            const std::string want = i == 0 ? std::string() : detail::sha256_base64url(receipts[i - 1].payload_segment);
            if (prev != want) {
                problem(user, "prev is not the digest of the receipt before" + at + ": " + prev + " instead of " +
                                  (want.empty() ? "\"\"" : want));
            }
        }
    }
    report.users = static_cast<std::int64_t>(journal.size());

    // usage_limits, per user, oldest period first.
    std::map<std::string, std::vector<detail::Period>> periods;
    for (const auto& row :
         db.rows("SELECT user_id, period_start, period_end, plan, tokens_limit, tokens_used, tokens_reserved, "
                 "avatars_limit, avatars_used, avatars_reserved, seq, reservations FROM usage_limits "
                 "ORDER BY user_id, period_start")) {
        detail::Period period;
        period.start = integer(row.at(1));
        period.end = integer(row.at(2));
        period.plan = row.at(3).value_or("");
        for (int b = 0; b < 6; ++b) period.balance[b] = integer(row.at(static_cast<std::size_t>(4 + b)));
        period.seq = integer(row.at(10));
        period.reservations = row.at(11).value_or("");
        periods[row.at(0).value_or("")].push_back(std::move(period));
        report.periods += 1;
    }
    for (const auto& entry : journal) {
        if (periods.count(entry.first) == 0) problem(entry.first, "has receipts but no usage_limits row");
    }

    // Claims equal to a row: plan, period, balance (and which of them differ).
    auto differences = [](const nlohmann::json& claims, const detail::Period& period, bool with_reserved) {
        std::string diff;
        if (claims.value("plan", "") != period.plan) diff += " plan";
        const auto start = detail::parse_utc(claims.value("period_start", ""));
        const auto end = detail::parse_utc(claims.value("period_end", ""));
        if (!start || *start != period.start) diff += " period_start";
        if (!end || *end != period.end) diff += " period_end";
        for (int b = 0; b < 6; ++b) {
            if (!with_reserved && (b == 2 || b == 5)) continue;
            const char* name = detail::balance_claims[b];
            if (!claims.contains(name) || !claims[name].is_number_integer() ||
                claims[name].get<std::int64_t>() != period.balance[b]) {
                diff += std::string(" ") + name;
            }
        }
        return diff;
    };

    for (const auto& [user, rows] : periods) {
        const auto found = journal.find(user);
        if (found == journal.end() || found->second.empty()) {
            problem(user, "has a usage_limits row but no receipts");
            continue;
        }
        const std::vector<detail::Receipt>& receipts = found->second;
        const detail::Receipt& newest = receipts.back();
        const detail::Period& current = rows.back();
        if (current.seq != newest.seq) {
            problem(user, "the current usage_limits row has seq " + std::to_string(current.seq) +
                              ", the newest receipt " + std::to_string(newest.seq));
        }
        if (!newest.claims.is_null()) {
            const std::string diff = differences(newest.claims, current, true);
            if (!diff.empty()) problem(user, "the newest receipt and the current usage_limits row differ in" + diff);
        }
        // The open reservations add up to what the row holds reserved.
        const nlohmann::json open = nlohmann::json::parse(current.reservations, nullptr, false);
        if (!open.is_array()) {
            problem(user, "the current row's reservations are not a JSON array");
        } else {
            std::int64_t tokens = 0;
            std::int64_t avatars = 0;
            for (const auto& held : open) {
                tokens += held.value("tokens", std::int64_t{0});
                avatars += held.value("avatars", std::int64_t{0});
            }
            if (tokens != current.balance[2] || avatars != current.balance[5]) {
                problem(user, "open reservations hold " + std::to_string(tokens) + " tokens and " +
                                  std::to_string(avatars) + " avatars, the row " + std::to_string(current.balance[2]) +
                                  " and " + std::to_string(current.balance[5]));
            }
        }
        // Closed periods: nothing reserved (open reservations moved on), and
        // the numbers of the receipt that ended them. A row from before the
        // journal (seq 0) has no receipt of its own to compare with.
        for (std::size_t p = 0; p + 1 < rows.size(); ++p) {
            const detail::Period& closed = rows[p];
            const std::string at = " (period from " + std::to_string(closed.start) + ")";
            if (closed.balance[2] != 0 || closed.balance[5] != 0) {
                problem(user, "a closed period still holds " + std::to_string(closed.balance[2]) + " tokens and " +
                                  std::to_string(closed.balance[5]) + " avatars reserved" + at);
            }
            if (closed.seq == 0) continue;
            if (closed.seq < 1 || closed.seq > static_cast<std::int64_t>(receipts.size())) {
                problem(user, "a closed period's seq " + std::to_string(closed.seq) + " has no receipt" + at);
                continue;
            }
            const detail::Receipt& ended = receipts[static_cast<std::size_t>(closed.seq - 1)];
            if (ended.seq != closed.seq || ended.claims.is_null()) continue;  // reported above
            const std::string diff = differences(ended.claims, closed, false);
            if (!diff.empty()) problem(user, "a closed period and the receipt that ended it differ in" + diff + at);
        }
    }

    // I1 per user-period, and every charge in a period that exists.
    std::map<std::pair<std::string, std::int64_t>, std::pair<std::int64_t, std::int64_t>> sums;
    std::map<std::string, std::int64_t> charges_of;
    for (const auto& row : db.rows("SELECT user_id, period_start, SUM(charged_tokens), SUM(avatars), COUNT(*) "
                                   "FROM token_usage GROUP BY user_id, period_start")) {
        sums[{row.at(0).value_or(""), integer(row.at(1))}] = {integer(row.at(2)), integer(row.at(3))};
        charges_of[row.at(0).value_or("")] += integer(row.at(4));
        report.charges += integer(row.at(4));
    }
    for (const auto& [user, rows] : periods) {
        for (const detail::Period& period : rows) {
            const auto found = sums.find({user, period.start});
            const std::pair<std::int64_t, std::int64_t> charged = found == sums.end() ? std::pair<std::int64_t, std::int64_t>{0, 0} : found->second;
            if (found != sums.end()) sums.erase(found);
            const std::string at = " (period from " + std::to_string(period.start) + ")";
            if (period.balance[1] != charged.first) {
                problem(user, "I1: tokens_used " + std::to_string(period.balance[1]) + " but the charges sum to " +
                                  std::to_string(charged.first) + at);
            }
            if (period.balance[4] != charged.second) {
                problem(user, "I1: avatars_used " + std::to_string(period.balance[4]) + " but the charges sum to " +
                                  std::to_string(charged.second) + at);
            }
        }
    }
    for (const auto& [where, charged] : sums) {
        problem(where.first, "charges of a period with no usage_limits row (period from " + std::to_string(where.second) + ")");
    }
    // One charge per commit and record in the journal, and no other.
    std::map<std::string, std::int64_t> all_users = journal_charges;
    for (const auto& entry : charges_of) all_users[entry.first] += 0;
    for (const auto& entry : all_users) {
        const std::int64_t changes = journal_charges.count(entry.first) ? journal_charges[entry.first] : 0;
        const std::int64_t rows = charges_of.count(entry.first) ? charges_of[entry.first] : 0;
        if (changes != rows) {
            problem(entry.first, std::to_string(changes) + " commits and records in the journal, " + std::to_string(rows) +
                                     " token_usage rows");
        }
    }
    return report;
}

// The same for a server whose signing key file is `jwk_file`.
inline Report audit_database(const std::string& db_url, const std::string& jwk_file) {
    return audit_database(db_url, public_key_of_jwk_file(jwk_file));
}

}  // namespace tokenmeter::test::chain_audit
