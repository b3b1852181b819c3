// Tech Alerts through the real server (issue [alerts] acceptance): maintenance scheduled,
// moved and cancelled over the API reaches the planned-outages list and the subscribed
// customers' technical and outage contacts, exactly once each, through a real SMTP server
// (aiosmtpd with STARTTLS and AUTH); the notice rules re-classify or refuse a QA window as
// configured; an SMTP outage loses and doubles nothing; a failing webhook receiver gets
// retries that the delivery log shows; the public pages render in headless Chromium and the
// calendar parses with Python's icalendar; broken templates stop the plugin at load.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "chromium.hpp"
#include "mime.hpp"
#include "postgres_cluster.hpp"
#include "process.hpp"
#include "server_process.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/json.hpp"
#include "slmhub/time.hpp"
#include "smtp_recorder.hpp"

namespace slmhub::test {
namespace {

using namespace std::chrono_literals;

const char* const kZone = "America/Chicago";

// Local wall time `days` days from now at `hour`:00 in Chicago, moved forward to the next
// Sunday when `sunday` (outside business hours for production maintenance), else past a
// weekend (a business day, whatever day the test runs on).
Instant local_at(int days, int hour, bool sunday) {
  const auto* zone = find_zone(kZone);
  auto day =
      date::sys_days{local_date(
          std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()),
          zone)} +
      date::days{days};
  const auto weekend = [](date::weekday w) { return w == date::Saturday || w == date::Sunday; };
  while (sunday ? date::weekday{day} != date::Sunday : weekend(date::weekday{day})) {
    day += date::days{1};
  }
  return local_to_utc(date::local_seconds{day.time_since_epoch()} + std::chrono::hours(hour), zone);
}

std::string dataset() {
  Json contacts_acme = Json::array({
      {{"role", "technical_primary"}, {"name", "T One"}, {"email", "t1@acme.example.org"}},
      {{"role", "technical_secondary"}, {"name", "T Two"}, {"email", "t2@acme.example.org"}},
      {{"role", "outage"}, {"name", "Outage list"}, {"email", "outages@acme.example.org"}},
      {{"role", "billing"}, {"name", "Billing"}, {"email", "billing@acme.example.org"}},
      {{"role", "executive"}, {"name", "Exec"}, {"email", "exec@acme.example.org"}},
  });
  // One address in two roles, and the planned-outages list itself: told once.
  Json contacts_beta = Json::array({
      {{"role", "technical_primary"}, {"name", "Shared"}, {"email", "shared@example.org"}},
      {{"role", "outage"}, {"name", "Shared"}, {"email", "Shared@example.org"}},
      {{"role", "technical_secondary"}, {"name", "List"}, {"email", "planned-outages@example.org"}},
  });
  Json contacts_qa = Json::array(
      {{{"role", "technical_primary"}, {"name", "QA"}, {"email", "qa@gamma.example.org"}}});
  Json business = {{"id", "business"},
                   {"timezone", kZone},
                   {"hours",
                    {{"mon", {"08:00", "17:00"}},
                     {"tue", {"08:00", "17:00"}},
                     {"wed", {"08:00", "17:00"}},
                     {"thu", {"08:00", "17:00"}},
                     {"fri", {"08:00", "17:00"}}}}};
  Json d = {{"timezone", kZone},
            {"provider_calendar", "business"},
            {"calendars", Json::array({business})},
            {"services", Json::array({{{"id", "oracle-prod"},
                                       {"name", "Oracle <Production>"},
                                       {"environment", "production"},
                                       {"hours", "24x7"},
                                       {"target_percent", 99.75}},
                                      {{"id", "mysql-qa"},
                                       {"name", "MySQL QA"},
                                       {"environment", "qa"},
                                       {"hours", "business"},
                                       {"target_percent", 99.5}}})},
            {"customers",
             Json::array(
                 {{{"id", "acme"},
                   {"name", "Acme"},
                   {"billing_code", "A1"},
                   {"subscriptions",
                    Json::array({{{"service", "oracle-prod"}, {"monthly_charge_cents", 100000}}})},
                   {"contacts", contacts_acme}},
                  {{"id", "beta"},
                   {"name", "Beta"},
                   {"billing_code", "B1"},
                   {"subscriptions",
                    Json::array({{{"service", "oracle-prod"}, {"monthly_charge_cents", 50000}}})},
                   {"contacts", contacts_beta}},
                  {{"id", "gamma"},
                   {"name", "Gamma"},
                   {"billing_code", "G1"},
                   {"subscriptions",
                    Json::array({{{"service", "mysql-qa"}, {"monthly_charge_cents", 10000}}})},
                   {"contacts", contacts_qa}}})}};
  return d.dump();
}

std::map<std::string, std::string> alert_env(int smtp_port, const std::string& ca_file, bool tls) {
  std::map<std::string, std::string> env{
      {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_HOST", "127.0.0.1"},
      {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_PORT", std::to_string(smtp_port)},
      {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_FROM", "alerts@example.org"},
      {"SLMHUB_PLUGINS_TECH_ALERTS_LISTS_PLANNED_OUTAGES", "planned-outages@example.org"},
      {"SLMHUB_PLUGINS_TECH_ALERTS_LISTS_PROBLEMS", "problems@example.org"},
      {"SLMHUB_PLUGINS_TECH_ALERTS_PROVIDER_NAME", "Example Data Centre"},
      // The tests run the notices job by hand.
      {"SLMHUB_PLUGINS_TECH_ALERTS_NOTICES_SCHEDULE", "0 0 1 1 *"},
      {"SLMHUB_OUTBOX_INITIAL_BACKOFF_SECONDS", "1"},
      {"SLMHUB_OUTBOX_MAX_BACKOFF_SECONDS", "2"},
      {"SLMHUB_OUTBOX_MAX_ATTEMPTS", "100"}};
  if (tls) {
    env["SLMHUB_PLUGINS_TECH_ALERTS_SMTP_TLS"] = "starttls";
    env["SLMHUB_PLUGINS_TECH_ALERTS_SMTP_CA_FILE"] = ca_file;
    env["SLMHUB_PLUGINS_TECH_ALERTS_SMTP_USERNAME"] = "alerts";
    env["SLMHUB_SECRET_TECH_ALERTS_SMTP_PASSWORD"] = "s3cret";
  } else {
    env["SLMHUB_PLUGINS_TECH_ALERTS_SMTP_TLS"] = "none";
  }
  return env;
}

// A header field's value as a mail client shows it: unfolded, encoded words decoded.
std::string header(const std::string& data, const std::string& name) {
  std::string lower = name;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return mail::parse_mail(data).header(lower);
}

// Recipients of `mails` whose Subject contains `word`, with how often each got one.
std::map<std::string, int> recipients(const std::vector<RecordedMail>& mails,
                                      const std::string& word) {
  std::map<std::string, int> out;
  for (const auto& m : mails) {
    if (header(m.data, "Subject").find(word) == std::string::npos) continue;
    for (const auto& r : m.rcpt_to) ++out[r];
  }
  return out;
}

const std::map<std::string, int> kOracleAudience{{"outages@acme.example.org", 1},
                                                 {"planned-outages@example.org", 1},
                                                 {"shared@example.org", 1},
                                                 {"t1@acme.example.org", 1},
                                                 {"t2@acme.example.org", 1}};

class TechAlerts : public testing::Test {
 protected:
  void start(std::map<std::string, std::string> env) {
    server_ = std::make_unique<ServerProcess>(dir_.path(), std::move(env));
    server_->start();
    const auto r = call("POST", "/api/v1/import", dataset());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  HttpResult call(const std::string& method, const std::string& path,
                  const std::string& body = {}) {
    return http(server_->port(), method, path, body, server_->admin_token());
  }
  Json window(const std::string& id, const std::string& service, const std::string& category,
              Instant start, Instant end) {
    return {{"id", id},
            {"service", service},
            {"category", category},
            {"start", format_instant(start)},
            {"end", format_instant(end)}};
  }
  // Waits until every delivery of the alerts is sent (or the time is up).
  Json deliveries(const std::string& alert) {
    Json out;
    for (int i = 0; i < 300; ++i) {
      out = Json::parse(call("GET", "/api/v1/alerts/" + alert + "/deliveries").body);
      bool done = true;
      for (const auto& d : out["deliveries"])
        done = done && (d["state"] == "sent" || d["state"] == "opted_out");
      if (done) break;
      std::this_thread::sleep_for(100ms);
    }
    return out["deliveries"];
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(TechAlerts, ScheduledMovedAndCancelledOutageReachesEachRecipientOnceEachTime) {
  SmtpRecorderOptions options;
  options.tls = SmtpRecorderOptions::Tls::starttls;
  options.username = "alerts";
  options.password = "s3cret";
  SmtpRecorder smtp(options);
  start(alert_env(smtp.port(), smtp.ca_file(), true));

  const Instant start_at = local_at(15, 1, true);  // a Sunday night, 15+ days ahead
  auto r =
      call("POST", "/api/v1/maintenance",
           window("CHG0000001", "oracle-prod", "planned_outage", start_at, start_at + 3h).dump());
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Json::parse(r.body)["category"], "planned_outage") << r.body;
  EXPECT_EQ(Json::parse(call("GET", "/api/v1/maintenance-flags?window=CHG0000001").body)["flags"],
            Json::array());

  auto mails = smtp.wait_for(5, 30s);
  ASSERT_EQ(mails.size(), 5u) << smtp.log() << server_->log();
  EXPECT_EQ(recipients(mails, "Planned outage"), kOracleAudience);
  for (const auto& m : mails) {
    EXPECT_TRUE(m.tls);
    EXPECT_EQ(m.auth_user, "alerts");
    EXPECT_EQ(m.rcpt_to.size(), 1u);
    EXPECT_EQ(header(m.data, "Auto-Submitted"), "auto-generated");
    // Each mail is the recipient's own: its address, and for a person (not the configured
    // list) its unsubscribe link in both parts.
    const auto parsed = mail::parse_mail(m.data);
    EXPECT_NE(parsed.text.find("Sent to " + m.rcpt_to.at(0)), std::string::npos) << parsed.text;
    if (m.rcpt_to.at(0) == "planned-outages@example.org") {
      EXPECT_EQ(header(m.data, "List-Unsubscribe"), "");
      EXPECT_EQ(parsed.text.find("Unsubscribe"), std::string::npos) << parsed.text;
      continue;
    }
    EXPECT_EQ(header(m.data, "List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    EXPECT_NE(header(m.data, "List-Unsubscribe").find("/alerts/unsubscribe?address="),
              std::string::npos);
    EXPECT_NE(m.data.find("multipart/alternative"), std::string::npos);
    EXPECT_NE(m.data.find("CHG0000001"), std::string::npos);
    const std::string link = header(m.data, "List-Unsubscribe");
    const std::string url = link.substr(1, link.size() - 2);
    EXPECT_NE(parsed.text.find(url), std::string::npos) << parsed.text;
    std::string escaped = url;
    escaped.replace(escaped.find('&'), 1, "&amp;");
    EXPECT_NE(parsed.html.find(escaped), std::string::npos) << parsed.html;
  }

  // Moved by an hour: one update to each.
  r = call(
      "PUT", "/api/v1/maintenance/CHG0000001",
      window("CHG0000001", "oracle-prod", "planned_outage", start_at + 1h, start_at + 4h).dump());
  ASSERT_EQ(r.status, 200) << r.body;
  mails = smtp.wait_for(10, 30s);
  ASSERT_EQ(mails.size(), 10u) << server_->log();
  EXPECT_EQ(recipients(mails, "Update:"), kOracleAudience);

  // The same PUT again changes nothing and tells nobody.
  r = call(
      "PUT", "/api/v1/maintenance/CHG0000001",
      window("CHG0000001", "oracle-prod", "planned_outage", start_at + 1h, start_at + 4h).dump());
  ASSERT_EQ(r.status, 200) << r.body;

  Json cancelled =
      window("CHG0000001", "oracle-prod", "planned_outage", start_at + 1h, start_at + 4h);
  cancelled["status"] = "cancelled";
  r = call("PUT", "/api/v1/maintenance/CHG0000001", cancelled.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  mails = smtp.wait_for(15, 30s);
  std::this_thread::sleep_for(1s);  // a duplicate would arrive now
  mails = smtp.messages();
  ASSERT_EQ(mails.size(), 15u) << server_->log();
  EXPECT_EQ(recipients(mails, "Cancelled:"), kOracleAudience);

  const Json alerts = Json::parse(call("GET", "/api/v1/alerts?kind=planned_outage").body)["alerts"];
  ASSERT_EQ(alerts.size(), 3u) << alerts.dump();
  EXPECT_EQ(alerts[0]["is_cancellation"], true);
  EXPECT_EQ(alerts[0]["sequence"], 2);
  EXPECT_EQ(alerts[0]["refers_to"], alerts[1]["id"]);
  EXPECT_EQ(alerts[1]["is_update"], true);
  for (const auto& a : alerts) {
    for (const auto& d : deliveries(a["id"].get<std::string>())) {
      EXPECT_EQ(d["state"], "sent") << d.dump();
      EXPECT_EQ(d["attempts"], 1) << d.dump();
    }
  }

  // Last week's window recorded as history, then withdrawn as recorded in error: nobody was
  // told of it, so nobody is told it is cancelled.
  const Instant past = local_at(-7, 1, true);
  Json history = window("CHG0000002", "oracle-prod", "planned_outage", past, past + 2h);
  history["status"] = "complete";
  r = call("POST", "/api/v1/maintenance", history.dump());
  ASSERT_EQ(r.status, 201) << r.body;
  history["status"] = "cancelled";
  r = call("PUT", "/api/v1/maintenance/CHG0000002", history.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  std::this_thread::sleep_for(1s);  // a notice would arrive now
  EXPECT_EQ(smtp.messages().size(), 15u) << server_->log();
  EXPECT_EQ(Json::parse(call("GET", "/api/v1/alerts?kind=planned_outage").body)["alerts"].size(),
            3u);
}

// The same on PostgreSQL: the plugin's tables, its booleans and epochs read back, and the
// policy inside the core's transaction.
TEST_F(TechAlerts, OnPostgreSqlAnOutageIsAnnouncedMovedAndCancelledOnce) {
  SmtpRecorder smtp;
  auto env = alert_env(smtp.port(), "", false);
  env["SLMHUB_DB_URL"] = shared_cluster().create_database("tech_alerts_outage");
  start(env);
  const Instant start_at = local_at(15, 1, true);
  Json w = window("CHG0000031", "oracle-prod", "planned_outage", start_at, start_at + 3h);
  ASSERT_EQ(call("POST", "/api/v1/maintenance", w.dump()).status, 201);
  ASSERT_EQ(smtp.wait_for(5, 30s).size(), 5u) << server_->log();
  w["end"] = format_instant(start_at + 4h);
  ASSERT_EQ(call("PUT", "/api/v1/maintenance/CHG0000031", w.dump()).status, 200);
  // Told before the next change (a handler reads the window as it is when it runs).
  ASSERT_EQ(smtp.wait_for(10, 30s).size(), 10u) << server_->log();
  w["status"] = "cancelled";
  ASSERT_EQ(call("PUT", "/api/v1/maintenance/CHG0000031", w.dump()).status, 200);
  auto mails = smtp.wait_for(15, 30s);
  std::this_thread::sleep_for(1s);
  mails = smtp.messages();
  ASSERT_EQ(mails.size(), 15u) << server_->log();
  EXPECT_EQ(recipients(mails, "Update:"), kOracleAudience);
  EXPECT_EQ(recipients(mails, "Cancelled:"), kOracleAudience);
  const Json alerts = Json::parse(call("GET", "/api/v1/alerts").body)["alerts"];
  ASSERT_EQ(alerts.size(), 3u);
  EXPECT_EQ(alerts[0]["is_cancellation"], true);
  EXPECT_EQ(alerts[0]["sequence"], 2);
  for (const auto& d : deliveries(alerts[0]["id"].get<std::string>()))
    EXPECT_EQ(d["state"], "sent") << d.dump();
  const auto ics = http(server_->port(), "GET", "/maintenance.ics");
  EXPECT_NE(ics.body.find("SEQUENCE:2"), std::string::npos) << ics.body;
}

TEST_F(TechAlerts, ShortNoticeQaWindowIsReclassifiedAndFlaggedOrRefused) {
  SmtpRecorder smtp;
  start(alert_env(smtp.port(), "", false));
  // Three to five days ahead (past a weekend), in business hours: at most three business
  // days' notice, and a QA planned outage needs 5.
  const Instant start_at = local_at(3, 10, false);
  auto r = call("POST", "/api/v1/maintenance",
                window("CHG0000002", "mysql-qa", "planned_outage", start_at, start_at + 1h).dump());
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Json::parse(r.body)["category"], "emergency") << r.body;
  EXPECT_TRUE(Json::parse(r.body).contains("announced_at")) << r.body;
  const Json flags =
      Json::parse(call("GET", "/api/v1/maintenance-flags?window=CHG0000002").body)["flags"];
  ASSERT_GE(flags.size(), 1u) << flags.dump();
  EXPECT_EQ(flags[0]["rule"], "notice.planned_outage");
  EXPECT_EQ(flags[0]["declared_category"], "planned_outage");
  EXPECT_EQ(flags[0]["category"], "emergency");
  // The emergency goes to the problems list and the QA customer.
  const auto mails = smtp.wait_for(2, 30s);
  EXPECT_EQ(recipients(mails, "Emergency"),
            (std::map<std::string, int>{{"problems@example.org", 1}, {"qa@gamma.example.org", 1}}))
      << server_->log();
  // A writer that sends its own category again (as the ServiceNow sync does with every
  // update, down to closing the change) keeps the re-classification.
  Json again = window("CHG0000002", "mysql-qa", "planned_outage", start_at, start_at + 1h);
  r = call("PUT", "/api/v1/maintenance/CHG0000002", again.dump());
  EXPECT_EQ(Json::parse(r.body)["category"], "emergency") << r.body;
  again["status"] = "complete";
  r = call("PUT", "/api/v1/maintenance/CHG0000002", again.dump());
  EXPECT_EQ(Json::parse(r.body)["category"], "emergency") << r.body;

  // A production outage announced a month ago, then moved to within 14 days by a writer that
  // sends the stored announcement back (a read-modify-write; the ServiceNow sync sends the
  // change's creation): customers learn of the new start only now, so it is short notice
  // (flagged; under 5 business days also re-classified as an emergency).
  const auto notice_flagged = [&](const std::string& window = "CHG0000004") {
    const Json f =
        Json::parse(call("GET", "/api/v1/maintenance-flags?window=" + window).body)["flags"];
    for (const auto& flag : f) {
      if (flag["rule"] == "notice.planned_outage") return true;
    }
    return false;
  };
  const Instant far = local_at(20, 2, true);
  Json moving = window("CHG0000004", "oracle-prod", "planned_outage", far, far + 1h);
  moving["announced_at"] = format_instant(
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()) -
      std::chrono::hours(30 * 24));
  r = call("POST", "/api/v1/maintenance", moving.dump());
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Json::parse(r.body)["category"], "planned_outage") << r.body;
  EXPECT_FALSE(notice_flagged());
  const Instant near = local_at(3, 2, true);
  moving["start"] = format_instant(near);
  moving["end"] = format_instant(near + 1h);
  r = call("PUT", "/api/v1/maintenance/CHG0000004", moving.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(notice_flagged()) << r.body;
  const Json announced = Json::parse(r.body)["announced_at"];
  EXPECT_NE(announced, moving["announced_at"]) << r.body;
  // The sync's next update sends the change's creation again, and the window shrinks: the
  // announcement on record stands, and so does the short notice.
  moving["end"] = format_instant(near + 30min);
  r = call("PUT", "/api/v1/maintenance/CHG0000004", moving.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json::parse(r.body)["announced_at"], announced) << r.body;
  EXPECT_TRUE(notice_flagged()) << r.body;

  // A window announced a month ago as non-disruptive, declared a planned outage three days
  // before it starts: customers learn only now that the service goes down, so the outage is
  // short notice, not pre-approved on the old announcement.
  Json quiet = window("CHG0000006", "oracle-prod", "planned_non_disruptive", near, near + 1h);
  quiet["announced_at"] = moving["announced_at"];
  r = call("POST", "/api/v1/maintenance", quiet.dump());
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_FALSE(notice_flagged("CHG0000006"));
  quiet["category"] = "planned_outage";
  r = call("PUT", "/api/v1/maintenance/CHG0000006", quiet.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(notice_flagged("CHG0000006")) << r.body;
  EXPECT_NE(Json::parse(r.body)["announced_at"], quiet["announced_at"]) << r.body;

  // A window recorded under way (history: not announced) and then shrunk to start in the
  // future (no news: a later start, an earlier end) is announced when it becomes scheduling,
  // and checked against that.
  const Instant wall =
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  const Instant soon = local_at(1, 10, false);
  r = call("POST", "/api/v1/maintenance",
           window("CHG0000005", "mysql-qa", "planned_outage", wall - 2h, soon + 2h).dump());
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_FALSE(Json::parse(r.body).contains("announced_at")) << r.body;
  r = call("PUT", "/api/v1/maintenance/CHG0000005",
           window("CHG0000005", "mysql-qa", "planned_outage", soon, soon + 1h).dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(Json::parse(r.body).contains("announced_at")) << r.body;
  EXPECT_EQ(Json::parse(r.body)["category"], "emergency") << r.body;
  server_->stop();

  auto env = server_->env();
  env["SLMHUB_PLUGINS_TECH_ALERTS_MAINTENANCE_VIOLATIONS"] = "refuse";
  ServerProcess strict(dir_.path(), env);
  strict.start();
  r = http(strict.port(), "POST", "/api/v1/maintenance",
           window("CHG0000003", "mysql-qa", "planned_outage", start_at, start_at + 1h).dump(),
           strict.admin_token());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("notice.planned_outage"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("$.category"), std::string::npos) << r.body;
  EXPECT_EQ(
      http(strict.port(), "GET", "/api/v1/maintenance/CHG0000003", "", strict.admin_token()).status,
      404);
}

TEST_F(TechAlerts, SmtpDownThenBackDeliversEveryAlertOnce) {
  std::optional<SmtpRecorder> smtp(std::in_place);
  const int port = smtp->port();
  smtp.reset();  // down
  start(alert_env(port, "", false));
  for (int i = 0; i < 3; ++i) {
    Json body = {{"kind", "outage"},
                 {"title", "Outage " + std::to_string(i)},
                 {"summary", "Oracle is down"},
                 {"services", {"oracle-prod"}}};
    ASSERT_EQ(call("POST", "/api/v1/alerts", body.dump()).status, 201);
  }
  // Failed attempts are logged while the server is away.
  Json log;
  for (int i = 0; i < 100; ++i) {
    log = Json::parse(call("GET", "/api/v1/alerts/TA-000001/deliveries").body)["deliveries"];
    if (!log.empty() && log[0]["attempts"].get<int>() >= 2) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log[0]["state"], "retrying") << log.dump();
  EXPECT_GE(log[0]["attempts"].get<int>(), 2) << log.dump();

  SmtpRecorderOptions back;
  back.port = port;
  smtp.emplace(back);
  // 3 alerts × (the problems list + the 5 oracle contacts of kOracleAudience).
  auto mails = smtp->wait_for(18, 60s);
  std::this_thread::sleep_for(3s);
  mails = smtp->messages();
  EXPECT_EQ(mails.size(), 18u) << server_->log();
  std::map<std::string, int> per;
  for (const auto& m : mails) ++per[header(m.data, "Subject") + " " + m.rcpt_to.at(0)];
  for (const auto& [key, n] : per) EXPECT_EQ(n, 1) << key;
}

TEST_F(TechAlerts, FailingWebhookIsRetriedWithBackoffAndLogged) {
  const std::string script = (dir_.path() / "receiver.py").string();
  std::ofstream(script) << R"(import http.server, json, sys, threading
count = {'n': 0}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        count['n'] += 1
        status = 500 if count['n'] <= 2 else 200
        with open(sys.argv[1], 'a') as f:
            f.write(json.dumps({'status': status, 'body': body.decode(),
                                'ts': self.headers.get('X-Slmhub-Timestamp'),
                                'sig': self.headers.get('X-Slmhub-Signature'),
                                'delivery': self.headers.get('X-Slmhub-Delivery')}) + '\n')
        self.send_response(status); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
print('ready', s.server_address[1], flush=True)
threading.Thread(target=s.serve_forever, daemon=True).start()
sys.stdin.read()
)";
  const std::string record = (dir_.path() / "received.jsonl").string();
  ScriptServer receiver({script, record}, dir_.path(), "webhook receiver");
  auto env = alert_env(1, "", false);
  env.erase("SLMHUB_PLUGINS_TECH_ALERTS_SMTP_HOST");  // webhooks only
  env["SLMHUB_PLUGINS_TECH_ALERTS_WEBHOOK_URLS"] =
      "http://127.0.0.1:" + std::to_string(receiver.port()) + "/hook";
  env["SLMHUB_PLUGINS_TECH_ALERTS_WEBHOOK_FORMAT"] = "slack";
  env["SLMHUB_SECRET_TECH_ALERTS_WEBHOOK_SECRET"] = "hook-key";
  start(env);
  Json body = {{"kind", "restoration"},
               {"title", "Oracle is back"},
               {"summary", "Restored at 10:00"},
               {"services", {"oracle-prod"}}};
  ASSERT_EQ(call("POST", "/api/v1/alerts", body.dump()).status, 201);
  const Json d = deliveries("TA-000001");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0]["state"], "sent") << d.dump() << server_->log();
  EXPECT_EQ(d[0]["attempts"], 3) << d.dump();
  ASSERT_EQ(d[0]["log"].size(), 3u) << d.dump();
  EXPECT_EQ(d[0]["log"][0]["outcome"], "failed");
  EXPECT_NE(d[0]["log"][0]["detail"].get<std::string>().find("500"), std::string::npos);
  EXPECT_EQ(d[0]["log"][2]["outcome"], "delivered");
  // Back-off: the second retry waited longer than the first.
  const auto t0 = parse_instant(d[0]["log"][0]["at"].get<std::string>());
  const auto t2 = parse_instant(d[0]["log"][2]["at"].get<std::string>());
  EXPECT_GE((t2 - t0).count(), 2);

  std::ifstream in(record);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    const Json got = Json::parse(line);
    ++n;
    EXPECT_EQ(got["delivery"], "TA-000001-w1");
    const std::string expected =
        "sha256=" + hex_encode(hmac_sha256("hook-key", got["ts"].get<std::string>() + "." +
                                                           got["body"].get<std::string>()));
    EXPECT_EQ(got["sig"], expected);
    EXPECT_NE(Json::parse(got["body"].get<std::string>())["text"].get<std::string>().find(
                  "Oracle is back"),
              std::string::npos);
  }
  EXPECT_EQ(n, 3);

  // Sent again by hand: one more request with the same delivery id, counted as a resend.
  const auto resend = call("POST", "/api/v1/alerts/TA-000001/deliveries/TA-000001-w1/resend");
  ASSERT_EQ(resend.status, 202) << resend.body;
  Json again;
  for (int i = 0; i < 100; ++i) {
    again = Json::parse(call("GET", "/api/v1/alerts/TA-000001/deliveries").body)["deliveries"];
    if (again[0]["state"] == "sent" && again[0]["attempts"] == 4) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(again[0]["resends"], 1) << again.dump();
  EXPECT_EQ(again[0]["attempts"], 4) << again.dump();
  EXPECT_EQ(call("POST", "/api/v1/alerts/TA-000001/deliveries/nope/resend").status, 404);
  std::ifstream after(record);
  n = 0;
  while (std::getline(after, line)) ++n;
  EXPECT_EQ(n, 4);
}

TEST_F(TechAlerts, RemindersStartNoticesAndUnsubscribe) {
  SmtpRecorder smtp;
  start(alert_env(smtp.port(), "", false));
  const Instant now =
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  // What falls due does so `lead` from now: long enough for the announcements to go out first
  // on a loaded machine (a sanitizer build), so that the first run below finds nothing due.
  constexpr auto lead = 20s;
  // Announced three weeks ago, starting in 24 hours and `lead`: the 24-hour reminder falls
  // due `lead` after the announcement went out.
  Json soon = window("CHG0000020", "oracle-prod", "planned_outage", now + 24h + lead, now + 26h);
  soon["announced_at"] = format_instant(now - std::chrono::hours(21 * 24));
  ASSERT_EQ(call("POST", "/api/v1/maintenance", soon.dump()).status, 201);
  // Starting in `lead`: the start notice falls due after the announcement.
  Json running = window("CHG0000021", "oracle-prod", "emergency", now + lead, now + 1h);
  ASSERT_EQ(call("POST", "/api/v1/maintenance", running.dump()).status, 201);
  // Under way since an hour when announced: its start notice would repeat the announcement.
  Json late = window("CHG0000022", "oracle-prod", "emergency", now - 1h, now + 1h);
  ASSERT_EQ(call("POST", "/api/v1/maintenance", late.dump()).status, 201);
  // The planned outage goes to kOracleAudience (5), each emergency to the problems list too.
  auto mails = smtp.wait_for(17, 30s);
  ASSERT_EQ(mails.size(), 17u) << server_->log();
  // Nothing is due yet: the reminder and the start are still ahead.
  ASSERT_LT(std::chrono::system_clock::now(), now + lead) << "the announcements took too long";
  auto run = call("POST", "/api/v1/jobs/tech_alerts.notices/run");
  EXPECT_NE(run.body.find("0 notice(s) sent"), std::string::npos) << run.body;
  std::this_thread::sleep_until(now + lead + 1s);

  run = call("POST", "/api/v1/jobs/tech_alerts.notices/run");
  ASSERT_EQ(run.status, 200) << run.body;
  EXPECT_NE(run.body.find("2 notice(s) sent"), std::string::npos) << run.body;
  mails = smtp.wait_for(28, 30s);
  EXPECT_EQ(recipients(mails, "Reminder: CHG0000020"), kOracleAudience);
  EXPECT_EQ(recipients(mails, "Started: CHG0000021").size(), 6u);
  EXPECT_EQ(recipients(mails, "CHG0000022").size(), 6u);  // the announcement only
  // Run again: nothing is due twice.
  run = call("POST", "/api/v1/jobs/tech_alerts.notices/run");
  EXPECT_NE(run.body.find("0 notice(s) sent"), std::string::npos) << run.body;

  // The work under way finishes early: those told it started are told it is complete, once,
  // as soon as the plugin hears of it (through the event bus).
  running["status"] = "complete";
  ASSERT_EQ(call("PUT", "/api/v1/maintenance/CHG0000021", running.dump()).status, 200);
  for (int i = 0; i < 100; ++i) {
    run = call("POST", "/api/v1/jobs/tech_alerts.notices/run");
    if (run.body.find("0 notice(s) sent") == std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(run.body.find("1 notice(s) sent"), std::string::npos) << run.body;
  run = call("POST", "/api/v1/jobs/tech_alerts.notices/run");
  EXPECT_NE(run.body.find("0 notice(s) sent"), std::string::npos) << run.body;
  mails = smtp.wait_for(34, 30s);
  EXPECT_EQ(recipients(mails, "Complete: CHG0000021").size(), 6u) << server_->log();

  // t1 unsubscribes with the link of the mail it got (one click, RFC 8058).
  std::string link;
  for (const auto& m : mails) {
    if (m.rcpt_to.at(0) == "t1@acme.example.org") link = header(m.data, "List-Unsubscribe");
  }
  ASSERT_FALSE(link.empty());
  const std::string path =
      link.substr(link.find("/alerts/"), link.size() - link.find("/alerts/") - 1);
  EXPECT_EQ(http(server_->port(), "GET", path).status, 200);
  std::string forged = path;
  forged.back() = forged.back() == '0' ? '1' : '0';
  EXPECT_EQ(http(server_->port(), "POST", forged).status, 403);
  EXPECT_EQ(http(server_->port(), "POST", path).status, 200);
  Json body = {{"kind", "outage"}, {"title", "Down"}, {"services", {"oracle-prod"}}};
  const auto down = call("POST", "/api/v1/alerts", body.dump());
  ASSERT_EQ(down.status, 201);
  // Five go out; a moment more would show a sixth, to the one who unsubscribed.
  smtp.wait_for(39, 30s);
  std::this_thread::sleep_for(1s);
  mails = smtp.messages();
  const auto told = recipients(mails, "Down");
  EXPECT_EQ(told.size(), 5u);  // the problems list and 4 of the 5 contacts
  EXPECT_EQ(told.count("t1@acme.example.org"), 0u);

  // The alert's deliveries say who was not told, and why; an operator sees the opt-out and,
  // when its owner asks, restores the address, and then the delivery can be sent again.
  const std::string alert = Json::parse(down.body)["id"];
  std::string skipped;
  for (const auto& d : deliveries(alert)) {
    if (d["destination"] != "t1@acme.example.org") continue;
    EXPECT_EQ(d["state"], "opted_out");
    EXPECT_EQ(d["attempts"], 0);
    skipped = d["id"];
  }
  ASSERT_FALSE(skipped.empty());
  const Json optouts = Json::parse(call("GET", "/api/v1/alert-opt-outs").body)["opt_outs"];
  ASSERT_EQ(optouts.size(), 1u) << optouts.dump();
  EXPECT_EQ(optouts[0]["address"], "t1@acme.example.org");
  const std::string resend = "/api/v1/alerts/" + alert + "/deliveries/" + skipped + "/resend";
  const auto refused = call("POST", resend);
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_NE(refused.body.find("t1@acme.example.org unsubscribed from Tech Alerts"),
            std::string::npos)
      << refused.body;
  EXPECT_EQ(call("DELETE", "/api/v1/alert-opt-outs/T1@acme.example.org").status, 204);
  EXPECT_EQ(call("DELETE", "/api/v1/alert-opt-outs/t1@acme.example.org").status, 404);
  EXPECT_EQ(Json::parse(call("GET", "/api/v1/alert-opt-outs").body)["opt_outs"], Json::array());
  EXPECT_EQ(call("POST", resend).status, 202);
  mails = smtp.wait_for(40, 30s);
  EXPECT_EQ(recipients(mails, "Down").count("t1@acme.example.org"), 1u);
}

// What nobody was told does not count as told, and what everybody was told is not told again:
// a draft outage alert does not hold back the automatic one, and a window corrected after its
// end (the work overran) gets no second "Complete".
// An SLA announcement that names no service is about the SLA itself: it reaches the
// announcement contacts of every subscribed customer, not only the configured list.
TEST_F(TechAlerts, AnSlaAnnouncementWithoutServicesReachesEveryCustomer) {
  SmtpRecorder smtp;
  start(alert_env(smtp.port(), "", false));
  const auto r = call("POST", "/api/v1/alerts",
                      Json({{"kind", "sla_announcement"}, {"title", "New SLA procedure"}}).dump());
  ASSERT_EQ(r.status, 201) << r.body;
  const Json sent = deliveries(Json::parse(r.body)["id"]);
  ASSERT_EQ(sent.size(), 1u) << sent.dump();
  EXPECT_EQ(sent[0]["destination"], "exec@acme.example.org");
  EXPECT_EQ(sent[0]["reason"], "customer acme executive");
  EXPECT_EQ(sent[0]["state"], "sent");
}

TEST_F(TechAlerts, DraftsHoldNothingBackAndCorrectedHistoryIsNotToldAgain) {
  SmtpRecorder smtp;
  start(alert_env(smtp.port(), "", false));
  const Instant now =
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  const Json draft = {{"kind", "outage"},
                      {"title", "Draft about INC0000040"},
                      {"services", {"oracle-prod"}},
                      {"interruption", "INC0000040"},
                      {"draft", true}};
  ASSERT_EQ(call("POST", "/api/v1/alerts", draft.dump()).status, 201);
  const Json outage = {{"id", "INC0000040"},
                       {"service", "oracle-prod"},
                       {"type", "outage"},
                       {"start", format_instant(now - 10min)}};
  ASSERT_EQ(call("POST", "/api/v1/interruptions", outage.dump()).status, 201);
  // Under way since an hour, ending in three seconds: announced now, completed then.
  Json w = window("CHG0000030", "oracle-prod", "emergency", now - 1h, now + 3s);
  ASSERT_EQ(call("POST", "/api/v1/maintenance", w.dump()).status, 201);
  // The outage goes to the oracle-prod audience and the problems list; so does the window.
  smtp.wait_for(12, 30s);
  EXPECT_EQ(recipients(smtp.messages(), "INC0000040").size(), 6u) << server_->log();

  std::this_thread::sleep_until(now + 4s);
  auto run = call("POST", "/api/v1/jobs/tech_alerts.notices/run");
  EXPECT_NE(run.body.find("1 notice(s) sent"), std::string::npos) << run.body;
  // The plugin hears of a change through the event bus: the calendar's SEQUENCE for the
  // window goes up once it has.
  const auto sequence = [&] {
    const std::string ics = http(server_->port(), "GET", "/maintenance.ics").body;
    const auto uid = ics.find("UID:CHG0000030@");
    if (uid == std::string::npos) return std::string();
    const auto begin = ics.rfind("BEGIN:VEVENT", uid);
    const std::string event = ics.substr(begin, ics.find("END:VEVENT", uid) - begin);
    const auto at = event.find("SEQUENCE:");
    return at == std::string::npos ? std::string() : event.substr(at, event.find('\r', at) - at);
  };
  const std::string announced = sequence();
  ASSERT_FALSE(announced.empty());
  w["end"] = format_instant(now + 4s);  // it overran by a second
  const auto corrected = call("PUT", "/api/v1/maintenance/CHG0000030", w.dump());
  ASSERT_EQ(corrected.status, 200) << corrected.body;
  for (int i = 0; i < 300 && sequence() == announced; ++i) std::this_thread::sleep_for(100ms);
  ASSERT_NE(sequence(), announced) << server_->log();
  run = call("POST", "/api/v1/jobs/tech_alerts.notices/run");
  EXPECT_NE(run.body.find("0 notice(s) sent"), std::string::npos) << run.body;
  smtp.wait_for(18, 30s);
  std::this_thread::sleep_for(1s);  // a second "Complete" would be here by now
  const auto completed = recipients(smtp.messages(), "Complete: CHG0000030");
  EXPECT_EQ(completed.size(), 6u);
  for (const auto& [address, times] : completed) EXPECT_EQ(times, 1) << address;
}

class TechAlertsPages : public ChromiumTest {
 protected:
  TempDir dir_;
};

TEST_F(TechAlertsPages, StatusPagePreviewAndCalendarRenderForRealClients) {
  auto env = alert_env(1, "", false);
  env.erase("SLMHUB_PLUGINS_TECH_ALERTS_SMTP_HOST");
  ServerProcess server(dir_.path(), env);
  server.start();
  const auto port = server.port();
  const auto token = server.admin_token();
  ASSERT_EQ(http(port, "POST", "/api/v1/import", dataset(), token).status, 200);
  const Instant start_at = local_at(20, 1, true);
  Json w = {{"id", "CHG0000009"},
            {"service", "oracle-prod"},
            {"category", "planned_outage"},
            {"start", format_instant(start_at)},
            {"end", format_instant(start_at + 2h)}};
  ASSERT_EQ(http(port, "POST", "/api/v1/maintenance", w.dump(), token).status, 201);
  Json cancelled = w;
  cancelled["id"] = "CHG0000010";
  ASSERT_EQ(http(port, "POST", "/api/v1/maintenance", cancelled.dump(), token).status, 201);
  // Announced first (a window cancelled before anyone was told gets no alert at all).
  for (int i = 0; i < 100; ++i) {
    if (Json::parse(
            http(port, "GET", "/api/v1/alerts?kind=planned_outage", "", token).body)["alerts"]
            .size() == 2)
      break;
    std::this_thread::sleep_for(100ms);
  }
  cancelled["status"] = "cancelled";
  ASSERT_EQ(http(port, "PUT", "/api/v1/maintenance/CHG0000010", cancelled.dump(), token).status,
            200);
  Json outage = {{"id", "INC0000001"},
                 {"service", "oracle-prod"},
                 {"type", "outage"},
                 {"start", format_instant(std::chrono::time_point_cast<std::chrono::seconds>(
                                              std::chrono::system_clock::now()) -
                                          10min)},
                 {"description", "Listener <down> & restarting"}};
  ASSERT_EQ(http(port, "POST", "/api/v1/interruptions", outage.dump(), token).status, 201);

  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  const std::string dom = chromium().dump_dom(base + "/status");
  EXPECT_NE(dom.find("id=\"overall\" data-state=\"outage\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("data-service=\"oracle-prod\" data-state=\"outage\""), std::string::npos)
      << dom;
  EXPECT_NE(dom.find("data-service=\"mysql-qa\" data-state=\"operational\""), std::string::npos);
  EXPECT_NE(dom.find("Listener &lt;down&gt; &amp; restarting"), std::string::npos) << dom;
  EXPECT_NE(dom.find("data-id=\"CHG0000009\""), std::string::npos) << dom;
  const std::string shots = std::string(SLMHUB_SCREENSHOT_DIR);
  std::filesystem::create_directories(shots);
  chromium().screenshot(base + "/status", shots + "/status.png", 420, 900);
  EXPECT_TRUE(std::filesystem::exists(shots + "/status.png"));

  // The outage alert the interruption caused, as its e-mail's HTML part.
  Json alerts;
  for (int i = 0; i < 100; ++i) {
    alerts = Json::parse(http(port, "GET", "/api/v1/alerts?kind=outage", "", token).body)["alerts"];
    if (!alerts.empty()) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(alerts.size(), 1u);
  const std::string id = alerts[0]["id"];
  const auto preview = http(port, "GET", "/api/v1/alerts/" + id + "/preview", "", token);
  ASSERT_EQ(preview.status, 200);
  const std::string file = (dir_.path() / "preview.html").string();
  std::ofstream(file) << preview.body;
  const std::string preview_dom = chromium().dump_dom(file_url(file));
  EXPECT_NE(preview_dom.find("INC0000001"), std::string::npos) << preview_dom;
  EXPECT_NE(preview_dom.find("Oracle &lt;Production&gt;"), std::string::npos) << preview_dom;
  chromium().screenshot(file_url(file), shots + "/alert-preview.png", 600, 800);

  const auto ics = http(port, "GET", "/maintenance.ics");
  ASSERT_EQ(ics.status, 200);
  const std::string ics_file = (dir_.path() / "maintenance.ics").string();
  std::ofstream(ics_file) << ics.body;
  FILE* p = popen(("/usr/bin/python3 -c 'import icalendar,sys\n"
                   "cal = icalendar.Calendar.from_ical(open(sys.argv[1],\"rb\").read())\n"
                   "for e in cal.walk(\"VEVENT\"):\n"
                   "    print(e[\"UID\"], e[\"SEQUENCE\"], e[\"STATUS\"], "
                   "e.decoded(\"DTSTART\").isoformat())' " +
                   ics_file + " 2>&1")
                      .c_str(),
                  "r");
  std::string out;
  std::array<char, 512> buf{};
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  pclose(p);
  const std::string start_text = format_instant(start_at);
  const std::string iso = start_text.substr(0, start_text.size() - 1) + "+00:00";
  EXPECT_NE(out.find("CHG0000009@127.0.0.1 0 CONFIRMED " + iso), std::string::npos) << out;
  EXPECT_NE(out.find("CHG0000010@127.0.0.1 1 CANCELLED " + iso), std::string::npos) << out;

  // The feed is well-formed Atom with the alerts, newest first; status.json says the same
  // as the page.
  const auto feed = http(port, "GET", "/alerts.atom");
  ASSERT_EQ(feed.status, 200);
  const std::string feed_file = (dir_.path() / "alerts.atom").string();
  std::ofstream(feed_file) << feed.body;
  p = popen(
      ("/usr/bin/python3 -c 'import sys, xml.etree.ElementTree as E\n"
       "ns = {\"a\": \"http://www.w3.org/2005/Atom\"}\n"
       "root = E.parse(sys.argv[1]).getroot()\n"
       "print(\" \".join(e.find(\"a:title\", ns).text for e in root.findall(\"a:entry\", ns)))' " +
       feed_file + " 2>&1")
          .c_str(),
      "r");
  out.clear();
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  pclose(p);
  EXPECT_NE(out.find("INC0000001 on Oracle <Production>"), std::string::npos) << out;
  EXPECT_LT(out.find("INC0000001"), out.find("CHG0000009")) << out;
  const Json status = Json::parse(http(port, "GET", "/status.json").body);
  EXPECT_EQ(status["overall"], "outage") << status.dump();
  EXPECT_EQ(status["open_interruptions"].size(), 1u);
}

TEST(TechAlertsTemplates, BrokenTemplateStopsThePluginAtLoadNamingFileAndLine) {
  TempDir dir;
  const auto templates = dir.path() / "templates";
  std::filesystem::create_directories(templates);
  std::ofstream(templates / "outage.email.subject.mustache") << "Outage\n{{alert.titel}}\n";
  ServerProcess server(dir.path(),
                       {{"SLMHUB_PLUGINS_TECH_ALERTS_TEMPLATES_DIR", templates.string()}});
  server.start();
  const Json plugins =
      Json::parse(http(server.port(), "GET", "/api/v1/plugins", "", server.admin_token()).body);
  std::string reason;
  for (const auto& p : plugins["plugins"])
    if (p["name"] == "tech_alerts") reason = p.value("reason", "");
  EXPECT_NE(reason.find("outage.email.subject.mustache:2"), std::string::npos) << plugins.dump();
  EXPECT_NE(reason.find("alert.titel"), std::string::npos) << reason;
}

}  // namespace
}  // namespace slmhub::test
