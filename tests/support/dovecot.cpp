#include "dovecot.hpp"

#include "process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <set>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "test_files.hpp"

namespace slmhub::test {
namespace {

namespace fs = std::filesystem;

constexpr int kStartAttempts = 5;

std::string errno_text(int code) { return std::generic_category().message(code); }

bool accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

std::string dovecot_binary() {
  for (const char* path : {"/usr/sbin/dovecot", "/usr/local/sbin/dovecot"}) {
    if (::access(path, X_OK) == 0) return path;
  }
  throw std::runtime_error(
      "Dovecot not found (/usr/sbin/dovecot). Run `make deps` (installs dovecot-pop3d and "
      "dovecot-imapd)");
}

struct Account {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string group;
};

Account account(const std::string& name) {
  passwd entry{};
  passwd* user = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &user) != 0 ||
      user == nullptr) {
    throw std::runtime_error("Dovecot: tests run as root and need the system user " + name +
                             ", which does not exist. Run `make deps` (dovecot-core creates "
                             "dovecot and dovenull)");
  }
  Account out{user->pw_name, user->pw_uid, user->pw_gid, {}};
  group g{};
  group* found = nullptr;
  if (::getgrgid_r(user->pw_gid, &g, buffer.data(), buffer.size(), &found) == 0 && found) {
    out.group = found->gr_name;
  }
  return out;
}

Account current_account() {
  passwd entry{};
  passwd* user = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwuid_r(::geteuid(), &entry, buffer.data(), buffer.size(), &user) != 0 ||
      user == nullptr) {
    throw std::runtime_error("Dovecot: the current user has no passwd entry");
  }
  return account(user->pw_name);
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  out.close();
  if (!out) throw std::runtime_error("Dovecot: cannot write " + path.string());
}

// Starts Dovecot in the foreground with its output in `out`, in a process group of its own
// (whose id is its pid) so that stopping reaches every Dovecot process at once. The child
// asks for SIGTERM when the thread that started it dies, so a crashed test leaves no server
// behind.
pid_t spawn(const std::string& binary, const fs::path& config, const fs::path& out) {
  std::vector<std::string> argv = {binary, "-F", "-c", config.string()};
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (auto& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  const std::string out_path = out.string();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("Dovecot: fork: " + errno_text(errno));
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(126);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    const int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (null_fd < 0 || out_fd < 0) ::_exit(126);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(out_fd, STDERR_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

// The maildir flags of a file name "base:2,FLAGS" when it is message `name`.
std::optional<std::string> flags_of(const std::string& file, const std::string& name) {
  if (file == name) return std::string();
  if (file.size() <= name.size() || file.compare(0, name.size(), name) != 0) return std::nullopt;
  const char next = file[name.size()];
  if (next != ':' && next != ',') return std::nullopt;
  const auto info = file.find(":2,", name.size());
  return info == std::string::npos ? std::string() : file.substr(info + 3);
}

}  // namespace

Dovecot::Dovecot(const DovecotOptions& options) : options_(options) {
  const std::string binary = dovecot_binary();
  std::string pattern = (fs::temp_directory_path() / "slmhub-dovecot-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("Dovecot: cannot create a temp dir: " + errno_text(errno));
  }
  dir_ = pattern;
  try {
    as_root_ = ::geteuid() == 0;
    Account internal, login, mail;
    if (as_root_) {
      internal = account("dovecot");
      login = account("dovenull");
      mail = account("nobody");
    } else {
      internal = login = mail = current_account();
    }
    mail_uid_ = mail.uid;
    mail_gid_ = mail.gid;
    // Dovecot's unprivileged processes must reach their sockets and the mail under here.
    fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    fs::create_directories(dir_ / "run");
    fs::create_directories(dir_ / "state");
    fs::create_directories(dir_ / "mail");
    make_maildir(maildir("INBOX"));
    certificate_ = make_self_signed_certificate(dir_, options_.certificate_name);
    write_file(dir_ / "passwd", options_.username + ":{PLAIN}" + options_.password + "\n");

    const std::string templ =
        read_text(fs::path(SLMHUB_SOURCE_DIR) / "tests" / "support" / "dovecot.conf.in");
    static std::atomic<int> instances{0};
    const std::string instance = std::to_string(::getpid()) + "-" + std::to_string(++instances);
    for (int attempt = 1;; ++attempt) {
      // Four different ports: the kernel may hand the same free port out twice in a row
      // (each is closed before the next is asked for), and Dovecot refuses a duplicate.
      std::set<int> ports;
      while (ports.size() < 4) ports.insert(free_port());
      auto port = ports.begin();
      pop3s_port_ = *port++;
      pop3_port_ = *port++;
      imaps_port_ = *port++;
      imap_port_ = *port;
      std::string config = templ;
      for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
               {"@DIR@", dir_.string()},
               {"@INSTANCE@", instance},
               {"@INTERNAL_USER@", internal.name},
               {"@INTERNAL_GROUP@", internal.group},
               {"@LOGIN_USER@", login.name},
               {"@MAIL_UID@", std::to_string(mail.uid)},
               {"@MAIL_GID@", std::to_string(mail.gid)},
               {"@CERT@", certificate_.certificate.string()},
               {"@KEY@", certificate_.key.string()},
               // chroot needs root; without it the login processes run where they are.
               {"@LOGIN_CHROOT@", as_root_ ? "login" : ""},
               {"@POP3S_PORT@", std::to_string(pop3s_port_)},
               {"@POP3_PORT@", std::to_string(pop3_port_)},
               {"@IMAPS_PORT@", std::to_string(imaps_port_)},
               {"@IMAP_PORT@", std::to_string(imap_port_)},
           }) {
        replace_all(config, name, value);
      }
      write_file(dir_ / "dovecot.conf", config);

      pid_ = spawn(binary, dir_ / "dovecot.conf", dir_ / "dovecot.out");
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      bool listening = false;
      bool exited = false;
      while (!listening && !exited) {
        listening = accepts(pop3s_port_) && accepts(pop3_port_) && accepts(imaps_port_) &&
                    accepts(imap_port_);
        int status = 0;
        if (!listening && ::waitpid(pid_, &status, WNOHANG) == pid_) {
          exited = true;
          pid_ = -1;
        } else if (!listening && std::chrono::steady_clock::now() > deadline) {
          throw std::runtime_error("Dovecot did not listen within 30 s:\n" +
                                   tail(dir_ / "dovecot.out") + "\n" + log());
        } else if (!listening) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
      if (listening) break;
      const std::string output = tail(dir_ / "dovecot.out") + "\n" + log();
      if (output.find("in use") == std::string::npos || attempt == kStartAttempts) {
        throw std::runtime_error("Dovecot exited before listening:\n" + output);
      }
    }
  } catch (...) {
    stop();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
    throw;
  }
}

Dovecot::~Dovecot() {
  stop();
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

void Dovecot::stop() noexcept {
  if (pid_ <= 0) return;
  // The whole group, and killed when not gone quickly: after clients disconnect, Dovecot's
  // master waits up to 5 s for its anvil process to finish, and nothing it would still write
  // matters to a test whose directory is removed next.
  ::kill(-pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(-pid_, SIGKILL);
      wait_exit(pid_);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(-pid_, SIGKILL);  // children still finishing; ESRCH when none is left
  pid_ = -1;
}

fs::path Dovecot::maildir(const std::string& folder) const {
  const fs::path home = dir_ / "mail" / options_.username;
  return folder == "INBOX" ? home : home / ("." + folder);
}

void Dovecot::give_to_mail_user(const fs::path& path) const {
  if (as_root_ && ::chown(path.c_str(), mail_uid_, mail_gid_) != 0) {
    throw std::runtime_error("Dovecot: cannot chown " + path.string() + ": " + errno_text(errno));
  }
}

void Dovecot::make_maildir(const fs::path& path) const {
  std::vector<fs::path> made;
  for (fs::path at = path; !fs::exists(at); at = at.parent_path()) made.push_back(at);
  fs::create_directories(path);
  for (const char* sub : {"new", "cur", "tmp"}) {
    fs::create_directories(path / sub);
    made.push_back(path / sub);
  }
  for (const auto& dir : made) give_to_mail_user(dir);
}

void Dovecot::create_folder(const std::string& folder) { make_maildir(maildir(folder)); }

std::string Dovecot::deliver(const std::string& raw, const std::string& folder,
                             const std::optional<std::string>& flags) {
  const fs::path box = maildir(folder);
  if (!fs::exists(box / "new")) make_maildir(box);
  // <seconds>.M<micro>P<pid>Q<count>.<host>: unique as maildir(5) asks, and sorting in the
  // order delivered, which is the order Dovecot gives new messages their UIDs.
  static std::atomic<int> delivered{0};
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now).count();
  std::string micros =
      std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(now).count() % 1000000);
  micros.insert(0, 6 - micros.size(), '0');
  std::string name = std::to_string(seconds) + ".M" + micros + "P" + std::to_string(::getpid()) +
                     "Q" + std::to_string(++delivered) + ".slmhub-test";
  const fs::path temporary = box / "tmp" / name;
  write_file(temporary, raw);
  give_to_mail_user(temporary);
  fs::rename(temporary, flags ? box / "cur" / (name + ":2," + *flags) : box / "new" / name);
  return name;
}

std::size_t Dovecot::count(const std::string& folder) const {
  std::size_t n = 0;
  for (const char* sub : {"new", "cur"}) {
    const fs::path dir = maildir(folder) / sub;
    if (!fs::exists(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) n += entry.is_regular_file() ? 1 : 0;
  }
  return n;
}

std::vector<std::string> Dovecot::contents(const std::string& folder) const {
  std::vector<fs::path> files;
  for (const char* sub : {"new", "cur"}) {
    const fs::path dir = maildir(folder) / sub;
    if (!fs::exists(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
  std::vector<std::string> out;
  out.reserve(files.size());
  for (const auto& file : files) out.push_back(read_text(file));
  return out;
}

std::optional<std::string> Dovecot::flags(const std::string& name,
                                          const std::string& folder) const {
  for (const char* sub : {"new", "cur"}) {
    const fs::path dir = maildir(folder) / sub;
    if (!fs::exists(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (auto found = flags_of(entry.path().filename().string(), name)) return found;
    }
  }
  return std::nullopt;
}

void Dovecot::remove(const std::string& name, const std::string& folder) {
  for (const char* sub : {"new", "cur"}) {
    const fs::path dir = maildir(folder) / sub;
    if (!fs::exists(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (flags_of(entry.path().filename().string(), name)) {
        fs::remove(entry.path());
        return;
      }
    }
  }
  throw std::runtime_error("Dovecot: no message " + name + " in " + folder);
}

void Dovecot::kick() {
  const fs::path out = dir_ / "doveadm.out";
  const std::string doveadm =
      fs::path(dovecot_binary()).parent_path().parent_path() / "bin" / "doveadm";
  std::vector<std::string> argv = {doveadm, "-c", (dir_ / "dovecot.conf").string(), "kick",
                                   options_.username};
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (auto& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  // A session that has just logged in is known to doveadm a moment later (its login is
  // registered asynchronously): "no users kicked" (68) is tried again, for up to 10 s.
  constexpr int kNoUsersKicked = 68;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("Dovecot: fork: " + errno_text(errno));
    if (pid == 0) {
      const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (out_fd < 0) ::_exit(126);
      ::dup2(out_fd, STDOUT_FILENO);
      ::dup2(out_fd, STDERR_FILENO);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    const int status = wait_exit(pid);
    if (status == 0) return;
    if (status != kNoUsersKicked || std::chrono::steady_clock::now() >= deadline) {
      throw std::runtime_error("doveadm kick " + options_.username + " failed with status " +
                               std::to_string(status) + ":\n" + tail(out));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void Dovecot::kill_sessions() {
  // Dovecot logs each login with the pid of the process serving it: "mpid=1234".
  const std::string text = read_text(dir_ / "dovecot.log");
  const std::string login = "Login: user=<" + options_.username + ">";
  std::vector<pid_t> pids;
  for (auto at = text.find(login); at != std::string::npos; at = text.find(login, at + 1)) {
    const auto end = text.find('\n', at);
    const auto mpid = text.find("mpid=", at);
    if (mpid == std::string::npos || mpid > end) continue;
    pids.push_back(static_cast<pid_t>(std::stol(text.substr(mpid + 5))));
  }
  for (const pid_t pid : pids) ::kill(pid, SIGKILL);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (const pid_t pid : pids) {
    // Gone once the master has reaped it.
    while (fs::exists("/proc/" + std::to_string(pid))) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("Dovecot: session process " + std::to_string(pid) +
                                 " did not go away after SIGKILL");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

std::string Dovecot::log() const { return tail(dir_ / "dovecot.log"); }

}  // namespace slmhub::test
