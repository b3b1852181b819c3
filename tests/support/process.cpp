#include "process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "test_files.hpp"

extern char** environ;

namespace slmhub::test {
namespace {

namespace fs = std::filesystem;

std::string errno_text(int code) { return std::generic_category().message(code); }

}  // namespace

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::string python() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): tests never change the environment
  const char* configured = std::getenv("SLMHUB_PYTHON");
  return configured != nullptr && *configured != '\0' ? configured : "/usr/bin/python3";
}

std::string tail(const fs::path& path) {
  std::string text;
  try {
    text = read_text(path);
  } catch (const std::exception&) {
    return {};
  }
  constexpr std::size_t kShown = 3000;
  return text.size() > kShown ? "..." + text.substr(text.size() - kShown) : text;
}

pid_t spawn(std::vector<std::string> argv, int stdin_fd, const fs::path& out, const fs::path& err) {
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  if (stdin_fd >= 0) {
    posix_spawn_file_actions_adddup2(&files, stdin_fd, STDIN_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&files, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&files, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  pid_t pid = -1;
  auto args = pointers(argv);
  const int rc = ::posix_spawnp(&pid, argv[0].c_str(), &files, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + errno_text(rc));
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

ScriptServer::ScriptServer(const std::vector<std::string>& argv, const fs::path& dir,
                           const std::string& what)
    : dir_(dir) {
  std::vector<std::string> command = {python()};
  command.insert(command.end(), argv.begin(), argv.end());
  // Close-on-exec, so no other child (openssl, a second server) holds the write end and keeps
  // this server's stdin open after we close it.
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(what + ": pipe: " + errno_text(errno));
  }
  try {
    pid_ = spawn(command, pipe_fds[0], dir_ / "server.out", dir_ / "server.err");
  } catch (...) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    throw;
  }
  ::close(pipe_fds[0]);
  stdin_ = pipe_fds[1];

  try {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (port_ == 0) {
      const std::string out = tail(dir_ / "server.out");
      if (const auto ready = out.find("ready ");
          ready != std::string::npos && out.find('\n', ready) != std::string::npos) {
        port_ = std::stoi(out.substr(ready + 6));
        output_ = out;
        break;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error(what + " exited before listening:\n" + log());
      }
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error(what + " did not listen within 30 s:\n" + log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  } catch (...) {
    stop();
    throw;
  }
}

ScriptServer::~ScriptServer() { stop(); }

void ScriptServer::stop() noexcept {
  if (stdin_ >= 0) {
    ::close(stdin_);
    stdin_ = -1;
  }
  if (pid_ <= 0) return;
  // End of stdin stops the server; a server that does not stop in time is killed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      wait_exit(pid_);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
}

std::string ScriptServer::announced(const std::string& name) const {
  std::istringstream lines(output_);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + " ", 0) == 0) return line.substr(name.size() + 1);
  }
  return {};
}

std::string ScriptServer::log() const { return tail(dir_ / "server.err"); }

std::pair<int, std::string> run_shell(const std::string& command) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("free_port: socket(): " + std::string(strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const std::string reason = strerror(errno);
    ::close(fd);
    throw std::runtime_error("free_port: cannot bind a port of 127.0.0.1: " + reason);
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

}  // namespace slmhub::test
