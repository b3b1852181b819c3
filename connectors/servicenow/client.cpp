#include "client.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>

#include "curl_transport.hpp"
#include "link_header.hpp"
#include "rate_budget.hpp"
#include "records.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/json.hpp"

namespace slmhub::servicenow {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Error texts quote ServiceNow's messages up to this length.
constexpr std::size_t kMaxQuoted = 300;
// Raw values only, and references as bare sys_ids, on every read and write.
constexpr const char* kRawValues =
    "sysparm_display_value=false&sysparm_exclude_reference_link=true";
constexpr const char* kJson = "application/json";
constexpr const char* kForm = "application/x-www-form-urlencoded";
constexpr const char* kCancelled = "maximum execution time exceeded";

// `text` on one line for an error message: control characters as spaces, cut at `max`.
std::string one_line(std::string_view text, std::size_t max = kMaxQuoted) {
  std::string out;
  for (const char c : text.substr(0, max)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) ? ' ' : c;
  }
  if (text.size() > max) out += "...";
  return out;
}

std::string lowered(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool has_control(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

// Table names ("incident", "u_custom", "x_acme_app_thing") and field names, which may be
// dot-walked ("caller_id.name") where reading.
bool is_name(std::string_view text, bool dots) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [dots](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || (dots && c == '.');
  });
}

void check_table(const std::string& table) {
  if (!is_name(table, false)) {
    throw std::invalid_argument("ServiceNow: the table name " + quote_text(table) +
                                " must be letters, digits and '_'");
  }
}

void check_fields(const std::vector<std::string>& fields) {
  for (const auto& field : fields) {
    if (!is_field_name(field)) {
      throw std::invalid_argument("ServiceNow: the field name " + quote_text(field) +
                                  " must be letters, digits, '_' and '.'");
    }
  }
}

std::string joined(const std::vector<std::string>& fields) {
  std::string out;
  for (const auto& field : fields) out += (out.empty() ? "" : ",") + field;
  return out;
}

bool is_json_type(const std::string& content_type) {
  const std::string type = lowered(content_type.substr(0, content_type.find(';')));
  return type.find("application/json") != std::string::npos || type.ends_with("+json");
}

std::string attempts_text(int attempts) {
  return std::to_string(attempts) + (attempts == 1 ? " attempt" : " attempts");
}

// How one attempt ended.
struct Outcome {
  enum class Kind {
    ok,
    retry,         // worth another attempt
    unauthorized,  // 401: a new OAuth token may help
    cancelled,     // "Transaction cancelled: maximum execution time exceeded"
    fatal,
  } kind = Kind::ok;
  bool ambiguous = false;  // a write may or may not have been done
  // No answer came (a time-out, a dropped connection) or a gateway gave up waiting (502, 504):
  // the instance may still be working on the request, and commit it later.
  bool may_still_run = false;
  int status = 0;
  std::string message, detail;
  std::string text;  // what happened, for error messages
  std::optional<std::chrono::seconds> retry_after;
  Json json;  // the parsed body when ok
  // A list page's records when ok and list_records() could read them (json stays empty).
  std::optional<std::vector<Record>> records;
};

// Signals inside the client, turned into Error or handled before leaving it.
struct AmbiguousWrite {
  Outcome outcome;
  int attempts;
};
struct TransactionCancelled {
  Outcome outcome;
};

// ServiceNow's error envelope {"error": {"message", "detail"}}, or an OAuth error
// {"error": "...", "error_description": "..."}.
void read_envelope(const std::string& body, Outcome& outcome) {
  Json json = Json::parse(body, nullptr, false);
  if (!json.is_object()) return;
  const auto error = json.find("error");
  if (error == json.end()) return;
  if (error->is_object()) {
    if (const auto m = error->find("message"); m != error->end() && !m->is_null()) {
      outcome.message = field_value(*m);
    }
    if (const auto d = error->find("detail"); d != error->end() && !d->is_null()) {
      outcome.detail = field_value(*d);
    }
  } else if (error->is_string()) {
    outcome.message = error->get<std::string>();
    if (const auto d = json.find("error_description"); d != json.end() && d->is_string()) {
      outcome.detail = d->get<std::string>();
    }
  }
}

// An HTTP-date in its preferred form (RFC 9110 §5.6.7, "Sun, 06 Nov 1994 08:49:37 GMT") as
// epoch seconds; the obsolete forms are left to the back-off.
std::optional<std::int64_t> parse_http_date(const std::string& text) {
  static constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  char weekday[4] = {}, month[4] = {};
  int day = 0, year = 0, hour = 0, minute = 0, second = 0, used = 0;
  if (text.size() != 29 ||
      std::sscanf(text.c_str(), "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", weekday, &day,
                  month, &year, &hour, &minute, &second, &used) != 7 ||
      used != 29) {
    return std::nullopt;
  }
  const auto at = kMonths.find(month);
  if (at == std::string_view::npos || at % 3 != 0) return std::nullopt;
  char glide[20];
  std::snprintf(glide, sizeof glide, "%04d-%02d-%02d %02d:%02d:%02d", year,
                static_cast<int>(at / 3 + 1), day, hour, minute, second);
  try {
    return parse_glide_datetime(glide);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

std::optional<std::chrono::seconds> parse_retry_after(const std::string& text,
                                                      std::chrono::system_clock::time_point now) {
  std::int64_t seconds = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || seconds < 0) {
    // A date (a proxy's 503 says when to come back), or nonsense: then the back-off decides.
    const auto date = parse_http_date(text);
    if (!date) return std::nullopt;
    seconds = std::max<std::int64_t>(
        0,
        *date - std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  }
  return std::chrono::seconds(std::min<std::int64_t>(seconds, 365LL * 24 * 3600));
}

struct Call {
  std::string method = "GET";
  std::string url;
  std::string where;  // the URL without its query, for messages
  std::string body;
  std::string content_type;
  bool token_request = false;  // to /oauth_token.do: no authentication
  bool not_found_ok = false;   // 404 is an answer (get)
  // A list page: a cancelled transaction is the caller's to handle (it asks for a smaller
  // page), and the records are read by list_records() when it can.
  bool list = false;
  bool create = false;     // ambiguous failures go back to the caller, never retried here
  int prior_attempts = 0;  // attempts of the same write made before this call
  bool repeat = false;     // asks again for what an earlier call asked (a smaller page)
};

struct Reply {
  int status = 0;
  Json json;
  std::optional<std::vector<Record>> records;  // see Outcome::records
  std::vector<std::string> links;
};

struct Page {
  std::vector<Record> records;
  std::optional<std::string> next;
};

struct Token {
  std::string access, refresh;
  Clock::time_point renew_at{};
  bool granted = false;  // a token was obtained before (the next one is a refresh)
};

}  // namespace

struct Client::Impl {
  ClientSettings settings;
  std::string base;  // base_url without a trailing slash
  Origin origin;
  ConnectionPool pool;
  RateBudget budget;

  mutable std::mutex stats_mutex;
  ClientStats stats;
  std::mutex random_mutex;
  std::mt19937_64 random{std::random_device{}()};
  std::mutex token_mutex;
  Token token;

  Impl(ClientSettings s, std::string b, Origin o)
      : settings(std::move(s)),
        base(std::move(b)),
        origin(std::move(o)),
        pool(settings, settings.max_concurrency),
        budget(settings.requests_per_second, [this](milliseconds d) { pause(d); }) {}

  void pause(milliseconds duration) {
    if (duration <= milliseconds::zero()) return;
    if (settings.sleep) {
      settings.sleep(duration);
    } else {
      std::this_thread::sleep_for(duration);
    }
  }

  // Full jitter: uniformly 0 .. min(cap, base * 2^(failures - 1)).
  milliseconds backoff(int failures) {
    const int doublings = std::clamp(failures - 1, 0, 30);
    const std::int64_t base_ms = settings.backoff_base.count();
    const std::int64_t cap_ms = settings.backoff_cap.count();
    const std::int64_t ceiling =
        base_ms > (cap_ms >> doublings) ? cap_ms : std::min(cap_ms, base_ms << doublings);
    std::uniform_int_distribution<std::int64_t> pick(0, std::max<std::int64_t>(ceiling, 0));
    std::lock_guard lock(random_mutex);
    return milliseconds(pick(random));
  }

  void note_request(bool retry) {
    std::lock_guard lock(stats_mutex);
    ++stats.requests;
    if (retry) ++stats.retries;
  }

  void note_failure(const std::string& text, bool throttled) {
    std::lock_guard lock(stats_mutex);
    stats.last_error = text;
    if (throttled) ++stats.throttled;
  }

  std::string where_text(const std::string& where) const { return "ServiceNow " + where; }

  Error error(const Call& call, const Outcome& outcome, int attempts) const {
    return Error(where_text(call.where) + ": " + outcome.text + " after " + attempts_text(attempts),
                 outcome.status, outcome.message, outcome.detail);
  }

  // ---- one attempt ---------------------------------------------------------------------

  Outcome judge(const Call& call, const HttpResponse& response) const {
    Outcome outcome;
    if (response.failure != TransportFailure::none) {
      outcome.text = "no response: " + one_line(response.failure_text);
      if (response.failure == TransportFailure::refused) {
        outcome.kind = Outcome::Kind::fatal;
      } else {
        outcome.kind = Outcome::Kind::retry;
        outcome.ambiguous = response.failure == TransportFailure::lost;
        outcome.may_still_run = outcome.ambiguous;
      }
      return outcome;
    }
    outcome.status = static_cast<int>(response.status);
    const std::string status = std::to_string(response.status);
    if (response.status >= 200 && response.status < 300) {
      if (response.status == 204) return outcome;
      if (!is_json_type(response.content_type)) {
        outcome.kind = Outcome::Kind::retry;
        outcome.ambiguous = true;
        outcome.text =
            status + " with " +
            (response.content_type.empty() ? std::string("no content type")
                                           : "content type " + one_line(response.content_type)) +
            " instead of JSON (a hibernating instance answers with an HTML page)";
        return outcome;
      }
      if (call.list) {
        outcome.records = list_records(response.body);
        if (outcome.records) return outcome;
      }
      try {
        outcome.json = parse_json(response.body);
      } catch (const std::exception& e) {
        outcome.kind = Outcome::Kind::retry;
        outcome.ambiguous = true;
        outcome.text = status + " with malformed JSON: " + one_line(e.what());
      }
      return outcome;
    }
    read_envelope(response.body, outcome);
    outcome.text =
        status + " " +
        (outcome.message.empty() ? std::string("(no error message)") : one_line(outcome.message)) +
        (outcome.detail.empty() ? "" : " (" + one_line(outcome.detail) + ")");
    if (lowered(outcome.message + " " + outcome.detail).find(kCancelled) != std::string::npos) {
      outcome.kind = Outcome::Kind::cancelled;
      outcome.ambiguous = true;
      return outcome;
    }
    switch (response.status) {
      case 401:
        outcome.kind = Outcome::Kind::unauthorized;
        return outcome;
      case 404:
        outcome.kind = call.not_found_ok ? Outcome::Kind::ok : Outcome::Kind::fatal;
        return outcome;
      case 429:
      case 503:
        // Refused before any work was done (429), or unavailable (503, which may also come
        // from a proxy after the instance did the work).
        outcome.kind = Outcome::Kind::retry;
        outcome.ambiguous = response.status == 503;
        outcome.retry_after =
            parse_retry_after(response.retry_after, std::chrono::system_clock::now());
        return outcome;
      case 408:
      case 500:
      case 502:
      case 504:
        outcome.kind = Outcome::Kind::retry;
        outcome.ambiguous = true;
        outcome.may_still_run = response.status == 502 || response.status == 504;
        return outcome;
      default:
        outcome.kind = Outcome::Kind::fatal;
        return outcome;
    }
  }

  // One request with its retries; throws Error when it fails for good, AmbiguousWrite for a
  // create that may have been done, TransactionCancelled for a list page.
  Reply call(const Call& call) {
    int attempts = call.prior_attempts;
    bool renewed = false;
    Clock::time_point waited_until{};
    while (true) {
      ++attempts;
      HttpRequest request{call.method, call.url, call.body,  call.content_type,
                          "",          false,    call.create};
      if (!call.token_request) {
        if (settings.auth == ClientSettings::Auth::oauth) {
          request.bearer = access_token();
        } else {
          request.basic_auth = true;
        }
      }
      // A hold longer than the back-off cap (a Retry-After of an hour) is not sat out by
      // every caller in turn: each hears at once, and the instance is left alone meanwhile.
      if (const auto held = budget.held_until();
          held > waited_until && held - Clock::now() > settings.backoff_cap) {
        const auto left = std::chrono::ceil<std::chrono::seconds>(held - Clock::now());
        throw Error(where_text(call.where) +
                        ": not sent: the instance asked for a pause (Retry-After) that lasts " +
                        std::to_string(left.count()) + " s more, longer than the back-off cap of " +
                        std::to_string(settings.backoff_cap.count()) + " ms",
                    429, "", "");
      }
      HttpResponse response;
      {
        auto connection = pool.acquire();
        budget.take(waited_until);
        note_request(attempts > 1 || call.repeat);
        response = connection->perform(request);
      }
      Outcome outcome = judge(call, response);
      if (outcome.kind == Outcome::Kind::ok) {
        return Reply{outcome.status, std::move(outcome.json), std::move(outcome.records),
                     std::move(response.links)};
      }
      note_failure(where_text(call.where) + ": " + outcome.text, outcome.status == 429);
      switch (outcome.kind) {
        case Outcome::Kind::unauthorized:
          // An expired or revoked token: a new one, once per request.
          if (!call.token_request && settings.auth == ClientSettings::Auth::oauth && !renewed) {
            renewed = true;
            renew_token(request.bearer);
            continue;
          }
          throw error(call, outcome, attempts);
        case Outcome::Kind::cancelled:
          if (call.list) throw TransactionCancelled{std::move(outcome)};
          if (outcome.status < 500) throw error(call, outcome, attempts);
          break;  // retried like any 5xx
        case Outcome::Kind::fatal:
          throw error(call, outcome, attempts);
        default:
          break;
      }
      if (call.create && outcome.ambiguous) throw AmbiguousWrite{std::move(outcome), attempts};
      if (attempts >= settings.max_attempts) throw error(call, outcome, attempts);
      if (outcome.retry_after) {
        const milliseconds wait = *outcome.retry_after;
        if (wait > settings.backoff_cap) {
          outcome.text += "; Retry-After asks for " + std::to_string(outcome.retry_after->count()) +
                          " s, longer than the back-off cap of " +
                          std::to_string(settings.backoff_cap.count()) + " ms";
          // Every caller hears of it, not only this one.
          budget.hold_until(Clock::now() + wait);
          throw error(call, outcome, attempts);
        }
        // Every caller of this instance waits, not only this one.
        waited_until = Clock::now() + wait;
        budget.hold_until(waited_until);
        pause(wait);
      } else {
        pause(backoff(attempts - call.prior_attempts));
      }
    }
  }

  // ---- OAuth -----------------------------------------------------------------------------

  std::string access_token() {
    std::lock_guard lock(token_mutex);
    if (token.access.empty() || Clock::now() >= token.renew_at) obtain_token();
    return token.access;
  }

  // After a 401 with `rejected`: a new token, unless another caller already got one.
  void renew_token(const std::string& rejected) {
    std::lock_guard lock(token_mutex);
    if (token.access != rejected) return;
    obtain_token();
  }

  // With the token mutex held: the refresh token when there is one, else (or when it is
  // refused) the password grant.
  void obtain_token() {
    const bool renewal = token.granted;
    if (!token.refresh.empty()) {
      try {
        grant("grant_type=refresh_token&client_id=" + percent_encode(settings.client_id) +
              "&client_secret=" + percent_encode(settings.client_secret) +
              "&refresh_token=" + percent_encode(token.refresh));
        count_refresh();
        return;
      } catch (const Error& e) {
        // A refresh token expired or revoked is refused with a 4xx: the password grant
        // may still work. No answer at all would not be different for the password grant.
        if (e.status() < 400 || e.status() >= 500) throw;
        token.refresh.clear();
      }
    }
    grant("grant_type=password&client_id=" + percent_encode(settings.client_id) +
          "&client_secret=" + percent_encode(settings.client_secret) + "&username=" +
          percent_encode(settings.username) + "&password=" + percent_encode(settings.password));
    if (renewal) count_refresh();
  }

  void count_refresh() {
    std::lock_guard lock(stats_mutex);
    ++stats.token_refreshes;
  }

  void grant(const std::string& form) {
    Call c;
    c.method = "POST";
    c.url = base + "/oauth_token.do";
    c.where = c.url;
    c.body = form;
    c.content_type = kForm;
    c.token_request = true;
    const Reply reply = this->call(c);
    const auto invalid = [&](const std::string& what) {
      const std::string text = where_text(c.where) + ": the token response " + what;
      note_failure(text, false);
      return Error(text, reply.status, "", "");
    };
    if (!reply.json.is_object()) throw invalid("is not a JSON object");
    const auto access = reply.json.find("access_token");
    if (access == reply.json.end() || !access->is_string() || access->get<std::string>().empty()) {
      throw invalid("has no access_token");
    }
    std::int64_t lifetime_s = 1800;  // ServiceNow's default, when not said
    if (const auto expires = reply.json.find("expires_in"); expires != reply.json.end()) {
      const std::string text = field_value(*expires);
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), lifetime_s);
      if (text.empty() || error != std::errc() || end != text.data() + text.size() ||
          lifetime_s <= 0) {
        throw invalid("has an expires_in of " + quote_text(text));
      }
    }
    token.access = access->get<std::string>();
    if (const auto refresh = reply.json.find("refresh_token");
        refresh != reply.json.end() && refresh->is_string()) {
      token.refresh = refresh->get<std::string>();
    }
    // Renewed a little before it expires: a tenth of its life, at most a minute.
    const milliseconds lifetime = std::chrono::seconds(lifetime_s);
    token.renew_at =
        Clock::now() + lifetime - std::min<milliseconds>(lifetime / 10, std::chrono::seconds(60));
    token.granted = true;
  }

  // ---- pages -------------------------------------------------------------------------------

  std::string table_where(const std::string& table) const {
    return base + "/api/now/table/" + table;
  }

  std::string list_url(const std::string& table, const std::string& query,
                       const std::vector<std::string>& fields) const {
    std::string url = table_where(table) + "?" + kRawValues;
    if (!query.empty()) url += "&sysparm_query=" + percent_encode(query);
    if (!fields.empty()) url += "&sysparm_fields=" + percent_encode(joined(fields));
    return url + "&sysparm_limit=" + std::to_string(settings.page_size);
  }

  // The next page's URL from a page's Link header: on the instance only, asking for raw
  // values whatever the link says, and never a page already fetched.
  std::optional<std::string> next_url(const std::string& where, const Reply& reply,
                                      std::set<std::string>& visited) {
    std::optional<std::string> next = find_next_link(reply.links);
    if (!next) return std::nullopt;
    std::string url = *next;
    if (url.starts_with("/") && !url.starts_with("//")) url = base + url;
    const auto link_origin = origin_of(url);
    if (!link_origin || *link_origin != origin) {
      const std::string text = where_text(where) + ": the next page's link '" + one_line(*next) +
                               "' is not on " + origin.text() + "; it was not followed";
      note_failure(text, false);
      throw Error(text, reply.status, "", "");
    }
    url = with_query_param(url, "sysparm_display_value", "false");
    url = with_query_param(url, "sysparm_exclude_reference_link", "true");
    if (!visited.insert(url).second) {
      const std::string text = where_text(where) + ": the next page's link '" + one_line(*next) +
                               "' names a page already fetched";
      note_failure(text, false);
      throw Error(text, reply.status, "", "");
    }
    return url;
  }

  // One page; a page the instance gave up on ("maximum execution time exceeded") is asked
  // for again with half the limit, down to one record.
  Page fetch_page(const std::string& where, const std::string& first_url,
                  std::set<std::string>& visited) {
    Call c;
    c.url = first_url;
    c.where = where;
    c.list = true;
    Reply reply;
    while (true) {
      try {
        reply = call(c);
        break;
      } catch (TransactionCancelled& cancelled) {
        std::int64_t limit = settings.page_size;
        if (const auto text = query_param(c.url, "sysparm_limit")) {
          std::from_chars(text->data(), text->data() + text->size(), limit);
        }
        if (limit <= 1) {
          cancelled.outcome.text += " with sysparm_limit=1";
          throw Error(where_text(where) + ": " + cancelled.outcome.text, cancelled.outcome.status,
                      cancelled.outcome.message, cancelled.outcome.detail);
        }
        c.url = with_query_param(c.url, "sysparm_limit", std::to_string(limit / 2));
        c.repeat = true;
      }
    }
    Page page;
    if (reply.records) {
      page.records = std::move(*reply.records);
    } else {
      const auto result = reply.json.is_object() ? reply.json.find("result") : reply.json.end();
      if (result == reply.json.end() || !result->is_array()) {
        const std::string text = where_text(where) + ": a list answer without a \"result\" array";
        note_failure(text, false);
        throw Error(text, reply.status, "", "");
      }
      page.records.reserve(result->size());
      for (const auto& item : *result) {
        auto record = to_record(item);
        if (!record) {
          const std::string text =
              where_text(where) +
              ": a list answer with a result that is not a record: " + one_line(item.dump());
          note_failure(text, false);
          throw Error(text, reply.status, "", "");
        }
        page.records.push_back(std::move(*record));
      }
    }
    page.next = next_url(where, reply, visited);
    return page;
  }

  Record single_record(const Call& c, const Reply& reply) {
    const auto result = reply.json.is_object() ? reply.json.find("result") : reply.json.end();
    std::optional<Record> record;
    if (result != reply.json.end()) record = to_record(*result);
    if (!record) {
      const std::string text = where_text(c.where) + ": a " + std::to_string(reply.status) +
                               " answer without a \"result\" record";
      note_failure(text, false);
      throw Error(text, reply.status, "", "");
    }
    return std::move(*record);
  }

  // ---- create_unique -------------------------------------------------------------------

  // The first record whose `key` is exactly `value`. A record without the field means the
  // query was widened to everything (an unknown field name drops its term): refused.
  std::optional<Record> find_by_key(const std::string& table, const std::string& key,
                                    const std::string& value) {
    const std::string where = table_where(table);
    std::string url = list_url(table, key + "=" + value, {});
    std::set<std::string> visited{url};
    while (true) {
      Page page = fetch_page(where, url, visited);
      for (auto& record : page.records) {
        const auto found = record.find(key);
        if (found == record.end()) {
          throw std::invalid_argument(where_text(where) + ": the records have no field " +
                                      quote_text(key) +
                                      ", so it cannot identify a record (ServiceNow ignores "
                                      "unknown fields in queries)");
        }
        // '=' in an encoded query may ignore case; the key is exact.
        if (found->second == value) return std::move(record);
      }
      if (!page.next) return std::nullopt;
      url = *page.next;
    }
  }
};

Client::Client(ClientSettings settings) {
  const auto invalid = [](const std::string& what) {
    return std::invalid_argument("ServiceNow settings: " + what);
  };
  std::string base = settings.base_url;
  while (base.ends_with("/")) base.pop_back();
  const auto origin = origin_of(base);
  const auto scheme_end = base.find("://");
  if (!origin || base.find_first_of("/?#", scheme_end + 3) != std::string::npos ||
      has_control(base) || base.find(' ') != std::string::npos) {
    throw invalid("base_url " + quote_text(settings.base_url) +
                  " must be https://host[:port] (the instance, without a path)");
  }
  if (origin->scheme == "http" && origin->host != "127.0.0.1" && origin->host != "localhost" &&
      origin->host != "[::1]") {
    throw invalid("base_url " + quote_text(settings.base_url) +
                  ": http:// is accepted for a simulator on 127.0.0.1 or localhost only; use "
                  "https://");
  }
  if (settings.username.empty() || has_control(settings.username) ||
      (settings.auth == ClientSettings::Auth::basic &&
       settings.username.find(':') != std::string::npos)) {
    throw invalid("username " + quote_text(settings.username) +
                  " must be set, without control characters (or ':' for basic auth)");
  }
  if (settings.password.empty() || has_control(settings.password)) {
    throw invalid("the password must be set, without control characters");
  }
  if (settings.auth == ClientSettings::Auth::oauth &&
      (settings.client_id.empty() || settings.client_secret.empty())) {
    throw invalid("OAuth needs client_id and client_secret");
  }
  const auto readable = [&](const std::string& path, const std::string& what) {
    if (!path.empty() && !std::ifstream(path)) {
      throw invalid("the " + what + " " + quote_text(path) + " cannot be read");
    }
  };
  readable(settings.ca_file, "CA file");
  readable(settings.client_certificate, "client certificate");
  readable(settings.client_key, "client key");
  if (settings.client_certificate.empty() != settings.client_key.empty()) {
    throw invalid("mutual TLS needs both client_certificate and client_key");
  }
  if (settings.connect_timeout <= milliseconds::zero() ||
      settings.request_timeout <= milliseconds::zero()) {
    throw invalid("connect_timeout and request_timeout must be positive");
  }
  if (settings.max_attempts < 1) throw invalid("max_attempts must be at least 1");
  if (settings.backoff_base <= milliseconds::zero() ||
      settings.backoff_cap < settings.backoff_base) {
    throw invalid("backoff_base must be positive and backoff_cap at least backoff_base");
  }
  if (settings.max_concurrency < 1) throw invalid("max_concurrency must be at least 1");
  if (settings.requests_per_second < 0) {
    throw invalid("requests_per_second must be 0 (unlimited) or more");
  }
  if (settings.page_size < 1 || settings.page_size > 10000) {
    throw invalid("page_size must be 1 to 10000");
  }
  check_curl_supports(origin->scheme);
  Origin o = *origin;
  impl_ = std::make_unique<Impl>(std::move(settings), std::move(base), std::move(o));
}

Client::~Client() = default;

std::optional<Record> Client::get(const std::string& table, const std::string& sys_id,
                                  const std::vector<std::string>& fields) {
  check_table(table);
  check_fields(fields);
  if (sys_id.empty()) throw std::invalid_argument("ServiceNow get: the sys_id is empty");
  Call c;
  c.where = impl_->table_where(table) + "/" + percent_encode(sys_id);
  c.url = c.where + "?" + kRawValues;
  if (!fields.empty()) c.url += "&sysparm_fields=" + percent_encode(joined(fields));
  c.not_found_ok = true;
  const Reply reply = impl_->call(c);
  if (reply.status == 404) return std::nullopt;
  return impl_->single_record(c, reply);
}

void Client::list(const std::string& table, const std::string& encoded_query,
                  const std::vector<std::string>& fields,
                  const std::function<void(std::vector<Record>&&)>& page) {
  check_table(table);
  check_fields(fields);
  const std::string where = impl_->table_where(table);
  std::string url = impl_->list_url(table, encoded_query, fields);
  std::set<std::string> visited{url};
  while (true) {
    Page fetched = impl_->fetch_page(where, url, visited);
    page(std::move(fetched.records));
    if (!fetched.next) return;
    url = *fetched.next;
  }
}

Cursor Client::sweep(const std::string& table, const Cursor& from, const std::string& extra_query,
                     const std::vector<std::string>& fields,
                     const std::function<bool(std::vector<Record>&&, const Cursor&)>& page,
                     const std::string& order_field) {
  check_fields({order_field});
  check_table(table);
  check_fields(fields);
  if (!fields.empty() && (std::find(fields.begin(), fields.end(), "sys_id") == fields.end() ||
                          std::find(fields.begin(), fields.end(), order_field) == fields.end())) {
    throw std::invalid_argument("ServiceNow sweep of " + table +
                                ": the fields must include sys_id and " + order_field);
  }
  const std::string upper_extra = [&] {
    std::string text = extra_query;
    for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return text;
  }();
  if (upper_extra.find("^NQ") != std::string::npos ||
      upper_extra.find("ORDERBY") != std::string::npos || extra_query.starts_with("^") ||
      extra_query.ends_with("^")) {
    throw std::invalid_argument("ServiceNow sweep of " + table + ": the extra query " +
                                quote_text(extra_query) +
                                " must be terms joined by ^ or ^OR, without ^NQ or ORDERBY");
  }
  if (from.updated_on.empty() && !from.sys_id.empty()) {
    throw std::invalid_argument("ServiceNow sweep of " + table +
                                ": a cursor with a sys_id needs its updated_on");
  }
  if (!from.updated_on.empty()) parse_glide_datetime(from.updated_on);
  if (from.sys_id.find('^') != std::string::npos || has_control(from.sys_id)) {
    throw std::invalid_argument("ServiceNow sweep of " + table + ": the cursor's sys_id " +
                                quote_text(from.sys_id) + " cannot go into a query");
  }

  const std::string where = impl_->table_where(table);
  const std::string extra = extra_query.empty() ? "" : "^" + extra_query;
  const std::string kOrder = "ORDERBY" + order_field + "^ORDERBYsys_id";
  // The first page after `after` that shows rows (every row of a page can be hidden by
  // ACLs: then the same query's next page), or an empty page at the end.
  const auto read_after = [&](const Cursor& after) {
    std::string query;
    if (after.updated_on.empty()) {
      query = extra_query.empty() ? kOrder : extra_query + "^" + kOrder;
    } else if (after.sys_id.empty()) {
      query = order_field + ">=" + after.updated_on + extra + "^" + kOrder;
    } else {
      query = order_field + ">" + after.updated_on + extra + "^NQ" + order_field + "=" +
              after.updated_on + "^sys_id>" + after.sys_id + extra + "^" + kOrder;
    }
    std::string url = impl_->list_url(table, query, fields);
    std::set<std::string> visited{url};
    Page fetched = impl_->fetch_page(where, url, visited);
    while (fetched.records.empty() && fetched.next) {
      url = *fetched.next;
      fetched = impl_->fetch_page(where, url, visited);
    }
    return fetched;
  };
  Cursor cursor = from;
  Page fetched = read_after(cursor);
  while (true) {
    if (fetched.records.empty()) return cursor;
    const Record& last = fetched.records.back();
    const auto updated = last.find(order_field);
    const auto id = last.find("sys_id");
    if (updated == last.end() || id == last.end() || id->second.empty()) {
      throw Error(impl_->where_text(where) + ": a swept record has no sys_id or " + order_field,
                  200, "", "");
    }
    Cursor next{updated->second, id->second};
    try {
      parse_glide_datetime(next.updated_on);
    } catch (const std::invalid_argument& e) {
      throw Error(impl_->where_text(where) + ": a swept record's " + order_field + ": " + e.what(),
                  200, "", "");
    }
    if (std::tie(next.updated_on, next.sys_id) <= std::tie(cursor.updated_on, cursor.sys_id)) {
      throw Error(impl_->where_text(where) + ": the sweep would go back from (" +
                      cursor.updated_on + ", " + cursor.sys_id + ") to (" + next.updated_on + ", " +
                      next.sys_id + "); the instance did not order by the query",
                  200, "", "");
    }
    cursor = std::move(next);
    if (!fetched.next) {
      page(std::move(fetched.records), cursor);
      return cursor;
    }
    // The next page's query depends only on this page's last record, so it is read while
    // the caller applies this one: a sweep takes as long as the slower of the instance and
    // the store, not both added up. The read stays within the rate budget like any other.
    std::future<Page> ahead = std::async(std::launch::async, read_after, cursor);
    bool more = false;
    try {
      more = page(std::move(fetched.records), cursor);
    } catch (...) {
      ahead.wait();  // it uses this frame's variables
      throw;
    }
    if (!more) {
      ahead.wait();  // read for nothing; its outcome does not matter
      return cursor;
    }
    fetched = ahead.get();
  }
}

Record Client::create_unique(const std::string& table, const Record& fields,
                             const std::string& key_field) {
  check_table(table);
  if (!is_name(key_field, false)) {
    throw std::invalid_argument("ServiceNow create in " + table + ": the key field " +
                                quote_text(key_field) + " must be letters, digits and '_'");
  }
  const auto key = fields.find(key_field);
  if (key == fields.end() || key->second.empty()) {
    throw std::invalid_argument("ServiceNow create in " + table + ": the key field " +
                                quote_text(key_field) + " must have a value");
  }
  const std::string& value = key->second;
  // A '^' would start another term; "javascript:" is evaluated by the instance.
  if (value.find('^') != std::string::npos || has_control(value) ||
      lowered(value).starts_with("javascript:") || value.front() == ' ' || value.back() == ' ') {
    throw std::invalid_argument("ServiceNow create in " + table + ": the key " + quote_text(value) +
                                " cannot be looked up exactly (no '^', control characters, "
                                "leading or trailing spaces or \"javascript:\")");
  }
  std::string body;
  try {
    body = to_json(fields).dump();
  } catch (const Json::exception&) {
    throw std::invalid_argument("ServiceNow create in " + table +
                                ": the field values must be UTF-8");
  }
  Call c;
  c.method = "POST";
  c.where = impl_->table_where(table);
  c.url = c.where + "?" + kRawValues + "&sysparm_input_display_value=false";
  c.body = std::move(body);
  c.content_type = kJson;
  c.create = true;
  std::optional<AmbiguousWrite> last;
  while (true) {
    if (auto found = impl_->find_by_key(table, key_field, value)) return std::move(*found);
    if (last && last->attempts >= impl_->settings.max_attempts) {
      last->outcome.text += "; no record with " + key_field + " " + quote_text(value) + " exists";
      throw impl_->error(c, last->outcome, last->attempts);
    }
    try {
      const Reply reply = impl_->call(c);
      Record record = impl_->single_record(c, reply);
      const auto stored = record.find(key_field);
      if (stored == record.end() || stored->second != value) {
        const std::string text =
            impl_->where_text(c.where) + ": created record " +
            quote_text(record.count("sys_id") ? record.at("sys_id") : "") + " with " + key_field +
            " " + quote_text(stored == record.end() ? std::string("(missing)") : stored->second) +
            " instead of " + quote_text(value) + "; the field is not stored as sent";
        impl_->note_failure(text, false);
        throw KeyNotStored(text, reply.status, std::move(record));
      }
      return record;
    } catch (AmbiguousWrite& failure) {
      // Maybe created: after the back-off (a slow commit may still land), look again before
      // any new POST.
      c.prior_attempts = failure.attempts;
      impl_->pause(impl_->backoff(failure.attempts));
      if (failure.outcome.may_still_run) {
        // The instance may still be inserting it (a transaction runs on after its client
        // gives up): a record not there yet may come, so no second POST now. The caller
        // tries again later (the outbox, after its back-off), looking first.
        if (auto found = impl_->find_by_key(table, key_field, value)) return std::move(*found);
        failure.outcome.text += "; no record with " + key_field + " " + quote_text(value) +
                                " exists yet, and the create may still be running in the "
                                "instance: not sent again now";
        throw impl_->error(c, failure.outcome, failure.attempts);
      }
      last = std::move(failure);
    }
  }
}

Record Client::update(const std::string& table, const std::string& sys_id, const Record& fields,
                      bool repeatable) {
  check_table(table);
  if (sys_id.empty()) throw std::invalid_argument("ServiceNow update: the sys_id is empty");
  Call c;
  c.method = "PATCH";
  c.where = impl_->table_where(table) + "/" + percent_encode(sys_id);
  c.url = c.where + "?" + kRawValues + "&sysparm_input_display_value=false";
  try {
    c.body = to_json(fields).dump();
  } catch (const Json::exception&) {
    throw std::invalid_argument("ServiceNow update in " + table +
                                ": the field values must be UTF-8");
  }
  c.content_type = kJson;
  c.create = !repeatable;
  try {
    return impl_->single_record(c, impl_->call(c));
  } catch (AmbiguousWrite& failure) {
    failure.outcome.text += "; it may have been applied: not sent again";
    throw impl_->error(c, failure.outcome, failure.attempts);
  }
}

ImportResult Client::import_row(const std::string& staging_table, const Record& row) {
  check_table(staging_table);
  Call c;
  c.method = "POST";
  c.where = impl_->base + "/api/now/import/" + staging_table;
  c.url = c.where;
  try {
    c.body = to_json(row).dump();
  } catch (const Json::exception&) {
    throw std::invalid_argument("ServiceNow import into " + staging_table +
                                ": the field values must be UTF-8");
  }
  c.content_type = kJson;
  const Reply reply = impl_->call(c);
  // {"import_set": "...", "staging_table": "...", "result": [{"status", "sys_id", "table",
  // "error_message" | "status_message", ...}]}
  const auto result = reply.json.is_object() ? reply.json.find("result") : reply.json.end();
  const Json* row_result = nullptr;
  if (result != reply.json.end() && result->is_array() && !result->empty()) {
    row_result = &result->front();
  } else if (result != reply.json.end() && result->is_object()) {
    row_result = &*result;
  }
  if (row_result == nullptr || !row_result->is_object()) {
    const std::string text = impl_->where_text(c.where) + ": an import answer without a row result";
    impl_->note_failure(text, false);
    throw Error(text, reply.status, "", "");
  }
  const auto text_of = [&](const char* name) {
    const auto found = row_result->find(name);
    return found == row_result->end() ? std::string() : field_value(*found);
  };
  ImportResult out;
  out.status = text_of("status");
  out.sys_id = text_of("sys_id");
  out.table = text_of("table");
  out.error = text_of("error_message");
  if (out.error.empty() && out.status == "error") out.error = text_of("status_message");
  return out;
}

ClientStats Client::stats() const {
  std::lock_guard lock(impl_->stats_mutex);
  return impl_->stats;
}

bool is_field_name(std::string_view name) { return is_name(name, true); }

}  // namespace slmhub::servicenow
