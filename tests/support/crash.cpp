#include "crash.hpp"

#include <algorithm>
#include <cstdlib>

#include "process.hpp"

namespace slmhub::test {

namespace {
std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::strtoull(text, nullptr, 10) : fallback;
}
}  // namespace

CrashSchedule::CrashSchedule(std::chrono::milliseconds earliest, std::chrono::milliseconds latest)
    : rounds_(std::max(1, static_cast<int>(env_or("SLMHUB_CRASH_ROUNDS", 20)))),
      seed_(env_or("SLMHUB_CRASH_SEED", std::random_device{}())),
      random_(seed_),
      moment_(earliest.count(), latest.count()) {}

std::chrono::milliseconds CrashSchedule::next() {
  return std::chrono::milliseconds(moment_(random_));
}

std::string CrashSchedule::describe() const {
  return "seed " + std::to_string(seed_) + " (SLMHUB_CRASH_SEED=" + std::to_string(seed_) +
         " replays it), " + std::to_string(rounds_) + " rounds";
}

std::string sqlite_integrity(const std::filesystem::path& database) {
  // A copy is checked: opening the store itself as its last connection would recover and
  // checkpoint its WAL, which is slmhub's to do when it restarts.
  const std::filesystem::path copy = database.string() + ".check";
  std::error_code ec;
  for (const char* suffix : {"", "-wal"}) {
    std::filesystem::remove(copy.string() + suffix, ec);
    if (std::filesystem::exists(database.string() + suffix))
      std::filesystem::copy_file(database.string() + suffix, copy.string() + suffix);
  }
  auto [status, out] = run_shell("sqlite3 '" + copy.string() + "' 'PRAGMA integrity_check'");
  for (const char* suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(copy.string() + suffix, ec);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return status == 0 ? out : "sqlite3 exited with " + std::to_string(status) + ": " + out;
}

}  // namespace slmhub::test
