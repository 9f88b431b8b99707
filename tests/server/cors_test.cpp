// Browsers on other origins (CORS, issue 13): the decision as a table
// (CorsPolicy), origins checked at config load (CorsConfig), and a real
// server answering preflights, replies, errors, 429s and the usage stream
// over HTTP on loopback (Cors).
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "http/cors.hpp"
#include "raw_connection.hpp"
#include "test_server.hpp"

namespace tokenmeter {
namespace {

using http::CorsDecision;
using http::CorsPolicy;
using http::decide_cors;
using nlohmann::json;
using test::TestServer;

std::string header_in(const http::HeaderList& headers, const std::string& name) {
    for (const auto& [key, value] : headers) {
        if (key == name) return value;
    }
    return "";
}

bool has_access_control(const http::HeaderList& headers) {
    for (const auto& header : headers) {
        if (header.first.rfind("Access-Control-", 0) == 0) return true;
    }
    return false;
}

// --- The decision, as a pure function --------------------------------------

TEST(CorsPolicy, OffAddsNothingAndAnswersNoPreflight) {
    const CorsPolicy off;
    for (const char* method : {"GET", "POST", "OPTIONS"}) {
        const CorsDecision decision = decide_cors(off, "https://app.example.com", method, true);
        EXPECT_FALSE(decision.preflight) << method;
        EXPECT_TRUE(decision.headers.empty()) << method;
    }
}

TEST(CorsPolicy, DecisionTable) {
    const CorsPolicy listed{{"https://app.example.com", "http://localhost:5173"}};
    const CorsPolicy any{{"*"}};
    struct Case {
        const char* name;
        const CorsPolicy& policy;
        const char* origin;
        const char* method;
        bool requests_method;
        bool preflight;
        int status;
        const char* allow_origin;  // "" when none
    };
    const Case cases[] = {
        {"listed preflight", listed, "https://app.example.com", "OPTIONS", true, true, 204, "https://app.example.com"},
        {"second listed preflight", listed, "http://localhost:5173", "OPTIONS", true, true, 204, "http://localhost:5173"},
        {"listed GET", listed, "https://app.example.com", "GET", false, false, 0, "https://app.example.com"},
        {"listed POST", listed, "https://app.example.com", "POST", false, false, 0, "https://app.example.com"},
        {"unlisted preflight", listed, "https://evil.example", "OPTIONS", true, true, 403, ""},
        {"unlisted GET", listed, "https://evil.example", "GET", false, false, 0, ""},
        {"other port", listed, "https://app.example.com:8443", "GET", false, false, 0, ""},
        {"other scheme", listed, "http://app.example.com", "GET", false, false, 0, ""},
        {"suffix of a listed one", listed, "https://app.example.com.evil.example", "GET", false, false, 0, ""},
        {"null origin", listed, "null", "GET", false, false, 0, ""},
        {"no origin", listed, "", "GET", false, false, 0, ""},
        {"OPTIONS without request method", listed, "https://app.example.com", "OPTIONS", false, false, 0,
         "https://app.example.com"},
        {"OPTIONS without origin", listed, "", "OPTIONS", true, false, 0, ""},
        {"any: preflight", any, "https://whoever.example", "OPTIONS", true, true, 204, "*"},
        {"any: GET", any, "https://whoever.example", "GET", false, false, 0, "*"},
        {"any: no origin", any, "", "GET", false, false, 0, ""},
    };
    for (const Case& c : cases) {
        const CorsDecision decision = decide_cors(c.policy, c.origin, c.method, c.requests_method);
        EXPECT_EQ(decision.preflight, c.preflight) << c.name;
        EXPECT_EQ(decision.status, c.status) << c.name;
        EXPECT_EQ(header_in(decision.headers, "Access-Control-Allow-Origin"), c.allow_origin) << c.name;
        // With CORS on, every answer says it depends on the Origin.
        EXPECT_EQ(header_in(decision.headers, "Vary"), "Origin") << c.name;
        // Never credentials: the API's credentials are bearer headers.
        EXPECT_EQ(header_in(decision.headers, "Access-Control-Allow-Credentials"), "") << c.name;
        if (std::string_view(c.allow_origin).empty()) {
            EXPECT_FALSE(has_access_control(decision.headers)) << c.name;
        } else if (c.preflight) {
            EXPECT_EQ(header_in(decision.headers, "Access-Control-Allow-Methods"), "GET, POST") << c.name;
            EXPECT_EQ(header_in(decision.headers, "Access-Control-Allow-Headers"),
                      "Authorization, Content-Type, Idempotency-Key")
                << c.name;
            EXPECT_EQ(header_in(decision.headers, "Access-Control-Max-Age"), "7200") << c.name;
        } else {
            EXPECT_EQ(header_in(decision.headers, "Access-Control-Expose-Headers"), http::exposed_headers) << c.name;
            EXPECT_EQ(header_in(decision.headers, "Access-Control-Allow-Methods"), "") << c.name;
        }
    }
}

// --- Origins checked at config load ------------------------------------------

TEST(CorsConfig, OriginsAreNormalizedAsBrowsersSendThem) {
    const std::pair<const char*, const char*> good[] = {
        {"https://app.example.com", "https://app.example.com"},
        {"HTTPS://App.Example.COM", "https://app.example.com"},
        {"https://app.example.com:443", "https://app.example.com"},
        {"http://app.example.com:80", "http://app.example.com"},
        {"https://app.example.com:8443", "https://app.example.com:8443"},
        {"http://localhost:5173", "http://localhost:5173"},
        {"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
        {"http://[::1]:8080", "http://[::1]:8080"},
        {"*", "*"},
    };
    for (const auto& [text, expected] : good) {
        auto origin = http::normalize_origin(text);
        ASSERT_TRUE(origin.has_value()) << text << ": " << origin.error().message;
        EXPECT_EQ(*origin, expected) << text;
    }
    const char* bad[] = {"app.example.com",          "ftp://app.example.com",   "https://",
                         "https://app.example.com/", "https://app.example.com/app", "https://app.example.com?x=1",
                         "https://app.example.com#x", "https://user@app.example.com", "https://app.example.com:0",
                         "https://app.example.com:99999", "https://app.example.com:", "https://app.example.com:08443",
                         "https://app..example.com", "https://app_example.com",  "null",
                         "https://*.example.com",    "**"};
    for (const char* text : bad) {
        auto origin = http::normalize_origin(text);
        ASSERT_FALSE(origin.has_value()) << text;
        EXPECT_EQ(origin.error().code, "config_invalid") << text;
        EXPECT_NE(origin.error().message.find("cors_origins"), std::string::npos) << origin.error().message;
    }
}

TEST(CorsConfig, FileAndEnvironmentSetTheOriginsAndRefuseBadOnes) {
    config::ServerConfig defaults;
    EXPECT_TRUE(defaults.cors_origins.empty());  // off by default

    config::ServerConfig from_file;
    ASSERT_FALSE(config::apply_file(from_file, R"({"cors_origins": ["https://a.example", "http://localhost:5173"]})"));
    EXPECT_EQ(from_file.cors_origins, (std::vector<std::string>{"https://a.example", "http://localhost:5173"}));
    config::ServerConfig from_text;
    ASSERT_FALSE(config::apply_file(from_text, R"({"cors_origins": "https://a.example, https://A.example:443"})"));
    EXPECT_EQ(from_text.cors_origins, (std::vector<std::string>{"https://a.example"}));

    config::ServerConfig from_environment;
    ASSERT_FALSE(config::apply_environment(from_environment, {{"TOKENMETER_CORS_ORIGINS", "*"}}));
    EXPECT_EQ(from_environment.cors_origins, (std::vector<std::string>{"*"}));
    // An empty value turns it off again.
    ASSERT_FALSE(config::apply_environment(from_environment, {{"TOKENMETER_CORS_ORIGINS", ""}}));
    EXPECT_TRUE(from_environment.cors_origins.empty());

    for (const char* wrong : {"https://a.example/", "*,https://a.example", "https://a.example,gopher://b.example"}) {
        config::ServerConfig config;
        auto error = config::apply_environment(config, {{"TOKENMETER_CORS_ORIGINS", wrong}});
        ASSERT_TRUE(error.has_value()) << wrong;
        EXPECT_EQ(error->code, "config_invalid");
        EXPECT_NE(error->message.find("TOKENMETER_CORS_ORIGINS"), std::string::npos) << error->message;
        EXPECT_TRUE(config.cors_origins.empty()) << wrong;
        auto file_error = config::apply_file(config, json{{"cors_origins", wrong}}.dump());
        ASSERT_TRUE(file_error.has_value()) << wrong;
        EXPECT_NE(file_error->message.find("cors_origins"), std::string::npos) << file_error->message;
    }
}

// --- A real server ---------------------------------------------------------------

const std::string app_origin = "https://app.example.com";

test::TestServerOptions with_origins(std::vector<std::string> origins) {
    test::TestServerOptions options;
    options.configure = [origins = std::move(origins)](config::ServerConfig& c) { c.cors_origins = origins; };
    return options;
}

bool any_access_control(const httplib::Headers& headers) {
    return std::any_of(headers.begin(), headers.end(), [](const auto& h) { return h.first.rfind("Access-Control-", 0) == 0; });
}

httplib::Headers preflight_from(const std::string& origin, const char* method = "POST") {
    return {{"Origin", origin},
            {"Access-Control-Request-Method", method},
            {"Access-Control-Request-Headers", "authorization,content-type,idempotency-key"}};
}

TEST(Cors, OffByDefaultNoHeadersAndOptionsIsNotRouted) {
    TestServer server;
    auto client = server.client();
    auto keys = client.Get("/v1/keys", {{"Origin", app_origin}});
    ASSERT_TRUE(keys);
    EXPECT_EQ(keys->status, 200);
    EXPECT_FALSE(any_access_control(keys->headers));
    EXPECT_FALSE(keys->has_header("Vary"));
    auto preflight = client.Options("/v1/me/usage", preflight_from(app_origin, "GET"));
    ASSERT_TRUE(preflight);
    EXPECT_EQ(preflight->status, 404);  // as before CORS existed: no route answers OPTIONS
    EXPECT_FALSE(any_access_control(preflight->headers));
}

TEST(Cors, AnAllowedOriginIsAnsweredPreflightRepliesAndErrors) {
    TestServer server(with_origins({app_origin, "http://localhost:5173"}));
    auto client = server.client();
    for (const char* path : {"/v1/me/usage", "/v1/usage/authorize", "/v1/anything/at/all"}) {
        auto preflight = client.Options(path, preflight_from(app_origin));
        ASSERT_TRUE(preflight) << path;
        EXPECT_EQ(preflight->status, 204) << path;
        EXPECT_EQ(preflight->body, "") << path;
        EXPECT_EQ(preflight->get_header_value("Access-Control-Allow-Origin"), app_origin) << path;
        EXPECT_EQ(preflight->get_header_value("Vary"), "Origin") << path;
        EXPECT_EQ(preflight->get_header_value("Access-Control-Allow-Methods"), "GET, POST") << path;
        EXPECT_EQ(preflight->get_header_value("Access-Control-Allow-Headers"), "Authorization, Content-Type, Idempotency-Key") << path;
        EXPECT_EQ(preflight->get_header_value("Access-Control-Max-Age"), "7200") << path;
        EXPECT_FALSE(preflight->has_header("Access-Control-Allow-Credentials")) << path;
    }

    auto expect_cors = [&](const httplib::Result& response, int status, const std::string& what) {
        ASSERT_TRUE(response) << what;
        EXPECT_EQ(response->status, status) << what;
        EXPECT_EQ(response->get_header_value("Access-Control-Allow-Origin"), app_origin) << what;
        EXPECT_EQ(response->get_header_value("Vary"), "Origin") << what;
        EXPECT_EQ(response->get_header_value("Access-Control-Expose-Headers"), http::exposed_headers) << what;
        EXPECT_FALSE(response->has_header("Access-Control-Allow-Credentials")) << what;
        EXPECT_EQ(response->get_header_value("X-Content-Type-Options"), "nosniff") << what;
    };
    httplib::Headers user = server.as_user("alice");
    user.emplace("Origin", app_origin);
    expect_cors(client.Get("/v1/me/usage", user), 200, "GET as a user");
    httplib::Headers service = server.as_service("cors-post-1");
    service.emplace("Origin", app_origin);
    const json authorize = {{"user_id", "alice"}, {"operation", "chat"}, {"model", "gpt-4o-mini"},
                            {"input_tokens", 10}, {"max_output_tokens", 10}};
    expect_cors(client.Post("/v1/usage/authorize", service, authorize.dump(), "application/json"), 200, "POST");
    // Errors: no credentials, a bad body, a missing route.
    auto unauthorized = client.Get("/v1/me/usage", {{"Origin", app_origin}});
    expect_cors(unauthorized, 401, "401");
    EXPECT_EQ(test::body_of(unauthorized)["error"]["code"], "credentials_missing");
    httplib::Headers service_again = server.as_service("cors-post-2");
    service_again.emplace("Origin", app_origin);
    expect_cors(client.Post("/v1/usage/authorize", service_again, "{", "application/json"), 400, "400");
    expect_cors(client.Get("/v1/nothing-here", {{"Origin", app_origin}}), 404, "404");
    // The second listed origin is answered with itself.
    auto second = client.Get("/v1/keys", {{"Origin", "http://localhost:5173"}});
    ASSERT_TRUE(second);
    EXPECT_EQ(second->get_header_value("Access-Control-Allow-Origin"), "http://localhost:5173");
    // No Origin (a server-side caller): no CORS headers, still Vary.
    auto plain = client.Get("/v1/keys");
    ASSERT_TRUE(plain);
    EXPECT_FALSE(any_access_control(plain->headers));
    EXPECT_EQ(plain->get_header_value("Vary"), "Origin");
}

TEST(Cors, ADisallowedOriginGetsNoCorsHeadersAndItsPreflightIs403) {
    TestServer server(with_origins({app_origin}));
    auto client = server.client();
    for (const char* origin : {"https://evil.example", "http://app.example.com", "https://app.example.com:444", "null"}) {
        auto preflight = client.Options("/v1/me/usage", preflight_from(origin, "GET"));
        ASSERT_TRUE(preflight) << origin;
        EXPECT_EQ(preflight->status, 403) << origin;
        EXPECT_EQ(test::body_of(preflight)["error"]["code"], "origin_not_allowed") << origin;
        EXPECT_FALSE(any_access_control(preflight->headers)) << origin;
        EXPECT_EQ(preflight->get_header_value("Vary"), "Origin") << origin;
        httplib::Headers user = server.as_user("mallory");
        user.emplace("Origin", origin);
        auto usage = client.Get("/v1/me/usage", user);
        ASSERT_TRUE(usage) << origin;
        EXPECT_EQ(usage->status, 200) << origin;  // the server answers; the browser withholds it from the page
        EXPECT_FALSE(any_access_control(usage->headers)) << origin;
    }
}

TEST(Cors, AWildcardAllowsAnyOriginAndNeverCredentials) {
    TestServer server(with_origins({"*"}));
    auto client = server.client();
    auto preflight = client.Options("/v1/usage/authorize", preflight_from("https://whoever.example"));
    ASSERT_TRUE(preflight);
    EXPECT_EQ(preflight->status, 204);
    EXPECT_EQ(preflight->get_header_value("Access-Control-Allow-Origin"), "*");
    EXPECT_FALSE(preflight->has_header("Access-Control-Allow-Credentials"));
    for (const char* path : {"/v1/keys", "/v1/me/usage", "/v1/nothing"}) {
        auto response = client.Get(path, {{"Origin", "https://whoever.example"}});
        ASSERT_TRUE(response) << path;
        EXPECT_EQ(response->get_header_value("Access-Control-Allow-Origin"), "*") << path;
        EXPECT_FALSE(response->has_header("Access-Control-Allow-Credentials")) << path;
    }
}

TEST(Cors, A429CarriesCorsAndExposesRetryAfter) {
    auto options = with_origins({app_origin});
    options.configure = [](config::ServerConfig& c) {
        c.cors_origins = {app_origin};
        c.rate_limit_address_per_second = 1;
        c.rate_limit_address_burst = 2;
    };
    TestServer server(options);
    auto client = server.client();
    httplib::Result refused;
    for (int i = 0; i < 20 && !refused; ++i) {
        auto response = client.Get("/v1/keys", {{"Origin", app_origin}});
        ASSERT_TRUE(response);
        if (response->status == 429) refused = std::move(response);
    }
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->get_header_value("Access-Control-Allow-Origin"), app_origin);
    EXPECT_EQ(refused->get_header_value("Access-Control-Expose-Headers"), http::exposed_headers);
    EXPECT_EQ(refused->get_header_value("Vary"), "Origin");
    EXPECT_FALSE(refused->get_header_value("Retry-After").empty());
    // Preflights are answered ahead of the address's limit: a browser sends
    // one before its users' (credentialed, separately limited) requests.
    auto preflight = client.Options("/v1/me/usage", preflight_from(app_origin, "GET"));
    ASSERT_TRUE(preflight);
    EXPECT_EQ(preflight->status, 204);
}

TEST(Cors, TheUsageStreamCarriesCorsHeaders) {
    TestServer server(with_origins({app_origin}));
    test::RawConnection connection(server.port());
    const std::string token = test::mint_user_token("streamer", server.clock().now_seconds());
    ASSERT_TRUE(connection.send_all("GET /v1/me/usage/stream HTTP/1.1\r\nHost: t\r\nOrigin: " + app_origin +
                                    "\r\nAuthorization: Bearer " + token + "\r\n\r\n"));
    const std::string received = connection.read_until(
        [](const std::string& r) { return r.find("event: usage") != std::string::npos; }, std::chrono::seconds(10));
    ASSERT_EQ(test::status_of(received), 200) << received.substr(0, 400);
    EXPECT_NE(test::header_of(received, "Content-Type").find("text/event-stream"), std::string::npos);
    EXPECT_EQ(test::header_of(received, "Access-Control-Allow-Origin"), app_origin);
    EXPECT_EQ(test::header_of(received, "Vary"), "Origin");
    EXPECT_EQ(test::header_of(received, "Access-Control-Expose-Headers"), http::exposed_headers);
    EXPECT_NE(received.find("event: usage"), std::string::npos);
    server.app().shutdown();  // ends the stream cleanly
}

}  // namespace
}  // namespace tokenmeter
