// The generated Unicode table against an independent reference: V8's own
// tables (\p{Lu} ... \p{White_Space}, from ICU), for every code point that
// Unicode 15.0 assigns. Also the UTF-8 validator and the contraction folds.
#include <gtest/gtest.h>

#include <iostream>

#include "tokenizer_test_support.hpp"
#include "unicode_class.hpp"
#include "utf8.hpp"

namespace tokenmeter {
namespace {

// General categories Unicode changed after 15.0 (V8 follows the newer
// version; tiktoken's Rust regex tables predate it, and so does ours).
bool changed_after_unicode_15(std::uint32_t cp) {
    return cp == 0x0295;  // LATIN LETTER PHARYNGEAL VOICED FRICATIVE: Ll in 15.0, Lo since 16.0
}

TEST(TokenizerUnicode, EveryCodePointMatchesV8) {
    const nlohmann::json reference = test::read_tokenizer_vectors("unicode_classes.json");
    const auto& runs = reference.at("runs");
    ASSERT_FALSE(runs.empty());
    std::size_t compared = 0, mismatches = 0;
    for (std::size_t r = 0; r < runs.size(); ++r) {
        const auto first = runs[r][0].get<std::uint32_t>();
        const auto end = r + 1 < runs.size() ? runs[r + 1][0].get<std::uint32_t>() : 0x110000u;
        const int expected = runs[r][1].get<int>();
        if (expected < 0) continue;  // assigned after Unicode 15.0
        for (std::uint32_t cp = first; cp < end; ++cp) {
            if (changed_after_unicode_15(cp)) continue;
            ++compared;
            if (unicode::code_point_class(cp) != expected && ++mismatches <= 20) {
                ADD_FAILURE() << "U+" << std::hex << cp << std::dec << ": table "
                              << int(unicode::code_point_class(cp)) << ", V8 " << expected;
            }
        }
    }
    EXPECT_EQ(mismatches, 0u);
    EXPECT_GT(compared, 1100000u);
    std::cout << "[ tokenizer ] Unicode " << unicode::unicode_version() << " classes of " << compared
              << " code points identical to V8's; " << reference.at("skipped").get<int>()
              << " code points assigned after 15.0 not compared\n";
}

TEST(TokenizerUnicode, WhiteSpaceIsRustsNotV8sOrPcres) {
    // Rust regex \s is White_Space: U+0085 is space; U+FEFF (V8 \s) and
    // U+180E (PCRE2 \s) are not.
    EXPECT_TRUE(unicode::code_point_class(0x85) & unicode::white_space_bit);
    EXPECT_FALSE(unicode::code_point_class(0xFEFF) & unicode::white_space_bit);
    EXPECT_FALSE(unicode::code_point_class(0x180E) & unicode::white_space_bit);
    EXPECT_FALSE(unicode::code_point_class(0x200B) & unicode::white_space_bit);
    EXPECT_TRUE(unicode::code_point_class(0x3000) & unicode::white_space_bit);
}

TEST(TokenizerUnicode, ContractionLettersFoldLikeRustRegex) {
    EXPECT_EQ(unicode::contraction_letter_fold('S'), 's');
    EXPECT_EQ(unicode::contraction_letter_fold(0x17F), 's');  // LATIN SMALL LETTER LONG S
    EXPECT_EQ(unicode::contraction_letter_fold('L'), 'l');
    EXPECT_EQ(unicode::contraction_letter_fold(0x212A), 0);  // KELVIN SIGN folds to k: no contraction has k
    EXPECT_EQ(unicode::contraction_letter_fold(0x2019), 0);  // a typographic apostrophe is not '
}

// A reference decoder written from the definition (Unicode Table 3-7).
std::optional<std::size_t> reference_invalid_offset(const std::string& s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto b = static_cast<unsigned char>(s[i]);
        std::size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return i;
        std::uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
        for (std::size_t k = 1; k < n; ++k) {
            const auto c = static_cast<unsigned char>(s[i + k]);
            if ((c & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (c & 0x3F);
        }
        const std::uint32_t min = n == 1 ? 0 : n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += n;
    }
    return std::nullopt;
}

TEST(TokenizerUnicode, Utf8ValidationNamesTheFirstBadByte) {
    EXPECT_EQ(utf8_error_offset(""), std::nullopt);
    EXPECT_EQ(utf8_error_offset("plain ascii text, long enough for the word loop"), std::nullopt);
    EXPECT_EQ(utf8_error_offset("h\xC3\xA9llo \xF0\x9F\x98\x80"), std::nullopt);
    EXPECT_EQ(utf8_error_offset("abc\x80"), 3u);              // lone continuation
    EXPECT_EQ(utf8_error_offset("abcdefghij\xC3"), 10u);      // truncated at the end
    EXPECT_EQ(utf8_error_offset("a\xC0\xAF"), 1u);            // overlong '/'
    EXPECT_EQ(utf8_error_offset("a\xE0\x80\xAF"), 1u);        // overlong, 3 bytes
    EXPECT_EQ(utf8_error_offset("ab\xED\xA0\x80"), 2u);       // a surrogate (WTF-8)
    EXPECT_EQ(utf8_error_offset("\xF4\x90\x80\x80"), 0u);     // past U+10FFFF
    EXPECT_EQ(utf8_error_offset("ok\xFF"), 2u);
    EXPECT_EQ(utf8_error_offset(std::string("a\0b", 3)), std::nullopt);  // NUL is valid UTF-8
}

TEST(TokenizerUnicode, Utf8ValidationAgreesWithAReferenceOnRandomBytes) {
    std::mt19937 random(7);
    const unsigned char interesting[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2,
                                         0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF};
    for (int round = 0; round < 200000; ++round) {
        std::string s;
        const int length = static_cast<int>(random() % 12);
        for (int i = 0; i < length; ++i) s += static_cast<char>(interesting[random() % sizeof interesting]);
        ASSERT_EQ(utf8::first_invalid_offset(s), reference_invalid_offset(s)) << round;
    }
}

}  // namespace
}  // namespace tokenmeter
