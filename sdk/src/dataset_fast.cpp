// read_dataset: the simdjson on-demand decoder (dataset_fast.hpp) with the strict path behind
// it. The decoder reads each value where it stands in the text and builds the Dataset as it
// goes; it only has to be right when it says yes, so anything unusual (an escape in a key,
// a lone surrogate, a repeated key, any rule broken) is a "doubt" that hands the text to
// parse_json + parse_dataset, the one place error messages come from. The rules themselves
// are shared: value rules through the strict value readers (read_int, parse_thousandths,
// parse_instant, find_zone, the enum tables), entity rules through domain_rules.hpp, the
// cross-entity rules through check_references, and the rare nested objects (calendars,
// credit policies) through their strict readers on their own text.
#include "dataset_fast.hpp"

#include <fcntl.h>
#include <simdjson.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <system_error>
#include <type_traits>
#include <utility>

#include "domain_rules.hpp"

namespace slmhub {
namespace detail {
namespace {

namespace od = simdjson::ondemand;
static_assert(kFastPadding == simdjson::SIMDJSON_PADDING);

// Containers the decoder reads itself nest at most this deep (dataset, its lists, an entity,
// a customer's lists, a subscription); the strict parser must allow that many.
constexpr int kNativeDepth = 5;

// The decoder only asks whether a rule holds; the strict path says where it does not.
const std::string kNoPath;

// Thrown on any doubt, caught by try_fast_dataset.
struct Doubt {};

[[noreturn]] void doubt() { throw Doubt{}; }

template <typename T>
T ok(simdjson::simdjson_result<T>&& result) {
  T value;
  if (std::move(result).get(value)) doubt();
  return value;
}

bool only_whitespace(std::string_view text) {
  for (char c : text) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return false;
  }
  return true;
}

// Whether any byte of `word` is '"', '\\' or below 0x20, by the "has a zero byte" and "has a
// byte less than" word tricks (exact for the question whether any byte is).
constexpr bool has_quote_escape_or_control(uint64_t word) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHighs = 0x8080808080808080ull;
  const uint64_t quote = word ^ (kOnes * '"');
  const uint64_t backslash = word ^ (kOnes * '\\');
  const uint64_t found = ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash) |
                         ((word - kOnes * 0x20) & ~word);
  return (found & kHighs) != 0;
}
static_assert(!has_quote_escape_or_control(0x3130303030434e49ull));  // "INC00001"
static_assert(has_quote_escape_or_control(0x3130303030434e22ull));   // a quote
static_assert(has_quote_escape_or_control(0x31305c3030434e49ull));   // a backslash
static_assert(has_quote_escape_or_control(0x3130303030431f49ull));   // a control character
static_assert(has_quote_escape_or_control(0));                       // the padding
static_assert(!has_quote_escape_or_control(0xa9c3a9c3a9c3a9c3ull));  // "éééé" in UTF-8

// The text of a string value. Without escapes (ids, instants: nearly every string) it is a
// view of the input; with escapes simdjson unescapes it, and the result must be valid UTF-8,
// since nlohmann refuses a lone surrogate where simdjson may encode it.
std::string_view string_of(od::value& value) {
  const std::string_view token = value.raw_json_token();
  if (token.empty() || token[0] != '"') doubt();
  // Eight bytes at a time up to the first that needs a look: the closing quote, an escape or
  // a control character. The text is padded (kFastPadding), so reading past the token is
  // safe, and the padding's zero bytes stop the scan.
  std::size_t i = 1;
  for (;; i += 8) {
    uint64_t word;
    std::memcpy(&word, token.data() + i, sizeof word);
    if (has_quote_escape_or_control(word)) break;
  }
  bool escaped = false;
  for (; i < token.size(); ++i) {
    const auto c = static_cast<unsigned char>(token[i]);
    if (c < 0x20) doubt();  // a control character must be escaped
    if (c == '\\') {
      escaped = true;
      ++i;
    } else if (c == '"') {
      if (!only_whitespace(token.substr(i + 1))) doubt();
      if (!escaped) return token.substr(1, i - 1);
      const std::string_view text = ok(value.get_string());
      if (!simdjson::validate_utf8(text.data(), text.size())) doubt();
      return text;
    }
  }
  doubt();
}

// A string the strict readers refuse when empty (EmptyString::refuse).
std::string text_of(od::value& value) {
  const std::string_view text = string_of(value);
  if (text.empty()) doubt();
  return std::string(text);
}

Instant instant_of(od::value& value) {
  try {
    return parse_instant(string_of(value));
  } catch (const TimeError&) {
    doubt();
  }
}

std::string time_zone_of(od::value& value) {
  std::string name = text_of(value);
  try {
    find_zone(name);
  } catch (const TimeError&) {
    doubt();
  }
  return name;
}

template <typename E, std::size_t N>
E enum_of(od::value& value, const std::array<EnumName<E>, N>& names) {
  const auto found = enum_from_name(names, string_of(value));
  if (!found) doubt();
  return *found;
}

// Integers go through read_int and percentages through parse_thousandths, as nlohmann would
// have typed them (simdjson and nlohmann both round a decimal to the nearest double), so the
// range and decimal rules are the strict path's own.
int64_t int_of(od::value& value, int64_t min, int64_t max) {
  std::vector<FieldError> errors;
  const int64_t number = read_int(Json(ok(value.get_int64())), kNoPath, errors, min, max);
  if (!errors.empty()) doubt();
  return number;
}

int64_t thousandths_of(od::value& value) {
  od::number number = ok(value.get_number());
  Json json;
  switch (number.get_number_type()) {
    case od::number_type::signed_integer:
      json = number.get_int64();
      break;
    case od::number_type::unsigned_integer:
      json = number.get_uint64();
      break;
    case od::number_type::floating_point_number:
      json = number.get_double();
      break;
  }
  std::vector<FieldError> errors;
  const int64_t thousandths = parse_thousandths(json, kNoPath, errors);
  if (!errors.empty()) doubt();
  return thousandths;
}

bool is_null(od::value& value) {
  const std::string_view token = value.raw_json_token();
  if (token.empty() || token[0] != 'n') return false;
  if (!token.starts_with("null") || !only_whitespace(token.substr(4))) doubt();
  return true;
}

// The key as written; a key with an escape is left to the strict path.
std::string_view key_of(od::field& field) {
  const char* start = field.key().raw();
  const char* end = start;
  for (; *end != '"'; ++end) {
    if (*end == '\\') doubt();
  }
  return {start, static_cast<std::size_t>(end - start)};
}

// Calls on(i, value) for each field of `object` whose key is names[i] and whose value is not
// null, and returns the bit set of those i. A null value is an absent key, as in
// ObjectReader, but counts for repeats, which parse_json refuses; so does an unknown key.
template <std::size_t N, typename On>
uint32_t for_each_field(od::object object, const std::array<std::string_view, N>& names, On&& on) {
  static_assert(N <= 32);
  uint32_t seen = 0;
  uint32_t present = 0;
  std::size_t expected = 0;  // writers keep one order of keys, usually the order of `names`
  for (auto result : object) {
    od::field field = ok(std::move(result));
    const std::string_view key = key_of(field);
    std::size_t i = expected;
    if (i >= N || names[i] != key) {
      i = 0;
      while (i < N && names[i] != key) ++i;
    }
    expected = i + 1;
    if (i == N || (seen & (1u << i)) != 0) doubt();
    seen |= 1u << i;
    od::value& value = field.value();
    if (is_null(value)) continue;
    present |= 1u << i;
    on(i, value);
  }
  return present;
}

void require(uint32_t present, std::initializer_list<int> keys) {
  for (int key : keys) {
    if ((present & (1u << key)) == 0) doubt();
  }
}

constexpr std::uintptr_t kHugePage = 2 << 20;

// Asks for transparent huge pages under [begin, end) before it is filled. Filling a million
// entities is mostly first-touch page faults (~14 µs for each 4 KB page on the project's VM),
// and the kernel's default (transparent_hugepage=madvise) gives huge pages only where asked:
// 512 times fewer faults.
void advise_huge_pages(std::uintptr_t begin, std::uintptr_t end) {
  const std::uintptr_t aligned = (begin + kHugePage - 1) & ~(kHugePage - 1);
  if (aligned + kHugePage > end) return;  // no whole huge page inside
  ::madvise(reinterpret_cast<void*>(aligned), end - aligned, MADV_HUGEPAGE);  // advice only
}

template <typename T>
void advise_huge_pages(const std::vector<T>& items) {
  const auto begin = reinterpret_cast<std::uintptr_t>(items.data());
  advise_huge_pages(begin, begin + items.capacity() * sizeof(T));
}

// One entry per element, the vector sized once (a million interruptions must not be copied
// while the vector grows).
template <typename Read>
auto array_of(od::value& value, Read&& read) {
  od::array array = ok(value.get_array());
  std::vector<decltype(read(value))> out;
  out.reserve(ok(array.count_elements()));
  advise_huge_pages(out);
  for (auto element : array) {
    od::value item = ok(std::move(element));
    out.push_back(read(item));
  }
  return out;
}

// ---- the long arrays, read in pieces ----
// simdjson indexes the whole text it is given before the decoder reads any of it: 4 bytes
// per token, ~130 MB of fresh memory for a million interruptions, written once and read once.
// A large dataset's two long arrays (maintenance, interruptions) are cut instead into runs of
// whole entries of about kPieceBytes, each read as the text "[" + entries + "]" through one
// reused buffer, parser and index; the rest of the dataset is decoded as before from a copy
// of its text with those arrays written as [] (its skeleton).
//
// The cuts are guesses made without parsing: where an entry ends ("}"), a comma follows and
// the next entry begins ("{"), and the array's end where a "}" is followed by "]". A guess
// inside a string cuts that string in two and leaves its piece with an unterminated string,
// which simdjson refuses, so every guess is either right or a doubt. When the skeleton and
// every piece decode, and the skeleton's [] sits where the dataset's own key has it, the text
// is exactly the skeleton with the pieces put back: the Dataset is the one the whole text
// gives.

enum class LongArray { maintenance, interruptions };

std::size_t skip_whitespace(std::string_view text, std::size_t i) {
  while (i < text.size() &&
         (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) {
    ++i;
  }
  return i;
}

// Where the array of the first `"name": [` that starts in [from, until) opens, its quote not
// escaped; npos if none does.
std::size_t find_array(std::string_view text, std::string_view name, std::size_t from,
                       std::size_t until) {
  // memmem on the name and its closing quote: a search led by the opening quote would stop at
  // every string of the text.
  const std::string needle = std::string(name) + '"';
  from = std::max<std::size_t>(from, 1);
  const std::size_t end = std::min(text.size(), until + needle.size());
  while (from < until && from < end) {
    const void* found = ::memmem(text.data() + from, end - from, needle.data(), needle.size());
    if (found == nullptr) break;
    const std::size_t at = static_cast<std::size_t>(static_cast<const char*>(found) - text.data());
    if (at >= until) break;  // the next window's
    from = at + 1;
    std::size_t backslashes = 0;
    while (backslashes + 1 < at && text[at - 2 - backslashes] == '\\') ++backslashes;
    if (text[at - 1] != '"' || backslashes % 2 != 0) continue;
    std::size_t i = skip_whitespace(text, at + needle.size());
    if (i == text.size() || text[i] != ':') continue;
    i = skip_whitespace(text, i + 1);
    if (i < text.size() && text[i] == '[') return i;
  }
  return std::string_view::npos;
}

// The next long array of `names` to open at or after `from`, and where: the text is searched
// for all of them a window at a time, so that whatever comes first, the text before it is
// read once, not once per name.
struct NextArray {
  LongArray which;
  std::size_t open = std::string_view::npos;
};
NextArray next_array(std::string_view text, std::size_t from,
                     const std::vector<std::pair<LongArray, std::string_view>>& names) {
  constexpr std::size_t kWindow = 64 << 10;
  NextArray next{};
  for (std::size_t window = from; window < text.size() && next.open == std::string_view::npos;
       window += kWindow) {
    for (const auto& [which, name] : names) {
      const std::size_t open = find_array(text, name, window, window + kWindow);
      if (open < next.open) next = {which, open};
    }
  }
  return next;
}

// Where a piece's bytes come from: the text, or the file it is mapped from. read() copies
// out of the page cache through the kernel's own mapping; reading the mapped pages instead
// costs a TLB miss per 4 KB page, and under nested paging that made a first pass over a
// 191 MB file 0.12 s against 0.05 s.
struct Source {
  std::string_view text;
  int fd = -1;

  void copy(char* to, std::size_t offset, std::size_t n) const {
    if (fd < 0) {
      std::memcpy(to, text.data() + offset, n);
      return;
    }
    while (n > 0) {
      const ssize_t got = ::pread(fd, to, n, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) doubt();  // changed under us, or unreadable: the mapped text decides
      to += got;
      offset += static_cast<std::size_t>(got);
      n -= static_cast<std::size_t>(got);
    }
  }
};

// Where to cut `entries`, the text from one entry's "{" on: after the first entry that ends
// at least `piece_bytes` in and is followed by another, or at the array's end.
struct Cut {
  enum Kind { more, piece, last } kind = more;  // more: read further before cutting
  std::size_t end = 0;                          // just after the piece's last "}"
  std::size_t next = 0;  // piece: the next entry's "{"; last: the array's "]"
};
Cut find_cut(std::string_view entries, std::size_t piece_bytes) {
  for (std::size_t at = 0;;) {
    const void* brace = std::memchr(entries.data() + at, '}', entries.size() - at);
    if (brace == nullptr) return {};
    const std::size_t end =
        static_cast<std::size_t>(static_cast<const char*>(brace) - entries.data()) + 1;
    const std::size_t next = skip_whitespace(entries, end);
    if (next == entries.size()) return {};
    at = end;
    if (entries[next] == ']') return {Cut::last, end, next};
    if (entries[next] != ',' || end < piece_bytes) continue;
    const std::size_t after = skip_whitespace(entries, next + 1);
    if (after == entries.size()) return {};
    if (entries[after] == '{') return {Cut::piece, end, after};
  }
}

// Reads a long array's entries a piece at a time, each as the text "[" + entries + "]" in one
// reused buffer, with one parser.
class PieceReader {
 public:
  explicit PieceReader(const Source& source) : source_(source) {}

  // Calls read(entry) for each entry of the array that opens at text[open], and
  // after_piece(bytes, rest) after each piece: its length and how much text follows it.
  // Returns where the array closes.
  template <typename Read, typename AfterPiece>
  std::size_t read_array(std::size_t open, std::size_t piece_bytes, Read&& read,
                         AfterPiece&& after_piece) {
    const std::string_view text = source_.text;
    std::size_t begin = skip_whitespace(text, open + 1);
    if (begin < text.size() && text[begin] == ']') return begin;
    // Each turn reads a little more than a piece (what lies past the cut is read again with
    // the next piece), more when no cut is found in it.
    for (std::size_t want = piece_bytes + kSlack;;) {
      const std::size_t n = std::min(want, text.size() - begin);
      char* buffer = load(begin, n);
      const Cut cut = find_cut({buffer + 1, n}, piece_bytes);
      if (cut.kind == Cut::more) {
        if (begin + n == text.size()) doubt();  // the array never ends
        want *= 2;
        continue;
      }
      parse(cut.end, read);
      after_piece(cut.end, text.size() - begin - cut.end);
      if (cut.kind == Cut::last) return begin + cut.next;
      begin += cut.next;
      want = piece_bytes + kSlack;
    }
  }

 private:
  static constexpr std::size_t kSlack = 64 << 10;

  // text[begin, begin + n) at buffer + 1, with room for "[", "]" and the padding around it.
  char* load(std::size_t begin, std::size_t n) {
    if (capacity_ < n + 2 + kFastPadding) {
      capacity_ = std::max(n + 2 + kFastPadding, capacity_ + capacity_ / 2);
      buffer_ = std::make_unique_for_overwrite<char[]>(capacity_);
    }
    source_.copy(buffer_.get() + 1, begin, n);
    return buffer_.get();
  }

  // Decodes the loaded entries [0, end) as one array.
  template <typename Read>
  void parse(std::size_t end, Read&& read) {
    char* text = buffer_.get();
    const std::size_t length = end + 2;
    text[0] = '[';
    text[length - 1] = ']';
    std::memset(text + length, ' ', kFastPadding);
    od::document document = ok(parser_.iterate(text, length, capacity_));
    od::array array = ok(document.get_array());
    for (auto element : array) {
      od::value item = ok(std::move(element));
      read(item);
    }
    if (!document.current_location().error()) doubt();
  }

  const Source& source_;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  od::parser parser_;
};

class Decoder {
 public:
  explicit Decoder(int max_depth) : max_depth_(max_depth) {}

  // The dataset in `root`. Where a long array was read in pieces (splice), `root`'s text has
  // it as [] and its entries come from the pieces.
  Dataset dataset(od::object root) {
    enum Key {
      kTimezone,
      kFiscalYear,
      kProviderCalendar,
      kCalendars,
      kServices,
      kCustomers,
      kCreditPolicy,
      kMaintenance,
      kInterruptions
    };
    static constexpr std::array<std::string_view, 9> kKeys{
        "timezone",  "fiscal_year_start_month", "provider_calendar", "calendars",    "services",
        "customers", "credit_policy",           "maintenance",       "interruptions"};
    Dataset out;
    const uint32_t present = for_each_field(root, kKeys, [&](std::size_t key, od::value& v) {
      switch (key) {
        case kTimezone:
          out.timezone = time_zone_of(v);
          break;
        case kFiscalYear:
          out.fiscal_year_start_month = static_cast<int>(int_of(v, 1, 12));
          break;
        case kProviderCalendar:
          out.provider_calendar = text_of(v);
          break;
        case kCalendars:
          out.calendars =
              array_of(v, [&](od::value& c) { return strict_object(c, 2, calendar_from_json); });
          break;
        case kServices:
          out.services = array_of(v, [&](od::value& s) { return service(s); });
          break;
        case kCustomers:
          out.customers = array_of(v, [&](od::value& c) { return customer(c); });
          break;
        case kCreditPolicy:
          out.credit_policy = strict_object(v, 1, credit_policy_from_json);
          break;
        case kMaintenance:
          out.maintenance = maintenance_.at != nullptr
                                ? take(v, maintenance_)
                                : array_of(v, [&](od::value& m) { return maintenance_window(m); });
          break;
        case kInterruptions:
          out.interruptions = interruptions_.at != nullptr
                                  ? take(v, interruptions_)
                                  : array_of(v, [&](od::value& i) { return interruption(i); });
          break;
      }
    });
    require(present, {kTimezone});
    // A spliced array that was not the dataset's own (a key of that name inside something
    // else) is not what the pieces were read for.
    if (maintenance_.at != nullptr || interruptions_.at != nullptr) doubt();
    return out;
  }

  // Reads the entries of the long array that opens at text[open], for dataset() to take in
  // place of the [] its text will have instead; returns where the array closes.
  std::size_t read_in_pieces(LongArray which, std::size_t open, std::size_t piece_bytes,
                             PieceReader& reader) {
    if (which == LongArray::maintenance) {
      return read_pieces_into(maintenance_, open, piece_bytes, reader,
                              [this](od::value& m) { return maintenance_window(m); });
    }
    return read_pieces_into(interruptions_, open, piece_bytes, reader,
                            [this](od::value& i) { return interruption(i); });
  }

  // Where the text dataset() decodes has the [] standing for that array.
  void splice_at(LongArray which, const char* at) {
    (which == LongArray::maintenance ? maintenance_.at : interruptions_.at) = at;
  }

  // A POST body (try_fast_interruption) as well as a dataset's entry.
  Interruption interruption(od::value& value) {
    static constexpr std::array<std::string_view, 7> kKeys{
        "id", "service", "type", "start", "end", "customers", "description"};
    Interruption out = event(value, kKeys, &Interruption::type, kInterruptionTypeNames,
                             {0, 1, 2, 3}, [](std::size_t key, od::value& v, Interruption& read) {
                               if (key == 5) {
                                 read.customers = array_of(v, text_of);
                               } else {
                                 read.description = std::string(string_of(v));
                               }
                             });
    check_distinct_customers(out.customers, kNoPath, errors_);
    rules_hold();
    return out;
  }

 private:
  // Throws Doubt if a shared rule reported anything.
  void rules_hold() {
    if (!errors_.empty()) doubt();
  }

  // A calendar or credit policy (a few per dataset, with rules of their own) read by its
  // strict reader from its own text. `depth` counts the containers around it, so the depth
  // limit is the one parse_json would apply to the whole text.
  template <typename Read>
  auto strict_object(od::value& value, int depth, Read&& read)
      -> std::invoke_result_t<Read&, const Json&, const std::string&, std::vector<FieldError>&> {
    const std::string_view text = ok(ok(value.get_object()).raw_json());
    try {
      auto result = read(parse_json(text, max_depth_ - depth), kNoPath, errors_);
      rules_hold();
      return result;
    } catch (const ValidationError&) {
      doubt();
    }
  }

  Service service(od::value& value) {
    enum Key { kId, kName, kEnvironment, kHours, kTarget, kTimezone, kBudget, kCreditPolicy };
    static constexpr std::array<std::string_view, 8> kKeys{"id",
                                                           "name",
                                                           "environment",
                                                           "hours",
                                                           "target_percent",
                                                           "timezone",
                                                           "maintenance_budget_hours_per_fy",
                                                           "credit_policy"};
    Service out;
    const uint32_t present =
        for_each_field(ok(value.get_object()), kKeys, [&](std::size_t key, od::value& v) {
          switch (key) {
            case kId:
              out.id = text_of(v);
              break;
            case kName:
              out.name = text_of(v);
              break;
            case kEnvironment:
              out.environment = enum_of(v, kEnvironmentNames);
              break;
            case kHours:
              out.hours = text_of(v);
              break;
            case kTarget:
              out.target_thousandths = thousandths_of(v);
              break;
            case kTimezone:
              out.timezone = time_zone_of(v);
              break;
            case kBudget:
              out.maintenance_budget_hours_per_fy = int_of(v, 0, detail::kMaxBudgetHoursPerFy);
              break;
            case kCreditPolicy:
              out.credit_policy = strict_object(v, 3, credit_policy_from_json);
              break;
          }
        });
    require(present, {kId, kName, kEnvironment, kHours, kTarget});
    return out;
  }

  Subscription subscription(od::value& value) {
    enum Key { kService, kCharge, kStart, kEnd };
    static constexpr std::array<std::string_view, 4> kKeys{"service", "monthly_charge_cents",
                                                           "start", "end"};
    Subscription out;
    const uint32_t present =
        for_each_field(ok(value.get_object()), kKeys, [&](std::size_t key, od::value& v) {
          switch (key) {
            case kService:
              out.service = text_of(v);
              break;
            case kCharge:
              out.monthly_charge_cents = int_of(v, 0, kMaxAmountCents);
              break;
            case kStart:
              out.start = instant_of(v);
              break;
            case kEnd:
              out.end = instant_of(v);
              break;
          }
        });
    require(present, {kService, kCharge});
    check_end_after_start(out.start, out.end, kNoPath, errors_);
    rules_hold();
    return out;
  }

  Contact contact(od::value& value) {
    enum Key { kRole, kName, kEmail };
    static constexpr std::array<std::string_view, 3> kKeys{"role", "name", "email"};
    Contact out;
    const uint32_t present =
        for_each_field(ok(value.get_object()), kKeys, [&](std::size_t key, od::value& v) {
          switch (key) {
            case kRole:
              out.role = enum_of(v, kContactRoleNames);
              break;
            case kName:
              out.name = text_of(v);
              break;
            case kEmail:
              out.email = text_of(v);
              break;
          }
        });
    require(present, {kRole, kName, kEmail});
    check_email(out.email, kNoPath, errors_);
    rules_hold();
    return out;
  }

  Customer customer(od::value& value) {
    enum Key { kId, kName, kBillingCode, kSubscriptions, kContacts };
    static constexpr std::array<std::string_view, 5> kKeys{"id", "name", "billing_code",
                                                           "subscriptions", "contacts"};
    Customer out;
    const uint32_t present =
        for_each_field(ok(value.get_object()), kKeys, [&](std::size_t key, od::value& v) {
          switch (key) {
            case kId:
              out.id = text_of(v);
              break;
            case kName:
              out.name = text_of(v);
              break;
            case kBillingCode:
              out.billing_code = text_of(v);
              break;
            case kSubscriptions:
              out.subscriptions = array_of(v, [&](od::value& s) { return subscription(s); });
              break;
            case kContacts:
              out.contacts = array_of(v, [&](od::value& c) { return contact(c); });
              break;
          }
        });
    require(present, {kId, kName, kBillingCode});
    return out;
  }

  // A maintenance window or an interruption. Their first five keys are the same (id, service,
  // its kind: category or type, start, end); `own` reads the two after them.
  template <typename Event, typename E, std::size_t N, typename Own>
  Event event(od::value& value, const std::array<std::string_view, 7>& keys, E Event::*kind,
              const std::array<EnumName<E>, N>& kinds, std::initializer_list<int> required,
              Own&& own) {
    Event out;
    const uint32_t present =
        for_each_field(ok(value.get_object()), keys, [&](std::size_t key, od::value& v) {
          switch (key) {
            case 0:
              out.id = text_of(v);
              break;
            case 1:
              out.service = text_of(v);
              break;
            case 2:
              out.*kind = enum_of(v, kinds);
              break;
            case 3:
              out.start = instant_of(v);
              break;
            case 4:
              out.end = instant_of(v);
              break;
            default:
              own(key, v, out);
          }
        });
    require(present, required);
    check_end_after_start(out.start, out.end, kNoPath, errors_);
    rules_hold();
    return out;
  }

  MaintenanceWindow maintenance_window(od::value& value) {
    static constexpr std::array<std::string_view, 7> kKeys{
        "id", "service", "category", "start", "end", "announced_at", "status"};
    return event(value, kKeys, &MaintenanceWindow::category, kMaintenanceCategoryNames,
                 {0, 1, 2, 3, 4}, [](std::size_t key, od::value& v, MaintenanceWindow& out) {
                   if (key == 5) {
                     out.announced_at = instant_of(v);
                   } else {
                     out.status = enum_of(v, kMaintenanceStatusNames);
                   }
                 });
  }

  template <typename T>
  struct Spliced {
    const char* at = nullptr;  // the [] standing for the array; null once taken, or never spliced
    std::vector<T> items;
  };

  template <typename T, typename Read>
  static std::size_t read_pieces_into(Spliced<T>& spliced, std::size_t open,
                                      std::size_t piece_bytes, PieceReader& reader, Read&& read) {
    std::vector<T>& items = spliced.items;
    bool sized = false;
    return reader.read_array(
        open, piece_bytes, [&](od::value& item) { items.push_back(read(item)); },
        [&](std::size_t bytes, std::size_t rest) {
          if (sized) return;
          sized = true;
          // After the first piece: room for a quarter more entries than the rest of the text
          // would hold at this piece's density (far more when other keys follow the array,
          // but only what is filled is ever touched). Datasets are written alike throughout,
          // so a vector of a million interruptions is not copied while it grows.
          const std::size_t per_piece = items.size() + items.size() / 4 + 1;
          items.reserve(items.size() + per_piece * (rest / bytes + 1));
          advise_huge_pages(items);
        });
  }

  template <typename T>
  static std::vector<T> take(od::value& value, Spliced<T>& spliced) {
    if (value.raw_json_token().data() != spliced.at) doubt();
    spliced.at = nullptr;
    od::array empty = ok(value.get_array());
    if (ok(empty.count_elements()) != 0) doubt();
    return std::move(spliced.items);
  }

  int max_depth_;
  std::vector<FieldError> errors_;
  Spliced<MaintenanceWindow> maintenance_;
  Spliced<Interruption> interruptions_;
};

// A file mapped read-only with at least kFastPadding readable bytes after its end: the page
// cache is read in place, so a 200 MB dataset is not copied whole (its long arrays are
// copied out a piece at a time, see Source).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) fail(path);
    struct stat info {};
    if (::fstat(fd_, &info) != 0) fail(path);
    size_ = static_cast<std::size_t>(info.st_size);
    // Reserve the file's pages plus the padding as zero pages, then map the file over the
    // front: the tail of its last page and the pages after it read as zeros. Not populated:
    // a large dataset's long arrays are read with read() (Source), not through the mapping.
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    length_ = (size_ + kFastPadding + page - 1) / page * page;
    void* reserved = ::mmap(nullptr, length_, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (reserved == MAP_FAILED) fail(path);
    data_ = static_cast<const char*>(reserved);
    if (size_ > 0 &&
        ::mmap(reserved, size_, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd_, 0) == MAP_FAILED) {
      fail(path);
    }
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() { release(); }

  std::string_view text() const { return {data_, size_}; }
  int fd() const { return fd_; }

 private:
  void release() {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), length_);
    if (fd_ >= 0) ::close(fd_);
  }
  [[noreturn]] void fail(const std::string& path) {
    const int error = errno;
    release();
    throw std::system_error(error, std::generic_category(), path);
  }

  int fd_;
  const char* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t length_ = 0;
};

// The Dataset in `text` (followed by kFastPadding readable bytes), its references unchecked.
Dataset decode_whole(std::string_view text, int max_depth) {
  od::parser parser;
  od::document document = ok(parser.iterate(text.data(), text.size(), text.size() + kFastPadding));
  Dataset dataset = Decoder(max_depth).dataset(ok(document.get_object()));
  // Anything after the dataset's closing brace is malformed JSON.
  if (!document.current_location().error()) doubt();
  return dataset;
}

// The same with the long arrays read in pieces (see LongArray).
Dataset decode_in_pieces(const Source& source, int max_depth, std::size_t piece_bytes) {
  const std::string_view text = source.text;
  struct Found {
    LongArray which;
    std::size_t open, close;
  };
  std::vector<Found> arrays;
  std::vector<std::pair<LongArray, std::string_view>> names = {
      {LongArray::maintenance, "maintenance"}, {LongArray::interruptions, "interruptions"}};
  Decoder decoder(max_depth);
  PieceReader reader(source);
  // In the order they come, each searched for after the ones before it: a key of that name
  // inside an earlier array would be an unknown key there, which the decoder refuses anyway.
  for (std::size_t from = 0; !names.empty();) {
    const NextArray next = next_array(text, from, names);
    if (next.open == std::string_view::npos) break;
    const std::size_t close = decoder.read_in_pieces(next.which, next.open, piece_bytes, reader);
    arrays.push_back({next.which, next.open, close});
    std::erase_if(names, [&](const auto& name) { return name.first == next.which; });
    from = close + 1;
  }

  std::string skeleton;
  std::vector<std::size_t> brackets;  // where each array's [] is in the skeleton
  std::size_t from = 0;
  for (const Found& array : arrays) {
    skeleton.append(text, from, array.open + 1 - from);
    brackets.push_back(skeleton.size() - 1);
    skeleton += ']';
    from = array.close + 1;
  }
  skeleton.append(text, from);
  const std::size_t length = skeleton.size();
  skeleton.append(kFastPadding, ' ');
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    decoder.splice_at(arrays[i].which, skeleton.data() + brackets[i]);
  }
  od::parser parser;
  od::document document = ok(parser.iterate(skeleton.data(), length, skeleton.size()));
  Dataset dataset = decoder.dataset(ok(document.get_object()));
  if (!document.current_location().error()) doubt();
  return dataset;
}

// `decode()`'s Dataset, or nullopt when it doubted.
template <typename Decode>
std::optional<Dataset> undoubted(Decode&& decode) {
  try {
    return decode();
  } catch (const Doubt&) {
    return std::nullopt;
  }
}

// The Dataset if its references hold; with `resolved`, where they point.
std::optional<Dataset> checked(std::optional<Dataset> dataset,
                               DatasetReferences* resolved = nullptr) {
  if (!dataset) return std::nullopt;
  std::vector<FieldError> errors;
  check_references(*dataset, kNoPath, errors, resolved);
  if (!errors.empty()) return std::nullopt;
  return dataset;
}

std::optional<Dataset> fast_dataset(const Source& source, int max_depth, std::size_t piece_bytes,
                                    DatasetReferences* resolved = nullptr) {
  if (max_depth < kNativeDepth) return std::nullopt;
  std::optional<Dataset> dataset;
  if (source.text.size() > piece_bytes) {
    dataset = undoubted([&] { return decode_in_pieces(source, max_depth, piece_bytes); });
  }
  // A cut that went wrong (a string holding "},{") or an odd layout: read it whole.
  if (!dataset) dataset = undoubted([&] { return decode_whole(source.text, max_depth); });
  return checked(std::move(dataset), resolved);
}

}  // namespace

std::optional<Dataset> try_fast_dataset(std::string_view text, int max_depth,
                                        std::size_t piece_bytes) {
  return fast_dataset(Source{text}, max_depth, piece_bytes);
}

std::optional<Dataset> try_fast_dataset_in_pieces(std::string_view text, int max_depth,
                                                  std::size_t piece_bytes, int fd) {
  if (max_depth < kNativeDepth) return std::nullopt;
  return checked(undoubted([&] {
    return decode_in_pieces(Source{text, fd}, max_depth, piece_bytes);
  }));
}

std::optional<Interruption> try_fast_interruption(std::string_view text, int max_depth) {
  // The object and its customers' array.
  if (max_depth < 2) return std::nullopt;
  try {
    od::parser parser;
    od::document document =
        ok(parser.iterate(text.data(), text.size(), text.size() + kFastPadding));
    od::value root = ok(document.get_value());
    Interruption out = Decoder(max_depth).interruption(root);
    if (!document.current_location().error()) return std::nullopt;
    return out;
  } catch (const Doubt&) {
    return std::nullopt;
  }
}

}  // namespace detail

std::optional<Interruption> try_read_interruption(std::string_view json_text, int max_depth) {
  const simdjson::padded_string padded(json_text);
  return detail::try_fast_interruption(padded, max_depth);
}

Dataset read_dataset(std::string_view json_text, int max_depth) {
  const simdjson::padded_string padded(json_text);
  if (auto dataset = detail::try_fast_dataset(padded, max_depth)) return std::move(*dataset);
  return parse_dataset(parse_json(json_text, max_depth));
}

Dataset read_dataset_file(const std::string& path, DatasetReferences& resolved, int max_depth) {
  const detail::MappedFile file(path);
  if (auto dataset = detail::fast_dataset({file.text(), file.fd()}, max_depth, detail::kPieceBytes,
                                          &resolved)) {
    return std::move(*dataset);
  }
  // The strict path, which names any problem; it checked the references, so only where they
  // point is left to find.
  Dataset dataset = parse_dataset(parse_json(file.text(), max_depth));
  resolved = resolve_references(dataset);
  return dataset;
}

Dataset read_dataset_file(const std::string& path, int max_depth) {
  DatasetReferences unused;
  return read_dataset_file(path, unused, max_depth);
}

}  // namespace slmhub
