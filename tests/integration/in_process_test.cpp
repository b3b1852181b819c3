// The whole host with the shipped plugins, in this process, on a manual clock: the way to
// test anything that plays out over days and months (deadlines, monthly jobs) without
// waiting for them. Jobs run by hand, as an operator would; the background workers are not
// started, so nothing happens behind the test's back.
#include <gtest/gtest.h>

#include "app/server.hpp"
#include "core/core_store.hpp"
#include "jobs/job_scheduler.hpp"
#include "manual_clock.hpp"
#include "server_process.hpp"
#include "slmhub/json.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

TEST(InProcessHost, AManualClockDrivesTheJobsOfTheHostAndItsPlugins) {
  TempDir dir;
  host::Settings settings;
  settings.set("db.url", "sqlite:" + (dir.path() / "slmhub.db").string());
  settings.set("plugins.dir", SLMHUB_PLUGIN_DIR);
  settings.set("auth.admin_token_file", (dir.path() / "admin.token").string());
  settings.set("log.level", "warning");
  ManualClock clock("2026-12-01T12:00:00Z");
  host::Server server(std::move(settings), SLMHUB_PLUGIN_DIR "/../host", &clock);
  server.open();
  server.core().import(Actor{"test"}, parse_json(read_shared("vectors/example-2026-11.json")));

  // The first of the month: the job drafts the month that just closed.
  EXPECT_EQ(server.jobs().run_now("availability.monthly-draft"), "2026-11 revision 1 drafted");
  // The report is due on 21 December (15 business days of the dataset's provider calendar):
  // not near on the 10th, three business days away on the 16th, missed on the 22nd.
  clock.set("2026-12-10T15:00:00Z");
  EXPECT_EQ(server.jobs().run_now("deadlines.watch"), "0 warned, 0 missed");
  clock.set("2026-12-16T15:00:00Z");
  EXPECT_EQ(server.jobs().run_now("deadlines.watch"), "1 warned, 0 missed");
  clock.set("2026-12-22T15:00:00Z");
  EXPECT_EQ(server.jobs().run_now("deadlines.watch"), "0 warned, 1 missed");
}

}  // namespace
}  // namespace slmhub::test
