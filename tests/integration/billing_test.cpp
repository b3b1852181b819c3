// Billing end to end over the real HTTP API of an in-process host on a manual clock: the
// shared November vector's customers, a rate card, time entries and on-call requests, the SLA
// credits the workflows approve and a dispute adjusts, December's invoices with hand-checked
// figures, the export to accounting (every UBL file validated by xmllint against the official
// schema, the CSV read back by Python's csv module), a second export that writes nothing, a
// credit note, January's carry-forward, gapless numbers, and the annual estimate reaching each
// billing contact once, re-issued when the rates change.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "app/server.hpp"
#include "core/core_store.hpp"
#include "crash.hpp"
#include "events/event_bus.hpp"
#include "http/auth.hpp"
#include "jobs/job_scheduler.hpp"
#include "manual_clock.hpp"
#include "postgres_cluster.hpp"
#include "process.hpp"
#include "server_process.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/json.hpp"
#include "storage/database.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

namespace fs = std::filesystem;

// Each test runs on the embedded SQLite store and on a PostgreSQL 15 cluster.
class Billing : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    static int databases = 0;
    db_url_ = GetParam() == "postgresql"
                  ? shared_cluster().create_database("billing_" + std::to_string(++databases))
                  : "sqlite:" + (dir_.path() / "slmhub.db").string();
    start();
  }
  void TearDown() override { server_->shutdown(); }

  // The server on the test's store, with the plugins `enabled` (empty: all of them).
  void start(const std::string& enabled = "") {
    if (server_) server_->shutdown();
    server_.reset();
    host::Settings settings;
    settings.set("db.url", db_url_);
    settings.set("plugins.dir", SLMHUB_PLUGIN_DIR);
    if (!enabled.empty()) settings.set("plugins.enabled", enabled);
    settings.set("auth.admin_token_file", (dir_.path() / "admin.token").string());
    settings.set("http.port", "0");
    settings.set("log.level", "warning");
    settings.set("plugins.billing_export.export.dir", (dir_.path() / "exports").string());
    settings.set("plugins.billing_export.supplier.id", "DBTEAM");
    settings.set("plugins.billing_export.supplier.name", "Database Team");
    server_ =
        std::make_unique<host::Server>(std::move(settings), SLMHUB_PLUGIN_DIR "/../host", &clock_);
    server_->open();
    port_ = server_->serve(/*background=*/false);
    billing_ = token({"viewer", "billing"});
    operator_ = token({"viewer", "operator"});
    manager_ = token({"viewer", "service_manager"});
    approver_ = token({"viewer", "service_manager", "approver"});
    registrar_ = token({"customer:registrar"});
    library_ = token({"customer:library"});
  }

  std::string token(const std::vector<std::string>& roles) {
    return server_->tokens().create("test", roles.back(), roles, std::nullopt).token;
  }

  // The November vector, each customer with a billing contact, and the archives, which
  // subscribe from 15 January 2027: in the middle of fiscal year 2027.
  void import_customers(const Json& extra_customer = nullptr) {
    Json dataset = parse_json(read_shared("vectors/example-2026-11.json"));
    if (!extra_customer.is_null()) dataset["customers"].push_back(extra_customer);
    dataset["customers"].push_back({{"id", "archives"},
                                    {"name", "University Archives"},
                                    {"billing_code", "ARC-300"},
                                    {"subscriptions",
                                     {{{"service", "mysql-qa"},
                                       {"monthly_charge_cents", 40000},
                                       {"start", "2027-01-15T06:00:00Z"}}}}});
    for (auto& c : dataset["customers"]) {
      const std::string id = c["id"];
      c["contacts"] = Json::array({{{"role", "billing"},
                                    {"name", "Billing office"},
                                    {"email", "billing@" + id + ".example.org"}}});
    }
    server_->core().import(Actor{"test"}, dataset);
  }

  HttpResult call(const std::string& method, const std::string& path, const std::string& who,
                  const Json& body = nullptr) {
    return http(port_, method, path, body.is_null() ? "" : body.dump(), who,
                body.is_null()
                    ? std::map<std::string, std::string>{}
                    : std::map<std::string, std::string>{{"Content-Type", "application/json"}});
  }
  Json ok(const std::string& method, const std::string& path, const std::string& who,
          const Json& body = nullptr) {
    const auto r = call(method, path, who, body);
    EXPECT_TRUE(r.status == 200 || r.status == 201) << method << " " << path << ": " << r.body;
    return r.body.empty() ? Json() : Json::parse(r.body);
  }
  void dispatch() {
    while (server_->events().dispatch_once() > 0) {
    }
  }

  // The vector's report for November published on 8 December and the oracle-prod work order
  // approved on the 9th: credits of 4.97 (registrar) and 2.35 (library).
  void approve_november_credits() {
    clock_.set("2026-12-02T16:00:00Z");
    EXPECT_EQ(server_->jobs().run_now("availability.monthly-draft"), "2026-11 revision 1 drafted");
    clock_.set("2026-12-08T16:00:00Z");
    const std::string report = "/api/v1/reports/availability/2026-11/revisions/1";
    ok("POST", report + "/review", manager_);
    ok("POST", report + "/approve", approver_);
    ok("POST", report + "/publish", manager_);
    dispatch();
    clock_.set("2026-12-09T16:00:00Z");
    ok("POST", "/api/v1/credit-work-orders/WO:2026-11:oracle-prod/approve", approver_);
    dispatch();
  }

  std::vector<std::string> outbox_to(const std::string& subject_prefix) {
    std::vector<std::string> out;
    for (const auto& row :
         server_->database().query("SELECT destination, subject FROM outbox ORDER BY id")) {
      if (row.text(1).starts_with(subject_prefix)) out.push_back(row.text(0));
    }
    return out;
  }

  std::int64_t count(const std::string& table) {
    return server_->database().query("SELECT COUNT(*) FROM " + table).at(0).integer(0);
  }

  TempDir dir_;
  std::string db_url_;
  ManualClock clock_{"2026-12-01T18:00:00Z"};
  std::unique_ptr<host::Server> server_;
  int port_ = 0;
  std::string billing_, operator_, manager_, approver_, registrar_, library_;
};

const Json kRateCard = {{"id", "RC-FY2027"},
                        {"valid_from", "2026-09-01"},
                        {"hourly_rate_cents", 9500},
                        {"oncall_week_cents", 22400},
                        {"offerings", {{"oracle-prod", 150000}, {"mysql-qa", 40000}}}};

std::map<std::string, Json> lines_by_kind(const Json& invoice, const std::string& kind) {
  std::map<std::string, Json> out;
  for (const auto& l : invoice["lines"]) {
    if (l["kind"] == kind) out[l["id"]] = l;
  }
  return out;
}

std::vector<std::int64_t> amounts_of(const Json& invoice, const std::string& kind) {
  std::vector<std::int64_t> out;
  for (const auto& l : invoice["lines"]) {
    if (l["kind"] == kind) out.push_back(l["amount_cents"]);
  }
  return out;
}

// Every file the manifest lists is there with its SHA-256, and nothing else: the complete set.
::testing::AssertionResult complete_set(const fs::path& dir, std::int64_t invoices) {
  const Json manifest = Json::parse(read_text(dir / "manifest.json"));
  if (manifest["documents"]["invoices"] != invoices)
    return ::testing::AssertionFailure() << "manifest counts " << manifest["documents"].dump();
  std::set<std::string> listed{"manifest.json"};
  for (const auto& f : manifest["files"]) {
    const std::string name = f["name"];
    listed.insert(name);
    if (sha256_hex(read_text(dir / name)) != f["sha256"])
      return ::testing::AssertionFailure() << name << " differs from the manifest";
  }
  std::set<std::string> present;
  for (const auto& f : fs::directory_iterator(dir)) present.insert(f.path().filename().string());
  if (present != listed)
    return ::testing::AssertionFailure()
           << present.size() << " files present, " << listed.size() << " listed";
  return ::testing::AssertionSuccess();
}

TEST_P(Billing, AMonthFromWorkAndCreditsToFilesForAccounting) {
  import_customers();
  dispatch();
  EXPECT_EQ(ok("POST", "/api/v1/rate-cards", billing_, kRateCard)["hourly_rate_cents"], 9500);

  // Bad input names what and where, and changes nothing.
  const auto typo = call("POST", "/api/v1/billing/import", billing_,
                         {{"time_entries",
                           {{{"id", "h1"},
                             {"customer", "registrar"},
                             {"date", "2026-10-01"},
                             {"minuts", 60},
                             {"description", "x"}}}}});
  EXPECT_EQ(typo.status, 400);
  EXPECT_NE(typo.body.find("$.time_entries[0].minuts"), std::string::npos) << typo.body;
  const auto stranger =
      call("POST", "/api/v1/time-entries", operator_,
           {{"customer", "nobody"}, {"date", "2026-11-30"}, {"minutes", 30}, {"description", "x"}});
  EXPECT_EQ(stranger.status, 422);
  EXPECT_NE(stranger.body.find("no customer 'nobody'"), std::string::npos) << stranger.body;
  EXPECT_EQ(count("billing_time_entries"), 0);

  // 19 of the registrar's 20 included hours were used in October; a re-import changes nothing.
  Json history = Json::array();
  for (int day = 1; day <= 19; ++day) {
    const std::string date = (day < 10 ? "2026-10-0" : "2026-10-") + std::to_string(day);
    history.push_back({{"id", "hist-" + std::to_string(day)},
                       {"customer", "registrar"},
                       {"date", date},
                       {"minutes", 60},
                       {"description", "schema review"},
                       {"kind", "included_support"}});
  }
  EXPECT_EQ(ok("POST", "/api/v1/billing/import", billing_,
               {{"time_entries", history}})["time_entries"]["added"],
            19);
  EXPECT_EQ(ok("POST", "/api/v1/billing/import", billing_,
               {{"time_entries", history}})["time_entries"]["unchanged"],
            19);

  // On-call: 10 days asked 27 days ahead is accepted (two started weeks); 16 days, or 20 days
  // ahead, is refused with the rule.
  const Json oncall = ok("POST", "/api/v1/oncall-requests", operator_,
                         {{"customer", "registrar"},
                          {"first_day", "2026-12-28"},
                          {"last_day", "2027-01-06"},
                          {"reason", "spring registration"}});
  EXPECT_EQ(oncall["weeks"], 2);
  EXPECT_EQ(oncall["requested_on"], "2026-12-01");
  const auto sixteen =
      call("POST", "/api/v1/oncall-requests", operator_,
           {{"customer", "registrar"}, {"first_day", "2027-01-04"}, {"last_day", "2027-01-19"}});
  EXPECT_EQ(sixteen.status, 422);
  EXPECT_NE(sixteen.body.find("on-call periods are at most 14 days; 2027-01-04 to 2027-01-19 is "
                              "16 days"),
            std::string::npos)
      << sixteen.body;
  EXPECT_EQ(Json::parse(sixteen.body)["errors"][0]["path"], "$.last_day") << sixteen.body;
  const auto hurried =
      call("POST", "/api/v1/oncall-requests", operator_,
           {{"customer", "registrar"}, {"first_day", "2026-12-21"}, {"last_day", "2026-12-22"}});
  EXPECT_EQ(hurried.status, 422);
  EXPECT_NE(hurried.body.find("at least 21 days ahead"), std::string::npos) << hurried.body;
  EXPECT_EQ(Json::parse(hurried.body)["errors"][0]["path"], "$.first_day") << hurried.body;
  EXPECT_EQ(ok("GET", "/api/v1/oncall-requests", billing_).size(), 1u);

  // The day an on-call request arrives is the server's to record.
  EXPECT_EQ(call("POST", "/api/v1/oncall-requests", operator_,
                 {{"customer", "registrar"},
                  {"first_day", "2027-02-01"},
                  {"last_day", "2027-02-02"},
                  {"requested_on", "2026-11-01"}})
                .status,
            400);

  // November is finalised on 1 December: gapless numbers in customer order. December is not
  // over yet.
  const auto early =
      call("POST", "/api/v1/invoices/run", billing_, {{"month", "2026-12"}, {"finalise", true}});
  EXPECT_EQ(early.status, 409);
  EXPECT_NE(early.body.find("2026-12 is not over yet"), std::string::npos) << early.body;
  // A December drafted now lists November's unbilled time too; finalising November drops it,
  // or the same hours would show on a final invoice and on a draft.
  EXPECT_EQ(ok("POST", "/api/v1/invoices/run", billing_, {{"month", "2026-12"}})["invoices"], 2);
  EXPECT_EQ(ok("GET", "/api/v1/invoices?month=2026-12&state=draft", billing_).size(), 2u);
  const Json november =
      ok("POST", "/api/v1/invoices/run", billing_, {{"month", "2026-11"}, {"finalise", true}});
  EXPECT_EQ(november["numbers_assigned"], Json::array({"INV-FY2027-000001", "INV-FY2027-000002"}));
  EXPECT_EQ(ok("GET", "/api/v1/invoices?month=2026-12&state=draft", billing_), Json::array());
  const Json nov_registrar = ok("GET", "/api/v1/invoices/INV-FY2027-000002", billing_);
  EXPECT_EQ(nov_registrar["customer"]["customer"], "registrar");
  EXPECT_EQ(nov_registrar["total_cents"], 190000);  // 1,500.00 + 400.00; 19 hours included
  EXPECT_EQ(lines_by_kind(nov_registrar, "time").size(), 19u);
  EXPECT_EQ(nov_registrar["issue_date"], "2026-12-01");
  EXPECT_EQ(nov_registrar["due_date"], "2026-12-31");

  // The workflows approve the November credits; the library's dispute raises its credit to
  // 1,000.00, more than a month of its subscription.
  approve_november_credits();
  clock_.set("2026-12-10T16:00:00Z");
  const Json dispute = ok("POST", "/api/v1/disputes", library_,
                          {{"credit", "WO:2026-11:oracle-prod:library"},
                           {"basis", "the catalogue was down all week"},
                           {"supporting_information", "outage log"}});
  const std::string dispute_path = "/api/v1/disputes/" + dispute["id"].get<std::string>();
  ok("POST", dispute_path + "/resolve", manager_,
     {{"credit_cents", 100000}, {"outcome", "The whole week is credited."}});
  dispatch();
  const Json credits = ok("GET", "/api/v1/billing/credits", billing_);
  ASSERT_EQ(credits.size(), 3u) << credits.dump();
  EXPECT_EQ(credits[2]["kind"], "adjustment");
  EXPECT_EQ(credits[2]["amount_cents"], 99765);
  EXPECT_EQ(credits[2]["billing_month"], "2026-12");

  // December's work: entries of 1, 14, 15, 16 and 61 minutes cross the 20 included hours.
  clock_.set("2026-12-16T18:00:00Z");
  const std::vector<std::pair<const char*, int>> work = {{"2026-12-01", 1},
                                                         {"2026-12-02", 14},
                                                         {"2026-12-03", 15},
                                                         {"2026-12-14", 16},
                                                         {"2026-12-15", 61}};
  for (const auto& [date, minutes] : work) {
    ok("POST", "/api/v1/time-entries", operator_,
       {{"customer", "registrar"},
        {"date", date},
        {"minutes", minutes},
        {"description", "tuning"},
        {"ticket", "DB0000042"}});
  }
  const auto future = call("POST", "/api/v1/time-entries", operator_,
                           {{"customer", "registrar"},
                            {"date", "2026-12-17"},
                            {"minutes", 30},
                            {"description", "not yet done"}});
  EXPECT_EQ(future.status, 422);
  EXPECT_NE(future.body.find("is in the future"), std::string::npos) << future.body;

  // 4 January: December's drafts, checked by hand.
  clock_.set("2027-01-04T18:00:00Z");
  const Json drafted = ok("POST", "/api/v1/invoices/run", billing_, {{"month", "2026-12"}});
  EXPECT_EQ(drafted["invoices"], 2);
  EXPECT_EQ(drafted["numbers_assigned"], Json::array());
  const Json registrar_draft = ok("GET", "/api/v1/invoices/2026-12:registrar", billing_);
  EXPECT_EQ(registrar_draft["state"], "draft");
  EXPECT_TRUE(registrar_draft["number"].is_null());
  EXPECT_EQ(amounts_of(registrar_draft, "subscription"),
            (std::vector<std::int64_t>{40000, 150000}));
  // 15, 15, 15 included; 30 = 15 included + 15 billed (23.75); 75 billed (118.75).
  EXPECT_EQ(amounts_of(registrar_draft, "time"), (std::vector<std::int64_t>{0, 0, 0, 2375, 11875}));
  std::vector<std::int64_t> included, billed;
  for (const auto& l : registrar_draft["lines"]) {
    if (l["kind"] != "time") continue;
    included.push_back(l["sources"]["time_entry"]["included_minutes"]);
    billed.push_back(l["sources"]["time_entry"]["billed_minutes"]);
  }
  EXPECT_EQ(included, (std::vector<std::int64_t>{15, 15, 15, 15, 0}));
  EXPECT_EQ(billed, (std::vector<std::int64_t>{0, 0, 0, 15, 75}));
  EXPECT_EQ(amounts_of(registrar_draft, "oncall"), std::vector<std::int64_t>{44800});
  EXPECT_EQ(amounts_of(registrar_draft, "credit"), std::vector<std::int64_t>{-497});
  // 1,900.00 + 142.50 + 448.00 - 4.97
  EXPECT_EQ(registrar_draft["total_cents"], 248553);
  const Json library_draft = ok("GET", "/api/v1/invoices/2026-12:library", billing_);
  EXPECT_EQ(amounts_of(library_draft, "credit"), std::vector<std::int64_t>{-235});
  EXPECT_EQ(amounts_of(library_draft, "adjustment"), std::vector<std::int64_t>{-99765});
  EXPECT_EQ(amounts_of(library_draft, "carry_forward"), std::vector<std::int64_t>{10000});
  EXPECT_EQ(library_draft["total_cents"], 0);

  // The export finalises December and writes the files for accounting.
  const Json exported = ok("POST", "/api/v1/exports", billing_, {{"month", "2026-12"}});
  EXPECT_EQ(exported["documents"], 2);
  EXPECT_EQ(exported["written"], true);
  const fs::path out = dir_.path() / "exports" / "invoices-2026-12";
  EXPECT_EQ(exported["directory"], out.string());
  std::set<std::string> names;
  for (const auto& f : fs::directory_iterator(out)) names.insert(f.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"INV-FY2027-000003.xml", "INV-FY2027-000004.xml",
                                          "invoices-2026-12.csv", "manifest.json"}));
  const Json manifest = Json::parse(read_text(out / "manifest.json"));
  for (const auto& f : manifest["files"])
    EXPECT_EQ(sha256_hex(read_text(out / f["name"].get<std::string>())), f["sha256"]) << f["name"];
  EXPECT_EQ(manifest["totals"]["invoiced_cents"], 248553);
  EXPECT_EQ(manifest["totals"]["carried_forward_cents"], 10000);

  // Every UBL file validates against the official schema, and its lines sum to its total.
  const std::string xsd = (shared_dir() / "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd").string();
  for (const char* number : {"INV-FY2027-000003", "INV-FY2027-000004"}) {
    const std::string file = (out / (std::string(number) + ".xml")).string();
    const auto [status, output] =
        run_shell("xmllint --noout --schema '" + xsd + "' '" + file + "'");
    EXPECT_EQ(status, 0) << output;
    const auto lines = run_shell(
        "xmllint --xpath 'sum(//*[local-name()=\"InvoiceLine\"]/"
        "*[local-name()=\"LineExtensionAmount\"])' '" +
        file + "'");
    const auto payable =
        run_shell("xmllint --xpath 'string(//*[local-name()=\"PayableAmount\"])' '" + file + "'");
    EXPECT_EQ(std::stod(lines.second), std::stod(payable.second)) << number;
  }
  EXPECT_NE(read_text(out / "INV-FY2027-000004.xml")
                .find("<cbc:PayableAmount currencyID=\"USD\">2485.53"),
            std::string::npos);

  // Python's csv module reads the CSV back to the same totals, per document.
  const auto csv = run_shell(
      "/usr/bin/python3 -c 'import csv,sys,decimal\n"
      "t={}\n"
      "for r in csv.DictReader(open(sys.argv[1], newline=\"\")):\n"
      "  t.setdefault(r[\"document_number\"], [decimal.Decimal(0), r[\"document_total\"]])\n"
      "  t[r[\"document_number\"]][0] += decimal.Decimal(r[\"amount\"])\n"
      "for k in sorted(t): print(k, t[k][0], t[k][1])' '" +
      (out / "invoices-2026-12.csv").string() + "'");
  EXPECT_EQ(csv.first, 0) << csv.second;
  EXPECT_EQ(csv.second, "INV-FY2027-000003 0.00 0.00\nINV-FY2027-000004 2485.53 2485.53\n");

  // Export twice: the same bytes, no new numbers, and the run recorded with who and when.
  const auto before = read_text(out / "INV-FY2027-000004.xml");
  const Json again = ok("POST", "/api/v1/exports", billing_, {{"month", "2026-12"}});
  EXPECT_EQ(again["written"], false);
  EXPECT_EQ(again["manifest_sha256"], exported["manifest_sha256"]);
  EXPECT_EQ(read_text(out / "INV-FY2027-000004.xml"), before);
  EXPECT_EQ(ok("GET", "/api/v1/invoices?month=2026-12", billing_).size(), 2u);
  const Json runs = ok("GET", "/api/v1/exports", billing_);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1]["started_at"], "2027-01-04T18:00:00Z");
  EXPECT_TRUE(runs[1]["by"].get<std::string>().starts_with("token:"));

  // Each line explains itself down to its sources.
  const Json final_registrar = ok("GET", "/api/v1/invoices/INV-FY2027-000004", billing_);
  EXPECT_EQ(final_registrar["state"], "final");
  std::set<std::string> source_kinds;
  for (const auto& l : final_registrar["lines"]) {
    for (const auto& [k, v] : l["sources"].items()) source_kinds.insert(k);
    if (l["kind"] == "credit") {
      EXPECT_EQ(l["sources"]["credit"]["incidents"],
                Json::array({"INC0001", "INC0002", "INC0003"}));
      // The vector's maintenance window CHG0002 counted as downtime too (DOMAIN.md §4).
      EXPECT_EQ(l["sources"]["credit"]["maintenance"], Json::array({"CHG0002"}));
      EXPECT_EQ(l["reference"], "INC0001 INC0002 INC0003 CHG0002");
      EXPECT_EQ(l["sources"]["credit"]["report_month"], "2026-11");
    }
  }
  EXPECT_EQ(source_kinds,
            (std::set<std::string>{"subscription", "time_entry", "oncall_request", "credit"}));
  const Json entries = ok("GET", "/api/v1/time-entries?customer=registrar&month=2026-12", billing_);
  for (const auto& e : entries) EXPECT_EQ(e["invoice"], "INV-FY2027-000004");
  EXPECT_EQ(call("DELETE", "/api/v1/time-entries/" + entries[0]["id"].get<std::string>(), billing_)
                .status,
            409);

  // A final invoice is corrected by a credit note, never changed.
  const auto too_much = call(
      "POST", "/api/v1/invoices/INV-FY2027-000004/credit-notes", billing_,
      {{"reason", "x"}, {"lines", {{{"description", "all of it"}, {"amount_cents", 248554}}}}});
  EXPECT_EQ(too_much.status, 400);
  const Json note =
      ok("POST", "/api/v1/invoices/INV-FY2027-000004/credit-notes", billing_,
         {{"reason", "the 61-minute entry was 46 minutes"},
          {"lines", {{{"description", "tuning 2026-12-15: 15 minutes"}, {"amount_cents", 2375}}}}});
  EXPECT_EQ(note["number"], "CN-FY2027-000001");
  EXPECT_EQ(note["billing_reference"], "INV-FY2027-000004");
  EXPECT_EQ(ok("GET", "/api/v1/invoices/INV-FY2027-000004", billing_)["credit_notes"][0]["number"],
            "CN-FY2027-000001");

  // January: the carried credit comes in, the archives are billed from their first month,
  // and numbering goes on without a gap. December cannot be reopened.
  clock_.set("2027-02-02T18:00:00Z");
  const Json january = ok("POST", "/api/v1/exports", billing_, {{"month", "2027-01"}});
  EXPECT_EQ(january["documents"], 4);  // three invoices and January's credit note
  const Json jan_library = ok("GET", "/api/v1/invoices/2027-01:library", billing_);
  EXPECT_EQ(jan_library["number"], "INV-FY2027-000006");
  EXPECT_EQ(amounts_of(jan_library, "carry_in"), std::vector<std::int64_t>{-10000});
  EXPECT_EQ(jan_library["total_cents"], 80000);
  EXPECT_EQ(ok("GET", "/api/v1/invoices/2027-01:archives", billing_)["total_cents"], 40000);
  EXPECT_EQ(ok("GET", "/api/v1/invoices/2027-01:registrar", billing_)["number"],
            "INV-FY2027-000007");
  const fs::path jan_out = dir_.path() / "exports" / "invoices-2027-01";
  const auto note_check = run_shell("xmllint --noout --schema '" + shared_dir().string() +
                                    "/ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd' '" +
                                    (jan_out / "CN-FY2027-000001.xml").string() + "'");
  EXPECT_EQ(note_check.first, 0) << note_check.second;
  const auto reopen = call("POST", "/api/v1/invoices/run", billing_, {{"month", "2026-10"}});
  EXPECT_EQ(reopen.status, 409);
  EXPECT_NE(reopen.body.find("2026-11 are final"), std::string::npos) << reopen.body;
  EXPECT_EQ(call("GET", "/api/v1/invoices", registrar_).status, 403);

  // Months are final in order: March cannot go before February.
  clock_.set("2027-04-02T18:00:00Z");
  const auto skipped = call("POST", "/api/v1/exports", billing_, {{"month", "2027-03"}});
  EXPECT_EQ(skipped.status, 409);
  EXPECT_NE(skipped.body.find("finalise 2027-02 first"), std::string::npos) << skipped.body;
}

TEST_P(Billing, TheAnnualEstimateReachesEachBillingContactOnceAndARateChangeReissuesIt) {
  // A former customer, whose last subscription ends in March 2027: no estimate for FY2028.
  import_customers({{"id", "oldco"},
                    {"name", "Old Company"},
                    {"billing_code", "OLD-400"},
                    {"subscriptions",
                     {{{"service", "mysql-qa"},
                       {"monthly_charge_cents", 40000},
                       {"end", "2027-04-01T05:00:00Z"}}}}});
  ok("POST", "/api/v1/rate-cards", billing_, kRateCard);
  ok("POST", "/api/v1/billing/import", billing_,
     {{"time_entries",
       {{{"id", "w1"},
         {"customer", "registrar"},
         {"date", "2026-11-03"},
         {"minutes", 750},
         {"description", "upgrade"}},
        {{"id", "w2"},
         {"customer", "registrar"},
         {"date", "2026-11-04"},
         {"minutes", 750},
         {"description", "upgrade"}}}}});
  // The job runs every morning at 07:00 in Chicago; fiscal year 2028 starts on 1 September
  // 2027, so its estimates are due on 1 June.
  clock_.set("2027-05-31T12:00:00Z");
  server_->jobs().tick();
  EXPECT_EQ(ok("GET", "/api/v1/estimates", billing_).size(), 0u);
  clock_.set("2027-06-01T12:00:00Z");
  server_->jobs().tick();
  server_->jobs().tick();
  const Json issued = ok("GET", "/api/v1/estimates?fiscal_year=2028", billing_);
  ASSERT_EQ(issued.size(), 3u) << issued.dump();
  std::map<std::string, Json> by_customer;
  for (const auto& e : issued) by_customer[e["customer"]] = e;
  const Json& registrar = by_customer["registrar"];
  EXPECT_EQ(registrar["revision"], 1);
  EXPECT_EQ(registrar["made_on"], "2027-06-01");
  // 12 × (1,500.00 + 400.00) + 1,500 min less the 1,200 included at 95.00 (475.00).
  EXPECT_EQ(registrar["total_cents"], 2280000 + 47500);
  EXPECT_EQ(registrar["significant"], false);
  EXPECT_EQ(by_customer["archives"]["subscriptions"][0]["months"], 12);
  EXPECT_EQ(outbox_to("Cost estimate FY2028"),
            (std::vector<std::string>{"billing@archives.example.org", "billing@library.example.org",
                                      "billing@registrar.example.org"}));

  // The FY2028 rates arrive in July: 20 % more for Oracle. Every estimate it changes is
  // re-issued at once, and only those.
  clock_.set("2027-07-15T15:00:00Z");
  Json fy2028 = kRateCard;
  fy2028["id"] = "RC-FY2028";
  fy2028["valid_from"] = "2027-09-01";
  fy2028["offerings"]["oracle-prod"] = 180000;
  ok("POST", "/api/v1/rate-cards", billing_, fy2028);
  server_->jobs().tick();
  EXPECT_EQ(
      outbox_to("Revised cost estimate FY2028"),
      (std::vector<std::string>{"billing@library.example.org", "billing@registrar.example.org"}));
  const Json revised = ok("GET", "/api/v1/estimates?fiscal_year=2028&customer=registrar", billing_);
  ASSERT_EQ(revised.size(), 2u);
  EXPECT_EQ(revised[1]["revision"], 2);
  EXPECT_EQ(revised[1]["made_on"], "2027-06-01");
  EXPECT_EQ(revised[1]["total_cents"], 12 * (180000 + 40000) + 47500);
  EXPECT_EQ(revised[1]["change_cents"], 360000);
  EXPECT_EQ(revised[1]["change_basis_points"], 1546);  // 3,600.00 on 23,275.00: significant
  EXPECT_EQ(revised[1]["significant"], true);
}

TEST_P(Billing, RequestsOutOfRangeOrOfTheWrongTypeNameTheFieldAndChangeNothing) {
  import_customers();
  const auto finalise =
      call("POST", "/api/v1/invoices/run", billing_, {{"month", "2026-11"}, {"finalise", "yes"}});
  EXPECT_EQ(finalise.status, 400);
  EXPECT_NE(finalise.body.find("$.finalise"), std::string::npos) << finalise.body;
  const auto unknown =
      call("POST", "/api/v1/exports", billing_, {{"month", "2026-11"}, {"format", {"csv"}}});
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("$.format"), std::string::npos) << unknown.body;
  EXPECT_EQ(count("billing_months"), 0);
  EXPECT_EQ(count("billing_documents"), 0);

  // Prices past 100 million would let a month's sums overflow.
  Json dear = kRateCard;
  dear["hourly_rate_cents"] = 10'000'000'001;
  const auto rate = call("POST", "/api/v1/rate-cards", billing_, dear);
  EXPECT_EQ(rate.status, 400);
  EXPECT_NE(rate.body.find("$.hourly_rate_cents"), std::string::npos) << rate.body;
  dear = kRateCard;
  dear["offerings"]["oracle-prod"] = 9'000'000'000'000'000'000LL;
  const auto offering = call("POST", "/api/v1/rate-cards", billing_, dear);
  EXPECT_EQ(offering.status, 400);
  EXPECT_NE(offering.body.find(R"($.offerings[\"oracle-prod\"])"), std::string::npos)
      << offering.body;
  EXPECT_EQ(count("billing_rate_cards"), 0);

  ok("POST", "/api/v1/rate-cards", billing_, kRateCard);
  ok("POST", "/api/v1/invoices/run", billing_, {{"month", "2026-11"}, {"finalise", true}});
  const auto note = call(
      "POST", "/api/v1/invoices/INV-FY2027-000001/credit-notes", billing_,
      {{"reason", "typo"}, {"lines", {{{"description", "x"}, {"amount_cents", 10'000'000'001}}}}});
  EXPECT_EQ(note.status, 400);
  EXPECT_NE(note.body.find("$.lines[0].amount_cents"), std::string::npos) << note.body;
}

TEST_P(Billing, AnImportMaySwapTwoRateCardsStartDatesButNotNameACardTwice) {
  Json early = kRateCard, late = kRateCard;
  late["id"] = "RC-SPRING";
  late["valid_from"] = "2027-03-01";
  late["hourly_rate_cents"] = 9900;
  ok("POST", "/api/v1/rate-cards", billing_, early);
  ok("POST", "/api/v1/rate-cards", billing_, late);
  std::swap(early["valid_from"], late["valid_from"]);
  ok("POST", "/api/v1/billing/import", billing_, {{"rate_cards", {early, late}}});
  const Json cards = ok("GET", "/api/v1/rate-cards", billing_);
  ASSERT_EQ(cards.size(), 2u) << cards.dump();
  EXPECT_EQ(cards[0]["id"], "RC-SPRING");
  EXPECT_EQ(cards[0]["valid_from"], "2026-09-01");
  EXPECT_EQ(cards[1]["id"], "RC-FY2027");
  EXPECT_EQ(cards[1]["valid_from"], "2027-03-01");

  Json again = late;
  again["hourly_rate_cents"] = 1;
  const auto twice =
      call("POST", "/api/v1/billing/import", billing_, {{"rate_cards", {late, again}}});
  EXPECT_EQ(twice.status, 422);
  EXPECT_NE(twice.body.find("$.rate_cards[1].id"), std::string::npos) << twice.body;
  EXPECT_EQ(ok("GET", "/api/v1/rate-cards", billing_), cards);
}

// An import's id that is already stored is a repeat only with the same values: an entry the API
// numbered before an import brought the same id would otherwise be counted "unchanged" and never
// stored or billed. The whole import is refused, naming the id and what differs.
TEST_P(Billing, AnImportThatWouldChangeAStoredEntryIsRefusedWhole) {
  import_customers();
  dispatch();
  ok("POST", "/api/v1/rate-cards", billing_, kRateCard);
  const Json posted = ok("POST", "/api/v1/time-entries", operator_,
                         {{"customer", "registrar"},
                          {"date", "2026-11-02"},
                          {"minutes", 30},
                          {"description", "restore test"}});
  const std::string id = posted["id"];
  const Json oncall = ok("POST", "/api/v1/oncall-requests", operator_,
                         {{"customer", "registrar"},
                          {"first_day", "2026-12-28"},
                          {"last_day", "2027-01-06"},
                          {"reason", "spring registration"}});

  Json same = {{"id", id},
               {"customer", "registrar"},
               {"date", "2026-11-02"},
               {"minutes", 30},
               {"description", "restore test"}};
  Json other = same;
  other["minutes"] = 90;
  other["description"] = "index rebuild";
  const Json fresh = {{"id", "imp-1"},
                      {"customer", "registrar"},
                      {"date", "2026-11-03"},
                      {"minutes", 15},
                      {"description", "x"}};
  Json moved = {{"id", oncall["id"]},
                {"customer", "registrar"},
                {"first_day", "2026-12-29"},
                {"last_day", "2027-01-06"},
                {"requested_on", oncall["requested_on"]},
                {"reason", "spring registration"}};
  const auto refused = call("POST", "/api/v1/billing/import", billing_,
                            {{"time_entries", {fresh, other}}, {"oncall_requests", {moved}}});
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_NE(refused.body.find("$.time_entries[1].id: time entry '" + id +
                              "' is already stored with other values (minutes, description)"),
            std::string::npos)
      << refused.body;
  EXPECT_NE(refused.body.find("$.oncall_requests[0].id: on-call request '" +
                              oncall["id"].get<std::string>() +
                              "' is already stored with other values (first_day)"),
            std::string::npos)
      << refused.body;
  EXPECT_EQ(count("billing_time_entries"), 1);
  EXPECT_EQ(ok("GET", "/api/v1/time-entries", billing_)[0]["minutes"], 30);

  // The same values again are a repeat.
  moved["first_day"] = "2026-12-28";
  const Json repeated = ok("POST", "/api/v1/billing/import", billing_,
                           {{"time_entries", {fresh, same}}, {"oncall_requests", {moved}}});
  EXPECT_EQ(repeated["time_entries"], Json({{"added", 1}, {"unchanged", 1}}));
  EXPECT_EQ(repeated["oncall_requests"], Json({{"added", 0}, {"unchanged", 1}}));
}

// Billing enabled after the workflows approved November's credits still bills them: its
// subscriber starts at the oldest event the host keeps.
TEST_P(Billing, CreditsApprovedBeforeBillingWasEnabledAreBilled) {
  start("availability,workflows");
  import_customers();
  approve_november_credits();
  start();
  dispatch();
  const Json credits = ok("GET", "/api/v1/billing/credits", billing_);
  ASSERT_EQ(credits.size(), 2u) << credits.dump();
  EXPECT_EQ(credits[0]["credit"], "WO:2026-11:oracle-prod:library");
  EXPECT_EQ(credits[0]["amount_cents"], 235);
  EXPECT_EQ(credits[1]["credit"], "WO:2026-11:oracle-prod:registrar");
  EXPECT_EQ(credits[1]["amount_cents"], 497);
}

// A customer deleted from the catalog in December still gets December's invoice: the month its
// subscription ends in, in full, with the work done for it that month; nothing after.
TEST_P(Billing, ACustomerDeletedFromTheCatalogGetsTheInvoiceOfItsLastMonth) {
  import_customers({{"id", "observatory"},
                    {"name", "Observatory"},
                    {"billing_code", "OBS-400"},
                    {"subscriptions",
                     {{{"service", "mysql-qa"},
                       {"monthly_charge_cents", 30000},
                       {"start", "2026-09-01T05:00:00Z"}}}}});
  ok("POST", "/api/v1/rate-cards", billing_, kRateCard);
  clock_.set("2026-12-02T18:00:00Z");
  ok("POST", "/api/v1/invoices/run", billing_, {{"month", "2026-11"}, {"finalise", true}});
  ok("POST", "/api/v1/time-entries", operator_,
     {{"customer", "observatory"},
      {"date", "2026-12-02"},
      {"minutes", 60},
      {"description", "export of the catalogue"},
      {"kind", "billable"}});
  const Json oncall = ok("POST", "/api/v1/oncall-requests", operator_,
                         {{"customer", "observatory"},
                          {"first_day", "2027-01-04"},
                          {"last_day", "2027-01-08"},
                          {"reason", "migration weekend"}});

  clock_.set("2026-12-10T18:00:00Z");
  EXPECT_EQ(call("DELETE", "/api/v1/customers/observatory", manager_).status, 204);
  dispatch();
  // Support booked for after the deletion is not given, so not billed.
  const Json requests = ok("GET", "/api/v1/oncall-requests?customer=observatory", billing_);
  ASSERT_EQ(requests.size(), 1u) << requests.dump();
  EXPECT_EQ(requests[0]["id"], oncall["id"]);
  EXPECT_EQ(requests[0]["state"], "cancelled");

  clock_.set("2027-01-04T18:00:00Z");
  ok("POST", "/api/v1/invoices/run", billing_, {{"month", "2026-12"}, {"finalise", true}});
  const Json december = ok("GET", "/api/v1/invoices/2026-12:observatory", billing_);
  EXPECT_EQ(december["state"], "final");
  EXPECT_EQ(december["customer"]["name"], "Observatory");
  EXPECT_EQ(amounts_of(december, "subscription"), std::vector<std::int64_t>{30000});
  EXPECT_EQ(amounts_of(december, "time"), std::vector<std::int64_t>{9500});
  EXPECT_EQ(december["total_cents"], 39500);
  const Json subscription = lines_by_kind(december, "subscription").begin()->second;
  EXPECT_EQ(subscription["sources"]["subscription"]["end"], "2026-12-10T18:00:00Z");

  clock_.set("2027-02-03T18:00:00Z");
  ok("POST", "/api/v1/invoices/run", billing_, {{"month", "2027-01"}, {"finalise", true}});
  EXPECT_EQ(call("GET", "/api/v1/invoices/2027-01:observatory", billing_).status, 404);
  // Work recorded for it later is refused: it is no longer a customer.
  EXPECT_EQ(call("POST", "/api/v1/time-entries", operator_,
                 {{"customer", "observatory"},
                  {"date", "2027-02-01"},
                  {"minutes", 15},
                  {"description", "late"}})
                .status,
            422);
}

// A month finalised through the API (or whose files a crash or a full disk kept from being
// written) has no export yet: the monthly job writes it, beside the month it finalises.
TEST_P(Billing, TheMonthlyJobExportsEveryFinalMonthThatHasNoExportYet) {
  import_customers();
  ok("POST", "/api/v1/rate-cards", billing_, kRateCard);
  const Json run =
      ok("POST", "/api/v1/invoices/run", billing_, {{"month", "2026-11"}, {"finalise", true}});
  const std::int64_t november = run["invoices"];
  ASSERT_GT(november, 0);
  EXPECT_EQ(ok("GET", "/api/v1/exports", billing_).size(), 0u);

  clock_.set("2027-01-05T18:00:00Z");
  const fs::path out = dir_.path() / "exports";
  // Finalising a month is billing's: an operator, who may run the other jobs, may not run
  // this one by hand, and nothing is finalised or written.
  const std::string job = "/api/v1/jobs/billing_export.monthly/run";
  const HttpResult refused = call("POST", job, operator_);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_EQ(Json::parse(refused.body)["detail"],
            "the job 'billing_export.monthly' needs the role 'billing'");
  EXPECT_EQ(ok("GET", "/api/v1/invoices?month=2026-12", billing_).size(), 0u);
  EXPECT_FALSE(fs::exists(out));
  const Json jobs = ok("GET", "/api/v1/jobs", operator_)["jobs"];
  ASSERT_FALSE(jobs.empty());
  for (const Json& j : jobs) {
    const std::string name = j["name"];
    EXPECT_EQ(j["role"], name.starts_with("billing_export.") ? "billing" : "operator") << name;
  }
  const std::string outcome = ok("POST", job, billing_)["output"];
  const std::int64_t december = ok("GET", "/api/v1/invoices?month=2026-12", billing_).size();
  EXPECT_EQ(outcome, "exported 2026-11 (" + std::to_string(november) +
                         " documents, not exported before); 2026-12 (" + std::to_string(december) +
                         " documents) to " + out.string());
  EXPECT_TRUE(complete_set(out / "invoices-2026-11", november));
  EXPECT_TRUE(complete_set(out / "invoices-2026-12", december));
  EXPECT_TRUE(fs::exists(out / "invoices-2026-11" / "INV-FY2027-000001.xml"));

  // Once exported, a month is left alone; the previous month is exported again unchanged.
  EXPECT_EQ(server_->jobs().run_now("billing_export.monthly"),
            "exported 2026-12 (" + std::to_string(december) + " documents) to " + out.string());
  const Json exports = ok("GET", "/api/v1/exports", billing_);
  ASSERT_EQ(exports.size(), 3u);
  EXPECT_EQ(exports[2]["month"], "2026-12");
  EXPECT_EQ(exports[2]["written"], false);

  // The server was down on 5 February and 5 March (or those runs failed): the next run
  // finalises and exports January, February and March in order, not March alone (which
  // months finalised in order would refuse, run after run).
  clock_.set("2027-04-05T18:00:00Z");
  const std::string caught_up = server_->jobs().run_now("billing_export.monthly");
  std::string expected = "exported ";
  for (const std::string m : {"2027-01", "2027-02", "2027-03"}) {
    const auto documents = ok("GET", "/api/v1/invoices?month=" + m, billing_).size();
    EXPECT_GT(documents, 0u) << m;
    EXPECT_TRUE(complete_set(out / ("invoices-" + m), static_cast<std::int64_t>(documents))) << m;
    expected += (m == "2027-01" ? "" : "; ") + m + " (" + std::to_string(documents) + " documents" +
                (m == "2027-03" ? "" : ", not exported before") + ")";
  }
  EXPECT_EQ(caught_up, expected + " to " + out.string());
}

INSTANTIATE_TEST_SUITE_P(Stores, Billing, testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace slmhub::test

namespace slmhub::test {
namespace {

// `slmhub export invoices` killed with SIGKILL at a random moment of its run, round after round
// from the same store: each time the month's directory is absent or complete, never partial,
// and the store intact; the next run completes it with gapless numbers; a further run writes
// nothing.
TEST(BillingExportCrash, KillNineLeavesNoFilesOrAllOfThemAndTheNextRunCompletes) {
  TempDir dir;
  ServerProcess server(dir.path());
  server.start();
  constexpr int kCustomers = 1500;
  Json dataset = {{"timezone", "America/Chicago"},
                  {"fiscal_year_start_month", 9},
                  {"services",
                   {{{"id", "oracle-prod"},
                     {"name", "Oracle"},
                     {"environment", "production"},
                     {"hours", "24x7"},
                     {"target_percent", 99.75}}}},
                  {"customers", Json::array()}};
  Json entries = Json::array();
  for (int i = 0; i < kCustomers; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "c%05d", i);
    dataset["customers"].push_back({{"id", id},
                                    {"name", std::string("Customer ") + id},
                                    {"billing_code", std::string("BC-") + id},
                                    {"subscriptions",
                                     {{{"service", "oracle-prod"},
                                       {"monthly_charge_cents", 100000 + i},
                                       {"start", "2026-09-01T05:00:00Z"}}}},
                                    {"contacts",
                                     {{{"role", "billing"},
                                       {"name", "Billing"},
                                       {"email", std::string(id) + "@example.org"}}}}});
    for (int k = 0; k < 3; ++k) {
      entries.push_back({{"id", std::string(id) + "-" + std::to_string(k)},
                         {"customer", id},
                         {"date", "2026-10-0" + std::to_string(k + 1)},
                         {"minutes", 20 + k},
                         {"description", "support"},
                         {"kind", "billable"}});
    }
  }
  ASSERT_EQ(
      http(server.port(), "POST", "/api/v1/import", dataset.dump(), server.admin_token()).status,
      200);
  const auto imported = http(server.port(), "POST", "/api/v1/billing/import",
                             Json({{"rate_cards", {kRateCard}}, {"time_entries", entries}}).dump(),
                             server.admin_token());
  ASSERT_EQ(imported.status, 200) << imported.body;
  server.stop();

  const fs::path out = dir.path() / "accounting";
  const fs::path month_dir = out / "invoices-2026-10";
  const fs::path db = dir.path() / "slmhub.db";
  // Each round starts from the store as imported (the month not final), kills a first export
  // at a random moment, then lets a second one complete.
  const fs::path pristine = dir.path() / "pristine";
  fs::create_directories(pristine);
  for (const char* f : {"slmhub.db", "slmhub.db-wal", "slmhub.db-shm"}) {
    if (fs::exists(dir.path() / f)) fs::copy_file(dir.path() / f, pristine / f);
  }
  std::vector<std::string> argv = {"env"};
  for (const auto& [k, v] : server.env()) argv.push_back(k + "=" + v);
  argv.insert(argv.end(),
              {SLMHUB_BINARY, "export", "invoices", "--month", "2026-10", "--out", out.string()});
  CrashSchedule schedule(std::chrono::milliseconds(30), std::chrono::milliseconds(1500));
  SCOPED_TRACE(schedule.describe());
  int absent = 0;
  for (int round = 0; round < schedule.rounds(); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    fs::remove_all(out);
    for (const char* f : {"slmhub.db", "slmhub.db-wal", "slmhub.db-shm"}) {
      fs::remove(dir.path() / f);
      if (fs::exists(pristine / f)) fs::copy_file(pristine / f, dir.path() / f);
    }
    const auto delay = schedule.next();
    const pid_t pid = spawn(argv, -1, dir.path() / "export.out", dir.path() / "export.err");
    std::this_thread::sleep_for(delay);
    ::kill(pid, SIGKILL);
    wait_exit(pid);
    if (!fs::exists(month_dir)) {
      ++absent;
    } else {
      EXPECT_TRUE(complete_set(month_dir, kCustomers)) << "killed after " << delay.count() << " ms";
    }
    ASSERT_EQ(sqlite_integrity(db), "ok");

    const auto done = run_slmhub(
        {"export", "invoices", "--month", "2026-10", "--out", out.string()}, server.env());
    EXPECT_EQ(done.status, 0) << done.err;
    EXPECT_TRUE(complete_set(month_dir, kCustomers));
    std::set<std::string> left;
    for (const auto& f : fs::directory_iterator(out)) left.insert(f.path().filename().string());
    EXPECT_EQ(left, std::set<std::string>{"invoices-2026-10"});  // no partial directory behind
    const auto numbers = run_shell("sqlite3 '" + db.string() +
                                   "' \"SELECT COUNT(*), COUNT(DISTINCT number), MIN(number), "
                                   "MAX(number) FROM billing_documents WHERE state = 'final'\"");
    EXPECT_EQ(numbers.second, "1500|1500|INV-FY2027-000001|INV-FY2027-001500\n");
    ASSERT_EQ(sqlite_integrity(db), "ok");
  }
  EXPECT_GT(absent, 0) << "no kill landed before the files appeared";

  const std::string csv_before = read_text(month_dir / "invoices-2026-10.csv");
  const auto again =
      run_slmhub({"export", "invoices", "--month", "2026-10", "--out", out.string()}, server.env());
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_TRUE(again.out.starts_with("unchanged: ")) << again.out;
  EXPECT_EQ(read_text(month_dir / "invoices-2026-10.csv"), csv_before);

  const auto bad =
      run_slmhub({"export", "invoices", "--month", "2026-13", "--out", out.string()}, server.env());
  EXPECT_EQ(bad.status, 64);
  EXPECT_NE(bad.err.find("--month"), std::string::npos) << bad.err;
  const auto blocked = run_slmhub(
      {"export", "invoices", "--month", "2026-10", "--out", (month_dir / "manifest.json").string()},
      server.env());
  EXPECT_EQ(blocked.status, 73) << blocked.err;
  // A place that takes no new directory fails before the month is finalised: no number is
  // used, and the month exports once the place is fixed.
  const auto unwritable =
      run_slmhub({"export", "invoices", "--month", "2026-11", "--out", "/proc/self"}, server.env());
  EXPECT_EQ(unwritable.status, 73) << unwritable.err;
  EXPECT_NE(unwritable.err.find("/proc/self/.invoices-2026-11.partial-"), std::string::npos)
      << unwritable.err;
  const auto november = run_shell("sqlite3 '" + db.string() +
                                  "' \"SELECT (SELECT COUNT(*) FROM billing_months WHERE month = "
                                  "'2026-11'), (SELECT COUNT(*) FROM billing_documents WHERE "
                                  "month = '2026-11' AND state = 'final')\"");
  EXPECT_EQ(november.second, "0|0\n");
}

}  // namespace
}  // namespace slmhub::test
