#include "smtp_recorder.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "slmhub/json.hpp"
#include "test_files.hpp"

extern char** environ;

namespace slmhub::test {
namespace {

namespace fs = std::filesystem;

std::string errno_text(int code) { return std::generic_category().message(code); }

// Debian's interpreter, where python3-aiosmtpd is installed; a `python3` earlier on PATH (a
// pyenv shim, a virtualenv) usually lacks it. SLMHUB_PYTHON names another one.
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

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Starts `argv` (the program looked up on PATH) with stdin from `stdin_fd` (or /dev/null when -1)
// and stdout / stderr into files; returns its pid.
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

bool is_ip_address(const std::string& name) {
  unsigned char buffer[16];
  return ::inet_pton(AF_INET, name.c_str(), buffer) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), buffer) == 1;
}

std::string string_or_empty(const Json& object, const char* key) {
  const auto found = object.find(key);
  return found != object.end() && found->is_string() ? found->get<std::string>() : std::string();
}

std::vector<std::string> strings(const Json& object, const char* key) {
  std::vector<std::string> out;
  const auto found = object.find(key);
  if (found == object.end() || !found->is_array()) return out;
  for (const auto& item : *found) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace

Certificate make_self_signed_certificate(const fs::path& dir, const std::string& name) {
  Certificate made{dir / (name + ".crt.pem"), dir / (name + ".key.pem")};
  const std::string san = (is_ip_address(name) ? "IP:" : "DNS:") + name;
  const fs::path log = dir / (name + ".openssl.log");
  const pid_t pid =
      spawn({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", "/CN=" + name, "-addext", "subjectAltName=" + san,
             "-keyout", made.key.string(), "-out", made.certificate.string()},
            -1, log, log);
  if (const int status = wait_exit(pid); status != 0) {
    throw std::runtime_error("openssl req -x509 for " + name + " failed with status " +
                             std::to_string(status) + ":\n" + tail(log));
  }
  return made;
}

SmtpRecorder::SmtpRecorder(const SmtpRecorderOptions& options) {
  std::string pattern = (fs::temp_directory_path() / "slmhub-smtp-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("SmtpRecorder: cannot create a temp dir: " + errno_text(errno));
  }
  dir_ = pattern;
  messages_ = dir_ / "messages";
  try {
    fs::create_directories(messages_);
    std::vector<std::string> argv = {
        python(), std::string(SLMHUB_SOURCE_DIR) + "/tests/support/smtp_recorder.py", "--dir",
        messages_.string()};
    if (options.tls != SmtpRecorderOptions::Tls::none) {
      certificate_ = make_self_signed_certificate(dir_, options.certificate_name);
      argv.insert(
          argv.end(),
          {"--tls", options.tls == SmtpRecorderOptions::Tls::starttls ? "starttls" : "implicit",
           "--cert", certificate_.certificate.string(), "--key", certificate_.key.string()});
    }
    for (const auto& address : options.refuse) argv.insert(argv.end(), {"--refuse", address});
    for (const auto& address : options.tempfail) argv.insert(argv.end(), {"--tempfail", address});
    if (!options.username.empty()) {
      argv.insert(argv.end(), {"--username", options.username, "--password", options.password});
    }

    // Close-on-exec, so no other child (openssl, a second recorder) holds the write end and
    // keeps this server's stdin open after we close it.
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      throw std::runtime_error("SmtpRecorder: pipe: " + errno_text(errno));
    }
    try {
      pid_ = spawn(argv, pipe_fds[0], dir_ / "server.out", dir_ / "server.err");
    } catch (...) {
      ::close(pipe_fds[0]);
      ::close(pipe_fds[1]);
      throw;
    }
    ::close(pipe_fds[0]);
    stdin_ = pipe_fds[1];

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (port_ == 0) {
      const std::string out = tail(dir_ / "server.out");
      if (const auto ready = out.find("ready ");
          ready != std::string::npos && out.find('\n', ready) != std::string::npos) {
        port_ = std::stoi(out.substr(ready + 6));
        break;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("SmtpRecorder: smtp_recorder.py exited before listening:\n" +
                                 log());
      }
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("SmtpRecorder: smtp_recorder.py did not listen within 30 s:\n" +
                                 log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  } catch (...) {
    stop();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
    throw;
  }
}

SmtpRecorder::~SmtpRecorder() {
  stop();
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

void SmtpRecorder::stop() noexcept {
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

std::vector<RecordedMail> SmtpRecorder::messages() const {
  std::vector<fs::path> records;
  for (const auto& entry : fs::directory_iterator(messages_)) {
    if (entry.path().extension() == ".json") records.push_back(entry.path());
  }
  std::sort(records.begin(), records.end());
  std::vector<RecordedMail> out;
  out.reserve(records.size());
  for (const auto& record : records) {
    const Json envelope = Json::parse(read_text(record));
    RecordedMail mail;
    mail.mail_from = string_or_empty(envelope, "mail_from");
    mail.mail_options = strings(envelope, "mail_options");
    mail.rcpt_to = strings(envelope, "rcpt_tos");
    mail.helo = string_or_empty(envelope, "helo");
    mail.tls = envelope.value("tls", false);
    mail.auth_user = string_or_empty(envelope, "auth_user");
    mail.data = read_text(fs::path(record).replace_extension(".eml"));
    out.push_back(std::move(mail));
  }
  return out;
}

std::vector<RecordedMail> SmtpRecorder::wait_for(std::size_t count,
                                                 std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto received = messages();
    if (received.size() >= count || std::chrono::steady_clock::now() >= deadline) {
      return received;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string SmtpRecorder::log() const { return tail(dir_ / "server.err"); }

}  // namespace slmhub::test
