#include "slmhub/time.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace slmhub {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr std::string_view kInstantShape =
    "expected YYYY-MM-DDTHH:MM:SS followed by Z or a UTC offset such as +01:00";

// The instants an instant's text can name in UTC: format_instant writes these, parse_instant
// reads them.
constexpr Instant kEarliestInstant{date::sys_days{date::year{0} / 1 / 1}};
constexpr Instant kLatestInstant{date::sys_days{date::year{9999} / 12 / 31} + hours{23} +
                                 minutes{59} + seconds{59}};

// Inputs come from users and files; a huge one must not make a huge message.
std::string quote(std::string_view text) {
  constexpr std::size_t kMax = 64;
  std::string out = "'";
  if (text.size() > kMax) {
    out.append(text.substr(0, kMax));
    out.append("...");
  } else {
    out.append(text);
  }
  out.push_back('\'');
  return out;
}

[[noreturn]] void fail(std::string_view text, std::string_view problem) {
  throw TimeError(quote(text) + ": " + std::string(problem));
}

const date::time_zone* require_zone(const date::time_zone* zone, std::string_view what) {
  if (zone == nullptr) throw TimeError(std::string(what) + ": no time zone given");
  return zone;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `count` digits at `pos`; nullopt if any is not a digit or the text is short.
std::optional<int> digits(std::string_view text, std::size_t pos, std::size_t count) {
  if (pos + count > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (!is_digit(text[i])) return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

std::string two_digits(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02u", v % 100);
  return buf;
}

// Parses the `YYYY-MM-DD` at the start of `text` (which is quoted in errors as `whole`).
date::year_month_day parse_ymd_prefix(std::string_view text, std::string_view whole,
                                      std::string_view shape) {
  auto y = digits(text, 0, 4);
  auto m = digits(text, 5, 2);
  auto d = digits(text, 8, 2);
  if (!y || !m || !d || text[4] != '-' || text[7] != '-') fail(whole, shape);
  if (*m < 1 || *m > 12) {
    fail(whole, "month " + two_digits(*m) + " is out of range; allowed 01-12");
  }
  date::year_month_day ymd{date::year{*y}, date::month(*m), date::day(*d)};
  if (!ymd.ok()) {
    fail(whole, "day " + two_digits(*d) + " does not exist in " +
                    format_month(ymd.year() / ymd.month()) + "; allowed 01-" +
                    two_digits(unsigned((ymd.year() / ymd.month() / date::last).day())));
  }
  return ymd;
}

}  // namespace

Instant parse_instant(std::string_view text) {
  // Fixed positions: 0123456789012345678
  //                  YYYY-MM-DDTHH:MM:SS
  if (text.size() < 19 || (text[10] != 'T' && text[10] != 't') || text[13] != ':' ||
      text[16] != ':') {
    fail(text, kInstantShape);
  }
  const date::year_month_day ymd = parse_ymd_prefix(text, text, kInstantShape);
  auto hh = digits(text, 11, 2);
  auto mm = digits(text, 14, 2);
  auto ss = digits(text, 17, 2);
  if (!hh || !mm || !ss) fail(text, kInstantShape);
  if (*hh > 23) fail(text, "hour " + two_digits(*hh) + " is out of range; allowed 00-23");
  if (*mm > 59) fail(text, "minute " + two_digits(*mm) + " is out of range; allowed 00-59");
  if (*ss == 60) fail(text, "second 60: leap seconds are not supported; allowed 00-59");
  if (*ss > 59) fail(text, "second " + two_digits(*ss) + " is out of range; allowed 00-59");

  std::size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const std::size_t first = pos;
    bool all_zero = true;
    while (pos < text.size() && is_digit(text[pos])) {
      if (text[pos] != '0') all_zero = false;
      ++pos;
    }
    if (pos == first) fail(text, "a '.' must be followed by digits; " + std::string(kInstantShape));
    if (!all_zero) {
      fail(text,
           "sub-second precision is not supported; allowed whole seconds (a fraction of "
           "zeros such as .000 is accepted)");
    }
  }
  if (pos == text.size()) fail(text, "an instant needs a UTC offset such as Z or +01:00");

  seconds offset{0};
  const char sign = text[pos];
  if ((sign == 'Z' || sign == 'z') && pos + 1 == text.size()) {
    // UTC.
  } else if (sign == '+' || sign == '-') {
    const std::string_view rest = text.substr(pos + 1);
    std::optional<int> oh, om;
    if (rest.size() == 5 && rest[2] == ':') {
      oh = digits(rest, 0, 2);
      om = digits(rest, 3, 2);
    } else if (rest.size() == 4) {
      oh = digits(rest, 0, 2);
      om = digits(rest, 2, 2);
    }
    if (!oh || !om) fail(text, kInstantShape);
    if (*oh > 23 || *om > 59) {
      fail(text, "UTC offset out of range; allowed -23:59 to +23:59");
    }
    offset = hours{*oh} + minutes{*om};
    if (sign == '-') offset = -offset;
  } else {
    fail(text, kInstantShape);
  }
  const Instant instant =
      Instant{date::sys_days{ymd}} + hours{*hh} + minutes{*mm} + seconds{*ss} - offset;
  // Written back in UTC, the instant must still be a year from 0000 to 9999, or its text
  // (10000-01-01T05:59:59Z for 9999-12-31T23:59:59-06:00) could not be read again.
  if (instant < kEarliestInstant || instant > kLatestInstant)
    fail(text, "in UTC it falls outside the years 0000 to 9999");
  return instant;
}

std::string format_instant(Instant t) {
  // date::format goes through an ostringstream; every stored entity and API answer formats
  // instants, so the common years are written by hand (the same text).
  const auto day = date::floor<date::days>(t);
  const date::year_month_day ymd(day);
  const int year = static_cast<int>(ymd.year());
  if (year < 0 || year > 9999) return date::format("%FT%TZ", t);
  const auto seconds = (t - day).count();
  char text[] = "0000-00-00T00:00:00Z";
  auto put = [&text](int at, int digits, long long value) {
    for (int i = at + digits - 1; i >= at; --i, value /= 10)
      text[i] = static_cast<char>('0' + value % 10);
  };
  put(0, 4, year);
  put(5, 2, static_cast<unsigned>(ymd.month()));
  put(8, 2, static_cast<unsigned>(ymd.day()));
  put(11, 2, seconds / 3600);
  put(14, 2, seconds / 60 % 60);
  put(17, 2, seconds % 60);
  return std::string(text, sizeof text - 1);
}

date::year_month_day parse_date(std::string_view text) {
  constexpr std::string_view kShape = "expected a date YYYY-MM-DD";
  if (text.size() != 10) fail(text, kShape);
  return parse_ymd_prefix(text, text, kShape);
}

std::string format_date(date::year_month_day d) {
  if (!d.ok()) throw TimeError("format_date: not a valid date");
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", int(d.year()), unsigned(d.month()),
                unsigned(d.day()));
  return buf;
}

date::year_month parse_month(std::string_view text) {
  constexpr std::string_view kShape = "expected a month YYYY-MM";
  auto y = digits(text, 0, 4);
  auto m = digits(text, 5, 2);
  if (text.size() != 7 || !y || !m || text[4] != '-') fail(text, kShape);
  if (*m < 1 || *m > 12) {
    fail(text, "month " + two_digits(*m) + " is out of range; allowed 01-12");
  }
  return date::year{*y} / date::month(*m);
}

std::string format_month(date::year_month m) {
  if (!m.ok()) throw TimeError("format_month: not a valid month");
  char buf[24];
  std::snprintf(buf, sizeof buf, "%04d-%02u", int(m.year()), unsigned(m.month()));
  return buf;
}

const date::time_zone* find_zone(std::string_view name) {
  if (name.empty()) {
    throw TimeError("'': empty time zone name; expected an IANA name such as America/Chicago");
  }
  try {
    return date::locate_zone(name);
  } catch (const std::runtime_error&) {
    // The library says only "not found"; say what a valid name looks like.
    fail(name, "unknown time zone; expected an IANA name such as America/Chicago or UTC");
  }
}

Instant local_to_utc(date::local_seconds local, const date::time_zone* zone) {
  require_zone(zone, "local_to_utc");
  const date::local_info info = zone->get_info(local);
  switch (info.result) {
    case date::local_info::nonexistent:
      // `second` is the period that starts when the gap ends.
      return info.second.begin;
    case date::local_info::ambiguous:
    case date::local_info::unique:
    default:
      // `first` is the earlier of the two periods when the time repeats.
      return Instant{(local - info.first.offset).time_since_epoch()};
  }
}

date::year_month_day local_date(Instant t, const date::time_zone* zone) {
  require_zone(zone, "local_date");
  return date::year_month_day{date::floor<date::days>(zone->to_local(t))};
}

// ---- IntervalSet -------------------------------------------------------------------------

IntervalSet::IntervalSet(std::initializer_list<Interval> intervals)
    : IntervalSet(std::vector<Interval>(intervals)) {}

IntervalSet::IntervalSet(std::vector<Interval> intervals) {
  std::erase_if(intervals, [](const Interval& i) { return i.empty(); });
  std::sort(intervals.begin(), intervals.end(),
            [](const Interval& a, const Interval& b) { return a.start < b.start; });
  for (const Interval& i : intervals) {
    // Adjacent pieces merge too, so that one set has one representation.
    if (!intervals_.empty() && i.start <= intervals_.back().end) {
      intervals_.back().end = std::max(intervals_.back().end, i.end);
    } else {
      intervals_.push_back(i);
    }
  }
}

void IntervalSet::add(Interval interval) {
  if (interval.empty()) return;
  // Pieces that overlap or touch `interval` form one contiguous run [first, last).
  auto first =
      std::lower_bound(intervals_.begin(), intervals_.end(), interval.start,
                       [](const Interval& piece, Instant start) { return piece.end < start; });
  auto last =
      std::upper_bound(first, intervals_.end(), interval.end,
                       [](Instant end, const Interval& piece) { return end < piece.start; });
  if (first != last) {
    interval.start = std::min(interval.start, first->start);
    interval.end = std::max(interval.end, std::prev(last)->end);
  }
  auto at = intervals_.erase(first, last);
  intervals_.insert(at, interval);
}

IntervalSet IntervalSet::unite(const IntervalSet& other) const {
  const auto& a = intervals_;
  const auto& b = other.intervals_;
  std::vector<Interval> out;
  out.reserve(a.size() + b.size());
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    const Interval& next =
        (j == b.size() || (i < a.size() && a[i].start <= b[j].start)) ? a[i++] : b[j++];
    if (!out.empty() && next.start <= out.back().end) {
      out.back().end = std::max(out.back().end, next.end);
    } else {
      out.push_back(next);
    }
  }
  return IntervalSet(Normalized{}, std::move(out));
}

IntervalSet IntervalSet::intersect(const IntervalSet& other) const {
  const auto& a = intervals_;
  const auto& b = other.intervals_;
  std::vector<Interval> out;
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const Instant lo = std::max(a[i].start, b[j].start);
    const Instant hi = std::min(a[i].end, b[j].end);
    if (lo < hi) out.push_back({lo, hi});
    // Pieces of each input are separated by gaps, so the result needs no merging.
    if (a[i].end < b[j].end) {
      ++i;
    } else {
      ++j;
    }
  }
  return IntervalSet(Normalized{}, std::move(out));
}

IntervalSet IntervalSet::subtract(const IntervalSet& other) const {
  const auto& a = intervals_;
  const auto& b = other.intervals_;
  std::vector<Interval> out;
  std::size_t j = 0;
  for (const Interval& piece : a) {
    Instant cursor = piece.start;
    while (j < b.size() && b[j].end <= cursor) ++j;
    // A cut that reaches past this piece may also cut the next one, so it is not consumed.
    while (j < b.size() && b[j].start < piece.end) {
      if (b[j].start > cursor) out.push_back({cursor, b[j].start});
      cursor = std::max(cursor, b[j].end);
      if (b[j].end > piece.end) break;
      ++j;
    }
    if (cursor < piece.end) out.push_back({cursor, piece.end});
  }
  return IntervalSet(Normalized{}, std::move(out));
}

int64_t IntervalSet::measure() const {
  int64_t total = 0;
  for (const Interval& i : intervals_) total += i.seconds();
  return total;
}

IntervalSet IntervalSet::earliest(int64_t n) const {
  std::vector<Interval> out;
  int64_t left = n;
  for (const Interval& i : intervals_) {
    if (left <= 0) break;
    if (i.seconds() <= left) {
      out.push_back(i);
      left -= i.seconds();
    } else {
      out.push_back({i.start, i.start + seconds{left}});
      left = 0;
    }
  }
  return IntervalSet(Normalized{}, std::move(out));
}

bool IntervalSet::contains(Instant t) const {
  auto after = std::upper_bound(intervals_.begin(), intervals_.end(), t,
                                [](Instant x, const Interval& piece) { return x < piece.start; });
  if (after == intervals_.begin()) return false;
  return t < std::prev(after)->end;
}

std::string to_string(const Interval& interval) {
  return "[" + format_instant(interval.start) + ", " + format_instant(interval.end) + ")";
}

std::string to_string(const IntervalSet& set) {
  std::string out = "{";
  for (const Interval& i : set.intervals()) {
    if (out.size() > 1) out += ", ";
    out += to_string(i);
  }
  return out + "}";
}

// ---- Months, calendars, fiscal years ----------------------------------------------------

Interval month_bounds(date::year_month month, const date::time_zone* zone) {
  require_zone(zone, "month_bounds");
  if (!month.ok()) throw TimeError("month_bounds: not a valid month");
  const date::local_days first{month / 1};
  const date::local_days next{(month + date::months{1}) / 1};
  return {local_to_utc(first, zone), local_to_utc(next, zone)};
}

namespace {

constexpr std::array<std::string_view, 7> kWeekdayNames = {"sun", "mon", "tue", "wed",
                                                           "thu", "fri", "sat"};

}  // namespace

BusinessCalendar::BusinessCalendar(std::string id, const date::time_zone* zone,
                                   std::array<std::optional<DayHours>, 7> hours,
                                   std::set<date::year_month_day> holidays)
    : id_(std::move(id)), zone_(zone), hours_(hours), holidays_(std::move(holidays)) {
  if (zone_ == nullptr) throw TimeError("calendar " + quote(id_) + ": no time zone given");
  for (std::size_t wd = 0; wd < hours_.size(); ++wd) {
    const auto& h = hours_[wd];
    if (!h) continue;
    if (h->open_minute < 0 || h->close_minute > 1440 || h->open_minute >= h->close_minute) {
      throw TimeError("calendar " + quote(id_) + ": " + std::string(kWeekdayNames[wd]) +
                      " hours open_minute=" + std::to_string(h->open_minute) +
                      " close_minute=" + std::to_string(h->close_minute) +
                      " are invalid; allowed 0 <= open < close <= 1440 (00:00-24:00)");
    }
  }
  for (const auto& day : holidays_) {
    if (!day.ok()) throw TimeError("calendar " + quote(id_) + ": a holiday is not a valid date");
  }
}

BusinessCalendar BusinessCalendar::weekdays(const date::time_zone* zone) {
  std::array<std::optional<DayHours>, 7> hours;
  for (unsigned wd = 1; wd <= 5; ++wd) hours[wd] = DayHours{8 * 60, 17 * 60};
  return BusinessCalendar("default", zone, hours, {});
}

bool BusinessCalendar::is_business_day(date::year_month_day day) const {
  if (!day.ok()) return false;
  return hours_[date::weekday{day}.c_encoding()].has_value() && !holidays_.contains(day);
}

IntervalSet BusinessCalendar::business_hours(Interval within) const {
  if (within.empty()) return {};
  const date::local_days first_day{local_date(within.start, zone_)};
  const date::local_days last_day{local_date(within.end, zone_)};
  const IntervalSet clip{within};
  std::vector<Interval> open;
  // One day of margin each side: a fall-back across midnight can put an instant's local date
  // one day away from the day whose hours contain it.
  for (date::local_days d = first_day - date::days{1}; d <= last_day + date::days{1};
       d += date::days{1}) {
    const date::year_month_day ymd{d};
    if (!is_business_day(ymd)) continue;
    const DayHours& h = *hours_[date::weekday{d}.c_encoding()];
    open.push_back({local_to_utc(d + minutes{h.open_minute}, zone_),
                    local_to_utc(d + minutes{h.close_minute}, zone_)});
  }
  return IntervalSet(std::move(open)).intersect(clip);
}

date::year_month_day BusinessCalendar::add_business_days(date::year_month_day day, int n) const {
  if (n < 0) {
    throw TimeError("add_business_days: n = " + std::to_string(n) +
                    "; allowed 0 or more business days");
  }
  if (!day.ok()) throw TimeError("add_business_days: not a valid date");
  if (n > 0 && std::none_of(hours_.begin(), hours_.end(), [](const auto& h) { return h; })) {
    throw TimeError("calendar " + quote(id_) + " has no business weekday; cannot step " +
                    std::to_string(n) + " business days");
  }
  date::local_days d{day};
  for (int stepped = 0; stepped < n;) {
    d += date::days{1};
    if (is_business_day(date::year_month_day{d})) ++stepped;
  }
  return date::year_month_day{d};
}

Instant BusinessCalendar::end_of_day(date::year_month_day day) const {
  if (!day.ok()) throw TimeError("end_of_day: not a valid date");
  return local_to_utc(date::local_days{day} + date::days{1}, zone_);
}

Instant BusinessCalendar::business_days_after(Instant from, int n) const {
  return end_of_day(add_business_days(local_date(from, zone_), n));
}

bool BusinessCalendar::gives_notice(Instant announced, Instant start, int n) const {
  return date::sys_days{local_date(start, zone_)} >=
         date::sys_days{add_business_days(local_date(announced, zone_), n)};
}

Instant BusinessCalendar::add_business_time(Instant from, std::chrono::seconds amount) const {
  if (amount.count() < 0) {
    throw TimeError("add_business_time: " + std::to_string(amount.count()) +
                    " seconds; allowed 0 or more");
  }
  std::int64_t left = amount.count();
  if (left == 0) return from;
  // A week at a time: every calendar with any open hour has some in a week, unless
  // holidays close it; a year without one is a calendar that never opens.
  constexpr auto kStep = std::chrono::hours(24 * 7);
  for (Instant start = from; start < from + std::chrono::hours(24 * 366); start += kStep) {
    const IntervalSet hours = business_hours({start, start + kStep});
    for (const Interval& open : hours.intervals()) {
      if (left <= open.seconds()) return open.start + std::chrono::seconds(left);
      left -= open.seconds();
    }
  }
  throw TimeError("add_business_time: calendar '" + id_ + "' has no open hour within a year of " +
                  format_instant(from));
}

Instant calendar_days_after(Instant from, int n, const date::time_zone* zone) {
  require_zone(zone, "calendar_days_after");
  const date::local_days day{local_date(from, zone)};
  return local_to_utc(day + date::days{n + 1}, zone);
}

FiscalYear fiscal_year_of(Instant t, const date::time_zone* zone, int start_month) {
  require_zone(zone, "fiscal_year_of");
  if (start_month < 1 || start_month > 12) {
    throw TimeError("fiscal year start month " + std::to_string(start_month) +
                    " is out of range; allowed 1-12");
  }
  const date::year_month_day today = local_date(t, zone);
  const date::month start{unsigned(start_month)};
  const date::year start_year =
      today.month() >= start ? today.year() : today.year() - date::years{1};
  const date::year_month first = start_year / start;
  const int named = int(start_year) + (start_month == 1 ? 0 : 1);
  return {named,
          {local_to_utc(date::local_days{first / 1}, zone),
           local_to_utc(date::local_days{(first + date::years{1}) / 1}, zone)}};
}

}  // namespace slmhub
