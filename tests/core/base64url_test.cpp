#include <gtest/gtest.h>

#include <random>

#include "tokenmeter/base64url.hpp"

namespace tokenmeter {
namespace {

TEST(Base64url, Rfc4648Vectors) {
    EXPECT_EQ(base64url_encode(""), "");
    EXPECT_EQ(base64url_encode("f"), "Zg");
    EXPECT_EQ(base64url_encode("fo"), "Zm8");
    EXPECT_EQ(base64url_encode("foo"), "Zm9v");
    EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
    EXPECT_EQ(base64url_encode("fooba"), "Zm9vYmE");
    EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
    EXPECT_EQ(base64url_encode(std::string("\xfb\xff", 2)), "-_8");
}

TEST(Base64url, RoundTripsRandomBytes) {
    std::mt19937 random(7);
    for (int i = 0; i < 2000; ++i) {
        std::string bytes(random() % 70, '\0');
        for (char& c : bytes) c = static_cast<char>(random() & 0xFF);
        auto decoded = base64url_decode(base64url_encode(bytes));
        ASSERT_TRUE(decoded.has_value());
        EXPECT_EQ(*decoded, bytes);
    }
}

TEST(Base64url, DecodesStrictly) {
    EXPECT_FALSE(base64url_decode("Zg==").has_value());   // padding
    EXPECT_FALSE(base64url_decode("Zm9v+g").has_value()); // standard alphabet
    EXPECT_FALSE(base64url_decode("Zm9v/g").has_value());
    EXPECT_FALSE(base64url_decode("Zm 9v").has_value());
    EXPECT_FALSE(base64url_decode("Z").has_value());      // impossible length
    EXPECT_FALSE(base64url_decode("Zh").has_value());     // non-zero unused bits
    EXPECT_FALSE(base64url_decode("Zm9").has_value());
    EXPECT_TRUE(base64url_decode("Zm8").has_value());
}

}  // namespace
}  // namespace tokenmeter
