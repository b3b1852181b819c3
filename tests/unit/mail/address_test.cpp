// Addresses are compared as lower-cased addr-specs, whatever display name or brackets the
// header carried.
#include "address.hpp"

#include <gtest/gtest.h>

namespace slmhub::mail {
namespace {

TEST(Address, TheAddrSpecLowerCasedWithoutNameOrBrackets) {
  EXPECT_EQ(normalize_address("Ann Example <Ann@Example.ORG>"), "ann@example.org");
  EXPECT_EQ(normalize_address("  dba@library.example.org "), "dba@library.example.org");
  EXPECT_EQ(normalize_address("\"Doe, Jo\" <jo@example.org>"), "jo@example.org");
  EXPECT_EQ(normalize_address("<>"), std::nullopt);  // the null reverse-path of a bounce
  EXPECT_EQ(normalize_address("MAILER-DAEMON"), std::nullopt);
  EXPECT_EQ(normalize_address("a b@example.org"), std::nullopt);
  EXPECT_EQ(normalize_address("<jo@example.org"), std::nullopt);
  EXPECT_EQ(address_domain("jo@example.org"), "example.org");
  EXPECT_EQ(address_domain("nobody"), "");
}

}  // namespace
}  // namespace slmhub::mail
