#include "chromium.hpp"

#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>

extern char** environ;

namespace slmhub::test {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A fresh directory for one browser run (profile, home, captured output), removed with the
// object whatever the run did.
class RunDir {
 public:
  RunDir() {
    std::string pattern = (fs::temp_directory_path() / "slmhub-chromium-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("chromium: cannot create a temp dir: " +
                               std::generic_category().message(errno));
    }
    path_ = pattern;
  }
  ~RunDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The environment of this process with HOME (and so the browser's caches and config
// folders) moved into the run's directory, so no run leaves files behind or reads old ones.
std::vector<std::string> environment_with_home(const fs::path& home) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    if (entry.starts_with("HOME=") || entry.starts_with("XDG_CONFIG_HOME=") ||
        entry.starts_with("XDG_CACHE_HOME=")) {
      continue;
    }
    env.emplace_back(entry);
  }
  env.push_back("HOME=" + home.string());
  return env;
}

std::string tail(const std::string& text, std::size_t bytes) {
  return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

}  // namespace

std::optional<Chromium> Chromium::find() {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  for (const char* name : {"chromium", "chromium-browser"}) {
    std::istringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
      if (dir.empty()) continue;
      const fs::path candidate = fs::path(dir) / name;
      if (::access(candidate.c_str(), X_OK) == 0) return Chromium(candidate);
    }
  }
  return std::nullopt;
}

Chromium::Chromium(std::filesystem::path binary, std::chrono::seconds timeout)
    : binary_(std::move(binary)), timeout_(timeout) {}

std::string Chromium::run(const std::vector<std::string>& args) const {
  const RunDir dir;
  const fs::path out = dir.path() / "stdout";
  const fs::path err = dir.path() / "stderr";
  std::vector<std::string> argv = {binary_.string(),
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--disable-quic",
                                   "--no-first-run",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-sync",
                                   "--user-data-dir=" + (dir.path() / "profile").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> env = environment_with_home(dir.path() / "home");
  fs::create_directories(dir.path() / "home");

  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&files, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&files, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  // Its own process group: on a timeout the browser and every helper it started (zygote,
  // renderer, GPU process) are killed together, by that group's id.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  auto argv_ptrs = pointers(argv);
  auto env_ptrs = pointers(env);
  const int spawned =
      posix_spawn(&pid, argv[0].c_str(), &files, &attr, argv_ptrs.data(), env_ptrs.data());
  posix_spawn_file_actions_destroy(&files);
  posix_spawnattr_destroy(&attr);
  if (spawned != 0) {
    throw std::runtime_error("chromium: cannot start " + argv[0] + ": " +
                             std::generic_category().message(spawned));
  }

  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      throw std::runtime_error("chromium: no answer within " + std::to_string(timeout_.count()) +
                               " s for " + args.back() + "; stderr: " + tail(slurp(err), 2000));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("chromium: " + args.back() + " ended with " +
                             (WIFEXITED(status) ? "status " + std::to_string(WEXITSTATUS(status))
                                                : "signal " + std::to_string(WTERMSIG(status))) +
                             "; stderr: " + tail(slurp(err), 2000));
  }
  return slurp(out);
}

std::string Chromium::dump_dom(const std::string& url) const {
  std::string dom = run({"--dump-dom", url});
  if (dom.empty()) throw std::runtime_error("chromium: an empty DOM for " + url);
  return dom;
}

void Chromium::screenshot(const std::string& url, const std::string& png, int width,
                          int height) const {
  std::error_code ec;
  fs::remove(png, ec);
  // Without scrollbars the whole window width is page, so the image is exactly `width` wide
  // and laid out as the page would be at that width.
  run({"--screenshot=" + png,
       "--window-size=" + std::to_string(width) + "," + std::to_string(height), "--hide-scrollbars",
       url});
  if (!fs::is_regular_file(png)) throw std::runtime_error("chromium: no screenshot of " + url);
}

std::string file_url(const std::filesystem::path& path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string url = "file://";
  for (unsigned char c : fs::absolute(path).string()) {
    if (std::isalnum(c) ||
        std::string_view("/-._~").find(static_cast<char>(c)) != std::string_view::npos) {
      url += static_cast<char>(c);
    } else {
      url += '%';
      url += kHex[c >> 4];
      url += kHex[c & 15];
    }
  }
  return url;
}

void ChromiumTest::SetUp() {
  chromium_ = Chromium::find();
  if (chromium_) return;
  const char* ci = std::getenv("CI");
  if (ci != nullptr && std::string_view(ci) == "true") {
    FAIL() << "chromium is not installed (Debian package `chromium`) and CI=true: page tests "
              "must run in CI";
  }
  GTEST_SKIP() << "chromium is not installed (Debian package `chromium`; `make deps`)";
}

}  // namespace slmhub::test
