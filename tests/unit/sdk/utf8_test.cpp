#include "slmhub/utf8.hpp"

#include <gtest/gtest.h>

#include <string>

namespace slmhub {
namespace {

TEST(Utf8, WellFormedSequencesOnly) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ASCII, longer than eight bytes"));
  EXPECT_TRUE(valid_utf8("Caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_TRUE(valid_utf8("\xed\x9f\xbf"));                               // U+D7FF
  EXPECT_TRUE(valid_utf8("\xf4\x8f\xbf\xbf"));                           // U+10FFFF
  for (const std::string bad :
       {"\x80", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf0\x80\x80\xaf",
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xc3", "\xe2\x82", "abcdefgh\xff", "\xc3\x28"}) {
    EXPECT_FALSE(valid_utf8(bad)) << testing::PrintToString(bad);
  }
}

TEST(Utf8, SequenceLengthsAndAsciiRuns) {
  const std::string text = "abcdefghij\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff";
  EXPECT_EQ(skip_ascii(text, 0), 10u);
  EXPECT_EQ(skip_ascii(text, 11), 11u);
  EXPECT_EQ(skip_ascii("only ascii here", 3), 15u);
  EXPECT_EQ(utf8_sequence(text, 0), 1u);
  EXPECT_EQ(utf8_sequence(text, 10), 2u);
  EXPECT_EQ(utf8_sequence(text, 12), 3u);
  EXPECT_EQ(utf8_sequence(text, 15), 4u);
  EXPECT_EQ(utf8_sequence(text, 19), 0u);
  EXPECT_EQ(utf8_sequence(text, 11), 0u);  // a continuation byte does not start a sequence
}

}  // namespace
}  // namespace slmhub
