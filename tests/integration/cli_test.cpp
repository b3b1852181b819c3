// The command line as an operator uses it: help for every command, sysexits codes, and the
// operations commands against a store shared with the server.
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <set>
#include <sstream>

#include <fstream>

#include "eventually.hpp"
#include "server_process.hpp"
#include "slmhub/json.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

std::map<std::string, std::string> env_for(const TempDir& dir) {
  return {{"SLMHUB_DB_URL", "sqlite:" + (dir.path() / "cli.db").string()},
          {"SLMHUB_PLUGINS_DIR", SLMHUB_TEST_PLUGIN_DIR},
          {"SLMHUB_LOG_LEVEL", "error"}};
}

TEST(Cli, EveryCommandHasHelp) {
  TempDir dir;
  for (const auto& cmd : {"serve", "import", "plugins", "jobs", "migrate", "tokens"}) {
    auto r = run_slmhub({cmd, "--help"}, env_for(dir));
    EXPECT_EQ(r.status, 0) << cmd;
    EXPECT_TRUE(r.out.starts_with(std::string("slmhub ") + cmd)) << r.out;
  }
  auto plugin = run_slmhub({"hello", "greet", "--help"}, env_for(dir));
  EXPECT_EQ(plugin.status, 0) << plugin.err;
  EXPECT_EQ(plugin.out, "slmhub hello greet [NAME]\n  prints a greeting\n");
  auto top = run_slmhub({"--help"}, env_for(dir));
  EXPECT_EQ(top.status, 0);
  EXPECT_NE(top.out.find("usage: slmhub COMMAND"), std::string::npos);
}

TEST(Cli, ExitStatusesFollowSysexits) {
  TempDir dir;
  EXPECT_EQ(run_slmhub({}, env_for(dir)).status, 64);
  auto unknown = run_slmhub({"frobnicate"}, env_for(dir));
  EXPECT_EQ(unknown.status, 64);
  EXPECT_NE(unknown.err.find("unknown command 'frobnicate'"), std::string::npos);
  TempDir fresh;
  // A command slmhub has, without the words it needs: that command's usage.
  auto incomplete = run_slmhub({"jobs", "run"}, env_for(fresh));
  EXPECT_EQ(incomplete.status, 64);
  EXPECT_TRUE(incomplete.err.ends_with(
      "slmhub: 'jobs run' is not one of the forms of 'jobs':\nslmhub jobs list [--config F]\n"
      "slmhub jobs run NAME [--config F]\n  Lists jobs, or runs one now in this process (recorded "
      "like a scheduled run).\n"))
      << incomplete.err;
  auto missing = run_slmhub({"import", (dir.path() / "nope.json").string()}, env_for(fresh));
  EXPECT_EQ(missing.status, 66);
  EXPECT_EQ(missing.err,
            "slmhub: " + (dir.path() / "nope.json").string() + ": cannot read the file\n");
  auto no_role = run_slmhub({"tokens", "create", "--name", "ci"}, env_for(fresh));
  EXPECT_EQ(no_role.status, 64);
  EXPECT_TRUE(no_role.err.ends_with("slmhub tokens create: --name and --role are required\n"))
      << no_role.err;
  auto typo =
      run_slmhub({"tokens", "create", "--name", "ci", "--role", "viewer,admn"}, env_for(fresh));
  EXPECT_EQ(typo.status, 64);
  EXPECT_TRUE(typo.err.starts_with("slmhub tokens create: unknown role 'admn' (allowed: "))
      << typo.err;
  auto extra = run_slmhub({"migrate", "now"}, env_for(fresh));
  EXPECT_EQ(extra.status, 64);
  EXPECT_TRUE(extra.err.starts_with("slmhub: 'migrate now' is not one of the forms of 'migrate':"))
      << extra.err;
  // Wrong words, a missing file or option: refused before the store is opened, so none was
  // created (an unknown command opens it: a plugin's command is known once plugins start).
  EXPECT_FALSE(std::filesystem::exists(fresh.path() / "cli.db"));
  std::ofstream(dir.path() / "bad.json") << R"({"timezone": "Mars/Olympus", "services": 3})";
  auto bad = run_slmhub({"import", (dir.path() / "bad.json").string()}, env_for(dir));
  EXPECT_EQ(bad.status, 65);
  EXPECT_NE(bad.err.find("$.timezone"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("$.services"), std::string::npos) << bad.err;
  auto env = env_for(dir);
  env["SLMHUB_HTTP_PORT"] = "eighty";
  auto config = run_slmhub({"migrate"}, env);
  EXPECT_EQ(config.status, 78);
  EXPECT_NE(config.err.find("http.port: 'eighty' is not an integer"), std::string::npos)
      << config.err;
}

TEST(Cli, MigrateJobsAndTokens) {
  TempDir dir;
  auto migrate = run_slmhub({"migrate"}, env_for(dir));
  ASSERT_EQ(migrate.status, 0) << migrate.err;
  EXPECT_NE(migrate.out.find("core 7\n"), std::string::npos) << migrate.out;
  EXPECT_NE(migrate.out.find("host 1\n"), std::string::npos) << migrate.out;

  auto jobs = run_slmhub({"jobs", "list"}, env_for(dir));
  ASSERT_EQ(jobs.status, 0) << jobs.err;
  std::set<std::string> names;
  std::istringstream lines(jobs.out);
  for (std::string line; std::getline(lines, line);) names.insert(Json::parse(line)["name"]);
  EXPECT_TRUE(names.contains("hello.tick")) << jobs.out;
  EXPECT_TRUE(names.contains("deadlines.watch")) << jobs.out;
  EXPECT_TRUE(names.contains("tickets.response-watch")) << jobs.out;
  EXPECT_TRUE(names.contains("housekeeping.prune")) << jobs.out;
  // A fresh store: nothing past its days yet, and the job runs against the real store.
  auto prune = run_slmhub({"jobs", "run", "housekeeping.prune"}, env_for(dir));
  EXPECT_EQ(prune.status, 0) << prune.err;
  EXPECT_EQ(prune.out,
            "0 events, 0 sent messages and 0 job runs deleted; 0 sent messages emptied, kept for "
            "their dedupe keys\n");
  auto run = run_slmhub({"jobs", "run", "hello.tick"}, env_for(dir));
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_TRUE(run.out.starts_with("tick for ")) << run.out;
  EXPECT_EQ(run_slmhub({"jobs", "run", "nope"}, env_for(dir)).status, 64);

  auto bad_role = run_slmhub({"tokens", "create", "--name", "x", "--role", "root"}, env_for(dir));
  EXPECT_EQ(bad_role.status, 64);
  EXPECT_NE(bad_role.err.find("unknown role 'root'"), std::string::npos) << bad_role.err;
  auto token =
      run_slmhub({"tokens", "create", "--name", "ops", "--role", "operator,viewer"}, env_for(dir));
  ASSERT_EQ(token.status, 0) << token.err;
  EXPECT_TRUE(token.out.starts_with("slm_"));
  auto list = run_slmhub({"tokens", "list"}, env_for(dir));
  EXPECT_NE(list.out.find("\tops\toperator,viewer\n"), std::string::npos) << list.out;
  auto id = token.out.substr(4, 12);
  EXPECT_EQ(run_slmhub({"tokens", "revoke", id}, env_for(dir)).status, 0);
  EXPECT_EQ(run_slmhub({"tokens", "revoke", id}, env_for(dir)).status, 65);
}

// `plugins list` is one line a plugin; --verbose adds, under each, the keys it reads from
// its published schema, so an operator can see what to set without reading the source.
TEST(Cli, PluginsListVerboseShowsEachPluginsKeys) {
  TempDir dir;
  auto list = run_slmhub({"plugins", "list"}, env_for(dir));
  ASSERT_EQ(list.status, 0) << list.err;
  const std::string hello =
      "hello\t1.0.0\tstarted\t" + std::string(SLMHUB_TEST_PLUGIN_DIR) + "/hello.so\n";
  EXPECT_NE(list.out.find(hello), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find("plugins.hello.greeting"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("broken_start\t"), std::string::npos) << list.out;

  auto verbose = run_slmhub({"plugins", "list", "--verbose"}, env_for(dir));
  ASSERT_EQ(verbose.status, 0) << verbose.err;
  EXPECT_NE(
      verbose.out.find(hello + "  plugins.hello.greeting = hello\n"
                               "      string, default \"hello\": what GET /api/v1/hello answers\n"),
      std::string::npos)
      << verbose.out;
  // The value shown is the one in use: here the environment's.
  auto env = env_for(dir);
  env["SLMHUB_PLUGINS_HELLO_GREETING"] = "good morning";
  auto overridden = run_slmhub({"plugins", "list", "--verbose"}, env);
  ASSERT_EQ(overridden.status, 0) << overridden.err;
  EXPECT_NE(overridden.out.find(hello + "  plugins.hello.greeting = good morning\n"),
            std::string::npos)
      << overridden.out;
  // A misspelt option is refused, not ignored.
  EXPECT_EQ(run_slmhub({"plugins", "list", "--verbos"}, env_for(dir)).status, 64);
}

// A plugin whose configuration or job is wrong fails alone, named with its key or job, and
// the rest start: a zone typo in one plugin does not take down the server.
TEST(Cli, AWrongZoneOrScheduleFailsOnlyItsPlugin) {
  TempDir dir;
  auto env = env_for(dir);
  env["SLMHUB_PLUGINS_DIR"] = SLMHUB_PLUGIN_DIR;
  env["SLMHUB_PLUGINS_AVAILABILITY_TIMEZONE"] = "Mars/Olympus";
  env["SLMHUB_PLUGINS_TECH_ALERTS_NOTICES_SCHEDULE"] = "61 * * * *";
  // Empty passes the type check (an empty schedule means "never" to billing), but is no
  // schedule for the job it is given to: the job's check fails the plugin's start.
  env["SLMHUB_PLUGINS_WORKFLOWS_OBLIGATIONS_SCHEDULE"] = "";
  auto list = run_slmhub({"plugins", "list"}, env);
  ASSERT_EQ(list.status, 0) << list.err;
  EXPECT_NE(list.out.find("\tfailed\t" + std::string(SLMHUB_PLUGIN_DIR) +
                          "/availability.so\tstart() failed: configuration: "
                          "plugins.availability.timezone: 'Mars/Olympus': unknown time zone"),
            std::string::npos)
      << list.out;
  EXPECT_NE(list.out.find("start() failed: configuration: plugins.tech_alerts.notices.schedule: "
                          "cron '61 * * * *': minute field"),
            std::string::npos)
      << list.out;
  EXPECT_NE(list.out.find("start() failed: job \"workflows.obligations\""), std::string::npos)
      << list.out;
  EXPECT_NE(list.out.find("billing_export\t1.0.0\tstarted\t"), std::string::npos) << list.out;
}

// An unsubscribe key anyone could guess (empty, or a few bytes) stops Tech Alerts at start:
// with it, anyone could unsubscribe a customer's contacts from outage notices.
TEST(Cli, AShortUnsubscribeKeyStopsTechAlerts) {
  TempDir dir;
  auto env = env_for(dir);
  env["SLMHUB_PLUGINS_DIR"] = SLMHUB_PLUGIN_DIR;
  env["SLMHUB_SECRET_TECH_ALERTS_UNSUBSCRIBE_KEY"] = "";
  auto list = run_slmhub({"plugins", "list"}, env);
  ASSERT_EQ(list.status, 0) << list.err;
  EXPECT_NE(list.out.find("start() failed: secret tech_alerts_unsubscribe_key has 0 bytes; it "
                          "needs 16 at least"),
            std::string::npos)
      << list.out;
}

// `slmhub serve --daemon` said it listens: its child is stopped (SIGTERM) and gone.
void stop_detached(const CommandResult& daemon) {
  ASSERT_EQ(daemon.status, 0) << daemon.err;
  const auto at = daemon.out.find("slmhub serve detached as pid ");
  ASSERT_NE(at, std::string::npos) << daemon.out;
  const pid_t child = std::stoi(daemon.out.substr(at + 29));
  EXPECT_NE(daemon.out.find("slmhub listening on http://127.0.0.1:"), std::string::npos)
      << daemon.out;
  EXPECT_EQ(::kill(child, SIGTERM), 0);
  // Gone, or a zombie for whoever adopted it to reap.
  EXPECT_TRUE(eventually([&] {
    std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
    std::string pid, name, state;
    return !(stat >> pid >> name >> state) || state == "Z";
  }));
}

// A port in use is refused with where and why, even when its holder allows sharing
// (SO_REUSEPORT, as a running slmhub had set): a second server on it would have taken half of
// the first one's connections.
TEST(Cli, ServeRefusesAPortInUse) {
  TempDir dir;
  Poco::Net::ServerSocket other;
  other.bind(Poco::Net::SocketAddress("127.0.0.1", 0), true, true);
  other.listen();
  const std::string port = std::to_string(other.address().port());
  auto env = env_for(dir);
  env["SLMHUB_HTTP_PORT"] = port;
  env["SLMHUB_AUTH_ADMIN_TOKEN_FILE"] = (dir.path() / "admin.token").string();
  auto serve = run_slmhub({"serve"}, env);
  EXPECT_EQ(serve.status, 78);
  EXPECT_TRUE(serve.err.ends_with(
      "slmhub: cannot listen on 127.0.0.1:" + port +
      " (http.host, http.port): Address already in use: 127.0.0.1:" + port + "\n"))
      << serve.err;
  // Detached, the same: the parent waits for the child to listen, and exits with its status
  // when it cannot, so that a start-up script does not take the failure for a start.
  auto daemon = run_slmhub({"serve", "--daemon"}, env);
  EXPECT_EQ(daemon.status, 78) << daemon.out << daemon.err;
  EXPECT_EQ(daemon.out.find("detached"), std::string::npos) << daemon.out;
  EXPECT_NE(daemon.err.find("Address already in use"), std::string::npos) << daemon.err;

  // Started, it says so only once the child listens, and exits 0.
  env["SLMHUB_HTTP_PORT"] = "0";
  stop_detached(run_slmhub({"serve", "--daemon"}, env));
}

// A store and an admin token file named by bare file names (no directory) are made in the
// working directory: there is no directory to create for them.
TEST(Cli, ServeTakesFilesNamedWithoutADirectory) {
  TempDir dir;
  auto env = env_for(dir);
  env["SLMHUB_DB_URL"] = "sqlite:bare.db";
  env["SLMHUB_AUTH_ADMIN_TOKEN_FILE"] = "admin.token";
  env["SLMHUB_HTTP_PORT"] = "0";
  stop_detached(run_slmhub({"serve", "--daemon"}, env, dir.path()));
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "bare.db"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "admin.token"));
}

// An offline command needs no store: run where a relative SQLite store would be created, or
// against a PostgreSQL server that is not there, it prints the report and leaves nothing behind.
TEST(Cli, OfflineReportTouchesNoDatabase) {
  const auto input = shared_dir() / "vectors/example-2026-11.json";
  const auto expected = Json::parse(read_shared("vectors/example-2026-11.expected.json"));
  for (const std::string url : {"sqlite:var/slmhub.db", "postgresql://127.0.0.1:1/none"}) {
    TempDir work;
    const std::map<std::string, std::string> env{
        {"SLMHUB_DB_URL", url},
        {"SLMHUB_PLUGINS_DIR", std::string(SLMHUB_PLUGIN_DIR) + "," + SLMHUB_TEST_PLUGIN_DIR},
        {"SLMHUB_LOG_LEVEL", "error"}};
    auto r = run_slmhub({"report", "availability", "--input", input.string(), "--month", "2026-11"},
                        env, work.path());
    ASSERT_EQ(r.status, 0) << url << ": " << r.err;
    EXPECT_EQ(r.err, "") << url;
    EXPECT_EQ(Json::parse(r.out), expected) << url;
    auto help = run_slmhub({"report", "availability", "--help"}, env, work.path());
    EXPECT_EQ(help.status, 0) << url << ": " << help.err;
    EXPECT_TRUE(help.out.starts_with("slmhub report availability --input")) << help.out;
    EXPECT_TRUE(std::filesystem::is_empty(work.path())) << url;
  }
}

}  // namespace
}  // namespace slmhub::test
