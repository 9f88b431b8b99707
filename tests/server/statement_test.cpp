// GET /v1/me/statement over real HTTP, and `tokenmeter verify` (the real
// binary) on what it serves: a user's charges, as JSON and CSV, verify
// accepting the statement and refusing a tampered one with its code, periods
// past and current, and users reading only their own.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "test_server.hpp"
#include "tokenmeter/receipt.hpp"
#include "tokenmeter/statement.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::body_of;
using test::TestServer;

struct CliRun {
    int status = -1;
    std::string output;  // stdout and stderr
};

// Runs the real `tokenmeter` with `arguments` (already quoted).
CliRun tokenmeter(const std::string& arguments) {
    CliRun run;
    const std::string command = std::string(TM_TOKENMETER_BINARY) + " " + arguments + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) return run;
    char buffer[4096];
    std::size_t got = 0;
    while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) run.output.append(buffer, got);
    const int status = ::pclose(pipe);
    run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
}

std::string write_file(const TestServer& server, const std::string& name, const std::string& text) {
    const std::string path = server.dir() + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
}

std::vector<VerificationKey> served_keys(TestServer& server) {
    auto response = server.client().Get("/v1/keys");
    EXPECT_TRUE(response && response->status == 200);
    return parse_jwks(response->body).value();
}

// A chat authorized and committed, a release (no charge), an avatar recorded.
void make_charges(TestServer& server, const std::string& user) {
    auto reserved = body_of(server.post("/v1/usage/authorize", {{"user_id", user}, {"operation", "chat"},
                                                               {"model", "gpt-4o"}, {"input_tokens", 1000},
                                                               {"max_output_tokens", 200}}));
    ASSERT_TRUE(reserved.contains("reservation_id")) << reserved.dump();
    auto committed = server.post("/v1/usage/commit", {{"reservation_id", reserved["reservation_id"]},
                                                      {"input_tokens", 1000}, {"output_tokens", 100}});
    ASSERT_TRUE(committed && committed->status == 200) << (committed ? committed->body : "no answer");
    auto released = body_of(server.post("/v1/usage/authorize", {{"user_id", user}, {"operation", "chat"},
                                                               {"model", "gpt-4o-mini"}, {"input_tokens", 10},
                                                               {"max_output_tokens", 10}}));
    ASSERT_EQ(server.post("/v1/usage/release", {{"reservation_id", released["reservation_id"]}})->status, 200);
    ASSERT_EQ(server.post("/v1/usage/record", {{"user_id", user}, {"operation", "avatar"}})->status, 200);
}

json statement_of(TestServer& server, const std::string& user, const std::string& query = "") {
    auto response = server.client().Get("/v1/me/statement" + query, server.as_user(user));
    EXPECT_TRUE(response);
    if (!response) return nullptr;
    EXPECT_EQ(response->status, 200) << response->body;
    return body_of(response);
}

TEST(Statement, DownloadedAsJsonAndCsvAndVerifiedByTheBinary) {
    TestServer server;
    make_charges(server, "sam");
    make_charges(server, "tom");  // someone else's charges stay out of sam's statement

    auto response = server.client().Get("/v1/me/statement", server.as_user("sam"));
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200) << response->body;
    EXPECT_EQ(response->get_header_value("Content-Type"), "application/json");
    EXPECT_EQ(response->get_header_value("Content-Disposition"),
              "attachment; filename=\"tokenmeter-statement-2025-11-24.json\"");
    const json statement = body_of(response);
    EXPECT_EQ(statement["format"], "tokenmeter-statement/1");
    EXPECT_EQ(statement["user_id"], "sam");
    EXPECT_EQ(statement["plan"], "free");
    EXPECT_EQ(statement["period"]["start"], "2025-11-24T00:00:00Z");
    EXPECT_EQ(statement["period"]["end"], "2025-12-24T00:00:00Z");
    EXPECT_TRUE(statement["anchor"].is_null());  // the first period: its first receipt is seq 1
    // period_open, authorize, commit, authorize, release, record.
    ASSERT_EQ(statement["receipts"].size(), 6U);
    EXPECT_EQ(statement["receipts"], json(server.app().store().read_receipts("sam", 1, 100)));
    ASSERT_EQ(statement["charges"].size(), 2U);
    EXPECT_EQ(statement["charges"][0]["charged_tokens"], 3300);
    EXPECT_EQ(statement["charges"][0]["operation"], "chat");
    EXPECT_EQ(statement["charges"][0]["model"], "gpt-4o");
    EXPECT_EQ(statement["charges"][0]["seq"], 3);
    EXPECT_EQ(statement["charges"][1]["operation"], "avatar");
    EXPECT_EQ(statement["charges"][1]["avatars"], 1);
    EXPECT_EQ(statement["charges"][1]["seq"], 6);
    EXPECT_EQ(statement["totals"], json({{"tokens_used", 13300}, {"avatars_used", 1}}));
    EXPECT_EQ(statement["keys"]["keys"][0]["kid"], server.app().signing_key().kid());

    // The same core function the binary runs, in-process.
    auto summary = verify_statement(response->body, served_keys(server));
    ASSERT_TRUE(summary.has_value()) << summary.error().code << ": " << summary.error().message;
    EXPECT_EQ(summary->tokens_used, 13300);

    // The real binary, with the embedded keys and with keys pinned from /v1/keys.
    const std::string file = write_file(server, "statement.json", response->body);
    CliRun embedded = tokenmeter("verify '" + file + "'");
    EXPECT_EQ(embedded.status, 0) << embedded.output;
    EXPECT_NE(embedded.output.find("verified: user sam"), std::string::npos) << embedded.output;
    EXPECT_NE(embedded.output.find("2 charges adding up to 13300 tokens and 1 avatars"), std::string::npos) << embedded.output;
    EXPECT_NE(embedded.output.find("not pinned"), std::string::npos) << embedded.output;
    const std::string keys = write_file(server, "keys.json", server.client().Get("/v1/keys")->body);
    CliRun pinned = tokenmeter("verify '" + file + "' --keys '" + keys + "'");
    EXPECT_EQ(pinned.status, 0) << pinned.output;
    EXPECT_NE(pinned.output.find("pinned from"), std::string::npos) << pinned.output;

    // CSV: one row per charge with its receipt's seq and the receipt itself.
    for (const auto& [query, headers] :
         {std::pair<std::string, httplib::Headers>{"?format=csv", server.as_user("sam")},
          {"", [&] { auto h = server.as_user("sam"); h.emplace("Accept", "text/csv"); return h; }()}}) {
        auto csv = server.client().Get("/v1/me/statement" + query, headers);
        ASSERT_TRUE(csv);
        ASSERT_EQ(csv->status, 200) << csv->body;
        EXPECT_EQ(csv->get_header_value("Content-Type"), "text/csv; charset=utf-8");
        std::vector<std::string> lines;
        for (std::size_t at = 0; at < csv->body.size();) {
            const std::size_t end = csv->body.find("\r\n", at);
            ASSERT_NE(end, std::string::npos);
            lines.push_back(csv->body.substr(at, end - at));
            at = end + 2;
        }
        ASSERT_EQ(lines.size(), 3U) << csv->body;
        EXPECT_EQ(lines[0],
                  "user_id,period_start,event_id,created_at,operation,model,input_tokens,output_tokens,charged_tokens,"
                  "avatars,reservation_id,late,receipt_seq,receipt");
        EXPECT_EQ(lines[1].rfind("sam,2025-11-24T00:00:00Z," + statement["charges"][0]["id"].get<std::string>(), 0), 0U);
        EXPECT_NE(lines[1].find(",gpt-4o,1000,100,3300,0,"), std::string::npos) << lines[1];
        EXPECT_NE(lines[1].find(",3," + statement["receipts"][2].get<std::string>()), std::string::npos) << lines[1];
        EXPECT_NE(lines[2].find(",6," + statement["receipts"][5].get<std::string>()), std::string::npos) << lines[2];
        // verify reads JSON only, and says so.
        const std::string csv_file = write_file(server, "statement.csv", csv->body);
        CliRun refused = tokenmeter("verify '" + csv_file + "'");
        EXPECT_EQ(refused.status, 1) << refused.output;
        EXPECT_NE(refused.output.find("malformed"), std::string::npos) << refused.output;
    }

    // A charge left out of the statement: refused with charge_mismatch.
    json missing = statement;
    missing["charges"].erase(1);
    CliRun charge = tokenmeter("verify '" + write_file(server, "missing.json", missing.dump()) + "' --keys '" + keys + "'");
    EXPECT_EQ(charge.status, 1) << charge.output;
    EXPECT_NE(charge.output.find("refused: charge_mismatch"), std::string::npos) << charge.output;
    // A charge made smaller, the totals to match: still refused.
    json smaller = statement;
    smaller["charges"][0]["charged_tokens"] = 3000;
    smaller["totals"]["tokens_used"] = 13000;
    CliRun less = tokenmeter("verify '" + write_file(server, "smaller.json", smaller.dump()) + "'");
    EXPECT_EQ(less.status, 1) << less.output;
    EXPECT_NE(less.output.find("refused: charge_mismatch"), std::string::npos) << less.output;
    // A byte of a signature changed.
    json forged = statement;
    std::string jws = forged["receipts"][2].get<std::string>();
    jws[jws.size() - 5] = jws[jws.size() - 5] == 'A' ? 'B' : 'A';
    forged["receipts"][2] = jws;
    CliRun signature = tokenmeter("verify '" + write_file(server, "forged.json", forged.dump()) + "'");
    EXPECT_EQ(signature.status, 1) << signature.output;
    EXPECT_NE(signature.output.find("refused: bad_signature"), std::string::npos) << signature.output;
    // A receipt left out.
    json gap = statement;
    gap["receipts"].erase(3);
    CliRun chain = tokenmeter("verify '" + write_file(server, "gap.json", gap.dump()) + "'");
    EXPECT_EQ(chain.status, 1) << chain.output;
    EXPECT_NE(chain.output.find("refused: broken_chain"), std::string::npos) << chain.output;
    // Tom's receipt in sam's statement.
    json spliced = statement;
    spliced["receipts"][4] = server.app().store().read_receipts("tom", 5, 1).at(0);
    CliRun user = tokenmeter("verify '" + write_file(server, "spliced.json", spliced.dump()) + "'");
    EXPECT_EQ(user.status, 1) << user.output;
    EXPECT_NE(user.output.find("refused: wrong_user"), std::string::npos) << user.output;
    // Keys pinned that are not the server's: the real statement is refused.
    const SigningKey stranger = SigningKey::from_seed(Seed{});
    const std::string other_keys =
        write_file(server, "other-keys.json", jwks_json({{stranger.kid(), stranger.public_key()}}));
    CliRun wrong_key = tokenmeter("verify '" + file + "' --keys '" + other_keys + "'");
    EXPECT_EQ(wrong_key.status, 1) << wrong_key.output;
    EXPECT_NE(wrong_key.output.find("refused: bad_signature"), std::string::npos) << wrong_key.output;

    // Usage errors exit 2.
    EXPECT_EQ(tokenmeter("verify").status, 2);
    EXPECT_EQ(tokenmeter("verify '" + file + "' --keys").status, 2);
    EXPECT_EQ(tokenmeter("verify '" + server.dir() + "/no-such-file.json'").status, 2);
    CliRun help = tokenmeter("verify --help");
    EXPECT_EQ(help.status, 0);
    EXPECT_NE(help.output.find("CSV form is for spreadsheets"), std::string::npos) << help.output;
}

TEST(Statement, PastPeriodsByTheirStartAndTheCurrentOneAnchored) {
    TestServer server;
    make_charges(server, "pia");
    server.clock().advance(31 * 24 * 3600);  // into the period from 2025-12-24
    ASSERT_EQ(server.post("/v1/usage/record", {{"user_id", "pia"}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                                               {"input_tokens", 40}, {"output_tokens", 2}})
                  ->status,
              200);
    const auto keys = served_keys(server);

    const json current = statement_of(server, "pia");
    EXPECT_EQ(current["period"]["start"], "2025-12-24T00:00:00Z");
    ASSERT_TRUE(current["anchor"].is_string());  // the last receipt of the period before
    EXPECT_EQ(current["anchor"], server.app().store().read_receipts("pia", 6, 1).at(0));
    ASSERT_EQ(current["charges"].size(), 1U);
    EXPECT_EQ(current["charges"][0]["charged_tokens"], 42);
    auto summary = verify_statement(current.dump(), keys);
    ASSERT_TRUE(summary.has_value()) << summary.error().code << ": " << summary.error().message;
    EXPECT_TRUE(summary->anchored);
    EXPECT_EQ(summary->first_seq, 7);
    EXPECT_EQ(statement_of(server, "pia", "?period=current"), current);
    EXPECT_EQ(statement_of(server, "pia", "?period=2025-12-24"), current);

    for (const std::string period : {"2025-11-24", "2025-11-24T00:00:00Z", "2025-11-24T01:00:00%2B01:00"}) {
        const json past = statement_of(server, "pia", "?period=" + period);
        EXPECT_EQ(past["period"]["start"], "2025-11-24T00:00:00Z") << period;
        EXPECT_TRUE(past["anchor"].is_null());
        EXPECT_EQ(past["receipts"].size(), 6U);
        EXPECT_EQ(past["totals"]["tokens_used"], 13300);
        auto verified = verify_statement(past.dump(), keys);
        EXPECT_TRUE(verified.has_value()) << verified.error().code << ": " << verified.error().message;
    }

    // No period of pia's starts there: 404; not a period: 400.
    for (const std::string period : {"2025-11-25", "2025-10-24", "2026-01-24", "2025-11-24T00:00:01Z"}) {
        auto response = server.client().Get("/v1/me/statement?period=" + period, server.as_user("pia"));
        ASSERT_TRUE(response);
        EXPECT_EQ(response->status, 404) << period;
        EXPECT_EQ(body_of(response)["error"]["code"], "period_not_found") << period;
    }
    for (const std::string query : {"?period=last-month", "?period=2025-13-01", "?format=xml"}) {
        auto response = server.client().Get("/v1/me/statement" + query, server.as_user("pia"));
        ASSERT_TRUE(response);
        EXPECT_EQ(response->status, 400) << query;
        EXPECT_EQ(body_of(response)["error"]["code"], "invalid_value") << query;
    }
}

TEST(Statement, EachUserReadsOnlyTheirOwn) {
    TestServer server;
    make_charges(server, "ann");
    server.clock().advance(24 * 3600);
    // bob's first use is a day later: his period starts 2025-11-25.
    const json bobs = statement_of(server, "bob", "?user_id=ann");  // the token says who, not the query
    EXPECT_EQ(bobs["user_id"], "bob");
    EXPECT_EQ(bobs["charges"].size(), 0U);
    EXPECT_EQ(bobs["receipts"].size(), 1U);
    EXPECT_TRUE(verify_statement(bobs.dump(), served_keys(server)).has_value());
    // ann's period is not bob's.
    auto other = server.client().Get("/v1/me/statement?period=2025-11-24", server.as_user("bob"));
    ASSERT_TRUE(other);
    EXPECT_EQ(other->status, 404);
    EXPECT_EQ(other->body.find("ann"), std::string::npos);
    // A user never seen asking for a past period creates nothing.
    auto never = server.client().Get("/v1/me/statement?period=2025-11-24", server.as_user("nobody"));
    ASSERT_TRUE(never);
    EXPECT_EQ(never->status, 404);
    EXPECT_TRUE(server.app().store().read_receipts("nobody", 1, 10).empty());
    // No user token: 401; the service key is not a user.
    auto anonymous = server.client().Get("/v1/me/statement");
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 401);
    auto service = server.client().Get("/v1/me/statement", server.as_service());
    ASSERT_TRUE(service);
    EXPECT_NE(service->status, 200);
}

}  // namespace
}  // namespace tokenmeter
