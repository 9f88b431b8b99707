// Exactness: token ids identical to tiktoken's encode_ordinary (the `tiktoken`
// npm package) on thousands of varied texts per encoding, and the
// pre-tokenizer's pieces identical to a V8 regex equivalent to tiktoken's
// pattern on the fuzz cases. The vectors are generated at build time by
// tests/vectors/tokenizer/generate.mjs.
#include <gtest/gtest.h>

#include <iostream>

#include "pretokenizer.hpp"
#include "tokenizer_test_support.hpp"

namespace tokenmeter {
namespace {

using test::read_tokenizer_vectors;

std::string shown(const std::string& text) {
    nlohmann::json j = text;
    return j.dump();
}

void check_vectors(const Encoding& encoding, const std::string& file, pretokenizer::Pattern pattern) {
    const nlohmann::json vectors = read_tokenizer_vectors(file);
    ASSERT_EQ(vectors.at("encoding").get<std::string>(), std::string(encoding.name()));
    const auto& cases = vectors.at("cases");
    ASSERT_GE(cases.size(), 4000u) << "the vector file is incomplete";
    std::size_t identical = 0, pieces_checked = 0, failures = 0;
    for (const auto& item : cases) {
        const auto text = item.at("text").get<std::string>();
        const auto expected = item.at("ids").get<std::vector<TokenId>>();
        const auto ids = encoding.encode_ordinary(text);
        ASSERT_TRUE(ids.has_value()) << shown(text) << ": " << ids.error().message;
        if (*ids == expected) {
            ++identical;
        } else if (++failures <= 10) {
            ADD_FAILURE() << encoding.name() << " ids differ for " << shown(text);
        }
        const auto count = encoding.count(text);
        ASSERT_TRUE(count.has_value());
        EXPECT_EQ(*count, static_cast<std::int64_t>(expected.size())) << shown(text);
        const auto decoded = encoding.decode_bytes(*ids);
        ASSERT_TRUE(decoded.has_value());
        EXPECT_EQ(*decoded, text);
        if (item.contains("pieces")) {
            ++pieces_checked;
            EXPECT_EQ(pretokenizer::piece_lengths(pattern, text), item.at("pieces").get<std::vector<std::size_t>>())
                << encoding.name() << " pieces differ for " << shown(text);
        }
    }
    EXPECT_EQ(identical, cases.size());
    std::cout << "[ tokenizer ] " << encoding.name() << ": " << identical << " of " << cases.size()
              << " cases identical to tiktoken " << vectors.at("tiktoken").get<std::string>() << "; "
              << pieces_checked << " piece splits identical to the V8 regex\n";
}

TEST(TokenizerVectors, O200kIdsAreTiktokens) {
    check_vectors(test::o200k(), "o200k_base.json", pretokenizer::Pattern::o200k);
}

TEST(TokenizerVectors, Cl100kIdsAreTiktokens) {
    check_vectors(test::cl100k(), "cl100k_base.json", pretokenizer::Pattern::cl100k);
}

}  // namespace
}  // namespace tokenmeter
