// Starts the real `slmhub` binary for integration tests: a temp directory with its own
// SQLite store (or a PostgreSQL URL), HTTP on a free port of 127.0.0.1, the test plugins,
// and an admin token; plus a small HTTP client. The process is stopped (SIGTERM) when the
// object dies.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace slmhub::test {

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
};

// One request to 127.0.0.1:port; throws on a connection error.
HttpResult http(int port, const std::string& method, const std::string& path,
                const std::string& body = {}, const std::string& token = {},
                const std::map<std::string, std::string>& headers = {});

// Runs `slmhub` with arguments and environment, in `working_dir` when given (else in the
// test's own); returns exit status, stdout, stderr.
struct CommandResult {
  int status = -1;
  std::string out;
  std::string err;
};
CommandResult run_slmhub(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env,
                         const std::filesystem::path& working_dir = {});

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class ServerProcess {
 public:
  // `env` adds to or overrides the defaults (SLMHUB_DB_URL, SLMHUB_HTTP_PORT=0,
  // SLMHUB_PLUGINS_DIR = the test plugins, ...).
  explicit ServerProcess(const std::filesystem::path& dir,
                         std::map<std::string, std::string> env = {});
  ~ServerProcess();
  void start();      // waits for "listening on"; throws with the server's stderr on failure
  void kill_hard();  // SIGKILL, then reap
  void stop();       // SIGTERM, then reap; returns when the process is gone
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  void signal(int sig) const;  // kill(2) the running server with `sig`
  const std::string& admin_token() const { return token_; }
  // A new token with the one `role`, made with the admin token; throws if refused.
  std::string token(const std::string& role) const;
  std::string log() const;  // what the server wrote to stderr
  const std::map<std::string, std::string>& env() const { return env_; }

 private:
  void expect_no_sanitizer_report() const;
  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string token_;
};

}  // namespace slmhub::test
