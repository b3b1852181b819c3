#include "curl_transport.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string_view>

namespace slmhub::servicenow {
namespace {

// A page of 10,000 wide records is tens of MB; more than this is not a Table API answer.
constexpr std::size_t kMaxBody = std::size_t{256} << 20;
// The system's CA directory (hashed names), kept besides a configured CA file.
constexpr const char* kSystemCaPath = "/etc/ssl/certs";

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("libcurl could not be initialised");
    }
  });
}

struct Exchange {
  HttpResponse* response;
  bool too_large = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* exchange = static_cast<Exchange*>(user);
  const std::size_t bytes = size * count;
  if (exchange->response->body.size() + bytes > kMaxBody) {
    exchange->too_large = true;
    return 0;  // makes libcurl stop the transfer
  }
  exchange->response->body.append(data, bytes);
  return bytes;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                           text.back() == '\n')) {
    text.remove_suffix(1);
  }
  return text;
}

// One header line at a time; a status line starts a new response (an interim 100 Continue),
// whose headers replace those collected so far.
std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* response = static_cast<Exchange*>(user)->response;
  const std::size_t bytes = size * count;
  const std::string_view line(data, bytes);
  if (line.starts_with("HTTP/")) {
    response->links.clear();
    response->retry_after.clear();
    return bytes;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return bytes;
  const std::string_view name = trim(line.substr(0, colon));
  const std::string_view value = trim(line.substr(colon + 1));
  if (iequals(name, "Link")) {
    response->links.emplace_back(value);
  } else if (iequals(name, "Retry-After")) {
    response->retry_after = value;
  }
  return bytes;
}

// Failures after which the same request cannot succeed: the configuration or the server's
// certificate is wrong.
bool is_refusal(CURLcode code) {
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_NOT_BUILT_IN:
      return true;
    default:
      return false;
  }
}

template <typename Value>
void set(CURL* curl, CURLoption option, Value value) {
  if (curl_easy_setopt(curl, option, value) != CURLE_OK) {
    throw std::runtime_error(std::string("libcurl refused option ") + std::to_string(option));
  }
}

}  // namespace

void check_curl_supports(const std::string& scheme) {
  global_init();
  const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
  for (const char* const* protocol = info->protocols; *protocol != nullptr; ++protocol) {
    if (scheme == *protocol) return;
  }
  throw std::invalid_argument(std::string("ServiceNow settings: libcurl ") + info->version +
                              " cannot speak " + scheme);
}

HttpConnection::HttpConnection(const ClientSettings& settings)
    : curl_(nullptr),
      username_(settings.username),
      password_(settings.password),
      error_(CURL_ERROR_SIZE, '\0') {
  global_init();
  CURL* curl = curl_easy_init();
  if (curl == nullptr) throw std::runtime_error("libcurl could not start a session");
  curl_ = curl;
  try {
    set(curl, CURLOPT_NOSIGNAL, 1L);
    set(curl, CURLOPT_ERRORBUFFER, error_.data());
#if LIBCURL_VERSION_NUM >= 0x075500
    set(curl, CURLOPT_PROTOCOLS_STR, "https,http");
#else
    set(curl, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTPS | CURLPROTO_HTTP));
#endif
    set(curl, CURLOPT_FOLLOWLOCATION, 0L);
    set(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    set(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    set(curl, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    if (!settings.ca_file.empty()) {
      // The file replaces libcurl's default bundle; the system's CA directory stays.
      set(curl, CURLOPT_CAINFO, settings.ca_file.c_str());
      std::error_code error;
      if (std::filesystem::is_directory(kSystemCaPath, error)) {
        set(curl, CURLOPT_CAPATH, kSystemCaPath);
      }
    }
    if (!settings.client_certificate.empty()) {
      set(curl, CURLOPT_SSLCERT, settings.client_certificate.c_str());
      set(curl, CURLOPT_SSLCERTTYPE, "PEM");
      set(curl, CURLOPT_SSLKEY, settings.client_key.c_str());
      set(curl, CURLOPT_SSLKEYTYPE, "PEM");
    }
    set(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(settings.connect_timeout.count()));
    set(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(settings.request_timeout.count()));
    set(curl, CURLOPT_ACCEPT_ENCODING, "");  // whatever libcurl can decode
    set(curl, CURLOPT_USERAGENT, "slmhub-servicenow/1");
    set(curl, CURLOPT_WRITEFUNCTION, &on_body);
    set(curl, CURLOPT_HEADERFUNCTION, &on_header);
  } catch (...) {
    curl_easy_cleanup(curl);
    throw;
  }
}

HttpConnection::~HttpConnection() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

HttpResponse HttpConnection::perform(const HttpRequest& request) {
  CURL* curl = static_cast<CURL*>(curl_);
  HttpResponse response;
  Exchange exchange{&response};

  struct Headers {
    curl_slist* list = nullptr;
    ~Headers() { curl_slist_free_all(list); }
    void add(const std::string& line) {
      curl_slist* grown = curl_slist_append(list, line.c_str());
      if (grown == nullptr) throw std::bad_alloc();
      list = grown;
    }
  } headers;
  headers.add("Accept: application/json");
  headers.add("Expect:");  // no 100-continue round trip before a body
  if (!request.content_type.empty()) headers.add("Content-Type: " + request.content_type);
  if (!request.bearer.empty()) headers.add("Authorization: Bearer " + request.bearer);

  set(curl, CURLOPT_URL, request.url.c_str());
  if (request.method == "GET") {
    set(curl, CURLOPT_CUSTOMREQUEST, static_cast<const char*>(nullptr));
    set(curl, CURLOPT_HTTPGET, 1L);
  } else {
    set(curl, CURLOPT_POST, 1L);
    set(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    set(curl, CURLOPT_POSTFIELDS, request.body.c_str());
    set(curl, CURLOPT_CUSTOMREQUEST,
        request.method == "POST" ? static_cast<const char*>(nullptr) : request.method.c_str());
  }
  if (request.basic_auth) {
    set(curl, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    set(curl, CURLOPT_USERNAME, username_.c_str());
    set(curl, CURLOPT_PASSWORD, password_.c_str());
  } else {
    set(curl, CURLOPT_USERNAME, static_cast<const char*>(nullptr));
    set(curl, CURLOPT_PASSWORD, static_cast<const char*>(nullptr));
  }
  set(curl, CURLOPT_FRESH_CONNECT, request.fresh_connection ? 1L : 0L);
  set(curl, CURLOPT_HTTPHEADER, headers.list);
  set(curl, CURLOPT_WRITEDATA, static_cast<void*>(&exchange));
  set(curl, CURLOPT_HEADERDATA, static_cast<void*>(&exchange));
  error_[0] = '\0';

  const CURLcode code = curl_easy_perform(curl);
  set(curl, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
  if (code != CURLE_OK) {
    response.failure_text =
        error_[0] != '\0' ? std::string(error_.data()) : curl_easy_strerror(code);
    long sent = 0;  // NOLINT(google-runtime-int): libcurl's type
    curl_easy_getinfo(curl, CURLINFO_REQUEST_SIZE, &sent);
    if (exchange.too_large) {
      response.failure = TransportFailure::refused;
      response.failure_text = "the response is larger than " + std::to_string(kMaxBody) + " bytes";
    } else if (is_refusal(code)) {
      response.failure = TransportFailure::refused;
    } else {
      response.failure = sent == 0 ? TransportFailure::unsent : TransportFailure::lost;
      response.timed_out = code == CURLE_OPERATION_TIMEDOUT;
    }
    response.links.clear();
    response.retry_after.clear();
    response.body.clear();
    return response;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  const char* content_type = nullptr;
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &content_type);
  if (content_type != nullptr) response.content_type = content_type;
  return response;
}

ConnectionPool::ConnectionPool(const ClientSettings& settings, int size) {
  for (int i = 0; i < size; ++i) {
    all_.push_back(std::make_unique<HttpConnection>(settings));
    idle_.push_back(all_.back().get());
  }
}

ConnectionPool::Lease ConnectionPool::acquire() {
  std::unique_lock lock(mutex_);
  released_.wait(lock, [this] { return !idle_.empty(); });
  HttpConnection* connection = idle_.back();
  idle_.pop_back();
  return Lease(*this, *connection);
}

void ConnectionPool::release(HttpConnection& connection) {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(&connection);
  }
  released_.notify_one();
}

}  // namespace slmhub::servicenow
