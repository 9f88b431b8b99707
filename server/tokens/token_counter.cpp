// The server counts with the encodings compiled into the executable; the
// same core code counts in the browser from fetched assets.
#include "tokens/token_counter.hpp"

#include <memory>

#include "tokenmeter/embedded_encodings.hpp"

namespace tokenmeter::tokens {

namespace {

class EmbeddedEncodingCounter final : public TokenCounter {
public:
    Result<const Encoding*, Error> encoding(TokenizerKind encoding) const override {
        return &embedded_encoding(encoding);
    }

    Result<TokenCount, Error> count_text(const Model& model, std::string_view text) override {
        const Encoding& encoding = embedded_encoding(encoding_kind_for(model.tokenizer));
        return count_text_tokens(encoding, model.tokenizer, text);
    }

    Result<TokenCount, Error> count_chat(const Model& model, const nlohmann::json& messages) override {
        auto parsed = chat_messages_from_json(messages);
        if (!parsed) return unexpected(parsed.error());
        const Encoding& encoding = embedded_encoding(encoding_kind_for(model.tokenizer));
        return count_chat_tokens(encoding, model.tokenizer, *parsed);
    }
};

}  // namespace

std::unique_ptr<TokenCounter> make_embedded_encoding_counter() { return std::make_unique<EmbeddedEncodingCounter>(); }

}  // namespace tokenmeter::tokens
