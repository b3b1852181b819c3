#include "certificate.hpp"

#include <arpa/inet.h>

#include <stdexcept>

#include "process.hpp"

namespace slmhub::test {
namespace {

bool is_ip_address(const std::string& name) {
  unsigned char buffer[16];
  return ::inet_pton(AF_INET, name.c_str(), buffer) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), buffer) == 1;
}

}  // namespace

Certificate make_self_signed_certificate(const std::filesystem::path& dir,
                                         const std::string& name) {
  std::filesystem::create_directories(dir);
  Certificate made{dir / (name + ".crt.pem"), dir / (name + ".key.pem")};
  const std::string san = (is_ip_address(name) ? "IP:" : "DNS:") + name;
  const std::filesystem::path log = dir / (name + ".openssl.log");
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

}  // namespace slmhub::test
