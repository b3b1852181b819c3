// Recurring obligations on SQLite and PostgreSQL over the host's core store and deadline
// service: opened once per customer and credential holder, dated in the provider calendar
// (a half year from 31 August ends on 28 February), completed with who and when, followed by
// the next cycle, withdrawn when nobody holds them, and an overdue contact validation flags
// the customer.
#include "obligations.hpp"

#include <gtest/gtest.h>

#include "core/core_store.hpp"
#include "deadlines/deadline_store.hpp"
#include "events/event_bus.hpp"
#include "slmhub/errors.hpp"
#include "store_fixture.hpp"
#include "test_files.hpp"

namespace slmhub::workflows {
namespace {

using test::StoreTest;

class ObligationsTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    clock_.set("2026-08-31T15:00:00Z");  // Monday 31 August, 10:00 in Chicago
    bus_ = std::make_unique<host::EventBus>(*db_, clock_, log_);
    core_ = std::make_unique<host::CoreStore>(*db_, *bus_, clock_);
    dataset_ = Json::parse(test::read_shared("vectors/example-2026-11.json"));
    for (auto& c : dataset_["customers"]) {
      const std::string id = c["id"];
      c["contacts"] = Json::array({{{"role", "technical_primary"},
                                    {"name", "Primary DBA"},
                                    {"email", "dba@" + id + ".example.org"}},
                                   {{"role", "executive"},
                                    {"name", "Director"},
                                    {"email", "director@" + id + ".example.org"}}});
    }
    dataset_["customers"][1]["contacts"].push_back(
        {{"role", "security"}, {"name", "Data owner"}, {"email", "owner@library.example.org"}});
    core_->import(Actor{"test"}, dataset_);
    deadlines_ = std::make_unique<host::DeadlineStore>(*db_, *core_, *bus_, clock_, log_,
                                                       host::DeadlineSettings{});
    db_->migrate("workflows.obligations", ObligationBook::migrations());
    book_ = std::make_unique<ObligationBook>(*db_, *core_, *deadlines_, clock_, log_);
  }
  void TearDown() override {
    book_.reset();
    deadlines_.reset();
    core_.reset();
    bus_.reset();
    StoreTest::TearDown();
  }

  Obligation only(const std::string& customer, const std::string& kind) {
    auto items = book_->list(customer, kind, "open");
    EXPECT_EQ(items.size(), 1u) << customer << " " << kind;
    return items.empty() ? Obligation{} : items.front();
  }

  Json dataset_;
  std::unique_ptr<host::EventBus> bus_;
  std::unique_ptr<host::CoreStore> core_;
  std::unique_ptr<host::DeadlineStore> deadlines_;
  std::unique_ptr<ObligationBook> book_;
};

TEST_P(ObligationsTest, EachCustomerAndEachCredentialHolderGetsItsObligationsOnce) {
  // registrar: review, validation, the DBA's acknowledgement; library: the same and the data
  // owner's (a security contact holds credentials too). Executives hold none.
  EXPECT_EQ(book_->sync(), "7 opened, 0 withdrawn");
  EXPECT_EQ(book_->sync(), "0 opened, 0 withdrawn");
  std::vector<std::string> holders;
  for (const auto& o : book_->list("library", "use_policy", "open")) holders.push_back(o.party);
  EXPECT_EQ(holders,
            (std::vector<std::string>{"dba@library.example.org", "owner@library.example.org"}));

  const Obligation review = only("library", "sla_review");
  EXPECT_EQ(review.due_date, "2027-08-31");
  const Obligation validation = only("library", "contact_validation");
  EXPECT_EQ(validation.due_date, "2027-02-28");  // 31 August + 6 months, clamped
  const auto deadline = deadlines_->find("obligation/" + validation.id);
  ASSERT_TRUE(deadline.has_value());
  EXPECT_EQ(deadline->kind, "obligation.contact_validation");
  EXPECT_EQ(deadline->owner_role, "customer:library");
  EXPECT_EQ(deadline->notify, std::vector<std::string>{"dba@library.example.org"});
  EXPECT_EQ(format_instant(deadline->due), "2027-03-01T06:00:00Z");  // end of day, CST
  EXPECT_EQ(deadlines_->find("obligation/" + review.id)->notify,
            std::vector<std::string>{"director@library.example.org"});
}

TEST_P(ObligationsTest, CompletingRecordsWhoAndWhenAndOpensTheNextCycle) {
  book_->sync();
  const Obligation validation = only("library", "contact_validation");
  clock_.set("2026-10-15T16:00:00Z");
  const Obligation done =
      book_->complete(Actor{"token:library"}, validation.id, "two developer accounts removed");
  EXPECT_EQ(done.state, "done");
  EXPECT_EQ(done.completed_by, "token:library");
  EXPECT_EQ(format_instant(*done.completed_at), "2026-10-15T16:00:00Z");
  EXPECT_EQ(deadlines_->find("obligation/" + validation.id)->state, "done");
  const Obligation next = only("library", "contact_validation");
  EXPECT_NE(next.id, validation.id);
  EXPECT_EQ(next.due_date, "2027-04-15");
  EXPECT_EQ(deadlines_->find("obligation/" + next.id)->state, "open");
  EXPECT_THROW(book_->complete(Actor{"token:library"}, validation.id, ""), Conflict);
  EXPECT_THROW(book_->complete(Actor{"token:library"}, "OBL-999999", ""), NotFound);
  EXPECT_EQ(book_->sync(), "0 opened, 0 withdrawn");
}

TEST_P(ObligationsTest, AnOverdueContactValidationFlagsTheCustomer) {
  book_->sync();
  clock_.set("2026-10-15T16:00:00Z");  // the library validates; its next one is due in April
  book_->complete(Actor{"token:library"}, only("library", "contact_validation").id, "");
  clock_.set("2027-03-01T05:59:59Z");  // 28 February, 23:59:59 in Chicago: still in time
  EXPECT_TRUE(book_->flagged().empty());
  clock_.set("2027-03-11T06:00:00Z");
  const Json flagged = book_->flagged();
  ASSERT_EQ(flagged.size(), 1u);
  EXPECT_EQ(flagged[0]["customer"], "registrar");
  EXPECT_EQ(flagged[0]["due_date"], "2027-02-28");
  EXPECT_EQ(flagged[0]["days_overdue"], 10);
}

TEST_P(ObligationsTest, AnObligationNobodyHoldsAnyMoreIsWithdrawn) {
  book_->sync();
  const Obligation owner = book_->list("library", "use_policy", "open").back();
  ASSERT_EQ(owner.party, "owner@library.example.org");
  dataset_["customers"][1]["contacts"].erase(2);
  core_->import(Actor{"test"}, dataset_);
  EXPECT_EQ(book_->sync(), "0 opened, 1 withdrawn");
  EXPECT_EQ(book_->find(owner.id)->state, "withdrawn");
  EXPECT_EQ(deadlines_->find("obligation/" + owner.id)->state, "done");
}

// A customer whose subscriptions have all ended is under no SLA: its open obligations are
// withdrawn, no new ones open, and a lapsed validation does not flag it for suspension.
TEST_P(ObligationsTest, AFormerCustomerOwesNothingAndIsNotFlagged) {
  EXPECT_EQ(book_->sync(), "7 opened, 0 withdrawn");
  for (auto& s : dataset_["customers"][1]["subscriptions"]) s["end"] = "2026-10-01T05:00:00Z";
  core_->import(Actor{"test"}, dataset_);
  EXPECT_EQ(book_->sync(), "0 opened, 0 withdrawn");  // a customer until 1 October
  clock_.set("2026-10-01T05:00:00Z");
  // The library's review, validation and two acknowledgements.
  EXPECT_EQ(book_->sync(), "0 opened, 4 withdrawn");
  EXPECT_TRUE(book_->list("library", "", "open").empty());
  EXPECT_EQ(book_->sync(), "0 opened, 0 withdrawn");
  clock_.set("2027-03-11T06:00:00Z");
  const Json flagged = book_->flagged();
  ASSERT_EQ(flagged.size(), 1u);
  EXPECT_EQ(flagged[0]["customer"], "registrar");
}

INSTANTIATE_TEST_SUITE_P(Engines, ObligationsTest, test::kBothEngines, test::engine_name);

}  // namespace
}  // namespace slmhub::workflows
