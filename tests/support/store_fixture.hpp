// A fresh, empty database per test on either engine, for suites that must pass on SQLite
// and PostgreSQL alike (INSTANTIATE_TEST_SUITE_P(Engines, X, kBothEngines, engine_name)).
// PostgreSQL databases are created in the one cluster the test binary shares.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "manual_clock.hpp"
#include "postgres_cluster.hpp"
#include "storage/database.hpp"
#include "test_logger.hpp"

namespace slmhub::test {

enum class Engine { sqlite, postgresql };

inline const auto kBothEngines = testing::Values(Engine::sqlite, Engine::postgresql);

inline std::string engine_name(const testing::TestParamInfo<Engine>& info) {
  return info.param == Engine::sqlite ? "SQLite" : "PostgreSQL";
}

class StoreTest : public testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    static std::atomic<int> databases{0};
    if (GetParam() == Engine::sqlite) {
      char pattern[] = "/tmp/slmhub-store-XXXXXX";
      ASSERT_NE(mkdtemp(pattern), nullptr);
      dir_ = pattern;
      url_ = "sqlite:" + dir_ + "/slmhub.db";
    } else {
      url_ = shared_cluster().create_database("test_" + std::to_string(++databases));
    }
    db_ = host::Database::open(url_);
  }
  void TearDown() override {
    db_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string url_;
  std::string dir_;
  std::unique_ptr<host::Database> db_;
  ManualClock clock_{"2026-11-02T09:00:00Z"};
  TestLogger log_;
};

}  // namespace slmhub::test
