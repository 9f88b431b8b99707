// User tokens signed ES256 or RS256 with keys from a JWKS (Supabase's current
// signing keys), from a file and from a URL served on loopback: accepted when
// valid, refused for every attack, fetched only as often as the rules allow.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "auth/limits.hpp"
#include "auth_test_support.hpp"
#include "test_keys.hpp"

namespace tokenmeter {
namespace {

using nlohmann::json;
using test::auth_now;
using test::TestSigningKey;
using test::user_claims;
using test::user_outcome;

// A real HTTP server on loopback that serves a JWKS and counts requests.
class KeyServer {
public:
    KeyServer() {
        server_.Get(".*", [this](const httplib::Request& request, httplib::Response& response) {
            std::lock_guard<std::mutex> guard(mutex_);
            ++requests_[request.path];
            response.status = status_;
            response.set_content(body_, "application/json");
        });
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ~KeyServer() {
        server_.stop();
        thread_.join();
    }

    void serve(const json& jwks, int status = 200) {
        std::lock_guard<std::mutex> guard(mutex_);
        body_ = jwks.dump();
        status_ = status;
    }
    int requests(const std::string& path) {
        std::lock_guard<std::mutex> guard(mutex_);
        return requests_[path];
    }
    int all_requests() {
        std::lock_guard<std::mutex> guard(mutex_);
        int total = 0;
        for (const auto& [path, count] : requests_) total += count;
        return total;
    }
    std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

private:
    httplib::Server server_;
    std::thread thread_;
    int port_ = 0;
    std::mutex mutex_;
    std::map<std::string, int> requests_;
    std::string body_ = "{}";
    int status_ = 200;
};

const std::string jwks_path = "/auth/v1/.well-known/jwks.json";

// Key generation (RSA especially) is slow; the suite shares its keys.
class AuthJwks : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        es_ = new TestSigningKey("ES256", "ec-key-1");
        rs_ = new TestSigningKey("RS256", "rsa-key-1");
        other_es_ = new TestSigningKey("ES256", "ec-key-2");
    }
    static void TearDownTestSuite() {
        delete es_;
        delete rs_;
        delete other_es_;
    }

    void SetUp() override { dir_ = test::make_temp_dir(); }
    void TearDown() override {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    std::string write_file(const std::string& name, const std::string& text) {
        const std::string path = dir_ + "/" + name;
        std::ofstream(path) << text;
        return path;
    }

    // Only a JWKS (no legacy secret), as a new Supabase project is set up.
    config::ServerConfig jwks_config(const std::string& location) {
        config::ServerConfig config = test::auth_config();
        config.jwt_secret.clear();
        config.jwks = location;
        return config;
    }

    std::string file_with_both_keys() { return write_file("jwks.json", test::jwks_of({es_, rs_}).dump()); }

    static inline TestSigningKey* es_ = nullptr;
    static inline TestSigningKey* rs_ = nullptr;
    static inline TestSigningKey* other_es_ = nullptr;
    std::string dir_;
};

TEST_F(AuthJwks, AcceptsEs256AndRs256FromAFile) {
    auto auth = test::authenticator_for(jwks_config(file_with_both_keys()));
    EXPECT_EQ(user_outcome(*auth, es_->token(user_claims("ec-user"))), "accepted:ec-user");
    EXPECT_EQ(user_outcome(*auth, rs_->token(user_claims("rsa-user"))), "accepted:rsa-user");
    // The same claims rules apply as for HS256.
    json expired = user_claims();
    expired["exp"] = auth_now - 3600;
    EXPECT_EQ(user_outcome(*auth, es_->token(expired)), "token_expired");
    json anon = user_claims();
    anon["role"] = "anon";
    EXPECT_EQ(user_outcome(*auth, rs_->token(anon)), "token_role_refused");
    // Without a legacy secret, HS256 is refused outright.
    EXPECT_EQ(user_outcome(*auth, test::hs256_token(user_claims())), "token_algorithm_refused");
}

TEST_F(AuthJwks, BothModesTogether) {
    config::ServerConfig config = jwks_config(file_with_both_keys());
    config.jwt_secret = test::jwt_secret;
    auto auth = test::authenticator_for(config);
    EXPECT_EQ(user_outcome(*auth, test::hs256_token(user_claims("a"))), "accepted:a");
    EXPECT_EQ(user_outcome(*auth, es_->token(user_claims("b"))), "accepted:b");
    EXPECT_EQ(user_outcome(*auth, rs_->token(user_claims("c"))), "accepted:c");
}

TEST_F(AuthJwks, AcceptsEs256AndRs256FromAUrlFetchedOnce) {
    KeyServer keys;
    keys.serve(test::jwks_of({es_, rs_}));
    auto auth = test::authenticator_for(jwks_config(keys.url(jwks_path)));
    EXPECT_EQ(keys.all_requests(), 0);  // fetched when first needed, not at start-up
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(user_outcome(*auth, es_->token(user_claims("ec-user")), auth_now + i), "accepted:ec-user");
        EXPECT_EQ(user_outcome(*auth, rs_->token(user_claims("rsa-user")), auth_now + i), "accepted:rsa-user");
    }
    EXPECT_EQ(keys.requests(jwks_path), 1);
    // The cache expires: a revoked key stops verifying after a refetch.
    keys.serve(test::jwks_of({rs_}));
    const std::int64_t later = auth_now + auth::limits::jwks_cache_seconds + 5;
    EXPECT_EQ(user_outcome(*auth, rs_->token(user_claims("rsa-user")), later), "accepted:rsa-user");
    EXPECT_EQ(keys.requests(jwks_path), 2);
    EXPECT_EQ(user_outcome(*auth, es_->token(user_claims("ec-user")), later), "token_key_unknown");
    EXPECT_EQ(keys.requests(jwks_path), 2);
}

TEST_F(AuthJwks, AnUnknownKidRefetchesAtMostOncePerCooldown) {
    KeyServer keys;
    keys.serve(test::jwks_of({es_}));
    auto auth = test::authenticator_for(jwks_config(keys.url(jwks_path)));
    const std::int64_t cooldown = auth::limits::jwks_refetch_cooldown_seconds;
    EXPECT_EQ(user_outcome(*auth, es_->token(user_claims())), "accepted:user-1");
    EXPECT_EQ(keys.requests(jwks_path), 1);
    // The issuer rotates in a new key. Within the cooldown of the last fetch
    // a token with the new kid is refused without a fetch...
    keys.serve(test::jwks_of({es_, other_es_}));
    EXPECT_EQ(user_outcome(*auth, other_es_->token(user_claims()), auth_now + 1), "token_key_unknown");
    EXPECT_EQ(keys.requests(jwks_path), 1);
    // ...and after it, one refetch finds the key.
    EXPECT_EQ(user_outcome(*auth, other_es_->token(user_claims()), auth_now + cooldown), "accepted:user-1");
    EXPECT_EQ(keys.requests(jwks_path), 2);
    // A flood of forged kids costs one fetch per cooldown, no more.
    const std::int64_t t = auth_now + cooldown + 1;
    for (int i = 0; i < 50; ++i) {
        const std::string forged = "forged-" + std::to_string(i);
        EXPECT_EQ(user_outcome(*auth, es_->token(user_claims(), {{"kid", forged}}), t + i % (cooldown - 2)),
                  "token_key_unknown");
    }
    EXPECT_EQ(keys.requests(jwks_path), 2);
    EXPECT_EQ(user_outcome(*auth, es_->token(user_claims(), {{"kid", "forged-again"}}), t + 2 * cooldown),
              "token_key_unknown");
    EXPECT_EQ(keys.requests(jwks_path), 3);
    // Known kids verify throughout without fetching.
    EXPECT_EQ(user_outcome(*auth, es_->token(user_claims()), t + 2 * cooldown + 1), "accepted:user-1");
    EXPECT_EQ(keys.requests(jwks_path), 3);
    // A token without a kid is refused without a fetch.
    EXPECT_EQ(user_outcome(*auth, es_->token(user_claims(), {{"kid", nullptr}}), t + 10 * cooldown), "token_malformed");
    json no_kid_header = {{"alg", "ES256"}, {"typ", "JWT"}};
    const std::string input = test::signing_input(no_kid_header, user_claims());
    EXPECT_EQ(user_outcome(*auth, input + "." + base64url_encode(es_->sign(input)), t + 10 * cooldown),
              "token_key_unknown");
    EXPECT_EQ(keys.requests(jwks_path), 3);
}

TEST_F(AuthJwks, ConcurrentVerificationsShareOneFetch) {
    KeyServer keys;
    keys.serve(test::jwks_of({es_, rs_}));
    auto auth = test::authenticator_for(jwks_config(keys.url(jwks_path)));
    const std::string es_token = es_->token(user_claims("ec-user"));
    const std::string rs_token = rs_->token(user_claims("rsa-user"));
    std::atomic<int> accepted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 40; ++i) {
                const bool ec = (t + i) % 2 == 0;
                const std::string outcome = user_outcome(*auth, ec ? es_token : rs_token, auth_now + i % 5);
                if (outcome == (ec ? "accepted:ec-user" : "accepted:rsa-user")) accepted += 1;
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(accepted.load(), 16 * 40);
    EXPECT_EQ(keys.requests(jwks_path), 1);
}

TEST_F(AuthJwks, ARotatedFileIsRereadForAnUnknownKidAfterTheCooldown) {
    const std::string path = write_file("jwks.json", test::jwks_of({es_}).dump());
    auto auth = test::authenticator_for(jwks_config(path));
    EXPECT_EQ(user_outcome(*auth, es_->token(user_claims())), "accepted:user-1");
    std::ofstream(path, std::ios::trunc) << test::jwks_of({es_, other_es_}).dump();
    EXPECT_EQ(user_outcome(*auth, other_es_->token(user_claims()), auth_now + 1), "token_key_unknown");
    EXPECT_EQ(user_outcome(*auth, other_es_->token(user_claims()),
                           auth_now + auth::limits::jwks_refetch_cooldown_seconds),
              "accepted:user-1");
    // A file that turns bad later keeps the keys already held.
    std::ofstream(path, std::ios::trunc) << "{";
    EXPECT_EQ(user_outcome(*auth, es_->token(user_claims()), auth_now + 2 * auth::limits::jwks_cache_seconds),
              "accepted:user-1");
}

TEST_F(AuthJwks, AnUnreachableUrlRefusesUntilItAnswers) {
    KeyServer keys;
    keys.serve(json{{"error", "down"}}, 503);
    auto auth = test::authenticator_for(jwks_config(keys.url(jwks_path)));
    EXPECT_EQ(user_outcome(*auth, es_->token(user_claims())), "token_keys_unavailable");
    EXPECT_EQ(user_outcome(*auth, es_->token(user_claims()), auth_now + 1), "token_keys_unavailable");
    EXPECT_EQ(keys.requests(jwks_path), 1);
    keys.serve(test::jwks_of({es_}));
    EXPECT_EQ(user_outcome(*auth, es_->token(user_claims()), auth_now + auth::limits::jwks_refetch_cooldown_seconds),
              "accepted:user-1");
    EXPECT_EQ(keys.requests(jwks_path), 2);
    // A later failure keeps the keys already held.
    keys.serve(json("not a jwks"));
    const std::int64_t later = auth_now + 2 * auth::limits::jwks_cache_seconds;
    EXPECT_EQ(user_outcome(*auth, es_->token(user_claims()), later), "accepted:user-1");
    EXPECT_EQ(keys.requests(jwks_path), 3);
}

TEST_F(AuthJwks, KeysInTheTokenHeaderAreNeverFetchedOrUsed) {
    KeyServer keys;
    keys.serve(test::jwks_of({es_}));
    KeyServer attacker;
    TestSigningKey mallory("ES256", "ec-key-1");  // the attacker's key, with a known kid
    attacker.serve(test::jwks_of({&mallory}));
    auto auth = test::authenticator_for(jwks_config(keys.url(jwks_path)));
    const json claims = user_claims("victim");
    EXPECT_EQ(user_outcome(*auth, mallory.token(claims, {{"jku", attacker.url("/jwks.json")}})), "token_header_refused");
    EXPECT_EQ(user_outcome(*auth, mallory.token(claims, {{"x5u", attacker.url("/cert.pem")}})), "token_header_refused");
    EXPECT_EQ(user_outcome(*auth, mallory.token(claims, {{"jwk", mallory.public_jwk()}})), "token_header_refused");
    EXPECT_EQ(user_outcome(*auth, mallory.token(claims, {{"x5c", json::array({"MIIB"})}})), "token_header_refused");
    EXPECT_EQ(attacker.all_requests(), 0);
    EXPECT_EQ(keys.all_requests(), 0);  // refused before any key was looked up
    // Without those headers, the attacker's key is just a wrong key.
    EXPECT_EQ(user_outcome(*auth, mallory.token(claims)), "token_signature_invalid");
    EXPECT_EQ(attacker.all_requests(), 0);
}

TEST_F(AuthJwks, TheKeyPinsTheAlgorithm) {
    config::ServerConfig config = jwks_config(file_with_both_keys());
    config.jwt_secret = test::jwt_secret;
    auto auth = test::authenticator_for(config);
    const json claims = user_claims();
    // An EC key's kid with RS256, an RSA key's kid with ES256.
    EXPECT_EQ(user_outcome(*auth, rs_->token(claims, {{"kid", es_->kid()}})), "token_algorithm_refused");
    EXPECT_EQ(user_outcome(*auth, es_->token(claims, {{"kid", rs_->kid()}})), "token_algorithm_refused");
    for (const char* alg : {"none", "None", "NONE", "PS256", "ES384", "RS512", "EdDSA"}) {
        EXPECT_EQ(user_outcome(*auth, es_->token(claims, {{"alg", alg}})), "token_algorithm_refused") << alg;
    }
    const std::string unsigned_input = test::signing_input({{"alg", "none"}, {"kid", es_->kid()}}, claims);
    EXPECT_EQ(user_outcome(*auth, unsigned_input + "."), "token_algorithm_refused");
}

// The classic confusion: HS256 with the server's public key as HMAC secret.
TEST_F(AuthJwks, AnHs256TokenKeyedWithAPublicKeyIsRefused) {
    const std::string jwks_text = test::jwks_of({es_, rs_}).dump();
    const std::string path = write_file("jwks.json", jwks_text);
    const std::vector<std::string> public_secrets = {jwks_text, es_->public_jwk().dump(), rs_->public_jwk().dump(),
                                                     es_->public_pem(), rs_->public_pem(),
                                                     es_->public_jwk()["x"].get<std::string>()};
    config::ServerConfig both = jwks_config(path);
    both.jwt_secret = test::jwt_secret;
    auto with_secret = test::authenticator_for(both);
    auto jwks_only = test::authenticator_for(jwks_config(path));
    for (const std::string& secret : public_secrets) {
        for (const json& header : {json{{"alg", "HS256"}}, json{{"alg", "HS256"}, {"kid", es_->kid()}},
                                   json{{"alg", "HS256"}, {"kid", rs_->kid()}}}) {
            const std::string token = test::hs256_token(header, user_claims(), secret);
            EXPECT_EQ(user_outcome(*with_secret, token), "token_signature_invalid") << header.dump();
            EXPECT_EQ(user_outcome(*jwks_only, token), "token_algorithm_refused") << header.dump();
        }
    }
}

TEST_F(AuthJwks, TamperedAndTruncatedSignaturesAreRefused) {
    auto auth = test::authenticator_for(jwks_config(file_with_both_keys()));
    for (const TestSigningKey* key : {es_, rs_}) {
        const std::string token = key->token(user_claims());
        const std::size_t dot = token.rfind('.');
        const std::string input = token.substr(0, dot);
        std::string signature = *base64url_decode(token.substr(dot + 1));
        auto with = [&](const std::string& bytes) { return input + "." + base64url_encode(bytes); };
        EXPECT_EQ(user_outcome(*auth, with(signature)), "accepted:user-1") << key->alg();
        EXPECT_EQ(user_outcome(*auth, with(signature.substr(0, signature.size() - 1))), "token_signature_invalid");
        EXPECT_EQ(user_outcome(*auth, with(signature + std::string(1, '\0'))), "token_signature_invalid");
        EXPECT_EQ(user_outcome(*auth, with("")), "token_signature_invalid");
        EXPECT_EQ(user_outcome(*auth, with(std::string(signature.size(), '\0'))), "token_signature_invalid");
        for (const std::size_t at : {std::size_t{0}, signature.size() / 2, signature.size() - 1}) {
            std::string flipped = signature;
            flipped[at] = static_cast<char>(flipped[at] ^ 0x01);
            EXPECT_EQ(user_outcome(*auth, with(flipped)), "token_signature_invalid") << key->alg() << " byte " << at;
        }
        // The payload changed, the signature kept.
        const json header = {{"alg", key->alg()}, {"kid", key->kid()}, {"typ", "JWT"}};
        const std::string forged = test::signing_input(header, user_claims("mallory"));
        EXPECT_EQ(user_outcome(*auth, forged + "." + base64url_encode(signature)), "token_signature_invalid");
    }
    // ES256: s and r swapped, and the DER form OpenSSL produces.
    const std::string input = test::signing_input({{"alg", "ES256"}, {"kid", es_->kid()}}, user_claims());
    const std::string raw = es_->sign(input);
    EXPECT_EQ(user_outcome(*auth, input + "." + base64url_encode(raw.substr(32) + raw.substr(0, 32))),
              "token_signature_invalid");
    EXPECT_EQ(user_outcome(*auth, input + "." + base64url_encode(es_->sign_der(input))), "token_signature_invalid");
    EXPECT_EQ(user_outcome(*auth, input + "." + base64url_encode(raw)), "accepted:user-1");
}

TEST_F(AuthJwks, AMegabyteTokenIsRefusedUnreadWithoutAFetch) {
    KeyServer keys;
    keys.serve(test::jwks_of({es_}));
    auto auth = test::authenticator_for(jwks_config(keys.url(jwks_path)));
    json claims = user_claims();
    claims["pad"] = std::string(1 << 20, 'x');
    const std::string token = es_->token(claims);
    // Refused on its size: at most token_bytes_max of its bytes may be read
    // (any more stops the test), so it is neither decoded nor hashed for a
    // signature check, and its kid sends no one to the key server.
    EXPECT_EQ(test::user_outcome_reading_at_most(*auth, token, auth::limits::token_bytes_max), "token_too_large");
    EXPECT_EQ(keys.all_requests(), 0);
}

TEST_F(AuthJwks, ConfigurationErrorsNameTokenmeterJwks) {
    auto error_of = [&](const std::string& location) {
        auto made = make_authenticator(jwks_config(location));
        return made ? std::string("accepted") : made.error().message;
    };
    const std::vector<std::pair<std::string, std::string>> cases = {
        {dir_ + "/missing.json", "missing.json"},
        {write_file("not-json", "{keys: nope"), "JSON object"},
        {write_file("no-keys.json", R"({"kty":"EC"})"), "\"keys\" array"},
        {write_file("only-oct.json", R"({"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]})"), "no ES256"},
        {write_file("bad-x.json", R"({"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"AA","y":"AA"}]})"), "32 bytes"},
        {"https://", "is not a URL"},
        {"http://jwks.example.com/keys.json", "must use https"},
        {"http://127.0.0.1.example.com/keys.json", "must use https"},
    };
    for (const auto& [location, detail] : cases) {
        const std::string message = error_of(location);
        EXPECT_NE(message.find("TOKENMETER_JWKS"), std::string::npos) << location << ": " << message;
        EXPECT_NE(message.find(detail), std::string::npos) << location << ": " << message;
    }
    // A point that is not on P-256.
    json off_curve = es_->public_jwk();
    off_curve["y"] = off_curve["x"];
    EXPECT_NE(error_of(write_file("off.json", json{{"keys", {off_curve}}}.dump())).find("not on P-256"), std::string::npos);
    // A 1024-bit RSA key is too weak to trust.
    EVP_PKEY* weak = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(1024));
    BIGNUM* n = nullptr;
    EVP_PKEY_get_bn_param(weak, OSSL_PKEY_PARAM_RSA_N, &n);
    std::string n_bytes(static_cast<std::size_t>(BN_num_bytes(n)), '\0');
    BN_bn2bin(n, reinterpret_cast<unsigned char*>(n_bytes.data()));
    BN_free(n);
    EVP_PKEY_free(weak);
    const json weak_jwk = {{"kty", "RSA"}, {"kid", "weak"}, {"n", base64url_encode(n_bytes)}, {"e", "AQAB"}};
    EXPECT_NE(error_of(write_file("weak.json", json{{"keys", {weak_jwk}}}.dump())).find("1024 bits"), std::string::npos);
    // Unusable kinds next to a usable key are skipped, not fatal.
    json mixed = test::jwks_of({es_});
    mixed["keys"].push_back({{"kty", "OKP"}, {"crv", "Ed25519"}, {"kid", "ed"}, {"x", "AA"}});
    mixed["keys"].push_back({{"kty", "RSA"}, {"alg", "PS256"}, {"kid", "ps"}, {"n", "AA"}, {"e", "AQAB"}});
    EXPECT_EQ(error_of(write_file("mixed.json", mixed.dump())), "accepted");
    // URLs are fetched later, so a well-formed one is accepted at start-up.
    EXPECT_EQ(error_of("https://project.supabase.co/auth/v1/.well-known/jwks.json"), "accepted");
    EXPECT_EQ(error_of("http://localhost:54321/auth/v1/.well-known/jwks.json"), "accepted");
}

// Through the real HTTP API: an ES256 user from a JWKS reads only their own
// usage, and service routes still want a service key.
TEST_F(AuthJwks, EndToEndThroughTheApi) {
    test::TestServerOptions options;
    options.jwks = file_with_both_keys();
    test::TestServer server(options);
    auto client = server.client();
    ASSERT_EQ(server.post("/v1/usage/record", {{"user_id", "ec-user"}, {"operation", "avatar"}})->status, 200);
    json claims = user_claims("ec-user");
    claims["iat"] = server.clock().now_seconds();
    claims["exp"] = server.clock().now_seconds() + 600;
    const httplib::Headers as_ec_user = {{"Authorization", "Bearer " + es_->token(claims)}};
    auto mine = client.Get("/v1/me/usage", as_ec_user);
    ASSERT_EQ(mine->status, 200) << mine->body;
    EXPECT_EQ(test::body_of(mine)["user_id"], "ec-user");
    EXPECT_EQ(test::body_of(mine)["avatars"]["used"], 1);
    claims["sub"] = "rsa-user";
    auto other = client.Get("/v1/me/usage", httplib::Headers{{"Authorization", "Bearer " + rs_->token(claims)}});
    ASSERT_EQ(other->status, 200) << other->body;
    EXPECT_EQ(test::body_of(other)["user_id"], "rsa-user");
    EXPECT_EQ(test::body_of(other)["avatars"]["used"], 0);
    auto service_route = client.Get("/v1/users/ec-user/usage", as_ec_user);
    EXPECT_EQ(service_route->status, 403);
    auto forged = client.Get("/v1/me/usage", httplib::Headers{{"Authorization", "Bearer " + es_->token(claims, {{"kid", rs_->kid()}})}});
    EXPECT_EQ(forged->status, 401);
    EXPECT_EQ(test::body_of(forged)["error"]["code"], "token_algorithm_refused");
}

}  // namespace
}  // namespace tokenmeter
