// Fuzzes the tokenizer (core/include/tokenmeter/tokenizer.hpp) on arbitrary
// bytes with both embedded encodings, o200k_base and cl100k_base: the
// pre-tokenizer's scanner, the piece lookup, the merge loop and (for pieces
// over 128 bytes) the backtracking encoder.
//
// Invariants besides "no crash": invalid UTF-8 is an invalid_utf8 error
// from count and encode alike, never a crash; for valid UTF-8, count equals
// the number of ids, every id is a mergeable token, no token is empty, the
// ids decode to exactly the input, and the Claude estimate is the o200k count
// times 5/4, rounded up.
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "tokenmeter/embedded_encodings.hpp"
#include "tokenmeter/token_count.hpp"
#include "tokenmeter/tokenizer.hpp"

namespace tokenmeter::fuzz {
namespace {

void check_invalid(const Encoding& encoding, std::string_view text) {
    auto counted = encoding.count(text);
    auto encoded = encoding.encode_ordinary(text);
    TM_ASSERT(!counted.has_value() && counted.error().code == "invalid_utf8");
    TM_ASSERT(!encoded.has_value() && encoded.error().code == "invalid_utf8");
}

void check_valid(const Encoding& encoding, std::string_view text) {
    auto counted = encoding.count(text);
    auto encoded = encoding.encode_ordinary(text);
    TM_ASSERT(counted.has_value() && encoded.has_value());
    TM_ASSERT(*counted == static_cast<std::int64_t>(encoded->size()));
    TM_ASSERT(encoded->size() <= text.size());
    for (TokenId id : *encoded) TM_ASSERT(id < encoding.token_count());
    auto decoded = encoding.decode_bytes(*encoded);
    TM_ASSERT(decoded.has_value());
    TM_ASSERT(*decoded == text);
}

void check_estimate(std::string_view text) {
    const Encoding& o200k = embedded_encoding(TokenizerKind::o200k_base);
    auto estimate = count_text_tokens(o200k, TokenizerKind::estimate, text);
    auto exact = o200k.count(text);
    TM_ASSERT(estimate.has_value() == exact.has_value());
    if (!exact) return;
    TM_ASSERT(!estimate->exact);
    TM_ASSERT(estimate->tokens == (*exact * 5 + 3) / 4);
}

}  // namespace
}  // namespace tokenmeter::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tokenmeter;
    using namespace tokenmeter::fuzz;
    const std::string_view text = text_of(data, size);
    const bool valid = !utf8_error_offset(text).has_value();
    for (TokenizerKind kind : {TokenizerKind::o200k_base, TokenizerKind::cl100k_base}) {
        const Encoding& encoding = embedded_encoding(kind);
        if (valid) {
            check_valid(encoding, text);
        } else {
            check_invalid(encoding, text);
        }
    }
    check_estimate(text);
    return 0;
}
