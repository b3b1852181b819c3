// The LMTP listener against a real client (swaks, as an MTA would speak it) and raw
// pipelined sessions: one reply per recipient after DATA, given only when the delivery
// callback returned, temporary failures as 451 so the client keeps the message, size limits,
// and a stop() that does not wait for idle clients.
#include "lmtp.hpp"

#include <Poco/Exception.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

#include "test_logger.hpp"

namespace slmhub::mail {
namespace {

struct Delivered {
  Envelope envelope;
  std::string message;
};

class LmtpTest : public testing::Test {
 protected:
  void start(LmtpSettings settings = {}) {
    settings.port = 0;
    LmtpHandlers handlers;
    handlers.check_recipient = [](const std::string& rcpt) -> std::optional<LmtpReply> {
      if (rcpt.ends_with("@example.org")) return std::nullopt;
      return LmtpReply{550, "5.1.1", "no queue for <" + rcpt + ">"};
    };
    handlers.deliver = [this](const Envelope& e, std::string message) {
      std::lock_guard lock(mutex_);
      if (fail_) throw std::runtime_error("store unavailable");
      delivered_.push_back({e, message});
      return std::vector<LmtpReply>(e.recipients.size(),
                                    LmtpReply{250, "2.0.0", "ticket DBR0000001"});
    };
    server_ = std::make_unique<LmtpServer>(settings, std::move(handlers), log_);
    port_ = server_->start();
  }

  // Runs swaks; returns its exit status and transcript.
  std::pair<int, std::string> swaks(const std::string& args) {
    const std::string cmd = "swaks --protocol LMTP --server 127.0.0.1 --port " +
                            std::to_string(port_) + " --helo test.example.org " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    std::array<char, 4096> buf{};
    while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
    const int status = pclose(p);
    return {WEXITSTATUS(status), out};
  }

  // A raw session: sends `text` at once (pipelined) and reads until `lines` reply lines came.
  std::string session(const std::string& text, int lines) {
    Poco::Net::StreamSocket s(
        Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port_)));
    s.setReceiveTimeout(Poco::Timespan(10, 0));
    s.sendBytes(text.data(), static_cast<int>(text.size()));
    std::string got;
    char buf[4096];
    while (std::count(got.begin(), got.end(), '\n') < lines) {
      const int n = s.receiveBytes(buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }

  test::TestLogger log_;
  std::unique_ptr<LmtpServer> server_;
  int port_ = 0;
  std::mutex mutex_;
  std::vector<Delivered> delivered_;
  std::atomic<bool> fail_{false};  // set by the test while the server thread reads it
};

// A port another listener holds is refused, even when that listener allows sharing
// (SO_REUSEPORT, as a second slmhub had set): two listeners would split the MTA's deliveries
// between two servers.
TEST(LmtpListen, APortInUseIsRefusedNotShared) {
  Poco::Net::ServerSocket other;
  other.bind(Poco::Net::SocketAddress("127.0.0.1", 0), true, true);
  other.listen();
  LmtpSettings settings;
  settings.port = other.address().port();
  test::TestLogger log;
  LmtpServer server(settings, {}, log);
  const std::string where = "cannot listen for LMTP on 127.0.0.1:" + std::to_string(settings.port);
  try {
    server.start();
    ADD_FAILURE() << "started on a port in use";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with(where)) << e.what();
    EXPECT_NE(std::string(e.what()).find("Address already in use"), std::string::npos) << e.what();
  }
}

TEST_F(LmtpTest, SwaksDeliversAndEachRecipientGetsItsOwnAnswer) {
  start();
  const auto [status, transcript] = swaks(
      "--from dba@library.example.org --to db-requests@example.org,nobody@elsewhere.example.net "
      "--header 'Subject: Please add an account' --body 'line one\n.leading dot\nend'");
  EXPECT_EQ(status, 0) << transcript;
  EXPECT_NE(transcript.find("550 5.1.1 no queue for <nobody@elsewhere.example.net>"),
            std::string::npos)
      << transcript;
  EXPECT_NE(transcript.find("250 2.0.0 ticket DBR0000001"), std::string::npos) << transcript;
  std::lock_guard lock(mutex_);
  ASSERT_EQ(delivered_.size(), 1u);
  EXPECT_EQ(delivered_[0].envelope.mail_from, "dba@library.example.org");
  EXPECT_EQ(delivered_[0].envelope.recipients, std::vector<std::string>{"db-requests@example.org"});
  EXPECT_NE(delivered_[0].message.find("Subject: Please add an account\r\n"), std::string::npos);
  // Dot-stuffed by swaks on the wire, unstuffed here.
  EXPECT_NE(delivered_[0].message.find("\r\n.leading dot\r\n"), std::string::npos)
      << delivered_[0].message;
}

TEST_F(LmtpTest, AFailedDeliveryIsATemporaryFailureSoTheClientKeepsTheMessage) {
  start();
  fail_ = true;
  const auto [status, transcript] =
      swaks("--from dba@library.example.org --to db-requests@example.org");
  EXPECT_NE(status, 0);
  EXPECT_NE(transcript.find("451 4.3.0"), std::string::npos) << transcript;
  EXPECT_TRUE(delivered_.empty());
  // The log names the message, so that the MTA's retries can be matched to it.
  EXPECT_TRUE(
      log_.contains("LMTP delivery from <dba@library.example.org> to "
                    "<db-requests@example.org> (",
                    "error"));
  EXPECT_TRUE(log_.contains("bytes) failed, the MTA will retry: store unavailable", "error"));
}

TEST_F(LmtpTest, PipelinedCommandsAreAnsweredInOrderOncePerRecipient) {
  start();
  const std::string replies = session(
      "LHLO mx.example.org\r\nMAIL FROM:<>\r\nRCPT TO:<a@example.org>\r\n"
      "RCPT TO:<b@example.org>\r\nDATA\r\n",
      10);
  // 220 greeting, 5 lines of LHLO, MAIL, two RCPT, 354.
  EXPECT_NE(replies.find("250 2.1.0 OK\r\n250 2.1.5 OK\r\n250 2.1.5 OK\r\n354 "), std::string::npos)
      << replies;

  Poco::Net::StreamSocket s(
      Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port_)));
  s.setReceiveTimeout(Poco::Timespan(10, 0));
  const std::string all =
      "LHLO mx.example.org\r\nMAIL FROM:<>\r\nRCPT TO:<a@example.org>\r\nRCPT "
      "TO:<b@example.org>\r\n"
      "DATA\r\nSubject: bounce\r\n\r\nbody\r\n.\r\nQUIT\r\n";
  s.sendBytes(all.data(), static_cast<int>(all.size()));
  std::string got;
  char buf[4096];
  for (int n; (n = s.receiveBytes(buf, sizeof buf)) > 0;)
    got.append(buf, static_cast<std::size_t>(n));
  EXPECT_NE(got.find("354 2.0.0 end data with <CR><LF>.<CR><LF>\r\n250 2.0.0 ticket DBR0000001\r\n"
                     "250 2.0.0 ticket DBR0000001\r\n221 "),
            std::string::npos)
      << got;
  std::lock_guard lock(mutex_);
  ASSERT_EQ(delivered_.size(), 1u);
  EXPECT_EQ(delivered_[0].envelope.mail_from, "");  // a bounce keeps its null sender
  EXPECT_EQ(delivered_[0].message, "Subject: bounce\r\n\r\nbody\r\n");
}

TEST_F(LmtpTest, ProtocolErrorsAndSizeLimits) {
  LmtpSettings small;
  small.max_message_bytes = 64;
  start(small);
  const std::string replies = session(
      "MAIL FROM:<x@example.org>\r\nEHLO x\r\nLHLO x\r\nRCPT TO:<a@example.org>\r\n"
      "MAIL FROM:<x@example.org> SIZE=100\r\nMAIL FROM:<x@example.org>\r\nRCPT "
      "TO:<a@example.org>\r\n"
      "DATA\r\n" +
          std::string(100, 'x') + "\r\n.\r\nFOO\r\n",
      15);  // greeting, 503, 500, 5 for LHLO, 503, 552, 250, 250, 354, 552, 500
  EXPECT_NE(replies.find("503 5.5.1 LHLO first"), std::string::npos) << replies;
  EXPECT_NE(replies.find("500 5.5.1 this is an LMTP server"), std::string::npos) << replies;
  EXPECT_NE(replies.find("503 5.5.1 MAIL first"), std::string::npos) << replies;
  EXPECT_NE(replies.find("552 5.3.4 message larger than 64 bytes\r\n250 2.1.0"), std::string::npos)
      << replies;
  EXPECT_NE(replies.find("354 2.0.0 end data with <CR><LF>.<CR><LF>\r\n552 5.3.4"),
            std::string::npos)
      << replies;
  EXPECT_NE(replies.find("500 5.5.2 command not recognized"), std::string::npos) << replies;
  EXPECT_TRUE(delivered_.empty());
}

// A line longer than RFC 5321's limit (unwrapped base64 from a script) arrives whole: what is
// acknowledged is what was sent, byte for byte.
TEST_F(LmtpTest, AMessageLineOfTwoMebibytesIsDeliveredWhole) {
  start();
  std::string line(2u << 20, 'A');
  for (std::size_t k = 0; k < line.size(); k += 4099) line[k] = static_cast<char>('a' + k % 26);
  const std::string message = "Subject: export\r\n\r\n" + line + "\r\nend\r\n";
  const std::string replies = session(
      "LHLO mx.example.org\r\nMAIL FROM:<x@example.org>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n" +
          message + ".\r\n",
      10);
  EXPECT_NE(replies.find("\r\n250 2.0.0 ticket DBR0000001\r\n"), std::string::npos) << replies;
  std::lock_guard lock(mutex_);
  ASSERT_EQ(delivered_.size(), 1u);
  EXPECT_EQ(delivered_[0].message.size(), message.size());
  EXPECT_TRUE(delivered_[0].message == message);  // not printed: 2 MiB
}

// max_connections sessions run at once, also past 16 (where Poco's default thread pool stops):
// each of 24 open sessions is greeted while all of them stay open.
TEST_F(LmtpTest, AsManySessionsRunAtOnceAsConfigured) {
  LmtpSettings settings;
  settings.max_connections = 24;
  start(settings);
  std::vector<std::unique_ptr<Poco::Net::StreamSocket>> open;
  int greeted = 0;
  for (int i = 0; i < 24; ++i) {
    open.push_back(std::make_unique<Poco::Net::StreamSocket>(
        Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port_))));
    open.back()->setReceiveTimeout(Poco::Timespan(10, 0));
    char buf[256];
    try {
      if (open.back()->receiveBytes(buf, sizeof buf) > 0 && buf[0] == '2') ++greeted;
    } catch (const Poco::TimeoutException&) {  // waits for a thread: counted as not greeted
    }
  }
  EXPECT_EQ(greeted, 24);
}

TEST_F(LmtpTest, StopEndsIdleSessionsWithoutWaitingForThem) {
  start();
  Poco::Net::StreamSocket idle(
      Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port_)));
  char buf[256];
  ASSERT_GT(idle.receiveBytes(buf, sizeof buf), 0);  // the greeting: the session runs
  const auto before = std::chrono::steady_clock::now();
  server_->stop();
  // The idle timeout is five minutes; stop() must not wait for it. (A generous bound: this
  // is not a speed test, only "did not wait for the client".)
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(30));
}

}  // namespace
}  // namespace slmhub::mail
