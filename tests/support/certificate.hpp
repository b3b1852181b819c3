// Throw-away certificates for tests of TLS clients and servers: a self-signed certificate and
// its key, made with `openssl req -x509` (a P-256 key, valid two days). A server presents it
// and the client trusts the same file as its CA; for mutual TLS a second one is the client's
// certificate and the server's trusted CA.
#pragma once

#include <filesystem>
#include <string>

namespace slmhub::test {

struct Certificate {
  std::filesystem::path certificate;
  std::filesystem::path key;
};

// Writes `name`.crt.pem and `name`.key.pem into `dir` (made if missing), issued for `name`: an IP address becomes
// an iPAddress subjectAltName, anything else a dNSName. Throws std::runtime_error with openssl's
// output when it fails.
Certificate make_self_signed_certificate(const std::filesystem::path& dir, const std::string& name);

}  // namespace slmhub::test
