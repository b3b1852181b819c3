// Child processes for the servers tests start (DESIGN.md §6): posix_spawn with stdout and
// stderr into files, the Python interpreter that runs tests/support/*.py, and ScriptServer,
// a helper server that announces its port with a "ready PORT" line on stdout and runs until
// its stdin closes, so it cannot outlive the test process.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace slmhub::test {

// Debian's interpreter, where the packages the helper servers need (python3-aiosmtpd) are
// installed; a `python3` earlier on PATH (a pyenv shim, a virtualenv) usually lacks them.
// SLMHUB_PYTHON names another one.
std::string python();

// The end of a text file (the last 3000 characters), "" when it cannot be read: for failure
// messages that quote a server's log.
std::string tail(const std::filesystem::path& path);

// Starts `argv` (the program looked up on PATH) with stdin from `stdin_fd` (or /dev/null when
// -1) and stdout / stderr into files; returns its pid. Throws std::runtime_error when it
// cannot be started.
pid_t spawn(std::vector<std::string> argv, int stdin_fd, const std::filesystem::path& out,
            const std::filesystem::path& err);

// argv/envp arrays for exec and posix_spawn: pointers into `strings`, null-terminated.
std::vector<char*> pointers(std::vector<std::string>& strings);

// Runs `command` with /bin/sh: its exit status (-1 when killed by a signal) and everything it
// printed, stdout and stderr together.
std::pair<int, std::string> run_shell(const std::string& command);

// A TCP port of 127.0.0.1 that was free a moment ago, for a server that cannot bind port 0
// and tell which one it got (the LMTP listener): bound, read and closed, so another process
// may take it before the server does (a tiny race, on loopback). Throws when none is found.
int free_port();

// Waits for `pid` to end: its exit status, 128 + the signal that killed it, or -1.
int wait_exit(pid_t pid);

// A helper server run by python(): stdout goes to `dir`/server.out, stderr to
// `dir`/server.err; the constructor returns once stdout has a line "ready PORT". Lines
// "NAME VALUE" printed before it are kept (announced()). Closing the server's stdin stops it;
// one that does not stop within 10 s is killed.
class ScriptServer {
 public:
  // `argv` is the script and its arguments; `what` names the server in error messages.
  // Throws std::runtime_error with the server's stderr when it exits or is not ready in 30 s.
  ScriptServer(const std::vector<std::string>& argv, const std::filesystem::path& dir,
               const std::string& what);
  ~ScriptServer();
  ScriptServer(const ScriptServer&) = delete;
  ScriptServer& operator=(const ScriptServer&) = delete;

  int port() const { return port_; }
  // VALUE of the line "NAME VALUE" the server printed before "ready"; "" when there was none.
  std::string announced(const std::string& name) const;
  // What the server wrote to stderr (the end of it), for failure messages.
  std::string log() const;

 private:
  void stop() noexcept;

  std::filesystem::path dir_;
  std::string output_;  // stdout up to and including the ready line
  pid_t pid_ = -1;
  int stdin_ = -1;  // the write end of the server's stdin: closing it stops the server
  int port_ = 0;
};

}  // namespace slmhub::test
