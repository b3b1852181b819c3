// Mail intake on SQLite and PostgreSQL over the host's real core store (tickets, customers)
// and outbox: a message becomes a ticket with a case number and one auto-reply; a second
// delivery has no effect; replies thread by our Message-IDs and by the case number; automated
// mail gets no auto-reply; bounces land on their ticket; what cannot be processed is kept and
// replays (issue [email] items 3-7).
#include "intake.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "core/core_store.hpp"
#include "events/event_bus.hpp"
#include "events/outbox.hpp"
#include "forwarding_store.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/errors.hpp"
#include "store_fixture.hpp"
#include "test_files.hpp"

namespace slmhub::email {
namespace {

using test::StoreTest;

const Queue kQueue{"db-requests", "DBR", "db-requests@example.org"};
const Queue kOtherQueue{"mssql-requests", "MSR", "mssql-requests@example.org"};

// A small RFC 5322 message; `extra` headers go first.
std::string message(const std::string& from, const std::string& subject, const std::string& id,
                    const std::string& extra = "", const std::string& body = "Hello.\r\n") {
  return extra + "From: " + from + "\r\nTo: db-requests@example.org\r\nSubject: " + subject +
         "\r\n" + (id.empty() ? "" : "Message-ID: <" + id + ">\r\n") +
         "Date: Tue, 01 Dec 2026 15:00:00 +0000\r\nMIME-Version: 1.0\r\n"
         "Content-Type: text/plain; charset=utf-8\r\n\r\n" +
         body;
}

class IntakeTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    clock_.set("2026-12-01T15:00:00Z");
    bus_ = std::make_unique<host::EventBus>(*db_, clock_, log_);
    core_ = std::make_unique<host::CoreStore>(*db_, *bus_, clock_);
    Json dataset = Json::parse(test::read_shared("vectors/example-2026-11.json"));
    dataset["customers"][1]["contacts"] = Json::array({{{"role", "technical_primary"},
                                                        {"name", "Library DBA"},
                                                        {"email", "dba@library.example.org"}}});
    dataset["customers"][0]["contacts"] = Json::array({{{"role", "technical_primary"},
                                                        {"name", "Registrar DBA"},
                                                        {"email", "dba@registrar.example.org"}}});
    core_->import(Actor{"test"}, dataset);
    outbox_ = std::make_unique<host::OutboxService>(*db_, clock_, log_, "test");
    db_->migrate("email_intake", MailIntake::migrations());
    make_intake(IntakeSettings{});
  }
  void TearDown() override {
    intake_.reset();
    outbox_.reset();
    core_.reset();
    bus_.reset();
    StoreTest::TearDown();
  }

  void make_intake(IntakeSettings settings, std::vector<Queue> queues = {kQueue}) {
    settings.queues = std::move(queues);
    intake_ = std::make_unique<MailIntake>(*db_, *core_, *core_, *outbox_, clock_, log_, settings);
    intake_->declare_queues();
  }

  IntakeResult receive(const std::string& raw, const std::string& envelope_from = "x@example.org",
                       const Queue& queue = kQueue) {
    return intake_->receive(queue, envelope_from, raw);
  }

  Json replies() { return outbox_->list("", 100); }
  std::int64_t tickets() { return db_->query("SELECT COUNT(*) FROM tickets").at(0).integer(0); }

  std::unique_ptr<host::EventBus> bus_;
  std::unique_ptr<host::CoreStore> core_;
  std::unique_ptr<host::OutboxService> outbox_;
  std::unique_ptr<MailIntake> intake_;
};

// A store that answers "busy" (503, its retries spent) to the first transaction only.
class BusyOnce : public test::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  void transact(const std::function<void(Tx&)>& work) override {
    if (busy_.exchange(false)) throw Problem(503, "Database busy", "the store stayed locked");
    ForwardingStore::transact(work);
  }

 private:
  std::atomic<bool> busy_{true};
};

// A busy store is no fault of the message: the delivery fails, so that the MTA (451), mailgate
// (75) or the poll brings it again, and nothing is quarantined (it was acknowledged then, and
// waited for a replay by hand).
TEST_P(IntakeTest, ABusyStoreFailsTheDeliveryInsteadOfQuarantiningIt) {
  BusyOnce busy(*db_);
  IntakeSettings settings;
  settings.queues = {kQueue};
  MailIntake intake(busy, *core_, *core_, *outbox_, clock_, log_, settings);
  const std::string raw =
      message("Library DBA <dba@library.example.org>", "Please add an index", "busy@library");
  try {
    intake.receive(kQueue, "dba@library.example.org", raw);
    ADD_FAILURE() << "a busy store was not reported";
  } catch (const Problem& e) {
    EXPECT_EQ(e.status(), 503);
  }
  EXPECT_EQ(db_->query("SELECT COUNT(*) FROM mail_quarantine").at(0).integer(0), 0);
  EXPECT_EQ(tickets(), 0);
  // Delivered again, it is a ticket.
  EXPECT_EQ(intake.receive(kQueue, "dba@library.example.org", raw).outcome, "ticket");
}

TEST_P(IntakeTest, ANewMessageIsATicketWithACaseNumberAndOneAutoReply) {
  const auto r = receive(message("Library DBA <dba@library.example.org>",
                                 "Please add a read-only account", "m1@library.example.org"));
  EXPECT_EQ(r.outcome, "ticket");
  EXPECT_EQ(r.ticket, "DBR0000001");
  EXPECT_TRUE(r.auto_replied);
  const auto t = core_->find("DBR0000001");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->queue, "db-requests");
  EXPECT_EQ(t->kind, "service_request");
  EXPECT_EQ(t->priority, 4);  // low impact (3) × unmarked urgency (2)
  EXPECT_EQ(t->customer, "library");
  EXPECT_EQ(t->requester, "dba@library.example.org");
  ASSERT_EQ(t->messages.size(), 1u);
  EXPECT_EQ(t->messages[0].message_id, "m1@library.example.org");
  EXPECT_EQ(t->messages[0].body, "Hello.\n");  // the text as read, with plain line breaks

  const Json out = replies();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["channel"], "email");
  EXPECT_EQ(out[0]["destination"], "dba@library.example.org");
  EXPECT_EQ(out[0]["subject"], "[DBR0000001] Please add a read-only account");
  EXPECT_NE(out[0]["body"].get<std::string>().find("case DBR0000001"), std::string::npos);
  EXPECT_EQ(out[0]["headers"]["In-Reply-To"], "<m1@library.example.org>");
  EXPECT_EQ(out[0]["headers"]["Auto-Submitted"], "auto-replied");
  EXPECT_EQ(out[0]["headers"]["From"], "db-requests@example.org");

  // An outage report from an unknown domain: an incident, marked urgent by its sender.
  const auto incident = receive(message("someone@elsewhere.example.net", "Database is down",
                                        "m2@elsewhere.example.net", "Importance: high\r\n"));
  const auto t2 = core_->find(incident.ticket);
  EXPECT_EQ(incident.ticket, "DBR0000002");
  EXPECT_EQ(t2->kind, "incident");
  EXPECT_EQ(t2->priority, 2);  // medium impact (2) × high urgency (1)
  EXPECT_EQ(t2->customer, "");
}

TEST_P(IntakeTest, TheSameMessageDeliveredTwiceHasOneEffect) {
  const std::string raw = message("dba@library.example.org", "Quota", "dup@library.example.org");
  EXPECT_EQ(receive(raw).outcome, "ticket");
  const auto again = receive(raw);
  EXPECT_EQ(again.outcome, "duplicate");
  EXPECT_EQ(again.ticket, "DBR0000001");
  // No Message-ID: the content's hash decides.
  const std::string bare = message("dba@library.example.org", "No id", "");
  EXPECT_EQ(receive(bare).outcome, "ticket");
  EXPECT_EQ(receive(bare).outcome, "duplicate");
  EXPECT_EQ(tickets(), 2);
  EXPECT_EQ(replies().size(), 2u);
}

// A message to two team addresses opens a ticket in each queue; a reply to all goes on in
// each; a case number both queues receive lands on its ticket once.
TEST_P(IntakeTest, AMessageToTwoTeamAddressesIsATicketInEach) {
  make_intake(IntakeSettings{}, {kQueue, kOtherQueue});
  const std::string raw = message("dba@library.example.org", "Grant access on both servers",
                                  "two@library.example.org", "Cc: mssql-requests@example.org\r\n");
  const auto first = receive(raw, "dba@library.example.org", kQueue);
  const auto second = receive(raw, "dba@library.example.org", kOtherQueue);
  EXPECT_EQ(first.outcome, "ticket");
  EXPECT_EQ(first.ticket, "DBR0000001");
  EXPECT_EQ(second.outcome, "ticket");
  EXPECT_EQ(second.ticket, "MSR0000001");
  EXPECT_EQ(receive(raw, "dba@library.example.org", kOtherQueue).outcome, "duplicate");
  EXPECT_EQ(replies().size(), 2u);

  // The requester answers all, quoting the first message only.
  const std::string reply_all =
      message("dba@library.example.org", "Re: Grant access", "two-re@library.example.org",
              "In-Reply-To: <two@library.example.org>\r\n"
              "Cc: mssql-requests@example.org\r\n");
  EXPECT_EQ(receive(reply_all, "dba@library.example.org", kOtherQueue).ticket, "MSR0000001");
  EXPECT_EQ(receive(reply_all, "dba@library.example.org", kQueue).ticket, "DBR0000001");
  EXPECT_EQ(core_->find("DBR0000001")->messages.size(), 2u);
  EXPECT_EQ(core_->find("MSR0000001")->messages.size(), 2u);

  // One queue's case number, sent to both: on that ticket once, whichever queue comes first.
  const std::string tagged =
      message("dba@library.example.org", "Re: [DBR0000001] and one more",
              "two-tag@library.example.org", "Cc: mssql-requests@example.org\r\n");
  const auto through_other = receive(tagged, "dba@library.example.org", kOtherQueue);
  EXPECT_EQ(through_other.outcome, "reply");
  EXPECT_EQ(through_other.ticket, "DBR0000001");
  const auto through_own = receive(tagged, "dba@library.example.org", kQueue);
  EXPECT_EQ(through_own.outcome, "duplicate");
  EXPECT_EQ(through_own.detail, "already on DBR0000001 through another queue");
  EXPECT_EQ(core_->find("DBR0000001")->messages.size(), 3u);
  EXPECT_EQ(core_->find("MSR0000001")->messages.size(), 2u);
  EXPECT_EQ(tickets(), 2);
}

// Incident words count as whole words: "download" is not "down".
TEST_P(IntakeTest, IncidentWordsAreWholeWords) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Please enable CSV download", "service_request"},
      {"Scheduled shutdown request", "service_request"},
      {"Downgrade MySQL on the test server", "service_request"},
      {"Report breakdown by faculty", "service_request"},
      {"Server DOWN since 9:00", "incident"},
      {"Login not working.", "incident"},
      {"Errors after the upgrade", "incident"},
      {"outage: catalogue", "incident"},
  };
  int n = 0;
  for (const auto& [subject, kind] : cases) {
    const auto r = receive(message("dba@library.example.org", subject,
                                   "w" + std::to_string(n++) + "@library.example.org"));
    ASSERT_EQ(r.outcome, "ticket") << subject;
    EXPECT_EQ(core_->find(r.ticket)->kind, kind) << subject;
  }
}

// The auto-reply goes to Reply-To, unless that names a queue or a system mailbox; a subject
// or Message-ID that cannot be written back does not make the reply undeliverable.
TEST_P(IntakeTest, TheAutoReplyGoesWhereItCanBeDelivered) {
  receive(message("dba@library.example.org", "One", "r1@library.example.org",
                  "Reply-To: team@library.example.org\r\n"));
  receive(message("dba@library.example.org", "Two", "r2@library.example.org",
                  "Reply-To: DB-Requests@example.org\r\n"));
  receive(message("dba@library.example.org", "Three", "r3@library.example.org",
                  "Reply-To: postmaster@library.example.org\r\n"));
  Json out = replies();
  ASSERT_EQ(out.size(), 3u);
  std::map<std::string, std::string> to;  // subject -> destination
  for (const Json& m : out) to[m["subject"]] = m["destination"];
  EXPECT_EQ(to["[DBR0000001] One"], "team@library.example.org");
  EXPECT_EQ(to["[DBR0000002] Two"], "dba@library.example.org");
  EXPECT_EQ(to["[DBR0000003] Three"], "dba@library.example.org");

  // A line break encoded in the subject, and a Message-ID with a space in it.
  const auto r = receive(
      "From: dba@library.example.org\r\nTo: db-requests@example.org\r\n"
      "Subject: =?UTF-8?Q?Hello=0D=0ABcc:_x@example.net?=\r\n"
      "Message-ID: <\"a b\"@library.example.org>\r\nMIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n\r\nHi.\r\n");
  ASSERT_EQ(r.outcome, "ticket");
  EXPECT_EQ(core_->find(r.ticket)->subject, "Hello  Bcc: x@example.net");
  out = replies();
  const Json* reply = nullptr;
  for (const Json& m : out) {
    if (m["subject"].get<std::string>().starts_with("[" + r.ticket + "]")) reply = &m;
  }
  ASSERT_NE(reply, nullptr);
  EXPECT_EQ((*reply)["subject"], "[" + r.ticket + "] Hello  Bcc: x@example.net");
  EXPECT_FALSE((*reply)["headers"].contains("In-Reply-To")) << reply->dump();
  EXPECT_FALSE((*reply)["headers"].contains("References")) << reply->dump();
}

TEST_P(IntakeTest, RepliesThreadByOurMessageIdThenByTheCaseNumber) {
  receive(message("dba@library.example.org", "Restore a table", "a1@library.example.org"));
  const std::string our_id = replies()[0]["headers"]["Message-ID"].get<std::string>();
  const std::string bare_id = our_id.substr(1, our_id.size() - 2);
  EXPECT_TRUE(bare_id.starts_with("DBR0000001.")) << bare_id;
  EXPECT_TRUE(bare_id.ends_with("@example.org")) << bare_id;

  // The subject lost its tag, but In-Reply-To names our auto-reply.
  auto r = receive(message("dba@library.example.org", "Re: Restore a table",
                           "a2@library.example.org", "In-Reply-To: <" + bare_id + ">\r\n"));
  EXPECT_EQ(r.outcome, "reply");
  EXPECT_EQ(r.ticket, "DBR0000001");
  EXPECT_FALSE(r.auto_replied);  // no auto-reply to a reply
  // No references at all, only the case number in the subject.
  r = receive(message("dba@library.example.org", "RE: [DBR0000001] one more thing",
                      "a3@library.example.org"));
  EXPECT_EQ(r.outcome, "reply");
  EXPECT_EQ(core_->find("DBR0000001")->messages.size(), 3u);
  EXPECT_EQ(tickets(), 1);
  EXPECT_EQ(replies().size(), 1u);
}

TEST_P(IntakeTest, AServiceNowNotificationJoinsTheTicketSyncedWithItsIncident) {
  receive(message("dba@library.example.org", "Restore a table", "n1@library.example.org"));
  // The ServiceNow sync linked the ticket to its incident.
  auto t = core_->find("DBR0000001");
  t->external_ref = "INC0010042";
  db_->transact([&](Tx& tx) { core_->update(tx, Actor{"system:servicenow"}, *t); });
  const std::string notice =
      message("ServiceNow <instance@service-now.example.org>",
              "Incident INC0010042 has been updated", "sn-1@service-now.example.org",
              "Auto-Submitted: auto-generated\r\n", "State: In Progress\r\n");
  auto r = receive(notice);
  EXPECT_EQ(r.outcome, "reply");
  EXPECT_EQ(r.ticket, "DBR0000001");
  EXPECT_FALSE(r.auto_replied);
  EXPECT_EQ(core_->find("DBR0000001")->messages.size(), 2u);
  EXPECT_EQ(tickets(), 1);
  // Another customer quoting the number in a request of their own starts a ticket of their
  // own: nothing of theirs goes on the library's ticket.
  r = receive(message("dba@registrar.example.org", "Credit request for INC0010042",
                      "cr-1@registrar.example.org"));
  EXPECT_EQ(r.outcome, "ticket");
  EXPECT_EQ(r.ticket, "DBR0000002");
  EXPECT_EQ(core_->find("DBR0000002")->customer, "registrar");
  EXPECT_EQ(core_->find("DBR0000001")->messages.size(), 2u);
  // The ticket's own customer quoting it joins the ticket.
  r = receive(message("dba@library.example.org", "About INC0010042", "n2@library.example.org"));
  EXPECT_EQ(r.outcome, "reply");
  EXPECT_EQ(r.ticket, "DBR0000001");
  // An incident number that no ticket is synced with is an ordinary new message.
  r = receive(message("ServiceNow <instance@service-now.example.org>",
                      "Incident INC0099999 has been updated", "sn-2@service-now.example.org",
                      "Auto-Submitted: auto-generated\r\n"));
  EXPECT_EQ(r.outcome, "ticket");
  EXPECT_EQ(r.ticket, "DBR0000003");
  EXPECT_FALSE(r.auto_replied);  // automated mail gets no auto-reply
  EXPECT_EQ(replies().size(), 2u);
}

TEST_P(IntakeTest, AStrangerAnsweringATicketStartsItsOwnOrIsHeld) {
  receive(message("dba@library.example.org", "Restore a table", "s1@library.example.org"));
  auto r = receive(message("someone@elsewhere.example.net", "Re: [DBR0000001] me too",
                           "s2@elsewhere.example.net"));
  EXPECT_EQ(r.outcome, "ticket");
  EXPECT_EQ(r.ticket, "DBR0000002");

  IntakeSettings hold;
  hold.unknown_sender = "hold";
  make_intake(hold);
  const std::string again = message("someone@elsewhere.example.net",
                                    "Re: [DBR0000001] me too, again", "s3@elsewhere.example.net");
  r = receive(again);
  EXPECT_EQ(r.outcome, "held");
  EXPECT_EQ(core_->find("DBR0000001")->messages.size(), 1u);
  // Delivered again while it waits (a poll after a crash): one entry.
  r = receive(again);
  EXPECT_EQ(r.outcome, "duplicate");
  EXPECT_EQ(r.detail, "already in quarantine as #1");
  const Json held = intake_->quarantine("held");
  ASSERT_EQ(held.size(), 1u);
  EXPECT_NE(held[0]["reason"].get<std::string>().find("neither the requester"), std::string::npos);
  // A person accepts the sender: the reply joins the ticket.
  r = intake_->replay(Actor{"token:op"}, held[0]["id"].get<std::int64_t>());
  EXPECT_EQ(r.outcome, "reply");
  EXPECT_EQ(r.ticket, "DBR0000001");
  EXPECT_EQ(core_->find("DBR0000001")->messages.size(), 2u);
  EXPECT_THROW(intake_->replay(Actor{"token:op"}, held[0]["id"].get<std::int64_t>()), Conflict);
}

// A message that failed (the store was broken) and, once replayed after the fix, turns out to
// be one to hold (a stranger answering a ticket) is held, and a second replay accepts it.
TEST_P(IntakeTest, AFailedMessageThatIsOneToHoldIsHeldByItsReplay) {
  receive(message("dba@library.example.org", "Restore a table", "s1@library.example.org"));
  IntakeSettings hold;
  hold.unknown_sender = "hold";
  make_intake(hold);
  db_->transact([](Tx& tx) { tx.exec("ALTER TABLE mail_messages RENAME TO broken"); });
  auto r = receive(message("someone@elsewhere.example.net", "Re: [DBR0000001] me too",
                           "s2@elsewhere.example.net"));
  EXPECT_EQ(r.outcome, "quarantined") << r.detail;
  db_->transact([](Tx& tx) { tx.exec("ALTER TABLE broken RENAME TO mail_messages"); });
  const Json failed = intake_->quarantine("quarantined");
  ASSERT_EQ(failed.size(), 1u);
  const auto id = failed[0]["id"].get<std::int64_t>();
  r = intake_->replay(Actor{"token:op"}, id);
  EXPECT_EQ(r.outcome, "held");
  EXPECT_NE(r.detail.find("replay it again to accept its sender"), std::string::npos) << r.detail;
  EXPECT_EQ(intake_->quarantine("held").size(), 1u);
  EXPECT_EQ(core_->find("DBR0000001")->messages.size(), 1u);
  r = intake_->replay(Actor{"token:op"}, id);
  EXPECT_EQ(r.outcome, "reply");
  EXPECT_EQ(r.ticket, "DBR0000001");
  EXPECT_EQ(core_->find("DBR0000001")->messages.size(), 2u);
}

// Bob, who may not write to Alice's ticket, answered it and got a ticket of his own. Alice
// replies to all: her reply names Bob's message first, then her own and her case number. It
// goes on her ticket, not on Bob's and not on a third.
TEST_P(IntakeTest, AReplyGoesOnTheFirstTicketOfItsThreadTheSenderMayWriteTo) {
  receive(message("alice@elsewhere.example.net", "Restore", "t1@elsewhere.example.net"));
  auto r = receive(message("bob@elsewhere.example.net", "Re: [DBR0000001] Restore",
                           "t2@elsewhere.example.net",
                           "In-Reply-To: <t1@elsewhere.example.net>\r\n"
                           "References: <t1@elsewhere.example.net>\r\n"));
  ASSERT_EQ(r.outcome, "ticket");
  ASSERT_EQ(r.ticket, "DBR0000002");
  r = receive(message("alice@elsewhere.example.net", "Re: Re: [DBR0000001] Restore",
                      "t3@elsewhere.example.net",
                      "In-Reply-To: <t2@elsewhere.example.net>\r\n"
                      "References: <t1@elsewhere.example.net> <t2@elsewhere.example.net>\r\n"));
  EXPECT_EQ(r.outcome, "reply");
  EXPECT_EQ(r.ticket, "DBR0000001");
  EXPECT_EQ(tickets(), 2);
  EXPECT_EQ(core_->find("DBR0000001")->messages.size(), 2u);
  EXPECT_EQ(core_->find("DBR0000002")->messages.size(), 1u);
}

// A person answers where our auto-reply went: a web form or a list sending for them names
// them in Reply-To, and they become the requester, so their answer joins the ticket.
TEST_P(IntakeTest, TheReplyToAddressIsTheRequesterAndMayAnswer) {
  auto r =
      receive(message("forms@elsewhere.example.net", "Access to the catalogue",
                      "f1@elsewhere.example.net", "Reply-To: alice@elsewhere.example.net\r\n"));
  ASSERT_EQ(r.outcome, "ticket");
  EXPECT_EQ(core_->find(r.ticket)->requester, "alice@elsewhere.example.net");
  EXPECT_EQ(replies()[0]["destination"], "alice@elsewhere.example.net");
  r = receive(message("alice@elsewhere.example.net", "Re: [DBR0000001] Access to the catalogue",
                      "f2@elsewhere.example.net"));
  EXPECT_EQ(r.outcome, "reply");
  EXPECT_EQ(r.ticket, "DBR0000001");
  EXPECT_EQ(tickets(), 1);
  // A list that rewrote From (DMARC) and kept the member in Reply-To: the member's customer.
  r = receive(message("DBA list <dba-list@lists.example.net>", "Quota", "f3@lists.example.net",
                      "Reply-To: dba@library.example.org\r\n"));
  EXPECT_EQ(core_->find(r.ticket)->customer, "library");
  EXPECT_EQ(core_->find(r.ticket)->requester, "dba@library.example.org");
}

// A case number is found in any case, and after another helpdesk's tag.
TEST_P(IntakeTest, TheCaseNumberIsFoundAfterAnotherHelpdesksTag) {
  receive(message("dba@library.example.org", "Restore a table", "t1@library.example.org"));
  auto r = receive(message("dba@library.example.org", "Re: [SR0012345] Re: [dbr0000001] Restore",
                           "t2@library.example.org"));
  EXPECT_EQ(r.outcome, "reply");
  EXPECT_EQ(r.ticket, "DBR0000001");
  // As a person retypes it.
  for (const auto& [subject, id] :
       {std::pair{"Re: [DBR 0000001] Restore", "t3@library.example.org"},
        std::pair{"[ dbr-0000001 ] still slow", "t4@library.example.org"}}) {
    r = receive(message("dba@library.example.org", subject, id));
    EXPECT_EQ(r.outcome, "reply") << subject;
    EXPECT_EQ(r.ticket, "DBR0000001") << subject;
  }
  EXPECT_EQ(tickets(), 1);
}

// One hostile subject must not take the server down: a std::regex over it recursed once per
// character and ran the stack out (SIGSEGV, again at each redelivery).
TEST_P(IntakeTest, AHugeSubjectIsReadWithoutRunningTheStackOut) {
  std::string prefixes, spaces = "[";
  for (int i = 0; i < 50000; ++i) prefixes += "Re: ";
  spaces += std::string(100000, ' ');
  auto r =
      receive(message("dba@library.example.org", prefixes + "Restore", "big1@library.example.org"));
  EXPECT_EQ(r.outcome, "ticket");
  EXPECT_EQ(core_->find(r.ticket)->subject.substr(0, 8), "Re: Re: ");
  EXPECT_EQ(replies().back()["subject"], "[" + r.ticket + "] Restore");
  r = receive(
      message("dba@library.example.org", spaces + "DBR0000001]", "big2@library.example.org"));
  EXPECT_EQ(r.outcome, "reply");
  EXPECT_EQ(r.ticket, "DBR0000001");
}

// Our auto-reply redirected back to the queue by the requester's mailbox (headers kept): not a
// new ticket the queue would then answer itself. Held; replayed, it joins its ticket.
TEST_P(IntakeTest, OurOwnMailComingBackIsHeldNotATicket) {
  receive(message("dba@library.example.org", "Restore a table", "l1@library.example.org"));
  const Json sent = replies()[0];
  const std::string our_id = sent["headers"]["Message-ID"].get<std::string>();
  const std::string back =
      message("db-requests@example.org", sent["subject"], our_id.substr(1, our_id.size() - 2),
              "X-Loop: db-requests@example.org\r\nAuto-Submitted: "
              "auto-replied\r\nIn-Reply-To: <l1@library.example.org>\r\n");
  auto r = receive(back, "dba@library.example.org");
  EXPECT_EQ(r.outcome, "held");
  EXPECT_NE(r.detail.find("our own mail came back (X-Loop names db-requests@example.org)"),
            std::string::npos)
      << r.detail;
  // From the queue's address without X-Loop: held too.
  r = receive(
      message("db-requests@example.org", "Fwd: [DBR0000001] Restore a table", "l2@example.org"));
  EXPECT_EQ(r.outcome, "held");
  EXPECT_EQ(r.detail, "quarantine #2: our own mail came back (from the queue's own address)");
  EXPECT_EQ(tickets(), 1);
  EXPECT_EQ(replies().size(), 1u);
  const Json held = intake_->quarantine("held");
  ASSERT_EQ(held.size(), 2u);
  r = intake_->replay(Actor{"token:op"}, held[0]["id"].get<std::int64_t>());
  EXPECT_EQ(r.outcome, "reply");
  EXPECT_EQ(r.ticket, "DBR0000001");
}

// Mail from another of our queues, or from the address slmhub sends from, is ours too: a
// first-response escalation of db-requests (sent from its address) to mssql-requests would
// otherwise be a ticket there, escalate in turn, and so on for ever.
TEST_P(IntakeTest, MailFromAnyOfOurAddressesIsOursComingBack) {
  IntakeSettings settings;
  settings.own_addresses = {"noreply@example.org"};
  make_intake(settings, {kQueue, kOtherQueue});
  auto r = receive(
      message("db-requests@example.org", "First response missed: DBR0000001", "e1@example.org"),
      "db-requests@example.org", kOtherQueue);
  EXPECT_EQ(r.outcome, "held");
  EXPECT_NE(r.detail.find("our own mail came back (from db-requests@example.org, the address of "
                          "queue db-requests)"),
            std::string::npos)
      << r.detail;
  r = receive(message("dba@library.example.org", "Re: [MSR0000001] Quota", "e2@example.org",
                      "X-Loop: mssql-requests@example.org\r\n"));
  EXPECT_EQ(r.outcome, "held");
  EXPECT_NE(r.detail.find("(X-Loop names mssql-requests@example.org)"), std::string::npos)
      << r.detail;
  r = receive(message("Example Data Centre <noreply@example.org>", "Complete: CHG0000030",
                      "e3@example.org"));
  EXPECT_EQ(r.outcome, "held");
  EXPECT_NE(r.detail.find("(from noreply@example.org, the address slmhub sends from)"),
            std::string::npos)
      << r.detail;
  EXPECT_EQ(tickets(), 0);
  EXPECT_EQ(replies().size(), 0u);
}

TEST_P(IntakeTest, AutomatedMailGetsATicketButNoAutoReply) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Auto-Submitted: auto-replied\r\n", "Auto-Submitted: auto-replied (RFC 3834)"},
      {"Auto-Submitted: auto-generated\r\n", "Auto-Submitted: auto-generated (RFC 3834)"},
      {"Precedence: bulk\r\n", "Precedence: bulk"},
      {"Precedence: junk\r\n", "Precedence: junk"},
      {"Precedence: list\r\n", "Precedence: list"},
      {"X-Auto-Response-Suppress: All\r\n", "X-Auto-Response-Suppress: All"},
      {"List-Id: <dba.lists.example.org>\r\n", "mailing-list mail (List-Id)"},
  };
  int n = 0;
  for (const auto& [header, why] : cases) {
    const std::string number = std::to_string(n++);
    const auto r = receive(message("robot@elsewhere.example.net", "Report " + number,
                                   "auto" + number + "@elsewhere.example.net", header));
    EXPECT_EQ(r.outcome, "ticket") << header;
    EXPECT_FALSE(r.auto_replied) << header;
    EXPECT_EQ(r.detail, "no auto-reply: " + why);
    // The ticket says why, to staff.
    const auto t = core_->find(r.ticket);
    ASSERT_EQ(t->messages.size(), 2u) << header;
    EXPECT_EQ(t->messages[1].direction, "note");
    EXPECT_EQ(t->messages[1].body, "No automatic reply was sent: " + why + ".");
  }
  // Auto-Submitted: no is a person.
  EXPECT_TRUE(receive(message("person@elsewhere.example.net", "Hi", "p@elsewhere.example.net",
                              "Auto-Submitted: no\r\n"))
                  .auto_replied);
  EXPECT_EQ(replies().size(), 1u);
}

// Mailboxes nobody reads (RFC 3834 §2: a list's owner-* and *-request; no-reply addresses)
// and addresses an answer cannot be sent to get a ticket but no automatic reply, and the
// ticket says why. An X-Loop naming an address that merely contains ours is not ours.
TEST_P(IntakeTest, NoAutoReplyGoesWhereNobodyReadsItOrItCannotGo) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"no-reply@saas.example.net", "from no-reply@saas.example.net"},
      {"DoNotReply@saas.example.net", "from donotreply@saas.example.net"},  // as normalized
      {"owner-dba@lists.example.org", "from owner-dba@lists.example.org"},
      {"dba-request@lists.example.org", "from dba-request@lists.example.org"},
      {"j\xc3\xb6rg@example.de", "j\xc3\xb6rg@example.de cannot be written as an envelope address"},
  };
  int n = 0;
  for (const auto& [from, why] : cases) {
    const std::string number = std::to_string(n++);
    const auto r = receive(message(from, "Note " + number, "n" + number + "@example.net"));
    EXPECT_EQ(r.outcome, "ticket") << from;
    EXPECT_FALSE(r.auto_replied) << from;
    EXPECT_EQ(r.detail, "no auto-reply: " + why) << from;
  }
  // A reply-to that nobody reads is not answered either (the sender is then answered).
  const auto listed = receive(message("dba@library.example.org", "Quota", "q@example.net",
                                      "Reply-To: no_reply@library.example.org\r\n"));
  EXPECT_TRUE(listed.auto_replied);
  EXPECT_EQ(replies()[0]["destination"], "dba@library.example.org");  // newest first

  const auto r = receive(message("dba@library.example.org", "Restore", "x@example.net",
                                 "X-Loop: old-db-requests@example.org\r\n"));
  EXPECT_EQ(r.outcome, "ticket") << r.detail;
  EXPECT_TRUE(r.auto_replied);
}

TEST_P(IntakeTest, ABounceIsRecordedOnItsTicketNotAsANewOne) {
  receive(message("dba@library.example.org", "Restore a table", "b1@library.example.org"));
  const std::string our_id = replies()[0]["headers"]["Message-ID"].get<std::string>();
  const std::string dsn =
      "From: MAILER-DAEMON@mx.example.org\r\nTo: db-requests@example.org\r\n"
      "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.example.org>\r\n"
      "References: " +
      our_id +
      "\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
      "--b\r\nContent-Type: text/plain\r\n\r\nmailbox full\r\n"
      "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; "
      "mx.example.org\r\n\r\n"
      "Final-Recipient: rfc822; dba@library.example.org\r\nAction: failed\r\nStatus: 5.2.2\r\n"
      "--b--\r\n";
  const auto r = receive(dsn, kNullSender);
  EXPECT_EQ(r.outcome, "bounce");
  EXPECT_EQ(r.ticket, "DBR0000001");
  EXPECT_EQ(tickets(), 1);
  const auto t = core_->find("DBR0000001");
  EXPECT_EQ(t->messages.back().author, "bounce:mailer-daemon@mx.example.org");
  EXPECT_EQ(replies().size(), 1u);
  // A bounce that answers nothing we know is held, not made into a ticket.
  std::string stray = dsn;
  stray.replace(stray.find("References: "), 12 + our_id.size(), "References: <nothing@x>");
  stray.replace(stray.find("dsn1@"), 5, "dsn2@");
  EXPECT_EQ(receive(stray, kNullSender).outcome, "held");
  EXPECT_EQ(tickets(), 1);
  // Replaying it while it still answers nothing fails and changes nothing.
  const Json held = intake_->quarantine("held");
  ASSERT_EQ(held.size(), 1u);
  EXPECT_THROW(intake_->replay(Actor{"token:op"}, held[0]["id"].get<std::int64_t>()), Conflict);
  EXPECT_EQ(intake_->quarantine("").size(), 1u);
  EXPECT_EQ(tickets(), 1);
}

// Postfix's bounce: no In-Reply-To or References, a subject without the case number; the
// returned headers (text/rfc822-headers) carry our auto-reply's Message-ID.
TEST_P(IntakeTest, ABounceThatReturnsOnlyTheHeadersFindsItsTicket) {
  receive(message("dba@library.example.org", "Restore a table", "h1@library.example.org"));
  const std::string our_id = replies()[0]["headers"]["Message-ID"].get<std::string>();
  const std::string dsn =
      "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
      "To: db-requests@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n"
      "Message-ID: <dsn-h@mx.example.org>\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
      "--b\r\nContent-Type: text/plain\r\n\r\nThe mail system: host said 550 no such user\r\n"
      "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; "
      "mx.example.org\r\n\r\nFinal-Recipient: rfc822; dba@library.example.org\r\n"
      "Action: failed\r\nStatus: 5.1.1\r\n"
      "--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: db-requests@example.org\r\n"
      "To: dba@library.example.org\r\nSubject: [DBR0000001] Restore a table\r\n"
      "Message-ID: " +
      our_id + "\r\nAuto-Submitted: auto-replied\r\n--b--\r\n";
  const auto r = receive(dsn, kNullSender);
  EXPECT_EQ(r.outcome, "bounce") << r.detail;
  EXPECT_EQ(r.ticket, "DBR0000001");
  EXPECT_EQ(tickets(), 1);
  EXPECT_EQ(core_->find("DBR0000001")->messages.back().author,
            "bounce:mailer-daemon@mx.example.org");
}

TEST_P(IntakeTest, AutoRepliesToOneSenderStopAtTheDailyCap) {
  for (int i = 0; i < 7; ++i) {
    receive(message("chatty@elsewhere.example.net", "Question " + std::to_string(i),
                    "c" + std::to_string(i) + "@elsewhere.example.net"));
  }
  EXPECT_EQ(tickets(), 7);
  EXPECT_EQ(replies().size(), 5u);
  const auto sixth = core_->find("DBR0000006");
  ASSERT_EQ(sixth->messages.size(), 2u);
  EXPECT_EQ(sixth->messages[1].body,
            "No automatic reply was sent: chatty@elsewhere.example.net got 5 today already.");
  EXPECT_EQ(core_->find("DBR0000005")->messages.size(), 1u);
  clock_.set("2026-12-02T15:00:00Z");  // a new day
  EXPECT_TRUE(
      receive(message("chatty@elsewhere.example.net", "Next day", "c9@elsewhere.example.net"))
          .auto_replied);
}

TEST_P(IntakeTest, WhatCannotBeProcessedIsKeptWholeAndReplaysAfterTheFix) {
  // Break the store under the intake: the attachment table is gone.
  db_->transact([](Tx& tx) { tx.exec("ALTER TABLE mail_attachments RENAME TO broken"); });
  const std::string raw =
      "From: dba@library.example.org\r\nTo: db-requests@example.org\r\nSubject: With a file\r\n"
      "Message-ID: <q1@library.example.org>\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n"
      "See attached.\r\n--x\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; "
      "filename=\"grants.csv\"\r\n\r\nuser,role\r\n--x--\r\n";
  const auto r = receive(raw);
  EXPECT_EQ(r.outcome, "quarantined");
  EXPECT_EQ(tickets(), 0);
  EXPECT_TRUE(replies().empty());
  const Json q = intake_->quarantine("quarantined");
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0]["size"], raw.size());
  EXPECT_EQ(q[0]["queue"], "db-requests");
  EXPECT_THROW(intake_->replay(Actor{"token:op"}, q[0]["id"].get<std::int64_t>()), Conflict);

  db_->transact([](Tx& tx) { tx.exec("ALTER TABLE broken RENAME TO mail_attachments"); });
  clock_.set("2026-12-03T09:00:00Z");  // fixed two days later
  const auto replayed = intake_->replay(Actor{"token:op"}, q[0]["id"].get<std::int64_t>());
  EXPECT_EQ(replayed.outcome, "ticket");
  EXPECT_EQ(replayed.ticket, "DBR0000001");
  EXPECT_TRUE(replayed.auto_replied);
  // Timed from its arrival, not from the replay: the first-response target has passed.
  const auto t = core_->find("DBR0000001");
  EXPECT_EQ(format_instant(t->created_at), "2026-12-01T15:00:00Z");
  EXPECT_EQ(format_instant(t->messages.at(0).at), "2026-12-01T15:00:00Z");
  ASSERT_TRUE(t->first_response_due.has_value());
  EXPECT_LT(*t->first_response_due, clock_.now());
  const auto files = db_->query(
      "SELECT name, content_type, size FROM mail_attachments WHERE ticket = 'DBR0000001'");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].text(0), "grants.csv");
  EXPECT_EQ(files[0].text(1), "text/csv");
  EXPECT_EQ(files[0].integer(2), 9);  // "user,role": the CRLF before a boundary is the boundary's
  EXPECT_EQ(intake_->quarantine("replayed").size(), 1u);
}

// Attachments are read back as sent: stored in chunks now, as base64 in the row before.
TEST_P(IntakeTest, AttachmentsReadBackAsSentWhicheverWayTheyWereStored) {
  const auto r = receive(
      "From: dba@library.example.org\r\nTo: db-requests@example.org\r\nSubject: Files\r\n"
      "Message-ID: <a1@library.example.org>\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\n"
      "Content-Type: text/plain\r\n\r\nTwo files.\r\n--x\r\nContent-Type: text/csv\r\n"
      "Content-Disposition: attachment; filename=\"grants.csv\"\r\n\r\nuser,role\r\n--x\r\n"
      "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
      "Content-Disposition: attachment; filename=\"empty.bin\"\r\n\r\n\r\n--x--\r\n");
  ASSERT_EQ(r.outcome, "ticket");
  const Json listed = intake_->attachments(r.ticket);
  ASSERT_EQ(listed.size(), 2u) << listed.dump();
  EXPECT_EQ(listed[0]["name"], "grants.csv");
  EXPECT_EQ(listed[0]["size"], 9);
  EXPECT_EQ(listed[0]["sha256"], sha256_hex("user,role"));
  EXPECT_EQ(intake_->attachment(listed[0]["id"].get<std::int64_t>())->bytes, "user,role");
  EXPECT_EQ(listed[1]["size"], 0);
  EXPECT_EQ(intake_->attachment(listed[1]["id"].get<std::int64_t>())->bytes, "");

  // A row from before mail intake migration 2: its bytes as base64 in `content`, no chunks.
  db_->transact([](Tx& tx) {
    tx.exec(
        "INSERT INTO mail_attachments(id, ticket, message_key, name, content_type, content_id, "
        "is_inline, size, sha256, content) VALUES (900, 'DBR0000001', 'old', 'old.txt', "
        "'text/plain', '', 0, 5, ?, 'aGVsbG8=')",
        {sha256_hex("hello")});
  });
  const auto old = intake_->attachment(900);
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->name, "old.txt");
  EXPECT_EQ(old->bytes, "hello");
  EXPECT_FALSE(intake_->attachment(901).has_value());
}

// Eight sessions delivering at once share transactions (group commit); the same message
// delivered by several of them at the same moment is still one ticket.
TEST_P(IntakeTest, ConcurrentDeliveriesCommitTogetherAndStillApplyOnce) {
  std::vector<std::thread> sessions;
  std::mutex mutex;
  std::map<std::string, int> outcomes;
  for (int s = 0; s < 8; ++s) {
    sessions.emplace_back([&, s] {
      for (int i = 0; i < 25; ++i) {
        // Each message number is delivered by two sessions (s and s ^ 1).
        const int n = (s / 2) * 25 + i;
        const auto r = receive(message("user" + std::to_string(n) + "@elsewhere.example.net",
                                       "Request " + std::to_string(n),
                                       "c" + std::to_string(n) + "@elsewhere.example.net"));
        std::lock_guard lock(mutex);
        ++outcomes[r.outcome];
      }
    });
  }
  for (auto& t : sessions) t.join();
  EXPECT_EQ(outcomes["ticket"], 100);
  EXPECT_EQ(outcomes["duplicate"], 100);
  EXPECT_EQ(tickets(), 100);
  EXPECT_EQ(replies().size(), 100u);
  // Case numbers stay gapless under concurrency.
  EXPECT_TRUE(core_->find("DBR0000100").has_value());
  EXPECT_FALSE(core_->find("DBR0000101").has_value());
}

TEST(Priority, TheMatrixOfTheSla) {
  EXPECT_EQ(priority_of(1, 1), 1);
  EXPECT_EQ(priority_of(1, 2), 2);
  EXPECT_EQ(priority_of(2, 1), 2);
  EXPECT_EQ(priority_of(1, 3), 3);
  EXPECT_EQ(priority_of(2, 2), 3);
  EXPECT_EQ(priority_of(3, 1), 3);
  EXPECT_EQ(priority_of(2, 3), 4);
  EXPECT_EQ(priority_of(3, 2), 4);
  EXPECT_EQ(priority_of(3, 3), 5);
}

TEST(Queues, ConfiguredAsNamePrefixAddress) {
  const Queue q = parse_queue("db-requests:DBR:DB-Requests@Example.org");
  EXPECT_EQ(q.name, "db-requests");
  EXPECT_EQ(q.prefix, "DBR");
  EXPECT_EQ(q.address, "db-requests@example.org");
  EXPECT_THROW(parse_queue("db-requests:dbr:db-requests@example.org"), std::invalid_argument);
  EXPECT_THROW(parse_queue("db-requests:DBR"), std::invalid_argument);
  EXPECT_THROW(parse_queue("db-requests:DBR:nobody"), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Engines, IntakeTest, test::kBothEngines, test::engine_name);

}  // namespace
}  // namespace slmhub::email
