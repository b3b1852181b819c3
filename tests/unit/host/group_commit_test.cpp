// The group committer: writes from many threads share commits, every caller returns only
// after its write is durable, and a failing write fails alone.
#include "core/group_commit.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "forwarding_store.hpp"
#include "server_process.hpp"
#include "storage/database.hpp"

namespace slmhub::host {
namespace {

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db = Database::open("sqlite:" + (dir.path() / "g.db").string());
    db->migrate("test", {{1, "rows", "CREATE TABLE rows(id BIGINT PRIMARY KEY, who TEXT)"}});
  }
  std::int64_t count() { return db->query("SELECT COUNT(*) FROM rows").at(0).integer(0); }
  test::TempDir dir;
  std::unique_ptr<Database> db;
};

TEST_F(GroupCommitTest, ConcurrentWritesShareCommitsAndAllLand) {
  GroupCommitter writer(*db);
  writer.start(64);
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        writer.submit([&](Tx& tx) {
          tx.exec("INSERT INTO rows(id, who) VALUES (?, ?)",
                  {std::int64_t{t * 1000 + i}, std::string("t") + std::to_string(t)});
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(count(), 800);
  auto stats = writer.stats();
  EXPECT_EQ(stats.writes, 800);
  EXPECT_LT(stats.batches, 800);  // some commits carried more than one write
}

TEST_F(GroupCommitTest, AFailingWriteFailsAloneAndTheOthersCommit) {
  GroupCommitter writer(*db);
  writer.start(64);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&, t] {
      try {
        writer.submit([&](Tx& tx) {
          tx.exec("INSERT INTO rows(id, who) VALUES (?, ?)", {std::int64_t{t}, std::string("x")});
          // Every third writer breaks a rule after writing: its row must not survive.
          if (t % 3 == 0) throw std::runtime_error("rule broken by writer " + std::to_string(t));
        });
      } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "rule broken by writer " + std::to_string(t));
        ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 4);
  EXPECT_EQ(count(), 8);
  EXPECT_TRUE(db->query("SELECT 1 FROM rows WHERE id IN (0, 3, 6, 9)").empty());
}

// A store whose first commit succeeds but whose answer is lost (PostgreSQL's connection
// dropped during COMMIT): the writes are in, and the caller is told of a failure.
class AnswerLost : public test::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  void transact(const std::function<void(Tx&)>& work) override {
    ForwardingStore::transact(work);
    if (lost_.exchange(false)) throw std::runtime_error("server closed the connection");
  }

 private:
  std::atomic<bool> lost_{true};
};

// A batch whose commit may have landed is not run again write by write: that would apply
// each write twice. Its callers get the error.
TEST_F(GroupCommitTest, ABatchWhoseCommitAnswerWasLostIsNotRunAgain) {
  db->migrate("log", {{1, "log", "CREATE TABLE log(who TEXT)"}});
  AnswerLost store(*db);
  GroupCommitter writer(store);
  writer.start(64);
  try {
    writer.submit([](Tx& tx) { tx.exec("INSERT INTO log(who) VALUES ('ticket SLM1')"); });
    ADD_FAILURE() << "the lost answer was not reported";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "server closed the connection");
  }
  EXPECT_EQ(db->query("SELECT COUNT(*) FROM log").at(0).integer(0), 1);
}

TEST_F(GroupCommitTest, AFailingStatementFailsOnlyItsWrite) {
  db->transact([](Tx& tx) { tx.exec("INSERT INTO rows(id, who) VALUES (1, 'first')"); });
  GroupCommitter writer(*db);
  writer.start(64);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int id = 1; id <= 6; ++id) {
    threads.emplace_back([&, id] {
      try {
        // id 1 exists: that INSERT violates the primary key inside the shared transaction.
        writer.submit([&](Tx& tx) {
          tx.exec("INSERT INTO rows(id, who) VALUES (?, 'new')", {std::int64_t{id}});
        });
      } catch (const std::exception&) {
        ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 1);
  EXPECT_EQ(count(), 6);
  EXPECT_EQ(db->query("SELECT who FROM rows WHERE id = 1").at(0).text(0), "first");
}

TEST_F(GroupCommitTest, WithoutAWriterThreadSubmitRunsItsOwnTransaction) {
  GroupCommitter writer(*db);
  writer.submit([](Tx& tx) { tx.exec("INSERT INTO rows(id, who) VALUES (7, 'cli')"); });
  EXPECT_EQ(count(), 1);
  EXPECT_THROW(writer.submit([](Tx&) { throw std::invalid_argument("no"); }),
               std::invalid_argument);
}

}  // namespace
}  // namespace slmhub::host
