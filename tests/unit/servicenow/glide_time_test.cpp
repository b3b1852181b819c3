// ServiceNow's raw date-times are "yyyy-MM-dd HH:mm:ss" in UTC, nothing looser: a value in
// another form would compare wrongly in keyset queries and cursors.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "client.hpp"
#include "error_of.hpp"

namespace slmhub::servicenow {
namespace {

using test::error_of;

TEST(GlideDateTime, ParsesUtcToEpochSeconds) {
  EXPECT_EQ(parse_glide_datetime("1970-01-01 00:00:00"), 0);
  EXPECT_EQ(parse_glide_datetime("1969-12-31 23:59:59"), -1);
  EXPECT_EQ(parse_glide_datetime("2026-11-02 09:00:00"), 1793610000);
  EXPECT_EQ(parse_glide_datetime("2024-02-29 23:59:59"), 1709251199);  // leap day
  EXPECT_EQ(parse_glide_datetime("2000-02-29 12:34:56"), 951827696);   // 400-year leap
  EXPECT_EQ(parse_glide_datetime("9999-12-31 23:59:59"), 253402300799);
  EXPECT_EQ(parse_glide_datetime("0000-01-01 00:00:00"), -62167219200);
}

TEST(GlideDateTime, RefusesAnythingElse) {
  for (const std::string text :
       {"", "2026-11-02", "2026-11-02T09:00:00", "2026-11-02 09:00:00Z", "2026-11-02 09:00",
        "2026-11-02 09:00:00.000", " 2026-11-02 09:00:0", "2026-1-02 09:00:00",
        "2026/11/02 09:00:00", "+026-11-02 09:00:00", "2026-11-02 9:00:00 ", "2026-11-02 0x:00:00",
        "2026-11-02  9:00:00", "2026-11-02 09:00:00\n"}) {
    EXPECT_THROW(parse_glide_datetime(text), std::invalid_argument) << text;
  }
  // Days and times that do not exist (no leap seconds in ServiceNow).
  for (const std::string text :
       {"2023-02-29 00:00:00", "2100-02-29 00:00:00", "2026-04-31 00:00:00", "2026-13-01 00:00:00",
        "2026-00-10 00:00:00", "2026-01-00 00:00:00", "2026-11-02 24:00:00", "2026-11-02 23:60:00",
        "2016-12-31 23:59:60"}) {
    EXPECT_THROW(parse_glide_datetime(text), std::invalid_argument) << text;
  }
  EXPECT_EQ(error_of<std::invalid_argument>([] { parse_glide_datetime("2026-02-30 00:00:00"); }),
            "ServiceNow date-time '2026-02-30 00:00:00' names a day that does not exist "
            "(expected \"yyyy-MM-dd HH:mm:ss\" in UTC)");
  EXPECT_EQ(error_of<std::invalid_argument>([] { parse_glide_datetime("2026-11-02T09:00:00Z"); }),
            "ServiceNow date-time '2026-11-02T09:00:00Z' is not in the form (expected "
            "\"yyyy-MM-dd HH:mm:ss\" in UTC)");
}

TEST(GlideDateTime, FormatsAndRoundTrips) {
  EXPECT_EQ(format_glide_datetime(0), "1970-01-01 00:00:00");
  EXPECT_EQ(format_glide_datetime(-1), "1969-12-31 23:59:59");
  EXPECT_EQ(format_glide_datetime(1793610000), "2026-11-02 09:00:00");
  EXPECT_EQ(format_glide_datetime(1709251199), "2024-02-29 23:59:59");
  EXPECT_EQ(format_glide_datetime(253402300799), "9999-12-31 23:59:59");
  EXPECT_EQ(format_glide_datetime(-62167219200), "0000-01-01 00:00:00");
  EXPECT_THROW(format_glide_datetime(253402300800), std::invalid_argument);
  EXPECT_THROW(format_glide_datetime(-62167219201), std::invalid_argument);
  for (std::int64_t t = -100000; t < 4000000000; t += 86399 * 37) {
    EXPECT_EQ(parse_glide_datetime(format_glide_datetime(t)), t);
  }
}

}  // namespace
}  // namespace slmhub::servicenow
