// Unit tests for slmhub/time.hpp: instant/date text, zones and DST, interval-set algebra,
// month bounds, business calendars and fiscal years. Expected values are worked out by hand
// from the calendar (2026-11-01 is a Sunday; US DST ends 2026-11-01 and starts 2027-03-14;
// EU DST starts 2026-03-29).
#include "slmhub/time.hpp"

#include <gtest/gtest.h>

#include "error_of.hpp"

#include <date/date.h>

#include <bitset>
#include <random>

namespace slmhub {

// Readable failure output for our types.
static void PrintTo(const Interval& i, std::ostream* os) { *os << to_string(i); }
static void PrintTo(const IntervalSet& s, std::ostream* os) { *os << to_string(s); }

namespace {

using namespace date::literals;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

Instant at(std::string_view text) { return parse_instant(text); }
Interval span(std::string_view from, std::string_view to) { return {at(from), at(to)}; }

const date::time_zone* chicago() { return find_zone("America/Chicago"); }
const date::time_zone* berlin() { return find_zone("Europe/Berlin"); }
const date::time_zone* utc() { return find_zone("UTC"); }

using test::error_of;

// Mon-Fri 08:00-17:00 with the two Thanksgiving holidays of 2026.
BusinessCalendar thanksgiving_calendar() {
  std::array<std::optional<DayHours>, 7> hours;
  for (unsigned wd = 1; wd <= 5; ++wd) hours[wd] = DayHours{480, 1020};
  return BusinessCalendar("provider", chicago(), hours, {2026_y / 11 / 26, 2026_y / 11 / 27});
}

BusinessCalendar sunday_only(const date::time_zone* zone, DayHours h) {
  std::array<std::optional<DayHours>, 7> hours;
  hours[0] = h;
  return BusinessCalendar("sundays", zone, hours, {});
}

// ---- Instants ------------------------------------------------------------------------------

TEST(FormatInstant, IsDateFormatsTextAcrossTheYears) {
  // Hand-written for years 0-9999; date::format is the reference (and the fallback beyond).
  std::mt19937_64 random(7);
  std::vector<std::int64_t> seconds = {
      0,          -1,           59,           86399,        951782400,   951868799,
      1772316000, 253402300799, 253402300800, -62167219200, -62167219201};
  std::uniform_int_distribution<std::int64_t> any(-62167219200 - 86400 * 400, 253402300799 + 86400);
  for (int i = 0; i < 20000; ++i) seconds.push_back(any(random));
  for (const std::int64_t s : seconds) {
    const Instant t{std::chrono::seconds(s)};
    ASSERT_EQ(format_instant(t), date::format("%FT%TZ", t)) << s;
  }
}

TEST(ParseInstant, Utc) {
  EXPECT_EQ(at("2026-11-03T14:00:00Z"), date::sys_days{2026_y / 11 / 3} + hours{14});
  EXPECT_EQ(at("1970-01-01T00:00:00Z").time_since_epoch().count(), 0);
  EXPECT_EQ(at("2026-11-03t14:00:00z"), at("2026-11-03T14:00:00Z"));
}

TEST(ParseInstant, OffsetsAreSubtracted) {
  EXPECT_EQ(format_instant(at("2026-11-03T14:00:00+01:00")), "2026-11-03T13:00:00Z");
  EXPECT_EQ(format_instant(at("2026-11-03T14:00:00-06:00")), "2026-11-03T20:00:00Z");
  EXPECT_EQ(format_instant(at("2026-11-03T14:00:00+0530")), "2026-11-03T08:30:00Z");
  EXPECT_EQ(format_instant(at("2026-11-03T14:00:00-0000")), "2026-11-03T14:00:00Z");
  EXPECT_EQ(format_instant(at("2026-12-31T23:30:00-01:00")), "2027-01-01T00:30:00Z");
  EXPECT_EQ(format_instant(at("2027-01-01T00:15:00+02:00")), "2026-12-31T22:15:00Z");
}

// What is read must be writable as an instant's text and read again: "never ends" written
// as the last second of 9999 in Chicago is 10000-01-01 in UTC, which no instant text names.
TEST(ParseInstant, AnInstantOutsideTheYears0000To9999InUtcIsRefused) {
  EXPECT_EQ(format_instant(at("9999-12-31T23:59:59Z")), "9999-12-31T23:59:59Z");
  EXPECT_EQ(format_instant(at("0000-01-01T00:30:00-01:00")), "0000-01-01T01:30:00Z");
  EXPECT_EQ(error_of<TimeError>([] { at("9999-12-31T23:59:59-06:00"); }),
            "'9999-12-31T23:59:59-06:00': in UTC it falls outside the years 0000 to 9999");
  EXPECT_EQ(error_of<TimeError>([] { at("0000-01-01T00:30:00+01:00"); }),
            "'0000-01-01T00:30:00+01:00': in UTC it falls outside the years 0000 to 9999");
}

TEST(ParseInstant, ZeroFractionIsAccepted) {
  EXPECT_EQ(at("2026-11-03T14:00:00.000Z"), at("2026-11-03T14:00:00Z"));
  EXPECT_EQ(at("2026-11-03T14:00:00.0+01:00"), at("2026-11-03T13:00:00Z"));
}

TEST(ParseInstant, LeapDay) {
  EXPECT_EQ(format_instant(at("2028-02-29T12:00:00Z")), "2028-02-29T12:00:00Z");
  EXPECT_EQ(format_instant(at("2000-02-29T00:00:00Z")), "2000-02-29T00:00:00Z");
}

TEST(ParseInstant, NoOffsetIsAnError) {
  EXPECT_EQ(error_of<TimeError>([] { at("2026-11-03T14:00:00"); }),
            "'2026-11-03T14:00:00': an instant needs a UTC offset such as Z or +01:00");
  EXPECT_EQ(error_of<TimeError>([] { at("2026-11-03T14:00:00.000"); }),
            "'2026-11-03T14:00:00.000': an instant needs a UTC offset such as Z or +01:00");
}

TEST(ParseInstant, FractionIsAnError) {
  EXPECT_EQ(error_of<TimeError>([] { at("2026-11-03T14:00:00.5Z"); }),
            "'2026-11-03T14:00:00.5Z': sub-second precision is not supported; allowed whole "
            "seconds (a fraction of zeros such as .000 is accepted)");
  EXPECT_THROW(at("2026-11-03T14:00:00.001Z"), TimeError);
  EXPECT_THROW(at("2026-11-03T14:00:00.Z"), TimeError);
}

TEST(ParseInstant, RangeErrorsSayWhatIsAllowed) {
  EXPECT_EQ(error_of<TimeError>([] { at("2026-13-03T14:00:00Z"); }),
            "'2026-13-03T14:00:00Z': month 13 is out of range; allowed 01-12");
  EXPECT_EQ(error_of<TimeError>([] { at("2026-00-03T14:00:00Z"); }),
            "'2026-00-03T14:00:00Z': month 00 is out of range; allowed 01-12");
  EXPECT_EQ(error_of<TimeError>([] { at("2026-02-29T14:00:00Z"); }),
            "'2026-02-29T14:00:00Z': day 29 does not exist in 2026-02; allowed 01-28");
  EXPECT_EQ(error_of<TimeError>([] { at("2026-11-31T14:00:00Z"); }),
            "'2026-11-31T14:00:00Z': day 31 does not exist in 2026-11; allowed 01-30");
  EXPECT_EQ(error_of<TimeError>([] { at("2026-11-00T14:00:00Z"); }),
            "'2026-11-00T14:00:00Z': day 00 does not exist in 2026-11; allowed 01-30");
  EXPECT_EQ(error_of<TimeError>([] { at("2026-11-03T24:00:00Z"); }),
            "'2026-11-03T24:00:00Z': hour 24 is out of range; allowed 00-23");
  EXPECT_EQ(error_of<TimeError>([] { at("2026-11-03T14:60:00Z"); }),
            "'2026-11-03T14:60:00Z': minute 60 is out of range; allowed 00-59");
  EXPECT_EQ(error_of<TimeError>([] { at("2026-12-31T23:59:60Z"); }),
            "'2026-12-31T23:59:60Z': second 60: leap seconds are not supported; allowed 00-59");
  EXPECT_EQ(error_of<TimeError>([] { at("2026-11-03T14:00:00+24:00"); }),
            "'2026-11-03T14:00:00+24:00': UTC offset out of range; allowed -23:59 to +23:59");
}

TEST(ParseInstant, ShapeErrorsQuoteTheInput) {
  for (std::string_view bad :
       {"", "yesterday", "2026-11-03", "2026-11-03 14:00:00Z", "2026-11-3T14:00:00Z",
        "2026-11-03T14:00Z", "2026-11-03T14:00:00ZZ", "2026-11-03T14:00:00+1",
        "2026-11-03T14:00:00+01", "2026-11-03T14:00:00+01:0", "2026-11-03T14:00:00 Z",
        "+2026-11-03T14:00:00Z", "2026-11-03T14:00:00UTC"}) {
    const std::string message = error_of<TimeError>([&] { at(bad); });
    EXPECT_EQ(message.rfind("'" + std::string(bad) + "': ", 0), 0u) << message;
    EXPECT_NE(message.find("expected YYYY-MM-DDTHH:MM:SS followed by Z or a UTC offset such "
                           "as +01:00"),
              std::string::npos)
        << message;
  }
}

TEST(ParseInstant, LongInputIsShortenedInTheMessage) {
  const std::string junk(500, 'x');
  const std::string message = error_of<TimeError>([&] { at(junk); });
  EXPECT_EQ(message.rfind("'" + std::string(64, 'x') + "...': ", 0), 0u) << message;
}

TEST(FormatInstant, IsUtcWithZ) {
  EXPECT_EQ(format_instant(Instant{}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_instant(date::sys_days{2026_y / 11 / 3} + hours{14} + minutes{5} + seconds{9}),
            "2026-11-03T14:05:09Z");
  for (std::string_view text :
       {"2026-11-03T14:00:00Z", "1999-12-31T23:59:59Z", "2028-02-29T00:00:01Z"}) {
    EXPECT_EQ(format_instant(at(text)), text);
  }
}

// ---- Dates and months ------------------------------------------------------------------------

TEST(ParseDate, ValidAndRoundTrips) {
  EXPECT_EQ(parse_date("2026-11-26"), 2026_y / 11 / 26);
  EXPECT_EQ(parse_date("2028-02-29"), 2028_y / 2 / 29);
  EXPECT_EQ(format_date(2026_y / 11 / 3), "2026-11-03");
  EXPECT_EQ(format_date(parse_date("0999-01-09")), "0999-01-09");
}

TEST(ParseDate, Errors) {
  EXPECT_EQ(error_of<TimeError>([] { parse_date("2026-11-31"); }),
            "'2026-11-31': day 31 does not exist in 2026-11; allowed 01-30");
  EXPECT_EQ(error_of<TimeError>([] { parse_date("2100-02-29"); }),
            "'2100-02-29': day 29 does not exist in 2100-02; allowed 01-28");
  EXPECT_EQ(error_of<TimeError>([] { parse_date("2026-1-05"); }),
            "'2026-1-05': expected a date YYYY-MM-DD");
  EXPECT_EQ(error_of<TimeError>([] { parse_date("2026-11-03T00:00:00Z"); }),
            "'2026-11-03T00:00:00Z': expected a date YYYY-MM-DD");
  EXPECT_EQ(error_of<TimeError>([] { parse_date("2026-13-01"); }),
            "'2026-13-01': month 13 is out of range; allowed 01-12");
}

TEST(ParseMonth, ValidAndErrors) {
  EXPECT_EQ(parse_month("2026-11"), 2026_y / 11);
  EXPECT_EQ(format_month(2026_y / 3), "2026-03");
  EXPECT_EQ(error_of<TimeError>([] { parse_month("2026-00"); }),
            "'2026-00': month 00 is out of range; allowed 01-12");
  EXPECT_EQ(error_of<TimeError>([] { parse_month("2026-11-01"); }),
            "'2026-11-01': expected a month YYYY-MM");
  EXPECT_EQ(error_of<TimeError>([] { parse_month("26-11"); }), "'26-11': expected a month YYYY-MM");
}

// ---- Zones -----------------------------------------------------------------------------------

TEST(FindZone, KnownAndUnknown) {
  EXPECT_EQ(chicago()->name(), "America/Chicago");
  EXPECT_EQ(find_zone("America/Chicago"), chicago());
  EXPECT_EQ(error_of<TimeError>([] { find_zone("Mars/Olympus_Mons"); }),
            "'Mars/Olympus_Mons': unknown time zone; expected an IANA name such as "
            "America/Chicago or UTC");
  EXPECT_THROW(find_zone(""), TimeError);
}

TEST(LocalToUtc, UniqueGapAndAmbiguous) {
  const auto* z = chicago();
  EXPECT_EQ(format_instant(local_to_utc(date::local_days{2026_y / 7 / 1} + hours{12}, z)),
            "2026-07-01T17:00:00Z");
  EXPECT_EQ(format_instant(local_to_utc(date::local_days{2026_y / 12 / 1} + hours{12}, z)),
            "2026-12-01T18:00:00Z");
  // 02:30 does not exist on 2027-03-14: the gap ends at 03:00 CDT = 08:00Z.
  EXPECT_EQ(
      format_instant(local_to_utc(date::local_days{2027_y / 3 / 14} + hours{2} + minutes{30}, z)),
      "2027-03-14T08:00:00Z");
  EXPECT_EQ(format_instant(local_to_utc(date::local_days{2027_y / 3 / 14} + hours{2}, z)),
            "2027-03-14T08:00:00Z");
  EXPECT_EQ(format_instant(local_to_utc(date::local_days{2027_y / 3 / 14} + hours{3}, z)),
            "2027-03-14T08:00:00Z");
  // 01:30 happens twice on 2026-11-01: first at 06:30Z (CDT), then 07:30Z (CST).
  EXPECT_EQ(
      format_instant(local_to_utc(date::local_days{2026_y / 11 / 1} + hours{1} + minutes{30}, z)),
      "2026-11-01T06:30:00Z");
  EXPECT_EQ(format_instant(local_to_utc(date::local_days{2026_y / 11 / 1} + hours{2}, z)),
            "2026-11-01T08:00:00Z");
}

TEST(LocalDate, FollowsTheZone) {
  EXPECT_EQ(local_date(at("2026-11-01T04:59:59Z"), chicago()), 2026_y / 10 / 31);
  EXPECT_EQ(local_date(at("2026-11-01T05:00:00Z"), chicago()), 2026_y / 11 / 1);
  EXPECT_EQ(local_date(at("2026-11-01T05:00:00Z"), utc()), 2026_y / 11 / 1);
  EXPECT_EQ(local_date(at("2026-03-28T23:00:00Z"), berlin()), 2026_y / 3 / 29);
}

// ---- Intervals ------------------------------------------------------------------------------

TEST(Interval, SecondsAndEmpty) {
  const Interval hour = span("2026-11-03T14:00:00Z", "2026-11-03T15:00:00Z");
  EXPECT_EQ(hour.seconds(), 3600);
  EXPECT_FALSE(hour.empty());
  const Interval none = span("2026-11-03T14:00:00Z", "2026-11-03T14:00:00Z");
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.seconds(), 0);
  const Interval backwards = span("2026-11-03T15:00:00Z", "2026-11-03T14:00:00Z");
  EXPECT_TRUE(backwards.empty());
  EXPECT_EQ(backwards.seconds(), 0);
}

// Small instants keep the set-algebra tests readable: t(10) is 10 s after the epoch.
Instant t(int64_t s) { return Instant{seconds{s}}; }
Interval iv(int64_t a, int64_t b) { return {t(a), t(b)}; }

TEST(IntervalSet, ConstructorNormalizes) {
  const IntervalSet s{iv(50, 60), iv(0, 10),  iv(5, 20), iv(20, 30),
                      iv(40, 40), iv(45, 44), iv(55, 58)};
  EXPECT_EQ(s.intervals(), (std::vector<Interval>{iv(0, 30), iv(50, 60)}));
  EXPECT_EQ(s.measure(), 40);
  EXPECT_EQ(IntervalSet(std::vector<Interval>{iv(3, 4), iv(1, 2)}).intervals(),
            (std::vector<Interval>{iv(1, 2), iv(3, 4)}));
  EXPECT_TRUE(IntervalSet{}.empty());
  EXPECT_TRUE((IntervalSet{iv(5, 5)}.empty()));
  EXPECT_EQ(IntervalSet{}.measure(), 0);
}

TEST(IntervalSet, AddMergesOverlapsAndNeighbours) {
  IntervalSet s{iv(0, 10), iv(20, 30), iv(40, 50), iv(60, 70)};
  s.add(iv(35, 38));  // disjoint: inserted in order
  EXPECT_EQ(s.intervals(),
            (std::vector<Interval>{iv(0, 10), iv(20, 30), iv(35, 38), iv(40, 50), iv(60, 70)}));
  s.add(iv(25, 40));  // overlaps one, touches another
  EXPECT_EQ(s.intervals(), (std::vector<Interval>{iv(0, 10), iv(20, 50), iv(60, 70)}));
  s.add(iv(10, 20));  // exactly fills a gap
  EXPECT_EQ(s.intervals(), (std::vector<Interval>{iv(0, 50), iv(60, 70)}));
  s.add(iv(80, 80));  // empty: ignored
  s.add(iv(-5, 0));   // touches the front
  s.add(iv(70, 75));  // touches the back
  EXPECT_EQ(s.intervals(), (std::vector<Interval>{iv(-5, 50), iv(60, 75)}));
  s.add(iv(-100, 100));
  EXPECT_EQ(s.intervals(), (std::vector<Interval>{iv(-100, 100)}));
}

TEST(IntervalSet, UniteCountsOverlapOnce) {
  const IntervalSet a{iv(0, 10), iv(20, 30)};
  const IntervalSet b{iv(5, 15), iv(30, 35), iv(50, 60)};
  const IntervalSet u = a.unite(b);
  EXPECT_EQ(u.intervals(), (std::vector<Interval>{iv(0, 15), iv(20, 35), iv(50, 60)}));
  EXPECT_EQ(u.measure(), 40);
  EXPECT_EQ(b.unite(a), u);
  EXPECT_EQ(a.unite(IntervalSet{}), a);
  EXPECT_EQ(IntervalSet{}.unite(a), a);
}

TEST(IntervalSet, Intersect) {
  const IntervalSet a{iv(0, 10), iv(20, 30), iv(40, 50)};
  const IntervalSet b{iv(5, 25), iv(30, 40), iv(45, 100)};
  EXPECT_EQ(a.intersect(b).intervals(), (std::vector<Interval>{iv(5, 10), iv(20, 25), iv(45, 50)}));
  EXPECT_EQ(b.intersect(a), a.intersect(b));
  // Touching is not overlapping in a half-open world.
  EXPECT_TRUE((IntervalSet{iv(0, 10)}.intersect(IntervalSet{iv(10, 20)}).empty()));
  EXPECT_TRUE(a.intersect(IntervalSet{}).empty());
}

TEST(IntervalSet, Subtract) {
  const IntervalSet a{iv(0, 100)};
  EXPECT_EQ(a.subtract(IntervalSet{iv(10, 20), iv(30, 40)}).intervals(),
            (std::vector<Interval>{iv(0, 10), iv(20, 30), iv(40, 100)}));
  EXPECT_EQ(a.subtract(IntervalSet{iv(-10, 5), iv(95, 200)}).intervals(),
            (std::vector<Interval>{iv(5, 95)}));
  EXPECT_TRUE(a.subtract(IntervalSet{iv(-1, 101)}).empty());
  EXPECT_EQ(a.subtract(IntervalSet{iv(100, 110)}), a);
  // One cut that spans the gap between two pieces removes from both.
  const IntervalSet two{iv(0, 10), iv(20, 30)};
  EXPECT_EQ(two.subtract(IntervalSet{iv(5, 25)}).intervals(),
            (std::vector<Interval>{iv(0, 5), iv(25, 30)}));
  EXPECT_EQ(two.subtract(IntervalSet{iv(5, 25), iv(27, 28)}).intervals(),
            (std::vector<Interval>{iv(0, 5), iv(25, 27), iv(28, 30)}));
  EXPECT_EQ(two.subtract(IntervalSet{}), two);
}

TEST(IntervalSet, EarliestTakesTheFirstSecondsInTimeOrder) {
  const IntervalSet s{iv(0, 10), iv(20, 30), iv(40, 50)};
  EXPECT_TRUE(s.earliest(0).empty());
  EXPECT_TRUE(s.earliest(-5).empty());
  EXPECT_EQ(s.earliest(4).intervals(), (std::vector<Interval>{iv(0, 4)}));
  EXPECT_EQ(s.earliest(10).intervals(), (std::vector<Interval>{iv(0, 10)}));
  EXPECT_EQ(s.earliest(15).intervals(), (std::vector<Interval>{iv(0, 10), iv(20, 25)}));
  EXPECT_EQ(s.earliest(15).measure(), 15);
  EXPECT_EQ(s.earliest(30), s);
  EXPECT_EQ(s.earliest(1000), s);
}

TEST(IntervalSet, ContainsIsHalfOpen) {
  const IntervalSet s{iv(0, 10), iv(20, 30)};
  EXPECT_TRUE(s.contains(t(0)));
  EXPECT_TRUE(s.contains(t(9)));
  EXPECT_FALSE(s.contains(t(10)));
  EXPECT_FALSE(s.contains(t(15)));
  EXPECT_TRUE(s.contains(t(20)));
  EXPECT_FALSE(s.contains(t(30)));
  EXPECT_FALSE(s.contains(t(-1)));
  EXPECT_FALSE(IntervalSet{}.contains(t(0)));
}

TEST(IntervalSet, ToString) {
  EXPECT_EQ(to_string(IntervalSet{span("2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z")}),
            "{[2026-11-01T05:00:00Z, 2026-11-01T06:00:00Z)}");
  EXPECT_EQ(to_string(IntervalSet{}), "{}");
}

// Every operation against a per-second bitmap over [0, 128), with random sets.
TEST(IntervalSet, AgreesWithABitmapModel) {
  constexpr int kSpan = 128;
  using Bits = std::bitset<kSpan>;
  std::mt19937 rng(20261103);
  auto random_pieces = [&] {
    std::vector<Interval> pieces;
    const int n = std::uniform_int_distribution<int>(0, 6)(rng);
    for (int i = 0; i < n; ++i) {
      const int a = std::uniform_int_distribution<int>(0, kSpan - 1)(rng);
      const int len = std::uniform_int_distribution<int>(0, 30)(rng);
      pieces.push_back(iv(a, std::min(kSpan, a + len)));
    }
    return pieces;
  };
  auto bits_of = [](const std::vector<Interval>& pieces) {
    Bits b;
    for (const auto& p : pieces) {
      for (auto x = p.start; x < p.end; x += seconds{1}) b.set(x.time_since_epoch().count());
    }
    return b;
  };
  auto check_normalized = [](const IntervalSet& s) {
    const auto& v = s.intervals();
    for (std::size_t i = 0; i < v.size(); ++i) {
      EXPECT_FALSE(v[i].empty());
      if (i > 0) {
        EXPECT_LT(v[i - 1].end, v[i].start) << to_string(s);
      }
    }
  };
  for (int round = 0; round < 500; ++round) {
    const auto pa = random_pieces();
    const auto pb = random_pieces();
    const IntervalSet a(pa);
    const IntervalSet b(pb);
    IntervalSet added;
    for (const auto& p : pb) added.add(p);
    const Bits ba = bits_of(pa), bb = bits_of(pb);
    for (const IntervalSet& s : {a, b, added, a.unite(b), a.intersect(b), a.subtract(b)}) {
      check_normalized(s);
    }
    EXPECT_EQ(added, b);
    EXPECT_EQ(bits_of(a.intervals()), ba);
    EXPECT_EQ(a.measure(), int64_t(ba.count()));
    EXPECT_EQ(bits_of(a.unite(b).intervals()), ba | bb);
    EXPECT_EQ(bits_of(a.intersect(b).intervals()), ba & bb);
    EXPECT_EQ(bits_of(a.subtract(b).intervals()), ba & ~bb);
    const int n = std::uniform_int_distribution<int>(-2, kSpan)(rng);
    Bits first_n;
    int taken = 0;
    for (int x = 0; x < kSpan && taken < n; ++x) {
      if (ba[x]) {
        first_n.set(x);
        ++taken;
      }
    }
    EXPECT_EQ(bits_of(a.earliest(n).intervals()), first_n);
    const int probe = std::uniform_int_distribution<int>(-1, kSpan)(rng);
    EXPECT_EQ(a.contains(t(probe)), probe >= 0 && probe < kSpan && ba[probe]);
  }
}

// ---- Months ---------------------------------------------------------------------------------

TEST(MonthBounds, NovemberInChicagoHasAnExtraHour) {
  const Interval m = month_bounds(2026_y / 11, chicago());
  EXPECT_EQ(m, span("2026-11-01T05:00:00Z", "2026-12-01T06:00:00Z"));
  EXPECT_EQ(m.seconds(), 2'595'600);
}

TEST(MonthBounds, OtherMonths) {
  // March 2027 in Chicago loses an hour.
  const Interval march = month_bounds(2027_y / 3, chicago());
  EXPECT_EQ(march, span("2027-03-01T06:00:00Z", "2027-04-01T05:00:00Z"));
  EXPECT_EQ(march.seconds(), 31 * 86400 - 3600);
  EXPECT_EQ(month_bounds(2028_y / 2, utc()), span("2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"));
  EXPECT_EQ(month_bounds(2026_y / 12, berlin()),
            span("2026-11-30T23:00:00Z", "2026-12-31T23:00:00Z"));
}

// ---- Business calendars ----------------------------------------------------------------------

TEST(BusinessCalendar, WeekdaysDefault) {
  const BusinessCalendar cal = BusinessCalendar::weekdays(chicago());
  EXPECT_EQ(cal.id(), "default");
  EXPECT_EQ(cal.zone(), chicago());
  EXPECT_FALSE(cal.hours()[0].has_value());
  EXPECT_FALSE(cal.hours()[6].has_value());
  for (int wd = 1; wd <= 5; ++wd) EXPECT_EQ(cal.hours()[wd], (DayHours{480, 1020}));
  EXPECT_TRUE(cal.holidays().empty());
  EXPECT_TRUE(cal.is_business_day(2026_y / 11 / 26));
  // 2026-11 has 21 weekdays of 9 h.
  EXPECT_EQ(cal.business_hours(month_bounds(2026_y / 11, chicago())).measure(), 21 * 9 * 3600);
}

TEST(BusinessCalendar, RejectsBadInput) {
  std::array<std::optional<DayHours>, 7> hours;
  hours[1] = DayHours{1020, 480};
  EXPECT_EQ(error_of<TimeError>([&] { BusinessCalendar("ops", chicago(), hours, {}); }),
            "calendar 'ops': mon hours open_minute=1020 close_minute=480 are invalid; allowed 0 "
            "<= open < close <= 1440 (00:00-24:00)");
  hours[1] = DayHours{0, 1441};
  EXPECT_THROW(BusinessCalendar("ops", chicago(), hours, {}), TimeError);
  hours[1] = DayHours{-1, 60};
  EXPECT_THROW(BusinessCalendar("ops", chicago(), hours, {}), TimeError);
  hours[1] = DayHours{0, 1440};
  EXPECT_NO_THROW(BusinessCalendar("ops", chicago(), hours, {}));
  EXPECT_THROW(BusinessCalendar("ops", nullptr, hours, {}), TimeError);
}

TEST(BusinessCalendar, IsBusinessDay) {
  const BusinessCalendar cal = thanksgiving_calendar();
  EXPECT_TRUE(cal.is_business_day(2026_y / 11 / 25));   // Wednesday
  EXPECT_FALSE(cal.is_business_day(2026_y / 11 / 26));  // holiday
  EXPECT_FALSE(cal.is_business_day(2026_y / 11 / 27));  // holiday
  EXPECT_FALSE(cal.is_business_day(2026_y / 11 / 28));  // Saturday
  EXPECT_FALSE(cal.is_business_day(2026_y / 11 / 29));  // Sunday
  EXPECT_TRUE(cal.is_business_day(2026_y / 11 / 30));   // Monday
}

TEST(BusinessCalendar, NovemberBusinessHours) {
  const BusinessCalendar cal = thanksgiving_calendar();
  const IntervalSet h = cal.business_hours(month_bounds(2026_y / 11, chicago()));
  EXPECT_EQ(h.measure(), 615'600);  // 19 days x 9 h
  ASSERT_EQ(h.intervals().size(), 19u);
  // CST from 1 November: 08:00-17:00 is 14:00Z-23:00Z.
  EXPECT_EQ(h.intervals().front(), span("2026-11-02T14:00:00Z", "2026-11-02T23:00:00Z"));
  EXPECT_EQ(h.intervals().back(), span("2026-11-30T14:00:00Z", "2026-11-30T23:00:00Z"));
  EXPECT_FALSE(h.contains(at("2026-11-26T15:00:00Z")));
  EXPECT_TRUE(h.contains(at("2026-11-25T22:59:59Z")));

  const Interval outage = span("2026-11-25T22:00:00Z", "2026-11-30T15:00:00Z");
  EXPECT_EQ(IntervalSet{outage}.intersect(h).measure(), 7'200);
  EXPECT_EQ(cal.business_hours(outage).measure(), 7'200);
  EXPECT_EQ(cal.business_hours(outage).intervals(),
            (std::vector<Interval>{span("2026-11-25T22:00:00Z", "2026-11-25T23:00:00Z"),
                                   span("2026-11-30T14:00:00Z", "2026-11-30T15:00:00Z")}));
}

TEST(BusinessCalendar, BusinessHoursClipAndEmpty) {
  const BusinessCalendar cal = thanksgiving_calendar();
  EXPECT_TRUE(cal.business_hours(span("2026-11-03T14:00:00Z", "2026-11-03T14:00:00Z")).empty());
  EXPECT_TRUE(cal.business_hours(span("2026-11-28T00:00:00Z", "2026-11-30T14:00:00Z")).empty());
  EXPECT_EQ(cal.business_hours(span("2026-11-03T16:30:00Z", "2026-11-04T15:00:00Z")).measure(),
            (6 * 3600 + 1800) + 3600);
  // Before the DST change 08:00-17:00 CDT is 13:00Z-22:00Z.
  EXPECT_EQ(cal.business_hours(month_bounds(2026_y / 10, chicago())).intervals().front(),
            span("2026-10-01T13:00:00Z", "2026-10-01T22:00:00Z"));
}

TEST(BusinessCalendar, DstChangeInsideHoursCountsRealTime) {
  // Last Sunday of March 2026: Berlin skips 02:00-03:00.
  const BusinessCalendar all_day = sunday_only(berlin(), {0, 1440});
  const IntervalSet march = all_day.business_hours(month_bounds(2026_y / 3, berlin()));
  EXPECT_EQ(march.measure(), 4 * 24 * 3600 + 23 * 3600);  // Sundays 1, 8, 15, 22 and 29
  EXPECT_EQ(march.intervals().back(), span("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"));
  EXPECT_EQ(march.intervals().back().seconds(), 23 * 3600);

  // Fall-back day in Chicago: 00:00-12:00 local holds 13 real hours.
  const BusinessCalendar morning = sunday_only(chicago(), {0, 720});
  const IntervalSet nov1 =
      morning.business_hours(span("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"));
  EXPECT_EQ(nov1.intervals(),
            (std::vector<Interval>{span("2026-11-01T05:00:00Z", "2026-11-01T18:00:00Z")}));
}

TEST(BusinessCalendar, DstChangeOutsideHoursKeepsNineHours) {
  const BusinessCalendar office = sunday_only(chicago(), {480, 1020});
  const IntervalSet nov1 =
      office.business_hours(span("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"));
  EXPECT_EQ(nov1.intervals(),
            (std::vector<Interval>{span("2026-11-01T14:00:00Z", "2026-11-01T23:00:00Z")}));
  const IntervalSet mar14 =
      office.business_hours(span("2027-03-14T00:00:00Z", "2027-03-15T00:00:00Z"));
  EXPECT_EQ(mar14.intervals(),
            (std::vector<Interval>{span("2027-03-14T13:00:00Z", "2027-03-14T22:00:00Z")}));
}

TEST(BusinessCalendar, RoundTheClockDaysMergeIntoOnePiece) {
  std::array<std::optional<DayHours>, 7> hours;
  hours.fill(DayHours{0, 1440});
  const BusinessCalendar always("24x7", chicago(), hours, {});
  const Interval month = month_bounds(2026_y / 11, chicago());
  EXPECT_EQ(always.business_hours(month), IntervalSet{month});
}

TEST(BusinessCalendar, AddBusinessDays) {
  const BusinessCalendar cal = thanksgiving_calendar();
  EXPECT_EQ(format_date(cal.add_business_days(2026_y / 11 / 25, 1)), "2026-11-30");
  EXPECT_EQ(format_date(cal.add_business_days(2026_y / 11 / 25, 0)), "2026-11-25");
  EXPECT_EQ(format_date(cal.add_business_days(2026_y / 11 / 20, 1)), "2026-11-23");  // Fri
  EXPECT_EQ(format_date(cal.add_business_days(2026_y / 11 / 21, 1)), "2026-11-23");  // Sat
  EXPECT_EQ(format_date(cal.add_business_days(2026_y / 11 / 26, 1)), "2026-11-30");  // holiday
  EXPECT_EQ(format_date(cal.add_business_days(2026_y / 11 / 20, 5)), "2026-12-01");
  EXPECT_EQ(format_date(cal.add_business_days(2026_y / 11 / 2, 15)), "2026-11-23");
  EXPECT_EQ(format_date(cal.add_business_days(2026_y / 11 / 2, 17)), "2026-11-25");
  EXPECT_EQ(format_date(cal.add_business_days(2026_y / 11 / 2, 18)), "2026-11-30");
  EXPECT_THROW(cal.add_business_days(2026_y / 11 / 25, -1), std::invalid_argument);

  const BusinessCalendar closed("closed", chicago(), {}, {});
  EXPECT_THROW(closed.add_business_days(2026_y / 11 / 25, 1), TimeError);
  EXPECT_EQ(closed.add_business_days(2026_y / 11 / 25, 0), 2026_y / 11 / 25);
}

// DOMAIN.md §3: the start date on or after the announcement date plus 5 business days. A
// Saturday-night start after a Monday announcement has four business days (Tue-Fri), not
// five, although it comes after the end of the fourth.
TEST(BusinessCalendar, NoticeCountsTheStartsDateNotTheEndOfTheFourthDay) {
  const BusinessCalendar cal = thanksgiving_calendar();
  const Instant monday = parse_instant("2026-11-02T15:00:00Z");  // 09:00 in Chicago
  EXPECT_FALSE(cal.gives_notice(monday, parse_instant("2026-11-07T08:00:00Z"), 5));  // Sat 02:00
  EXPECT_FALSE(cal.gives_notice(monday, parse_instant("2026-11-09T05:59:59Z"), 5));  // Sun 23:59
  EXPECT_TRUE(cal.gives_notice(monday, parse_instant("2026-11-09T06:00:00Z"), 5));   // Mon 00:00
  EXPECT_TRUE(cal.gives_notice(monday, monday, 0));
}

TEST(BusinessCalendar, EndOfDayAndDeadlines) {
  const BusinessCalendar cal = thanksgiving_calendar();
  EXPECT_EQ(format_instant(cal.end_of_day(2026_y / 10 / 31)), "2026-11-01T05:00:00Z");
  EXPECT_EQ(format_instant(cal.end_of_day(2026_y / 11 / 1)), "2026-11-02T06:00:00Z");
  EXPECT_EQ(format_instant(cal.business_days_after(at("2026-11-25T22:00:00Z"), 1)),
            "2026-12-01T06:00:00Z");
  // 05:30Z on the 26th is still Wednesday the 25th in Chicago.
  EXPECT_EQ(format_instant(cal.business_days_after(at("2026-11-26T05:30:00Z"), 1)),
            "2026-12-01T06:00:00Z");
  EXPECT_EQ(format_instant(cal.business_days_after(at("2026-11-26T06:00:00Z"), 1)),
            "2026-12-01T06:00:00Z");
  EXPECT_EQ(format_instant(cal.business_days_after(at("2026-11-25T22:00:00Z"), 0)),
            "2026-11-26T06:00:00Z");
}

// Business time in the Thanksgiving calendar (Chicago, weekdays 08:00-17:00, 26 and 27
// November 2026 closed): response targets stop at closing time and resume at opening.
TEST(BusinessCalendar, AddBusinessTimeCountsOnlyOpenHours) {
  const BusinessCalendar cal = thanksgiving_calendar();
  using std::chrono::minutes;
  // Tuesday 10:00 CST + 30 minutes.
  EXPECT_EQ(format_instant(cal.add_business_time(at("2026-11-24T16:00:00Z"), minutes(30))),
            "2026-11-24T16:30:00Z");
  // A business day (9 hours) from Tuesday 14:00: Wednesday 14:00.
  EXPECT_EQ(format_instant(cal.add_business_time(at("2026-11-24T20:00:00Z"), minutes(540))),
            "2026-11-25T20:00:00Z");
  // Wednesday 16:50 + 30 minutes: 10 minutes that day, the rest after the holidays and the
  // weekend, Monday 30 November 08:20.
  EXPECT_EQ(format_instant(cal.add_business_time(at("2026-11-25T22:50:00Z"), minutes(30))),
            "2026-11-30T14:20:00Z");
  // Exactly to closing time stays that day; from a Saturday, the clock starts on Monday.
  EXPECT_EQ(format_instant(cal.add_business_time(at("2026-11-25T22:30:00Z"), minutes(30))),
            "2026-11-25T23:00:00Z");
  EXPECT_EQ(format_instant(cal.add_business_time(at("2026-11-28T18:00:00Z"), minutes(540))),
            "2026-11-30T23:00:00Z");
  // Across the spring DST change (8 March 2026): Friday 16:00 CST + 9 hours is Monday 16:00
  // CDT, one hour earlier in UTC.
  EXPECT_EQ(format_instant(cal.add_business_time(at("2026-03-06T22:00:00Z"), minutes(540))),
            "2026-03-09T21:00:00Z");
  EXPECT_EQ(cal.add_business_time(at("2026-11-28T18:00:00Z"), minutes(0)),
            at("2026-11-28T18:00:00Z"));
  EXPECT_THROW(cal.add_business_time(at("2026-11-28T18:00:00Z"), minutes(-1)), TimeError);
}

TEST(CalendarDaysAfter, EndOfTheLocalDayNDaysLater) {
  EXPECT_EQ(format_instant(calendar_days_after(at("2026-11-25T22:00:00Z"), 30, chicago())),
            "2026-12-26T06:00:00Z");
  EXPECT_EQ(format_instant(calendar_days_after(at("2026-11-25T22:00:00Z"), 0, chicago())),
            "2026-11-26T06:00:00Z");
  EXPECT_EQ(format_instant(calendar_days_after(at("2026-10-31T12:00:00Z"), 1, chicago())),
            "2026-11-02T06:00:00Z");
  EXPECT_EQ(format_instant(calendar_days_after(at("2026-11-01T04:00:00Z"), 60, chicago())),
            "2026-12-31T06:00:00Z");
  EXPECT_EQ(format_instant(calendar_days_after(at("2026-11-25T22:00:00Z"), -1, chicago())),
            "2026-11-25T06:00:00Z");
}

// ---- Fiscal years ---------------------------------------------------------------------------

TEST(FiscalYear, SeptemberStartIsNamedByItsEnd) {
  const FiscalYear before = fiscal_year_of(at("2026-09-01T04:59:59Z"), chicago(), 9);
  EXPECT_EQ(before.year, 2026);
  EXPECT_EQ(before.bounds, span("2025-09-01T05:00:00Z", "2026-09-01T05:00:00Z"));
  const FiscalYear after = fiscal_year_of(at("2026-09-01T05:00:00Z"), chicago(), 9);
  EXPECT_EQ(after.year, 2027);
  EXPECT_EQ(after.bounds, span("2026-09-01T05:00:00Z", "2027-09-01T05:00:00Z"));
  EXPECT_EQ(fiscal_year_of(at("2027-08-31T12:00:00Z"), chicago(), 9), after);
}

TEST(FiscalYear, OtherStartMonths) {
  const FiscalYear calendar = fiscal_year_of(at("2026-06-15T12:00:00Z"), chicago(), 1);
  EXPECT_EQ(calendar.year, 2026);
  EXPECT_EQ(calendar.bounds, span("2026-01-01T06:00:00Z", "2027-01-01T06:00:00Z"));
  // Local date is 2026-12-31 even though UTC is already 2027.
  EXPECT_EQ(fiscal_year_of(at("2027-01-01T05:59:59Z"), chicago(), 1).year, 2026);
  const FiscalYear july = fiscal_year_of(at("2026-06-30T12:00:00Z"), utc(), 7);
  EXPECT_EQ(july.year, 2026);
  EXPECT_EQ(july.bounds, span("2025-07-01T00:00:00Z", "2026-07-01T00:00:00Z"));
  EXPECT_EQ(fiscal_year_of(at("2026-07-01T00:00:00Z"), utc(), 7).year, 2027);
  EXPECT_EQ(fiscal_year_of(at("2026-12-31T23:59:59Z"), utc(), 12).year, 2027);
  EXPECT_EQ(fiscal_year_of(at("2026-11-30T23:59:59Z"), utc(), 12).year, 2026);
}

TEST(FiscalYear, StartMonthMustBeAMonth) {
  EXPECT_EQ(error_of<std::invalid_argument>(
                [] { fiscal_year_of(at("2026-06-15T12:00:00Z"), chicago(), 0); }),
            "fiscal year start month 0 is out of range; allowed 1-12");
  EXPECT_THROW(fiscal_year_of(at("2026-06-15T12:00:00Z"), chicago(), 13), std::invalid_argument);
}

TEST(NullZone, IsRefused) {
  EXPECT_THROW(local_date(at("2026-06-15T12:00:00Z"), nullptr), TimeError);
  EXPECT_THROW(month_bounds(2026_y / 11, nullptr), TimeError);
  EXPECT_THROW(calendar_days_after(at("2026-06-15T12:00:00Z"), 1, nullptr), TimeError);
}

}  // namespace
}  // namespace slmhub
