// kill -9 during a stream of authenticated POST /api/v1/interruptions: every record the
// server acknowledged (201) is there after a restart.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "server_process.hpp"
#include "slmhub/json.hpp"

namespace slmhub::test {
namespace {

TEST(Durability, KillNineLosesNoAcknowledgedInterruption) {
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

  std::mutex mutex;
  std::vector<std::string> acknowledged;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; !stop; ++i) {
        std::string id = "INC" + std::to_string(w) + "-" + std::to_string(i);
        try {
          auto r = http(server.port(), "POST", "/api/v1/interruptions",
                        R"({"id":")" + id +
                            R"(","service":"oracle-prod","type":"outage",)"
                            R"("start":"2026-11-03T14:00:00Z","end":"2026-11-03T14:05:00Z"})",
                        token);
          if (r.status == 201) {
            std::lock_guard lock(mutex);
            acknowledged.push_back(id);
          }
        } catch (const std::exception&) {
          return;  // the server is gone
        }
      }
    });
  }
  // Let a few hundred writes through, then pull the plug mid-stream.
  for (int i = 0; i < 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::lock_guard lock(mutex);
    if (acknowledged.size() >= 300) break;
  }
  server.kill_hard();
  stop = true;
  for (auto& t : writers) t.join();
  ASSERT_GT(acknowledged.size(), 50u);

  ServerProcess again(dir.path());
  again.start();
  auto all = http(again.port(), "GET", "/api/v1/interruptions", "", token);
  ASSERT_EQ(all.status, 200);
  std::set<std::string> stored;
  const Json listed = Json::parse(all.body);  // owns what the loop reads
  for (const auto& i : listed["interruptions"]) stored.insert(i["id"].get<std::string>());
  std::size_t missing = 0;
  for (const auto& id : acknowledged) missing += stored.contains(id) ? 0 : 1;
  EXPECT_EQ(missing, 0u) << "of " << acknowledged.size() << " acknowledged";
}

}  // namespace
}  // namespace slmhub::test
