// Mail into tickets through the real server (issue [email] acceptance): swaks delivers over
// LMTP, a pipe feeds `slmhub mailgate`, and the auto-replies leave through the outbox to a
// real SMTP server (aiosmtpd) over verified STARTTLS, carrying the case number. Everything
// on 127.0.0.1.
#include <gtest/gtest.h>

#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "crash.hpp"
#include "dovecot.hpp"
#include "process.hpp"
#include "server_process.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/json.hpp"
#include "smtp_recorder.hpp"

namespace slmhub::test {
namespace {

class MailIntake : public testing::Test {
 protected:
  void SetUp() override {
    SmtpRecorderOptions options;
    options.tls = SmtpRecorderOptions::Tls::starttls;
    smtp_ = std::make_unique<SmtpRecorder>(options);
    lmtp_port_ = free_port();
    server_ = std::make_unique<ServerProcess>(
        dir_.path(),
        std::map<std::string, std::string>{
            {"SLMHUB_PLUGINS_EMAIL_INTAKE_QUEUES", "db-requests:DBR:db-requests@example.org"},
            {"SLMHUB_PLUGINS_EMAIL_INTAKE_LMTP_LISTEN", "127.0.0.1:" + std::to_string(lmtp_port_)},
            {"SLMHUB_PLUGINS_EMAIL_INTAKE_SMTP_HOST", "127.0.0.1"},
            {"SLMHUB_PLUGINS_EMAIL_INTAKE_SMTP_PORT", std::to_string(smtp_->port())},
            {"SLMHUB_PLUGINS_EMAIL_INTAKE_SMTP_TLS", "starttls"},
            {"SLMHUB_PLUGINS_EMAIL_INTAKE_SMTP_CA_FILE", smtp_->ca_file()}});
    server_->start();
  }

  Json ticket(const std::string& id) {
    const auto r =
        http(server_->port(), "GET", "/api/v1/tickets/" + id, "", server_->admin_token());
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? Json::parse(r.body) : Json();
  }

  TempDir dir_;
  std::unique_ptr<SmtpRecorder> smtp_;
  int lmtp_port_ = 0;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(MailIntake, SwaksOverLmtpMakesATicketAndTheAutoReplyLeavesOverSmtp) {
  const auto [status, transcript] =
      run_shell("swaks --protocol LMTP --server 127.0.0.1 --port " + std::to_string(lmtp_port_) +
                " --from requester@library.example.org --to db-requests@example.org"
                " --header 'Subject: Please grant SELECT on reports'"
                " --header 'Message-Id: <lmtp-1@library.example.org>' --body 'Thanks.'");
  ASSERT_EQ(status, 0) << transcript << server_->log();
  EXPECT_NE(transcript.find("250 2.0.0 ticket DBR0000001"), std::string::npos) << transcript;
  const Json t = ticket("DBR0000001");
  EXPECT_EQ(t["subject"], "Please grant SELECT on reports");
  EXPECT_EQ(t["requester"], "requester@library.example.org");

  const auto mails = smtp_->wait_for(1, std::chrono::seconds(30));
  ASSERT_EQ(mails.size(), 1u) << smtp_->log() << server_->log();
  EXPECT_TRUE(mails[0].tls);
  EXPECT_EQ(mails[0].rcpt_to, std::vector<std::string>{"requester@library.example.org"});
  EXPECT_NE(mails[0].data.find("Subject: [DBR0000001] Please grant SELECT on reports"),
            std::string::npos)
      << mails[0].data;
  EXPECT_NE(mails[0].data.find("In-Reply-To: <lmtp-1@library.example.org>"), std::string::npos);
  EXPECT_NE(mails[0].data.find("Auto-Submitted: auto-replied"), std::string::npos);

  // The same message again (an MTA retry after a lost 250): the same answer, nothing new.
  const auto again =
      run_shell("swaks --protocol LMTP --server 127.0.0.1 --port " + std::to_string(lmtp_port_) +
                " --from requester@library.example.org --to db-requests@example.org"
                " --header 'Subject: Please grant SELECT on reports'"
                " --header 'Message-Id: <lmtp-1@library.example.org>' --body 'Thanks.'");
  EXPECT_EQ(again.first, 0);
  EXPECT_NE(again.second.find("250 2.0.0 duplicate DBR0000001"), std::string::npos) << again.second;
  EXPECT_EQ(
      http(server_->port(), "GET", "/api/v1/tickets/DBR0000002", "", server_->admin_token()).status,
      404);
}

// A command run beside the server (`slmhub plugins list`, `slmhub jobs run`) starts the plugins for
// their jobs and commands, but leaves the LMTP port to the server: email_intake starts there
// too, and the server's listener goes on taking mail.
TEST_F(MailIntake, ACommandBesideTheServerLeavesItsLmtpPortAlone) {
  const CommandResult plugins = run_slmhub({"plugins", "list"}, server_->env());
  ASSERT_EQ(plugins.status, 0) << plugins.err;
  EXPECT_NE(plugins.out.find("email_intake\t0.1.0\tstarted\t"), std::string::npos) << plugins.out;
  EXPECT_EQ(plugins.err.find("LMTP"), std::string::npos) << plugins.err;

  const auto [status, transcript] =
      run_shell("swaks --protocol LMTP --server 127.0.0.1 --port " + std::to_string(lmtp_port_) +
                " --from requester@library.example.org --to db-requests@example.org"
                " --header 'Subject: After a command' --body 'Still there?'");
  ASSERT_EQ(status, 0) << transcript << server_->log();
  EXPECT_NE(transcript.find("250 2.0.0 ticket DBR0000001"), std::string::npos) << transcript;
}

// An attachment larger than a storage chunk (256 KiB) comes back byte for byte, with the
// size and SHA-256 it was listed with.
TEST_F(MailIntake, AnAttachmentComesBackAsItWasSent) {
  std::string bytes(700'000, '\0');
  std::mt19937 random(20261201);
  for (char& c : bytes) c = static_cast<char>(random() & 0xff);
  const std::string file = (dir_.path() / "export.dmp").string();
  std::ofstream(file, std::ios::binary) << bytes;
  const auto [status, transcript] =
      run_shell("swaks --protocol LMTP --server 127.0.0.1 --port " + std::to_string(lmtp_port_) +
                " --from dba@library.example.org --to db-requests@example.org"
                " --header 'Subject: The export you asked for' --body 'Attached.'"
                " --attach-type application/octet-stream --attach @" +
                file);
  ASSERT_EQ(status, 0) << transcript << server_->log();
  ASSERT_NE(transcript.find("250 2.0.0 ticket DBR0000001"), std::string::npos) << transcript;

  const auto listed = http(server_->port(), "GET", "/api/v1/mail/attachments?ticket=DBR0000001", "",
                           server_->admin_token());
  ASSERT_EQ(listed.status, 200) << listed.body;
  const Json list = Json::parse(listed.body)["attachments"];
  ASSERT_EQ(list.size(), 1u) << listed.body;
  EXPECT_EQ(list[0]["name"], "export.dmp");
  EXPECT_EQ(list[0]["content_type"], "application/octet-stream");
  EXPECT_EQ(list[0]["size"], 700'000);
  EXPECT_EQ(list[0]["sha256"], sha256_hex(bytes));

  const auto got = http(server_->port(), "GET", "/api/v1/mail/attachments/" + list[0]["id"].dump(),
                        "", server_->admin_token());
  ASSERT_EQ(got.status, 200);
  EXPECT_TRUE(got.body == bytes) << got.body.size() << " bytes";
  EXPECT_EQ(got.headers.at("Content-Disposition"),
            "attachment; filename=\"export.dmp\"; filename*=UTF-8''export.dmp");
  EXPECT_EQ(http(server_->port(), "GET", "/api/v1/mail/attachments/999", "", server_->admin_token())
                .status,
            404);
}

TEST_F(MailIntake, MailgateFromAPipeDeliversAndTellsTheMtaWhatToDo) {
  const std::string token = server_->token("operator");
  std::ofstream(dir_.path() / "token") << token << "\n";
  std::ofstream(dir_.path() / "mail.eml")
      << "From: Registrar DBA <dba@registrar.example.org>\r\nTo: db-requests@example.org\r\n"
         "Subject: Database is down\r\nMessage-ID: <pipe-1@registrar.example.org>\r\n\r\n"
         "Nothing answers since 09:00.\r\n";
  const std::string gate = std::string(SLMHUB_BINARY) +
                           " mailgate --url http://127.0.0.1:" + std::to_string(server_->port()) +
                           " --token-file " + (dir_.path() / "token").string();
  auto [status, out] =
      run_shell(gate + " --queue db-requests < " + (dir_.path() / "mail.eml").string());
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("HTTP 201"), std::string::npos) << out;
  const Json t = ticket("DBR0000001");
  EXPECT_EQ(t["kind"], "incident");
  EXPECT_EQ(t["requester"], "dba@registrar.example.org");
  const auto mails = smtp_->wait_for(1, std::chrono::seconds(30));
  ASSERT_EQ(mails.size(), 1u) << smtp_->log();
  EXPECT_NE(mails[0].data.find("Subject: [DBR0000001] Database is down"), std::string::npos);

  // A queue that does not exist: the MTA must bounce it, not retry forever (65).
  std::tie(status, out) =
      run_shell(gate + " --queue nowhere < " + (dir_.path() / "mail.eml").string());
  EXPECT_EQ(status, 65) << out;
  // A token that is not valid: 77.
  std::ofstream(dir_.path() / "bad-token") << "not-a-token\n";
  std::tie(status, out) =
      run_shell(std::string(SLMHUB_BINARY) +
                " mailgate --url http://127.0.0.1:" + std::to_string(server_->port()) +
                " --token-file " + (dir_.path() / "bad-token").string() +
                " --queue db-requests < " + (dir_.path() / "mail.eml").string());
  EXPECT_EQ(status, 77) << out;
  // Not http://: a usage error (64) before anything is sent.
  std::tie(status, out) = run_shell(std::string(SLMHUB_BINARY) +
                                    " mailgate --url https://127.0.0.1:1 --queue db-requests < " +
                                    (dir_.path() / "mail.eml").string());
  EXPECT_EQ(status, 64) << out;
  // The server is gone: try later (75), the MTA keeps the message.
  server_->stop();
  std::tie(status, out) =
      run_shell(gate + " --queue db-requests < " + (dir_.path() / "mail.eml").string());
  EXPECT_EQ(status, 75) << out;
}

// An MTA's side of LMTP, enough for a stream of single-recipient deliveries: true when the
// message was acknowledged with 250 after DATA.
class LmtpClient {
 public:
  explicit LmtpClient(int port)
      : socket_(Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port))) {
    socket_.setReceiveTimeout(Poco::Timespan(30, 0));
    expect('2');  // greeting
    send("LHLO mta.example.org\r\n");
    while (line().rfind("250 ", 0) != 0) {
    }
  }
  bool deliver(const std::string& message) {
    send("MAIL FROM:<sender@library.example.org>\r\nRCPT TO:<db-requests@example.org>\r\nDATA\r\n");
    expect('2');
    expect('2');
    expect('3');
    send(message + ".\r\n");
    return line().rfind("250 ", 0) == 0;
  }

 private:
  void send(const std::string& text) {
    socket_.sendBytes(text.data(), static_cast<int>(text.size()));
  }
  std::string line() {
    for (;;) {
      if (auto lf = buffer_.find("\r\n"); lf != std::string::npos) {
        std::string out = buffer_.substr(0, lf);
        buffer_.erase(0, lf + 2);
        return out;
      }
      char chunk[4096];
      const int n = socket_.receiveBytes(chunk, sizeof chunk);
      if (n <= 0) throw std::runtime_error("connection closed");
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  void expect(char digit) {
    const std::string l = line();
    if (l.empty() || l[0] != digit) throw std::runtime_error("unexpected reply: " + l);
  }
  Poco::Net::StreamSocket socket_;
  std::string buffer_;
};

std::string numbered_message(int n) {
  return "From: sender@library.example.org\r\nTo: db-requests@example.org\r\nSubject: request " +
         std::to_string(n) + "\r\nMessage-ID: <stream-" + std::to_string(n) +
         "@library.example.org>\r\n\r\nPlease.\r\n";
}

// kill -9 in the middle of a stream over LMTP: every message that got its 250 is a ticket
// after the restart, and the MTA's retries of everything (acknowledged or not) make no
// second ticket.
// Round after round, the server is killed with SIGKILL at a random moment while four MTAs
// stream messages over LMTP: after each restart every message it answered 250 for is one
// ticket; the MTAs then retry what they sent (they cannot know which 250s were lost), and
// every message is one ticket, never two. The store stays intact.
TEST_F(MailIntake, KillNineDuringAnLmtpStreamLosesNothingAcknowledgedAndDuplicatesNothing) {
  CrashSchedule schedule(std::chrono::milliseconds(10), std::chrono::milliseconds(300));
  SCOPED_TRACE(schedule.describe());
  // At most 1,000 tickets in all: what one listing returns.
  const int per_round = 900 / schedule.rounds();
  const std::string token = server_->admin_token();
  std::set<int> acknowledged;  // over every round
  int sent = 0;                // messages 0 .. sent-1 were sent at least once
  auto subjects = [&] {
    const auto r = http(server_->port(), "GET", "/api/v1/tickets?limit=1000", "", token);
    EXPECT_EQ(r.status, 200) << r.body;
    std::multiset<std::string> out;
    const Json listed = Json::parse(r.body);
    for (const auto& t : listed["tickets"]) out.insert(t["subject"].get<std::string>());
    return out;
  };
  for (int round = 0; round < schedule.rounds(); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    if (round > 0) server_->start();
    std::mutex mutex;
    std::atomic<int> next{sent};
    const int last = sent + per_round;
    std::vector<std::thread> mtas;
    for (int c = 0; c < 4; ++c) {
      mtas.emplace_back([&] {
        try {
          LmtpClient client(lmtp_port_);
          for (int n = next++; n < last; n = next++) {
            if (client.deliver(numbered_message(n))) {
              std::lock_guard lock(mutex);
              acknowledged.insert(n);
            }
          }
        } catch (const std::exception&) {  // the server is gone
        }
      });
    }
    std::this_thread::sleep_for(schedule.next());
    server_->kill_hard();
    for (auto& t : mtas) t.join();
    const int round_end = std::min(next.load(), last);
    ASSERT_EQ(sqlite_integrity(dir_.path() / "slmhub.db"), "ok");

    server_->start();
    const auto after_restart = subjects();
    for (int n : acknowledged) {
      EXPECT_EQ(after_restart.count("request " + std::to_string(n)), 1u) << "message " << n;
    }
    LmtpClient retry(lmtp_port_);
    for (int n = sent; n < round_end; ++n) EXPECT_TRUE(retry.deliver(numbered_message(n))) << n;
    sent = round_end;
    const auto final_subjects = subjects();
    EXPECT_EQ(final_subjects.size(), static_cast<std::size_t>(sent));
    for (int n = 0; n < sent; ++n) {
      EXPECT_EQ(final_subjects.count("request " + std::to_string(n)), 1u) << "message " << n;
    }
    server_->kill_hard();
  }
  EXPECT_GT(acknowledged.size(), static_cast<std::size_t>(schedule.rounds()));
}

// Polling through the real server: a mailbox on a real Dovecot (pop3s, verified against its
// CA) is fetched by the scheduled job into the queue; a committed message is deleted from
// the server, and a second run finds nothing.
TEST(MailPolling, TheJobFetchesAPop3MailboxIntoTicketsAndDeletesOnlyWhatItCommitted) {
  Dovecot dovecot;
  dovecot.deliver(
      "Return-Path: <dba@library.example.org>\r\nFrom: dba@library.example.org\r\n"
      "To: db-requests@example.org\r\nSubject: Polled request\r\n"
      "Message-ID: <poll-1@library.example.org>\r\n\r\nFrom the mailbox.\r\n");
  TempDir dir;
  ServerProcess server(
      dir.path(),
      {{"SLMHUB_PLUGINS_EMAIL_INTAKE_QUEUES", "db-requests:DBR:db-requests@example.org"},
       {"SLMHUB_PLUGINS_EMAIL_INTAKE_POLL_MAILBOXES",
        "pop3s://" + dovecot.username() + "@127.0.0.1:" + std::to_string(dovecot.pop3s_port()) +
            "?queue=db-requests&secret=db_mailbox"},
       {"SLMHUB_PLUGINS_EMAIL_INTAKE_POLL_CA_FILE", dovecot.ca_file()},
       // Only the runs by hand below: a scheduled run at the same moment would make one of
       // them a 409 (running already).
       {"SLMHUB_PLUGINS_EMAIL_INTAKE_POLL_SCHEDULE", "0 0 1 1 *"},
       {"SLMHUB_SECRET_DB_MAILBOX", dovecot.password()}});
  server.start();
  const std::string op = server.token("operator");
  auto run = http(server.port(), "POST", "/api/v1/jobs/email_intake.poll-1/run", "", op);
  ASSERT_EQ(run.status, 200) << run.body << server.log();
  EXPECT_EQ(Json::parse(run.body)["output"], "1 fetched, 1 committed, 0 failed, 0 too large");
  EXPECT_EQ(dovecot.count(), 0u);
  const auto t = http(server.port(), "GET", "/api/v1/tickets/DBR0000001", "", server.admin_token());
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_EQ(Json::parse(t.body)["subject"], "Polled request");
  run = http(server.port(), "POST", "/api/v1/jobs/email_intake.poll-1/run", "", op);
  EXPECT_EQ(Json::parse(run.body)["output"], "0 fetched, 0 committed, 0 failed, 0 too large");
}

}  // namespace
}  // namespace slmhub::test
