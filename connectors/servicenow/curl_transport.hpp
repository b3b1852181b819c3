// HTTP for the ServiceNow client: one exchange at a time per libcurl easy handle, each handle
// keeping its connection alive between exchanges, lent out by a pool whose size is the number
// of requests that may be in flight to the instance (the pool is the counting semaphore).
// TLS 1.2 or later, the server's chain and name always verified against the system's CAs
// plus the optional CA file, a client certificate for mutual TLS when configured. No
// redirect is followed and no protocol other than https (http for a local simulator) is used.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client.hpp"

namespace slmhub::servicenow {

struct HttpRequest {
  std::string method = "GET";  // GET, POST or PATCH
  std::string url;
  std::string body;          // sent for POST and PATCH
  std::string content_type;  // of the body
  std::string bearer;        // an OAuth access token, sent when not empty
  bool basic_auth = false;   // the settings' user and password
  // On a new connection: libcurl sends a request again by itself when a reused connection
  // turns out closed before any answer, which for a create that the server did commit before
  // dropping the connection makes a duplicate.
  bool fresh_connection = false;
};

// How an exchange ended without an HTTP response.
enum class TransportFailure {
  none,
  unsent,   // no connection could be made: the request never left
  lost,     // sent or maybe sent, and no complete answer (time-out, dropped connection)
  refused,  // TLS or protocol refusal (an untrusted certificate, ...): trying again cannot help
};

struct HttpResponse {
  TransportFailure failure = TransportFailure::none;
  std::string failure_text;  // libcurl's explanation when failure != none
  bool timed_out = false;
  long status = 0;  // NOLINT(google-runtime-int): libcurl's type
  std::string content_type;
  std::string body;
  std::vector<std::string> links;  // the value of every Link header, in order
  std::string retry_after;         // the Retry-After header, "" when absent
};

class HttpConnection {
 public:
  explicit HttpConnection(const ClientSettings& settings);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  HttpResponse perform(const HttpRequest& request);

 private:
  void* curl_;  // CURL*
  std::string username_, password_;
  std::vector<char> error_;  // CURLOPT_ERRORBUFFER
};

class ConnectionPool {
 public:
  ConnectionPool(const ClientSettings& settings, int size);

  // A connection lent to one caller until the lease ends.
  class Lease {
   public:
    Lease(ConnectionPool& pool, HttpConnection& connection)
        : pool_(&pool), connection_(&connection) {}
    Lease(Lease&& other) noexcept : pool_(other.pool_), connection_(other.connection_) {
      other.pool_ = nullptr;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ != nullptr) pool_->release(*connection_);
    }
    HttpConnection* operator->() const { return connection_; }

   private:
    ConnectionPool* pool_;
    HttpConnection* connection_;
  };

  // Waits until a connection is free.
  Lease acquire();

 private:
  void release(HttpConnection& connection);

  std::mutex mutex_;
  std::condition_variable released_;
  std::vector<std::unique_ptr<HttpConnection>> all_;
  std::vector<HttpConnection*> idle_;
};

// Throws std::invalid_argument when this libcurl cannot speak `scheme` ("https", "http").
void check_curl_supports(const std::string& scheme);

}  // namespace slmhub::servicenow
