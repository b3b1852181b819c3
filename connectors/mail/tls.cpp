#include "tls.hpp"

#include <Poco/Exception.h>
#include <Poco/Net/IPAddress.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <stdexcept>

#include "slmhub/json.hpp"

namespace slmhub::mail {

Poco::Net::Context::Ptr make_verified_client_context(const std::string& host,
                                                     const std::string& ca_file,
                                                     const std::string& what) {
  if (!ca_file.empty() && !std::ifstream(ca_file)) {
    throw std::invalid_argument(what + ": the CA file " + quote_text(ca_file) + " cannot be read");
  }
  Poco::Net::Context::Params params;
  params.caLocation = ca_file;
  params.loadDefaultCAs = true;
  params.verificationMode = Poco::Net::Context::VERIFY_RELAXED;
  params.cipherList = "HIGH:!aNULL:!MD5:!RC4:!3DES";
  Poco::Net::Context::Ptr context;
  try {
    context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
  } catch (const Poco::Exception& e) {
    throw std::invalid_argument(what + ": cannot set up TLS with the CA file " +
                                quote_text(ca_file) + ": " + e.displayText());
  }
  context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
  SSL_CTX* ssl = context->sslContext();
  // Poco's verify callback hands a failed chain to SSLManager's certificate handler, whose
  // default (ConsoleCertificateHandler) asks on stdin whether to accept it: a server without a
  // terminal would wait or guess. Without a callback OpenSSL's verdict is final.
  SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
  // The name is checked by OpenSSL during the handshake (RFC 6125 rules, IP addresses against
  // iPAddress entries). Poco's own check after the handshake is off: it skips loopback
  // addresses unless in strict mode and does not read iPAddress entries at all.
  context->enableExtendedCertificateVerification(false);
  X509_VERIFY_PARAM* verify = SSL_CTX_get0_param(ssl);
  Poco::Net::IPAddress ip;
  const bool name_set =
      Poco::Net::IPAddress::tryParse(host, ip)
          ? X509_VERIFY_PARAM_set1_ip_asc(verify, host.c_str()) == 1
          : (X509_VERIFY_PARAM_set_hostflags(verify, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS),
             X509_VERIFY_PARAM_set1_host(verify, host.c_str(), host.size()) == 1);
  if (!name_set) {
    throw std::invalid_argument(what + ": cannot check certificates against the host " +
                                quote_text(host));
  }
  return context;
}

}  // namespace slmhub::mail
