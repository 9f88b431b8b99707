// Who is calling: a user (a Supabase-style JWT) or the app's backend (a
// service key). The API asks this interface; server/auth implements it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter::http {

// A verified user token: whose it is and until when it holds.
struct UserSession {
    std::string user_id;
    std::int64_t expires_at_seconds = 0;
};

class Authenticator {
public:
    virtual ~Authenticator() = default;
    // The user of `Authorization: Bearer <JWT>`; errors are 401 codes.
    virtual Result<UserSession, Error> user_session(std::string_view authorization, std::int64_t now_seconds) = 0;
    // The user id alone.
    Result<std::string, Error> user(std::string_view authorization, std::int64_t now_seconds) {
        auto session = user_session(authorization, now_seconds);
        if (!session) return unexpected(session.error());
        return std::move(session->user_id);
    }
    // The caller id of `Authorization: Bearer <service key>` (stable per key,
    // scoping idempotency keys); errors are 401 codes.
    virtual Result<std::string, Error> service(std::string_view authorization) = 0;
};

}  // namespace tokenmeter::http
