// Who is calling: a user (a Supabase-style JWT) or the app's backend (a
// service key). The API asks this interface; server/auth implements it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter::http {

class Authenticator {
public:
    virtual ~Authenticator() = default;
    // The user id of `Authorization: Bearer <JWT>`; errors are 401 codes.
    virtual Result<std::string, Error> user(std::string_view authorization, std::int64_t now_seconds) = 0;
    // The caller id of `Authorization: Bearer <service key>` (stable per key,
    // scoping idempotency keys); errors are 401 codes.
    virtual Result<std::string, Error> service(std::string_view authorization) = 0;
};

}  // namespace tokenmeter::http
