// Shared by the mail benchmark programs (bench/mail/run.sh): the corpus that generate.py
// writes (its manifest.tsv and the .eml files), timing and memory helpers.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace slmhub::bench::mail {

// One line of manifest.tsv: file, kind (new | auto | reply | big), parent (the index of the
// message a reply answers, else -1), sender (the From address, also the envelope sender),
// size, subject (decoded, with the case tag placeholder for replies).
struct CorpusMessage {
  std::string file;
  std::string kind;
  long parent = -1;
  std::string sender;
  std::size_t size = 0;
  std::string subject;
  std::string raw;  // the file's bytes, when loaded
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The manifest in order. `load` reads each message's bytes; kinds not in `kinds` are skipped
// (an empty list keeps all), but indexes (parent) always refer to the full list.
inline std::vector<CorpusMessage> read_corpus(const std::string& dir, bool load) {
  std::ifstream in(dir + "/manifest.tsv");
  if (!in) throw std::runtime_error("cannot read " + dir + "/manifest.tsv");
  std::vector<CorpusMessage> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::size_t at = 0;
    for (;;) {
      const auto tab = line.find('\t', at);
      f.push_back(line.substr(at, tab == std::string::npos ? std::string::npos : tab - at));
      if (tab == std::string::npos) break;
      at = tab + 1;
    }
    if (f.size() < 6) throw std::runtime_error("manifest.tsv: bad line: " + line);
    CorpusMessage m{f[0], f[1], std::stol(f[2]), f[3], std::stoul(f[4]), f[5], {}};
    if (load) {
      m.raw = read_file(dir + "/" + m.file);
      if (m.raw.size() != m.size) throw std::runtime_error(m.file + ": size differs from manifest");
    }
    out.push_back(std::move(m));
  }
  return out;
}

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// "VmHWM" / "VmRSS" of /proc/<pid>/status in KiB ("self" for this process); -1 if unknown.
inline long proc_status_kib(const std::string& pid, const char* field) {
  std::ifstream in("/proc/" + pid + "/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
  }
  return -1;
}

// Resets the peak RSS (VmHWM) of a process to its current RSS (Linux >= 4.0). False if not
// allowed.
inline bool reset_peak_rss(const std::string& pid) {
  std::ofstream out("/proc/" + pid + "/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace slmhub::bench::mail
