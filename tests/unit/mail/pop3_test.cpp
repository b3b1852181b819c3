// The POP3 client against a real Dovecot (tests/support/dovecot.hpp) on 127.0.0.1: what it
// lists and retrieves is byte for byte what is in the maildrop, DELE takes effect only at
// QUIT, and a server that cannot be verified gets neither the credentials nor a chance to
// lose a message.
#include "pop3.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>

#include "dovecot.hpp"
#include "error_of.hpp"
#include "server_process.hpp"
#include "smtp_recorder.hpp"

namespace slmhub::mail {
namespace {

using test::Dovecot;

Pop3Settings settings_for(const Dovecot& server, Pop3Settings::Tls tls) {
  Pop3Settings settings;
  settings.host = "127.0.0.1";
  settings.port = tls == Pop3Settings::Tls::implicit ? server.pop3s_port() : server.pop3_port();
  settings.tls = tls;
  settings.username = server.username();
  settings.password = server.password();
  settings.ca_file = server.ca_file();
  settings.timeout_ms = 10000;
  return settings;
}

// CRLF line breaks, as Dovecot serves them; lines starting with dots, which POP3 stuffs.
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
         ".hidden line\r\n"
         ".\r\n"
         "..two dots\r\n"
         "last line of " +
         std::to_string(n) + "\r\n";
}

TEST(Pop3Client, ListsRetrievesAndDeletesOverPop3s) {
  Dovecot server;
  const std::string first = server.deliver(message(1));
  const std::string second = server.deliver(message(2));
  const std::string third = server.deliver(message(3));

  const Pop3Client client(settings_for(server, Pop3Settings::Tls::implicit));
  auto session = client.open();
  const auto listed = session->list();
  ASSERT_EQ(listed.size(), 3u) << server.log();
  std::set<std::string> uids;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(listed[i].number, i + 1);
    EXPECT_EQ(listed[i].size, message(i + 1).size());
    uids.insert(listed[i].uid);
  }
  EXPECT_EQ(uids.size(), 3u);
  EXPECT_EQ(uids.count(""), 0u);

  EXPECT_EQ(session->retrieve(2, 1 << 20), message(2));
  session->remove(2);
  session->quit();

  EXPECT_EQ(server.count(), 2u);
  EXPECT_FALSE(server.flags(second).has_value());
  EXPECT_TRUE(server.flags(first).has_value());
  EXPECT_TRUE(server.flags(third).has_value());

  // The UIDL of a message survives the session; the numbers are renumbered.
  auto again = client.open();
  const auto relisted = again->list();
  ASSERT_EQ(relisted.size(), 2u);
  EXPECT_EQ(relisted[0].uid, listed[0].uid);
  EXPECT_EQ(relisted[1].uid, listed[2].uid);
  EXPECT_EQ(again->retrieve(2, 1 << 20), message(3));
}

TEST(Pop3Client, DeleteTakesEffectOnlyAtQuit) {
  Dovecot server;
  server.deliver(message(1));
  server.deliver(message(2));
  const Pop3Client client(settings_for(server, Pop3Settings::Tls::implicit));
  {
    auto session = client.open();
    session->remove(1);
    session->remove(2);
    // Dropped without QUIT, as when the process dies after a commit: nothing is removed.
  }
  EXPECT_EQ(server.count(), 2u);
  auto session = client.open();
  EXPECT_EQ(session->list().size(), 2u);
}

TEST(Pop3Client, StlsSecuresThePlainPortBeforeLogin) {
  Dovecot server;
  server.deliver(message(7));
  const Pop3Client client(settings_for(server, Pop3Settings::Tls::starttls));
  auto session = client.open();
  const auto listed = session->list();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(session->retrieve(1, 1 << 20), message(7));
  session->remove(1);
  session->quit();
  EXPECT_EQ(server.count(), 0u);
}

TEST(Pop3Client, UntrustedCertificateIsRefusedAndNothingIsDeleted) {
  Dovecot server;
  server.deliver(message(1));
  test::TempDir other;
  const auto stranger = test::make_self_signed_certificate(other.path(), "127.0.0.1");

  for (const auto tls : {Pop3Settings::Tls::implicit, Pop3Settings::Tls::starttls}) {
    // The system's CAs only, then a CA that did not issue the server's certificate.
    for (const std::string& ca_file : {std::string(), stranger.certificate.string()}) {
      Pop3Settings settings = settings_for(server, tls);
      settings.ca_file = ca_file;
      const Pop3Client client(settings);
      const std::string error = test::error_of([&] { client.open()->list(); });
      EXPECT_NE(error.find("POP3 server 127.0.0.1:" + std::to_string(settings.port)),
                std::string::npos)
          << error;
      EXPECT_NE(error.find("certificate verify failed"), std::string::npos) << error;
    }
  }
  EXPECT_EQ(server.count(), 1u);
  // Not one login: the credentials never reached a server that was not verified.
  EXPECT_EQ(server.log().find("Login: user=<"), std::string::npos) << server.log();
}

TEST(Pop3Client, CertificateForAnotherNameIsRefused) {
  test::DovecotOptions options;
  options.certificate_name = "mail.example.org";
  Dovecot server(options);
  server.deliver(message(1));
  // Trusted issuer, wrong name: the certificate is for mail.example.org, not 127.0.0.1.
  const Pop3Client client(settings_for(server, Pop3Settings::Tls::implicit));
  const std::string error = test::error_of([&] { client.open(); });
  EXPECT_NE(error.find("certificate verify failed"), std::string::npos) << error;
  EXPECT_EQ(server.count(), 1u);
}

TEST(Pop3Client, WrongPasswordIsRefusedWithTheServersReply) {
  Dovecot server;
  Pop3Settings settings = settings_for(server, Pop3Settings::Tls::implicit);
  settings.password = "not-the-password";
  const Pop3Client client(settings);
  const std::string error = test::error_of([&] { client.open(); });
  EXPECT_NE(error.find("refused the credentials of user 'intake': -ERR"), std::string::npos)
      << error;
  EXPECT_EQ(error.find("not-the-password"), std::string::npos) << error;
}

TEST(Pop3Client, MessageOverTheLimitIsDroppedAndTheSessionGoesOn) {
  Dovecot server;
  server.deliver(message(1));
  server.deliver(message(2) + std::string(5000, 'x') + "\r\n");
  server.deliver(message(3));
  const Pop3Client client(settings_for(server, Pop3Settings::Tls::implicit));
  auto session = client.open();
  EXPECT_THROW(session->retrieve(2, 4096), MessageTooLarge);
  // The rest of message 2 was read and dropped: the next reply is message 3's.
  EXPECT_EQ(session->retrieve(3, 4096), message(3));
  // A limit of exactly the message's size is enough.
  EXPECT_EQ(session->retrieve(1, message(1).size()), message(1));
  EXPECT_THROW(session->retrieve(1, message(1).size() - 1), MessageTooLarge);
  session->quit();
  EXPECT_EQ(server.count(), 3u);
}

TEST(Pop3Client, SettingsThatCannotWorkAreRefusedAtOnce) {
  Pop3Settings good;
  good.username = "intake";
  good.password = "secret";
  const auto refused = [&](const std::function<void(Pop3Settings&)>& change) {
    Pop3Settings settings = good;
    change(settings);
    try {
      Pop3Client client(settings);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_EQ(refused([](Pop3Settings& s) { s.port = 0; }),
            "POP3 settings: port 0 is outside 1-65535");
  EXPECT_EQ(refused([](Pop3Settings& s) { s.password.clear(); }),
            "POP3 settings: the password must be set, without line breaks");
  EXPECT_EQ(refused([](Pop3Settings& s) { s.password = "a\r\nDELE 1"; }),
            "POP3 settings: the password must be set, without line breaks");
  EXPECT_EQ(refused([](Pop3Settings& s) { s.host = "mail example.org"; }),
            "POP3 settings: host 'mail example.org' is not a host name or address");
  EXPECT_EQ(refused([](Pop3Settings& s) { s.ca_file = "/nonexistent/ca.pem"; }),
            "POP3 settings: the CA file '/nonexistent/ca.pem' cannot be read");
  EXPECT_EQ(refused([](Pop3Settings& s) { s.timeout_ms = 0; }),
            "POP3 settings: timeout_ms 0 must be positive");
}

}  // namespace
}  // namespace slmhub::mail
