// kill -9 during a stream of authenticated POST /api/v1/interruptions, round after round at
// random moments: every record the server acknowledged (201) is there after each restart,
// once, and the store passes SQLite's integrity check.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "crash.hpp"
#include "server_process.hpp"
#include "slmhub/json.hpp"

namespace slmhub::test {
namespace {

TEST(Durability, KillNineLosesNoAcknowledgedInterruption) {
  CrashSchedule schedule(std::chrono::milliseconds(50), std::chrono::milliseconds(900));
  SCOPED_TRACE(schedule.describe());
  TempDir dir;
  ServerProcess server(dir.path());
  server.start();
  const std::string token = server.admin_token();
  ASSERT_EQ(http(server.port(), "POST", "/api/v1/services",
                 R"({"id":"oracle-prod","name":"Oracle","environment":"production",)"
                 R"("hours":"24x7","target_percent":99.75})",
                 token)
                .status,
            201);

  std::set<std::string> acknowledged;  // over every round
  for (int round = 0; round < schedule.rounds(); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    if (round > 0) server.start();
    std::mutex mutex;
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w) {
      writers.emplace_back([&, w] {
        for (int i = 0; !stop; ++i) {
          const std::string id =
              "INC" + std::to_string(round) + "-" + std::to_string(w) + "-" + std::to_string(i);
          try {
            const auto r =
                http(server.port(), "POST", "/api/v1/interruptions",
                     R"({"id":")" + id +
                         R"(","service":"oracle-prod","type":"outage",)"
                         R"("start":"2026-11-03T14:00:00Z","end":"2026-11-03T14:05:00Z"})",
                     token);
            if (r.status == 201) {
              std::lock_guard lock(mutex);
              acknowledged.insert(id);
            }
          } catch (const std::exception&) {
            return;  // the server is gone
          }
        }
      });
    }
    std::this_thread::sleep_for(schedule.next());
    server.kill_hard();
    stop = true;
    for (auto& t : writers) t.join();
    ASSERT_EQ(sqlite_integrity(dir.path() / "slmhub.db"), "ok");

    server.start();
    const auto all = http(server.port(), "GET", "/api/v1/interruptions", "", token);
    ASSERT_EQ(all.status, 200);
    std::multiset<std::string> stored;
    const Json listed = Json::parse(all.body);  // owns what the loop reads
    for (const auto& i : listed["interruptions"]) stored.insert(i["id"].get<std::string>());
    std::size_t missing = 0, twice = 0;
    for (const auto& id : acknowledged) {
      missing += stored.contains(id) ? 0 : 1;
      twice += stored.count(id) > 1 ? 1 : 0;
    }
    EXPECT_EQ(missing, 0u) << "of " << acknowledged.size() << " acknowledged";
    EXPECT_EQ(twice, 0u);
    server.kill_hard();
  }
  EXPECT_GT(acknowledged.size(), static_cast<std::size_t>(schedule.rounds()));
}

}  // namespace
}  // namespace slmhub::test
