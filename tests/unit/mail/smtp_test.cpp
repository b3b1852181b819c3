// The SMTP client against a real SMTP server (aiosmtpd, through SmtpRecorder) on 127.0.0.1:
// what arrives is byte for byte what was sent, TLS is verified or nothing is sent, and each
// refusal is sorted the way the outbox needs (PermanentFailure: dead letter at once; any
// other exception: retry later).
#include "smtp.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <regex>
#include <stdexcept>
#include <string>

#include "compose.hpp"
#include "manual_clock.hpp"
#include "server_process.hpp"
#include "smtp_recorder.hpp"

namespace slmhub::mail {
namespace {

using test::SmtpRecorder;
using test::SmtpRecorderOptions;

enum class Outcome { delivered, permanent, retry, invalid };

std::ostream& operator<<(std::ostream& out, Outcome outcome) {
  constexpr const char* kNames[] = {"delivered", "permanent", "retry", "invalid"};
  return out << kNames[static_cast<int>(outcome)];
}

// What the outbox would make of one attempt; the exception text goes to `what`.
Outcome attempt(const std::function<void()>& send, std::string* what = nullptr) {
  try {
    send();
    return Outcome::delivered;
  } catch (const PermanentFailure& e) {
    if (what != nullptr) *what = e.what();
    return Outcome::permanent;
  } catch (const std::invalid_argument& e) {
    if (what != nullptr) *what = e.what();
    return Outcome::invalid;
  } catch (const std::exception& e) {
    if (what != nullptr) *what = e.what();
    return Outcome::retry;
  }
}

SmtpRecorderOptions with_tls(SmtpRecorderOptions::Tls tls) {
  SmtpRecorderOptions options;
  options.tls = tls;
  return options;
}

SmtpSettings settings_for(const SmtpRecorder& server, SmtpSettings::Tls tls) {
  SmtpSettings settings;
  settings.host = "127.0.0.1";
  settings.port = server.port();
  settings.tls = tls;
  settings.ca_file = server.ca_file();
  settings.helo = "slmhub.example.org";
  settings.timeout_ms = 10000;
  return settings;
}

// A message whose body has the lines SMTP treats specially: a lone "." (the end of data
// unless stuffed), lines starting with one and two dots.
std::string dotted_message() {
  OutgoingMail mail;
  mail.from = "db-requests@example.org";
  mail.to = {"ann@example.org"};
  mail.subject = "[DB0000042] Maintenance window";
  mail.body = ".hidden line\n.\n..two dots\nlast line";
  mail.message_id = "case-42@example.org";
  mail.date = parse_instant("2026-11-03T14:00:00Z");
  return compose(mail);
}

// A port on 127.0.0.1 where nothing listens.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  if (!bound) throw std::runtime_error("cannot bind a port on 127.0.0.1");
  return ntohs(address.sin_port);
}

TEST(SmtpClient, KeepsTheConnectionForTheNextMessageAndReplacesOneTheServerClosed) {
  auto server = std::make_unique<SmtpRecorder>(with_tls(SmtpRecorderOptions::Tls::starttls));
  SmtpSettings settings = settings_for(*server, SmtpSettings::Tls::starttls);
  const int port = server->port();
  const SmtpClient client(settings);
  for (int i = 0; i < 3; ++i)
    client.send({"ann@example.org"}, "db-requests@example.org", dotted_message());
  auto received = server->messages();
  ASSERT_EQ(received.size(), 3u) << server->log();
  // One connection, one STARTTLS, three transactions.
  EXPECT_NE(received[0].peer_port, 0);
  EXPECT_EQ(received[1].peer_port, received[0].peer_port);
  EXPECT_EQ(received[2].peer_port, received[0].peer_port);

  // The server goes away and comes back (on the same port, with a new certificate: plain
  // this time). The kept connection is dead; the next message takes a new one, sent once.
  server.reset();
  SmtpRecorderOptions again;
  again.port = port;
  server = std::make_unique<SmtpRecorder>(again);
  settings.tls = SmtpSettings::Tls::none;
  settings.ca_file.clear();
  const SmtpClient plain(settings);
  plain.send({"bob@example.org"}, "db-requests@example.org", dotted_message());
  plain.send({"bob@example.org"}, "db-requests@example.org", dotted_message());
  // And the first client, whose kept connection the old server closed.
  EXPECT_THROW(client.send({"carl@example.org"}, "db-requests@example.org", dotted_message()),
               std::runtime_error);  // the new server offers no STARTTLS: refused, not resent
  received = server->messages();
  ASSERT_EQ(received.size(), 2u) << server->log();
  EXPECT_EQ(received[0].rcpt_to, std::vector<std::string>{"bob@example.org"});
  EXPECT_EQ(received[1].peer_port, received[0].peer_port);
}

TEST(SmtpClient, StaleKeptConnectionIsReplacedWithoutLosingTheMessage) {
  auto server = std::make_unique<SmtpRecorder>();
  const int port = server->port();
  SmtpSettings settings = settings_for(*server, SmtpSettings::Tls::none);
  settings.keep_alive_ms = 60000;  // still kept when the server is back
  const SmtpClient client(settings);
  client.send({"ann@example.org"}, "db-requests@example.org", dotted_message());
  server.reset();  // closes the kept connection from the server's side
  SmtpRecorderOptions again;
  again.port = port;
  server = std::make_unique<SmtpRecorder>(again);
  client.send({"bob@example.org"}, "db-requests@example.org", dotted_message());
  const auto received = server->messages();
  ASSERT_EQ(received.size(), 1u) << server->log();
  EXPECT_EQ(received[0].rcpt_to, std::vector<std::string>{"bob@example.org"});
}

// The outbox records the previous message's outcome while the server answers MAIL. That
// runs once per message, also when a stale kept connection is replaced; if it fails, the
// message is not sent and its connection is not used again.
TEST(SmtpClient, MeanwhileRunsOnceBeforeTheMessageAndItsFailureSendsNothing) {
  auto server = std::make_unique<SmtpRecorder>();
  const int port = server->port();
  SmtpSettings settings = settings_for(*server, SmtpSettings::Tls::none);
  settings.keep_alive_ms = 60000;
  const SmtpClient client(settings);
  int calls = 0;
  std::size_t received_before = 99;
  client.send({"ann@example.org"}, "db-requests@example.org", dotted_message(), [&] {
    ++calls;
    received_before = server->messages().size();
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(received_before, 0u);

  std::string what;
  EXPECT_EQ(attempt(
                [&] {
                  client.send({"bob@example.org"}, "db-requests@example.org", dotted_message(),
                              [] { throw std::runtime_error("the store is read-only"); });
                },
                &what),
            Outcome::retry);
  EXPECT_EQ(what, "the store is read-only");
  client.send({"carl@example.org"}, "db-requests@example.org", dotted_message(), [&] { ++calls; });
  EXPECT_EQ(calls, 2);
  auto received = server->messages();
  ASSERT_EQ(received.size(), 2u) << server->log();
  EXPECT_EQ(received[0].rcpt_to, std::vector<std::string>{"ann@example.org"});
  EXPECT_EQ(received[1].rcpt_to, std::vector<std::string>{"carl@example.org"});
  EXPECT_NE(received[1].peer_port, received[0].peer_port);

  server.reset();  // closes the kept connection from the server's side
  SmtpRecorderOptions again;
  again.port = port;
  server = std::make_unique<SmtpRecorder>(again);
  client.send({"dan@example.org"}, "db-requests@example.org", dotted_message(), [&] { ++calls; });
  EXPECT_EQ(calls, 3);
  received = server->messages();
  ASSERT_EQ(received.size(), 1u) << server->log();
  EXPECT_EQ(received[0].rcpt_to, std::vector<std::string>{"dan@example.org"});
}

TEST(SmtpClient, DeliversTheExactBytesWithDotsStuffed) {
  SmtpRecorder server;
  const SmtpClient client(settings_for(server, SmtpSettings::Tls::none));
  const std::string message = dotted_message();
  ASSERT_NE(message.find("\r\n.\r\n"), std::string::npos);  // the test needs a lone dot line
  client.send({"ann@example.org"}, "db-requests@example.org", message);

  const auto received = server.messages();
  ASSERT_EQ(received.size(), 1u) << server.log();
  // The server undoes the stuffing; without it the lone "." would have ended the data and the
  // leading dots would be gone.
  EXPECT_EQ(received[0].data, message);
  EXPECT_EQ(received[0].mail_from, "db-requests@example.org");
  EXPECT_EQ(received[0].rcpt_to, std::vector<std::string>{"ann@example.org"});
  EXPECT_EQ(received[0].helo, "slmhub.example.org");
  EXPECT_FALSE(received[0].tls);
  EXPECT_EQ(received[0].mail_options,
            std::vector<std::string>{"SIZE=" + std::to_string(message.size())});
}

TEST(SmtpClient, BareLineBreaksAreSentAsCrlfSoNoEndOfDataCanBeSmuggled) {
  SmtpRecorder server;
  const SmtpClient client(settings_for(server, SmtpSettings::Tls::none));
  // "\n.\r\n" ends the data for servers that accept a bare LF as a line end (SMTP smuggling);
  // the rest would then be read as a second transaction.
  const std::string message =
      "Subject: one\r\n\r\nbody\n.\r\nMAIL FROM:<intruder@example.org>\r\n"
      "RCPT TO:<victim@example.org>\r\nDATA\r\nSubject: two\r\n\r\nsmuggled\r\n.\r\n"
      "bare CR\rend";
  client.send({"ann@example.org"}, "db-requests@example.org", message);
  const auto received = server.messages();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data,
            "Subject: one\r\n\r\nbody\r\n.\r\nMAIL FROM:<intruder@example.org>\r\n"
            "RCPT TO:<victim@example.org>\r\nDATA\r\nSubject: two\r\n\r\nsmuggled\r\n.\r\n"
            "bare CR\r\nend\r\n");
}

TEST(SmtpClient, NullReversePathAndSeveralRecipients) {
  SmtpRecorder server;
  const SmtpClient client(settings_for(server, SmtpSettings::Tls::none));
  client.send({"ann@example.org", "bob@example.org"}, "", dotted_message());
  const auto received = server.messages();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].mail_from, "");
  EXPECT_EQ(received[0].rcpt_to, (std::vector<std::string>{"ann@example.org", "bob@example.org"}));
}

TEST(SmtpClient, StartTlsVerifiedAgainstTheServerCa) {
  SmtpRecorder server(with_tls(SmtpRecorderOptions::Tls::starttls));
  const SmtpClient client(settings_for(server, SmtpSettings::Tls::starttls));
  const std::string message = dotted_message();
  client.send({"ann@example.org"}, "db-requests@example.org", message);
  const auto received = server.messages();
  ASSERT_EQ(received.size(), 1u) << server.log();
  EXPECT_TRUE(received[0].tls);
  EXPECT_EQ(received[0].data, message);
}

TEST(SmtpClient, ImplicitTlsVerifiedAgainstTheServerCa) {
  SmtpRecorder server(with_tls(SmtpRecorderOptions::Tls::implicit));
  const SmtpClient client(settings_for(server, SmtpSettings::Tls::implicit));
  client.send({"ann@example.org"}, "db-requests@example.org", dotted_message());
  const auto received = server.messages();
  ASSERT_EQ(received.size(), 1u) << server.log();
  EXPECT_TRUE(received[0].tls);
}

TEST(SmtpClient, AServerWithAnUnknownCertificateGetsNothing) {
  for (const auto tls : {SmtpRecorderOptions::Tls::starttls, SmtpRecorderOptions::Tls::implicit}) {
    SmtpRecorder server(with_tls(tls));
    const test::TempDir other;
    auto settings = settings_for(server, tls == SmtpRecorderOptions::Tls::starttls
                                             ? SmtpSettings::Tls::starttls
                                             : SmtpSettings::Tls::implicit);
    // Trusting another self-signed certificate for the same name, then only the system's CAs.
    settings.ca_file =
        test::make_self_signed_certificate(other.path(), "127.0.0.1").certificate.string();
    std::string what;
    EXPECT_EQ(attempt(
                  [&] {
                    SmtpClient(settings).send({"ann@example.org"}, "db@example.org",
                                              dotted_message());
                  },
                  &what),
              Outcome::retry);
    EXPECT_NE(what.find("certificate verify failed"), std::string::npos) << what;
    settings.ca_file.clear();
    EXPECT_EQ(attempt([&] {
                SmtpClient(settings).send({"ann@example.org"}, "db@example.org", dotted_message());
              }),
              Outcome::retry);
    EXPECT_TRUE(server.messages().empty());
  }
}

TEST(SmtpClient, ACertificateForAnotherNameGetsNothing) {
  // Trusted, but issued to mail.example.org while the client connects to 127.0.0.1.
  auto options = with_tls(SmtpRecorderOptions::Tls::starttls);
  options.certificate_name = "mail.example.org";
  SmtpRecorder server(options);
  const SmtpClient client(settings_for(server, SmtpSettings::Tls::starttls));
  std::string what;
  EXPECT_EQ(
      attempt([&] { client.send({"ann@example.org"}, "db@example.org", dotted_message()); }, &what),
      Outcome::retry);
  EXPECT_NE(what.find("certificate verify failed"), std::string::npos) << what;
  EXPECT_TRUE(server.messages().empty());
}

TEST(SmtpClient, NoStartTlsOfferedMeansNothingSentInClear) {
  SmtpRecorder server;  // plain SMTP only
  const SmtpClient client(settings_for(server, SmtpSettings::Tls::starttls));
  std::string what;
  EXPECT_EQ(
      attempt([&] { client.send({"ann@example.org"}, "db@example.org", dotted_message()); }, &what),
      Outcome::retry);
  EXPECT_NE(what.find("does not offer STARTTLS"), std::string::npos) << what;
  EXPECT_TRUE(server.messages().empty());
}

TEST(SmtpClient, ARefusedRecipientIsPermanentAndATemporaryRefusalIsRetried) {
  SmtpRecorderOptions options;
  options.refuse = {"gone@example.org"};
  options.tempfail = {"busy@example.org"};
  SmtpRecorder server(options);
  const SmtpClient client(settings_for(server, SmtpSettings::Tls::none));
  const auto send_to = [&](const std::vector<std::string>& to) {
    return [&client, to] { client.send(to, "db@example.org", dotted_message()); };
  };
  std::string what;
  EXPECT_EQ(attempt(send_to({"gone@example.org"}), &what), Outcome::permanent);
  EXPECT_NE(what.find("550 5.1.1 <gone@example.org>"), std::string::npos) << what;
  EXPECT_EQ(attempt(send_to({"busy@example.org"}), &what), Outcome::retry);
  EXPECT_NE(what.find("451 4.3.0"), std::string::npos) << what;
  // All or nothing: one refused recipient stops the message for the others too, so a retry
  // cannot deliver twice.
  EXPECT_EQ(attempt(send_to({"ann@example.org", "busy@example.org"})), Outcome::retry);
  EXPECT_EQ(attempt(send_to({"ann@example.org", "gone@example.org", "busy@example.org"})),
            Outcome::permanent);
  EXPECT_TRUE(server.messages().empty());
  EXPECT_EQ(attempt(send_to({"ann@example.org"})), Outcome::delivered);
  EXPECT_EQ(server.messages().size(), 1u);
}

TEST(SmtpClient, ConnectionFailuresAreRetried) {
  SmtpSettings settings;
  settings.port = closed_port();
  settings.tls = SmtpSettings::Tls::none;
  settings.timeout_ms = 2000;
  std::string what;
  EXPECT_EQ(attempt([&] { SmtpClient(settings).send({"ann@example.org"}, "db@example.org", "x"); },
                    &what),
            Outcome::retry);
  EXPECT_NE(what.find("127.0.0.1:" + std::to_string(settings.port)), std::string::npos) << what;

  // A server that accepts the connection but never greets: the read times out.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  settings.port = ntohs(address.sin_port);
  settings.timeout_ms = 300;
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(attempt([&] { SmtpClient(settings).send({"ann@example.org"}, "db@example.org", "x"); }),
            Outcome::retry);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  ::close(listener);
}

TEST(SmtpClient, CredentialsAreNeverSentWithoutTls) {
  SmtpSettings settings;
  settings.tls = SmtpSettings::Tls::none;
  settings.username = "outbox";
  settings.password = "secret";
  EXPECT_THROW(SmtpClient{settings}, std::invalid_argument);
  settings.tls = SmtpSettings::Tls::starttls;
  EXPECT_NO_THROW(SmtpClient{settings});
}

TEST(SmtpClient, AuthenticatesInsideTls) {
  auto options = with_tls(SmtpRecorderOptions::Tls::starttls);
  options.username = "outbox";
  options.password = "correct horse";
  SmtpRecorder server(options);
  auto settings = settings_for(server, SmtpSettings::Tls::starttls);
  settings.username = "outbox";
  settings.password = "wrong";
  std::string what;
  EXPECT_EQ(attempt(
                [&] {
                  SmtpClient(settings).send({"ann@example.org"}, "db@example.org",
                                            dotted_message());
                },
                &what),
            Outcome::retry);  // fixed in the configuration, then the messages still go out
  EXPECT_NE(what.find("535"), std::string::npos) << what;
  EXPECT_EQ(what.find("wrong"), std::string::npos) << "the password must not be logged: " << what;
  EXPECT_TRUE(server.messages().empty());

  settings.password = "correct horse";
  SmtpClient(settings).send({"ann@example.org"}, "db@example.org", dotted_message());
  const auto received = server.messages();
  ASSERT_EQ(received.size(), 1u) << server.log();
  EXPECT_EQ(received[0].auth_user, "outbox");
  EXPECT_TRUE(received[0].tls);
}

// Without a configured name, EHLO gives this machine's name when fully qualified, else the
// address literal of the connection: never "localhost", which hardened relays refuse.
TEST(SmtpClient, EhloNamesThisMachineOrTheConnectionsAddress) {
  SmtpRecorder server;
  SmtpSettings settings = settings_for(server, SmtpSettings::Tls::none);
  settings.helo.clear();
  SmtpClient(settings).send({"ann@example.org"}, "db@example.org", dotted_message());
  const auto received = server.messages();
  ASSERT_EQ(received.size(), 1u) << server.log();
  char name[256] = {};
  ASSERT_EQ(::gethostname(name, sizeof name - 1), 0);
  EXPECT_EQ(received[0].helo,
            std::string(name).find('.') != std::string::npos ? name : "[127.0.0.1]");
}

TEST(SmtpClient, BadSettingsAndAddressesAreRefusedBeforeConnecting) {
  SmtpSettings settings;
  settings.port = 0;
  EXPECT_THROW(SmtpClient{settings}, std::invalid_argument);
  settings.port = 25;
  settings.helo = "two words";
  EXPECT_THROW(SmtpClient{settings}, std::invalid_argument);
  settings.helo = "slmhub.example.org";
  settings.ca_file = "/nonexistent/ca.pem";
  EXPECT_THROW(SmtpClient{settings}, std::invalid_argument);

  settings.ca_file.clear();
  settings.tls = SmtpSettings::Tls::none;
  settings.port = closed_port();
  const SmtpClient client(settings);
  EXPECT_EQ(attempt([&] { client.send({"ann@example.org>\r\nRCPT TO:<x@example.org"}, "", "x"); }),
            Outcome::invalid);
  EXPECT_EQ(attempt([&] { client.send({}, "db@example.org", "x"); }), Outcome::invalid);
  EXPECT_EQ(attempt([&] { client.send({"ann@example.org"}, "db@example.org\r\nRSET", "x"); }),
            Outcome::invalid);
}

OutboxMessage notice() {
  OutboxMessage message;
  message.id = 7;
  message.channel = "email";
  message.destination = "ann@example.org";
  message.subject = "Störung behoben – oracle-prod";
  message.body = "The interruption of oracle-prod ended at 14:00 UTC.\n.\nRegards\n";
  message.headers = Json{{"Message-ID", "<case-7@example.org>"},
                         {"In-Reply-To", "<q1@client.example.org>"},
                         {"References", "<q0@client.example.org> <q1@client.example.org>"},
                         {"Auto-Submitted", "auto-replied"}};
  return message;
}

TEST(EmailSender, MapsTheOutboxMessageIntoTheDeliveredMail) {
  SmtpRecorder server(with_tls(SmtpRecorderOptions::Tls::starttls));
  const test::ManualClock clock("2026-11-03T14:05:09Z");
  const auto send = make_email_sender(settings_for(server, SmtpSettings::Tls::starttls),
                                      "noreply@example.org", "Service Desk", clock);
  send(notice(), {});

  const auto received = server.messages();
  ASSERT_EQ(received.size(), 1u) << server.log();
  EXPECT_EQ(received[0].mail_from, "noreply@example.org");
  EXPECT_EQ(received[0].rcpt_to, std::vector<std::string>{"ann@example.org"});
  EXPECT_TRUE(received[0].tls);
  OutgoingMail expected;
  expected.from = "noreply@example.org";
  expected.from_name = "Service Desk";
  expected.to = {"ann@example.org"};
  expected.subject = "Störung behoben – oracle-prod";
  expected.body = "The interruption of oracle-prod ended at 14:00 UTC.\n.\nRegards\n";
  expected.message_id = "case-7@example.org";
  expected.in_reply_to = {"q1@client.example.org"};
  expected.references = {"q0@client.example.org", "q1@client.example.org"};
  expected.headers = {{"Auto-Submitted", "auto-replied"}};
  expected.date = clock.now();
  EXPECT_EQ(received[0].data, compose(expected));
  const std::string& data = received[0].data;
  EXPECT_NE(data.find("\r\nMessage-ID: <case-7@example.org>\r\n"), std::string::npos) << data;
  EXPECT_NE(data.find("\r\nIn-Reply-To: <q1@client.example.org>\r\n"), std::string::npos) << data;
  EXPECT_NE(data.find("\r\nAuto-Submitted: auto-replied\r\n"), std::string::npos) << data;
  EXPECT_EQ(data.rfind("Date: Tue, 03 Nov 2026 14:05:09 +0000\r\n", 0), 0u) << data;
}

TEST(EmailSender, AFromHeaderReplacesTheSender) {
  SmtpRecorder server;
  const test::ManualClock clock;
  const auto send = make_email_sender(settings_for(server, SmtpSettings::Tls::none),
                                      "noreply@example.org", "Service Desk", clock);
  auto message = notice();
  message.headers["From"] = "\"Help, Desk\" <help@example.org>";
  send(message, {});
  const auto received = server.messages();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].mail_from, "help@example.org");
  EXPECT_NE(received[0].data.find("\r\nFrom: \"Help, Desk\" <help@example.org>\r\n"),
            std::string::npos)
      << received[0].data;
}

TEST(EmailSender, ARetryKeepsTheDerivedMessageId) {
  SmtpRecorder server;
  test::ManualClock clock;
  const auto send = make_email_sender(settings_for(server, SmtpSettings::Tls::none),
                                      "noreply@example.org", "", clock);
  auto message = notice();
  message.headers = Json::object();
  send(message, {});
  clock.advance(std::chrono::minutes(5));
  send(message, {});  // the outbox retries when the 250 after the data was lost
  auto other = message;
  other.id = 8;
  send(other, {});
  const auto received = server.messages();
  ASSERT_EQ(received.size(), 3u);
  const std::regex id_line("\r\nMessage-ID: (<slmhub\\.[0-9a-f]{32}@example\\.org>)\r\n");
  std::smatch first, second, third;
  ASSERT_TRUE(std::regex_search(received[0].data, first, id_line)) << received[0].data;
  ASSERT_TRUE(std::regex_search(received[1].data, second, id_line));
  ASSERT_TRUE(std::regex_search(received[2].data, third, id_line));
  EXPECT_EQ(first[1], second[1]);
  EXPECT_NE(first[1], third[1]);
}

TEST(EmailSender, MessagesThatCanNeverBeSentArePermanentFailures) {
  SmtpRecorderOptions options;
  options.refuse = {"gone@example.org"};
  SmtpRecorder server(options);
  const test::ManualClock clock;
  const auto send = make_email_sender(settings_for(server, SmtpSettings::Tls::none),
                                      "noreply@example.org", "Service Desk", clock);
  const auto with = [](const std::function<void(OutboxMessage&)>& change) {
    auto message = notice();
    change(message);
    return message;
  };
  const std::vector<OutboxMessage> doomed = {
      with([](OutboxMessage& m) { m.destination = "gone@example.org"; }),
      with([](OutboxMessage& m) { m.destination = "Ann <ann@example.org>"; }),
      with([](OutboxMessage& m) { m.subject = "Hi\r\nBcc: everyone@example.org"; }),
      with([](OutboxMessage& m) { m.headers["X-Loop"] = "a\nBcc: everyone@example.org"; }),
      with([](OutboxMessage& m) { m.headers["X-Count"] = 3; }),
      with([](OutboxMessage& m) { m.headers["Message-ID"] = "<a@example.org> <b@example.org>"; }),
      with([](OutboxMessage& m) { m.headers = Json::array(); }),
  };
  for (const auto& message : doomed) {
    std::string what;
    EXPECT_EQ(attempt([&] { send(message, {}); }, &what), Outcome::permanent)
        << message.destination << " / " << message.headers.dump();
  }
  EXPECT_TRUE(server.messages().empty());
  EXPECT_THROW(make_email_sender(SmtpSettings{}, "not an address", "", clock),
               std::invalid_argument);
}

}  // namespace
}  // namespace slmhub::mail
