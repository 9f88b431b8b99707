// Placeholders for the two parts still being built (server/auth, the core
// tokenizer), so the executable links meanwhile. They refuse everything; this
// file is deleted when the real parts land.
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

class RefusingTokenCounter final : public tokens::TokenCounter {
public:
    Result<tokens::TokenCount, Error> count_text(const Model&, std::string_view) override {
        return unexpected(make_error("tokenizer_unavailable", "counting text is not built yet; send input_tokens"));
    }
    Result<tokens::TokenCount, Error> count_chat(const Model&, const nlohmann::json&) override {
        return unexpected(make_error("tokenizer_unavailable", "counting messages is not built yet; send input_tokens"));
    }
};

}  // namespace

Result<std::unique_ptr<http::Authenticator>, Error> make_authenticator(const config::ServerConfig&) {
    std::unique_ptr<http::Authenticator> authenticator = std::make_unique<RefusingAuthenticator>();
    return authenticator;
}

std::unique_ptr<tokens::TokenCounter> make_token_counter() { return std::make_unique<RefusingTokenCounter>(); }

}  // namespace tokenmeter
