// Where user-token keys come from: TOKENMETER_JWKS, a file path or an
// http(s) URL (Supabase: https://<project>.supabase.co/auth/v1/.well-known/jwks.json).
//
// Keys are cached. They are (re)loaded when first needed, when the cache is
// older than limits::jwks_cache_seconds, and when a token names an unknown kid
// (the issuer may have rotated) — but never more often than once per
// limits::jwks_refetch_cooldown_seconds, so forged kids cannot make this
// server hammer the issuer. A failed reload keeps the keys it had.
//
// Design note: a reload runs under the lock, so verifications wait for it (at
// most limits::jwks_fetch_timeout_seconds, at most once per cooldown). A
// background refresher would avoid that wait but adds a thread to every
// server for an event that happens every ten minutes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "auth/jwks.hpp"
#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter::auth {

class JwksSource {
public:
    using Loader = std::function<Result<std::string, Error>()>;

    // A file is read and parsed now (a start-up error names TOKENMETER_JWKS);
    // a URL is checked for form now (https, or http to loopback only) and
    // fetched when first needed.
    static Result<std::unique_ptr<JwksSource>, Error> open(const std::string& location);

    // The key a token's kid names. Errors: token_key_unknown,
    // token_keys_unavailable (never loaded successfully).
    Result<TokenKey, Error> key_for(const std::string& kid, std::int64_t now_seconds);

private:
    JwksSource(std::string location, Loader loader) : location_(std::move(location)), loader_(std::move(loader)) {}

    bool may_load(std::int64_t now) const;
    void load(std::int64_t now);
    std::optional<TokenKey> find(const std::string& kid) const;

    const std::string location_;
    const Loader loader_;
    std::mutex mutex_;
    std::optional<std::vector<TokenKey>> keys_;  // guarded by mutex_
    std::optional<std::int64_t> loaded_at_;      // last successful load
    std::optional<std::int64_t> attempted_at_;   // last attempt, successful or not
    std::string last_error_;
};

}  // namespace tokenmeter::auth
