// Files tests compare against: the shared design folder (vectors, seeds, schemas) and
// whole-file reads that fail loudly, so a missing vector fails a test instead of comparing
// against nothing.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace slmhub::test {

// $SLMHUB_SHARED_DIR (ctest sets it), else ../shared beside the checkout.
inline std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("SLMHUB_SHARED_DIR"); env && *env) return env;
  return std::filesystem::path(SLMHUB_SOURCE_DIR) / ".." / "shared";
}

// The whole file, bytes as they are; std::runtime_error naming the path when it cannot be read.
inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::string read_shared(const std::string& relative) {
  return read_text(shared_dir() / relative);
}

}  // namespace slmhub::test
