// The availability engine: one service's figures for one month (DOMAIN.md §3) and the SLA
// credits they give rise to (DOMAIN.md §4), computed from a Dataset in integer seconds and
// integer cents only, so a report is reproducible to the second and to the cent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slmhub/domain.hpp"
#include "slmhub/time.hpp"

namespace slmhub::availability {

// A list of ids kept as one block of text, each id after its length (one byte, or 0xff and
// four more for an id of 255 bytes or longer). A year of reports lists millions of ids, and
// a std::string apiece (32 bytes each, and a copy for every credit row that lists them again)
// was most of the reports' memory and a fifth of the time it took to compute them. Copies
// share the text (a credit row usually lists what its service-month lists): a list's text is
// copied only when a list that shares it changes.
class IdList {
 public:
  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = std::string_view;

    const_iterator() = default;
    std::string_view operator*() const;
    const_iterator& operator++();
    const_iterator operator++(int) {
      const_iterator was = *this;
      ++*this;
      return was;
    }
    bool operator==(const const_iterator&) const = default;

   private:
    friend class IdList;
    explicit const_iterator(const char* at) : at_(at) {}
    const char* at_ = nullptr;
  };

  IdList() = default;
  IdList(std::initializer_list<std::string_view> ids);
  template <class It>
  IdList(It first, It last) {
    for (; first != last; ++first) push_back(*first);
  }
  IdList(const IdList& other) noexcept;
  IdList(IdList&& other) noexcept;
  IdList& operator=(const IdList& other) noexcept;
  IdList& operator=(IdList&& other) noexcept;
  ~IdList();

  void push_back(std::string_view id);
  // The ids [first, last) of another list, appended in one copy.
  void append(const_iterator first, const_iterator last);
  // Room for `ids` ids of `text_bytes` bytes in all.
  void reserve(std::size_t ids, std::size_t text_bytes);
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const_iterator begin() const;
  const_iterator end() const;

  // The same ids in the same order (the encoding is canonical).
  bool operator==(const IdList& other) const;
  bool operator==(const std::vector<std::string>& ids) const;

 private:
  struct Text;  // how many lists share it, the bytes used and allocated, then the bytes

  // Room for `extra` more bytes in a text this list alone holds; where they go.
  char* writable(std::size_t extra);
  void release() noexcept;

  Text* text_ = nullptr;  // none while empty
  std::size_t size_ = 0;
};

std::ostream& operator<<(std::ostream& out, const IdList& ids);  // [a, b, c]

// One entry of a service's month, for the publishable page: what counted and for whom.
struct TimelineEntry {
  enum class Kind { interruption, maintenance_downtime, excluded_maintenance };
  std::string id;
  Kind kind = Kind::interruption;
  Interval span;                       // as recorded, clipped to the period
  int64_t seconds = 0;                 // what counted (downtime or excluded) in service hours
  std::vector<std::string> customers;  // impacted: those named, else every subscriber; sorted
  // The instants that made up `seconds` (sorted, disjoint), for a downtime entry: overlapping
  // interruptions count once when their pieces are united.
  std::vector<Interval> counted;
  bool operator==(const TimelineEntry&) const = default;
};

const char* to_string(TimelineEntry::Kind kind);

// One service in one month (DESIGN.md §5.4 `services[]`).
struct ServiceFigures {
  std::string service;
  int64_t target_thousandths = 0;
  int64_t scheduled_seconds = 0;
  int64_t excluded_maintenance_seconds = 0;
  int64_t downtime_seconds = 0;
  int64_t allowed_downtime_seconds = 0;
  int64_t excess_downtime_seconds = 0;
  // Availability in ten-thousandths of a percent, rounded half up (99.4189 % is 994189). For
  // display only: `met` is decided on exact seconds.
  int64_t availability_ten_thousandths = 1000000;
  bool met = true;
  IdList interruptions;         // contributed downtime; sorted
  IdList maintenance_downtime;  // windows that count as downtime; sorted
  IdList customers_impacted;    // sorted
  // Beyond §5.4, for the page and the frozen revisions: the period measured, the fiscal-year
  // maintenance budget and its use up to the period's end, and the month's timeline (sorted
  // by start, then id).
  Interval period;
  int64_t maintenance_budget_seconds = 0;
  int64_t maintenance_budget_used_seconds = 0;
  std::vector<TimelineEntry> timeline;
  bool operator==(const ServiceFigures&) const = default;
};

// One customer's credit on one service (DESIGN.md §5.4 `credits[]`).
struct CreditRow {
  std::string customer;
  std::string service;
  int64_t downtime_seconds = 0;  // the customer's own D_c
  int64_t excess_downtime_seconds = 0;
  int64_t monthly_charge_cents = 0;
  int64_t credit_cents = 0;
  IdList interruptions;         // sorted
  IdList maintenance_downtime;  // sorted
  bool operator==(const CreditRow&) const = default;
};

struct AvailabilityReport {
  date::year_month month;
  std::vector<ServiceFigures> services;  // sorted by service id
  std::vector<CreditRow> credits;        // sorted by service, then customer
  bool operator==(const AvailabilityReport&) const = default;
};

enum class Detail { figures, full };

// The engine over one dataset: indexes interruptions, maintenance and subscriptions by service
// once, and classifies each service's maintenance (which does not depend on the month) once,
// so reports for many months cost one pass over each month's own records. Holds pointers
// into `dataset`, which must outlive it.
class Engine {
 public:
  // Throws ValidationError when a service names a calendar that does not exist. References
  // that resolve to nothing (a dataset check_references did not pass) are left out.
  explicit Engine(const Dataset& dataset);
  // The same with the dataset's references already resolved (read_dataset_file gives them),
  // so that they are not looked up again. References of another dataset are refused
  // (std::invalid_argument for other list sizes, std::out_of_range for a position beyond one).
  Engine(const Dataset& dataset, const DatasetReferences& references);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // `figures`: only what DESIGN.md §5.4 reports; `full` adds each service's timeline.
  AvailabilityReport report(date::year_month month, std::optional<Instant> as_of,
                            Detail detail = Detail::full) const;
  // The reports for several months at once (each as report() gives it), cheaper than one
  // call per month: each service's index is read once for all of them.
  std::vector<AvailabilityReport> reports(std::span<const date::year_month> months,
                                          std::optional<Instant> as_of,
                                          Detail detail = Detail::full) const;

 private:
  struct Index;
  std::unique_ptr<Index> index_;
};

// The report for every service of `dataset` in `month`. With `as_of`, the period ends there
// and open interruptions end there; without it, open interruptions run to the month's end.
// Expects a dataset that passed check_references; throws ValidationError when a service names
// a calendar that does not exist.
AvailabilityReport compute(const Dataset& dataset, date::year_month month,
                           std::optional<Instant> as_of);

// The month as measured across the dataset: from its earliest start to its latest end over the
// zones of its services (DOMAIN.md §2 measures each service's month in its own zone), the
// dataset's zone when it has none. Before `end` the month is still under way somewhere.
Interval month_span(const Dataset& dataset, date::year_month month);

// The calendar that rules business-day deadlines and lead times: the dataset's
// provider_calendar, else Monday to Friday without holidays in the dataset's zone (DOMAIN.md §2).
BusinessCalendar provider_calendar(const Dataset& dataset);

// The half-up rounding of num/den for num >= 0, den > 0, in 128-bit integers so that
// charge × seconds products never overflow. Exposed for tests.
int64_t round_half_up(__int128 num, __int128 den);

}  // namespace slmhub::availability
