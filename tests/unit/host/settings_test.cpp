// Keys typed `zone` and `cron` are checked when the configuration is, with the key named, so
// that a typo in a schedule or a time zone is found at start, where the operator looks.
#include "config/settings.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace slmhub::host
