// Authentication: user JWTs signed HS256 with the legacy secret, service
// keys, the dev-token command, and the scopes the real HTTP API enforces.
// Every attack on the token format is refused with a precise code.
#include <gtest/gtest.h>

#include <sstream>

#include "auth/jwt.hpp"
#include "auth/limits.hpp"
#include "auth/service_keys.hpp"
#include "auth_test_support.hpp"
#include "cli/commands.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::auth_now;
using test::hs256_token;
using test::user_claims;
using test::user_outcome;

class AuthHs256 : public ::testing::Test {
protected:
    std::unique_ptr<http::Authenticator> auth_ = test::authenticator_for(test::auth_config());
    std::string outcome(const std::string& token, std::int64_t now = auth_now) { return user_outcome(*auth_, token, now); }
};

TEST_F(AuthHs256, AcceptsAValidUserToken) {
    EXPECT_EQ(outcome(hs256_token(user_claims("0b6e6c4e-6f43-4a2e-9b1c-3f0c2d7f8a11"))),
              "accepted:0b6e6c4e-6f43-4a2e-9b1c-3f0c2d7f8a11");
    // The fixture's independent minting, and aud as an array that includes it.
    EXPECT_EQ(outcome(test::mint_user_token("alice", auth_now)), "accepted:alice");
    json claims = user_claims();
    claims["aud"] = json::array({"other", "authenticated"});
    EXPECT_EQ(outcome(hs256_token(claims)), "accepted:user-1");
    claims.erase("role");  // Supabase always sends one, but its absence is no reason to refuse
    EXPECT_EQ(outcome(hs256_token(claims)), "accepted:user-1");
}

TEST_F(AuthHs256, RefusesTheAlgorithmNone) {
    const json claims = user_claims();
    for (const char* alg : {"none", "None", "NONE", "nOnE"}) {
        const std::string input = test::signing_input({{"alg", alg}, {"typ", "JWT"}}, claims);
        EXPECT_EQ(outcome(input + "."), "token_algorithm_refused") << alg;
        EXPECT_EQ(outcome(input + "." + test::hmac_sha256_base64url(test::jwt_secret, input)), "token_algorithm_refused")
            << alg;
    }
}

TEST_F(AuthHs256, RefusesAMissingOrUnexpectedAlgorithm) {
    const json claims = user_claims();
    EXPECT_EQ(outcome(hs256_token(json{{"typ", "JWT"}}, claims)), "token_algorithm_refused");
    EXPECT_EQ(outcome(hs256_token(json{{"alg", 256}}, claims)), "token_algorithm_refused");
    EXPECT_EQ(outcome(hs256_token(json{{"alg", "hs256"}}, claims)), "token_algorithm_refused");
    EXPECT_EQ(outcome(hs256_token(json{{"alg", "HS512"}}, claims)), "token_algorithm_refused");
    // Without a JWKS configured, asymmetric algorithms have no key at all.
    EXPECT_EQ(outcome(hs256_token(json{{"alg", "RS256"}, {"kid", "k"}}, claims)), "token_algorithm_refused");
    EXPECT_EQ(outcome(hs256_token(json{{"alg", "ES256"}, {"kid", "k"}}, claims)), "token_algorithm_refused");
}

TEST_F(AuthHs256, RefusesAWrongSecretAndTamperedTokens) {
    EXPECT_EQ(outcome(hs256_token({{"alg", "HS256"}}, user_claims(), "another-secret-another-secret-another")),
              "token_signature_invalid");
    const std::string token = hs256_token(user_claims());
    const std::size_t dot = token.rfind('.');
    EXPECT_EQ(outcome(token.substr(0, token.size() - 4)), "token_signature_invalid");  // truncated
    // The last character of 32 bytes carries 2 unused bits; setting them is not canonical.
    std::string loose = token;
    loose.back() = loose.back() == 'B' ? 'D' : 'B';
    EXPECT_EQ(outcome(loose), "token_malformed");
    EXPECT_EQ(outcome(token.substr(0, dot + 1)), "token_signature_invalid");    // empty signature
    EXPECT_EQ(outcome(token.substr(0, dot)), "token_malformed");                // two segments
    std::string flipped = token;
    flipped[dot + 1] = flipped[dot + 1] == 'A' ? 'B' : 'A';
    EXPECT_EQ(outcome(flipped), "token_signature_invalid");
    // The payload changed (another user), the signature kept.
    json other = user_claims("mallory");
    const std::string forged = test::signing_input({{"alg", "HS256"}, {"typ", "JWT"}}, other) + token.substr(dot);
    EXPECT_EQ(outcome(forged), "token_signature_invalid");
    EXPECT_EQ(outcome(token + "A"), "token_signature_invalid");  // 33 bytes
    EXPECT_EQ(outcome(token + "AA"), "token_malformed");  // 45 characters encode no byte string
    EXPECT_EQ(outcome(token + "."), "token_malformed");
}

TEST_F(AuthHs256, ChecksExpiryAndNotBeforeWithSmallLeeway) {
    json claims = user_claims();
    claims["exp"] = auth_now - auth::limits::clock_leeway_seconds + 1;
    EXPECT_EQ(outcome(hs256_token(claims)), "accepted:user-1");
    claims["exp"] = auth_now - auth::limits::clock_leeway_seconds;
    EXPECT_EQ(outcome(hs256_token(claims)), "token_expired");
    claims["exp"] = auth_now - 3600;
    EXPECT_EQ(outcome(hs256_token(claims)), "token_expired");
    claims.erase("exp");
    EXPECT_EQ(outcome(hs256_token(claims)), "token_malformed");
    claims["exp"] = "tomorrow";
    EXPECT_EQ(outcome(hs256_token(claims)), "token_malformed");
    claims["exp"] = auth_now + 60;
    claims["nbf"] = auth_now + auth::limits::clock_leeway_seconds;
    EXPECT_EQ(outcome(hs256_token(claims)), "accepted:user-1");
    claims["nbf"] = auth_now + auth::limits::clock_leeway_seconds + 1;
    EXPECT_EQ(outcome(hs256_token(claims)), "token_not_yet_valid");
    claims["nbf"] = auth_now + 3600;
    EXPECT_EQ(outcome(hs256_token(claims)), "token_not_yet_valid");
    // An absurd exp does not overflow into "expired" or crash.
    claims.erase("nbf");
    claims["exp"] = std::numeric_limits<std::uint64_t>::max();
    EXPECT_EQ(outcome(hs256_token(claims)), "accepted:user-1");
    claims["exp"] = 1e300;
    EXPECT_EQ(outcome(hs256_token(claims)), "accepted:user-1");
}

TEST_F(AuthHs256, RequiresTheAuthenticatedAudience) {
    json claims = user_claims();
    claims.erase("aud");
    EXPECT_EQ(outcome(hs256_token(claims)), "token_audience_invalid");
    for (const json& aud : {json("anon"), json("Authenticated"), json::array({"anon"}), json::array(), json(1),
                            json::object({{"aud", "authenticated"}})}) {
        claims["aud"] = aud;
        EXPECT_EQ(outcome(hs256_token(claims)), "token_audience_invalid") << aud.dump();
    }
}

TEST_F(AuthHs256, RefusesAnonAndServiceRoleTokens) {
    json claims = user_claims();
    claims["role"] = "anon";
    EXPECT_EQ(outcome(hs256_token(claims)), "token_role_refused");
    claims["role"] = "service_role";
    EXPECT_EQ(outcome(hs256_token(claims)), "token_role_refused");
    // Supabase's anon and service_role keys carry no sub and no "authenticated" aud.
    const json anon_key = {{"iss", "supabase"}, {"ref", "abc"}, {"role", "anon"}, {"iat", auth_now}, {"exp", auth_now + 9999}};
    EXPECT_NE(outcome(hs256_token(anon_key)).rfind("accepted", 0), 0U);
}

TEST_F(AuthHs256, RequiresAValidSubject) {
    json claims = user_claims();
    claims.erase("sub");
    EXPECT_EQ(outcome(hs256_token(claims)), "token_subject_missing");
    claims["sub"] = "";
    EXPECT_EQ(outcome(hs256_token(claims)), "token_subject_missing");
    claims["sub"] = "has space";
    EXPECT_EQ(outcome(hs256_token(claims)), "token_subject_invalid");
    claims["sub"] = std::string(129, 'a');
    EXPECT_EQ(outcome(hs256_token(claims)), "token_subject_invalid");
    claims["sub"] = 42;
    EXPECT_EQ(outcome(hs256_token(claims)), "token_subject_invalid");
}

TEST_F(AuthHs256, RefusesKeysOfferedByTheTokenHeader) {
    const json claims = user_claims();
    for (const char* name : {"jku", "jwk", "x5u", "x5c", "crit"}) {
        json header = {{"alg", "HS256"}, {"typ", "JWT"}, {name, "http://127.0.0.1:9/keys"}};
        EXPECT_EQ(outcome(hs256_token(header, claims)), "token_header_refused") << name;
    }
}

TEST_F(AuthHs256, RefusesMalformedAndOversizedTokens) {
    EXPECT_EQ(outcome(""), "credentials_malformed");
    EXPECT_EQ(outcome("a.b.c"), "token_malformed");
    EXPECT_EQ(outcome("..."), "token_malformed");
    EXPECT_EQ(outcome(base64url_encode("[1]") + "." + base64url_encode("{}") + ".AA"), "token_malformed");
    EXPECT_EQ(outcome(base64url_encode("{\"alg\":\"HS256\"") + "." + base64url_encode("{}") + ".AA"), "token_malformed");
    EXPECT_EQ(outcome(hs256_token(json{{"alg", "HS256"}}, json::array({1, 2}))), "token_malformed");
    // Padding is not base64url as JOSE uses it.
    const std::string token = hs256_token(user_claims());
    EXPECT_EQ(outcome(token.substr(0, token.find('.')) + "=" + token.substr(token.find('.'))), "token_malformed");
    // A token just over the cap is refused before parsing, whatever it holds.
    json big = user_claims();
    big["pad"] = std::string(auth::limits::token_bytes_max, 'x');
    EXPECT_EQ(outcome(hs256_token(big)), "token_too_large");
    // A 3 MB token costs no more than one of the cap's size: the check may
    // read at most token_bytes_max of its bytes (any more stops the test),
    // so no base64 or JSON work runs over the whole token.
    const std::string megabyte(1 << 20, 'a');
    EXPECT_EQ(test::user_outcome_reading_at_most(*auth_, megabyte + "." + megabyte + "." + megabyte,
                                                 auth::limits::token_bytes_max),
              "token_too_large");
}

TEST_F(AuthHs256, ReadsOnlyBearerCredentials) {
    const std::string token = hs256_token(user_claims());
    EXPECT_EQ(auth_->user("", auth_now).error().code, "credentials_missing");
    EXPECT_EQ(auth_->user("Basic " + token, auth_now).error().code, "credentials_malformed");
    EXPECT_EQ(auth_->user(token, auth_now).error().code, "credentials_malformed");
    EXPECT_EQ(auth_->user("Bearer", auth_now).error().code, "credentials_malformed");
    EXPECT_TRUE(auth_->user("bearer " + token, auth_now).has_value());
    EXPECT_FALSE(auth_->user("Bearer  " + token, auth_now).has_value());
}

TEST(AuthServiceKeys, AcceptsEveryConfiguredKeyWithAStableOpaqueCallerId) {
    config::ServerConfig config = test::auth_config();
    const std::string second = "second-service-key-abcdefghijklmnop";
    config.service_keys.push_back(second);
    auto auth = test::authenticator_for(config);
    auto first_caller = auth->service("Bearer " + test::service_key);
    auto second_caller = auth->service("Bearer " + second);
    ASSERT_TRUE(first_caller.has_value());
    ASSERT_TRUE(second_caller.has_value());
    EXPECT_NE(*first_caller, *second_caller);
    EXPECT_EQ(*first_caller, auth->service("Bearer " + test::service_key).value());
    EXPECT_EQ(*first_caller, auth::ServiceKeys::caller_id(test::service_key));
    // "service:" and 12 hex digits of SHA-256, so the key itself never shows.
    EXPECT_EQ(first_caller->size(), std::string("service:").size() + 12);
    EXPECT_EQ(first_caller->rfind("service:", 0), 0U);
    EXPECT_EQ(first_caller->find(test::service_key.substr(0, 6)), std::string::npos);
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(test::service_key.data()), test::service_key.size());
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    EXPECT_EQ(*first_caller, "service:" + std::string(hex, 12));
}

TEST(AuthServiceKeys, RefusesEverythingElse) {
    auto auth = test::authenticator_for(test::auth_config());
    const std::string& key = test::service_key;
    EXPECT_EQ(auth->service("").error().code, "credentials_missing");
    EXPECT_EQ(auth->service(key).error().code, "credentials_malformed");
    EXPECT_EQ(auth->service("Basic " + key).error().code, "credentials_malformed");
    EXPECT_EQ(auth->service("Bearer " + key.substr(0, key.size() - 1)).error().code, "service_key_invalid");
    EXPECT_EQ(auth->service("Bearer " + key + "x").error().code, "service_key_invalid");
    EXPECT_EQ(auth->service("Bearer " + key + " ").error().code, "service_key_invalid");
    EXPECT_EQ(auth->service("Bearer " + test::mint_user_token("alice", auth_now)).error().code, "service_key_invalid");
    // A user token is not a service key, and a service key is not a user token.
    EXPECT_FALSE(auth->user("Bearer " + key, auth_now).has_value());
}

TEST(AuthConfig, StartUpErrorsNameTheVariable) {
    config::ServerConfig config = test::auth_config();
    config.jwt_secret.clear();
    auto made = make_authenticator(config);
    ASSERT_FALSE(made.has_value());
    EXPECT_NE(made.error().message.find("TOKENMETER_JWT_SECRET"), std::string::npos) << made.error().message;
    EXPECT_NE(made.error().message.find("TOKENMETER_JWKS"), std::string::npos) << made.error().message;
    config = test::auth_config();
    config.service_keys.clear();
    made = make_authenticator(config);
    ASSERT_FALSE(made.has_value());
    EXPECT_NE(made.error().message.find("TOKENMETER_SERVICE_KEYS"), std::string::npos) << made.error().message;
}

TEST(AuthMint, MintedTokensVerifyAndBadInputsAreRefused) {
    auto auth = test::authenticator_for(test::auth_config());
    auto token = auth::mint_hs256_token(test::jwt_secret, "dev-user", auth_now, 60);
    ASSERT_TRUE(token.has_value()) << token.error().message;
    EXPECT_EQ(user_outcome(*auth, *token), "accepted:dev-user");
    EXPECT_EQ(user_outcome(*auth, *token, auth_now + 60 + auth::limits::clock_leeway_seconds), "token_expired");
    auto parsed = auth::parse_jwt(*token);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->alg, "HS256");
    EXPECT_EQ(parsed->claims["aud"], "authenticated");
    EXPECT_EQ(parsed->claims["role"], "authenticated");
    EXPECT_EQ(parsed->claims["iat"], auth_now);
    EXPECT_EQ(auth::mint_hs256_token("", "u", auth_now, 60).error().code, "secret_invalid");
    EXPECT_EQ(auth::mint_hs256_token(test::jwt_secret, "", auth_now, 60).error().code, "sub_invalid");
    EXPECT_EQ(auth::mint_hs256_token(test::jwt_secret, "a b", auth_now, 60).error().code, "sub_invalid");
    EXPECT_EQ(auth::mint_hs256_token(test::jwt_secret, "u", auth_now, 0).error().code, "ttl_invalid");
    EXPECT_EQ(auth::mint_hs256_token(test::jwt_secret, "u", auth_now, -5).error().code, "ttl_invalid");
}

struct CliRun {
    int code;
    std::string out;
    std::string err;
};

CliRun run_cli(std::vector<std::string_view> args) {
    std::istringstream in;
    std::ostringstream out;
    std::ostringstream err;
    const int code = cli::run(args, cli::Streams{in, out, err});
    return {code, out.str(), err.str()};
}

TEST(AuthDevToken, PrintsATokenTheServerAccepts) {
    const CliRun run = run_cli({"dev-token", "--secret", test::jwt_secret, "--sub", "dev-user", "--ttl", "120"});
    ASSERT_EQ(run.code, 0) << run.err;
    ASSERT_FALSE(run.out.empty());
    EXPECT_EQ(run.out.back(), '\n');
    const std::string token = run.out.substr(0, run.out.size() - 1);
    auto auth = test::authenticator_for(test::auth_config());
    const std::int64_t now = SystemClock().now_seconds();
    EXPECT_EQ(user_outcome(*auth, token, now), "accepted:dev-user");
    EXPECT_EQ(user_outcome(*auth, token, now + 120 + auth::limits::clock_leeway_seconds + 5), "token_expired");
    // Default lifetime: an hour.
    const CliRun default_ttl = run_cli({"dev-token", "--sub", "dev-user", "--secret", test::jwt_secret});
    ASSERT_EQ(default_ttl.code, 0) << default_ttl.err;
    auto parsed = auth::parse_jwt(default_ttl.out.substr(0, default_ttl.out.size() - 1));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->claims["exp"].get<std::int64_t>() - parsed->claims["iat"].get<std::int64_t>(), 3600);
}

TEST(AuthDevToken, BadArgumentsExitTwoWithAClearMessage) {
    const std::string& secret = test::jwt_secret;
    const std::vector<std::pair<std::vector<std::string_view>, std::string>> cases = {
        {{"dev-token"}, "--secret is required"},
        {{"dev-token", "--secret", secret}, "--sub is required"},
        {{"dev-token", "--sub", "u"}, "--secret is required"},
        {{"dev-token", "--secret", secret, "--sub"}, "--sub needs a value"},
        {{"dev-token", "--secret", "short", "--sub", "u"}, "at least 32 characters"},
        {{"dev-token", "--secret", secret, "--sub", "not valid"}, "user id"},
        {{"dev-token", "--secret", secret, "--sub", "u", "--ttl", "0"}, "--ttl needs a positive number"},
        {{"dev-token", "--secret", secret, "--sub", "u", "--ttl", "10s"}, "--ttl needs a positive number"},
        {{"dev-token", "--secret", secret, "--sub", "u", "--ttl", "999999999999"}, "lifetime"},
        {{"dev-token", "--secret", secret, "--sub", "u", "--bogus"}, "unknown option"},
    };
    for (const auto& [args, message] : cases) {
        const CliRun run = run_cli(args);
        EXPECT_EQ(run.code, 2) << message;
        EXPECT_TRUE(run.out.empty()) << message;
        EXPECT_NE(run.err.find(message), std::string::npos) << run.err;
        EXPECT_NE(run.err.find("usage: tokenmeter dev-token"), std::string::npos) << run.err;
    }
}

TEST(AuthApi, RefusalsEchoHeaderValuesOnlyAsShortAsciiExcerpts) {
    test::TestServer server;
    std::string long_alg;
    for (int i = 0; i < 1000; ++i) long_alg += "\xc3\xa9";  // é, valid UTF-8, 2000 bytes
    const std::string token = hs256_token(json{{"alg", long_alg}, {"kid", long_alg}}, user_claims());
    auto response = server.client().Get("/v1/me/usage", httplib::Headers{{"Authorization", "Bearer " + token}});
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 401);
    const json body = test::body_of(response);
    ASSERT_TRUE(body.is_object()) << response->body.substr(0, 200);
    EXPECT_EQ(body["error"]["code"], "token_algorithm_refused");
    const std::string message = body["error"]["message"].get<std::string>();
    EXPECT_LT(message.size(), 200U) << message;
    EXPECT_EQ(auth::excerpt("abc"), "abc");
    EXPECT_EQ(auth::excerpt("a\xc3\xa9\n"), "a???");
    EXPECT_EQ(auth::excerpt(std::string(100, 'k')), std::string(64, 'k') + "...");
}

// Through the real HTTP API: scopes, and a user sees only their own data.
TEST(AuthApi, ScopesAndOwnershipThroughTheApi) {
    test::TestServer server;
    auto client = server.client();
    ASSERT_EQ(server.post("/v1/usage/record", {{"user_id", "alice"}, {"operation", "avatar"}})->status, 200);

    auto mine = client.Get("/v1/me/usage", server.as_user("alice"));
    ASSERT_EQ(mine->status, 200) << mine->body;
    EXPECT_EQ(test::body_of(mine)["user_id"], "alice");
    EXPECT_EQ(test::body_of(mine)["avatars"]["used"], 1);
    auto bobs = client.Get("/v1/me/usage", server.as_user("bob"));
    ASSERT_EQ(bobs->status, 200) << bobs->body;
    EXPECT_EQ(test::body_of(bobs)["user_id"], "bob");
    EXPECT_EQ(test::body_of(bobs)["avatars"]["used"], 0);
    auto bob_events = client.Get("/v1/me/usage/events", server.as_user("bob"));
    ASSERT_EQ(bob_events->status, 200) << bob_events->body;
    EXPECT_EQ(bob_events->body.find("alice"), std::string::npos) << bob_events->body;

    // A user token on a service route: authenticated, but the wrong scope.
    auto user_on_service = client.Get("/v1/users/alice/usage", server.as_user("bob"));
    EXPECT_EQ(user_on_service->status, 403);
    EXPECT_EQ(test::body_of(user_on_service)["error"]["code"], "wrong_scope");
    // A service key on a user route: the API answers 403 wrong_scope.
    auto service_on_user = client.Get("/v1/me/usage", server.as_service());
    EXPECT_EQ(service_on_user->status, 403);
    EXPECT_EQ(test::body_of(service_on_user)["error"]["code"], "wrong_scope");

    // Refused tokens are 401 with the precise code and a Bearer challenge.
    const std::int64_t now = server.clock().now_seconds();
    httplib::Headers expired = {{"Authorization", "Bearer " + test::mint_user_token("alice", now - 7200, 3600)}};
    auto refused = client.Get("/v1/me/usage", expired);
    EXPECT_EQ(refused->status, 401);
    EXPECT_EQ(test::body_of(refused)["error"]["code"], "token_expired");
    EXPECT_EQ(refused->get_header_value("WWW-Authenticate"), "Bearer");
    json anon = test::user_claims("alice");
    anon["role"] = "anon";
    anon["exp"] = now + 600;
    auto anon_response = client.Get("/v1/me/usage", httplib::Headers{{"Authorization", "Bearer " + hs256_token(anon)}});
    EXPECT_EQ(anon_response->status, 401);
    EXPECT_EQ(test::body_of(anon_response)["error"]["code"], "token_role_refused");
    auto none = client.Get("/v1/me/usage", httplib::Headers{{"Authorization", "Bearer " + test::signing_input({{"alg", "none"}}, test::user_claims("alice")) + "."}});
    EXPECT_EQ(none->status, 401);
    auto wrong_key = client.Get("/v1/users/alice/usage", httplib::Headers{{"Authorization", "Bearer not-the-service-key-0123456789"}});
    EXPECT_EQ(wrong_key->status, 401);
    EXPECT_EQ(test::body_of(wrong_key)["error"]["code"], "service_key_invalid");
}

}  // namespace
}  // namespace tokenmeter
