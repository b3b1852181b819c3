// The IMAP client (libcurl) against a real Dovecot (tests/support/dovecot.hpp) on 127.0.0.1:
// listing and fetching change no flag (the message's maildir file name is the witness), only
// mark_seen, remove and move do, and a server that cannot be verified is never logged in to.
#include "imap.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

#include "dovecot.hpp"
#include "error_of.hpp"
#include "server_process.hpp"
#include "smtp_recorder.hpp"

namespace slmhub::mail {
namespace {

using test::Dovecot;
using Selection = ImapSession::Selection;

ImapSettings settings_for(const Dovecot& server, ImapSettings::Tls tls) {
  ImapSettings settings;
  settings.host = "127.0.0.1";
  settings.port = tls == ImapSettings::Tls::implicit ? server.imaps_port() : server.imap_port();
  settings.tls = tls;
  settings.username = server.username();
  settings.password = server.password();
  settings.ca_file = server.ca_file();
  settings.timeout_ms = 10000;
  return settings;
}

// CRLF line breaks; a body line that looks like the end of an IMAP command, which must stay
// message content.
std::string message(int n) {
  return "From: Ann <ann@example.org>\r\n"
         "To: db-requests@example.org\r\n"
         "Subject: request " +
         std::to_string(n) +
         "\r\n"
         "Message-ID: <request-" +
         std::to_string(n) +
         "@example.org>\r\n"
         "\r\n"
         "A005 OK Fetch completed\r\n"
         "* 1 FETCH (FLAGS (\\Seen))\r\n"
         "last line of " +
         std::to_string(n) + "\r\n";
}

TEST(ImapClient, ListsUnseenAndFetchesWithoutChangingFlags) {
  Dovecot server;
  const std::string read = server.deliver(message(1), "INBOX", "S");
  const std::string second = server.deliver(message(2));
  const std::string third = server.deliver(message(3));
  const std::string deleted = server.deliver(message(4), "INBOX", "T");

  const ImapClient client(settings_for(server, ImapSettings::Tls::implicit));
  auto session = client.open("INBOX");
  EXPECT_GT(session->uidvalidity(), 0u);
  std::size_t total = 0;
  const auto unseen = session->list(Selection::unseen, 100, &total);
  ASSERT_EQ(unseen.size(), 2u) << server.log();
  EXPECT_EQ(total, 2u);
  EXPECT_LT(unseen[0].uid, unseen[1].uid);
  EXPECT_EQ(unseen[0].size, message(2).size());
  EXPECT_EQ(unseen[1].size, message(3).size());
  const auto undeleted = session->list(Selection::undeleted, 100);
  ASSERT_EQ(undeleted.size(), 3u);
  EXPECT_EQ(undeleted[1].uid, unseen[0].uid);

  EXPECT_EQ(session->fetch(unseen[1].uid, 1 << 20), message(3));
  EXPECT_EQ(session->fetch(unseen[0].uid, 1 << 20), message(2));
  EXPECT_EQ(session->fetch(undeleted[0].uid, 1 << 20), message(1));
  session.reset();

  EXPECT_EQ(server.flags(read), "S");
  EXPECT_EQ(server.flags(second), "");
  EXPECT_EQ(server.flags(third), "");
  EXPECT_EQ(server.flags(deleted), "T");
  EXPECT_EQ(server.count(), 4u);

  // At most `max_count`, oldest first, and the total says how many wait.
  auto next = client.open("INBOX");
  const auto first_only = next->list(Selection::unseen, 1, &total);
  ASSERT_EQ(first_only.size(), 1u);
  EXPECT_EQ(first_only[0].uid, unseen[0].uid);
  EXPECT_EQ(total, 2u);
}

TEST(ImapClient, FlagModeMarksOnlyTheCommittedMessagesSeen) {
  Dovecot server;
  const std::string first = server.deliver(message(1));
  const std::string second = server.deliver(message(2));
  const std::string third = server.deliver(message(3));
  const ImapClient client(settings_for(server, ImapSettings::Tls::implicit));
  auto session = client.open("INBOX");
  const auto listed = session->list(Selection::unseen, 100);
  ASSERT_EQ(listed.size(), 3u);

  ASSERT_EQ(session->fetch(listed[0].uid, 1 << 20), message(1));
  session->mark_seen({listed[0].uid});
  // The folder was reopened read-write to flag; the next fetch must not flag anything.
  ASSERT_EQ(session->fetch(listed[1].uid, 1 << 20), message(2));
  ASSERT_EQ(session->fetch(listed[2].uid, 1 << 20), message(3));
  session->mark_seen({listed[2].uid});
  session.reset();

  EXPECT_EQ(server.flags(first), "S");
  EXPECT_EQ(server.flags(second), "");
  EXPECT_EQ(server.flags(third), "S");
  EXPECT_EQ(server.count(), 3u);
  const auto left = client.open("INBOX")->list(Selection::unseen, 100);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].uid, listed[1].uid);
}

TEST(ImapClient, DeleteModeExpungesOnlyTheCommittedMessages) {
  Dovecot server;
  const std::string first = server.deliver(message(1));
  const std::string second = server.deliver(message(2));
  // Someone else's \Deleted message: UID EXPUNGE (UIDPLUS) leaves it alone.
  const std::string others = server.deliver(message(3), "INBOX", "T");
  const ImapClient client(settings_for(server, ImapSettings::Tls::implicit));
  auto session = client.open("INBOX");
  const auto listed = session->list(Selection::undeleted, 100);
  ASSERT_EQ(listed.size(), 2u);
  session->remove({listed[1].uid});
  session.reset();

  EXPECT_EQ(server.count(), 2u);
  EXPECT_EQ(server.flags(first), "");
  EXPECT_FALSE(server.flags(second).has_value());
  EXPECT_EQ(server.flags(others), "T");
}

TEST(ImapClient, MoveModeMovesTheMessageToTheFolder) {
  Dovecot server;
  server.create_folder("Processed");
  const std::string first = server.deliver(message(1));
  const std::string second = server.deliver(message(2));
  const ImapClient client(settings_for(server, ImapSettings::Tls::implicit));
  auto session = client.open("INBOX");
  const auto listed = session->list(Selection::undeleted, 100);
  ASSERT_EQ(listed.size(), 2u);
  session->move({listed[0].uid}, "Processed");

  // A folder that does not exist: the server's refusal is quoted, nothing moves.
  const std::string error = test::error_of([&] { session->move({listed[1].uid}, "Nowhere"); });
  EXPECT_NE(error.find("UID MOVE to 'Nowhere' failed"), std::string::npos) << error;
  EXPECT_NE(error.find("NO [TRYCREATE]"), std::string::npos) << error;
  session.reset();

  EXPECT_EQ(server.count(), 1u);
  EXPECT_FALSE(server.flags(first).has_value());
  EXPECT_EQ(server.flags(second), "");
  ASSERT_EQ(server.count("Processed"), 1u);
  EXPECT_EQ(server.contents("Processed").at(0), message(1));
}

TEST(ImapClient, StartTlsSecuresThePlainPort) {
  Dovecot server;
  const std::string name = server.deliver(message(5));
  const ImapClient client(settings_for(server, ImapSettings::Tls::starttls));
  auto session = client.open("INBOX");
  const auto listed = session->list(Selection::unseen, 100);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(session->fetch(listed[0].uid, 1 << 20), message(5));
  session->mark_seen({listed[0].uid});
  session.reset();
  EXPECT_EQ(server.flags(name), "S");
  EXPECT_NE(server.log().find("method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid="),
            std::string::npos);
}

// A connection the server dropped between two commands, politely (BYE) or abruptly (the
// process killed). libcurl reuses it all the same (unread TLS data makes it look alive) and
// the next transfer fails; the client must reconnect, reopen the folder read-only before it
// fetches (a fetch from a folder libcurl SELECTed read-write would set \Seen), and flag only
// what it was asked to.
class ImapDroppedConnection : public ::testing::TestWithParam<bool> {};

TEST_P(ImapDroppedConnection, NeverFetchesFromAFolderOpenedReadWrite) {
  const bool abruptly = GetParam();
  Dovecot server;
  const std::string first = server.deliver(message(1));
  const std::string second = server.deliver(message(2));
  const std::string third = server.deliver(message(3));
  const ImapClient client(settings_for(server, ImapSettings::Tls::implicit));
  auto session = client.open("INBOX");
  const auto listed = session->list(Selection::unseen, 100);
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(session->fetch(listed[0].uid, 1 << 20), message(1));

  const auto drop = [&] {
    if (abruptly) {
      server.kill_sessions();
      return;
    }
    server.kick();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (server.log().find("Disconnected: Server shutting down") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  drop();
  EXPECT_EQ(session->fetch(listed[1].uid, 1 << 20), message(2));
  EXPECT_EQ(server.flags(second), "");
  drop();
  session->mark_seen({listed[1].uid});
  drop();
  EXPECT_EQ(session->list(Selection::unseen, 100).size(), 2u);
  session.reset();
  EXPECT_EQ(server.flags(first), "");
  EXPECT_EQ(server.flags(second), "S");
  EXPECT_EQ(server.flags(third), "");
}

INSTANTIATE_TEST_SUITE_P(Imap, ImapDroppedConnection, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Abruptly" : "WithBye"; });

TEST(ImapClient, UntrustedCertificateIsRefusedBeforeLogin) {
  Dovecot server;
  const std::string name = server.deliver(message(1));
  test::TempDir other;
  const auto stranger = test::make_self_signed_certificate(other.path(), "127.0.0.1");
  for (const auto tls : {ImapSettings::Tls::implicit, ImapSettings::Tls::starttls}) {
    for (const std::string& ca_file : {std::string(), stranger.certificate.string()}) {
      ImapSettings settings = settings_for(server, tls);
      settings.ca_file = ca_file;
      const ImapClient client(settings);
      const std::string error = test::error_of([&] { client.open("INBOX"); });
      EXPECT_NE(error.find("IMAP server 127.0.0.1:" + std::to_string(settings.port)),
                std::string::npos)
          << error;
      EXPECT_NE(error.find("SSL certificate problem: self-signed certificate"), std::string::npos)
          << error;
    }
  }
  EXPECT_EQ(server.flags(name), "");
  EXPECT_EQ(server.log().find("Login: user=<"), std::string::npos) << server.log();
}

TEST(ImapClient, CertificateForAnotherNameIsRefused) {
  test::DovecotOptions options;
  options.certificate_name = "mail.example.org";
  Dovecot server(options);
  const ImapClient client(settings_for(server, ImapSettings::Tls::implicit));
  const std::string error = test::error_of([&] { client.open("INBOX"); });
  EXPECT_NE(
      error.find("no alternative certificate subject name matches target host name '127.0.0.1'"),
      std::string::npos)
      << error;
  EXPECT_EQ(server.log().find("Login: user=<"), std::string::npos) << server.log();
}

TEST(ImapClient, WrongPasswordIsRefused) {
  Dovecot server;
  ImapSettings settings = settings_for(server, ImapSettings::Tls::implicit);
  settings.password = "not-the-password";
  const ImapClient client(settings);
  const std::string error = test::error_of([&] { client.open("INBOX"); });
  EXPECT_NE(error.find("IMAP server 127.0.0.1:" + std::to_string(settings.port)), std::string::npos)
      << error;
  EXPECT_NE(error.find("[AUTHENTICATIONFAILED]"), std::string::npos) << error;
  EXPECT_EQ(error.find("not-the-password"), std::string::npos) << error;
}

TEST(ImapClient, MissingFolderIsRefusedWithTheServersReply) {
  Dovecot server;
  const ImapClient client(settings_for(server, ImapSettings::Tls::implicit));
  const std::string error = test::error_of([&] { client.open("Archive"); });
  EXPECT_NE(error.find("SELECT 'Archive' failed"), std::string::npos) << error;
  EXPECT_NE(error.find("NO Mailbox doesn't exist: Archive"), std::string::npos) << error;
}

TEST(ImapClient, MessageOverTheLimitIsNotHeldAndStaysUnseen) {
  Dovecot server;
  const std::string big = server.deliver(message(1) + std::string(8000, 'x') + "\r\n");
  const std::string small = server.deliver(message(2));
  const ImapClient client(settings_for(server, ImapSettings::Tls::implicit));
  auto session = client.open("INBOX");
  const auto listed = session->list(Selection::unseen, 100);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_THROW(session->fetch(listed[0].uid, 4096), MessageTooLarge);
  // The session recovers (libcurl dropped the connection mid-literal; it reconnects).
  EXPECT_EQ(session->fetch(listed[1].uid, 4096), message(2));
  EXPECT_EQ(session->fetch(listed[1].uid, message(2).size()), message(2));
  EXPECT_THROW(session->fetch(listed[1].uid, message(2).size() - 1), MessageTooLarge);
  session.reset();
  EXPECT_EQ(server.flags(big), "");
  EXPECT_EQ(server.flags(small), "");
}

TEST(ImapClient, MessageExpungedByAnotherClientIsNotFound) {
  Dovecot server;
  server.deliver(message(1));
  const ImapClient client(settings_for(server, ImapSettings::Tls::implicit));
  auto session = client.open("INBOX");
  const auto listed = session->list(Selection::unseen, 100);
  ASSERT_EQ(listed.size(), 1u);
  client.open("INBOX")->remove({listed[0].uid});
  EXPECT_EQ(session->fetch(listed[0].uid, 1 << 20), std::nullopt);
  EXPECT_EQ(server.count(), 0u);
}

TEST(ImapClient, SettingsAndFolderNamesThatCannotWorkAreRefused) {
  ImapSettings good;
  good.username = "intake";
  good.password = "secret";
  const auto refused = [&](const std::function<void(ImapSettings&)>& change) {
    ImapSettings settings = good;
    change(settings);
    try {
      ImapClient client(settings);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_EQ(refused([](ImapSettings& s) { s.port = 70000; }),
            "IMAP settings: port 70000 is outside 1-65535");
  EXPECT_EQ(refused([](ImapSettings& s) { s.host = "mail.example.org/INBOX"; }),
            "IMAP settings: host 'mail.example.org/INBOX' is not a host name or address");
  EXPECT_EQ(refused([](ImapSettings& s) { s.username.clear(); }),
            "IMAP settings: username '' must be set, without spaces or control characters");
  EXPECT_EQ(refused([](ImapSettings& s) { s.ca_file = "/nonexistent/ca.pem"; }),
            "IMAP settings: the CA file '/nonexistent/ca.pem' cannot be read");
  EXPECT_EQ(refused([](ImapSettings&) {}), "(accepted)");

  EXPECT_THROW(check_imap_folder("", "test"), std::invalid_argument);
  EXPECT_THROW(check_imap_folder("INBOX\r\nA1 LOGOUT", "test"), std::invalid_argument);
  EXPECT_THROW(check_imap_folder("Entw\xC3\xBC rfe", "test"), std::invalid_argument);
  EXPECT_NO_THROW(check_imap_folder("Processed \"2026\"", "test"));
}

}  // namespace
}  // namespace slmhub::mail
