// For the kill -9 tests (issue [hardening]): how many rounds each runs and when in a round it
// kills. A round starts the server, puts it under load, kills it with SIGKILL at a random
// moment, restarts it and checks that nothing acknowledged was lost or applied twice and that
// the store is intact. SLMHUB_CRASH_ROUNDS sets the rounds (default 20); SLMHUB_CRASH_SEED
// replays the moments of a failed run (every test prints its seed).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>

namespace slmhub::test {

class CrashSchedule {
 public:
  CrashSchedule(std::chrono::milliseconds earliest, std::chrono::milliseconds latest);
  int rounds() const { return rounds_; }
  // The moment of the next kill, counted from when the load starts.
  std::chrono::milliseconds next();
  // "seed 1234 (SLMHUB_CRASH_SEED=1234 replays it)", for SCOPED_TRACE.
  std::string describe() const;

 private:
  int rounds_;
  std::uint64_t seed_;
  std::mt19937_64 random_;
  std::uniform_int_distribution<std::int64_t> moment_;
};

// What SQLite's `PRAGMA integrity_check` says of the store file: "ok" when it is intact.
std::string sqlite_integrity(const std::filesystem::path& database);

}  // namespace slmhub::test
