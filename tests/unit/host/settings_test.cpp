// Keys typed `zone` and `cron` are checked when the configuration is, with the key named, so
// that a typo in a schedule or a time zone is found at start, where the operator looks.
#include "config/settings.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace slmhub::host {
namespace {

const std::vector<ConfigKey> kSchema{
    {"timezone", ConfigType::zone, "UTC", "the zone"},
    {"schedule", ConfigType::cron, "0 6 1 * *", "the schedule"},
};

TEST(SettingsTest, ZoneAndCronKeysAreCheckedWithTheKeyNamed) {
  Settings settings;
  EXPECT_EQ(PluginConfig(settings, "demo", kSchema).validate(), std::vector<std::string>{});
  settings.set("plugins.demo.timezone", "Europe/Berlin");
  settings.set("plugins.demo.schedule", "*/15 8-17 * * mon-fri");
  EXPECT_EQ(PluginConfig(settings, "demo", kSchema).validate(), std::vector<std::string>{});

  settings.set("plugins.demo.timezone", "Mars/Olympus");
  settings.set("plugins.demo.schedule", "61 * * * *");
  const auto problems = PluginConfig(settings, "demo", kSchema).validate();
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_TRUE(problems[0].starts_with("plugins.demo.timezone: 'Mars/Olympus': unknown time zone"))
      << problems[0];
  EXPECT_TRUE(problems[1].starts_with("plugins.demo.schedule: ")) << problems[1];
  EXPECT_NE(problems[1].find("'61'"), std::string::npos) << problems[1];
}

// Empty is the plugin's to interpret (none, never, the provider's zone), not a typo.
TEST(SettingsTest, AnEmptyZoneOrScheduleIsLeftToThePlugin) {
  Settings settings;
  settings.set("plugins.demo.timezone", "");
  settings.set("plugins.demo.schedule", "");
  EXPECT_EQ(PluginConfig(settings, "demo", kSchema).validate(), std::vector<std::string>{});
}

TEST(SettingsTest, TheHostsSchedulesAreCheckedToo) {
  Settings settings;
  settings.set("housekeeping.prune_schedule", "every night");
  const auto problems = settings.validate_host_keys();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_TRUE(problems[0].starts_with("(defaults): housekeeping.prune_schedule: ")) << problems[0];
}

// A value the server cannot run with is refused at the check, naming the key: not Poco's
// assertion (two threads at least), a port cut to 16 bits, or a back-off rounded to nothing.
TEST(SettingsTest, EveryHostIntegerHasARange) {
  Settings settings;
  EXPECT_EQ(settings.validate_host_keys(), std::vector<std::string>{});
  settings.set("http.threads", "1");
  settings.set("http.port", "70000");
  settings.set("events.retry_max_ms", "500");
  settings.set("outbox.concurrency", "100");
  EXPECT_EQ(settings.validate_host_keys(),
            (std::vector<std::string>{
                "(defaults): 'http.port' must be from 0 to 65535 (a TCP port; 0 picks a free "
                "one), found 70000",
                "(defaults): 'http.threads' must be from 2 to 10000 (the pool keeps two threads "
                "at least), found 1",
                "(defaults): 'events.retry_max_ms' must be from 1000 to 604800000 (the first "
                "back-off is a second; a week), found 500",
                "(defaults): 'outbox.concurrency' must be from 1 to 64 (messages sent at once), "
                "found 100"}));

  Settings off;
  off.set("auth.max_failures", "0");                        // documented: no limit
  off.set("tickets.first_response_minutes.incident", "0");  // no target
  EXPECT_EQ(off.validate_host_keys(), std::vector<std::string>{});

  Settings backoff;
  backoff.set("outbox.initial_backoff_seconds", "600");
  backoff.set("outbox.max_backoff_seconds", "60");
  EXPECT_EQ(backoff.validate_host_keys(),
            std::vector<std::string>{"(defaults): 'outbox.max_backoff_seconds' must be at least "
                                     "'outbox.initial_backoff_seconds' (600)"});
}

// The log level is read first of all; a misspelt one is named with its line like any other
// value, not left to an unnamed exit.
TEST(SettingsTest, AnUnknownLogLevelIsNamedWithItsLine) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("slmhub-level-" + std::to_string(::getpid()) + ".properties");
  std::ofstream(path) << "http.port = 0\nlog.level = verbose\n";
  const Settings settings = Settings::load(path.string());
  std::filesystem::remove(path);
  EXPECT_EQ(settings.validate_host_keys(),
            std::vector<std::string>{path.string() +
                                     ":2: 'log.level' must be debug, information, warning or "
                                     "error, found 'verbose'"});
}

// A key for a plugin that is not there (a misspelt name) is reported with its line, so the
// operator learns the setting does nothing.
TEST(SettingsTest, KeysOfAPluginThatIsNotLoadedAreReportedWithTheirLine) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("slmhub-orphans-" + std::to_string(::getpid()) + ".properties");
  std::ofstream(path) << "plugins.dir = /usr/lib/slmhub/plugins\n"
                         "plugins.servicenow.instance = https://x.example.org\n"
                         "plugins.servicenw.instance = https://x.example.org\n";
  const Settings settings = Settings::load(path.string());
  std::filesystem::remove(path);
  EXPECT_EQ(settings.orphan_plugin_keys({"servicenow", "availability"}),
            std::vector<std::string>{path.string() +
                                     ":3: 'plugins.servicenw.instance': no plugin 'servicenw' is "
                                     "loaded; the key is ignored"});
}

}  // namespace
}  // namespace slmhub::host
