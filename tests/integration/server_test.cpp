// The real server, started as a process: plugins (good and broken), auth, limits, errors,
// the dataset import, and the OpenAPI document against the route table.
#include <gtest/gtest.h>

#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "eventually.hpp"
#include "server_process.hpp"
#include "slmhub/json.hpp"
#include "slmhub/plugin.hpp"
#include "slmhub/time.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server = std::make_unique<ServerProcess>(dir.path());
    server->start();
    token = server->admin_token();
    ASSERT_FALSE(token.empty());
  }
  // A token with the given roles, made with the CLI against the same store.
  std::string make_token(const std::string& roles, const std::string& expires = {}) {
    std::vector<std::string> args{"tokens", "create", "--name", "test", "--role", roles};
    if (!expires.empty()) {
      args.push_back("--expires");
      args.push_back(expires);
    }
    auto r = run_slmhub(args, server->env());
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }
  TempDir dir;
  std::unique_ptr<ServerProcess> server;
  std::string token;
};

TEST_F(ServerTest, HealthAndReadiness) {
  EXPECT_EQ(http(server->port(), "GET", "/healthz").status, 200);
  // A made-up method is counted as "other": its own series would grow /metrics without
  // bound, and the quote in it would break every scrape.
  EXPECT_GE(http(server->port(), "BREW\"X", "/healthz").status, 400);
  auto ready = http(server->port(), "GET", "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  // A request is counted once its answer is sent (its time includes sending), which can be
  // just after the client has read the answer.
  HttpResult metrics;
  EXPECT_TRUE(eventually([&] {
    metrics = http(server->port(), "GET", "/metrics");
    return metrics.status == 200 &&
           metrics.body.find("slmhub_http_requests_total{method=\"GET\",route=\"/readyz\"") !=
               std::string::npos &&
           metrics.body.find("slmhub_http_requests_total{method=\"other\",") != std::string::npos;
  })) << metrics.body;
  EXPECT_EQ(metrics.body.find("BREW"), std::string::npos);
}

// HEAD is answered wherever GET is (RFC 9110 §9.3.2), as GET without the body: uptime
// monitors ask with it. A method not served names both in Allow.
TEST_F(ServerTest, HeadIsAnsweredAsGetWithoutTheBody) {
  auto get = http(server->port(), "GET", "/api/v1/services", "", token);
  ASSERT_EQ(get.status, 200);
  auto head = http(server->port(), "HEAD", "/api/v1/services", "", token);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(head.headers["Content-Length"], std::to_string(get.body.size()));
  EXPECT_EQ(head.headers["Content-Type"], get.headers["Content-Type"]);
  EXPECT_EQ(http(server->port(), "HEAD", "/api/v1/services").status, 401);  // same checks
  EXPECT_EQ(http(server->port(), "HEAD", "/healthz").status, 200);
  auto refused = http(server->port(), "DELETE", "/healthz");
  EXPECT_EQ(refused.status, 405);
  EXPECT_EQ(refused.headers["Allow"], "GET, HEAD");
}

// A subscription added to a customer is checked with the customer, and what is wrong with it
// is named at the paths of the request, not at its place in the customer's list.
TEST_F(ServerTest, ASubscriptionIsAddedOrRefusedAtItsOwnPaths) {
  const int port = server->port();
  ASSERT_EQ(http(port, "POST", "/api/v1/services",
                 R"({"id":"pg-prod","name":"PostgreSQL","environment":"production",)"
                 R"("hours":"24x7","target_percent":99.5})",
                 token)
                .status,
            201);
  ASSERT_EQ(http(port, "POST", "/api/v1/customers",
                 R"({"id":"library","name":"Library","billing_code":"LIB-1"})", token)
                .status,
            201);
  const auto unknown = http(port, "POST", "/api/v1/customers/library/subscriptions",
                            R"({"service":"nope","monthly_charge_cents":100})", token);
  EXPECT_EQ(unknown.status, 400) << unknown.body;
  const Json errors = Json::parse(unknown.body)["errors"];
  ASSERT_EQ(errors.size(), 1u) << unknown.body;
  EXPECT_EQ(errors[0]["path"], "$.service");
  EXPECT_EQ(errors[0]["message"], "unknown service 'nope'");
  const auto added = http(port, "POST", "/api/v1/customers/library/subscriptions",
                          R"({"service":"pg-prod","monthly_charge_cents":100})", token);
  EXPECT_EQ(added.status, 201) << added.body;
  const Json listed =
      Json::parse(http(port, "GET", "/api/v1/customers/library/subscriptions", "", token).body);
  ASSERT_EQ(listed["subscriptions"].size(), 1u) << listed.dump();
  EXPECT_EQ(listed["subscriptions"][0]["service"], "pg-prod");

  // A second subscription to the same service while the first runs: one of the two charges
  // would go unbilled. A change of charge ends the first where the second starts.
  const auto overlapping = http(
      port, "POST", "/api/v1/customers/library/subscriptions",
      R"({"service":"pg-prod","monthly_charge_cents":200,"start":"2026-03-01T00:00:00Z"})", token);
  EXPECT_EQ(overlapping.status, 400) << overlapping.body;
  const Json overlap = Json::parse(overlapping.body)["errors"];
  ASSERT_EQ(overlap.size(), 1u) << overlapping.body;
  EXPECT_EQ(overlap[0]["path"], "$");
  EXPECT_EQ(overlap[0]["message"],
            "subscription to service 'pg-prod' from 2026-03-01T00:00:00Z with no end overlaps the "
            "one at index 0 (from the beginning with no end): a customer subscribes to a service "
            "once at a time; end one where the next starts");
  const Json unchanged =
      Json::parse(http(port, "GET", "/api/v1/customers/library/subscriptions", "", token).body);
  EXPECT_EQ(unchanged["subscriptions"].size(), 1u) << unchanged.dump();

  // An import is held to the same rule, and refused whole.
  Json dataset = parse_json(read_shared("vectors/example-2026-11.json"));
  Json& registrar = dataset["customers"][0]["subscriptions"];
  registrar.push_back(registrar[0]);
  const auto imported = http(port, "POST", "/api/v1/import", dataset.dump(), token);
  EXPECT_EQ(imported.status, 400) << imported.body;
  EXPECT_NE(imported.body.find("\"path\":\"$.customers[0].subscriptions[2]\""), std::string::npos)
      << imported.body;
  EXPECT_EQ(http(port, "GET", "/api/v1/customers/registrar", "", token).status, 404);
}

// An id in the path is text: one that decodes to bytes that are no UTF-8 is refused, before
// it could reach a body, an audit row or an event.
TEST_F(ServerTest, AnIdInThePathThatIsNoTextIsRefused) {
  const std::string before = http(server->port(), "GET", "/api/v1/calendars", "", token).body;
  const auto put = http(server->port(), "PUT", "/api/v1/calendars/%FF",
                        R"({"timezone":"UTC","hours":{"mon":["08:00","17:00"]}})", token);
  EXPECT_EQ(put.status, 400) << put.body;
  EXPECT_NE(put.body.find("the path's {id} is not UTF-8 text"), std::string::npos) << put.body;
  EXPECT_EQ(http(server->port(), "GET", "/api/v1/calendars", "", token).body, before);
}

// A POST with neither Content-Length nor chunked encoding has no body (RFC 9112 §6.3): it is
// answered at once, not after the server gave up waiting for a body the client never sends.
TEST_F(ServerTest, APostWithoutALengthHasNoBody) {
  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", server->port()));
  // Far below the server's read time-out (http.request_timeout_ms, 30 s): waiting for a body fails.
  socket.setReceiveTimeout(Poco::Timespan(10, 0));
  const std::string request =
      "POST /api/v1/jobs/no-such-job/run HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Authorization: Bearer " +
      token + "\r\n\r\n";
  socket.sendBytes(request.data(), static_cast<int>(request.size()));
  char buffer[512] = {};
  int n = 0;
  try {
    n = socket.receiveBytes(buffer, sizeof buffer - 1);
  } catch (const Poco::TimeoutException&) {
    FAIL() << "no answer: the server waited for a body";
  }
  EXPECT_TRUE(std::string(buffer, n).starts_with("HTTP/1.1 404")) << std::string(buffer, n);
}

TEST_F(ServerTest, BrokenPluginsAreReportedAndTheRestServes) {
  auto r = http(server->port(), "GET", "/api/v1/plugins", "", token);
  ASSERT_EQ(r.status, 200) << r.body;
  auto plugins = Json::parse(r.body)["plugins"];
  std::map<std::string, Json> by_file;
  for (const auto& p : plugins) {
    auto path = p["path"].get<std::string>();
    by_file[path.substr(path.rfind('/') + 1)] = p;
  }
  ASSERT_TRUE(by_file.contains("hello.so")) << r.body;
  EXPECT_EQ(by_file["hello.so"]["state"], "started");
  EXPECT_EQ(by_file["hello.so"]["jobs"], Json::array({"hello.tick"}));
  EXPECT_EQ(by_file["hello.so"]["config"],
            Json::parse(R"([{"key": "plugins.hello.greeting", "type": "string", "default": "hello",
                             "required": false, "help": "what GET /api/v1/hello answers"}])"));
  EXPECT_EQ(by_file["broken_api.so"]["config"], Json::array());  // never got that far
  EXPECT_EQ(by_file["broken_api.so"]["state"], "failed");
  EXPECT_EQ(by_file["broken_api.so"]["reason"], "built for plugin API 999, this host speaks API " +
                                                    std::to_string(slmhub::kPluginApi) +
                                                    ": rebuild it against this SDK");
  EXPECT_EQ(by_file["broken_factory.so"]["reason"],
            "no factory: the library exports no slmhub_create_plugin");
  EXPECT_EQ(by_file["broken_start.so"]["reason"],
            "start() failed: cannot reach the billing system at billing.example.org");
  EXPECT_EQ(by_file["broken_needs.so"]["reason"],
            "needs the plugin 'does_not_exist', which is not loaded");
  EXPECT_EQ(by_file["not_a_plugin.so"]["reason"],
            "not a slmhub plugin: it exports no slmhub_plugin_api (use SLMHUB_PLUGIN)");
  // Each failure is one log line naming the file.
  auto log = server->log();
  for (const auto& file : {"broken_api.so", "broken_factory.so", "broken_start.so",
                           "broken_needs.so", "not_a_plugin.so"}) {
    auto at = log.find(std::string(SLMHUB_TEST_PLUGIN_DIR) + "/" + file + ": ");
    EXPECT_NE(at, std::string::npos) << file << " not in log:\n" << log;
  }
  // The plugin whose start() threw was stopped before its Host went away.
  EXPECT_NE(log.find("[broken_start] stop() after the failed start"), std::string::npos) << log;
  // The good plugin serves; the route of the plugin whose start() threw does not exist.
  auto hello = http(server->port(), "GET", "/api/v1/hello", "", token);
  EXPECT_EQ(hello.status, 200);
  EXPECT_EQ(Json::parse(hello.body)["greeting"], "hello");
  EXPECT_EQ(http(server->port(), "GET", "/api/v1/half-started", "", token).status, 404);
  // A plugin command runs from the CLI.
  auto cmd = run_slmhub({"hello", "greet", "operators"}, server->env());
  EXPECT_EQ(cmd.status, 0) << cmd.err;
  EXPECT_EQ(cmd.out, "hello operators\n");
}

TEST_F(ServerTest, TokensAndRoles) {
  const int port = server->port();
  auto missing = http(port, "GET", "/api/v1/services");
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.headers["Content-Type"], "application/problem+json");
  EXPECT_EQ(
      http(port, "GET", "/api/v1/services", "", "slm_000000000000_notarealsecretatall").status,
      401);
  EXPECT_EQ(http(port, "GET", "/api/v1/services", "", token + "x").status, 401);
  auto expired = make_token("viewer", "2020-01-01T00:00:00Z");
  auto r = http(port, "GET", "/api/v1/services", "", expired);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Json::parse(r.body)["detail"], "the bearer token expired");
  auto viewer = make_token("viewer");
  EXPECT_EQ(http(port, "GET", "/api/v1/services", "", viewer).status, 200);
  auto forbidden = http(port, "POST", "/api/v1/services", R"({"id":"x"})", viewer);
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_EQ(Json::parse(forbidden.body)["detail"],
            "this resource needs the role 'service_manager'");
  // Routes with alternatives name them all.
  forbidden = http(port, "POST", "/api/v1/disputes/DSP-000001/resolve", "{}", viewer);
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_EQ(Json::parse(forbidden.body)["detail"],
            "this resource needs the role 'service_manager' or 'approver'");
  forbidden = http(port, "POST", "/api/v1/credit-requests", "{}", viewer);
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_EQ(Json::parse(forbidden.body)["detail"],
            "this resource needs the role 'service_manager' or a customer token");
  // Roles are kept comma-separated: a comma in a customer id would read back as a second role.
  const auto smuggled = http(port, "POST", "/api/v1/tokens",
                             R"({"name":"northwind","roles":["customer:northwind,admin"]})", token);
  EXPECT_EQ(smuggled.status, 400) << smuggled.body;
  EXPECT_NE(smuggled.body.find("unknown role 'customer:northwind,admin'"), std::string::npos)
      << smuggled.body;
  // Revoked tokens stop working (the cache holds a token for at most 5 s).
  auto list = Json::parse(http(port, "GET", "/api/v1/tokens", "", token).body)["tokens"];
  EXPECT_GE(list.size(), 3u);
  for (const auto& t : list) EXPECT_FALSE(t.contains("secret_hash"));
}

TEST_F(ServerTest, ErrorsNameTheJsonPath) {
  const int port = server->port();
  auto malformed = http(port, "POST", "/api/v1/services", R"({"id": "a",})", token);
  EXPECT_EQ(malformed.status, 400);
  auto body = Json::parse(malformed.body);
  EXPECT_EQ(body["status"], 400);
  ASSERT_EQ(body["errors"].size(), 1u) << malformed.body;
  EXPECT_EQ(body["errors"][0]["path"], "$");
  EXPECT_NE(body["errors"][0]["message"].get<std::string>().find("line 1"), std::string::npos)
      << malformed.body;

  auto invalid = http(port, "POST", "/api/v1/services",
                      R"({"id":"pg-prod","name":"PostgreSQL","environment":"prod",)"
                      R"("hours":"24x7","target_percent":99.75,"colour":"red"})",
                      token);
  EXPECT_EQ(invalid.status, 400);
  std::set<std::string> paths;
  const Json problem = Json::parse(invalid.body);
  for (const auto& e : problem["errors"]) paths.insert(e["path"].get<std::string>());
  EXPECT_EQ(paths, (std::set<std::string>{"$.environment", "$.colour"})) << invalid.body;

  auto unknown_ref = http(port, "POST", "/api/v1/interruptions",
                          R"({"id":"INC1","service":"nope","type":"outage",)"
                          R"("start":"2026-11-03T14:00:00Z"})",
                          token);
  EXPECT_EQ(unknown_ref.status, 400);
  EXPECT_EQ(Json::parse(unknown_ref.body)["errors"][0]["path"], "$.service");

  auto no_offset = http(port, "POST", "/api/v1/interruptions",
                        R"({"id":"INC1","service":"nope","type":"outage",)"
                        R"("start":"2026-11-03T14:00:00"})",
                        token);
  EXPECT_EQ(no_offset.status, 400);
  EXPECT_EQ(Json::parse(no_offset.body)["errors"][0]["path"], "$.start");
}

TEST(ServerLimits, OverLimitBodyIs413) {
  TempDir dir;
  ServerProcess server(dir.path(), {{"SLMHUB_HTTP_MAX_BODY_BYTES", "1000"}});
  server.start();
  std::string big = R"({"id":")" + std::string(2000, 'x') + R"("})";
  auto r = http(server.port(), "POST", "/api/v1/services", big, server.admin_token());
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(Json::parse(r.body)["detail"].get<std::string>().find("1000 bytes"), std::string::npos);
  // Still serving afterwards.
  EXPECT_EQ(http(server.port(), "GET", "/healthz").status, 200);
}

// A file that leaves the fiscal year out keeps the stored one, rather than setting it back to
// the reader's default (September).
TEST_F(ServerTest, AnImportWithoutAFiscalYearKeepsTheStoredOne) {
  Json dataset = parse_json(read_shared("vectors/example-2026-11.json"));
  dataset["fiscal_year_start_month"] = 1;
  ASSERT_EQ(http(server->port(), "POST", "/api/v1/import", dataset.dump(), token).status, 200);
  dataset.erase("fiscal_year_start_month");
  ASSERT_EQ(http(server->port(), "POST", "/api/v1/import", dataset.dump(), token).status, 200);
  const Json audit = Json::parse(
      http(server->port(), "GET", "/api/v1/audit?entity=setting&limit=100", "", token).body);
  Json fiscal = Json::array();
  for (const auto& row : audit["audit"])
    if (row["entity_id"] == "fiscal_year_start_month") fiscal.push_back(row);
  ASSERT_EQ(fiscal.size(), 1u) << fiscal.dump();
  EXPECT_EQ(fiscal[0]["action"], "create");
  EXPECT_EQ(fiscal[0]["after"], 1);
}

TEST_F(ServerTest, ImportIsIdempotentAndAllOrNothing) {
  const std::string dataset = (shared_dir() / "vectors/example-2026-11.json").string();
  auto first = run_slmhub({"import", dataset}, server->env());
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_EQ(first.out, dataset + ": 13 created, 0 updated, 0 unchanged\n");
  auto again = run_slmhub({"import", dataset}, server->env());
  EXPECT_EQ(again.out, dataset + ": 0 created, 0 updated, 13 unchanged\n");

  auto services = Json::parse(http(server->port(), "GET", "/api/v1/services", "", token).body);
  ASSERT_EQ(services["services"].size(), 2u);
  EXPECT_EQ(services["services"][0]["id"], "mysql-qa");
  EXPECT_EQ(services["services"][1]["target_percent"], 99.75);
  // The rows the imports wrote. Plugins react to the first import's events on their own
  // time (the workflows plugin drafts SIAs as `system:workflows`), so their rows may land
  // at any point of this test and are left out.
  auto import_audit = [&] {
    Json rows = Json::array();
    const Json audit =
        Json::parse(http(server->port(), "GET", "/api/v1/audit?limit=10000", "", token).body);
    for (const auto& row : audit["audit"]) {
      if (!row["actor"].get<std::string>().starts_with("system:")) rows.push_back(row);
    }
    return rows;
  };
  const Json audit_before = import_audit();

  // An invalid file: one line per error with the JSON path, exit 65, nothing written.
  Json broken = Json::parse(read_text(dataset));
  broken["customers"].push_back({{"id", "bursar"}, {"name", "Bursar"}, {"billing_code", "BUR-1"}});
  broken["interruptions"][0]["service"] = "oracle-prd";
  std::ofstream(dir.path() / "broken.json") << broken.dump();
  auto bad = run_slmhub({"import", (dir.path() / "broken.json").string()}, server->env());
  EXPECT_EQ(bad.status, 65);
  EXPECT_NE(bad.err.find("$.interruptions[0].service: unknown service 'oracle-prd'"),
            std::string::npos)
      << bad.err;

  // A failure half-way through the writes (a trigger in the store refuses the last
  // interruption): the customers written before it are rolled back with it.
  Json valid = Json::parse(read_text(dataset));
  valid["customers"].push_back({{"id", "bursar"}, {"name", "Bursar"}, {"billing_code", "BUR-1"}});
  valid["interruptions"].push_back({{"id", "INC9999"},
                                    {"service", "oracle-prod"},
                                    {"type", "outage"},
                                    {"start", "2026-11-21T10:00:00Z"},
                                    {"end", "2026-11-21T11:00:00Z"}});
  std::ofstream(dir.path() / "valid.json") << valid.dump();
  // The server may be writing (its event dispatcher, the checkpoint): wait for the lock as
  // any writer would, rather than fail on "database is locked".
  auto trigger =
      std::system(("sqlite3 -cmd '.timeout 10000' " + (dir.path() / "slmhub.db").string() +
                   " \"CREATE TRIGGER refuse BEFORE INSERT ON core_interruptions WHEN "
                   "NEW.id = 'INC9999' BEGIN SELECT RAISE(ABORT, 'injected'); END;\"")
                      .c_str());
  ASSERT_EQ(trigger, 0);
  auto failed = run_slmhub({"import", (dir.path() / "valid.json").string()}, server->env());
  EXPECT_NE(failed.status, 0);
  EXPECT_NE(failed.err.find("injected"), std::string::npos) << failed.err;
  EXPECT_EQ(http(server->port(), "GET", "/api/v1/customers/bursar", "", token).status, 404);
  EXPECT_EQ(import_audit(), audit_before);
}

// The availability plugin serves the report from the store: the shared vector, imported,
// gives exactly the expected report.
TEST_F(ServerTest, ServedAvailabilityReportMatchesTheVector) {
  const std::string dataset = (shared_dir() / "vectors/example-2026-11.json").string();
  ASSERT_EQ(run_slmhub({"import", dataset}, server->env()).status, 0);
  auto r = http(server->port(), "GET", "/api/v1/reports/availability?month=2026-11", "", token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(
      Json::parse(r.body),
      Json::parse(read_text((shared_dir() / "vectors/example-2026-11.expected.json").string())));
  auto bad = http(server->port(), "GET", "/api/v1/reports/availability?month=11-2026", "", token);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Json::parse(bad.body)["errors"][0]["path"], "month");
}

// Without as_of, the month under way is measured up to now: an outage open for a minute is a
// minute of downtime, not the rest of the month.
TEST_F(ServerTest, ServedReportOfTheMonthUnderWayCountsOnlyWhatHasHappened) {
  const std::string dataset = (shared_dir() / "vectors/example-2026-11.json").string();
  ASSERT_EQ(run_slmhub({"import", dataset}, server->env()).status, 0);
  const Instant now =
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  // The services are measured in Chicago: the month under way there, and an outage open since a
  // minute ago (or since the month began, in its first minute).
  const date::time_zone* chicago = find_zone("America/Chicago");
  const auto day = local_date(now, chicago);
  const date::year_month month = day.year() / day.month();
  const Instant start = std::max(now - std::chrono::minutes{1}, month_bounds(month, chicago).start);
  const Json outage = {{"id", "INC7001"},
                       {"service", "oracle-prod"},
                       {"type", "outage"},
                       {"start", format_instant(start)}};
  ASSERT_EQ(http(server->port(), "POST", "/api/v1/interruptions", outage.dump(), token).status,
            201);
  auto r = http(server->port(), "GET", "/api/v1/reports/availability?month=" + format_month(month),
                "", token);
  ASSERT_EQ(r.status, 200) << r.body;
  const Json report = Json::parse(r.body);
  bool found = false;
  for (const auto& s : report["services"]) {
    if (s["service"] != "oracle-prod") continue;
    found = true;
    // Since the start, and however long the request took; at most ten minutes, not the rest of
    // the month.
    EXPECT_GE(s["downtime_seconds"].get<std::int64_t>(), (now - start).count()) << s.dump();
    EXPECT_LE(s["downtime_seconds"].get<std::int64_t>(), 600) << s.dump();
  }
  EXPECT_TRUE(found) << report.dump();
  // The report says it stops at now.
  ASSERT_TRUE(report.contains("as_of")) << report.dump();
  EXPECT_GE(parse_instant(report["as_of"].get<std::string>()), now);
  // A month that has not begun has no report: refused, naming what is early.
  const std::string next = format_month(month + date::months{2});
  r = http(server->port(), "GET", "/api/v1/reports/availability?month=" + next, "", token);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find(next + " has not begun (it starts "), std::string::npos) << r.body;
  r = http(server->port(), "GET",
           "/api/v1/reports/availability?month=" + format_month(month) + "&as_of=" +
               format_instant(month_bounds(month, chicago).start - std::chrono::hours{1}),
           "", token);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("as_of"), std::string::npos) << r.body;
}

TEST_F(ServerTest, CrudWritesAuditRowsAndTickets) {
  const int port = server->port();
  auto created = http(port, "POST", "/api/v1/services",
                      R"({"id":"pg-prod","name":"PostgreSQL","environment":"production",)"
                      R"("hours":"24x7","target_percent":99.5})",
                      token);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(http(port, "POST", "/api/v1/services",
                 R"({"id":"pg-prod","name":"x","environment":"production","hours":"24x7",)"
                 R"("target_percent":99.5})",
                 token)
                .status,
            409);
  auto put = http(port, "PUT", "/api/v1/services/pg-prod",
                  R"({"name":"PostgreSQL 15","environment":"production","hours":"24x7",)"
                  R"("target_percent":99.5})",
                  token);
  EXPECT_EQ(put.status, 200) << put.body;
  // ?service= filters what belongs to one service; services and customers do not.
  EXPECT_EQ(Json::parse(http(port, "GET", "/api/v1/interruptions?service=pg-prod", "", token)
                            .body)["interruptions"],
            Json::array());
  const auto unfiltered = http(port, "GET", "/api/v1/customers?service=pg-prod", "", token);
  EXPECT_EQ(unfiltered.status, 400) << unfiltered.body;
  EXPECT_NE(unfiltered.body.find("customers are not filtered by service"), std::string::npos)
      << unfiltered.body;
  auto audit = Json::parse(http(port, "GET", "/api/v1/audit?entity=service", "", token).body);
  ASSERT_EQ(audit["audit"].size(), 2u);
  EXPECT_EQ(audit["audit"][0]["action"], "update");
  EXPECT_EQ(audit["audit"][0]["before"]["name"], "PostgreSQL");
  EXPECT_EQ(audit["audit"][0]["after"]["name"], "PostgreSQL 15");
  // The create row shows the body as created, not as it is now.
  EXPECT_EQ(audit["audit"][1]["action"], "create");
  EXPECT_TRUE(audit["audit"][1]["before"].is_null());
  EXPECT_EQ(audit["audit"][1]["after"]["name"], "PostgreSQL");

  auto ticket = http(port, "POST", "/api/v1/tickets",
                     R"({"subject":"Please add a schema","body":"For the library"})", token);
  ASSERT_EQ(ticket.status, 201) << ticket.body;
  EXPECT_EQ(Json::parse(ticket.body)["id"], "SLM0000001");
  auto second = http(port, "POST", "/api/v1/tickets", R"({"subject":"Another"})", token);
  EXPECT_EQ(Json::parse(second.body)["id"], "SLM0000002");
  EXPECT_EQ(http(port, "DELETE", "/api/v1/services/pg-prod", "", token).status, 204);
  EXPECT_EQ(http(port, "GET", "/api/v1/services/pg-prod", "", token).status, 404);
  // After the delete, every row still shows what the entity was after it.
  audit = Json::parse(http(port, "GET", "/api/v1/audit?entity=service", "", token).body);
  ASSERT_EQ(audit["audit"].size(), 3u);
  EXPECT_EQ(audit["audit"][0]["action"], "delete");
  EXPECT_EQ(audit["audit"][0]["before"]["name"], "PostgreSQL 15");
  EXPECT_TRUE(audit["audit"][0]["after"].is_null());
  EXPECT_EQ(audit["audit"][1]["after"]["name"], "PostgreSQL 15");
  EXPECT_EQ(audit["audit"][2]["after"]["name"], "PostgreSQL");
  // A page of one row still finds its after (in the entity's table, then in newer rows).
  audit = Json::parse(http(port, "GET", "/api/v1/audit?entity=service&limit=1", "", token).body);
  EXPECT_TRUE(audit["audit"][0]["after"].is_null());
}

// docs/openapi.yaml describes every route the host and the shipped plugins serve, and
// nothing else.
// "METHOD /path" → the role docs/openapi.yaml names for it ("" for an open route).
std::map<std::string, std::string> documented_routes(const std::string& yaml) {
  std::map<std::string, std::string> documented;
  std::istringstream lines(yaml);
  std::string line, path, current;
  bool in_paths = false;
  while (std::getline(lines, line)) {
    if (line == "paths:") {
      in_paths = true;
      continue;
    }
    if (!in_paths) continue;
    if (line.starts_with("  /") && line.back() == ':') {
      path = line.substr(2, line.size() - 3);
    } else if (line.size() > 5 && line.starts_with("    ") && line[4] != ' ' &&
               line.back() == ':') {
      auto method = line.substr(4, line.size() - 5);
      if (method != "parameters") {
        for (auto& c : method) c = static_cast<char>(std::toupper(c));
        current = method + " " + path;
        documented[current] = "";
      }
    } else if (line.starts_with("      x-slmhub-role: ")) {
      std::string role = line.substr(21);
      if (role.size() >= 2 && role.front() == '"') role = role.substr(1, role.size() - 2);
      documented[current] = role;
    }
  }
  return documented;
}

// Every route the server serves (except the test plugin's): "METHOD /path" → its role.
std::map<std::string, std::string> served_routes(int port, const std::string& token) {
  std::map<std::string, std::string> served;
  auto routes = http(port, "GET", "/api/v1/routes", "", token);
  EXPECT_EQ(routes.status, 200) << routes.body;
  const Json table = Json::parse(routes.body);
  for (const auto& r : table["routes"]) {
    if (r["owner"] != "hello")
      served[r["method"].get<std::string>() + " " + r["path"].get<std::string>()] = r["role"];
  }
  return served;
}

// The URL `serve` prints, opened in a browser: a page, not a 404. It links each route that
// opens without a token and has no parameter (relative links, for a proxy's path prefix), and
// none that needs one.
TEST_F(ServerTest, TheRootPageLinksWhatOpensWithoutAToken) {
  auto page = http(server->port(), "GET", "/");
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(page.headers["Content-Type"], "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<li><a href=\"healthz\">/healthz</a>: the process is up</li>"),
            std::string::npos)
      << page.body;
  EXPECT_NE(page.body.find("<a href=\"readyz\">"), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("<a href=\"api/v1/openapi.yaml\">"), std::string::npos);
  EXPECT_EQ(page.body.find("api/v1/plugins"), std::string::npos) << page.body;
  EXPECT_EQ(page.body.find("/{"), std::string::npos) << page.body;  // no parameterised path
}

TEST_F(ServerTest, OpenApiMatchesTheRouteTableRoleForRole) {
  auto doc = http(server->port(), "GET", "/api/v1/openapi.yaml");
  ASSERT_EQ(doc.status, 200);
  EXPECT_EQ(documented_routes(doc.body), served_routes(server->port(), token));
}

// The role table walked: every route, without a token and with a token of each role. A route
// that needs a role answers 401 without a token, 403 to a token without the role, and lets a
// token with it through (admin has every role; a route's role may be alternatives, `R|S`, and
// `customer` among them takes a customer token). Paths name records that do not exist and bodies
// are empty, so what gets through ends in 2xx, 400, 404 or 422, never in 401/403 or a 5xx.
TEST_F(ServerTest, EveryRouteAnswersEveryRoleAsTheTableSays) {
  const std::vector<std::string> roles{"viewer",  "operator", "service_manager",   "approver",
                                       "billing", "admin",    "customer:registrar"};
  std::map<std::string, std::string> tokens;
  for (const auto& role : roles) tokens[role] = server->token(role);
  int checked = 0;
  for (const auto& [route, needs] : served_routes(server->port(), token)) {
    const std::string method = route.substr(0, route.find(' '));
    std::string path = route.substr(route.find(' ') + 1);
    for (auto open = path.find('{'); open != std::string::npos; open = path.find('{'))
      path.replace(open, path.find('}', open) - open + 1, "no-such-record");
    const auto anonymous = http(server->port(), method, path);
    if (needs.empty()) {
      EXPECT_NE(anonymous.status, 401) << route;
      continue;
    }
    EXPECT_EQ(anonymous.status, 401) << route << ": " << anonymous.body;
    std::set<std::string> alternatives;
    for (std::size_t from = 0, bar = 0; bar != std::string::npos; from = bar + 1) {
      bar = needs.find('|', from);
      alternatives.insert(needs.substr(from, bar == std::string::npos ? bar : bar - from));
    }
    for (const auto& role : roles) {
      const bool allowed = role == "admin" || alternatives.contains(role) ||
                           (role.starts_with("customer:") && alternatives.contains("customer"));
      const auto r = http(server->port(), method, path, "", tokens[role]);
      ++checked;
      if (allowed) {
        EXPECT_NE(r.status, 401) << route << " as " << role << ": " << r.body;
        EXPECT_NE(r.status, 403) << route << " as " << role << ": " << r.body;
        EXPECT_LT(r.status, 500) << route << " as " << role << ": " << r.body;
      } else {
        EXPECT_EQ(r.status, 403) << route << " as " << role << ": " << r.body;
      }
    }
  }
  EXPECT_GT(checked, 700);
}

}  // namespace
}  // namespace slmhub::test
