// The mailbox poller against a real Dovecot (tests/support/dovecot.hpp) over POP3 and IMAP:
// a message leaves the server (or is flagged) only after its commit succeeded, a failed one
// is offered again by the next poll and nothing else is, a message over the size limit is
// never downloaded, and a poll cut off between commit and delete only leads to duplicates,
// which the intake recognises. Also the mailbox configuration text and its errors.
#include "polling.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "dovecot.hpp"
#include "server_process.hpp"
#include "smtp_recorder.hpp"
#include "test_logger.hpp"

namespace slmhub::email {
namespace {

using test::Dovecot;

std::string message(const std::string& id, const std::string& padding = "") {
  return "From: Ann <ann@example.org>\r\n"
         "To: db-requests@example.org\r\n"
         "Subject: request " +
         id +
         "\r\n"
         "Message-ID: <" +
         id +
         "@example.org>\r\n"
         "\r\n"
         "Please restore the database.\r\n" +
         padding;
}

std::string message_id(const std::string& raw) {
  const auto start = raw.find("Message-ID: <");
  if (start == std::string::npos) return {};
  const auto end = raw.find('@', start);
  return raw.substr(start + 13, end - start - 13);
}

// The intake as the poller sees it: applies a message once per Message-ID (a second delivery
// is a "duplicate": true, nothing more), and fails for the ids in `failing`.
struct FakeIntake {
  std::set<std::string> failing;
  std::vector<std::string> offered;  // every message handed over, in order
  std::map<std::string, int> applied;

  MailboxPoller::Commit commit() {
    return [this](const std::string& raw) {
      const std::string id = message_id(raw);
      offered.push_back(id);
      if (failing.count(id) != 0) return false;
      applied.emplace(id, 0).first->second += 1;
      return true;
    };
  }
};

SecretLookup secrets(const Dovecot& server) {
  return [password = server.password()](const std::string& name) -> std::optional<std::string> {
    if (name == "db_mailbox") return password;
    return std::nullopt;
  };
}

// One configuration of each way to poll, as the operator would write it.
struct Way {
  const char* name;
  std::string (*url)(const Dovecot&);
  // Where a committed message went: "gone", "S" (flagged \Seen) or "Processed" (moved).
  const char* after;
};

void PrintTo(const Way& way, std::ostream* out) { *out << way.name; }

bool is_pop3(const Way& way) { return std::string(way.name).starts_with("Pop3"); }

std::string common(const Dovecot& server) {
  return "queue=db-requests&secret=db_mailbox&ca_file=" + server.ca_file();
}

constexpr Way kWays[] = {
    {"Pop3s",
     [](const Dovecot& s) {
       return "pop3s://intake@127.0.0.1:" + std::to_string(s.pop3s_port()) + "?" + common(s);
     },
     "gone"},
    {"Pop3Stls",
     [](const Dovecot& s) {
       return "pop3://intake@127.0.0.1:" + std::to_string(s.pop3_port()) + "?" + common(s);
     },
     "gone"},
    {"ImapsFlag",
     [](const Dovecot& s) {
       return "imaps://intake@127.0.0.1:" + std::to_string(s.imaps_port()) + "/INBOX?" + common(s) +
              "&mode=flag";
     },
     "S"},
    {"ImapStarttlsDelete",
     [](const Dovecot& s) {
       return "imap://intake@127.0.0.1:" + std::to_string(s.imap_port()) + "/INBOX?" + common(s) +
              "&mode=delete";
     },
     "gone"},
    {"ImapsMove",
     [](const Dovecot& s) {
       return "imaps://intake@127.0.0.1:" + std::to_string(s.imaps_port()) + "?" + common(s) +
              "&mode=move&move_to=Processed";
     },
     "Processed"},
};

// A poller of the server's INBOX over POP3 with implicit TLS.
MailboxPoller pop3s_poller(const Dovecot& server, Logger& log) {
  return MailboxPoller(
      parse_mailbox("pop3s://intake@127.0.0.1:" + std::to_string(server.pop3s_port()) +
                        "?queue=db-requests&secret=db_mailbox&ca_file=" + server.ca_file(),
                    secrets(server)),
      log);
}

class MailboxPolling : public ::testing::TestWithParam<Way> {
 protected:
  MailboxPoller poller(const std::string& extra = "") {
    return MailboxPoller(parse_mailbox(GetParam().url(server) + extra, secrets(server)), log);
  }

  // What the server shows for a message after the polls: "gone" or its maildir flags. A
  // message left over POP3 shows as "left", whatever its flags: POP3 has none, and Dovecot
  // marks what RETR read as \Seen.
  std::string state_of(const std::string& name) const {
    const auto flags = server.flags(name);
    if (!flags) return "gone";
    return is_pop3(GetParam()) ? "left" : *flags;
  }
  // How a message the poller must leave alone looks.
  std::string untouched() const { return is_pop3(GetParam()) ? "left" : ""; }

  Dovecot server;
  test::TestLogger log;
};

TEST_P(MailboxPolling, AFailedCommitLeavesTheMessageAndTheNextPollOffersOnlyIt) {
  const std::string after = GetParam().after;
  if (after == "Processed") server.create_folder("Processed");
  const std::string first = server.deliver(message("first"));
  const std::string second = server.deliver(message("second"));
  const std::string third = server.deliver(message("third"));
  FakeIntake intake;
  intake.failing = {"second"};
  MailboxPoller polling = poller();

  EXPECT_EQ(polling.poll(intake.commit()), "3 fetched, 2 committed, 1 failed, 0 too large")
      << server.log();
  EXPECT_EQ(intake.offered, (std::vector<std::string>{"first", "second", "third"}));
  const std::string committed = after == "Processed" ? "gone" : after;
  EXPECT_EQ(state_of(first), committed);
  EXPECT_EQ(state_of(second), untouched());
  EXPECT_EQ(state_of(third), committed);
  EXPECT_EQ(server.count(), after == "S" ? 3u : 1u);
  if (after == "Processed") {
    EXPECT_EQ(server.count("Processed"), 2u);
  }
  EXPECT_TRUE(log.contains("message", "warning"));
  EXPECT_TRUE(
      log.contains("was not committed and stays on the server for the next poll: the "
                   "intake did not commit it",
                   "warning"));

  intake.failing.clear();
  EXPECT_EQ(polling.poll(intake.commit()), "1 fetched, 1 committed, 0 failed, 0 too large");
  EXPECT_EQ(intake.offered, (std::vector<std::string>{"first", "second", "third", "second"}));
  EXPECT_EQ(state_of(second), committed);
  EXPECT_EQ(server.count(), after == "S" ? 3u : 0u);

  EXPECT_EQ(polling.poll(intake.commit()), "0 fetched, 0 committed, 0 failed, 0 too large");
  EXPECT_EQ(intake.offered.size(), 4u);
  EXPECT_EQ(intake.applied,
            (std::map<std::string, int>{{"first", 1}, {"second", 1}, {"third", 1}}));
}

TEST_P(MailboxPolling, AMessageOverTheSizeLimitIsNeverDownloadedAndStays) {
  if (std::string(GetParam().after) == "Processed") server.create_folder("Processed");
  const std::string small = server.deliver(message("small"));
  const std::string big = server.deliver(message("big", std::string(3000, 'x') + "\r\n"));
  const std::string limit = std::to_string(message("big").size() + 1000);
  FakeIntake intake;
  MailboxPoller polling = poller("&max_message_bytes=" + limit);

  EXPECT_EQ(polling.poll(intake.commit()), "1 fetched, 1 committed, 0 failed, 1 too large");
  EXPECT_EQ(intake.offered, (std::vector<std::string>{"small"}));
  EXPECT_EQ(state_of(big), untouched());
  EXPECT_TRUE(log.contains(
      "bytes, more than max_message_bytes (" + limit + "); it stays on the server", "warning"));
  // It stays, and says so at every poll until someone acts.
  EXPECT_EQ(polling.poll(intake.commit()), "0 fetched, 0 committed, 0 failed, 1 too large");
  EXPECT_EQ(state_of(big), untouched());
  EXPECT_EQ(intake.offered.size(), 1u);
}

// A message too large to take does not use up the poll's share: with one a poll, the mail
// after it still comes in (else a few of them would hold back all newer mail for good).
TEST_P(MailboxPolling, MessagesTooLargeDoNotHoldBackTheMailAfterThem) {
  if (std::string(GetParam().after) == "Processed") server.create_folder("Processed");
  const std::string big = server.deliver(message("big", std::string(3000, 'x') + "\r\n"));
  server.deliver(message("small"));
  server.deliver(message("later"));
  FakeIntake intake;
  MailboxPoller polling =
      poller("&max_messages=1&max_message_bytes=" + std::to_string(message("big").size() + 1000));
  EXPECT_EQ(polling.poll(intake.commit()),
            "1 fetched, 1 committed, 0 failed, 1 too large; 1 more wait for the next poll");
  EXPECT_EQ(polling.poll(intake.commit()), "1 fetched, 1 committed, 0 failed, 1 too large");
  EXPECT_EQ(intake.offered, (std::vector<std::string>{"small", "later"}));
  EXPECT_EQ(state_of(big), untouched());
}

TEST_P(MailboxPolling, ACommitThatThrowsCountsAsFailedAndIsLogged) {
  if (std::string(GetParam().after) == "Processed") server.create_folder("Processed");
  const std::string name = server.deliver(message("boom"));
  MailboxPoller polling = poller();
  const auto throwing = [](const std::string&) -> bool {
    throw std::runtime_error("store unavailable: disk full");
  };
  EXPECT_EQ(polling.poll(throwing), "1 fetched, 0 committed, 1 failed, 0 too large");
  EXPECT_EQ(state_of(name), untouched());
  EXPECT_TRUE(log.contains("stays on the server for the next poll: store unavailable: disk full",
                           "warning"));
}

TEST_P(MailboxPolling, AtMostMaxMessagesAPollOldestFirst) {
  if (std::string(GetParam().after) == "Processed") server.create_folder("Processed");
  for (const char* id : {"one", "two", "three"}) server.deliver(message(id));
  FakeIntake intake;
  MailboxPoller polling = poller("&max_messages=2");
  EXPECT_EQ(polling.poll(intake.commit()),
            "2 fetched, 2 committed, 0 failed, 0 too large; 1 more wait for the next poll");
  EXPECT_EQ(polling.poll(intake.commit()), "1 fetched, 1 committed, 0 failed, 0 too large");
  EXPECT_EQ(intake.offered, (std::vector<std::string>{"one", "two", "three"}));
}

TEST_P(MailboxPolling, AnUnverifiedServerIsRefusedAndKeepsEverything) {
  const std::string name = server.deliver(message("kept"));
  std::string url = GetParam().url(server);
  url.replace(url.find("&ca_file="), std::string("&ca_file=" + server.ca_file()).size(), "");
  MailboxPoller polling(parse_mailbox(url, secrets(server)), log);
  FakeIntake intake;
  try {
    polling.poll(intake.commit());
    FAIL() << "polled a server whose certificate no trusted CA issued";
  } catch (const std::runtime_error& e) {
    const std::string text = e.what();
    EXPECT_EQ(text.find(describe(polling.settings()) +
                        ": 0 fetched, 0 committed, 0 failed, 0 too large; stopped: "),
              0u)
        << text;
    EXPECT_NE(text.find("certificate"), std::string::npos) << text;
  }
  EXPECT_TRUE(intake.offered.empty());
  EXPECT_EQ(server.flags(name), "");  // not even read
  EXPECT_EQ(server.log().find("Login: user=<"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Email, MailboxPolling, ::testing::ValuesIn(kWays),
                         [](const auto& info) { return std::string(info.param.name); });

// POP3 removes what was deleted only at QUIT. A poll whose connection dies after commits
// (the server crashed, or slmhub did) leaves those messages on the server; the next poll
// offers them again and the intake answers "duplicate": one effect each.
TEST(MailboxPollingPop3, ACutBetweenCommitAndDeleteOnlyBringsDuplicates) {
  Dovecot server;
  for (const char* id : {"a", "b", "c"}) server.deliver(message(id));
  test::TestLogger log;
  MailboxPoller polling = pop3s_poller(server, log);
  FakeIntake intake;
  const auto inner = intake.commit();
  const auto crash_after_b = [&](const std::string& raw) {
    const bool done = inner(raw);
    if (message_id(raw) == "b") server.kill_sessions();
    return done;
  };
  EXPECT_THROW(polling.poll(crash_after_b), std::runtime_error);
  EXPECT_EQ(server.count(), 3u);

  EXPECT_EQ(polling.poll(intake.commit()), "3 fetched, 3 committed, 0 failed, 0 too large");
  EXPECT_EQ(server.count(), 0u);
  EXPECT_EQ(intake.offered, (std::vector<std::string>{"a", "b", "a", "b", "c"}));
  // Two deliveries of a and b, one effect each: the intake's dedupe, not luck.
  EXPECT_EQ(intake.applied, (std::map<std::string, int>{{"a", 2}, {"b", 2}, {"c", 1}}));
}

// A message the POP3 server will not give (RETR -ERR: its file went away after the listing)
// is skipped: the ones after it are taken, and the session still ends with QUIT, so what was
// committed is removed and does not come again.
TEST(MailboxPollingPop3, AMessageTheServerRefusesDoesNotHoldBackTheOthers) {
  Dovecot server;
  std::map<std::string, std::string> names;
  for (const char* id : {"a", "b", "c"}) names[id] = server.deliver(message(id));
  test::TestLogger log;
  MailboxPoller polling = pop3s_poller(server, log);
  FakeIntake intake;
  const auto inner = intake.commit();
  const auto b_goes_away = [&](const std::string& raw) {
    if (message_id(raw) == "a") server.remove(names["b"]);
    return inner(raw);
  };
  EXPECT_EQ(polling.poll(b_goes_away), "2 fetched, 2 committed, 1 failed, 0 too large")
      << server.log();
  EXPECT_EQ(intake.offered, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(server.count(), 0u) << server.log();
  EXPECT_TRUE(log.contains("refused to retrieve message 2", "warning"));
}

TEST(MailboxConfiguration, ReadsEveryPart) {
  const auto secret = [](const std::string& name) -> std::optional<std::string> {
    if (name == "db_mailbox") return "s3cret";
    return std::nullopt;
  };
  MailboxSettings imap = parse_mailbox(
      "imaps://intake%40example.org@mail.example.org/Team%20Inbox?queue=db-requests&"
      "secret=db_mailbox&mode=move&move_to=Done&max_message_bytes=1048576&max_messages=20&"
      "timeout_ms=5000&ca_file=/etc/slmhub/ca.pem",
      secret);
  EXPECT_EQ(imap.protocol, MailboxSettings::Protocol::imap);
  EXPECT_EQ(imap.tls, MailboxSettings::Tls::implicit);
  EXPECT_EQ(imap.host, "mail.example.org");
  EXPECT_EQ(imap.port, 993);
  EXPECT_EQ(imap.username, "intake@example.org");
  EXPECT_EQ(imap.password, "s3cret");
  EXPECT_EQ(imap.folder, "Team Inbox");
  EXPECT_EQ(imap.after_commit, MailboxSettings::AfterCommit::move);
  EXPECT_EQ(imap.move_to, "Done");
  EXPECT_EQ(imap.queue, "db-requests");
  EXPECT_EQ(imap.ca_file, "/etc/slmhub/ca.pem");
  EXPECT_EQ(imap.max_message_bytes, 1048576u);
  EXPECT_EQ(imap.max_messages_per_poll, 20u);
  EXPECT_EQ(imap.timeout_ms, 5000);
  EXPECT_EQ(describe(imap), "imaps://intake@example.org@mail.example.org:993/Team Inbox");

  MailboxSettings defaults;
  defaults.ca_file = "/etc/slmhub/mail-ca.pem";
  defaults.max_message_bytes = 777;
  const MailboxSettings pop3 =
      parse_mailbox("pop3://intake@[2001:db8::25]?queue=help&secret=db_mailbox", secret, defaults);
  EXPECT_EQ(pop3.protocol, MailboxSettings::Protocol::pop3);
  EXPECT_EQ(pop3.tls, MailboxSettings::Tls::starttls);
  EXPECT_EQ(pop3.host, "2001:db8::25");
  EXPECT_EQ(pop3.port, 110);
  EXPECT_EQ(pop3.after_commit, MailboxSettings::AfterCommit::remove);
  EXPECT_EQ(pop3.ca_file, "/etc/slmhub/mail-ca.pem");
  EXPECT_EQ(pop3.max_message_bytes, 777u);
  EXPECT_EQ(describe(pop3), "pop3://intake@[2001:db8::25]:110");

  const MailboxSettings flagged = parse_mailbox(
      "imap://intake@mail.example.org:993?tls=implicit&queue=q&secret=db_mailbox", secret);
  EXPECT_EQ(flagged.tls, MailboxSettings::Tls::implicit);
  EXPECT_EQ(flagged.port, 993);
  EXPECT_EQ(flagged.folder, "INBOX");
  EXPECT_EQ(flagged.after_commit, MailboxSettings::AfterCommit::mark_seen);
}

TEST(MailboxConfiguration, SaysWhatIsWrongAndNeverShowsAPassword) {
  const auto secret = [](const std::string& name) -> std::optional<std::string> {
    if (name == "db_mailbox") return "s3cret";
    return std::nullopt;
  };
  const auto error = [&](const std::string& url) {
    try {
      parse_mailbox(url, secret);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  const std::string tail = "?queue=q&secret=db_mailbox";
  EXPECT_EQ(error("https://intake@mail.example.org" + tail),
            "mailbox 'https://intake@mail.example.org?queue=q&secret=db_mailbox': must start "
            "with pop3s://, imaps://, pop3:// or imap://");
  EXPECT_EQ(error("imaps://intake:hunter2@mail.example.org" + tail),
            "mailbox 'imaps://intake:***@mail.example.org?queue=q&secret=db_mailbox': holds a "
            "password; passwords stay out of configuration files: name a secret with "
            "secret=NAME");
  EXPECT_EQ(error("imaps://mail.example.org" + tail),
            "mailbox 'imaps://mail.example.org?queue=q&secret=db_mailbox': names no user; write "
            "imaps://USER@HOST (an @ in the user is %40)");
  EXPECT_EQ(error("imaps://intake@mail.example.org:99999" + tail),
            "mailbox 'imaps://intake@mail.example.org:99999?queue=q&secret=db_mailbox': port "
            "'99999' is not 1-65535");
  EXPECT_EQ(error("pop3s://intake@mail.example.org/INBOX" + tail),
            "mailbox 'pop3s://intake@mail.example.org/INBOX?queue=q&secret=db_mailbox': POP3 "
            "has one mailbox per user and no folders; remove the path");
  EXPECT_EQ(error("imaps://intake@mail.example.org?secret=db_mailbox"),
            "mailbox 'imaps://intake@mail.example.org?secret=db_mailbox': names no queue; add "
            "queue=NAME, a queue of this plugin");
  EXPECT_EQ(error("imaps://intake@mail.example.org?queue=q"),
            "mailbox 'imaps://intake@mail.example.org?queue=q': names no password secret; add "
            "secret=NAME and set secrets.NAME.file or SLMHUB_SECRET_NAME");
  EXPECT_EQ(error("imaps://intake@mail.example.org?queue=q&secret=other"),
            "mailbox 'imaps://intake@mail.example.org?queue=q&secret=other': its password "
            "secret 'other' is not set (secrets.other.file or the SLMHUB_SECRET_ environment "
            "variable)");
  EXPECT_EQ(error("imaps://intake@mail.example.org" + tail + "&mode=archive"),
            "mailbox 'imaps://intake@mail.example.org?queue=q&secret=db_mailbox&mode=archive': "
            "mode must be flag, delete or move, not 'archive'");
  EXPECT_EQ(error("pop3s://intake@mail.example.org" + tail + "&mode=flag"),
            "mailbox 'pop3s://intake@mail.example.org?queue=q&secret=db_mailbox&mode=flag': POP3 "
            "has no flags to mark a message done: polled POP3 mail is deleted once committed "
            "(mode=delete), or use IMAP to keep it");
  EXPECT_EQ(error("imaps://intake@mail.example.org" + tail + "&mode=move"),
            "mailbox 'imaps://intake@mail.example.org?queue=q&secret=db_mailbox&mode=move': "
            "mode=move needs move_to=FOLDER");
  EXPECT_EQ(error("imaps://intake@mail.example.org" + tail + "&tls=none"),
            "mailbox 'imaps://intake@mail.example.org?queue=q&secret=db_mailbox&tls=none': tls "
            "must be implicit or starttls, not 'none' (there is no unencrypted mode: the "
            "password would travel in clear)");
  EXPECT_EQ(error("imaps://intake@mail.example.org" + tail + "&tls=starttls"),
            "mailbox 'imaps://intake@mail.example.org?queue=q&secret=db_mailbox&tls=starttls': "
            "tls=starttls contradicts imaps://, which is TLS from the first byte; use imap://");
  EXPECT_EQ(error("imaps://intake@mail.example.org" + tail + "&verify=no"),
            "mailbox 'imaps://intake@mail.example.org?queue=q&secret=db_mailbox&verify=no': has "
            "an unknown parameter 'verify' (known: queue, secret, mode, move_to, tls, ca_file, "
            "max_message_bytes, max_messages, timeout_ms)");
  EXPECT_EQ(error("imaps://intake@mail.example.org" + tail + "&queue=other"),
            "mailbox 'imaps://intake@mail.example.org?queue=q&secret=db_mailbox&queue=other': "
            "gives 'queue' twice");
  EXPECT_EQ(error("imaps://intake@mail.example.org" + tail + "&max_messages=0"),
            "mailbox 'imaps://intake@mail.example.org?queue=q&secret=db_mailbox&max_messages=0': "
            "max_messages must be a positive number, not '0'");

  // A bad folder name is refused when the poller is made, before any connection.
  test::TestLogger log;
  EXPECT_THROW(
      MailboxPoller(parse_mailbox("imaps://intake@mail.example.org/a%0D%0Ab" + tail, secret), log),
      std::invalid_argument);
}

}  // namespace
}  // namespace slmhub::email
