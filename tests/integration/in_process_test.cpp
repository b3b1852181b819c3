// The whole host with the shipped plugins, in this process, on a manual clock: the way to
// test anything that plays out over days and months (deadlines, monthly jobs) without
// waiting for them. Jobs run by hand, as an operator would; the background workers are not
// started, so nothing happens behind the test's back.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "app/server.hpp"
#include "core/core_store.hpp"
#include "jobs/job_scheduler.hpp"
#include "manual_clock.hpp"
#include "plugins/plugin_manager.hpp"
#include "server_process.hpp"
#include "slmhub/json.hpp"
#include "storage/database.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

// A store in `dir`, the built plugins, logging at `level`.
host::Settings settings_in(const TempDir& dir, const std::string& level) {
  host::Settings settings;
  settings.set("db.url", "sqlite:" + (dir.path() / "slmhub.db").string());
  settings.set("plugins.dir", SLMHUB_PLUGIN_DIR);
  settings.set("auth.admin_token_file", (dir.path() / "admin.token").string());
  settings.set("log.level", level);
  return settings;
}

// With plugins.enabled set, a library that is not enabled runs no code: the broken ones beside
// hello.so (a factory that is missing, a wrong API version, a library that is no plugin at all)
// are not even opened, so none of them is listed.
TEST(InProcessHost, OnlyTheEnabledPluginsLibrariesAreOpened) {
  TempDir dir;
  host::Settings settings = settings_in(dir, "warning");
  settings.set("plugins.dir", SLMHUB_TEST_PLUGIN_DIR);
  settings.set("plugins.enabled", "hello");
  host::Server server(std::move(settings), SLMHUB_PLUGIN_DIR "/../host");
  server.offline_commands();
  const auto records = server.plugins().records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].name, "hello");
  EXPECT_EQ(records[0].path, SLMHUB_TEST_PLUGIN_DIR "/hello.so");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "slmhub.db"));
}

TEST(InProcessHost, AManualClockDrivesTheJobsOfTheHostAndItsPlugins) {
  TempDir dir;
  host::Settings settings = settings_in(dir, "warning");
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

// The server was down on 1 November: the run of 1 December drafts October too, so no month
// is left without its report and deadlines.
TEST(InProcessHost, TheMonthlyDraftCatchesUpAMonthItMissed) {
  TempDir dir;
  host::Settings settings = settings_in(dir, "error");
  ManualClock clock("2026-10-01T12:00:00Z");
  host::Server server(std::move(settings), SLMHUB_PLUGIN_DIR "/../host", &clock);
  server.open();
  server.core().import(Actor{"test"}, parse_json(read_shared("vectors/example-2026-11.json")));
  EXPECT_EQ(server.jobs().run_now("availability.monthly-draft"), "2026-09 revision 1 drafted");
  clock.set("2026-12-01T12:00:00Z");
  EXPECT_EQ(server.jobs().run_now("availability.monthly-draft"),
            "2026-10 revision 1 drafted (had no report); 2026-11 revision 1 drafted");
  EXPECT_EQ(server.jobs().run_now("availability.monthly-draft"), "2026-11 revision 1 unchanged");
  EXPECT_EQ(server.database()
                .query("SELECT COUNT(*) FROM deadlines WHERE id LIKE 'availability.report/%'")
                .at(0)
                .integer(0),
            3);
}

// Scheduled in UTC, the job runs while November is not yet over in Chicago: its draft is a
// preview, which can never be published. The next run drafts November again, for good.
TEST(InProcessHost, TheMonthlyDraftDraftsAPreviewAgain) {
  TempDir dir;
  host::Settings settings = settings_in(dir, "error");
  settings.set("plugins.availability.timezone", "UTC");
  ManualClock clock("2026-12-01T05:00:00Z");  // 23:00 on 30 November in Chicago
  host::Server server(std::move(settings), SLMHUB_PLUGIN_DIR "/../host", &clock);
  server.open();
  server.core().import(Actor{"test"}, parse_json(read_shared("vectors/example-2026-11.json")));
  const std::string preview = server.jobs().run_now("availability.monthly-draft");
  EXPECT_TRUE(
      preview.starts_with("2026-11 revision 1 drafted as of 2026-12-01T05:00:00Z, before "
                          "the month ended in every service's zone"))
      << preview;
  clock.set("2027-01-01T05:00:00Z");
  const std::string next = server.jobs().run_now("availability.monthly-draft");
  EXPECT_TRUE(
      next.starts_with("2026-11 revision 2 drafted (its report was a preview); 2026-12 "
                       "revision 1 drafted as of 2027-01-01T05:00:00Z"))
      << next;
  const auto as_of = server.database().query(
      "SELECT revision, as_of FROM availability_reports WHERE month = '2026-11' ORDER BY revision");
  ASSERT_EQ(as_of.size(), 2u);
  EXPECT_FALSE(as_of[0].is_null(1));
  EXPECT_TRUE(as_of[1].is_null(1));
}

// The host's settings reach the deadline watch: the owner role's addresses are warned, the
// escalation list joins them when the deadline is missed, each message once, in the outbox.
TEST(InProcessHost, DeadlineNoticesGoToTheConfiguredAddressesThroughTheOutbox) {
  TempDir dir;
  host::Settings settings = settings_in(dir, "error");
  settings.set("deadlines.notify.service_manager", "sm@example.org, deputy@example.org");
  settings.set("deadlines.notify.approver", "approver@example.org");
  settings.set("deadlines.escalate", "director@example.org, sm@example.org");
  ManualClock clock("2026-12-01T12:00:00Z");
  host::Server server(std::move(settings), SLMHUB_PLUGIN_DIR "/../host", &clock);
  server.open();
  server.core().import(Actor{"test"}, parse_json(read_shared("vectors/example-2026-11.json")));
  EXPECT_EQ(server.jobs().run_now("availability.monthly-draft"), "2026-11 revision 1 drafted");

  const auto outbox = [&] {
    std::vector<std::string> out;
    for (const auto& r : server.database().query(
             "SELECT channel, destination, subject, dedupe_key FROM outbox ORDER BY id"))
      out.push_back(r.text(0) + " " + r.text(1) + " | " + r.text(2) + " | " + r.text(3));
    return out;
  };
  // The report (service_manager) is due on 21 December, the end of that day in Chicago being
  // 2026-12-22T06:00:00Z (1797919200).
  clock.set("2026-12-16T15:00:00Z");
  EXPECT_EQ(server.jobs().run_now("deadlines.watch"), "1 warned, 0 missed");
  EXPECT_EQ(server.jobs().run_now("deadlines.watch"), "0 warned, 0 missed");
  const std::string report = "publish the month's Service Availability Report";
  const std::string key = "/availability.report/2026-11/1797919200/";
  std::vector<std::string> expected{"email deputy@example.org | Due 2026-12-21: " + report +
                                        " | deadline.due" + key + "deputy@example.org",
                                    "email sm@example.org | Due 2026-12-21: " + report +
                                        " | deadline.due" + key + "sm@example.org"};
  EXPECT_EQ(outbox(), expected);
  // Tuesday 22 December, 01:00 in Chicago: missed, but before hours.
  clock.set("2026-12-22T07:00:00Z");
  EXPECT_EQ(server.jobs().run_now("deadlines.watch"), "outside business hours: nothing sent");
  EXPECT_EQ(outbox(), expected);
  clock.set("2026-12-22T15:00:00Z");
  EXPECT_EQ(server.jobs().run_now("deadlines.watch"), "0 warned, 1 missed");
  for (const char* address : {"deputy@example.org", "director@example.org", "sm@example.org"})
    expected.push_back(std::string("email ") + address + " | Missed 2026-12-21: " + report +
                       " | deadline.missed" + key + address);
  EXPECT_EQ(outbox(), expected);
}

}  // namespace
}  // namespace slmhub::test
