// The store contract on both engines: every TEST_P runs once on a SQLite file and once on
// a real PostgreSQL 15 cluster (one per test binary, a fresh database per test).
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>
#include "error_of.hpp"

#include <atomic>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "postgres_cluster.hpp"
#include "slmhub/errors.hpp"
#include "storage/database.hpp"
#include "storage/page_cache.hpp"
#include "storage/wal_writes.hpp"

namespace slmhub::host {
namespace {

namespace fs = std::filesystem;

enum class Engine { sqlite, postgresql };

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "slmhub-store-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

using test::error_of;

std::vector<Migration> notes_migrations() {
  return {
      {1, "create notes", "CREATE TABLE notes (id {{serial}}, body TEXT NOT NULL)"},
      {2, "add author", "ALTER TABLE notes ADD COLUMN author TEXT"},
  };
}

class StoreTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    if (GetParam() == Engine::sqlite) {
      url_ = "sqlite:" + dir_.path() + "/store.db";
    } else {
      // One database for this suite, emptied before each test: a database per test costs
      // a createdb each and more work for the server's shutdown checkpoint.
      static const std::string suite_url = test::shared_cluster().create_database("store_test");
      url_ = suite_url;
      Database::open(url_)->transact([](Tx& tx) {
        tx.exec("DROP SCHEMA public CASCADE");
        tx.exec("CREATE SCHEMA public");
      });
    }
    db_ = Database::open(url_);
  }

  std::int64_t count(const std::string& table) {
    return db_->query("SELECT COUNT(*) FROM " + table)[0].integer(0);
  }

  void insert_note(const std::string& body) {
    db_->transact([&](Tx& tx) { tx.exec("INSERT INTO notes (body) VALUES (?)", {body}); });
  }

  TempDir dir_;
  std::string url_;
  std::unique_ptr<Database> db_;
};

TEST_P(StoreTest, OpensTheRightDialect) {
  EXPECT_EQ(db_->dialect(), GetParam() == Engine::sqlite ? Dialect::sqlite : Dialect::postgresql);
}

TEST_P(StoreTest, MigrationsApplyOnceInOrder) {
  db_->migrate("demo", notes_migrations());
  insert_note("kept");
  // A second run must not re-run anything: CREATE TABLE and ADD COLUMN would fail.
  db_->migrate("demo", notes_migrations());
  EXPECT_EQ(count("notes"), 1);

  auto more = notes_migrations();
  more.push_back({3, "index authors", "CREATE INDEX notes_author ON notes (author)"});
  db_->migrate("demo", more);
  EXPECT_EQ(db_->applied_versions(), (std::vector<std::pair<std::string, int>>{{"demo", 3}}));
  const auto rows = db_->query(
      "SELECT version, description FROM schema_migrations WHERE owner = ? ORDER BY version",
      {"demo"});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].integer(0), 1);
  EXPECT_EQ(rows[1].text(1), "add author");
  EXPECT_EQ(rows[2].integer(0), 3);
  EXPECT_EQ(count("notes"), 1);
}

TEST_P(StoreTest, OwnersHaveTheirOwnVersions) {
  db_->migrate("notes", notes_migrations());
  db_->migrate("alpha", {{1, "create kv", "CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT)"}});
  EXPECT_EQ(db_->applied_versions(),
            (std::vector<std::pair<std::string, int>>{{"alpha", 1}, {"notes", 2}}));
}

TEST_P(StoreTest, MigrationGapIsRefusedBeforeAnythingRuns) {
  const std::string gap = error_of<std::runtime_error>([&] {
    db_->migrate("demo", {notes_migrations()[0], {3, "three", "CREATE TABLE three (x BIGINT)"}});
  });
  EXPECT_NE(gap.find("demo"), std::string::npos) << gap;
  EXPECT_NE(gap.find("version 3"), std::string::npos) << gap;
  EXPECT_EQ(count("schema_migrations"), 0);

  const std::string late = error_of<std::runtime_error>([&] {
    db_->migrate("demo", {{2, "two", "CREATE TABLE two (x BIGINT)"}});
  });
  EXPECT_NE(late.find("version 2"), std::string::npos) << late;
  EXPECT_TRUE(db_->applied_versions().empty());
}

TEST_P(StoreTest, ChangedDescriptionIsRefused) {
  db_->migrate("demo", {notes_migrations()[0]});
  const std::string message = error_of<std::runtime_error>([&] {
    db_->migrate("demo", {{1, "create the notes", notes_migrations()[0].sql}});
  });
  EXPECT_NE(message.find("demo version 1"), std::string::npos) << message;
  EXPECT_NE(message.find("\"create notes\""), std::string::npos) << message;
  EXPECT_NE(message.find("\"create the notes\""), std::string::npos) << message;
}

TEST_P(StoreTest, FailedMigrationLeavesNoTrace) {
  db_->migrate("demo", {notes_migrations()[0]});
  const std::string message = error_of<std::runtime_error>([&] {
    db_->migrate("demo",
                 {notes_migrations()[0],
                  {2, "broken", "CREATE TABLE extra (x BIGINT); INSERT INTO nowhere VALUES (1)"}});
  });
  EXPECT_NE(message.find("demo version 2"), std::string::npos) << message;
  EXPECT_NE(message.find("nowhere"), std::string::npos) << message;
  EXPECT_EQ(db_->applied_versions(), (std::vector<std::pair<std::string, int>>{{"demo", 1}}));
  EXPECT_THROW(db_->query("SELECT x FROM extra"), std::runtime_error);
}

TEST_P(StoreTest, UnknownPlaceholderInMigrationIsRefused) {
  const std::string message = error_of<std::runtime_error>([&] {
    db_->migrate("demo", {{1, "typo", "CREATE TABLE t (id {{serail}})"}});
  });
  EXPECT_NE(message.find("{{serail}}"), std::string::npos) << message;
  EXPECT_NE(message.find("demo version 1"), std::string::npos) << message;
}

// {{append_only:TABLE}}: rows can be added and read, never changed or removed, by anyone who
// reaches the store (the audit log is such a table).
TEST_P(StoreTest, AnAppendOnlyTableRefusesUpdatesAndDeletes) {
  db_->migrate("demo", {{1, "log", "CREATE TABLE log (id {{serial}}, what TEXT NOT NULL)"},
                        {2, "log is append-only", "{{append_only:log}}"}});
  db_->transact([](Tx& tx) { tx.exec("INSERT INTO log(what) VALUES ('created')"); });
  std::vector<std::string> changes{"UPDATE log SET what = 'forged'", "DELETE FROM log",
                                   "DELETE FROM log WHERE id = 1"};
  changes.push_back(GetParam() == Engine::sqlite
                        ? "INSERT OR REPLACE INTO log(id, what) VALUES (1, 'forged')"
                        : "INSERT INTO log(id, what) VALUES (1, 'forged') ON CONFLICT (id) DO "
                          "UPDATE SET what = excluded.what");
  for (const auto& sql : changes) {
    try {
      db_->transact([&](Tx& tx) { tx.exec(sql); });
      ADD_FAILURE() << sql << " was allowed";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("log is append-only"), std::string::npos) << e.what();
    }
  }
  if (GetParam() == Engine::postgresql) {
    EXPECT_THROW(db_->transact([](Tx& tx) { tx.exec("TRUNCATE log"); }), std::exception);
  }
  const auto rows = db_->query("SELECT id, what FROM log");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].text(1), "created");
}

TEST_P(StoreTest, MigrationScriptSplitsOutsideQuotesAndComments) {
  db_->migrate("demo", {{1, "seed",
                         "CREATE TABLE notes (id {{serial}}, body TEXT NOT NULL);\n"
                         "-- a comment; with a semicolon\n"
                         "INSERT INTO notes (body) VALUES ('a;b');\n"
                         "INSERT INTO notes (body) VALUES ('it''s; -- not a comment');\n"
                         "/* block; comment */ ;\n"}});
  const auto rows = db_->query("SELECT body FROM notes ORDER BY id");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].text(0), "a;b");
  EXPECT_EQ(rows[1].text(0), "it's; -- not a comment");
}

TEST_P(StoreTest, SerialIdsStartAtOneAndIncrease) {
  db_->migrate("demo", notes_migrations());
  std::vector<std::int64_t> ids;
  db_->transact([&](Tx& tx) {
    for (const char* body : {"a", "b", "c"}) {
      ids.push_back(
          tx.query("INSERT INTO notes (body) VALUES (?) RETURNING id", {body})[0].integer(0));
    }
  });
  EXPECT_EQ(ids, (std::vector<std::int64_t>{1, 2, 3}));
}

TEST_P(StoreTest, TextIntegerAndNullRoundTrip) {
  db_->migrate("demo", {{1, "values", "CREATE TABLE vals (id {{serial}}, i BIGINT, t TEXT)"}});
  const std::string utf8 = "Zürich — 東京 🚀 \"double\" 'single' \\backslash? $1 $$";
  std::string big;
  while (big.size() < (1u << 20)) big += "0123456789abcdef ÄÖÜ €\n";
  db_->transact([&](Tx& tx) {
    const std::string sql = "INSERT INTO vals (i, t) VALUES (?, ?)";
    tx.exec(sql, {std::int64_t{INT64_MIN}, std::string()});
    tx.exec(sql, {std::int64_t{INT64_MAX}, utf8});
    tx.exec(sql, {std::monostate{}, std::monostate{}});
    tx.exec(sql, {std::int64_t{-1}, big});
  });
  const auto rows = db_->query("SELECT i, t FROM vals ORDER BY id");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].values, (std::vector<Value>{std::int64_t{INT64_MIN}, std::string()}));
  EXPECT_EQ(rows[1].values, (std::vector<Value>{std::int64_t{INT64_MAX}, utf8}));
  EXPECT_TRUE(rows[2].is_null(0));
  EXPECT_TRUE(rows[2].is_null(1));
  EXPECT_EQ(rows[2].optional_integer(0), std::nullopt);
  EXPECT_EQ(rows[2].optional_text(1), std::nullopt);
  EXPECT_EQ(rows[3].integer(0), -1);
  EXPECT_EQ(rows[3].text(1).size(), big.size());
  EXPECT_TRUE(rows[3].text(1) == big);
  // Parameters compare as well as they store.
  EXPECT_EQ(db_->query("SELECT id FROM vals WHERE t = ?", {utf8})[0].integer(0), 2);
}

TEST_P(StoreTest, BlobRoundTripsEveryByte) {
  db_->migrate("demo", {{1, "blobs", "CREATE TABLE files (id {{serial}}, content {{blob}})"}});
  std::string bytes;
  for (int b = 0; b < 256; ++b) bytes += static_cast<char>(b);
  db_->transact([&](Tx& tx) { tx.exec("INSERT INTO files (content) VALUES (?)", {bytes}); });
  const auto rows = db_->query("SELECT content FROM files");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].text(0), bytes);
}

TEST_P(StoreTest, AggregatesAndExpressionsAreIntegers) {
  db_->migrate("demo", {{1, "values", "CREATE TABLE vals (i BIGINT, c INTEGER)"}});
  db_->transact([&](Tx& tx) {
    // 2^62 + 1 needs all 64 bits: a detour through double would round it.
    tx.exec("INSERT INTO vals (i, c) VALUES (?, 2), (1, 4)", {std::int64_t{1} << 62});
  });
  const auto row =
      db_->query("SELECT COUNT(*), SUM(i), MAX(i), MIN(c), SUM(c), AVG(c), 1 + 1 FROM vals")[0];
  EXPECT_EQ(row.values, (std::vector<Value>{std::int64_t{2}, (std::int64_t{1} << 62) + 1,
                                            std::int64_t{1} << 62, std::int64_t{2}, std::int64_t{6},
                                            std::int64_t{3}, std::int64_t{2}}));
  const auto empty = db_->query("SELECT COUNT(*), SUM(i) FROM vals WHERE i < 0")[0];
  EXPECT_EQ(empty.values, (std::vector<Value>{std::int64_t{0}, std::monostate{}}));
}

TEST_P(StoreTest, TransactCommitsEverything) {
  db_->migrate("demo", notes_migrations());
  db_->transact([&](Tx& tx) {
    EXPECT_EQ(tx.exec("INSERT INTO notes (body) VALUES (?)", {"one"}), 1);
    EXPECT_EQ(tx.exec("INSERT INTO notes (body) VALUES (?), (?)", {"two", "three"}), 2);
    EXPECT_EQ(tx.dialect(), db_->dialect());
  });
  EXPECT_EQ(count("notes"), 3);
}

TEST_P(StoreTest, ThrowingWorkRollsBackEverythingAndRethrows) {
  db_->migrate("demo", notes_migrations());
  insert_note("before");
  const std::string message = error_of<std::runtime_error>([&] {
    db_->transact([&](Tx& tx) {
      tx.exec("INSERT INTO notes (body) VALUES (?)", {"lost"});
      tx.exec("UPDATE notes SET author = ?", {"nobody"});
      tx.exec("DELETE FROM notes WHERE body = ?", {"before"});
      throw std::runtime_error("boom");
    });
  });
  EXPECT_EQ(message, "boom");
  const auto rows = db_->query("SELECT body, author FROM notes");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].text(0), "before");
  EXPECT_TRUE(rows[0].is_null(1));

  // The exception keeps its type, so a handler can still map it to a problem response.
  EXPECT_THROW(db_->transact([&](Tx& tx) {
    tx.exec("INSERT INTO notes (body) VALUES (?)", {"lost"});
    throw ValidationError("$.body", "too short");
  }),
               ValidationError);
  EXPECT_EQ(count("notes"), 1);
  insert_note("after");  // the connection went back to the pool in a usable state
  EXPECT_EQ(count("notes"), 2);
}

TEST_P(StoreTest, FailedStatementDoomsTheTransaction) {
  db_->migrate("demo", notes_migrations());
  std::string refused;
  const std::string message = error_of<std::runtime_error>([&] {
    db_->transact([&](Tx& tx) {
      tx.exec("INSERT INTO notes (body) VALUES (?)", {"lost"});
      try {
        tx.exec("INSERT INTO nowhere (x) VALUES (1)");
      } catch (const std::runtime_error&) {
        // swallowed on purpose: PostgreSQL would refuse the rest, so SQLite must too
      }
      refused = error_of<std::runtime_error>(
          [&] { tx.exec("INSERT INTO notes (body) VALUES (?)", {"also lost"}); });
    });
  });
  EXPECT_NE(message.find("nowhere"), std::string::npos) << message;
  EXPECT_NE(refused.find("earlier statement"), std::string::npos) << refused;
  EXPECT_EQ(count("notes"), 0);
}

TEST_P(StoreTest, QuestionMarksInQuotesAndCommentsStay) {
  db_->migrate("demo", {{1, "odd names", "CREATE TABLE odd (\"why?\" TEXT, n BIGINT)"}});
  db_->transact([&](Tx& tx) {
    tx.exec("INSERT INTO odd (\"why?\", n) -- really?\n VALUES ('what? who?', ?)",
            {std::int64_t{7}});
  });
  const auto rows = db_->query(
      "SELECT \"why?\", n FROM odd WHERE \"why?\" = 'what? who?' AND n = ?", {std::int64_t{7}});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].text(0), "what? who?");
  EXPECT_EQ(rows[0].integer(1), 7);
}

TEST_P(StoreTest, PlaceholderCountMustMatch) {
  db_->migrate("demo", notes_migrations());
  const std::string message = error_of<std::runtime_error>(
      [&] { db_->query("SELECT body FROM notes WHERE id = ? AND body = ?", {std::int64_t{1}}); });
  EXPECT_NE(message.find("2 placeholders but 1 parameters"), std::string::npos) << message;
}

TEST_P(StoreTest, ConcurrentTransactionsAllLand) {
  db_->migrate(
      "demo",
      {{1, "log",
        "CREATE TABLE log (id {{serial}}, worker BIGINT, seq BIGINT, UNIQUE (worker, seq))"}});
  constexpr int kThreads = 8;
  constexpr int kTransactions = 200;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  std::atomic<int> failures{0};
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&, w] {
      for (int s = 0; s < kTransactions; ++s) {
        try {
          db_->transact([&](Tx& tx) {
            tx.exec("INSERT INTO log (worker, seq) VALUES (?, ?)",
                    {std::int64_t{w}, std::int64_t{s}});
          });
        } catch (const std::exception& e) {
          ++failures;
          ADD_FAILURE() << e.what();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(count("log"), kThreads * kTransactions);
}

TEST_P(StoreTest, ConcurrentReadModifyWriteLosesNothing) {
  // Read, compute, write: safe only if transactions are serializable, which PostgreSQL
  // achieves by failing one of two colliding transactions and transact retrying it.
  db_->migrate("demo", {{1, "counter", "CREATE TABLE counter (id BIGINT PRIMARY KEY, n BIGINT)"}});
  db_->transact([](Tx& tx) { tx.exec("INSERT INTO counter (id, n) VALUES (1, 0)"); });
  constexpr int kThreads = 4;
  constexpr int kTransactions = 50;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&] {
      for (int s = 0; s < kTransactions; ++s) {
        try {
          db_->transact([](Tx& tx) {
            const auto n = tx.query("SELECT n FROM counter WHERE id = 1")[0].integer(0);
            tx.exec("UPDATE counter SET n = ? WHERE id = 1", {n + 1});
          });
        } catch (const std::exception& e) {
          ADD_FAILURE() << e.what();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(db_->query("SELECT n FROM counter")[0].integer(0), kThreads * kTransactions);
}

TEST_P(StoreTest, ReturningGivesTheWrittenRow) {
  db_->migrate("demo", notes_migrations());
  db_->transact([&](Tx& tx) {
    const auto rows =
        tx.query("INSERT INTO notes (body, author) VALUES (?, ?) RETURNING id, body, author",
                 {"hello", std::monostate{}});
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].values,
              (std::vector<Value>{std::int64_t{1}, std::string("hello"), std::monostate{}}));
    EXPECT_EQ(tx.exec("INSERT INTO notes (body) VALUES (?) RETURNING id", {"again"}), 1);
    const auto updated = tx.query("UPDATE notes SET author = ? RETURNING id", {"ann"});
    EXPECT_EQ(updated.size(), 2u);
  });
}

TEST_P(StoreTest, OnConflictUpserts) {
  db_->migrate("demo", {{1, "kv", "CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL)"}});
  const std::string upsert =
      "INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v";
  db_->transact([&](Tx& tx) {
    EXPECT_EQ(tx.exec(upsert, {"a", std::int64_t{1}}), 1);
    EXPECT_EQ(tx.exec(upsert, {"a", std::int64_t{2}}), 1);
    EXPECT_EQ(tx.exec("INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING",
                      {"a", std::int64_t{3}}),
              0);
  });
  const auto rows = db_->query("SELECT k, v FROM kv");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].values, (std::vector<Value>{std::string("a"), std::int64_t{2}}));
}

TEST_P(StoreTest, ExecCountsChangedRowsOnly) {
  db_->migrate("demo", notes_migrations());
  db_->transact([&](Tx& tx) {
    tx.exec("INSERT INTO notes (body) VALUES ('a'), ('b'), ('c')");
    EXPECT_EQ(tx.exec("UPDATE notes SET author = ?", {"x"}), 3);
    EXPECT_EQ(tx.exec("DELETE FROM notes WHERE body = ?", {"none"}), 0);
    EXPECT_EQ(tx.exec("SELECT * FROM notes"), 0);
    EXPECT_EQ(tx.exec("CREATE TABLE other (x BIGINT)"), 0);
  });
}

TEST_P(StoreTest, ErrorsNameTheSqlAndTheEngineReason) {
  db_->migrate("demo", notes_migrations());
  const std::string message =
      error_of<std::runtime_error>([&] { db_->query("SELECT missing_column FROM notes"); });
  EXPECT_NE(message.find("\"SELECT missing_column FROM notes\""), std::string::npos) << message;

  std::string long_sql = "SELECT missing_column,\n  ";
  while (long_sql.size() < 200) long_sql += "id, ";
  long_sql += "last_marker FROM notes";
  const std::string cut = error_of<std::runtime_error>([&] { db_->query(long_sql); });
  std::string first80 = "SELECT missing_column, ";
  while (first80.size() < 80) first80 += "id, ";
  first80.resize(80);
  EXPECT_NE(cut.find("\"" + first80 + "...\""), std::string::npos) << cut;
  EXPECT_EQ(cut.find("last_marker FROM"), std::string::npos) << cut;

  const std::string constraint = error_of<std::runtime_error>(
      [&] { db_->transact([](Tx& tx) { tx.exec("INSERT INTO notes (body) VALUES (NULL)"); }); });
  EXPECT_NE(constraint.find("INSERT INTO notes (body) VALUES (NULL)"), std::string::npos)
      << constraint;
  EXPECT_NE(constraint.find("body"), std::string::npos) << constraint;
}

TEST_P(StoreTest, NestedTransactIsALogicErrorAndQuerySeesOwnWrites) {
  db_->migrate("demo", notes_migrations());
  db_->transact([&](Tx& tx) {
    tx.exec("INSERT INTO notes (body) VALUES ('outer')");
    EXPECT_THROW(db_->transact([](Tx&) {}), std::logic_error);
    EXPECT_EQ(db_->query("SELECT COUNT(*) FROM notes")[0].integer(0), 1);
  });
  EXPECT_EQ(count("notes"), 1);
}

TEST_P(StoreTest, ForeignKeysAreEnforced) {
  db_->migrate("demo", {{1, "parent and child",
                         "CREATE TABLE parent (id BIGINT PRIMARY KEY);"
                         "CREATE TABLE child (id BIGINT PRIMARY KEY, parent_id BIGINT NOT NULL "
                         "REFERENCES parent (id))"}});
  EXPECT_THROW(
      db_->transact([](Tx& tx) { tx.exec("INSERT INTO child (id, parent_id) VALUES (1, 42)"); }),
      std::runtime_error);
  EXPECT_EQ(count("child"), 0);
}

// An unsynced transaction commits like any other (a process that dies keeps it); only the
// wait for the disk is skipped, and only for that transaction.
TEST_P(StoreTest, AnUnsyncedTransactionCommitsAndLeavesTheNextOneSynced) {
  db_->migrate("demo", {{1, "notes", "CREATE TABLE notes (id BIGINT PRIMARY KEY)"}});
  const auto setting = [&] {
    return GetParam() == Engine::sqlite
               ? std::to_string(db_->query("PRAGMA synchronous")[0].integer(0))
               : db_->query("SHOW synchronous_commit")[0].text(0);
  };
  const std::string synced = setting();
  std::string inside;
  db_->transact_unsynced([&](Tx& tx) {
    tx.exec("INSERT INTO notes (id) VALUES (1)");
    inside = GetParam() == Engine::sqlite
                 ? std::to_string(tx.query("PRAGMA synchronous")[0].integer(0))
                 : tx.query("SHOW synchronous_commit")[0].text(0);
  });
  EXPECT_EQ(inside, GetParam() == Engine::sqlite ? "1" : "off");  // NORMAL / off
  EXPECT_EQ(count("notes"), 1);
  EXPECT_EQ(setting(), synced);
  EXPECT_EQ(synced, GetParam() == Engine::sqlite ? "2" : "on");  // FULL / on
  EXPECT_THROW(db_->transact_unsynced([](Tx& tx) {
    tx.exec("INSERT INTO notes (id) VALUES (2)");
    throw std::runtime_error("the work failed");
  }),
               std::runtime_error);
  EXPECT_EQ(count("notes"), 1);
  EXPECT_EQ(setting(), synced);
}

INSTANTIATE_TEST_SUITE_P(Engines, StoreTest, ::testing::Values(Engine::sqlite, Engine::postgresql),
                         [](const ::testing::TestParamInfo<Engine>& info) {
                           return info.param == Engine::sqlite ? "sqlite" : "postgresql";
                         });

// ---------------------------------------------------------------------------------------

// The WAL is copied into the database file while writes go on (by the checkpointer thread,
// see Database::Checkpointer), and reused afterwards instead of growing.
TEST(SqliteStore, TheWalIsCheckpointedAndReusedWhileWritesGoOn) {
  TempDir dir;
  const std::string path = dir.path() + "/checkpointed.db";
  const auto db = Database::open("sqlite:" + path);
  db->migrate("demo", {{1, "pages", "CREATE TABLE pages (id BIGINT PRIMARY KEY, body TEXT)"}});
  const std::string body(4000, 'x');  // one row, one page
  int id = 0;
  auto write_pages = [&](int count) {
    for (int i = 0; i < count / 10; ++i) {
      db->transact([&](Tx& tx) {
        for (int k = 0; k < 10; ++k) {
          tx.exec("INSERT INTO pages (id, body) VALUES (?, ?)", {std::int64_t{++id}, body});
        }
      });
    }
  };
  const auto size = [](const std::string& file) {
    std::error_code error;
    const auto bytes = std::filesystem::file_size(file, error);
    return error ? std::uintmax_t{0} : bytes;
  };
  // A checkpoint starts once the WAL holds 1,000 pages; what was written before the last one
  // reaches the database file without anyone asking (the rest waits for the next).
  constexpr int kRounds = 4;
  constexpr int kPagesPerRound = 3000;
  for (int round = 1; round <= kRounds; ++round) {
    write_pages(kPagesPerRound);
    const std::uintmax_t checkpointed = std::uintmax_t(round * kPagesPerRound - 1200) * 4096;
    EXPECT_TRUE(test::eventually([&] { return size(path) >= checkpointed; }))
        << "round " << round << ", database file: " << size(path) << " bytes";
  }
  // A checkpoint is complete when it ends, so the WAL starts again from its beginning: the
  // file holds what was written between two complete checkpoints (the 1,000 pages that wake
  // the checkpointer, what is written while it copies them, and the transaction its second
  // pass waits for), never all 12,000 pages. A second pass kept waiting for the write lock
  // by the stream of commits let it grow to 7,000 pages under ASan on a busy machine.
  EXPECT_LT(size(path + "-wal"), std::uintmax_t{kRounds * kPagesPerRound / 2} * 4096)
      << "WAL: " << size(path + "-wal") << " bytes";
  EXPECT_EQ(db->query("SELECT COUNT(*) FROM pages")[0].integer(0), kRounds * kPagesPerRound);
  EXPECT_EQ(db->query("PRAGMA integrity_check")[0].text(0), "ok");
}

// The WAL writes of a commit are gathered into few system calls (storage/wal_writes.hpp):
// nothing may still be gathered when the commit returns. A child process commits and dies
// at once, without closing anything; every commit must be there, whole.
TEST(SqliteStore, EveryCommitThatReturnedIsInTheFilesWhenTheProcessDiesAtOnce) {
  TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/abrupt.db";
  const std::vector<Migration> schema = {
      {1, "pages", "CREATE TABLE pages (id BIGINT PRIMARY KEY, body TEXT NOT NULL)"}};
  const std::string page(4000, 'p');
  // More than the 128 KiB SQLite's unix VFS writes in one call. Under the 1,000 pages that
  // start a checkpoint: the commits below must reach the WAL on their own.
  const std::string large(300 * 1024 + 7, 'L');
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      const auto db = Database::open(url);
      db->migrate("demo", schema);
      db->transact([&](Tx& tx) { tx.exec("INSERT INTO pages VALUES (1, 'synced')"); });
      db->transact([&](Tx& tx) {
        for (std::int64_t id = 3; id < 303; ++id) {
          tx.exec("INSERT INTO pages VALUES (?, ?)", {id, page});
        }
      });
      // Unsynced commits are never followed by a sync of the WAL: nothing else writes them.
      db->transact_unsynced([&](Tx& tx) { tx.exec("INSERT INTO pages VALUES (2, ?)", {large}); });
      db->transact_unsynced(
          [&](Tx& tx) { tx.exec("UPDATE pages SET body = 'last' WHERE id = 1"); });
      _exit(0);  // with `db` open: no connection is closed, nothing is flushed
    } catch (...) {
      _exit(1);
    }
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  const auto db = Database::open(url);
  EXPECT_EQ(db->query("PRAGMA integrity_check")[0].text(0), "ok");
  EXPECT_EQ(db->query("SELECT body FROM pages WHERE id = 1")[0].text(0), "last");
  const auto two = db->query("SELECT length(body) FROM pages WHERE id = 2");
  ASSERT_EQ(two.size(), 1U);
  EXPECT_EQ(two[0].integer(0), static_cast<std::int64_t>(large.size()));
  EXPECT_EQ(db->query("SELECT SUM(length(body)) FROM pages WHERE id >= 3")[0].integer(0),
            300 * 4000);
  EXPECT_EQ(db->query("SELECT COUNT(*) FROM pages")[0].integer(0), 302);
}

// The gathering checks this SQLite on a scratch database first and stays off when commits
// would leave frames behind; on the SQLite we ship with it must be on.
TEST(SqliteStore, CommitsWriteTheirFramesInOneGoOnThisSqlite) {
  EXPECT_TRUE(install_wal_gathering());
}

TEST(SqliteStore, PageBuffersComeFromTheRegionMappedAtStart) {
  TempDir dir;
  const auto db = Database::open("sqlite:" + dir.path() + "/region.db");
  // Installed by the first open in this process; later calls report what that one did.
  EXPECT_TRUE(install_page_cache_region(0));
  db->transact([](Tx& tx) {
    tx.exec("CREATE TABLE t(x)", {});
    tx.exec("INSERT INTO t VALUES (randomblob(200000))", {});
  });
  sqlite3_int64 used = 0;
  sqlite3_int64 highwater = 0;
  ASSERT_EQ(sqlite3_status64(SQLITE_STATUS_PAGECACHE_USED, &used, &highwater, 0), SQLITE_OK);
  EXPECT_GT(used, 0) << "the writer's pages were malloc'd one by one";
}

// The bounded cache passes on a truncation only when a page could be at or past its limit.
// Driven directly, as SQLite's pager does, with the moves of a B-tree rebalance (a page
// parked at the lock page's number, 262,145, then given its final one) among random
// fetches, moves and truncations: after every truncation exactly the pages below the limit
// are still there. A bound that forgot a page would keep it past its truncation.
TEST(SqliteStore, TheBoundedPageCacheDropsExactlyWhatATruncationCuts) {
  TempDir dir;
  const auto db = Database::open("sqlite:" + dir.path() + "/bounds.db");
  const sqlite3_pcache_methods2* methods = bounded_page_cache_methods();
  ASSERT_NE(methods, nullptr) << "the page cache bounds were not installed";
  sqlite3_pcache* cache = methods->xCreate(4096, 64, 1);
  ASSERT_NE(cache, nullptr);
  methods->xCachesize(cache, 100000);  // every page stays pinned; nothing is evicted
  constexpr unsigned kParked = 262145;
  std::map<unsigned, sqlite3_pcache_page*> pages;  // what the cache must hold
  std::mt19937 random(20261202);
  const auto unused_key = [&](unsigned high) {
    for (;;) {
      const unsigned key = 1 + static_cast<unsigned>(random() % high);
      if (pages.count(key) == 0 && key != kParked) return key;
    }
  };
  const auto check = [&](int step) {
    for (const auto& [key, page] : pages) {
      ASSERT_EQ(methods->xFetch(cache, key, 0), page) << "page " << key << " lost, step " << step;
    }
    ASSERT_EQ(methods->xPagecount(cache), static_cast<int>(pages.size())) << "step " << step;
  };
  int truncations = 0;
  for (int step = 0; step < 20000; ++step) {
    const unsigned op = random() % 100;
    if (op < 50 || pages.size() < 2) {
      const unsigned key = unused_key(4000);
      sqlite3_pcache_page* page = methods->xFetch(cache, key, 2);
      ASSERT_NE(page, nullptr);
      pages[key] = page;
    } else if (op < 80) {
      // A rebalance swapping the numbers of two pages, through the parked number.
      auto a = pages.begin();
      std::advance(a, random() % pages.size());
      auto b = pages.begin();
      std::advance(b, random() % pages.size());
      if (a == b) continue;
      const unsigned key_a = a->first;
      const unsigned key_b = b->first;
      sqlite3_pcache_page* page_a = a->second;
      sqlite3_pcache_page* page_b = b->second;
      methods->xRekey(cache, page_a, key_a, kParked);
      methods->xRekey(cache, page_b, key_b, key_a);
      methods->xRekey(cache, page_a, kParked, key_b);
      pages[key_a] = page_b;
      pages[key_b] = page_a;
    } else if (op < 90) {
      auto a = pages.begin();
      std::advance(a, random() % pages.size());
      const unsigned key = unused_key(5000);
      methods->xRekey(cache, a->second, a->first, key);
      pages[key] = a->second;
      pages.erase(a);
    } else {
      // Mostly at the end of the pages (a commit), sometimes below it (a rollback).
      const unsigned top = pages.empty() ? 1 : pages.rbegin()->first;
      const unsigned limit = op < 97 ? top + 1 + random() % 3 : 1 + random() % top;
      methods->xTruncate(cache, limit);
      for (auto it = pages.lower_bound(limit); it != pages.end();) {
        ASSERT_EQ(methods->xFetch(cache, it->first, 0), nullptr)
            << "page " << it->first << " outlived a truncation at " << limit << ", step " << step;
        it = pages.erase(it);
      }
      ++truncations;
      check(step);
    }
  }
  check(-1);
  EXPECT_GT(truncations, 1000);
  methods->xDestroy(cache);
}

TEST(SqliteStore, IsDurableWalWithForeignKeys) {
  TempDir dir;
  const auto db = Database::open("sqlite:" + dir.path() + "/durable.db");
  EXPECT_EQ(db->query("PRAGMA journal_mode")[0].text(0), "wal");
  EXPECT_EQ(db->query("PRAGMA synchronous")[0].integer(0), 2);  // FULL
  EXPECT_EQ(db->query("PRAGMA foreign_keys")[0].integer(0), 1);
  EXPECT_EQ(db->query("PRAGMA busy_timeout")[0].integer(0), 5000);
}

TEST(SqliteStore, RelativePathAndMissingDirectoriesAreFine) {
  TempDir dir;
  const fs::path before = fs::current_path();
  fs::current_path(dir.path());
  try {
    const auto db = Database::open("sqlite:var/data/slmhub.db");
    EXPECT_TRUE(fs::exists(fs::path(dir.path()) / "var/data/slmhub.db"));
  } catch (...) {
    fs::current_path(before);
    throw;
  }
  fs::current_path(before);
}

TEST(SqliteStore, DataSurvivesReopening) {
  TempDir dir;
  const std::string url = "sqlite:" + dir.path() + "/again.db";
  {
    const auto db = Database::open(url);
    db->migrate("demo", notes_migrations());
    db->transact([](Tx& tx) { tx.exec("INSERT INTO notes (body) VALUES ('kept')"); });
  }
  const auto db = Database::open(url);
  db->migrate("demo", notes_migrations());
  EXPECT_EQ(db->query("SELECT body FROM notes")[0].text(0), "kept");
}

TEST(DatabaseOpen, BadUrlsSayWhatIsAllowed) {
  EXPECT_NE(error_of([] { Database::open("mysql://u@h/db"); }).find("sqlite:PATH"),
            std::string::npos);
  EXPECT_NE(error_of([] { Database::open("sqlite::memory:"); }).find("sqlite::memory:"),
            std::string::npos);
  EXPECT_NE(error_of([] { Database::open("postgresql:nonsense"); }).find("key=value"),
            std::string::npos);
}

TEST(DatabaseOpen, ErrorsNameTheUrlWithThePasswordMasked) {
  // Port 1 on loopback refuses at once.
  const std::string message =
      error_of([] { Database::open("postgresql://app:s3cret@127.0.0.1:1/slmhub"); });
  EXPECT_NE(message.find("postgresql://app:***@127.0.0.1:1/slmhub"), std::string::npos) << message;
  EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;

  const std::string keyvalue =
      error_of([] { Database::open("postgresql:host=127.0.0.1 port=1 password='s3 cret'"); });
  EXPECT_NE(keyvalue.find("password=***"), std::string::npos) << keyvalue;
  EXPECT_EQ(keyvalue.find("s3"), std::string::npos) << keyvalue;

  // libpq takes the password among a URI's parameters too.
  const std::string parameter = error_of([] {
    Database::open("postgresql://app@127.0.0.1:1/slmhub?password=s3cret&sslmode=disable");
  });
  EXPECT_NE(parameter.find("?password=***&sslmode=disable"), std::string::npos) << parameter;
  EXPECT_EQ(parameter.find("s3cret"), std::string::npos) << parameter;

  TempDir dir;
  std::ofstream(dir.path() + "/file") << "not a directory";
  const std::string url = "sqlite:" + dir.path() + "/file/sub/x.db";
  const std::string sqlite = error_of([&] { Database::open(url); });
  EXPECT_NE(sqlite.find(url), std::string::npos) << sqlite;
}

TEST(PostgresStore, AcceptsTheLibpqKeyValueForm) {
  const auto db = Database::open(
      "postgresql:host=127.0.0.1 port=" + std::to_string(test::shared_cluster().port()) +
      " user=postgres dbname=slmhub_test");
  EXPECT_EQ(db->dialect(), Dialect::postgresql);
  EXPECT_EQ(db->query("SELECT 40 + ?", {std::int64_t{2}})[0].integer(0), 42);
}

TEST(PostgresPlaceholders, OnlyBareQuestionMarksAreNumbered) {
  int count = 0;
  const std::string sql =
      "SELECT ?, '?''?', \"?\", E'\\'?', $$?$$, $t$ ? $t$, x$y, -- ?\n"
      " /* ? /* ? */ ? */ ?";
  EXPECT_EQ(to_postgres_placeholders(sql, count),
            "SELECT $1, '?''?', \"?\", E'\\'?', $$?$$, $t$ ? $t$, x$y, -- ?\n"
            " /* ? /* ? */ ? */ $2");
  EXPECT_EQ(count, 2);
  // Without the E prefix a backslash is an ordinary character, so the string ends early.
  EXPECT_EQ(to_postgres_placeholders("SELECT '\\', ?", count), "SELECT '\\', $1");
  EXPECT_EQ(count, 1);
}

TEST(PostgresPlaceholders, ScriptsSplitAtBareSemicolons) {
  EXPECT_EQ(split_statements("a; 'b;c'; $$d;e$$;; \n -- x;\n f"),
            (std::vector<std::string>{"a", "'b;c'", "$$d;e$$", "-- x;\n f"}));
  EXPECT_EQ(split_statements("CREATE FUNCTION f() RETURNS int AS $body$ BEGIN; RETURN 1; END "
                             "$body$ LANGUAGE plpgsql;"),
            (std::vector<std::string>{"CREATE FUNCTION f() RETURNS int AS $body$ BEGIN; RETURN "
                                      "1; END $body$ LANGUAGE plpgsql"}));
  EXPECT_TRUE(split_statements(" ;\n; ").empty());
}

TEST(RowAccess, WrongKindsAreClearErrors) {
  const Row row{{std::int64_t{5}, std::string("five"), std::monostate{}}};
  EXPECT_EQ(row.integer(0), 5);
  EXPECT_EQ(row.text(1), "five");
  EXPECT_EQ(row.optional_integer(0), 5);
  EXPECT_EQ(row.optional_text(2), std::nullopt);
  EXPECT_EQ(error_of<std::runtime_error>([&] { row.integer(1); }),
            "row column 1 is text, expected an integer");
  EXPECT_EQ(error_of<std::runtime_error>([&] { row.text(2); }),
            "row column 2 is NULL, expected text");
  EXPECT_EQ(error_of<std::runtime_error>([&] { row.optional_text(0); }),
            "row column 0 is an integer, expected text");
  EXPECT_THROW(row.is_null(3), std::out_of_range);
}

}  // namespace
}  // namespace slmhub::host
