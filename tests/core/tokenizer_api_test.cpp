// The Encoding API: loading (pinned digests, malformed assets), bounds,
// invalid UTF-8, special-token strings as text, known answers.
#include <gtest/gtest.h>

#include "tokenizer_test_support.hpp"
#include "tokenmeter/limits.hpp"
#include "vocabulary.hpp"

namespace tokenmeter {
namespace {

std::vector<std::uint8_t> asset_copy(TokenizerKind kind) {
    const auto asset = embedded_encoding_asset(kind);
    return {asset.begin(), asset.end()};
}

TEST(TokenizerApi, EmbeddedAssetsLoadAsThePinnedEncodings) {
    EXPECT_EQ(test::o200k().kind(), TokenizerKind::o200k_base);
    EXPECT_EQ(test::o200k().name(), "o200k_base");
    EXPECT_EQ(test::o200k().token_count(), 199998u);
    EXPECT_EQ(test::cl100k().kind(), TokenizerKind::cl100k_base);
    EXPECT_EQ(test::cl100k().name(), "cl100k_base");
    EXPECT_EQ(test::cl100k().token_count(), 100256u);
    EXPECT_EQ(encoding_asset_sha256(TokenizerKind::o200k_base).size(), 64u);
    EXPECT_TRUE(encoding_asset_sha256(TokenizerKind::estimate).empty());
}

TEST(TokenizerApi, AnAssetThatIsNotPinnedIsRefused) {
    auto bytes = asset_copy(TokenizerKind::cl100k_base);
    bytes[bytes.size() / 2] ^= 1;
    auto loaded = Encoding::load(bytes);
    ASSERT_FALSE(loaded.has_value());
    EXPECT_EQ(loaded.error().code, "encoding_asset_unknown");
    EXPECT_EQ(Encoding::load({}).error().code, "encoding_asset_unknown");
    const std::vector<std::uint8_t> huge(limits::encoding_asset_bytes_max + 1, 0);
    EXPECT_EQ(Encoding::load(huge).error().code, "encoding_asset_too_large");
}

TEST(TokenizerApi, MalformedAssetsAreErrorsNotCrashes) {
    // The digest check comes first in Encoding::load; the parser behind it is
    // still defensive, byte for byte.
    const auto bytes = asset_copy(TokenizerKind::cl100k_base);
    for (const std::size_t cut : {std::size_t{0}, std::size_t{7}, std::size_t{23}, std::size_t{40}, std::size_t{5000},
                                  bytes.size() - 1}) {
        const auto parsed = bpe::Vocabulary::parse(std::span(bytes).first(cut));
        ASSERT_FALSE(parsed.has_value()) << cut;
        EXPECT_EQ(parsed.error().code, "encoding_asset_invalid");
    }
    auto extra = bytes;
    extra.push_back(0);
    EXPECT_FALSE(bpe::Vocabulary::parse(extra).has_value());
    auto zero_length = bytes;
    zero_length[24 + 11] = 0;  // the first token's length (after the 11-byte name)
    EXPECT_FALSE(bpe::Vocabulary::parse(zero_length).has_value());
    EXPECT_TRUE(bpe::Vocabulary::parse(bytes).has_value());
}

TEST(TokenizerApi, KnownAnswers) {
    EXPECT_EQ(test::o200k().encode_ordinary("hello world").value(), (std::vector<TokenId>{24912, 2375}));
    EXPECT_EQ(test::cl100k().encode_ordinary("hello world").value(), (std::vector<TokenId>{15339, 1917}));
}

TEST(TokenizerApi, EmptyTextIsZeroTokens) {
    EXPECT_EQ(test::o200k().count("").value(), 0);
    EXPECT_TRUE(test::cl100k().encode_ordinary("").value().empty());
}

TEST(TokenizerApi, SpecialTokenStringsAreOrdinaryText) {
    EXPECT_EQ(test::o200k().encode_ordinary("<|endoftext|>").value(),
              (std::vector<TokenId>{27, 91, 419, 1440, 919, 91, 29}));
    EXPECT_EQ(test::cl100k().encode_ordinary("<|endoftext|>").value(),
              (std::vector<TokenId>{27, 91, 8862, 728, 428, 91, 29}));
    EXPECT_EQ(test::o200k().special_token_id("<|endoftext|>"), 199999u);
    EXPECT_EQ(test::o200k().special_token_id("<|endofprompt|>"), 200018u);
    EXPECT_EQ(test::cl100k().special_token_id("<|endoftext|>"), 100257u);
    EXPECT_EQ(test::cl100k().special_token_id("<|fim_suffix|>"), 100260u);
    EXPECT_EQ(test::cl100k().special_token_id("<|im_start|>"), std::nullopt);
}

TEST(TokenizerApi, InvalidUtf8IsAnErrorNamingTheOffset) {
    const auto ids = test::o200k().encode_ordinary("hello\xC3(world");
    ASSERT_FALSE(ids.has_value());
    EXPECT_EQ(ids.error().code, "invalid_utf8");
    EXPECT_NE(ids.error().message.find("offset 5"), std::string::npos) << ids.error().message;
    EXPECT_EQ(test::cl100k().count("\xED\xA0\x80").error().code, "invalid_utf8");  // a lone surrogate
}

TEST(TokenizerApi, TextLargerThanTheLimitIsRefused) {
    const std::string text(limits::text_bytes_max + 1, 'a');
    EXPECT_EQ(test::o200k().count(text).error().code, "text_too_large");
}

TEST(TokenizerApi, DecodeRefusesUnknownIds) {
    const std::vector<TokenId> ids{24912, 199999};
    EXPECT_EQ(test::o200k().decode_bytes(ids).error().code, "unknown_token_id");
}

TEST(TokenizerApi, RandomUtf8RoundTripsAndCountsMatchIds) {
    std::mt19937 random(3);
    const std::uint32_t samples[] = {'a', 'Z', ' ', '\n', '\'', '1', 0x85, 0xE9, 0x301, 0x4E2D, 0x1F600, 0xFEFF, 0x3000};
    for (int round = 0; round < 3000; ++round) {
        std::string text;
        const int length = static_cast<int>(random() % 300);
        for (int i = 0; i < length; ++i) {
            const auto cp = static_cast<std::uint32_t>(random() % 4 == 0 ? 0x20 + random() % 0x2FFF : samples[random() % std::size(samples)]);
            if (cp >= 0xD800 && cp <= 0xDFFF) continue;
            test::append_utf8(text, cp);
        }
        for (const Encoding* encoding : {&test::o200k(), &test::cl100k()}) {
            const auto ids = encoding->encode_ordinary(text).value();
            ASSERT_EQ(encoding->decode_bytes(ids).value(), text);
            ASSERT_EQ(encoding->count(text).value(), static_cast<std::int64_t>(ids.size()));
        }
    }
}

TEST(TokenizerApi, ArbitraryBytesAreEitherCountedOrRefusedNeverACrash) {
    std::mt19937 random(5);
    for (int round = 0; round < 20000; ++round) {
        std::string text;
        const int length = static_cast<int>(random() % 64);
        for (int i = 0; i < length; ++i) {
            if (round % 2 == 0) {
                text += static_cast<char>(random() % 256);
            } else {
                auto cp = static_cast<std::uint32_t>(random() % 0x110000);
                if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
                test::append_utf8(text, cp);
            }
        }
        for (const Encoding* encoding : {&test::o200k(), &test::cl100k()}) {
            const auto ids = encoding->encode_ordinary(text);
            if (utf8_error_offset(text)) {
                ASSERT_FALSE(ids.has_value());
                ASSERT_EQ(ids.error().code, "invalid_utf8");
                continue;
            }
            ASSERT_TRUE(ids.has_value());
            ASSERT_EQ(encoding->decode_bytes(*ids).value(), text);
        }
    }
}

}  // namespace
}  // namespace tokenmeter
