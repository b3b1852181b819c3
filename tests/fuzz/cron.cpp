// Cron expressions of scheduled jobs (plugin configuration): CronExpression::parse refuses
// with a CronError and nothing else; for what it accepts, next_after answers quickly (a hang
// is a finding: libFuzzer's -timeout), strictly after the given instant and within the
// documented horizon (about five years), in zones with DST gaps and overlaps, including
// half-hour shifts (Lord Howe), and repeated calls move forward.
#include <chrono>
#include <optional>

#include "checks.hpp"
#include "slmhub/cron.hpp"

namespace slmhub::fuzz {

void check_cron(std::string_view input) {
  std::optional<CronExpression> cron;
  try {
    cron = CronExpression::parse(input);
  } catch (const CronError&) {
    return;
  }
  expect(cron->text() == input, "text() is not the parsed expression");
  static const date::time_zone* const kZones[] = {find_zone("UTC"), find_zone("Europe/Berlin"),
                                                  find_zone("Australia/Lord_Howe")};
  // Just before Europe's spring-forward and fall-back nights of 2026, and a leap day.
  static const Instant kStarts[] = {parse_instant("2026-03-29T00:30:00Z"),
                                    parse_instant("2026-10-25T00:59:00Z"),
                                    parse_instant("2028-02-28T23:59:30Z")};
  // Five years of days, plus a leap day and a day of zone offset.
  constexpr auto kHorizon = std::chrono::days{5 * 365 + 3};
  for (const date::time_zone* zone : kZones) {
    for (Instant start : kStarts) {
      Instant t = start;
      for (int i = 0; i < 2; ++i) {
        const std::optional<Instant> next = cron->next_after(t, zone);
        if (!next) break;
        expect(*next > t, "next_after is not after its argument");
        expect(*next - t <= kHorizon, "next_after is beyond the horizon");
        t = *next;
      }
    }
  }
}

}  // namespace slmhub::fuzz
