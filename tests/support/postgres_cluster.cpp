#include "postgres_cluster.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <system_error>

extern char** environ;

namespace slmhub::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDefaultBin = "/usr/lib/postgresql/15/bin";
constexpr const char* kDatabase = "slmhub_test";
constexpr int kStartAttempts = 5;

std::string error_text(int code) {
  return std::error_code(code, std::generic_category()).message();
}
std::string errno_text() { return error_text(errno); }

// A port nobody listens on right now; the server may still lose a race for it, which
// the caller handles by trying again.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("PostgresCluster: socket(): " + errno_text());
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const std::string reason = errno_text();
    ::close(fd);
    throw std::runtime_error("PostgresCluster: cannot find a free port: " + reason);
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

std::string tail(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  constexpr std::size_t kShown = 2000;
  if (all.size() > kShown) all = "..." + all.substr(all.size() - kShown);
  return all;
}

std::string runuser_path() {
  for (const char* path : {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"}) {
    if (::access(path, X_OK) == 0) return path;
  }
  throw std::runtime_error(
      "PostgresCluster: running as root needs runuser (util-linux) to start PostgreSQL as the "
      "postgres user, and it was not found");
}

}  // namespace

PostgresCluster::PostgresCluster() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): tests never change the environment
  const char* bin = std::getenv("SLMHUB_PG_BIN");
  bin_ = bin != nullptr && *bin != '\0' ? bin : kDefaultBin;
  for (const char* program : {"initdb", "pg_ctl", "postgres", "createdb"}) {
    const std::string path = bin_ + "/" + program;
    if (::access(path.c_str(), X_OK) != 0) {
      throw std::runtime_error("PostgreSQL server binaries not found: " + path +
                               " is missing. Run `make deps` (installs postgresql-15) or set "
                               "SLMHUB_PG_BIN to the folder holding initdb, pg_ctl and postgres");
    }
  }
  as_postgres_user_ = ::geteuid() == 0;

  std::string pattern = (fs::temp_directory_path() / "slmhub-pg-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("PostgresCluster: cannot create a temp dir " + pattern + ": " +
                             errno_text());
  }
  dir_ = pattern;
  data_ = dir_ + "/data";
  try {
    if (as_postgres_user_) {
      passwd entry{};
      passwd* user = nullptr;
      std::vector<char> buffer(16384);
      if (::getpwnam_r("postgres", &entry, buffer.data(), buffer.size(), &user) != 0 ||
          user == nullptr) {
        throw std::runtime_error(
            "PostgresCluster: tests run as root, and PostgreSQL refuses root, but there is no "
            "postgres system user. Run `make deps` (the postgresql-15 package creates it)");
      }
      if (::chown(dir_.c_str(), user->pw_uid, user->pw_gid) != 0) {
        throw std::runtime_error("PostgresCluster: cannot chown " + dir_ + ": " + errno_text());
      }
    }
    const std::string initdb_log = dir_ + "/initdb.log";
    if (run("initdb",
            {"-D", data_, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale",
             // Only skips flushing the new files once; the server itself keeps fsync on.
             "--no-sync"},
            initdb_log) != 0) {
      throw std::runtime_error("PostgresCluster: initdb failed in " + data_ + ":\n" +
                               tail(initdb_log));
    }
    const std::string server_log = dir_ + "/server.log";
    const std::string ctl_log = dir_ + "/pg_ctl.log";
    for (int attempt = 1; !running_; ++attempt) {
      port_ = free_port();
      const std::string options = "-c listen_addresses=127.0.0.1 -c port=" + std::to_string(port_) +
                                  " -c unix_socket_directories='" + dir_ +
                                  "' -c max_connections=50";
      // -w: pg_ctl returns once the server accepts connections.
      if (run("pg_ctl", {"-D", data_, "-l", server_log, "-o", options, "-w", "-t", "60", "start"},
              ctl_log) == 0) {
        running_ = true;
        break;
      }
      const std::string log = tail(server_log);
      const bool port_taken = log.find("could not bind") != std::string::npos ||
                              log.find("already in use") != std::string::npos;
      if (!port_taken || attempt == kStartAttempts) {
        throw std::runtime_error("PostgresCluster: the server did not start on port " +
                                 std::to_string(port_) + ":\n" + tail(ctl_log) + "\n" + log);
      }
    }
    url_ = create_database(kDatabase);
  } catch (...) {
    stop();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
    throw;
  }
}

PostgresCluster::~PostgresCluster() {
  stop();
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

std::string PostgresCluster::create_database(const std::string& name) {
  const std::string log = dir_ + "/createdb.log";
  if (run("createdb", {"-h", "127.0.0.1", "-p", std::to_string(port_), "-U", "postgres", name},
          log) != 0) {
    throw std::runtime_error("PostgresCluster: createdb " + name + " failed:\n" + tail(log));
  }
  return url_for(name);
}

std::string PostgresCluster::url_for(const std::string& database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

int PostgresCluster::run(const std::string& program, const std::vector<std::string>& args,
                         const std::string& log) const {
  std::vector<std::string> argv;
  if (as_postgres_user_) argv = {runuser_path(), "-u", "postgres", "--"};
  argv.push_back(bin_ + "/" + program);
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw;
  raw.reserve(argv.size() + 1);
  for (auto& arg : argv) raw.push_back(arg.data());
  raw.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, raw[0], &actions, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw std::runtime_error("PostgresCluster: cannot start " + argv[0] + ": " + error_text(rc));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      throw std::runtime_error("PostgresCluster: waitpid for " + program + ": " + errno_text());
    }
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void PostgresCluster::stop() noexcept {
  if (!running_) return;
  running_ = false;
  try {
    const std::string log = dir_ + "/pg_ctl.log";
    if (run("pg_ctl", {"-D", data_, "-m", "fast", "-w", "stop"}, log) == 0) return;
    std::cerr << "PostgresCluster: pg_ctl stop failed:\n" << tail(log) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "PostgresCluster: pg_ctl stop failed: " << e.what() << "\n";
  }
  // Do not leave a server behind: the first line of postmaster.pid is its pid.
  std::ifstream pid_file(data_ + "/postmaster.pid");
  pid_t pid = 0;
  if (pid_file >> pid && pid > 0) ::kill(pid, SIGKILL);
}

PostgresCluster& shared_cluster() {
  struct Shared {
    std::unique_ptr<PostgresCluster> cluster;
    std::string error;
  };
  static Shared shared = [] {
    Shared s;
    try {
      s.cluster = std::make_unique<PostgresCluster>();
    } catch (const std::exception& e) {
      s.error = e.what();
    }
    return s;
  }();
  if (!shared.cluster) throw std::runtime_error(shared.error);
  return *shared.cluster;
}

}  // namespace slmhub::test
