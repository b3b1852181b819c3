// Unit tests for slmhub/cron.hpp: parsing (including every error message shape), Vixie
// day-of-month/day-of-week rules, DST gaps and repeats in America/Chicago (US DST ends
// 2026-11-01 and starts 2027-03-14), the search horizon, and a cross-check of next_after
// against a naive scan.
#include "slmhub/cron.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace slmhub {
namespace {

using namespace date::literals;

const date::time_zone* chicago() { return find_zone("America/Chicago"); }
const date::time_zone* utc() { return find_zone("UTC"); }

// The next firing as text ("none" for nullopt), so failures read like the expectation.
std::string next(std::string_view expression, std::string_view after, const date::time_zone* zone) {
  const auto fire = CronExpression::parse(expression).next_after(parse_instant(after), zone);
  return fire ? format_instant(*fire) : "none";
}

// The first `count` firings after `after`.
std::vector<std::string> firings(std::string_view expression, std::string_view after,
                                 const date::time_zone* zone, int count) {
  const CronExpression cron = CronExpression::parse(expression);
  std::vector<std::string> out;
  Instant t = parse_instant(after);
  for (int i = 0; i < count; ++i) {
    const auto fire = cron.next_after(t, zone);
    if (!fire) break;
    out.push_back(format_instant(*fire));
    t = *fire;
  }
  return out;
}

std::string parse_error(std::string_view expression) {
  try {
    CronExpression::parse(expression);
  } catch (const CronError& e) {
    return e.what();
  }
  ADD_FAILURE() << "'" << expression << "' parsed";
  return "";
}

TEST(CronParse, KeepsTheText) {
  EXPECT_EQ(CronExpression::parse("*/15 * * * *").text(), "*/15 * * * *");
}

TEST(CronParse, ToleratesExtraWhitespace) {
  EXPECT_EQ(next("  */15\t*  * * *  ", "2026-11-03T14:07:00Z", utc()), "2026-11-03T14:15:00Z");
}

TEST(CronNext, EveryFifteenMinutes) {
  EXPECT_EQ(next("*/15 * * * *", "2026-11-03T14:07:00Z", utc()), "2026-11-03T14:15:00Z");
  EXPECT_EQ(next("*/15 * * * *", "2026-11-03T14:14:59Z", utc()), "2026-11-03T14:15:00Z");
  // Strictly after: a firing time itself is not returned again.
  EXPECT_EQ(next("*/15 * * * *", "2026-11-03T14:15:00Z", utc()), "2026-11-03T14:30:00Z");
  EXPECT_EQ(next("*/15 * * * *", "2026-11-03T23:59:59Z", utc()), "2026-11-04T00:00:00Z");
  EXPECT_EQ(firings("*/15 * * * *", "2026-12-31T23:20:00Z", utc(), 4),
            (std::vector<std::string>{"2026-12-31T23:30:00Z", "2026-12-31T23:45:00Z",
                                      "2027-01-01T00:00:00Z", "2027-01-01T00:15:00Z"}));
}

TEST(CronNext, EveryMinute) {
  EXPECT_EQ(next("* * * * *", "2026-11-03T14:07:00Z", utc()), "2026-11-03T14:08:00Z");
  EXPECT_EQ(next("* * * * *", "2026-11-03T14:07:30Z", utc()), "2026-11-03T14:08:00Z");
}

TEST(CronNext, WeekdayMorningsFollowLocalTime) {
  // Friday 09:00 CST has fired; next is Monday 09:00 CST.
  EXPECT_EQ(next("0 9 * * mon-fri", "2026-11-06T15:00:00Z", chicago()), "2026-11-09T15:00:00Z");
  // Across the DST end the UTC hour moves: Fri 30 Oct is CDT, Mon 2 Nov is CST.
  EXPECT_EQ(firings("0 9 * * mon-fri", "2026-10-30T12:00:00Z", chicago(), 2),
            (std::vector<std::string>{"2026-10-30T14:00:00Z", "2026-11-02T15:00:00Z"}));
  EXPECT_EQ(next("0 9 * * MON-FRI", "2026-11-07T00:00:00Z", chicago()), "2026-11-09T15:00:00Z");
}

TEST(CronNext, FirstOfTheMonth) {
  EXPECT_EQ(firings("0 0 1 * *", "2026-10-15T00:00:00Z", chicago(), 3),
            (std::vector<std::string>{"2026-11-01T05:00:00Z", "2026-12-01T06:00:00Z",
                                      "2027-01-01T06:00:00Z"}));
}

TEST(CronNext, DayOfMonthOrDayOfWeekWhenBothRestricted) {
  // 2026-11-15 is a Sunday (day-of-month matches), 2026-11-16 a Monday (day-of-week matches).
  EXPECT_EQ(firings("0 0 15 * mon", "2026-11-10T00:00:00Z", utc(), 3),
            (std::vector<std::string>{"2026-11-15T00:00:00Z", "2026-11-16T00:00:00Z",
                                      "2026-11-23T00:00:00Z"}));
  EXPECT_EQ(firings("0 0 15 * *", "2026-11-10T00:00:00Z", utc(), 2),
            (std::vector<std::string>{"2026-11-15T00:00:00Z", "2026-12-15T00:00:00Z"}));
  EXPECT_EQ(firings("0 0 * * mon", "2026-11-10T00:00:00Z", utc(), 2),
            (std::vector<std::string>{"2026-11-16T00:00:00Z", "2026-11-23T00:00:00Z"}));
}

TEST(CronNext, StarStepCountsAsUnrestricted) {
  // "*/2" starts with '*', so both day fields must match: odd days that are Mondays.
  EXPECT_EQ(firings("0 0 */2 * mon", "2026-11-01T00:00:00Z", utc(), 2),
            (std::vector<std::string>{"2026-11-09T00:00:00Z", "2026-11-23T00:00:00Z"}));
  // "1-31/2" is the same set of days, but restricted: either field suffices.
  EXPECT_EQ(firings("0 0 1-31/2 * mon", "2026-10-31T12:00:00Z", utc(), 3),
            (std::vector<std::string>{"2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z",
                                      "2026-11-03T00:00:00Z"}));
}

TEST(CronNext, SundayIsZeroOrSeven) {
  for (std::string_view e : {"0 12 * * 0", "0 12 * * 7", "0 12 * * sun", "0 12 * * Sun"}) {
    EXPECT_EQ(next(e, "2026-11-03T00:00:00Z", utc()), "2026-11-08T12:00:00Z") << e;
  }
  EXPECT_EQ(firings("0 12 * * 5-7", "2026-11-03T00:00:00Z", utc(), 4),
            (std::vector<std::string>{"2026-11-06T12:00:00Z", "2026-11-07T12:00:00Z",
                                      "2026-11-08T12:00:00Z", "2026-11-13T12:00:00Z"}));
}

TEST(CronNext, NamesListsRangesAndSteps) {
  EXPECT_EQ(firings("0 0 1 JAN,Jul *", "2026-02-01T00:00:00Z", utc(), 2),
            (std::vector<std::string>{"2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"}));
  EXPECT_EQ(firings("0 0 1 feb-apr/2 *", "2026-01-01T00:00:00Z", utc(), 3),
            (std::vector<std::string>{"2026-02-01T00:00:00Z", "2026-04-01T00:00:00Z",
                                      "2027-02-01T00:00:00Z"}));
  EXPECT_EQ(firings("10-30/10 * * * *", "2026-11-03T14:30:00Z", utc(), 3),
            (std::vector<std::string>{"2026-11-03T15:10:00Z", "2026-11-03T15:20:00Z",
                                      "2026-11-03T15:30:00Z"}));
  EXPECT_EQ(firings("0,30 8-17/3 * * *", "2026-11-03T12:00:00Z", utc(), 5),
            (std::vector<std::string>{"2026-11-03T14:00:00Z", "2026-11-03T14:30:00Z",
                                      "2026-11-03T17:00:00Z", "2026-11-03T17:30:00Z",
                                      "2026-11-04T08:00:00Z"}));
  EXPECT_EQ(next("5 4 * * *", "2026-11-03T04:05:00Z", utc()), "2026-11-04T04:05:00Z");
  EXPECT_EQ(next("59 23 31 12 *", "2026-11-03T00:00:00Z", utc()), "2026-12-31T23:59:00Z");
}

TEST(CronNext, SpringForwardGapFiresOnceWhenTheGapEnds) {
  // 02:30 does not exist in Chicago on 2027-03-14; it fires at 03:00 CDT = 08:00Z.
  EXPECT_EQ(firings("30 2 * * *", "2027-03-13T09:00:00Z", chicago(), 3),
            (std::vector<std::string>{"2027-03-14T08:00:00Z", "2027-03-15T07:30:00Z",
                                      "2027-03-16T07:30:00Z"}));
  // Every matching minute of the gap and 03:00 itself collapse into one firing.
  EXPECT_EQ(firings("*/15 * * * *", "2027-03-14T07:40:00Z", chicago(), 3),
            (std::vector<std::string>{"2027-03-14T07:45:00Z", "2027-03-14T08:00:00Z",
                                      "2027-03-14T08:15:00Z"}));
}

TEST(CronNext, FallBackRepeatFiresOnceAtTheFirstOccurrence) {
  // 01:30 happens at 06:30Z (CDT) and again at 07:30Z (CST) on 2026-11-01.
  EXPECT_EQ(firings("30 1 * * *", "2026-10-31T12:00:00Z", chicago(), 2),
            (std::vector<std::string>{"2026-11-01T06:30:00Z", "2026-11-02T07:30:00Z"}));
  // Asked during the repeated hour, it does not fire a second time that day.
  EXPECT_EQ(next("30 1 * * *", "2026-11-01T07:10:00Z", chicago()), "2026-11-02T07:30:00Z");
  EXPECT_EQ(firings("*/30 * * * *", "2026-11-01T05:50:00Z", chicago(), 4),
            (std::vector<std::string>{"2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z",
                                      "2026-11-01T08:00:00Z", "2026-11-01T08:30:00Z"}));
  EXPECT_EQ(next("*/30 * * * *", "2026-11-01T07:10:00Z", chicago()), "2026-11-01T08:00:00Z");
}

TEST(CronNext, ImpossibleExpressionsGiveUp) {
  EXPECT_EQ(next("0 0 30 2 *", "2026-11-03T00:00:00Z", utc()), "none");
  EXPECT_EQ(next("0 0 31 4,6,9,11 *", "2026-11-03T00:00:00Z", chicago()), "none");
}

TEST(CronNext, LeapDayIsFoundYearsAhead) {
  EXPECT_EQ(firings("0 0 29 2 *", "2026-03-01T00:00:00Z", utc(), 2),
            (std::vector<std::string>{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}));
}

TEST(CronNext, NullZoneIsRefused) {
  EXPECT_THROW(CronExpression::parse("* * * * *").next_after(Instant{}, nullptr), CronError);
}

TEST(CronParse, ErrorMessages) {
  EXPECT_EQ(parse_error("x * * * *"),
            "cron 'x * * * *': minute field: 'x' is not a number or name; allowed 0-59");
  EXPECT_EQ(parse_error("* * * *"),
            "cron '* * * *': expected 5 fields (minute hour day-of-month month day-of-week), "
            "found 4");
  EXPECT_EQ(parse_error("0 0 * * * *"),
            "cron '0 0 * * * *': expected 5 fields (minute hour day-of-month month "
            "day-of-week), found 6");
  EXPECT_EQ(parse_error(""),
            "cron '': expected 5 fields (minute hour day-of-month month day-of-week), found 0");
  EXPECT_EQ(parse_error("60 * * * *"),
            "cron '60 * * * *': minute field: '60' is out of range; allowed 0-59");
  EXPECT_EQ(parse_error("0 24 * * *"),
            "cron '0 24 * * *': hour field: '24' is out of range; allowed 0-23");
  EXPECT_EQ(parse_error("0 0 0 * *"),
            "cron '0 0 0 * *': day-of-month field: '0' is out of range; allowed 1-31");
  EXPECT_EQ(parse_error("0 0 32 * *"),
            "cron '0 0 32 * *': day-of-month field: '32' is out of range; allowed 1-31");
  EXPECT_EQ(parse_error("0 0 * 13 *"),
            "cron '0 0 * 13 *': month field: '13' is out of range; allowed 1-12 or jan-dec");
  EXPECT_EQ(parse_error("0 0 * foo *"),
            "cron '0 0 * foo *': month field: 'foo' is not a number or name; allowed 1-12 or "
            "jan-dec");
  EXPECT_EQ(parse_error("0 0 * * 8"),
            "cron '0 0 * * 8': day-of-week field: '8' is out of range; allowed 0-7 or sun-sat "
            "(0 and 7 are Sunday)");
  EXPECT_EQ(parse_error("0 0 * * monday"),
            "cron '0 0 * * monday': day-of-week field: 'monday' is not a number or name; "
            "allowed 0-7 or sun-sat (0 and 7 are Sunday)");
  EXPECT_EQ(parse_error("*/0 * * * *"),
            "cron '*/0 * * * *': minute field: step 0 in '*/0' is not allowed; a step must be 1 "
            "or more");
  EXPECT_EQ(parse_error("0-30/0 * * * *"),
            "cron '0-30/0 * * * *': minute field: step 0 in '0-30/0' is not allowed; a step "
            "must be 1 or more");
  EXPECT_EQ(parse_error("*/x * * * *"),
            "cron '*/x * * * *': minute field: step 'x' in '*/x' is not a number; allowed a "
            "whole number of 1 or more");
  EXPECT_EQ(parse_error("30-10 * * * *"),
            "cron '30-10 * * * *': minute field: range '30-10' runs backwards; write the lower "
            "bound first; allowed 0-59");
  EXPECT_EQ(parse_error("0 0 * * fri-sun"),
            "cron '0 0 * * fri-sun': day-of-week field: range 'fri-sun' runs backwards; write "
            "the lower bound first; allowed 0-7 or sun-sat (0 and 7 are Sunday)");
  EXPECT_EQ(parse_error("5/15 * * * *"),
            "cron '5/15 * * * *': minute field: '5/15': a step needs a range; use '*/15' or "
            "'5-59/15'");
  EXPECT_EQ(parse_error("1,,2 * * * *"),
            "cron '1,,2 * * * *': minute field: '1,,2' has an empty list item");
  EXPECT_EQ(parse_error("0 0 * * mon-"),
            "cron '0 0 * * mon-': day-of-week field: 'mon-' is not a number or name; allowed "
            "0-7 or sun-sat (0 and 7 are Sunday)");
  EXPECT_EQ(parse_error("-5 * * * *"),
            "cron '-5 * * * *': minute field: '-5' is not a number or name; allowed 0-59");
  EXPECT_EQ(parse_error("jan * * * *"),
            "cron 'jan * * * *': minute field: 'jan' is not a number or name; allowed 0-59");
  EXPECT_EQ(parse_error("99999999999 * * * *"),
            "cron '99999999999 * * * *': minute field: '99999999999' is out of range; allowed "
            "0-59");
}

// A random expression written as plain lists (with names and 7-for-Sunday mixed in), and the
// same sets kept for a naive matcher.
struct Model {
  std::string text;
  std::set<int> minute, hour, dom, month, dow;
  bool dom_star = true, dow_star = true;

  bool day_matches(date::year_month_day d) const {
    const bool in_dom = dom.contains(int(unsigned(d.day())));
    const bool in_dow = dow.contains(int(date::weekday{d}.c_encoding()));
    return (dom_star || dow_star) ? in_dom && in_dow : in_dom || in_dow;
  }

  // Day by day, minute by minute: slow but plainly right (UTC, so local = UTC).
  std::optional<Instant> next_after(Instant t) const {
    const auto start = std::chrono::floor<std::chrono::minutes>(t) + std::chrono::minutes{1};
    const date::sys_days first_day = std::chrono::floor<date::days>(start);
    for (date::sys_days d = first_day; d < first_day + date::days{3 * 366}; d += date::days{1}) {
      const date::year_month_day ymd{d};
      if (!month.contains(int(unsigned(ymd.month()))) || !day_matches(ymd)) continue;
      for (int m = 0; m < 1440; ++m) {
        const Instant at = d + std::chrono::minutes{m};
        if (at < start) continue;
        if (hour.contains(m / 60) && minute.contains(m % 60)) return at;
      }
    }
    return std::nullopt;
  }
};

Model random_model(std::mt19937& rng) {
  static constexpr const char* kMonths[] = {"jan", "Feb", "MAR", "apr", "may", "jun",
                                            "jul", "aug", "sep", "oct", "nov", "dec"};
  static constexpr const char* kDays[] = {"sun", "mon", "Tue", "wed", "THU", "fri", "sat"};
  auto chance = [&](int percent) {
    return std::uniform_int_distribution<int>(0, 99)(rng) < percent;
  };
  Model model;
  auto field = [&](std::set<int>& values, int lo, int hi, int star_percent, auto spell) {
    if (chance(star_percent)) {
      for (int v = lo; v <= hi; ++v) values.insert(v);
      return std::string("*");
    }
    const int n = std::uniform_int_distribution<int>(1, 4)(rng);
    std::string text;
    for (int i = 0; i < n; ++i) {
      const int v = std::uniform_int_distribution<int>(lo, hi)(rng);
      values.insert(v);
      if (!text.empty()) text += ",";
      text += spell(v);
    }
    return text;
  };
  auto number = [](int v) { return std::to_string(v); };
  const std::string minute = field(model.minute, 0, 59, 20, number);
  const std::string hour = field(model.hour, 0, 23, 30, number);
  // Days 1-28 keep every expression satisfiable within the naive scan's three years.
  const std::string dom = field(model.dom, 1, 28, 50, number);
  const std::string month = field(model.month, 1, 12, 50, [&](int v) {
    return chance(50) ? std::string(kMonths[v - 1]) : std::to_string(v);
  });
  const std::string dow = field(model.dow, 0, 6, 50, [&](int v) {
    if (v == 0 && chance(50)) return std::string("7");
    return chance(50) ? std::string(kDays[v]) : std::to_string(v);
  });
  model.dom_star = dom == "*";
  if (model.dom_star) {
    for (int v = 29; v <= 31; ++v) model.dom.insert(v);
  }
  model.dow_star = dow == "*";
  model.text = minute + " " + hour + " " + dom + " " + month + " " + dow;
  return model;
}

TEST(CronNext, AgreesWithANaiveScan) {
  std::mt19937 rng(1103);
  const Instant base = parse_instant("2026-01-01T00:00:00Z");
  for (int round = 0; round < 300; ++round) {
    const Model model = random_model(rng);
    const CronExpression cron = CronExpression::parse(model.text);
    Instant t = base + std::chrono::seconds{std::uniform_int_distribution<int64_t>(
                           0, int64_t{2} * 366 * 86400)(rng)};
    for (int step = 0; step < 3; ++step) {
      const auto expected = model.next_after(t);
      const auto actual = cron.next_after(t, utc());
      ASSERT_EQ(actual.has_value(), expected.has_value()) << model.text;
      if (!expected) break;
      ASSERT_EQ(format_instant(*actual), format_instant(*expected))
          << model.text << " after " << format_instant(t);
      t = *actual;
    }
  }
}

}  // namespace
}  // namespace slmhub
