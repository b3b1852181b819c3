// Secrets stay secret: a server configured with every secret the shipped plugins read runs a
// day's work that uses each of them (ServiceNow calls with the integration user's password, a
// signed webhook checked, alerts sent over authenticated SMTP and to a signed webhook, an
// auto-reply whose SMTP login is refused, an unsubscribe link), at log level debug; then no
// secret may appear in its log or in any answer it gave.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "eventually.hpp"
#include "process.hpp"
#include "server_process.hpp"
#include "servicenow_sim.hpp"
#include "slmhub/json.hpp"
#include "smtp_recorder.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

using namespace std::chrono_literals;

TEST(Secrets, NoConfiguredSecretAppearsInTheLogOrInAnAnswer) {
  // SLMHUB_SECRET_<NAME> → a value that occurs nowhere else.
  const std::map<std::string, std::string> secrets = {
      {"SERVICENOW_PASSWORD", "sn-pw-Q7v2kL9xPz"},
      {"SERVICENOW_WEBHOOK_SECRET", "c24taG9vay1SNG04cFcxektj"},  // base64, as generateMac takes it
      {"TECH_ALERTS_SMTP_PASSWORD", "alerts-pw-T5n3bJ6cVe"},
      {"TECH_ALERTS_WEBHOOK_SECRET", "alert-sig-U2d9fH4sNa"},
      {"TECH_ALERTS_UNSUBSCRIBE_KEY", "unsub-key-V8k1gD3qMo"},
      {"SMTP_PASSWORD", "intake-pw-W6j4hA7rBy"},
      {"BILLING_EXPORT_SMTP_PASSWORD", "billing-pw-X3l5mS8tGu"},
  };
  SmtpRecorderOptions mail_options;
  mail_options.tls = SmtpRecorderOptions::Tls::starttls;
  mail_options.username = "alerts";
  mail_options.password = secrets.at("TECH_ALERTS_SMTP_PASSWORD");
  SmtpRecorder smtp(mail_options);
  ServiceNowSimOptions sn_options;
  sn_options.users = {{"slmhub", secrets.at("SERVICENOW_PASSWORD")}};
  ServiceNowSim sim(sn_options);

  TempDir dir;
  std::map<std::string, std::string> env = {
      {"SLMHUB_LOG_LEVEL", "debug"},
      {"SLMHUB_EVENTS_POLL_MS", "50"},
      {"SLMHUB_OUTBOX_INITIAL_BACKOFF_SECONDS", "1"},
      {"SLMHUB_PLUGINS_SERVICENOW_INSTANCE_URL", sim.base_url()},
      {"SLMHUB_PLUGINS_SERVICENOW_INSTANCE_USERNAME", "slmhub"},
      {"SLMHUB_PLUGINS_SERVICENOW_SWEEP_SCHEDULE", "0 0 1 1 *"},
      {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_HOST", "127.0.0.1"},
      {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_PORT", std::to_string(smtp.port())},
      {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_TLS", "starttls"},
      {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_CA_FILE", smtp.ca_file()},
      {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_USERNAME", "alerts"},
      {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_FROM", "alerts@example.org"},
      {"SLMHUB_PLUGINS_TECH_ALERTS_LISTS_PROBLEMS", "problems@example.org"},
      // Nothing listens there: the signed delivery fails, and says so in the log.
      {"SLMHUB_PLUGINS_TECH_ALERTS_WEBHOOK_URLS", "http://127.0.0.1:9/hook"},
      // The same SMTP server refuses this login: the failure is logged.
      {"SLMHUB_PLUGINS_EMAIL_INTAKE_QUEUES", "db-requests:DBR:db-requests@example.org"},
      {"SLMHUB_PLUGINS_EMAIL_INTAKE_SMTP_HOST", "127.0.0.1"},
      {"SLMHUB_PLUGINS_EMAIL_INTAKE_SMTP_PORT", std::to_string(smtp.port())},
      {"SLMHUB_PLUGINS_EMAIL_INTAKE_SMTP_TLS", "starttls"},
      {"SLMHUB_PLUGINS_EMAIL_INTAKE_SMTP_CA_FILE", smtp.ca_file()},
      {"SLMHUB_PLUGINS_EMAIL_INTAKE_SMTP_USERNAME", "intake"},
      {"SLMHUB_PLUGINS_EMAIL_INTAKE_SMTP_FROM", "db-requests@example.org"},
      {"SLMHUB_PLUGINS_BILLING_EXPORT_SMTP_HOST", "127.0.0.1"},
      {"SLMHUB_PLUGINS_BILLING_EXPORT_SMTP_PORT", std::to_string(smtp.port())},
      {"SLMHUB_PLUGINS_BILLING_EXPORT_SMTP_TLS", "starttls"},
      {"SLMHUB_PLUGINS_BILLING_EXPORT_SMTP_CA_FILE", smtp.ca_file()},
      {"SLMHUB_PLUGINS_BILLING_EXPORT_SMTP_USERNAME", "billing"},
      {"SLMHUB_PLUGINS_BILLING_EXPORT_SMTP_FROM", "billing@example.org"},
  };
  for (const auto& [name, value] : secrets) env["SLMHUB_SECRET_" + name] = value;
  ServerProcess server(dir.path(), env);
  server.start();
  const std::string admin = server.admin_token();
  std::vector<std::string> answers;  // every body the server answered
  auto call = [&](const std::string& method, const std::string& path, const std::string& body,
                  const std::map<std::string, std::string>& headers = {}) {
    auto r = http(server.port(), method, path, body, admin, headers);
    answers.push_back(r.body);
    for (const auto& [k, v] : r.headers) answers.push_back(k + ": " + v);
    return r;
  };
  const std::map<std::string, std::string> json = {{"Content-Type", "application/json"}};
  ASSERT_EQ(
      call("POST", "/api/v1/import", read_shared("vectors/example-2026-11.json"), json).status,
      200);

  // ServiceNow: a sweep and an incident going out, with the integration user's password.
  EXPECT_EQ(call("POST", "/api/v1/jobs/servicenow.sweep/run", "").status, 200);
  const Json ticket = Json::parse(
      call("POST", "/api/v1/tickets", R"({"subject":"Payroll is down","kind":"incident"})", json)
          .body);
  EXPECT_TRUE(eventually([&] {
    return !sim.control("GET", "/sim/records/incident", Json())["result"].empty();
  })) << server.log();
  // A webhook that is not signed with the secret.
  const auto forged = http(server.port(), "POST", "/api/v1/webhooks/servicenow",
                           R"({"sys_id":"0123456789abcdef0123456789abcdef","table":"incident"})",
                           "", {{"Content-Type", "application/json"}, {"X-SN-Signature", "AAAA"}});
  answers.push_back(forged.body);
  EXPECT_EQ(forged.status, 401) << forged.body;

  // An alert: mail over authenticated SMTP, a signed webhook that fails, unsubscribe links.
  ASSERT_EQ(call("POST", "/api/v1/alerts",
                 R"({"kind":"outage","title":"Oracle is down","summary":"Since 09:10",)"
                 R"("services":["oracle-prod"]})",
                 json)
                .status,
            201);
  const auto mails = smtp.wait_for(1, 30s);
  ASSERT_FALSE(mails.empty()) << server.log() << smtp.log();
  EXPECT_EQ(mails[0].auth_user, "alerts");

  // Mail in, and an auto-reply whose SMTP login is refused.
  const std::string message =
      "From: DBA <dba@registrar.example.org>\r\nTo: db-requests@example.org\r\n"
      "Subject: New schema please\r\nMessage-ID: <secrets-1@registrar.example.org>\r\n\r\n"
      "Could we have a schema for the reports?\r\n";
  const auto mail_in = call("POST", "/api/v1/mail/inbound?queue=db-requests", message,
                            {{"Content-Type", "message/rfc822"}});
  EXPECT_EQ(mail_in.status, 201) << mail_in.body;
  EXPECT_TRUE(eventually([&] {
    return server.log().find("refused the credentials of user 'intake': 535") != std::string::npos;
  })) << server.log();

  for (const char* path :
       {"/api/v1/plugins", "/api/v1/routes", "/api/v1/jobs", "/api/v1/outbox",
        "/api/v1/servicenow/status", "/api/v1/alerts", "/api/v1/audit", "/api/v1/tokens"}) {
    call("GET", path, "");
  }
  call("GET", "/api/v1/tickets/" + ticket.value("id", std::string("none")), "");
  const std::string log = server.log();
  ASSERT_GT(log.size(), 1000u);
  for (const auto& [name, value] : secrets) {
    EXPECT_EQ(log.find(value), std::string::npos) << name << " is in the log";
    for (const auto& answer : answers)
      EXPECT_EQ(answer.find(value), std::string::npos) << name << " is in an answer: " << answer;
    for (const auto& mail : smtp.messages())
      EXPECT_EQ(mail.data.find(value), std::string::npos) << name << " is in a mail";
  }
  EXPECT_EQ(log.find(admin), std::string::npos) << "the admin token is in the log";
}

}  // namespace
}  // namespace slmhub::test
