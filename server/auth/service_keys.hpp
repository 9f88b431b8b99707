// The app's backend authenticates with `Authorization: Bearer <service key>`.
//
// Keys are held as SHA-256 digests: a presented key is hashed once and its
// digest compared with every configured digest in constant time, without an
// early exit, so neither the position nor the length of a key leaks through
// timing. A caller id is derived from the digest: stable per key (it scopes
// idempotency keys) and safe to log, since it reveals nothing usable.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "tokenmeter/error.hpp"
#include "tokenmeter/result.hpp"

namespace tokenmeter::auth {

class ServiceKeys {
public:
    explicit ServiceKeys(const std::vector<std::string>& keys);
    ~ServiceKeys();
    ServiceKeys(const ServiceKeys&) = delete;
    ServiceKeys& operator=(const ServiceKeys&) = delete;

    // The caller id ("service:" + 12 hex digits of the key's SHA-256) of a
    // bearer token that is one of the keys. Errors: service_key_invalid.
    Result<std::string, Error> caller_of(std::string_view token) const;

    // The caller id a key gets, whether or not it is configured.
    static std::string caller_id(std::string_view key);

private:
    using Digest = std::array<unsigned char, 32>;
    struct Entry {
        Digest digest;
        std::string caller;
    };
    std::vector<Entry> entries_;
};

}  // namespace tokenmeter::auth
