#include "http/tls_server.hpp"

#include <Poco/Net/NetSSL.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <ctime>
#include <stdexcept>

namespace slmhub::host {

struct TlsServer::Pair {
  X509* cert = nullptr;
  STACK_OF(X509) * chain = nullptr;
  EVP_PKEY* key = nullptr;
  std::string description;
  Pair() = default;
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
  ~Pair() {
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

namespace {

std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return std::string(": ") + text;
}

struct BioCloser {
  void operator()(BIO* b) const { BIO_free(b); }
};

std::unique_ptr<BIO, BioCloser> open_pem(const std::string& key, const std::string& file) {
  std::unique_ptr<BIO, BioCloser> bio(BIO_new_file(file.c_str(), "r"));
  if (!bio) throw std::runtime_error(key + " '" + file + "' cannot be read" + openssl_error());
  return bio;
}

std::string describe_certificate(X509* cert) {
  std::string subject;
  if (BIO* mem = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long n = BIO_get_mem_data(mem, &data);
    subject.assign(data, static_cast<std::size_t>(n));
    BIO_free(mem);
  }
  std::tm until{};
  char when[32] = "?";
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &until) == 1)
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &until);
  return subject + ", valid until " + when;
}

std::shared_ptr<const TlsServer::Pair> load(const std::string& cert_file,
                                            const std::string& key_file) {
  auto pair = std::make_shared<TlsServer::Pair>();
  ERR_clear_error();
  {
    auto bio = open_pem("http.tls.cert_file", cert_file);
    pair->cert = PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr);
    if (!pair->cert)
      throw std::runtime_error("http.tls.cert_file '" + cert_file + "' holds no PEM certificate" +
                               openssl_error());
    // The rest of the file is the chain up to (not necessarily including) the root.
    pair->chain = sk_X509_new_null();
    while (X509* next = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
      sk_X509_push(pair->chain, next);
    // The end of the file reads as "no start line"; anything else is a broken certificate,
    // and serving a chain cut short would fail some clients.
    const unsigned long end = ERR_peek_last_error();
    if (end != 0 &&
        !(ERR_GET_LIB(end) == ERR_LIB_PEM && ERR_GET_REASON(end) == PEM_R_NO_START_LINE))
      throw std::runtime_error("http.tls.cert_file '" + cert_file +
                               "': a certificate of the chain cannot be read" + openssl_error());
    ERR_clear_error();
  }
  {
    auto bio = open_pem("http.tls.key_file", key_file);
    pair->key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    if (!pair->key)
      throw std::runtime_error("http.tls.key_file '" + key_file +
                               "' holds no unencrypted PEM private key" + openssl_error());
  }
  if (X509_check_private_key(pair->cert, pair->key) != 1)
    throw std::runtime_error("http.tls.key_file '" + key_file +
                             "' is not the key of the certificate in '" + cert_file + "'" +
                             openssl_error());
  pair->description = describe_certificate(pair->cert);
  return pair;
}

}  // namespace

TlsServer::TlsServer(std::string cert_file, std::string key_file)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)) {
  pair_ = load(cert_file_, key_file_);
  Poco::Net::initializeSSL();
  Poco::Net::Context::Params params;
  params.verificationMode = Poco::Net::Context::VERIFY_NONE;  // clients show no certificate
  params.loadDefaultCAs = false;
  // TLS 1.2: forward-secret AEAD suites only (TLS 1.3 has nothing else).
  params.cipherList = "ECDHE+AESGCM:ECDHE+CHACHA20";
  context_ = new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, params);
  context_->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
  context_->preferServerCiphers();
  SSL_CTX_set_cert_cb(
      context_->sslContext(),
      [](SSL* ssl, void* self) -> int {
        const auto pair = static_cast<TlsServer*>(self)->current();
        return SSL_use_certificate(ssl, pair->cert) == 1 &&
               SSL_use_PrivateKey(ssl, pair->key) == 1 && SSL_set1_chain(ssl, pair->chain) == 1;
      },
      this);
}

TlsServer::~TlsServer() {
  context_ = nullptr;
  Poco::Net::uninitializeSSL();
}

std::shared_ptr<const TlsServer::Pair> TlsServer::current() const {
  std::lock_guard lock(mutex_);
  return pair_;
}

std::string TlsServer::reload() {
  auto fresh = load(cert_file_, key_file_);  // throws, and the pair in service stays
  std::lock_guard lock(mutex_);
  pair_ = std::move(fresh);
  return pair_->description;
}

std::string TlsServer::describe() const { return current()->description; }

}  // namespace slmhub::host
