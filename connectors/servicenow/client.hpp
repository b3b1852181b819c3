// A ServiceNow REST client (Table API and Import Set API) that behaves the way
// ../shared/SERVICENOW.md says an integration must: raw values only, every value a string,
// references flattened to their sys_id; pagination that follows `Link: rel="next"` and never
// stops on a short page; keyset sweeps over (sys_updated_on, sys_id); retries with capped
// exponential back-off and full jitter on 429 (honouring Retry-After), 5xx, time-outs,
// dropped connections and 200-with-HTML (a hibernating instance), but never a blind retry of
// a create; a per-instance budget of concurrent requests and requests per second.
//
// HTTP is libcurl: TLS is always verified (system CAs plus an optional CA file), mutual TLS
// with a client certificate and key, connections reused. Thread-safe: one Client per
// instance, shared by every caller.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace slmhub::servicenow {

// One record as raw values: field name -> value. A reference field holds the referenced
// sys_id ("" when empty); display values are never requested.
using Record = std::map<std::string, std::string>;

struct ClientSettings {
  // The instance, e.g. "https://example.service-now.com" (no trailing slash needed). http://
  // is accepted for a simulator on 127.0.0.1 only.
  std::string base_url;
  enum class Auth { basic, oauth } auth = Auth::basic;
  std::string username, password;  // the integration (web-service-only) user
  // OAuth password grant at /oauth_token.do; the access token is refreshed with the refresh
  // token before it expires (and once when a request answers 401), else a new password grant.
  std::string client_id, client_secret;
  std::string ca_file;                         // trusted besides the system's CAs
  std::string client_certificate, client_key;  // PEM files, mutual TLS when both are set
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};
  int max_attempts = 6;  // per request, the first included
  // Full-jitter exponential back-off between attempts: a wait drawn uniformly from 0 to
  // min(backoff_cap, backoff_base * 2^(failures - 1)). A 429 or 503 with Retry-After waits
  // exactly that long instead (holding every caller of the instance); a Retry-After longer
  // than backoff_cap fails the request at once rather than block a thread for it, and every
  // request after it too until it is over.
  std::chrono::milliseconds backoff_base{250};
  std::chrono::milliseconds backoff_cap{30000};
  int max_concurrency = 4;  // requests in flight to this instance, all callers together
  // All callers together, never more requests in any one-second window (a bucket of this
  // many tokens, each back one second after it was spent); 0 = unlimited.
  int requests_per_second = 20;
  int page_size = 1000;  // sysparm_limit for list and sweep, 1..10000
  // Sleeps for back-off and budget waits; tests may replace it to observe the waits.
  std::function<void(std::chrono::milliseconds)> sleep;
};

// A request that failed for good (after the retries it was allowed). `status` is the HTTP
// status (0 when there was no response); `message` / `detail` come from ServiceNow's error
// envelope when there was one.
class Error : public std::runtime_error {
 public:
  Error(const std::string& what, int status, std::string message, std::string detail)
      : std::runtime_error(what),
        status_(status),
        message_(std::move(message)),
        detail_(std::move(detail)) {}
  int status() const { return status_; }
  const std::string& message() const { return message_; }
  const std::string& detail() const { return detail_; }

 private:
  int status_;
  std::string message_, detail_;
};

// A create_unique() POST that succeeded, but whose record does not hold the key as sent (an
// ACL or a business rule dropped or rewrote it): the record exists, and a lookup by the key
// cannot find it again. status() is the POST's (2xx); record() is what the instance stored.
class KeyNotStored : public Error {
 public:
  KeyNotStored(const std::string& what, int status, Record record)
      : Error(what, status, "", ""), record_(std::move(record)) {}
  const Record& record() const { return record_; }

 private:
  Record record_;
};

// Where a keyset sweep stands: the last record seen. Empty = from the beginning; updated_on
// without sys_id = from that time on, that second included.
struct Cursor {
  std::string updated_on;  // "yyyy-MM-dd HH:mm:ss", UTC
  std::string sys_id;
  bool operator==(const Cursor&) const = default;
};

struct ImportResult {
  std::string status;  // "inserted", "updated", "ignored", "skipped", "error"
  std::string sys_id;  // of the target record
  std::string table;   // the target table
  std::string error;   // when status is "error"
};

struct ClientStats {
  std::int64_t requests = 0;         // HTTP requests sent, retries and token requests included
  std::int64_t retries = 0;          // of which retries
  std::int64_t throttled = 0;        // 429 answers
  std::int64_t token_refreshes = 0;  // OAuth tokens obtained after the first one
  std::string last_error;            // the last failure seen, retried or not
};

class Client {
 public:
  // Throws std::invalid_argument for settings that could never work (no base URL, a base URL
  // with a path, http:// to anything but 127.0.0.1/localhost, no username or password, oauth
  // without client id and secret, unreadable CA, certificate or key file, a certificate
  // without its key, non-positive limits). Every method throws std::invalid_argument for a
  // table or field name that is not letters, digits and '_' ('.' too in read field lists).
  explicit Client(ClientSettings settings);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // GET /api/now/table/{table}/{sys_id}; nullopt on 404 (missing or hidden by an ACL).
  // `fields` empty = all. Failures throw Error (as do those of every method below).
  std::optional<Record> get(const std::string& table, const std::string& sys_id,
                            const std::vector<std::string>& fields = {});

  // Every record matching `encoded_query`, page by page (`page` is called once per page, in
  // order, possibly with an empty page), following the Link header's next URL until there
  // is none. `fields` empty = all. A page the instance cancels ("maximum execution time
  // exceeded") is fetched again with half the limit. A next link to another origin than
  // base_url is refused (Error).
  void list(const std::string& table, const std::string& encoded_query,
            const std::vector<std::string>& fields,
            const std::function<void(std::vector<Record>&&)>& page);

  // The records updated after `from` in (sys_updated_on, sys_id) order, by keyset queries
  // (`sys_updated_on>X^NQsys_updated_on=X^sys_id>Y^ORDERBYsys_updated_on^ORDERBYsys_id`,
  // plus `extra_query` AND-ed to both groups when not empty). `page` gets each page and the
  // cursor after it; returning false stops the sweep. Returns the final cursor. `fields`
  // must be empty or contain sys_id and sys_updated_on; `extra_query` must not contain ^NQ or
  // ORDERBY (std::invalid_argument). `page` is called for non-empty pages only: a page whose
  // rows ACLs all hid is skipped by following its next link.
  // `order_field` replaces sys_updated_on for tables whose rows never change and are swept
  // by creation (sys_journal_field by sys_created_on); the cursor then holds its value.
  // The next page is read on another thread while `page` runs on the caller's.
  Cursor sweep(const std::string& table, const Cursor& from, const std::string& extra_query,
               const std::vector<std::string>& fields,
               const std::function<bool(std::vector<Record>&&, const Cursor&)>& page,
               const std::string& order_field = "sys_updated_on");

  // Creates one record, at most once: first looks for a record whose `key_field` (e.g.
  // "correlation_id") equals `fields.at(key_field)` and returns it unchanged if there is one;
  // otherwise POSTs. When a POST fails without a definite answer (time-out, dropped
  // connection, 5xx, HTML), the lookup runs again before any new POST. Returns the record
  // as stored (with sys_id, number, sys_mod_count). The lookup matches the key exactly (the
  // query may ignore case); std::invalid_argument when the key value is empty or cannot be
  // queried exactly ('^', control characters, edge spaces, "javascript:"), or when the
  // looked-up records lack `key_field` (an unknown field, which the instance would drop
  // from the query). KeyNotStored when the record was created without the key as sent.
  Record create_unique(const std::string& table, const Record& fields,
                       const std::string& key_field);

  // PATCH /api/now/table/{table}/{sys_id} (idempotent: retried). Returns the record as
  // stored. Error with status 404 when it does not exist.
  // `repeatable` false: the PATCH adds something (a comment or work note becomes a journal
  // entry), so one that may have been applied (no answer, a 5xx) is not sent again; it
  // fails with Error, and the caller finds out what landed.
  Record update(const std::string& table, const std::string& sys_id, const Record& fields,
                bool repeatable = true);

  // POST /api/now/import/{staging_table} with one row; the transform map's coalesce field
  // makes a retry update rather than duplicate, so it is retried like a read.
  ImportResult import_row(const std::string& staging_table, const Record& row);

  ClientStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A field name the Table API can be asked for: letters, digits and '_', with '.' between the
// parts of a dot-walked one ("caller_id.name").
bool is_field_name(std::string_view name);

// "yyyy-MM-dd HH:mm:ss" (UTC) <-> epoch seconds; std::invalid_argument naming the text when
// it is not such a date-time.
std::int64_t parse_glide_datetime(const std::string& text);
std::string format_glide_datetime(std::int64_t epoch_seconds);

}  // namespace slmhub::servicenow
