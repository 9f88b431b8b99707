// A placeholder for server/auth, so the executable links meanwhile. It
// refuses everything; this file is deleted when server/auth lands.
#include "app.hpp"

namespace tokenmeter {

namespace {

class RefusingAuthenticator final : public http::Authenticator {
public:
    Result<std::string, Error> user(std::string_view, std::int64_t) override {
        return unexpected(make_error("auth_unavailable", "user authentication is not built yet"));
    }
    Result<std::string, Error> service(std::string_view) override {
        return unexpected(make_error("auth_unavailable", "service authentication is not built yet"));
    }
};

}  // namespace

Result<std::unique_ptr<http::Authenticator>, Error> make_authenticator(const config::ServerConfig&) {
    std::unique_ptr<http::Authenticator> authenticator = std::make_unique<RefusingAuthenticator>();
    return authenticator;
}

}  // namespace tokenmeter
