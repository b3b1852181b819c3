// kill -9, round after round at random moments, on the paths that acknowledge to the outside
// beyond HTTP (durability_test.cpp), LMTP (mail_intake_test.cpp), ServiceNow webhooks
// (servicenow_sync_test.cpp) and export files (billing_test.cpp): the outbox sending mail, and
// mailbox polling, which deletes (POP3) or expunges (IMAP) a message only once it is committed.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "crash.hpp"
#include "dovecot.hpp"
#include "eventually.hpp"
#include "mime.hpp"
#include "process.hpp"
#include "server_process.hpp"
#include "slmhub/json.hpp"
#include "smtp_recorder.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

using namespace std::chrono_literals;

// `SELECT …` on the store while the server runs (WAL lets a reader in).
std::string sql(const std::filesystem::path& db, const std::string& query) {
  return run_shell("sqlite3 '" + db.string() + "' \"" + query + "\"").second;
}

// The outbox sends while alerts are being created and the server is killed: after every
// restart each alert's mail arrives, and a message arrives twice only if it was being sent at
// the kill (one per sending lane: at most kLanes per kill), with the same Message-ID both
// times.
TEST(Crash, TheOutboxSendsEveryMessageAndRepeatsOnlyTheOnesInFlightAtAKill) {
  constexpr int kLanes = 2;
  CrashSchedule schedule(std::chrono::milliseconds(20), std::chrono::milliseconds(600));
  SCOPED_TRACE(schedule.describe());
  SmtpRecorder smtp;
  TempDir dir;
  ServerProcess server(dir.path(),
                       {{"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_HOST", "127.0.0.1"},
                        {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_PORT", std::to_string(smtp.port())},
                        {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_TLS", "none"},
                        {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_FROM", "alerts@example.org"},
                        {"SLMHUB_PLUGINS_TECH_ALERTS_LISTS_PROBLEMS", "problems@example.org"},
                        {"SLMHUB_OUTBOX_CLAIM_TIMEOUT_SECONDS", "1"},
                        {"SLMHUB_OUTBOX_CONCURRENCY", std::to_string(kLanes)},
                        {"SLMHUB_OUTBOX_INITIAL_BACKOFF_SECONDS", "1"},
                        {"SLMHUB_OUTBOX_MAX_BACKOFF_SECONDS", "1"},
                        {"SLMHUB_EVENTS_POLL_MS", "50"}});
  server.start();
  const std::string token = server.admin_token();
  ASSERT_EQ(
      http(server.port(), "POST", "/api/v1/import", read_shared("vectors/example-2026-11.json"),
           token, {{"Content-Type", "application/json"}})
          .status,
      200);
  const auto db = dir.path() / "slmhub.db";
  std::set<std::string> acknowledged;  // alert titles answered 201, over every round
  for (int round = 0; round < schedule.rounds(); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    if (round > 0) server.start();
    std::atomic<bool> stop{false};
    std::thread author([&] {
      for (int i = 0; i < 10 && !stop; ++i) {
        const std::string title =
            "Outage R" + std::to_string(round) + "I" + std::to_string(i) + "X";
        try {
          const auto r = http(server.port(), "POST", "/api/v1/alerts",
                              Json({{"kind", "outage"},
                                    {"title", title},
                                    {"summary", "Oracle refuses connections"},
                                    {"services", {"oracle-prod"}}})
                                  .dump(),
                              token, {{"Content-Type", "application/json"}});
          if (r.status == 201) acknowledged.insert(title);
        } catch (const std::exception&) {
          return;  // the server is gone
        }
      }
    });
    std::this_thread::sleep_for(schedule.next());
    server.kill_hard();
    stop = true;
    author.join();
    ASSERT_EQ(sqlite_integrity(db), "ok");
    server.start();
    // Everything acknowledged goes out: nothing pending, nothing dead.
    ASSERT_TRUE(eventually(
        [&] { return sql(db, "SELECT COUNT(*) FROM outbox WHERE state <> 'sent'") == "0\n"; },
        std::chrono::seconds(60)))
        << sql(db, "SELECT id, state, attempts, last_error FROM outbox WHERE state <> 'sent'")
        << server.log();
    server.kill_hard();
  }
  std::map<std::string, std::set<std::string>> ids_by_title;  // Message-IDs per alert
  std::map<std::string, int> received;
  for (const auto& mail : smtp.messages()) {
    const auto parsed = mail::parse_mail(mail.data);
    const std::string subject = parsed.header("subject");
    for (const auto& title : acknowledged) {
      if (subject.find(title) == std::string::npos) continue;
      ++received[title];
      ids_by_title[title].insert(parsed.header("message-id"));
    }
  }
  int repeated = 0;
  for (const auto& title : acknowledged) {
    EXPECT_GE(received[title], 1) << title << " never arrived";
    EXPECT_EQ(ids_by_title[title].size(), 1u) << title << " arrived with different Message-IDs";
    repeated += std::max(0, received[title] - 1);
  }
  EXPECT_LE(repeated, schedule.rounds() * kLanes);
  EXPECT_GT(acknowledged.size(), static_cast<std::size_t>(schedule.rounds()));
}

// A mailbox is polled (POP3 in even rounds, IMAP in odd ones) and the server killed while it
// fetches: after each restart the next polls take up what is left, every message ends as one
// ticket, never two, and POP3 leaves the mailbox empty (IMAP leaves the messages flagged).
TEST(Crash, MailboxPollingKilledMidwayMakesEveryMessageOneTicket) {
  CrashSchedule schedule(std::chrono::milliseconds(10), std::chrono::milliseconds(500));
  SCOPED_TRACE(schedule.describe());
  Dovecot dovecot;
  TempDir dir;
  const auto db = dir.path() / "slmhub.db";
  constexpr int kPerRound = 12;
  int delivered = 0;
  for (int round = 0; round < schedule.rounds(); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    for (int i = 0; i < kPerRound; ++i, ++delivered) {
      dovecot.deliver(
          "Return-Path: <dba@library.example.org>\r\nFrom: dba@library.example.org\r\n"
          "To: db-requests@example.org\r\nSubject: polled " +
          std::to_string(delivered) + "\r\nMessage-ID: <polled-" + std::to_string(delivered) +
          "@library.example.org>\r\n\r\nPlease.\r\n");
    }
    const std::string url =
        round % 2 == 0
            ? "pop3s://" + dovecot.username() + "@127.0.0.1:" + std::to_string(dovecot.pop3s_port())
            : "imaps://" + dovecot.username() +
                  "@127.0.0.1:" + std::to_string(dovecot.imaps_port());
    ServerProcess server(
        dir.path(),
        {{"SLMHUB_PLUGINS_EMAIL_INTAKE_QUEUES", "db-requests:DBR:db-requests@example.org"},
         // A poll that finds Dovecot stalled by the killed session gives up after 5 s (the
         // default, 30 s, is also how long http() waits) and the next poll tries again.
         {"SLMHUB_PLUGINS_EMAIL_INTAKE_POLL_MAILBOXES",
          url + "?queue=db-requests&secret=db_mailbox&timeout_ms=5000"},
         {"SLMHUB_PLUGINS_EMAIL_INTAKE_POLL_CA_FILE", dovecot.ca_file()},
         {"SLMHUB_PLUGINS_EMAIL_INTAKE_POLL_SCHEDULE", "0 0 1 1 *"},
         {"SLMHUB_JOBS_LEASE_SECONDS", "1"},
         {"SLMHUB_SECRET_DB_MAILBOX", dovecot.password()}});
    server.start();
    const std::string token = server.admin_token();
    std::thread poll([&] {
      try {
        http(server.port(), "POST", "/api/v1/jobs/email_intake.poll-1/run", "", token);
      } catch (const std::exception&) {  // killed under it
      }
    });
    std::this_thread::sleep_for(schedule.next());
    server.kill_hard();
    poll.join();
    dovecot.kill_sessions();
    ASSERT_EQ(sqlite_integrity(db), "ok");

    server.start();
    // The killed run's lease runs out; then polls take up whatever is left, until one finds
    // nothing (POP3 has deleted every message, IMAP has flagged it). A session killed while it
    // held the maildir's dovecot-uidlist.lock leaves the lock behind, and Dovecot overrides it
    // only once it is 120 s old (MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT): until then every SELECT
    // waits and each poll gives up after its 5 s, as it should.
    ASSERT_TRUE(eventually(
        [&] {
          const auto r =
              http(server.port(), "POST", "/api/v1/jobs/email_intake.poll-1/run", "", token);
          return r.status == 200 &&
                 Json::parse(r.body).value("output", "").starts_with("0 fetched");
        },
        std::chrono::seconds(180)))
        << server.log() << "\n--- dovecot ---\n"
        << dovecot.log();
    if (round % 2 == 0) {
      EXPECT_EQ(dovecot.count(), 0u);
    }
    const auto tickets = http(server.port(), "GET", "/api/v1/tickets?limit=1000", "", token);
    ASSERT_EQ(tickets.status, 200);
    std::map<std::string, int> subjects;
    const Json listed = Json::parse(tickets.body);
    for (const auto& t : listed["tickets"]) ++subjects[t["subject"].get<std::string>()];
    EXPECT_EQ(subjects.size(), static_cast<std::size_t>(delivered));
    for (int n = 0; n < delivered; ++n) {
      EXPECT_EQ(subjects["polled " + std::to_string(n)], 1) << "message " << n;
    }
    server.kill_hard();
  }
}

}  // namespace
}  // namespace slmhub::test
