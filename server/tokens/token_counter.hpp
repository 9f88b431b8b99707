// Counting the tokens of request text: the encodings authorize's estimate
// rule counts with, and counts of text and messages for the demo's replies.
// The count comes from the core's tokenizer for the model's encoding; models
// without a public tokenizer get an estimate, flagged exact=false.
#pragma once

#include <memory>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tokenmeter/catalog.hpp"
#include "tokenmeter/error.hpp"
#include "tokenmeter/estimate.hpp"
#include "tokenmeter/result.hpp"
#include "tokenmeter/token_count.hpp"

namespace tokenmeter::tokens {

// Counts are the core's TokenCount (tokens, and whether they are exact). As
// an EncodingSource it gives the core's estimate rule (tokenmeter/estimate.hpp)
// the encodings to count authorize's input with.
class TokenCounter : public EncodingSource {
public:
    virtual ~TokenCounter() = default;
    // Tokens of plain text (embeddings, or a prompt as one string).
    virtual Result<TokenCount, Error> count_text(const Model& model, std::string_view text) = 0;
    // Prompt tokens of an OpenAI-shaped chat message array, with the
    // per-message overhead and reply priming.
    virtual Result<TokenCount, Error> count_chat(const Model& model, const nlohmann::json& messages) = 0;
};

// Counts with the encodings compiled into the executable.
std::unique_ptr<TokenCounter> make_embedded_encoding_counter();

}  // namespace tokenmeter::tokens
