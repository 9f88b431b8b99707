// The dated price book at the server (DESIGN.md §3): GET /v1/catalog shows
// the version in force and when the next starts; a reload (SIGHUP, or the
// App's reload in-process) applies to new reservations only, and every
// reservation open across a price change settles at its own version, with
// the version named by its charge and its receipts.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "server_process.hpp"
#include "test_server.hpp"
#include "tokenmeter/receipt.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::TestServer;

constexpr std::int64_t t0 = 1764000000;  // 2025-11-24T16:00:00Z, the test server's clock

json version(const std::string& id, const std::string& effective_from, const std::string& multiplier) {
    json v = json::parse(std::string(default_catalog_json()));
    v["version"] = id;
    if (!effective_from.empty()) v["effective_from"] = effective_from;
    for (json& model : v["models"]) {
        if (model["id"] == "gpt-4o") model["multiplier"] = multiplier;
    }
    return v;
}

std::string book(std::initializer_list<json> versions) { return json{{"versions", json(versions)}}.dump(); }

json catalog_of(int port) {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(5, 0);
    auto response = client.Get("/v1/catalog");
    return response && response->status == 200 ? json::parse(response->body) : json();
}

json authorize(TestServer& server, const std::string& user) {
    auto response = server.post("/v1/usage/authorize", {{"user_id", user}, {"operation", "chat"}, {"model", "gpt-4o"},
                                                        {"input_tokens", 1000}, {"max_output_tokens", 100}});
    EXPECT_TRUE(response && response->status == 200) << (response ? response->body : "no answer");
    return test::body_of(response);
}

json commit(TestServer& server, const json& reserved) {
    auto response = server.post("/v1/usage/commit", {{"reservation_id", reserved["reservation_id"]},
                                                     {"input_tokens", 1000}, {"output_tokens", 100}});
    EXPECT_TRUE(response && response->status == 200) << (response ? response->body : "no answer");
    return test::body_of(response);
}

std::string claimed_version(const json& reply) {
    auto claims = decode_receipt_claims(reply["usage"]["receipt"].get<std::string>());
    EXPECT_TRUE(claims.has_value());
    return claims ? claims->catalog_version : "";
}

void rewrite(const std::string& path, const std::string& text) {
    std::ofstream file(path, std::ios::trunc);
    file << text;
}

// The files `tokenmeter serve --config` needs in `dir`, with `catalog_text`
// as its catalog file (dir/catalog.json); returns the config file's path.
std::string write_process_files(const std::string& dir, const std::string& catalog_text) {
    (void)keys::generate_signing_key_file(dir + "/signing.jwk");
    rewrite(dir + "/catalog.json", catalog_text);
    const json config = {{"db", "sqlite:" + dir + "/ledger.db"},
                         {"jwt_secret", test::jwt_secret},
                         {"service_keys", {test::service_key}},
                         {"signing_key_file", dir + "/signing.jwk"},
                         {"catalog_file", dir + "/catalog.json"}};
    rewrite(dir + "/config.json", config.dump());
    return dir + "/config.json";
}

// POSTs as the service to a server process, each call with its own key.
class ServiceCalls {
public:
    json post(int port, const std::string& path, const json& body) {
        httplib::Client client("127.0.0.1", port);
        client.set_read_timeout(10, 0);
        const httplib::Headers headers = {{"Authorization", "Bearer " + test::service_key},
                                          {"Idempotency-Key", "price-book-" + std::to_string(++keys_)}};
        auto response = client.Post(path, headers, body.dump(), "application/json");
        EXPECT_TRUE(response && response->status == 200) << path << ": " << (response ? response->body : "no answer");
        return response ? json::parse(response->body) : json();
    }

private:
    int keys_ = 0;
};

TEST(PriceBookServer, AReservationOpenAcrossAPriceChangeSettlesAtItsOwnVersion) {
    test::TestServerOptions options;
    options.catalog_json = version("v1", "", "3").dump();
    options.reservation_ttl_seconds = 2 * 3600;  // open across the change, not expired
    TestServer server(options);
    const std::string file = server.dir() + "/catalog.json";
    EXPECT_EQ(catalog_of(server.port())["version"], "v1");
    EXPECT_FALSE(catalog_of(server.port()).contains("next"));

    const json before_reload = authorize(server, "ana");
    EXPECT_EQ(before_reload["charged_tokens"], 3 * 1100);
    EXPECT_EQ(claimed_version(before_reload), "v1");

    // v2 (gpt-4o at 4) from an hour from now.
    rewrite(file, book({version("v1", "", "3"), version("v2", "2025-11-24T17:00:00Z", "4")}));
    auto reloaded = server.app().reload_price_book();
    ASSERT_TRUE(reloaded.has_value()) << reloaded.error().message;
    EXPECT_EQ(*reloaded, "catalog version v1 in force; v2 from 2025-11-24T17:00:00Z");
    const json announced = catalog_of(server.port());
    EXPECT_EQ(announced["version"], "v1");
    EXPECT_EQ(announced["next"], (json{{"version", "v2"}, {"effective_from", "2025-11-24T17:00:00Z"}}));
    const json after_reload = authorize(server, "ana");  // v2 has not started: still v1
    EXPECT_EQ(after_reload["charged_tokens"], 3 * 1100);

    server.clock().set(t0 + 3600);
    const json served = catalog_of(server.port());
    EXPECT_EQ(served["version"], "v2");
    EXPECT_EQ(served["effective_from"], "2025-11-24T17:00:00Z");
    EXPECT_FALSE(served.contains("next"));
    const json after_start = authorize(server, "ana");
    EXPECT_EQ(after_start["charged_tokens"], 4 * 1100);
    EXPECT_EQ(claimed_version(after_start), "v2");

    // The same counts, all settled under v2: each at its own version.
    const json first = commit(server, before_reload);
    const json second = commit(server, after_reload);
    const json third = commit(server, after_start);
    EXPECT_EQ(first["event"]["charged_tokens"], 3300);
    EXPECT_EQ(first["event"]["multiplier"], "3");
    EXPECT_EQ(first["event"]["catalog_version"], "v1");
    EXPECT_EQ(claimed_version(first), "v1");
    EXPECT_EQ(second["event"]["charged_tokens"], 3300);
    EXPECT_EQ(second["event"]["catalog_version"], "v1");
    EXPECT_EQ(third["event"]["charged_tokens"], 4400);
    EXPECT_EQ(third["event"]["catalog_version"], "v2");
    EXPECT_EQ(claimed_version(third), "v2");
    const json usage = server.usage_of("ana");
    EXPECT_EQ(usage["tokens"]["used"], 3300 + 3300 + 4400);
    EXPECT_EQ(usage["tokens"]["reserved"], 0);

    // History is not re-priced: the events keep their versions.
    auto events = server.client().Get("/v1/me/usage/events", server.as_user("ana"));
    ASSERT_TRUE(events && events->status == 200) << (events ? events->body : "no answer");
    std::vector<std::string> versions;
    const json page = json::parse(events->body);
    for (const json& e : page["events"]) {
        versions.push_back(e["catalog_version"].get<std::string>());
        EXPECT_FALSE(e["late"].get<bool>());
    }
    EXPECT_EQ(versions, (std::vector<std::string>{"v2", "v1", "v1"}));
}

TEST(PriceBookServer, AReloadThatWouldRewriteHistoryOrIsBrokenChangesNothing) {
    test::TestServerOptions options;
    options.catalog_json = book({version("v1", "", "3"), version("v2", "2025-11-25T00:00:00Z", "4")});
    TestServer server(options);
    const std::string file = server.dir() + "/catalog.json";
    const std::string served = catalog_of(server.port()).dump();

    struct Case {
        std::string name, text, code;
    };
    const std::vector<Case> cases = {
        {"v1 (started) at another price", book({version("v1", "", "5"), version("v2", "2025-11-25T00:00:00Z", "4")}),
         "catalog_version_changed"},
        {"not JSON", "{\"versions\": [", "catalog_malformed"},
        {"out of order", book({version("v1", "", "3"), version("v2", "2025-11-25T00:00:00Z", "4"),
                               version("v3", "2025-11-24T00:00:00Z", "4")}),
         "catalog_invalid_value"},
        {"a version twice", book({version("v1", "", "3"), version("v1", "2025-11-25T00:00:00Z", "4")}),
         "catalog_duplicate_id"},
        {"nothing in force yet", book({version("v2", "2025-11-25T00:00:00Z", "4")}), "catalog_not_started"},
    };
    for (const Case& c : cases) {
        rewrite(file, c.text);
        auto reloaded = server.app().reload_price_book();
        ASSERT_FALSE(reloaded.has_value()) << c.name;
        EXPECT_EQ(reloaded.error().code, c.code) << c.name << ": " << reloaded.error().message;
        EXPECT_NE(reloaded.error().message.find(file), std::string::npos) << c.name;
        EXPECT_EQ(catalog_of(server.port()).dump(), served) << c.name;
        EXPECT_EQ(authorize(server, "bob")["charged_tokens"], 3 * 1100) << c.name;
    }
    // A version not yet started may still change (or go): that is scheduling.
    rewrite(file, book({version("v1", "", "3"), version("v2b", "2025-11-26T00:00:00Z", "6")}));
    auto rescheduled = server.app().reload_price_book();
    ASSERT_TRUE(rescheduled.has_value()) << rescheduled.error().message;
    EXPECT_EQ(catalog_of(server.port())["next"]["version"], "v2b");
}

TEST(PriceBookServer, TheBuiltInCatalogHasNoFileToReload) {
    TestServer server;
    auto reloaded = server.app().reload_price_book();
    ASSERT_FALSE(reloaded.has_value());
    EXPECT_EQ(reloaded.error().code, "catalog_not_reloadable");
}

TEST(PriceBookServer, AFileWithNothingInForceYetStopsStartUp) {
    test::TestServerOptions options;
    options.catalog_json = version("v9", "2030-01-01T00:00:00Z", "3").dump();
    try {
        TestServer server(options);
        ADD_FAILURE() << "the server started without prices in force";
    } catch (const std::runtime_error& error) {
        EXPECT_NE(std::string(error.what()).find("no version is in force yet: the first, \"v9\", starts at 2030-01-01T00:00:00Z"), std::string::npos)
            << error.what();
    }
}

// The operator's way: rewrite the file, send SIGHUP to `tokenmeter serve`.
TEST(PriceBookServer, SighupReloadsTheFileAndOpenReservationsKeepTheirPrices) {
    const std::string dir = test::make_temp_dir();
    const std::string catalog = dir + "/catalog.json";
    test::ServerProcess server(write_process_files(dir, version("v1", "", "3").dump()));
    ServiceCalls calls;
    auto post = [&](const std::string& path, const json& body) { return calls.post(server.port(), path, body); };
    const json authorize_body = {{"user_id", "cy"}, {"operation", "chat"}, {"model", "gpt-4o"},
                                 {"input_tokens", 1000}, {"max_output_tokens", 100}};
    const json open = post("/v1/usage/authorize", authorize_body);

    // A broken file first: the server keeps serving v1.
    rewrite(catalog, "{\"versions\": 7}");
    ASSERT_EQ(::kill(server.pid(), SIGHUP), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(catalog_of(server.port())["version"], "v1");

    // v2 in force from the past: at once, for new work only.
    rewrite(catalog, book({version("v1", "", "3"), version("v2", "2020-01-01T00:00:00Z", "4")}));
    ASSERT_EQ(::kill(server.pid(), SIGHUP), 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (catalog_of(server.port())["version"] != "v2" && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_EQ(catalog_of(server.port())["version"], "v2");
    const json fresh = post("/v1/usage/authorize", authorize_body);
    EXPECT_EQ(fresh["charged_tokens"], 4 * 1100);
    const json settled_old = post("/v1/usage/commit", {{"reservation_id", open["reservation_id"]},
                                                       {"input_tokens", 1000}, {"output_tokens", 100}});
    const json settled_new = post("/v1/usage/commit", {{"reservation_id", fresh["reservation_id"]},
                                                       {"input_tokens", 1000}, {"output_tokens", 100}});
    EXPECT_EQ(settled_old["event"]["charged_tokens"], 3300);
    EXPECT_EQ(settled_old["event"]["catalog_version"], "v1");
    EXPECT_EQ(settled_new["event"]["charged_tokens"], 4400);
    EXPECT_EQ(settled_new["event"]["catalog_version"], "v2");
    EXPECT_EQ(server.terminate(), 0);
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}

// A reservation carries its version's prices: a server killed and started
// again on a file without that version at all still settles it as made.
TEST(PriceBookServer, AReservationKeepsItsPricesAcrossARestartOnANewFile) {
    const std::string dir = test::make_temp_dir();
    json v1 = version("v1", "", "3");
    for (json& model : v1["models"]) {
        if (model["id"] == "gpt-4o") model["weights"] = {{"cached_input", "1/2"}, {"output", "2"}};
    }
    const std::string config = write_process_files(dir, v1.dump());
    ServiceCalls calls;
    auto post = [&](int port, const std::string& path, const json& body) { return calls.post(port, path, body); };
    std::string reservation;
    {
        test::ServerProcess first(config);
        const json open = post(first.port(), "/v1/usage/authorize",
                               {{"user_id", "dee"}, {"operation", "chat"}, {"model", "gpt-4o"},
                                {"input_tokens", 1000}, {"max_output_tokens", 100}});
        EXPECT_EQ(open["charged_tokens"], 3 * (1000 + 2 * 100));
        reservation = open["reservation_id"].get<std::string>();
        first.kill_hard();
    }
    rewrite(dir + "/catalog.json", version("v2", "", "4").dump());  // v1 is gone; gpt-4o unweighted at 4
    test::ServerProcess second(config);
    EXPECT_EQ(catalog_of(second.port())["version"], "v2");
    const json settled = post(second.port(), "/v1/usage/commit",
                              {{"reservation_id", reservation}, {"input_tokens", 1000},
                               {"cached_input_tokens", 400}, {"output_tokens", 100}});
    // v1's terms: (600 + 400 × 1/2 + 100 × 2) × 3, not (1000 + 100) × 4.
    EXPECT_EQ(settled["event"]["charged_tokens"], (600 + 200 + 200) * 3);
    EXPECT_EQ(settled["event"]["catalog_version"], "v1");
    EXPECT_EQ(second.terminate(), 0);
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}

}  // namespace
}  // namespace tokenmeter
