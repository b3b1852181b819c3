#include "slmhub/cron.hpp"

#include <array>
#include <bit>
#include <cctype>
#include <vector>

namespace slmhub {
namespace {

using LocalMinute = date::local_time<std::chrono::minutes>;

constexpr std::array<std::string_view, 12> kMonthNames = {"jan", "feb", "mar", "apr", "may", "jun",
                                                          "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 7> kWeekdayNames = {"sun", "mon", "tue", "wed",
                                                           "thu", "fri", "sat"};

struct FieldSpec {
  std::string_view name;
  int min;
  int max;
  std::string_view allowed;
  const std::string_view* names;  // names[i] means name_base + i; nullptr if none
  int name_count;
  int name_base;
};

constexpr std::array<FieldSpec, 5> kFields = {{
    {"minute", 0, 59, "0-59", nullptr, 0, 0},
    {"hour", 0, 23, "0-23", nullptr, 0, 0},
    {"day-of-month", 1, 31, "1-31", nullptr, 0, 0},
    {"month", 1, 12, "1-12 or jan-dec", kMonthNames.data(), 12, 1},
    {"day-of-week", 0, 7, "0-7 or sun-sat (0 and 7 are Sunday)", kWeekdayNames.data(), 7, 0},
}};

// Five years of days, plus a leap day: the documented search horizon.
constexpr int kHorizonDays = 5 * 365 + 2;

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  }
  return true;
}

// Digit strings longer than this cannot be in any field's range; capping avoids overflow.
constexpr std::size_t kMaxDigits = 6;

int to_int(std::string_view digits) {
  if (digits.size() > kMaxDigits) return 1'000'000;
  int v = 0;
  for (char c : digits) v = v * 10 + (c - '0');
  return v;
}

class FieldParser {
 public:
  FieldParser(std::string_view expression, const FieldSpec& spec)
      : expression_(expression), spec_(spec) {}

  // The allowed values as a bit mask (bit i = value i).
  uint64_t parse(std::string_view field) const {
    uint64_t mask = 0;
    std::size_t pos = 0;
    while (true) {
      const std::size_t comma = field.find(',', pos);
      const std::string_view item =
          field.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
      if (item.empty()) fail("'" + std::string(field) + "' has an empty list item");
      mask |= parse_item(item);
      if (comma == std::string_view::npos) break;
      pos = comma + 1;
    }
    return mask;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw CronError("cron '" + std::string(expression_) + "': " + std::string(spec_.name) +
                    " field: " + problem);
  }

  std::string allowed() const { return "; allowed " + std::string(spec_.allowed); }

  int value(std::string_view token, std::string_view item) const {
    if (all_digits(token)) {
      const int v = to_int(token);
      if (v < spec_.min || v > spec_.max) {
        fail("'" + std::string(token) + "' is out of range" + allowed());
      }
      return v;
    }
    for (int i = 0; i < spec_.name_count; ++i) {
      if (iequals(token, spec_.names[i])) return spec_.name_base + i;
    }
    // An empty token ("-5", "1-") is best shown as the item it came from.
    fail("'" + std::string(token.empty() ? item : token) + "' is not a number or name" + allowed());
  }

  uint64_t parse_item(std::string_view item) const {
    const std::size_t slash = item.find('/');
    const std::string_view base = item.substr(0, slash);
    int step = 1;
    if (slash != std::string_view::npos) {
      const std::string_view step_text = item.substr(slash + 1);
      if (!all_digits(step_text)) {
        fail("step '" + std::string(step_text) + "' in '" + std::string(item) +
             "' is not a number; allowed a whole number of 1 or more");
      }
      step = to_int(step_text);
      if (step == 0) {
        fail("step 0 in '" + std::string(item) + "' is not allowed; a step must be 1 or more");
      }
    }
    int lo = spec_.min;
    int hi = spec_.max;
    if (base != "*") {
      const std::size_t dash = base.find('-');
      if (dash == std::string_view::npos) {
        lo = hi = value(base, item);
        if (slash != std::string_view::npos) {
          // Vixie cron rejects "5/15"; some crons read it as "5-max/15". Refuse the ambiguity.
          fail("'" + std::string(item) + "': a step needs a range; use '*/" + std::to_string(step) +
               "' or '" + std::string(base) + "-" + std::to_string(spec_.max) + "/" +
               std::to_string(step) + "'");
        }
      } else {
        lo = value(base.substr(0, dash), item);
        hi = value(base.substr(dash + 1), item);
        if (lo > hi) {
          fail("range '" + std::string(base) + "' runs backwards; write the lower bound first" +
               allowed());
        }
      }
    }
    uint64_t mask = 0;
    for (int v = lo; v <= hi; v += step) mask |= uint64_t{1} << v;
    return mask;
  }

  std::string_view expression_;
  const FieldSpec& spec_;
};

// The smallest allowed value >= from, or -1.
int next_allowed(uint64_t mask, int from) {
  if (from >= 64) return -1;
  const uint64_t rest = mask >> from;
  return rest == 0 ? -1 : from + std::countr_zero(rest);
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

}  // namespace

CronExpression CronExpression::parse(std::string_view text) {
  std::vector<std::string_view> fields;
  std::size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && is_space(text[pos])) ++pos;
    const std::size_t start = pos;
    while (pos < text.size() && !is_space(text[pos])) ++pos;
    if (pos > start) fields.push_back(text.substr(start, pos - start));
  }
  if (fields.size() != kFields.size()) {
    throw CronError("cron '" + std::string(text) +
                    "': expected 5 fields (minute hour day-of-month month day-of-week), found " +
                    std::to_string(fields.size()));
  }

  CronExpression cron;
  cron.text_ = std::string(text);
  std::array<uint64_t, kFields.size()> masks{};
  for (std::size_t i = 0; i < kFields.size(); ++i) {
    masks[i] = FieldParser(text, kFields[i]).parse(fields[i]);
  }
  cron.minutes_ = masks[0];
  cron.hours_ = static_cast<uint32_t>(masks[1]);
  cron.days_of_month_ = static_cast<uint32_t>(masks[2]);
  cron.months_ = static_cast<uint16_t>(masks[3]);
  // 7 is another name for Sunday.
  uint64_t dow = masks[4];
  if (dow & (uint64_t{1} << 7)) dow = (dow | 1) & ~(uint64_t{1} << 7);
  cron.days_of_week_ = static_cast<uint8_t>(dow);
  // Vixie decides "restricted" by the field's first character, so "*/2" counts as unrestricted.
  cron.day_of_month_star_ = fields[2].front() == '*';
  cron.day_of_week_star_ = fields[4].front() == '*';
  return cron;
}

bool CronExpression::day_matches(date::year_month_day day) const {
  const bool dom = days_of_month_ & (uint32_t{1} << unsigned(day.day()));
  const bool dow = days_of_week_ & (1u << date::weekday{day}.c_encoding());
  if (day_of_month_star_ || day_of_week_star_) return dom && dow;
  return dom || dow;
}

// The first local minute >= `from` whose fields match, skipping whole months, days and hours
// that cannot match; nullopt once past `last_day`.
std::optional<LocalMinute> CronExpression::next_local_match(LocalMinute from,
                                                            date::local_days last_day) const {
  LocalMinute at = from;
  while (true) {
    const date::local_days day = date::floor<date::days>(at);
    if (day > last_day) return std::nullopt;
    const date::year_month_day ymd{day};
    if (!(months_ & (1u << unsigned(ymd.month())))) {
      at = date::local_days{(ymd.year() / ymd.month() + date::months{1}) / 1};
      continue;
    }
    if (!day_matches(ymd)) {
      at = day + date::days{1};
      continue;
    }
    const int minute_of_day = static_cast<int>((at - day).count());
    int hour = minute_of_day / 60;
    int minute = minute_of_day % 60;
    const int next_hour = next_allowed(hours_, hour);
    if (next_hour < 0) {
      at = day + date::days{1};
      continue;
    }
    if (next_hour != hour) {
      hour = next_hour;
      minute = 0;
    }
    const int next_minute = next_allowed(minutes_, minute);
    if (next_minute < 0) {
      at = day + std::chrono::hours{hour + 1};
      continue;
    }
    return day + std::chrono::hours{hour} + std::chrono::minutes{next_minute};
  }
}

std::optional<Instant> CronExpression::next_after(Instant t, const date::time_zone* zone) const {
  if (zone == nullptr) throw CronError("cron '" + text_ + "': no time zone given");
  // local_to_utc is non-decreasing and maps t's own local time to t or earlier, so no local
  // minute up to t's own can fire after t.
  LocalMinute from = date::floor<std::chrono::minutes>(zone->to_local(t)) + std::chrono::minutes{1};
  const date::local_days last_day = date::floor<date::days>(from) + date::days{kHorizonDays};
  while (const auto local = next_local_match(from, last_day)) {
    // Gap times collapse onto the gap's end, repeated times onto their first occurrence, so
    // each fires at most once; a match that maps to t or earlier (inside the second pass of
    // a repeated hour) has already fired.
    const Instant fire = local_to_utc(*local, zone);
    if (fire > t) return fire;
    from = *local + std::chrono::minutes{1};
  }
  return std::nullopt;
}

}  // namespace slmhub
