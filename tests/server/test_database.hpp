// Which database a test server runs on. By default a SQLite file in the
// test's temporary directory; with TM_TEST_POSTGRES_URL_FILE set (ctest's
// postgres.* registration of the server suite), a fresh database on the
// PostgreSQL server whose URL that file holds, dropped at the end, so every
// test starts from an empty ledger on either backend.
#pragma once

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace tokenmeter::test {

// The URL of the PostgreSQL server the suite runs against, or "" for SQLite.
inline std::string postgres_server_url() {
    const char* file = std::getenv("TM_TEST_POSTGRES_URL_FILE");
    if (file == nullptr || *file == '\0') return "";
    std::ifstream in(file);
    std::string url;
    std::getline(in, url);
    if (url.empty()) throw std::runtime_error(std::string("no PostgreSQL URL in ") + file);
    return url;
}

// `url` with its database name replaced (postgres://user@host:port/NAME).
inline std::string with_database(const std::string& url, const std::string& name) {
    const auto slash = url.find('/', url.find("://") + 3);
    return (slash == std::string::npos ? url : url.substr(0, slash)) + "/" + name;
}

// Runs statements on the server's maintenance database; throws on failure.
inline void run_admin_sql(const std::string& server_url, const std::string& sql) {
    PGconn* connection = PQconnectdb(server_url.c_str());
    std::string failure;
    if (PQstatus(connection) != CONNECTION_OK) {
        failure = PQerrorMessage(connection);
    } else {
        PGresult* result = PQexec(connection, sql.c_str());
        if (PQresultStatus(result) != PGRES_COMMAND_OK && PQresultStatus(result) != PGRES_TUPLES_OK) {
            failure = PQresultErrorMessage(result);
        }
        PQclear(result);
    }
    PQfinish(connection);
    if (!failure.empty()) throw std::runtime_error("PostgreSQL (" + sql + "): " + failure);
}

// The rows a query returns, as text ("" for NULL); throws on failure.
inline std::vector<std::vector<std::string>> query_rows(const std::string& url, const std::string& sql) {
    PGconn* connection = PQconnectdb(url.c_str());
    if (PQstatus(connection) != CONNECTION_OK) {
        const std::string failure = PQerrorMessage(connection);
        PQfinish(connection);
        throw std::runtime_error("PostgreSQL: " + failure);
    }
    PGresult* result = PQexec(connection, sql.c_str());
    if (PQresultStatus(result) != PGRES_TUPLES_OK && PQresultStatus(result) != PGRES_COMMAND_OK) {
        const std::string failure = PQresultErrorMessage(result);
        PQclear(result);
        PQfinish(connection);
        throw std::runtime_error("PostgreSQL (" + sql + "): " + failure);
    }
    std::vector<std::vector<std::string>> rows;
    for (int r = 0; r < PQntuples(result); ++r) {
        rows.emplace_back();
        for (int c = 0; c < PQnfields(result); ++c) rows.back().emplace_back(PQgetvalue(result, r, c));
    }
    PQclear(result);
    PQfinish(connection);
    return rows;
}

// A fresh, empty PostgreSQL database for one test, dropped on destruction.
class ScratchDatabase {
public:
    explicit ScratchDatabase(std::string server_url) : server_url_(std::move(server_url)) {
        static std::atomic<int> counter{0};
        name_ = "tm_test_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
        run_admin_sql(server_url_, "CREATE DATABASE " + name_);
    }
    ~ScratchDatabase() {
        try {
            run_admin_sql(server_url_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
        } catch (const std::exception&) {
            // The server may already be gone at the end of a run; its data
            // directory is removed with it.
        }
    }
    ScratchDatabase(const ScratchDatabase&) = delete;
    ScratchDatabase& operator=(const ScratchDatabase&) = delete;

    std::string url() const { return with_database(server_url_, name_); }
    const std::string& name() const { return name_; }

private:
    std::string server_url_;
    std::string name_;
};

}  // namespace tokenmeter::test
