// HTTPS for the API (http.tls.cert_file, http.tls.key_file): TLS 1.2 or later, the certificate
// chain and its key read from PEM files, and read again by reload() (on SIGHUP) without a
// restart and without dropping a connection. Each handshake takes the pair current at that
// moment (an OpenSSL certificate callback), so a renewed certificate is served from the next
// connection on; a reload that fails (a missing file, a key that does not match) keeps the pair
// in service and says why.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include <Poco/Net/Context.h>

namespace slmhub::host {

class TlsServer {
 public:
  // Loads the pair; std::runtime_error naming the file and what is wrong with it.
  TlsServer(std::string cert_file, std::string key_file);
  ~TlsServer();

  // Loads the files again; on an error the pair in service stays and the error is thrown.
  // Returns the new certificate's subject and expiry, for the log.
  std::string reload();
  // What is served: subject and expiry ("CN=api.example.org, valid until 2027-12-01T00:00:00Z").
  std::string describe() const;
  Poco::Net::Context::Ptr context() const { return context_; }

  struct Pair;

 private:
  std::shared_ptr<const Pair> current() const;

  std::string cert_file_, key_file_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Pair> pair_;
  Poco::Net::Context::Ptr context_;
};

}  // namespace slmhub::host
