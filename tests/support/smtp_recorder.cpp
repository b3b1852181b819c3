#include "smtp_recorder.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "process.hpp"
#include "slmhub/json.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

namespace fs = std::filesystem;

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

SmtpRecorder::SmtpRecorder(const SmtpRecorderOptions& options) {
  std::string pattern = (fs::temp_directory_path() / "slmhub-smtp-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("SmtpRecorder: cannot create a temp dir: " +
                             std::generic_category().message(errno));
  }
  dir_ = pattern;
  messages_ = dir_ / "messages";
  try {
    fs::create_directories(messages_);
    std::vector<std::string> argv = {
        std::string(SLMHUB_SOURCE_DIR) + "/tests/support/smtp_recorder.py", "--dir",
        messages_.string()};
    if (options.tls != SmtpRecorderOptions::Tls::none) {
      certificate_ = make_self_signed_certificate(dir_, options.certificate_name);
      argv.insert(
          argv.end(),
          {"--tls", options.tls == SmtpRecorderOptions::Tls::starttls ? "starttls" : "implicit",
           "--cert", certificate_.certificate.string(), "--key", certificate_.key.string()});
    }
    if (options.port != 0) argv.insert(argv.end(), {"--port", std::to_string(options.port)});
    for (const auto& address : options.refuse) argv.insert(argv.end(), {"--refuse", address});
    for (const auto& address : options.tempfail) argv.insert(argv.end(), {"--tempfail", address});
    if (!options.username.empty()) {
      argv.insert(argv.end(), {"--username", options.username, "--password", options.password});
    }

    server_ = std::make_unique<ScriptServer>(argv, dir_, "SmtpRecorder: smtp_recorder.py");
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
    throw;
  }
}

SmtpRecorder::~SmtpRecorder() {
  server_.reset();
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

int SmtpRecorder::port() const { return server_->port(); }

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
    mail.peer_port = envelope.value("peer_port", 0);
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

std::string SmtpRecorder::log() const { return server_ ? server_->log() : std::string(); }

}  // namespace slmhub::test
