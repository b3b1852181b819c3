// The availability engine (DOMAIN.md §3-4). Sets of seconds are sorted disjoint intervals
// (IntervalSet, or flat lists of them in the monthly pass, which must not allocate per
// interruption), so unions never count a second twice and "X always wins" is a subtraction;
// money stays a rational num/den until the single half-up rounding at the end. Customers are
// ranks (their place in id order) until the report is written, so that matching a name is an
// integer compare and sorting ranks sorts ids.
#include "engine.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <new>
#include <optional>
#include <ostream>
#include <span>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace slmhub::availability {

namespace {

constexpr unsigned char kLongId = 0xff;

// The length of the id at `at` and where its text starts.
std::pair<std::size_t, const char*> id_at(const char* at) {
  const auto first = static_cast<unsigned char>(*at);
  if (first != kLongId) return {first, at + 1};
  uint32_t size = 0;
  std::memcpy(&size, at + 1, sizeof size);
  return {size, at + 1 + sizeof size};
}

}  // namespace

struct IdList::Text {
  std::atomic<std::size_t> owners;
  std::size_t used;
  std::size_t capacity;

  char* bytes() { return reinterpret_cast<char*>(this + 1); }

  static Text* make(std::size_t capacity) {
    void* memory = ::operator new(sizeof(Text) + capacity);
    return new (memory) Text{{1}, 0, capacity};
  }
};

std::string_view IdList::const_iterator::operator*() const {
  const auto [size, text] = id_at(at_);
  return {text, size};
}

IdList::const_iterator& IdList::const_iterator::operator++() {
  const auto [size, text] = id_at(at_);
  at_ = text + size;
  return *this;
}

IdList::IdList(std::initializer_list<std::string_view> ids) {
  for (const std::string_view id : ids) push_back(id);
}

IdList::IdList(const IdList& other) noexcept : text_(other.text_), size_(other.size_) {
  if (text_) text_->owners.fetch_add(1, std::memory_order_relaxed);
}

IdList::IdList(IdList&& other) noexcept
    : text_(std::exchange(other.text_, nullptr)), size_(std::exchange(other.size_, 0)) {}

IdList& IdList::operator=(const IdList& other) noexcept {
  if (this != &other) {
    if (other.text_) other.text_->owners.fetch_add(1, std::memory_order_relaxed);
    release();
    text_ = other.text_;
    size_ = other.size_;
  }
  return *this;
}

IdList& IdList::operator=(IdList&& other) noexcept {
  if (this != &other) {
    release();
    text_ = std::exchange(other.text_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

IdList::~IdList() { release(); }

void IdList::release() noexcept {
  if (text_ && text_->owners.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    text_->~Text();
    ::operator delete(text_);
  }
  text_ = nullptr;
}

char* IdList::writable(std::size_t extra) {
  const std::size_t used = text_ ? text_->used : 0;
  const bool alone = text_ && text_->owners.load(std::memory_order_acquire) == 1;
  if (!alone || used + extra > text_->capacity) {
    std::size_t capacity = used + extra;
    if (alone) capacity = std::max(capacity, 2 * text_->capacity);  // growing: amortised
    Text* grown = Text::make(capacity);
    if (used > 0) std::memcpy(grown->bytes(), text_->bytes(), used);
    grown->used = used;
    release();
    text_ = grown;
  }
  return text_->bytes() + used;
}

void IdList::reserve(std::size_t ids, std::size_t text_bytes) {
  const std::size_t used = text_ ? text_->used : 0;
  if (ids + text_bytes > used) writable(ids + text_bytes - used);
}

void IdList::push_back(std::string_view id) {
  const bool long_id = id.size() >= kLongId;
  const std::size_t head = long_id ? 1 + sizeof(uint32_t) : 1;
  char* at = writable(head + id.size());
  if (long_id) {
    const auto size = static_cast<uint32_t>(id.size());
    *at = static_cast<char>(kLongId);
    std::memcpy(at + 1, &size, sizeof size);
  } else {
    *at = static_cast<char>(id.size());
  }
  if (!id.empty()) std::memcpy(at + head, id.data(), id.size());
  text_->used += head + id.size();
  ++size_;
}

void IdList::append(const_iterator first, const_iterator last) {
  const auto bytes = static_cast<std::size_t>(last.at_ - first.at_);
  if (bytes == 0) return;
  std::memcpy(writable(bytes), first.at_, bytes);
  text_->used += bytes;
  for (; first != last; ++first) ++size_;
}

IdList::const_iterator IdList::begin() const {
  return const_iterator(text_ ? text_->bytes() : nullptr);
}

IdList::const_iterator IdList::end() const {
  return const_iterator(text_ ? text_->bytes() + text_->used : nullptr);
}

bool IdList::operator==(const IdList& other) const {
  if (size_ != other.size_) return false;
  if (text_ == other.text_) return true;
  const std::size_t used = text_ ? text_->used : 0;
  return used == (other.text_ ? other.text_->used : 0) &&
         (used == 0 || std::memcmp(text_->bytes(), other.text_->bytes(), used) == 0);
}

bool IdList::operator==(const std::vector<std::string>& ids) const {
  return size_ == ids.size() && std::equal(begin(), end(), ids.begin());
}

std::ostream& operator<<(std::ostream& out, const IdList& ids) {
  out << '[';
  const char* separator = "";
  for (const std::string_view id : ids) {
    out << separator << id;
    separator = ", ";
  }
  return out << ']';
}

int64_t round_half_up(__int128 num, __int128 den) {
  return static_cast<int64_t>((2 * num + den) / (2 * den));
}

namespace {

const CalendarDef* find_calendar(const Dataset& dataset, const std::string& id) {
  for (const auto& c : dataset.calendars) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

// The service's hours as a function of a span: all of it for 24x7, the calendar's business
// hours otherwise (in the calendar's own zone).
class ServiceHours {
 public:
  ServiceHours(const Dataset& dataset, const Service& service) {
    if (service.hours == kHours24x7) return;
    const CalendarDef* def = find_calendar(dataset, service.hours);
    if (!def) {
      throw ValidationError("service '" + service.id + "'.hours",
                            "names calendar '" + service.hours + "', which does not exist");
    }
    calendar_.emplace(def->to_calendar());
  }
  bool all_day() const { return !calendar_; }
  IntervalSet within(Interval span) const {
    if (span.empty()) return {};
    if (!calendar_) return IntervalSet{span};
    return calendar_->business_hours(span);
  }

 private:
  std::optional<BusinessCalendar> calendar_;
};

// What classifying a window reads of it, copied out of the dataset in one pass in the
// dataset's order: read where they are, a service's windows lie scattered over the dataset,
// and following a pointer to each was most of the cost of indexing the maintenance.
struct WindowCopy {
  Instant start;
  Instant end;
  std::optional<Instant> announced_at;
  MaintenanceCategory category;
  const MaintenanceWindow* window;
};

bool pre_approved(const WindowCopy& w, Environment env, const BusinessCalendar& provider) {
  if (!w.announced_at) return false;
  if (env == Environment::production) {
    return w.start - *w.announced_at >= std::chrono::hours(14 * 24);
  }
  return provider.gives_notice(*w.announced_at, w.start, 5);
}

// The seconds of `span` that count: ∩ H − X (each sorted and disjoint), appended
// to `out` as disjoint intervals, without allocating.
void append_counted(Interval span, std::span<const Interval> h, std::span<const Interval> x,
                    std::vector<Interval>& out) {
  auto hi = std::lower_bound(h.begin(), h.end(), span.start,
                             [](const Interval& piece, Instant t) { return piece.end <= t; });
  auto xi = std::lower_bound(x.begin(), x.end(), span.start,
                             [](const Interval& piece, Instant t) { return piece.end <= t; });
  for (; hi != h.end() && hi->start < span.end; ++hi) {
    const Interval part{std::max(span.start, hi->start), std::min(span.end, hi->end)};
    if (part.empty()) continue;
    Instant from = part.start;
    while (xi != x.end() && xi->end <= from) ++xi;
    for (auto e = xi; e != x.end() && e->start < part.end; ++e) {
      if (e->start > from) out.push_back({from, e->start});
      from = std::max(from, e->end);
    }
    if (from < part.end) out.push_back({from, part.end});
  }
}

// One maintenance window's effect on its service, before cutting to a period.
struct WindowEffect {
  const MaintenanceWindow* window;
  // A copy of the window's span: every month reads it for every window of every service,
  // and following `window` into the dataset for it was the engine's hottest cache miss.
  Interval span;
  int fiscal_year;
  // Its intervals in Maintenance::pieces: [first, middle) excluded (the budgeted part of a
  // pre-approved planned outage), [middle, last) downtime (the rest, in service hours). A
  // later window can exclude seconds of that downtime: X always wins, and the monthly pass
  // takes the period's X out of every piece of downtime it counts.
  uint32_t first = 0;
  uint32_t middle = 0;
  uint32_t last = 0;
  int64_t excluded_seconds = 0;
};

// Excluded maintenance and maintenance downtime of one service for all time.
struct Maintenance {
  IntervalSet excluded;
  std::vector<WindowEffect> windows;  // chronological (ties by id)
  // Every window's intervals, window by window: a set apiece was two allocations a window, and
  // most of the cost of classifying 200,000 of them.
  std::vector<Interval> pieces;
  // Compact views of `windows` for the monthly pass, which must not walk every window of
  // the year: starts (sorted), fiscal years (non-decreasing with the starts), excluded
  // seconds summed up to each window, and the longest window.
  std::vector<Instant> starts;
  std::vector<int> fiscal_years;
  std::vector<int64_t> excluded_before;  // size windows + 1
  std::chrono::seconds longest{0};

  std::span<const Interval> excluded_of(const WindowEffect& w) const {
    return {pieces.data() + w.first, w.middle - w.first};
  }
  std::span<const Interval> downtime_of(const WindowEffect& w) const {
    return {pieces.data() + w.middle, w.last - w.middle};
  }
};

// Takes pre-approved planned outages in chronological order (ties by id), each consuming the
// budget of the fiscal year it starts in. Windows before the month are walked too: they used
// budget the month's windows can no longer use.
Maintenance classify_maintenance(const Dataset& dataset, const Service& service,
                                 std::span<WindowCopy> windows, const ServiceHours& hours,
                                 const date::time_zone* zone, const BusinessCalendar& provider) {
  std::sort(windows.begin(), windows.end(), [](const WindowCopy& a, const WindowCopy& b) {
    if (a.start != b.start) return a.start < b.start;
    return a.window->id < b.window->id;
  });

  const int64_t budget = service.maintenance_budget_hours_per_fy * 3600;
  // Windows come in time order, so fiscal years only move forward: the budget used is kept
  // for the current one alone.
  std::optional<int> used_year;
  int64_t used = 0;
  auto budget_left = [&](int fy) {
    if (used_year != fy) {
      used_year = fy;
      used = 0;
    }
    return budget - used;
  };
  Maintenance out;
  out.windows.reserve(windows.size());
  out.pieces.reserve(windows.size());
  auto append = [&out](const IntervalSet& set) {
    out.pieces.insert(out.pieces.end(), set.intervals().begin(), set.intervals().end());
    return static_cast<uint32_t>(out.pieces.size());
  };
  FiscalYear year{0, {}};  // windows come in time order: most share the previous one's year
  for (const WindowCopy& copy : windows) {
    if (copy.start < year.bounds.start || copy.start >= year.bounds.end) {
      year = fiscal_year_of(copy.start, zone, dataset.fiscal_year_start_month);
    }
    WindowEffect& effect = out.windows.emplace_back();
    effect.window = copy.window;
    effect.span = {copy.start, copy.end};
    effect.fiscal_year = year.year;
    effect.first = static_cast<uint32_t>(out.pieces.size());
    const bool approved = copy.category == MaintenanceCategory::planned_outage &&
                          pre_approved(copy, service.environment, provider);
    // The common case without set algebra: all hours count, nothing excluded yet overlaps
    // (windows come in start order) and the budget covers the whole window.
    if (approved && hours.all_day() &&
        (out.excluded.empty() || out.excluded.intervals().back().end <= effect.span.start) &&
        effect.span.seconds() <= budget_left(year.year)) {
      used += effect.span.seconds();
      out.excluded.add(effect.span);
      out.pieces.push_back(effect.span);
      effect.middle = effect.last = static_cast<uint32_t>(out.pieces.size());
      continue;
    }
    const IntervalSet in_hours = hours.within(effect.span);
    if (approved) {
      const IntervalSet fresh = in_hours.subtract(out.excluded);
      const IntervalSet take = fresh.earliest(budget_left(year.year));
      used += take.measure();
      for (const Interval& piece : take.intervals()) out.excluded.add(piece);
      effect.middle = append(take);
      effect.last = append(fresh.subtract(take));
    } else {
      effect.middle = effect.first;
      effect.last = append(in_hours);
    }
  }
  out.starts.reserve(out.windows.size());
  out.fiscal_years.reserve(out.windows.size());
  out.excluded_before.reserve(out.windows.size() + 1);
  out.excluded_before.push_back(0);
  for (auto& effect : out.windows) {
    effect.excluded_seconds = 0;
    for (const Interval& piece : out.excluded_of(effect))
      effect.excluded_seconds += piece.seconds();
    out.starts.push_back(effect.span.start);
    out.fiscal_years.push_back(effect.fiscal_year);
    out.excluded_before.push_back(out.excluded_before.back() + effect.excluded_seconds);
    out.longest = std::max(out.longest, effect.span.end - effect.span.start);
  }
  return out;
}

// Ids as text, resolved through a flat open-addressing table: the index resolves the service
// of each of a million interruptions and the customer of every name they carry, and the
// pointer chase of a node-based map was most of that cost. Keys point into the dataset; their
// first 16 bytes are kept in the slot too, so that comparing a short id (nearly every one)
// does not read the dataset's copy, which is rarely in the cache.
class IdTable {
 public:
  explicit IdTable(std::size_t expected) { rehash(capacity_for(expected)); }

  // The value stored for `key`; stores `value` first when `key` is new.
  uint32_t emplace(std::string_view key, uint32_t value) {
    const Head head = head_of(key);
    Slot& slot = slots_[probe(key, head)];
    if (slot.data != nullptr) return slot.value;
    slot = {head, key.data(), key.size(), value};
    if (++size_ * 2 > slots_.size()) rehash(slots_.size() * 2);
    return value;
  }

  std::optional<uint32_t> find(std::string_view key) const {
    const Slot& slot = slots_[probe(key, head_of(key))];
    if (slot.data == nullptr) return std::nullopt;
    return slot.value;
  }

 private:
  static constexpr std::size_t kHead = 16;
  struct Head {
    uint64_t word[2] = {0, 0};  // the key's first 16 bytes, zero-padded
    bool operator==(const Head&) const = default;
  };
  struct Slot {
    Head head;
    const char* data = nullptr;  // null: free
    std::size_t size = 0;
    uint32_t value = 0;
  };

  static Head head_of(std::string_view key) {
    Head head;
    std::memcpy(head.word, key.data(), std::min(key.size(), kHead));
    return head;
  }

  static std::size_t capacity_for(std::size_t expected) {
    std::size_t capacity = 16;
    while (capacity < 2 * expected + 2) capacity *= 2;
    return capacity;
  }

  static uint64_t hash(std::string_view key, const Head& head) {
    uint64_t h = (0x9E3779B97F4A7C15ull ^ key.size()) + head.word[0];
    h = (h ^ (h >> 32)) * 0xff51afd7ed558ccdull + head.word[1];
    for (std::size_t at = kHead; at < key.size(); at += 8) {  // the rest, 8 bytes at a time
      uint64_t word = 0;
      std::memcpy(&word, key.data() + at, std::min<std::size_t>(8, key.size() - at));
      h = (h ^ (h >> 32)) * 0xff51afd7ed558ccdull + word;
    }
    // Ids differ mostly in their last characters; the finaliser spreads those bits to the
    // low ones the mask keeps.
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
  }

  // The slot holding `key`, else the free slot where it belongs.
  std::size_t probe(std::string_view key, const Head& head) const {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t at = hash(key, head) & mask;; at = (at + 1) & mask) {
      const Slot& slot = slots_[at];
      if (slot.data == nullptr) return at;
      if (slot.size == key.size() && slot.head == head &&
          (key.size() <= kHead ||
           std::memcmp(slot.data + kHead, key.data() + kHead, key.size() - kHead) == 0)) {
        return at;
      }
    }
  }

  void rehash(std::size_t capacity) {
    std::vector<Slot> old(capacity);
    old.swap(slots_);
    for (const Slot& slot : old) {
      if (slot.data != nullptr) slots_[probe({slot.data, slot.size}, slot.head)] = slot;
    }
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

// A subscription's term as the engine needs it, kept contiguously: checking every subscriber
// of every service in every month was a pointer chase into the customers.
struct Term {
  Instant start;      // Instant::min() when open-ended
  Instant end;        // Instant::max() when open-ended
  Instant start_key;  // the start, absent counting as the epoch: orders "started last"
  int64_t monthly_charge_cents;
};

Term term_of(const Subscription& s) {
  return {s.start.value_or(Instant::min()), s.end.value_or(Instant::max()),
          s.start.value_or(Instant{}), s.monthly_charge_cents};
}

// One customer's subscriptions to one service: terms [first, last) of Tables::terms. Customers
// are ranks: positions in the id order of every customer and every name an interruption
// gives, so sorting ranks sorts ids, and a name is matched without comparing text.
struct Subscriber {
  uint32_t customer;
  uint32_t first;
  uint32_t last;
};

// The term whose charge is credited: with several active in the period, the one that
// started last (docs/availability.md), since a changed charge is a new subscription that
// starts when the change does.
const Term* active_term(const std::vector<Term>& terms, const Subscriber& s, Interval period) {
  if (period.empty()) return nullptr;
  const Term* best = nullptr;
  for (uint32_t k = s.first; k < s.last; ++k) {
    const Term& t = terms[k];
    if (t.start >= period.end || t.end <= period.start) continue;
    if (!best || t.start_key >= best->start_key) best = &t;
  }
  return best;
}

// A copy of a text of up to 15 bytes, else a mark that it did not fit.
class ShortId {
 public:
  ShortId() = default;
  explicit ShortId(std::string_view text) {
    if (text.size() >= sizeof text_) {
      size_ = kTooLong;
      return;
    }
    size_ = static_cast<uint8_t>(text.size());
    std::memcpy(text_, text.data(), text.size());
  }
  bool fits() const { return size_ != kTooLong; }
  std::string_view view() const { return {text_, size_}; }

 private:
  static constexpr uint8_t kTooLong = 0xff;
  char text_[15] = {};
  uint8_t size_ = 0;
};

// An outage of a service with what the monthly pass needs of it, copied out of the dataset
// so that a month walks one array instead of following a pointer per interruption.
struct Outage {
  Instant start;
  Instant end;  // open outages: resolved per report
  const Interruption* interruption;
  // The customers it names, as ranks [named_first, named_first + named_count) of
  // Tables::named, sorted and unique; none means every subscriber.
  uint32_t named_first;
  uint32_t named_count;
};

// The flat arrays every service's index points into.
struct Tables {
  std::vector<Outage> outages;  // closed, grouped by service, each group sorted by start
  // Their ids, when short (nearly always): a month copies the id of every interruption that
  // counts, and reading it from the dataset (a 160-byte Interruption apiece, in no order the
  // month follows) was a cache miss each. Apart from `outages`, which a month searches by
  // start: 16 more bytes an outage there made every search read more memory.
  std::vector<ShortId> outage_ids;
  std::vector<uint32_t> named;
  std::vector<Subscriber> subscribers;  // grouped by service, each group in customer order
  std::vector<Term> terms;
  // Copies, not pointers into the dataset: every month writes an id per customer impacted,
  // and this table stays in the cache where the dataset's customers do not.
  std::vector<std::string> customer_ids;  // by rank
  // The dataset's interruptions are in strictly ascending id order (they usually are: ids are
  // issued in sequence), so that their addresses order them as their ids do, with no two
  // alike: a month orders the interruptions that count without reading their ids.
  bool interruptions_by_id = false;

  std::span<const uint32_t> names_of(const Outage& o) const {
    return {named.data() + o.named_first, o.named_count};
  }
};

// An interruption's part of the month that counts (∩ H − X, non-empty), as the range
// [first, last) of a flat list of disjoint intervals shared by the service's interruptions,
// so a month with thousands of interruptions does not allocate a set for each.
struct Contribution {
  const Outage* outage;
  std::string_view id;
  std::size_t first;
  std::size_t last;
};

int64_t credit_cents(const CreditPolicy& policy, int64_t charge, int64_t excess,
                     int64_t customer_downtime, int64_t scheduled) {
  __int128 num = 0;
  __int128 den = 1;
  if (policy.type == CreditPolicyType::proportional) {
    num = static_cast<__int128>(charge) * excess;
    den = scheduled;
  } else {
    // Exact availability a = (scheduled − D_c) / scheduled; "below p %" is
    // (scheduled − D_c) × 100000 < p_thousandths × scheduled.
    const CreditTier* tier = nullptr;
    for (const auto& t : policy.tiers) {
      const bool below = static_cast<__int128>(scheduled - customer_downtime) * 100000 <
                         static_cast<__int128>(t.below_thousandths) * scheduled;
      if (below && (!tier || t.below_thousandths < tier->below_thousandths)) tier = &t;
    }
    if (tier) {
      num = static_cast<__int128>(charge) * tier->credit_thousandths;
      den = 100000;
    }
  }
  const __int128 cap_num = static_cast<__int128>(charge) * policy.cap_thousandths;
  const __int128 cap_den = 100000;
  if (num * cap_den > cap_num * den) {
    num = cap_num;
    den = cap_den;
  }
  return round_half_up(num, den);
}

Interval clip(Interval span, Interval period) {
  return {std::clamp(span.start, period.start, period.end),
          std::clamp(span.end, period.start, period.end)};
}

// Everything about one service that does not depend on the month.
struct ServiceIndex {
  const Service* service;
  const date::time_zone* zone;
  ServiceHours hours;
  CreditPolicy policy;
  Maintenance maintenance;
  uint32_t outages_first = 0;  // closed outages [first, last) of Tables::outages
  uint32_t outages_last = 0;
  std::chrono::seconds longest{0};  // of the closed ones
  std::vector<Outage> open{};
  uint32_t subscribers_first = 0;  // [first, last) of Tables::subscribers
  uint32_t subscribers_last = 0;
};

}  // namespace

BusinessCalendar provider_calendar(const Dataset& dataset) {
  if (dataset.provider_calendar) {
    if (const CalendarDef* def = find_calendar(dataset, *dataset.provider_calendar)) {
      return def->to_calendar();
    }
  }
  return BusinessCalendar::weekdays(find_zone(dataset.timezone));
}

Interval month_span(const Dataset& dataset, date::year_month month) {
  std::unordered_set<std::string_view> zones;
  for (const Service& s : dataset.services) zones.insert(zone_of(dataset, s));
  if (zones.empty()) zones.insert(dataset.timezone);
  std::optional<Interval> span;
  for (const std::string_view zone : zones) {
    const Interval bounds = month_bounds(month, find_zone(zone));
    span = span ? Interval{std::min(span->start, bounds.start), std::max(span->end, bounds.end)}
                : bounds;
  }
  return *span;
}

const char* to_string(TimelineEntry::Kind kind) {
  switch (kind) {
    case TimelineEntry::Kind::interruption:
      return "interruption";
    case TimelineEntry::Kind::maintenance_downtime:
      return "maintenance_downtime";
    case TimelineEntry::Kind::excluded_maintenance:
      return "excluded_maintenance";
  }
  return "interruption";
}

struct Engine::Index {
  const Dataset* dataset;
  std::vector<ServiceIndex> services;  // sorted by service id
  Tables tables;
};

namespace {

constexpr uint32_t kNoGroup = UINT32_MAX;

// A counting sort's first half: `group[n]` is item n's group (kNoGroup: left out); returns
// where each group starts once the items are grouped, plus the end, so that group k is
// [starts[k], starts[k + 1]). The index groups its arrays this way, without a vector per
// service.
std::vector<uint32_t> group_starts(const std::vector<uint32_t>& group, std::size_t groups) {
  std::vector<uint32_t> starts(groups + 1, 0);
  for (const uint32_t g : group) {
    if (g != kNoGroup) ++starts[g + 1];
  }
  for (std::size_t k = 0; k < groups; ++k) starts[k + 1] += starts[k];
  return starts;
}

// The services in id order, found by id or by their position in the dataset (as
// DatasetReferences give them).
struct ServiceSlots {
  std::vector<const Service*> services;
  IdTable slot;
  std::vector<uint32_t> slot_at;  // by position in Dataset::services

  explicit ServiceSlots(const Dataset& dataset) : slot(dataset.services.size()) {
    for (const auto& s : dataset.services) services.push_back(&s);
    std::sort(services.begin(), services.end(),
              [](const Service* a, const Service* b) { return a->id < b->id; });
    for (std::size_t i = 0; i < services.size(); ++i) {
      slot.emplace(services[i]->id, static_cast<uint32_t>(i));
    }
    // A repeated id (a dataset check_references did not pass) finds the slot its first
    // sorted occurrence took, by id or by position alike.
    slot_at.reserve(dataset.services.size());
    for (const auto& s : dataset.services) slot_at.push_back(*slot.find(s.id));
  }

  // The slot of the service at `position`, none for DatasetReferences::kUnresolved.
  std::optional<uint32_t> at(uint32_t position) const {
    if (position == DatasetReferences::kUnresolved) return std::nullopt;
    return slot_at.at(position);  // references of another dataset: out_of_range, not a wild read
  }
};

// Each service with its hours, credit policy and classified maintenance.
std::vector<ServiceIndex> index_services(const Dataset& dataset, const DatasetReferences& refs,
                                         const ServiceSlots& slots) {
  // The windows that can take service hours, grouped by service.
  std::vector<uint32_t> group(dataset.maintenance.size(), kNoGroup);
  for (std::size_t n = 0; n < dataset.maintenance.size(); ++n) {
    const MaintenanceWindow& w = dataset.maintenance[n];
    if (w.status == MaintenanceStatus::skipped || w.status == MaintenanceStatus::cancelled) {
      continue;
    }
    if (w.category == MaintenanceCategory::planned_non_disruptive ||
        w.category == MaintenanceCategory::expedited_non_disruptive) {
      continue;
    }
    if (auto k = slots.at(refs.maintenance_service[n])) group[n] = *k;
  }
  const std::vector<uint32_t> starts = group_starts(group, slots.services.size());
  std::vector<WindowCopy> windows(starts.back());
  std::vector<uint32_t> next(starts.begin(), starts.end() - 1);
  for (std::size_t n = 0; n < group.size(); ++n) {
    if (group[n] == kNoGroup) continue;
    const MaintenanceWindow& w = dataset.maintenance[n];
    windows[next[group[n]]++] = {w.start, w.end, w.announced_at, w.category, &w};
  }

  const BusinessCalendar provider = provider_calendar(dataset);
  std::vector<ServiceIndex> out;
  out.reserve(slots.services.size());
  for (std::size_t i = 0; i < slots.services.size(); ++i) {
    const Service& service = *slots.services[i];
    const date::time_zone* zone = find_zone(zone_of(dataset, service));
    ServiceHours hours(dataset, service);
    Maintenance maintenance = classify_maintenance(
        dataset, service, std::span(windows).subspan(starts[i], starts[i + 1] - starts[i]), hours,
        zone, provider);
    out.push_back({&service, zone, std::move(hours),
                   service.credit_policy.value_or(dataset.credit_policy.value_or(CreditPolicy{})),
                   std::move(maintenance)});
  }
  return out;
}

// Customer ranks. Customers are numbered in id order, so that a number is a rank; a name an
// interruption gives that no customer has (a dataset check_references did not pass) is
// numbered after them, and finish() then renumbers everything into ranks.
class CustomerRanks {
 public:
  explicit CustomerRanks(const Dataset& dataset) : names_(dataset.customers.size()) {
    customers_.reserve(dataset.customers.size());
    for (const auto& c : dataset.customers) customers_.push_back(&c);
    std::sort(customers_.begin(), customers_.end(),
              [](const Customer* a, const Customer* b) { return a->id < b->id; });
    for (const Customer* c : customers_) number(c->id);
    known_ = distinct_.size();
    number_at_.reserve(dataset.customers.size());
    for (const auto& c : dataset.customers) number_at_.push_back(number(c.id));
  }

  // The customers in id order.
  const std::vector<const Customer*>& customers() const { return customers_; }

  uint32_t number(const std::string& id) {
    const auto next = static_cast<uint32_t>(distinct_.size());
    const uint32_t found = names_.emplace(id, next);
    if (found == next) distinct_.push_back(&id);
    return found;
  }
  // The number of the customer at `position` in Dataset::customers.
  uint32_t number_at(uint32_t position) const { return number_at_.at(position); }

  // Numbers become ranks (`named` and every outage's names re-sorted, when names without a
  // customer make that necessary), and the ids by rank go to `tables`.
  void finish(std::vector<ServiceIndex>& services, Tables& tables) {
    tables.customer_ids.clear();
    for (const std::string* id : distinct_) tables.customer_ids.push_back(*id);
    if (distinct_.size() == known_) return;
    std::vector<uint32_t> order(distinct_.size());
    for (uint32_t n = 0; n < order.size(); ++n) order[n] = n;
    std::sort(order.begin(), order.end(),
              [&](uint32_t a, uint32_t b) { return *distinct_[a] < *distinct_[b]; });
    rank_of_.resize(distinct_.size());
    for (uint32_t rank = 0; rank < order.size(); ++rank) {
      rank_of_[order[rank]] = rank;
      tables.customer_ids[rank] = *distinct_[order[rank]];
    }
    for (uint32_t& n : tables.named) n = rank_of_[n];
    for (Outage& o : tables.outages) sort_names(tables, o);
    for (auto& service : services) {
      for (Outage& o : service.open) sort_names(tables, o);
    }
  }

  // After finish().
  uint32_t rank(const std::string& id) const {
    const uint32_t n = *names_.find(id);
    return rank_of_.empty() ? n : rank_of_[n];
  }

  static void sort_names(Tables& tables, Outage& o) {
    if (o.named_count < 2) return;
    const auto first = tables.named.begin() + o.named_first;
    std::sort(first, first + o.named_count);
    o.named_count = static_cast<uint32_t>(std::unique(first, first + o.named_count) - first);
  }

 private:
  IdTable names_;
  std::vector<const Customer*> customers_;
  std::vector<const std::string*> distinct_;  // by number
  std::vector<uint32_t> number_at_;           // by position in Dataset::customers
  std::size_t known_ = 0;
  std::vector<uint32_t> rank_of_;  // by number; empty while every number is its rank
};

// The outage of interruption `n`, its names appended to Tables::named.
Outage outage_of(const Dataset& dataset, const DatasetReferences& refs, std::size_t n,
                 Tables& tables, CustomerRanks& ranks) {
  const Interruption& i = dataset.interruptions[n];
  const uint32_t first = refs.named_first[n];
  const uint32_t count = refs.named_first[n + 1] - first;
  if (count != i.customers.size() || refs.named.size() - first < count) {
    throw std::invalid_argument("availability engine: references resolved for another dataset");
  }
  Outage o{i.start, i.end.value_or(i.start), &i, static_cast<uint32_t>(tables.named.size()), count};
  for (uint32_t k = 0; k < count; ++k) {
    const uint32_t position = refs.named[first + k];
    // A name no customer has (a dataset check_references did not pass) is numbered by text.
    tables.named.push_back(position == DatasetReferences::kUnresolved ? ranks.number(i.customers[k])
                                                                      : ranks.number_at(position));
  }
  CustomerRanks::sort_names(tables, o);
  return o;
}

// A service's closed outages sorted by start, their ids with them.
void sort_by_start(Tables& tables, const ServiceIndex& service) {
  std::vector<uint32_t> order(service.outages_last - service.outages_first);
  for (uint32_t k = 0; k < order.size(); ++k) order[k] = service.outages_first + k;
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return tables.outages[a].start < tables.outages[b].start;
  });
  std::vector<Outage> outages;
  std::vector<ShortId> ids;
  for (const uint32_t k : order) {
    outages.push_back(tables.outages[k]);
    ids.push_back(tables.outage_ids[k]);
  }
  std::copy(outages.begin(), outages.end(), tables.outages.begin() + service.outages_first);
  std::copy(ids.begin(), ids.end(), tables.outage_ids.begin() + service.outages_first);
}

// The outages by service, closed ones sorted by start. Two passes over the interruptions
// (160 bytes each): one counts each service's outages and names, the other writes them to
// their places, a block at a time through a small staging area that is reused (a pass that
// copied all of them out first was slower, its 32 MB temporary faulted in afresh each time).
void index_outages(const Dataset& dataset, const DatasetReferences& refs, const ServiceSlots& slots,
                   CustomerRanks& ranks, std::vector<ServiceIndex>& services, Tables& tables) {
  std::vector<uint32_t> group(dataset.interruptions.size(), kNoGroup);
  // The names of closed outages by service, so that a month reads a service's names in one
  // run, as it reads its outages, instead of one cache miss an outage.
  std::vector<uint32_t> names_at(services.size() + 1, 0);
  tables.interruptions_by_id = true;
  for (std::size_t n = 0; n < dataset.interruptions.size(); ++n) {
    const Interruption& i = dataset.interruptions[n];
    if (n > 0 && !(dataset.interruptions[n - 1].id < i.id)) tables.interruptions_by_id = false;
    if (i.type != InterruptionType::outage) continue;
    const auto k = slots.at(refs.interruption_service[n]);
    if (!k) continue;
    if (i.end) {
      group[n] = *k;
      names_at[*k + 1] += refs.named_first[n + 1] - refs.named_first[n];
    } else {
      // Rare: resolved per report.
      services[*k].open.push_back(outage_of(dataset, refs, n, tables, ranks));
    }
  }
  std::vector<uint32_t> at = group_starts(group, services.size());
  for (std::size_t k = 0; k < services.size(); ++k) {
    services[k].outages_first = at[k];
    services[k].outages_last = at[k + 1];
  }
  tables.outages.resize(at.back());
  tables.outage_ids.resize(at.back());
  names_at[0] = static_cast<uint32_t>(tables.named.size());  // after the open outages' names
  for (std::size_t k = 0; k < services.size(); ++k) names_at[k + 1] += names_at[k];
  tables.named.resize(names_at.back());
  // A block of interruptions at a time: staged in the dataset's order (read in sequence), then
  // written service by service, so that each service's place in the tables is visited once a
  // block rather than once an outage (the tables are 50 MB; every visit to a place far from
  // the last was a TLB miss, and those were most of the cost of indexing).
  constexpr std::size_t kBlock = std::size_t{1} << 16;
  struct Staged {
    Outage outage;  // names in stage.named
    ShortId id;
    uint32_t group;
  };
  std::vector<Staged> staged;
  staged.reserve(std::min(kBlock, group.size()));
  Tables stage;
  std::vector<uint32_t> first(services.size() + 1);
  std::vector<uint32_t> order;
  for (std::size_t block = 0; block < group.size(); block += kBlock) {
    staged.clear();
    stage.named.clear();
    const std::size_t end = std::min(group.size(), block + kBlock);
    for (std::size_t n = block; n < end; ++n) {
      if (group[n] == kNoGroup) continue;
      const Interruption& i = dataset.interruptions[n];
      staged.push_back({outage_of(dataset, refs, n, stage, ranks), ShortId(i.id), group[n]});
    }
    // The staged outages by service (a counting sort, stable).
    std::fill(first.begin(), first.end(), 0);
    for (const Staged& st : staged) ++first[st.group + 1];
    for (std::size_t k = 0; k < services.size(); ++k) first[k + 1] += first[k];
    order.resize(staged.size());
    for (uint32_t k = 0; k < staged.size(); ++k) order[first[staged[k].group]++] = k;
    for (const uint32_t k : order) {
      const Staged& st = staged[k];
      const uint32_t place = at[st.group]++;
      Outage o = st.outage;
      const auto names = stage.names_of(o);
      o.named_first = names_at[st.group];
      std::copy(names.begin(), names.end(), tables.named.begin() + o.named_first);
      names_at[st.group] += o.named_count;
      tables.outages[place] = o;
      tables.outage_ids[place] = st.id;
    }
  }
  auto by_start = [](const Outage& a, const Outage& b) { return a.start < b.start; };
  for (auto& service : services) {
    const auto first = tables.outages.begin() + service.outages_first;
    const auto last = tables.outages.begin() + service.outages_last;
    // Interruptions usually arrive in time order; checking is cheaper than sorting.
    if (!std::is_sorted(first, last, by_start)) sort_by_start(tables, service);
    for (auto o = first; o != last; ++o) {
      service.longest = std::max(service.longest, o->end - o->start);
    }
  }
}

// Subscribers and their terms by service, each service's in customer order.
void index_subscriptions(const ServiceSlots& slots, const CustomerRanks& ranks,
                         std::vector<ServiceIndex>& services, Tables& tables) {
  struct Held {
    uint32_t customer;
    Term term;
  };
  std::vector<Held> held;  // in customer order
  std::vector<uint32_t> group;
  for (const Customer* c : ranks.customers()) {
    const uint32_t rank = ranks.rank(c->id);
    for (const auto& sub : c->subscriptions) {
      if (auto k = slots.slot.find(sub.service)) {
        held.push_back({rank, term_of(sub)});
        group.push_back(*k);
      }
    }
  }
  const std::vector<uint32_t> starts = group_starts(group, services.size());
  std::vector<uint32_t> order(held.size());  // held, grouped by service
  std::vector<uint32_t> next(starts.begin(), starts.end() - 1);
  for (uint32_t n = 0; n < held.size(); ++n) order[next[group[n]]++] = n;
  tables.terms.reserve(held.size());
  for (std::size_t k = 0; k < services.size(); ++k) {
    ServiceIndex& service = services[k];
    service.subscribers_first = static_cast<uint32_t>(tables.subscribers.size());
    for (uint32_t n = starts[k]; n < starts[k + 1]; ++n) {
      const Held& h = held[order[n]];
      const auto term = static_cast<uint32_t>(tables.terms.size());
      if (tables.subscribers.size() == service.subscribers_first ||
          tables.subscribers.back().customer != h.customer) {
        tables.subscribers.push_back({h.customer, term, term});
      }
      tables.terms.push_back(h.term);
      tables.subscribers.back().last = term + 1;
    }
    service.subscribers_last = static_cast<uint32_t>(tables.subscribers.size());
  }
}

}  // namespace

Engine::Engine(const Dataset& dataset) : Engine(dataset, resolve_references(dataset)) {}

Engine::Engine(const Dataset& dataset, const DatasetReferences& references)
    : index_(std::make_unique<Index>()) {
  if (references.interruption_service.size() != dataset.interruptions.size() ||
      references.named_first.size() != dataset.interruptions.size() + 1 ||
      references.maintenance_service.size() != dataset.maintenance.size()) {
    throw std::invalid_argument("availability engine: references resolved for another dataset");
  }
  index_->dataset = &dataset;
  const ServiceSlots slots(dataset);
  index_->services = index_services(dataset, references, slots);
  CustomerRanks ranks(dataset);
  index_outages(dataset, references, slots, ranks, index_->services, index_->tables);
  ranks.finish(index_->services, index_->tables);
  index_subscriptions(slots, ranks, index_->services, index_->tables);
}

Engine::~Engine() = default;

namespace {

// Both lists sorted and disjoint: their intersection, into `out`.
void intersect_into(std::span<const Interval> a, std::span<const Interval> b,
                    std::vector<Interval>& out) {
  out.clear();
  if (a.empty() || b.empty()) return;
  auto i = std::lower_bound(a.begin(), a.end(), b.front().start,
                            [](const Interval& piece, Instant t) { return piece.end <= t; });
  auto j = b.begin();
  while (i != a.end() && j != b.end()) {
    const Interval part{std::max(i->start, j->start), std::min(i->end, j->end)};
    if (!part.empty()) out.push_back(part);
    if (i->end < j->end) {
      ++i;
    } else {
      ++j;
    }
  }
}

int64_t intersection_seconds(std::span<const Interval> a, std::span<const Interval> b,
                             std::vector<Interval>& scratch) {
  intersect_into(a, b, scratch);
  int64_t seconds = 0;
  for (const Interval& i : scratch) seconds += i.seconds();
  return seconds;
}

int64_t seconds_of(const std::vector<Interval>& pieces, std::size_t first, std::size_t last) {
  int64_t seconds = 0;
  for (std::size_t k = first; k < last; ++k) seconds += pieces[k].seconds();
  return seconds;
}

// `pieces` in start order; they usually come that way, and checking is cheaper than sorting.
void order_by_start(std::vector<Interval>& pieces) {
  auto by_start = [](const Interval& a, const Interval& b) { return a.start < b.start; };
  if (!std::is_sorted(pieces.begin(), pieces.end(), by_start)) {
    std::sort(pieces.begin(), pieces.end(), by_start);
  }
}

// `pieces` sorted and merged into their union, disjoint; returns its measure.
int64_t merge(std::vector<Interval>& pieces) {
  order_by_start(pieces);
  std::size_t out = 0;
  int64_t seconds = 0;
  for (const Interval& piece : pieces) {
    if (piece.empty()) continue;
    if (out > 0 && piece.start <= pieces[out - 1].end) {
      pieces[out - 1].end = std::max(pieces[out - 1].end, piece.end);
      continue;
    }
    pieces[out++] = piece;
  }
  pieces.resize(out);
  for (const Interval& piece : pieces) seconds += piece.seconds();
  return seconds;
}

// The measure of the union of `pieces` (which it sorts) and `merged` (sorted, disjoint): a
// customer's few own interruptions added to what every customer shares.
// (Two sorted lists merged on the fly, not concatenated and sorted again.)
int64_t union_seconds(std::vector<Interval>& pieces, std::span<const Interval> merged) {
  order_by_start(pieces);
  int64_t seconds = 0;
  Interval run{};
  auto add = [&](const Interval& piece) {
    if (piece.empty()) return;
    if (!run.empty() && piece.start <= run.end) {
      run.end = std::max(run.end, piece.end);
      return;
    }
    seconds += run.seconds();
    run = piece;
  };
  auto a = pieces.begin();
  auto b = merged.begin();
  while (a != pieces.end() || b != merged.end()) {
    if (b == merged.end() || (a != pieces.end() && a->start < b->start)) {
      add(*a++);
    } else {
      add(*b++);
    }
  }
  return seconds + run.seconds();
}

// The measure of the union of `pieces`, which it sorts.
int64_t union_seconds(std::vector<Interval>& pieces) { return union_seconds(pieces, {}); }

// Copies of the strings pointed to, sorted by text.
IdList sorted_texts(std::vector<const std::string*>& items) {
  auto less = [](const std::string* a, const std::string* b) { return *a < *b; };
  // Ids usually come in the order they were issued, which is already sorted.
  if (!std::is_sorted(items.begin(), items.end(), less)) {
    std::sort(items.begin(), items.end(), less);
  }
  IdList out;
  for (const std::string* item : items) out.push_back(*item);
  return out;
}

// The month's bounds and fiscal year per zone, computed once per report: services share
// a handful of zones, and a zone lookup costs more than a service's whole computation.
struct MonthInZone {
  Interval period;
  int fiscal_year;
};

// A subscriber with a term active in the period.
struct Active {
  const Subscriber* subscriber;
  const Term* term;
};

constexpr uint32_t kNotActive = UINT32_MAX;

// Working lists of one report, reused from service to service.
struct Scratch {
  std::vector<Interval> x;
  std::vector<Interval> maint_down;
  std::vector<Interval> pieces;
  std::vector<Interval> all;
  std::vector<Interval> own;
  std::vector<Interval> shared;
  std::vector<uint32_t> named_contributions;
  std::vector<Interval> spare;
  std::vector<Active> active;
  std::vector<Contribution> contributions;
  std::vector<uint32_t> by_id;  // contributions in id order
  std::vector<char> hit;        // by contribution: it counts for the customer at hand
  std::vector<uint32_t> place;  // by contribution: its place in by_id
  std::vector<char> hit_at;     // by place in by_id: it counts for the customer at hand
  std::vector<IdList::const_iterator> id_at;  // by place in by_id: its id in the service's list
  // By customer rank: the subscriber's place in `active`, for the service at hand.
  std::vector<uint32_t> active_at;
  std::vector<uint32_t> own_first;  // by place in `active`, plus the end
  std::vector<uint32_t> own_next;
  std::vector<uint32_t> own_hits;  // contributions, grouped by subscriber
  std::vector<const std::string*> maint_ids;
  std::vector<uint32_t> impacted;
};

// sc.by_id: the contributions in the order of their interruptions' ids (by address when the
// dataset holds them in id order, which is also, nearly always, the order they came in).
void order_by_id(const Tables& t, Scratch& sc) {
  const std::size_t n = sc.contributions.size();
  sc.by_id.resize(n);
  for (std::size_t k = 0; k < n; ++k) sc.by_id[k] = static_cast<uint32_t>(k);
  const auto* c = sc.contributions.data();
  auto by_address = [c](uint32_t a, uint32_t b) {
    return c[a].outage->interruption < c[b].outage->interruption;
  };
  auto by_text = [c](uint32_t a, uint32_t b) { return c[a].id < c[b].id; };
  if (t.interruptions_by_id) {
    if (!std::is_sorted(sc.by_id.begin(), sc.by_id.end(), by_address)) {
      std::sort(sc.by_id.begin(), sc.by_id.end(), by_address);
    }
  } else if (!std::is_sorted(sc.by_id.begin(), sc.by_id.end(), by_text)) {
    std::sort(sc.by_id.begin(), sc.by_id.end(), by_text);
  }
}

// The ids of the contributions `chosen` (by index), in id order and without repeats, to `out`.
template <class Chosen>
void append_ids(const Tables& t, const Scratch& sc, Chosen chosen, IdList& out) {
  std::string_view last;
  bool any = false;
  for (const uint32_t n : sc.by_id) {
    if (!chosen(n)) continue;
    const std::string_view id = sc.contributions[n].id;
    // Ids in ascending order are unique; otherwise drop repeats, as for any list of ids.
    if (!t.interruptions_by_id && any && id == last) continue;
    out.push_back(id);
    last = id;
    any = true;
  }
}

void compute_service(const Tables& t, const ServiceIndex& s, const MonthInZone& m,
                     std::optional<Instant> as_of, Detail detail, Scratch& sc,
                     AvailabilityReport& report) {
  Interval period = m.period;
  if (as_of) period.end = std::clamp(*as_of, period.start, period.end);
  const bool full = detail == Detail::full;

  // H: the period itself for a 24x7 service, its calendar's business hours otherwise.
  IntervalSet business;
  std::span<const Interval> h;
  if (!s.hours.all_day()) {
    business = s.hours.within(period);
    h = business.intervals();
  } else if (!period.empty()) {
    h = {&period, 1};
  }
  intersect_into(s.maintenance.excluded.intervals(), h, sc.x);
  const std::span<const Interval> x = sc.x;

  ServiceFigures& f = report.services.emplace_back();
  f.service = s.service->id;
  f.target_thousandths = s.service->target_thousandths;
  f.period = period;
  f.maintenance_budget_seconds = s.service->maintenance_budget_hours_per_fy * 3600;

  sc.active.clear();
  for (uint32_t k = s.subscribers_first; k < s.subscribers_last; ++k) {
    if (const Term* term = active_term(t.terms, t.subscribers[k], period)) {
      sc.active.push_back({&t.subscribers[k], term});
    }
  }
  auto subscriber_ids = [&] {
    std::vector<std::string> ids;
    for (const Active& a : sc.active) ids.push_back(t.customer_ids[a.subscriber->customer]);
    return ids;
  };

  sc.maint_down.clear();
  sc.maint_ids.clear();
  const Maintenance& mt = s.maintenance;
  // Windows that start before the period's end; of those, the fiscal year's have used budget.
  const auto until = static_cast<std::size_t>(
      std::lower_bound(mt.starts.begin(), mt.starts.end(), period.end) - mt.starts.begin());
  const auto [fy_first, fy_last] =
      std::equal_range(mt.fiscal_years.begin(), mt.fiscal_years.end(), m.fiscal_year);
  const auto fy_from = static_cast<std::size_t>(fy_first - mt.fiscal_years.begin());
  const auto fy_to = std::min(until, static_cast<std::size_t>(fy_last - mt.fiscal_years.begin()));
  if (fy_to > fy_from) {
    f.maintenance_budget_used_seconds = mt.excluded_before[fy_to] - mt.excluded_before[fy_from];
  }
  const auto from = static_cast<std::size_t>(
      std::lower_bound(mt.starts.begin(), mt.starts.begin() + static_cast<std::ptrdiff_t>(until),
                       period.start - mt.longest) -
      mt.starts.begin());
  for (std::size_t k = from; k < until; ++k) {
    const WindowEffect& effect = mt.windows[k];
    if (effect.span.end <= period.start) continue;
    const MaintenanceWindow& w = *effect.window;
    const Interval span = clip(effect.span, period);
    if (full) {
      if (const int64_t excluded = intersection_seconds(mt.excluded_of(effect), h, sc.spare);
          excluded > 0) {
        f.timeline.push_back({w.id,
                              TimelineEntry::Kind::excluded_maintenance,
                              span,
                              excluded,
                              subscriber_ids(),
                              {}});
      }
    }
    const std::size_t first = sc.maint_down.size();
    for (const Interval& d : mt.downtime_of(effect)) append_counted(d, h, x, sc.maint_down);
    if (sc.maint_down.size() == first) continue;
    sc.maint_ids.push_back(&w.id);
    if (full) {
      f.timeline.push_back(
          {w.id,
           TimelineEntry::Kind::maintenance_downtime,
           span,
           seconds_of(sc.maint_down, first, sc.maint_down.size()),
           subscriber_ids(),
           {sc.maint_down.begin() + static_cast<std::ptrdiff_t>(first), sc.maint_down.end()}});
    }
  }
  f.maintenance_downtime = sorted_texts(sc.maint_ids);

  sc.pieces.clear();
  sc.contributions.clear();
  sc.impacted.clear();
  bool all_subscribers = !sc.maint_down.empty();
  auto month_outage = [&](const Outage& o, Instant end, std::string_view id) {
    if (o.start >= period.end || end <= period.start) return;
    const std::size_t first = sc.pieces.size();
    append_counted({o.start, end}, h, x, sc.pieces);
    if (sc.pieces.size() == first) return;
    sc.contributions.push_back({&o, id, first, sc.pieces.size()});
    const auto names = t.names_of(o);
    if (names.empty()) {
      all_subscribers = true;
    } else {
      sc.impacted.insert(sc.impacted.end(), names.begin(), names.end());
    }
    if (full) {
      const Interruption& i = *o.interruption;
      std::vector<std::string> customers = i.customers.empty() ? subscriber_ids() : i.customers;
      std::sort(customers.begin(), customers.end());
      f.timeline.push_back(
          {i.id,
           TimelineEntry::Kind::interruption,
           clip({o.start, end}, period),
           seconds_of(sc.pieces, first, sc.pieces.size()),
           std::move(customers),
           {sc.pieces.begin() + static_cast<std::ptrdiff_t>(first), sc.pieces.end()}});
    }
  };
  // Closed outages that can reach into the period start at most `longest` before it.
  const auto first = t.outages.begin() + s.outages_first;
  const auto last = t.outages.begin() + s.outages_last;
  auto it = std::lower_bound(first, last, period.start - s.longest,
                             [](const Outage& o, Instant at) { return o.start < at; });
  for (; it != last && it->start < period.end; ++it) {
    if (it->end > period.start) {
      const ShortId& id = t.outage_ids[static_cast<std::size_t>(it - t.outages.begin())];
      month_outage(*it, it->end, id.fits() ? id.view() : it->interruption->id);
    }
  }
  for (const Outage& o : s.open) month_outage(o, as_of ? *as_of : period.end, o.interruption->id);
  if (full) {
    std::sort(f.timeline.begin(), f.timeline.end(), [](const auto& a, const auto& b) {
      return std::tie(a.span.start, a.id, a.kind) < std::tie(b.span.start, b.id, b.kind);
    });
  }

  sc.all.assign(sc.maint_down.begin(), sc.maint_down.end());
  sc.all.insert(sc.all.end(), sc.pieces.begin(), sc.pieces.end());

  f.excluded_maintenance_seconds = 0;
  for (const Interval& e : x) f.excluded_maintenance_seconds += e.seconds();
  int64_t hours_seconds = 0;
  for (const Interval& i : h) hours_seconds += i.seconds();
  f.scheduled_seconds = hours_seconds - f.excluded_maintenance_seconds;
  f.downtime_seconds = union_seconds(sc.all);
  f.allowed_downtime_seconds =
      f.scheduled_seconds * (100000 - s.service->target_thousandths) / 100000;
  f.excess_downtime_seconds = std::max<int64_t>(0, f.downtime_seconds - f.allowed_downtime_seconds);
  f.met = f.downtime_seconds <= f.allowed_downtime_seconds;
  if (f.scheduled_seconds > 0) {
    f.availability_ten_thousandths =
        round_half_up(static_cast<__int128>(f.scheduled_seconds - f.downtime_seconds) * 1000000,
                      f.scheduled_seconds);
  }

  if (all_subscribers) {
    for (const Active& a : sc.active) sc.impacted.push_back(a.subscriber->customer);
  }
  std::sort(sc.impacted.begin(), sc.impacted.end());
  sc.impacted.erase(std::unique(sc.impacted.begin(), sc.impacted.end()), sc.impacted.end());
  order_by_id(t, sc);
  std::size_t id_bytes = 0;
  for (const Contribution& k : sc.contributions) id_bytes += k.id.size();
  f.interruptions.reserve(sc.contributions.size(), id_bytes);
  append_ids(
      t, sc, [](std::size_t) { return true; }, f.interruptions);
  id_bytes = 0;
  for (const uint32_t rank : sc.impacted) id_bytes += t.customer_ids[rank].size();
  f.customers_impacted.reserve(sc.impacted.size(), id_bytes);
  for (const uint32_t rank : sc.impacted) f.customers_impacted.push_back(t.customer_ids[rank]);

  // A customer's downtime is part of the service's, so a service that met its SLA owes no
  // credit to anyone; only missed services need the per-customer sets.
  if (!f.met) {
    // Maintenance downtime and the interruptions that name no one count for every customer
    // impacted: their union is worked out once, and each customer adds only the
    // interruptions that name them.
    sc.shared.assign(sc.maint_down.begin(), sc.maint_down.end());
    sc.named_contributions.clear();
    sc.hit.resize(sc.contributions.size());
    std::size_t shared_bytes = 0;
    for (std::size_t n = 0; n < sc.contributions.size(); ++n) {
      const Contribution& k = sc.contributions[n];
      sc.hit[n] = t.names_of(*k.outage).empty();
      if (sc.hit[n]) {
        shared_bytes += k.id.size();
        sc.shared.insert(sc.shared.end(), sc.pieces.begin() + static_cast<std::ptrdiff_t>(k.first),
                         sc.pieces.begin() + static_cast<std::ptrdiff_t>(k.last));
      } else {
        sc.named_contributions.push_back(static_cast<uint32_t>(n));
      }
    }
    const int64_t shared_seconds = merge(sc.shared);
    const std::size_t shared_hits = sc.contributions.size() - sc.named_contributions.size();
    // A row's interruptions are copied from the service's list, a run of consecutive ids at a
    // time, when that list holds every contribution in by_id order (ids unique and in address
    // order): id_at[p] is where the p-th starts, hit_at[p] whether it counts for the row at
    // hand. A row with no interruptions of its own shares the first such row's list.
    const bool runs = t.interruptions_by_id;
    if (runs) {
      const std::size_t count = sc.contributions.size();
      sc.place.resize(count);
      sc.hit_at.resize(count);
      sc.id_at.clear();
      auto at = f.interruptions.begin();
      for (std::size_t p = 0; p < count; ++p, ++at) {
        const uint32_t n = sc.by_id[p];
        sc.place[n] = static_cast<uint32_t>(p);
        sc.hit_at[p] = sc.hit[n];
        sc.id_at.push_back(at);
      }
      sc.id_at.push_back(at);
    }
    IdList shared_only;
    // Each subscriber's own interruptions (the named ones that name them), found by reading
    // every name once: looking each subscriber up in every interruption's names was a binary
    // search per pair, a tenth of the reports' time. own[own_first[a], own_first[a + 1]) are
    // subscriber a's, in contribution order.
    const auto actives = static_cast<uint32_t>(sc.active.size());
    for (uint32_t a = 0; a < actives; ++a) sc.active_at[sc.active[a].subscriber->customer] = a;
    sc.own_first.assign(actives + 1, 0);
    for (const uint32_t n : sc.named_contributions) {
      for (const uint32_t name : t.names_of(*sc.contributions[n].outage)) {
        if (const uint32_t a = sc.active_at[name]; a != kNotActive) ++sc.own_first[a + 1];
      }
    }
    for (uint32_t a = 0; a < actives; ++a) sc.own_first[a + 1] += sc.own_first[a];
    sc.own_hits.resize(sc.own_first[actives]);
    sc.own_next.assign(sc.own_first.begin(), sc.own_first.end() - 1);
    for (const uint32_t n : sc.named_contributions) {
      for (const uint32_t name : t.names_of(*sc.contributions[n].outage)) {
        if (const uint32_t a = sc.active_at[name]; a != kNotActive)
          sc.own_hits[sc.own_next[a]++] = n;
      }
    }
    for (const Active& a : sc.active) sc.active_at[a.subscriber->customer] = kNotActive;
    // Subscribers are in customer order, so the rows come out sorted by customer.
    for (uint32_t a = 0; a < actives; ++a) {
      const auto own =
          std::span(sc.own_hits).subspan(sc.own_first[a], sc.own_first[a + 1] - sc.own_first[a]);
      if (own.empty() && !all_subscribers) continue;  // not impacted
      const Active& active = sc.active[a];
      const std::size_t hits = shared_hits + own.size();
      std::size_t hit_bytes = shared_bytes;
      sc.own.clear();
      for (const uint32_t n : own) {
        const Contribution& k = sc.contributions[n];
        hit_bytes += k.id.size();
        sc.own.insert(sc.own.end(), sc.pieces.begin() + static_cast<std::ptrdiff_t>(k.first),
                      sc.pieces.begin() + static_cast<std::ptrdiff_t>(k.last));
      }
      const int64_t downtime = sc.own.empty() ? shared_seconds : union_seconds(sc.own, sc.shared);
      if (downtime <= f.allowed_downtime_seconds) continue;
      const uint32_t customer = active.subscriber->customer;
      CreditRow& row = report.credits.emplace_back();
      row.downtime_seconds = downtime;
      row.excess_downtime_seconds = downtime - f.allowed_downtime_seconds;
      row.customer = t.customer_ids[customer];
      row.service = s.service->id;
      row.monthly_charge_cents = active.term->monthly_charge_cents;
      row.credit_cents =
          credit_cents(s.policy, active.term->monthly_charge_cents, row.excess_downtime_seconds,
                       row.downtime_seconds, f.scheduled_seconds);
      if (hits == sc.contributions.size()) {
        row.interruptions = f.interruptions;
      } else if (own.empty() && !shared_only.empty()) {
        row.interruptions = shared_only;
      } else {
        row.interruptions.reserve(hits, hit_bytes);
        if (runs) {
          for (const uint32_t n : own) sc.hit_at[sc.place[n]] = 1;
          const std::size_t count = sc.contributions.size();
          for (std::size_t p = 0; p < count;) {
            if (!sc.hit_at[p]) {
              ++p;
              continue;
            }
            std::size_t q = p + 1;
            while (q < count && sc.hit_at[q]) ++q;
            row.interruptions.append(sc.id_at[p], sc.id_at[q]);
            p = q;
          }
          for (const uint32_t n : own) sc.hit_at[sc.place[n]] = 0;
        } else {
          for (const uint32_t n : own) sc.hit[n] = 1;
          append_ids(
              t, sc, [&](std::size_t n) { return sc.hit[n] != 0; }, row.interruptions);
          for (const uint32_t n : own) sc.hit[n] = 0;
        }
        if (own.empty()) shared_only = row.interruptions;
      }
      row.maintenance_downtime = f.maintenance_downtime;
    }
  }
}

}  // namespace

AvailabilityReport Engine::report(date::year_month month, std::optional<Instant> as_of,
                                  Detail detail) const {
  return std::move(reports({&month, 1}, as_of, detail).front());
}

std::vector<AvailabilityReport> Engine::reports(std::span<const date::year_month> months,
                                                std::optional<Instant> as_of, Detail detail) const {
  std::vector<AvailabilityReport> out(months.size());
  for (std::size_t m = 0; m < months.size(); ++m) {
    out[m].month = months[m];
    out[m].services.reserve(index_->services.size());
    // A guess that spares most reports the moves of a growing list of credits.
    out[m].credits.reserve(index_->services.size());
  }
  // The months' bounds and fiscal years per zone, computed once: services share a handful of
  // zones, and a zone lookup costs more than a service's whole month.
  std::unordered_map<const date::time_zone*, std::vector<MonthInZone>> zones;
  Scratch scratch;
  scratch.active_at.assign(index_->tables.customer_ids.size(), kNotActive);
  // Service by service, each for every month: a service's index is read from memory once,
  // not once a month.
  for (const auto& s : index_->services) {
    auto it = zones.find(s.zone);
    if (it == zones.end()) {
      std::vector<MonthInZone> bounds;
      for (const auto month : months) {
        const Interval period = month_bounds(month, s.zone);
        const int fy =
            fiscal_year_of(period.start, s.zone, index_->dataset->fiscal_year_start_month).year;
        bounds.push_back({period, fy});
      }
      it = zones.emplace(s.zone, std::move(bounds)).first;
    }
    for (std::size_t m = 0; m < months.size(); ++m) {
      compute_service(index_->tables, s, it->second[m], as_of, detail, scratch, out[m]);
    }
  }
  return out;
}

AvailabilityReport compute(const Dataset& dataset, date::year_month month,
                           std::optional<Instant> as_of) {
  return Engine(dataset).report(month, as_of);
}

}  // namespace slmhub::availability
