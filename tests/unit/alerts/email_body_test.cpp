// The outbox body of an alert e-mail carries two parts; what goes in comes out byte for byte,
// and a body that was not made that way is refused rather than sent half.
#include <gtest/gtest.h>

#include "alerts.hpp"

namespace slmhub::alerts {
namespace {

TEST(EmailBody, PartsRoundTripWhateverTheyHold) {
  for (const auto& [text, html] :
       std::vector<std::pair<std::string, std::string>>{{"", ""},
                                                        {"plain\n12\nlines\n", "<p>12\n</p>"},
                                                        {"ünïcödé – “quotes”", ""},
                                                        {"", "<b>only html</b>"}}) {
    EXPECT_EQ(unpack_email_body(pack_email_body(text, html)), std::make_pair(text, html));
  }
}

TEST(EmailBody, ForeignBodiesAreRefused) {
  EXPECT_THROW(unpack_email_body(""), std::invalid_argument);
  EXPECT_THROW(unpack_email_body("{\"text\": \"x\"}"), std::invalid_argument);
  EXPECT_THROW(unpack_email_body("12\nshort"), std::invalid_argument);
  EXPECT_THROW(unpack_email_body("-1\nx"), std::invalid_argument);
  EXPECT_THROW(unpack_email_body("3x\nabc"), std::invalid_argument);
}

}  // namespace
}  // namespace slmhub::alerts
