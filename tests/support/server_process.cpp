#include "server_process.hpp"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "slmhub/json.hpp"

namespace slmhub::test {

HttpResult http(int port, const std::string& method, const std::string& path,
                const std::string& body, const std::string& token,
                const std::map<std::string, std::string>& headers) {
  Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
  session.setTimeout(Poco::Timespan(30, 0));
  Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  if (!token.empty()) request.set("Authorization", "Bearer " + token);
  for (const auto& [k, v] : headers) request.set(k, v);
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    request.setContentType("application/json");
    request.setContentLength64(static_cast<Poco::Int64>(body.size()));
  }
  auto& out = session.sendRequest(request);
  out << body;
  Poco::Net::HTTPResponse response;
  auto& in = session.receiveResponse(response);
  HttpResult result;
  result.status = response.getStatus();
  Poco::StreamCopier::copyToString(in, result.body);
  for (const auto& [k, v] : response) result.headers[k] = v;
  return result;
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("slmhub-test-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

namespace {

pid_t spawn(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
            const std::string& out_file, const std::string& err_file,
            const std::filesystem::path& working_dir = {}) {
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int out = open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    if (!working_dir.empty() && chdir(working_dir.c_str()) != 0) _exit(126);
    std::vector<char*> argv;
    std::string binary = SLMHUB_BINARY;
    argv.push_back(binary.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

CommandResult run_slmhub(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env,
                         const std::filesystem::path& working_dir) {
  TempDir dir;
  auto out = (dir.path() / "out").string(), err = (dir.path() / "err").string();
  pid_t pid = spawn(args, env, out, err, working_dir);
  int status = 0;
  waitpid(pid, &status, 0);
  CommandResult r;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

ServerProcess::ServerProcess(const std::filesystem::path& dir,
                             std::map<std::string, std::string> env)
    : dir_(dir) {
  env_ = {{"SLMHUB_DB_URL", "sqlite:" + (dir / "slmhub.db").string()},
          {"SLMHUB_HTTP_PORT", "0"},
          // The shipped plugins and the deliberately broken test plugins.
          {"SLMHUB_PLUGINS_DIR", std::string(SLMHUB_PLUGIN_DIR) + "," + SLMHUB_TEST_PLUGIN_DIR},
          {"SLMHUB_AUTH_ADMIN_TOKEN_FILE", (dir / "admin.token").string()},
          {"SLMHUB_LOG_LEVEL", "information"}};
  for (auto& [k, v] : env) env_[k] = v;
}

void ServerProcess::signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

// Stopped as an operator would stop it, so every test also runs the shutdown (and, in a
// sanitizer build, the leak check at exit).
ServerProcess::~ServerProcess() { stop(); }

void ServerProcess::start() {
  auto out = (dir_ / "server.out").string();
  // Removed here, not in the child: a restart must never read the previous run's port.
  std::filesystem::remove(out);
  std::filesystem::remove(dir_ / "server.err");
  pid_ = spawn({"serve"}, env_, out, (dir_ / "server.err").string());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string text = slurp(out);
    auto at = text.find("listening on http");  // http:// or https://
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
      auto colon = text.find(':', text.find("127.0.0.1", at));
      port_ = std::stoi(text.substr(colon + 1));
      // The admin token line is written right after, on a first start.
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::ifstream token_file(dir_ / "admin.token");
      std::getline(token_file, token_);
      return;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("slmhub serve exited early: " + log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("slmhub serve did not start within 60 s: " + log());
}

void ServerProcess::kill_hard() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  expect_no_sanitizer_report();
}

void ServerProcess::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  // systemd waits as long (TimeoutStopSec) before it kills.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (waitpid(pid_, nullptr, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > until) {
      ADD_FAILURE() << "the server did not stop within 60 s of SIGTERM:\n" << log();
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  expect_no_sanitizer_report();
}

// In a sanitizer build (make test-asan, make test-tsan) the server reports what it finds on
// stderr and the test that ran it fails with the report, whatever else it checked: a report
// at exit (a leak) would otherwise go unseen, the test having passed already.
void ServerProcess::expect_no_sanitizer_report() const {
  const std::string text = log();
  for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                             "runtime error:", "WARNING: ThreadSanitizer"}) {
    const auto at = text.find(marker);
    if (at == std::string::npos) continue;
    const auto from = text.rfind('\n', at);
    ADD_FAILURE() << "the server's sanitizer reported:\n"
                  << text.substr(from == std::string::npos ? 0 : from + 1, 8000);
    return;
  }
}

std::string ServerProcess::token(const std::string& role) const {
  const auto r =
      http(port_, "POST", "/api/v1/tokens", Json{{"name", role}, {"roles", {role}}}.dump(), token_);
  if (r.status != 201) throw std::runtime_error("cannot create a " + role + " token: " + r.body);
  return Json::parse(r.body)["token"];
}

std::string ServerProcess::log() const { return slurp((dir_ / "server.err").string()); }

}  // namespace slmhub::test
