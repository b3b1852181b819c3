#include "imap.hpp"

#include <curl/curl.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "slmhub/digest.hpp"
#include "slmhub/json.hpp"
#include "text.hpp"

namespace slmhub::mail {
namespace {

// What a command's untagged responses may add up to (a SEARCH of a huge folder is a few MB).
constexpr std::size_t kMaxCommandResponse = std::size_t{32} << 20;
// Server lines kept per transfer for error messages, and their length there.
constexpr std::size_t kKeptLines = 20;
// UIDs per STORE/MOVE/EXPUNGE command, so command lines stay short for any server.
constexpr std::size_t kUidsPerCommand = 200;

// An IMAP quoted string (RFC 3501 §4.3); check_imap_folder has refused what it cannot hold.
std::string imap_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

// Sorted UIDs as an IMAP sequence set of ranges: "1:3,7,9:10".
std::string uid_set(std::vector<std::uint32_t> uids) {
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  std::string out;
  for (std::size_t i = 0; i < uids.size();) {
    std::size_t j = i;
    while (j + 1 < uids.size() && uids[j + 1] == uids[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(uids[i]);
    if (j > i) out += ':' + std::to_string(uids[j]);
    i = j + 1;
  }
  return out;
}

std::vector<std::vector<std::uint32_t>> chunks(const std::vector<std::uint32_t>& uids) {
  std::vector<std::vector<std::uint32_t>> out;
  for (std::size_t i = 0; i < uids.size(); i += kUidsPerCommand) {
    out.emplace_back(
        uids.begin() + static_cast<std::ptrdiff_t>(i),
        uids.begin() + static_cast<std::ptrdiff_t>(std::min(uids.size(), i + kUidsPerCommand)));
  }
  return out;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = std::min(text.find(' ', start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

template <typename Number>
bool parse_number(std::string_view text, Number& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}

// The number after "[UIDVALIDITY " in a SELECT or EXAMINE response.
std::optional<std::uint32_t> find_uidvalidity(std::string_view responses) {
  const auto at = responses.find("[UIDVALIDITY ");
  if (at == std::string_view::npos) return std::nullopt;
  const auto start = at + 13;
  const auto end = responses.find(']', start);
  std::uint32_t value = 0;
  if (end == std::string_view::npos || !parse_number(responses.substr(start, end - start), value)) {
    return std::nullopt;
  }
  return value;
}

// A transfer on a connection libcurl reused and found dead (the server timed it out or
// restarted): worth one more try on a new connection, after reopening the folder.
class StaleConnection : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

bool is_stale(CURLcode code) {
  return code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR || code == CURLE_GOT_NOTHING;
}

// What one curl_easy_perform collected.
struct Transfer {
  std::string body;  // untagged responses of a custom command, or the fetched message
  std::size_t max_body = kMaxCommandResponse;
  bool too_large = false;
  // Set while fetching: a SELECT in this transfer (libcurl reconnected and opened the folder
  // read-write, where BODY[] would set \Seen) stops it before the FETCH is sent.
  bool forbid_select = false;
  bool saw_select = false;
  std::deque<std::string> lines;  // the last server lines, for error messages
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::size_t bytes = size * count;
  if (transfer->body.size() + bytes > transfer->max_body) {
    transfer->too_large = true;
    std::string().swap(transfer->body);
    return 0;  // makes libcurl stop the transfer
  }
  transfer->body.append(data, bytes);
  return bytes;
}

// libcurl hands every IMAP server line to the header callback.
std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::size_t bytes = size * count;
  std::string_view line(data, bytes);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (transfer->forbid_select && line.starts_with("* OK [UIDVALIDITY ")) {
    transfer->saw_select = true;
    return 0;
  }
  transfer->lines.emplace_back(printable(line));
  if (transfer->lines.size() > kKeptLines) transfer->lines.pop_front();
  return bytes;
}

// Adds the configured CA file to the verification store libcurl set up (system CAs), so it
// is trusted besides them rather than instead of them.
CURLcode add_ca_file(CURL* /*curl*/, void* ssl_context, void* user) {
  const auto* ca_file = static_cast<const std::string*>(user);
  return SSL_CTX_load_verify_locations(static_cast<SSL_CTX*>(ssl_context), ca_file->c_str(),
                                       nullptr) == 1
             ? CURLE_OK
             : CURLE_SSL_CACERT_BADFILE;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("libcurl could not be initialised");
    }
  });
}

}  // namespace

void check_imap_folder(const std::string& folder, const std::string& what) {
  if (folder.empty()) throw std::invalid_argument(what + ": the folder name is empty");
  const bool plain = std::all_of(folder.begin(), folder.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7F;
  });
  if (!plain || folder.size() > 1000) {
    throw std::invalid_argument(what + ": the folder " + quote_text(folder) +
                                " must be printable ASCII of at most 1000 characters (names "
                                "in modified UTF-7 are not supported)");
  }
}

// One libcurl easy handle: a connection it reuses across transfers, logged in, with the
// folder open. libcurl only SELECTs a folder named in a URL when it believes another one is
// selected, so after one transfer through the folder's URL, an EXAMINE sent as a custom
// command leaves the folder read-only on the server while libcurl fetches from it.
class ImapSession::Connection {
 public:
  Connection(const ImapSettings& settings, std::string folder)
      : where_("IMAP server " + endpoint(settings.host, settings.port)),
        ca_file_(settings.ca_file),
        folder_(std::move(folder)) {
    const bool ipv6 = settings.host.find(':') != std::string::npos;
    base_url_ = std::string(settings.tls == ImapSettings::Tls::implicit ? "imaps" : "imap") +
                "://" + (ipv6 ? "[" + settings.host + "]" : settings.host) + ":" +
                std::to_string(settings.port) + "/";
    folder_url_ = base_url_ + percent_encode(folder_);
    curl_ = curl_easy_init();
    if (curl_ == nullptr) throw std::runtime_error(where_ + ": libcurl could not start a session");
    const long timeout_s = std::max(1L, static_cast<long>((settings.timeout_ms + 999) / 1000));
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_ERRORBUFFER, error_);
    set(CURLOPT_USERNAME, settings.username.c_str());
    set(CURLOPT_PASSWORD, settings.password.c_str());
    // STARTTLS is required for imap://, and a server without it is refused before login.
    set(CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
    set(CURLOPT_SSL_VERIFYPEER, 1L);
    set(CURLOPT_SSL_VERIFYHOST, 2L);
    set(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
#if LIBCURL_VERSION_NUM >= 0x075700
    // A fresh store per handshake, so the CA file is added to no store another transfer keeps.
    set(CURLOPT_CA_CACHE_TIMEOUT, 0L);
#endif
    if (!ca_file_.empty()) {
      set(CURLOPT_SSL_CTX_FUNCTION, &add_ca_file);
      set(CURLOPT_SSL_CTX_DATA, static_cast<void*>(&ca_file_));
    }
#if LIBCURL_VERSION_NUM >= 0x075500
    set(CURLOPT_PROTOCOLS_STR, "imap,imaps");
#else
    set(CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_IMAP | CURLPROTO_IMAPS));
#endif
    set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(settings.timeout_ms));
    set(CURLOPT_SERVER_RESPONSE_TIMEOUT, timeout_s);
    // A transfer that moves nothing for the timeout ends; a long one that moves does not.
    set(CURLOPT_LOW_SPEED_LIMIT, 1L);
    set(CURLOPT_LOW_SPEED_TIME, timeout_s);
    set(CURLOPT_WRITEFUNCTION, &on_body);
    set(CURLOPT_HEADERFUNCTION, &on_header);
  }
  ~Connection() { curl_easy_cleanup(curl_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::string& where() const { return where_; }
  const std::string& folder() const { return folder_; }
  std::uint32_t uidvalidity() const { return uidvalidity_; }

  bool has_capability(const std::string& name) const { return capabilities_.count(name) != 0; }

  // After login the server may announce more than before it (RFC 3501 §6.2.3).
  void read_capabilities() {
    capabilities_.clear();
    const std::string responses = command("CAPABILITY", "CAPABILITY");
    for (const auto line : split_lines(responses)) {
      if (!line.starts_with("* CAPABILITY ")) continue;
      for (const auto word : words(line.substr(13))) capabilities_.insert(upper(word));
    }
  }

  // The untagged responses of one command sent as is (libcurl adds the tag).
  std::string command(const std::string& line, const std::string& what) {
    Transfer transfer;
    perform(base_url_, &line, transfer, what);
    if (transfer.too_large) {
      throw std::runtime_error(where_ + ": the response to " + what + " is larger than " +
                               std::to_string(kMaxCommandResponse) + " bytes");
    }
    return std::move(transfer.body);
  }

  // Runs `step` again, once, when it failed on a connection that had died meanwhile; each
  // step begins by opening the folder in the mode it needs.
  template <typename Step>
  auto retrying(Step&& step) {
    try {
      return step();
    } catch (const StaleConnection&) {
      return step();
    }
  }

  // For SEARCH and FETCH of sizes: either mode will do.
  void ensure_open() {
    if (!folder_open_) open_read_only();
  }

  // The folder open read-only on the server, and libcurl believing it selected.
  void open_read_only() {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!curl_selected_) {
        Transfer transfer;
        const std::string noop = "NOOP";
        perform(folder_url_, &noop, transfer, "SELECT " + quote_text(folder_));
        curl_selected_ = true;
      }
      const std::string responses = command("EXAMINE " + imap_string(folder_), "EXAMINE");
      const auto validity = find_uidvalidity(responses);
      if (!validity) {
        throw std::runtime_error(where_ + " opened the folder " + quote_text(folder_) +
                                 " without a UIDVALIDITY");
      }
      if (uidvalidity_ != 0 && *validity != uidvalidity_) {
        throw std::runtime_error(changed(*validity));
      }
      uidvalidity_ = *validity;
      // A reconnection during the EXAMINE left libcurl without a selected folder: again.
      if (curl_selected_) {
        read_only_ = true;
        folder_open_ = true;
        return;
      }
    }
    throw std::runtime_error(where_ + ": the connection kept dropping while opening " +
                             quote_text(folder_));
  }

  // The folder open read-write (for STORE, MOVE, EXPUNGE), with the UIDVALIDITY the UIDs
  // were listed under.
  void open_read_write() {
    const std::string responses = command("SELECT " + imap_string(folder_), "SELECT");
    const auto validity = find_uidvalidity(responses);
    if (!validity) {
      throw std::runtime_error(where_ + " opened the folder " + quote_text(folder_) +
                               " without a UIDVALIDITY");
    }
    if (*validity != uidvalidity_) throw std::runtime_error(changed(*validity));
    read_only_ = false;
    folder_open_ = true;
  }

  // nullopt when the server has no such message (expunged by someone else since listing).
  std::optional<std::string> fetch(std::uint32_t uid, std::size_t max_bytes) {
    // A dead connection, then libcurl's own SELECT on the new one: three tries at most.
    for (int attempt = 0; attempt < 3; ++attempt) {
      Transfer transfer;
      transfer.max_body = max_bytes;
      transfer.forbid_select = true;
      const std::string what = "UID FETCH " + std::to_string(uid);
      CURLcode code = CURLE_OK;
      try {
        if (!read_only_) open_read_only();
        code =
            perform(folder_url_ + "/;UID=" + std::to_string(uid), nullptr, transfer, what, false);
      } catch (const StaleConnection&) {
        continue;
      }
      if (transfer.saw_select) {
        // Stopped before the FETCH; libcurl drops a connection whose transfer failed.
        forget_connection();
        continue;
      }
      if (transfer.too_large) {
        forget_connection();
        throw MessageTooLarge(where_ + ": message UID " + std::to_string(uid) + " in " +
                              quote_text(folder_) + " has more than " + std::to_string(max_bytes) +
                              " bytes");
      }
      if (code == CURLE_OK) return std::move(transfer.body);
      if (code == CURLE_REMOTE_FILE_NOT_FOUND || expunged(transfer)) {
        forget_connection();
        return std::nullopt;
      }
      throw std::runtime_error(failure(what, code, transfer));
    }
    throw std::runtime_error(where_ + ": the connection kept dropping while fetching UID " +
                             std::to_string(uid));
  }

 private:
  template <typename Value>
  void set(CURLoption option, Value value) {
    if (const CURLcode code = curl_easy_setopt(curl_, option, value); code != CURLE_OK) {
      throw std::invalid_argument(where_ +
                                  ": libcurl refused an option: " + curl_easy_strerror(code));
    }
  }

  // Runs one transfer; returns its result code, which is CURLE_OK unless the transfer was
  // stopped on purpose (too large, a SELECT while fetching) or `throw_on_error` is false.
  CURLcode perform(const std::string& url, const std::string* custom, Transfer& transfer,
                   const std::string& what, bool throw_on_error = true) {
    set(CURLOPT_URL, url.c_str());
    set(CURLOPT_CUSTOMREQUEST, custom != nullptr ? custom->c_str() : nullptr);
    set(CURLOPT_WRITEDATA, static_cast<void*>(&transfer));
    set(CURLOPT_HEADERDATA, static_cast<void*>(&transfer));
    error_[0] = '\0';
    const CURLcode code = curl_easy_perform(curl_);
    long connects = 0;
    curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &connects);
    // A new connection: whatever libcurl or the server had open is gone.
    if (connects > 0) forget_connection();
    if (is_stale(code) && connects == 0) {
      forget_connection();
      throw StaleConnection(failure(what, code, transfer));
    }
    if (code == CURLE_OK || transfer.too_large || transfer.saw_select || !throw_on_error) {
      return code;
    }
    throw std::runtime_error(failure(what, code, transfer));
  }

  // After a failed transfer libcurl closes the connection; nothing is open on the next one.
  void forget_connection() {
    curl_selected_ = false;
    read_only_ = false;
    folder_open_ = false;
  }

  // A fetch of a message another session expunged: Dovecot answers "BODY[] NIL" and
  // [EXPUNGEISSUED] (RFC 5530), which libcurl reports as a reply it cannot parse.
  static bool expunged(const Transfer& transfer) {
    return std::any_of(transfer.lines.begin(), transfer.lines.end(), [](const std::string& line) {
      return line.find("[EXPUNGEISSUED]") != std::string::npos ||
             (line.starts_with("* ") && line.ends_with(" NIL)") &&
              line.find(" FETCH (") != std::string::npos);
    });
  }

  std::string failure(const std::string& what, CURLcode code, const Transfer& transfer) const {
    std::string text = where_ + ": " + what + " failed: " +
                       (error_[0] != '\0' ? std::string(error_) : curl_easy_strerror(code));
    // The tagged refusal ("A005 NO [TRYCREATE] Mailbox doesn't exist") says why; libcurl's
    // LOGOUT after a failure comes later and says nothing.
    for (auto line = transfer.lines.rbegin(); line != transfer.lines.rend(); ++line) {
      const auto parts = words(*line);
      if (parts.size() >= 2 && parts[0] != "*" && parts[0] != "+" &&
          (parts[1] == "NO" || parts[1] == "BAD")) {
        text += "; the server said " + quote_text(*line);
        break;
      }
    }
    return text;
  }

  std::string changed(std::uint32_t now) const {
    return where_ + ": the UIDVALIDITY of " + quote_text(folder_) + " changed from " +
           std::to_string(uidvalidity_) + " to " + std::to_string(now) +
           " since its messages were listed; their UIDs may name other messages now, so none "
           "was flagged, moved or removed";
  }

  std::string where_;
  std::string ca_file_;  // the callback reads it during handshakes
  std::string folder_;
  std::string base_url_, folder_url_;
  CURL* curl_ = nullptr;
  char error_[CURL_ERROR_SIZE] = {};
  std::set<std::string> capabilities_;
  std::uint32_t uidvalidity_ = 0;
  bool curl_selected_ = false;  // libcurl believes folder_ is selected on its connection
  bool read_only_ = false;      // the server has folder_ open read-only (EXAMINE)
  bool folder_open_ = false;    // the server has folder_ open, read-only or read-write
};

ImapClient::ImapClient(ImapSettings settings) : settings_(std::move(settings)) {
  const auto invalid = [](const std::string& what) {
    throw std::invalid_argument("IMAP settings: " + what);
  };
  check_server_settings("IMAP settings", settings_.host, settings_.port, settings_.timeout_ms);
  // The host goes into a URL for libcurl: characters with a meaning there are refused too.
  if (settings_.host.find_first_of("/@?#[]") != std::string::npos) {
    invalid("host " + quote_text(settings_.host) + " is not a host name or address");
  }
  if (settings_.username.empty() || has_space_or_control(settings_.username)) {
    invalid("username " + quote_text(settings_.username) +
            " must be set, without spaces or control characters");
  }
  if (settings_.password.empty() ||
      settings_.password.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
    invalid("the password must be set, without line breaks");
  }
  if (!settings_.ca_file.empty() && !std::ifstream(settings_.ca_file)) {
    invalid("the CA file " + quote_text(settings_.ca_file) + " cannot be read");
  }
  global_init();
  const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
  bool imaps = false;
  for (const char* const* protocol = info->protocols; *protocol != nullptr; ++protocol) {
    imaps = imaps || std::string_view(*protocol) == "imaps";
  }
  if (!imaps) invalid(std::string("libcurl ") + info->version + " cannot speak imaps");
  // The CA file is added through OpenSSL's API.
  if (!settings_.ca_file.empty() && (info->ssl_version == nullptr ||
                                     !std::string_view(info->ssl_version).starts_with("OpenSSL"))) {
    invalid(std::string("libcurl ") + info->version + " uses " +
            (info->ssl_version != nullptr ? info->ssl_version : "no TLS library") +
            ", not OpenSSL, so ca_file cannot be added to its trusted CAs");
  }
}

std::unique_ptr<ImapSession> ImapClient::open(const std::string& folder) const {
  check_imap_folder(folder, "IMAP");
  auto connection = std::make_unique<ImapSession::Connection>(settings_, folder);
  connection->read_capabilities();
  connection->open_read_only();
  return std::unique_ptr<ImapSession>(new ImapSession(std::move(connection)));
}

ImapSession::ImapSession(std::unique_ptr<Connection> connection)
    : connection_(std::move(connection)) {}

ImapSession::~ImapSession() = default;

std::uint32_t ImapSession::uidvalidity() const { return connection_->uidvalidity(); }

std::vector<ImapMessage> ImapSession::list(Selection selection, std::size_t max_count,
                                           std::size_t* total, std::size_t max_bytes) {
  Connection& c = *connection_;
  return c.retrying([&] { return list_open(selection, max_count, total, max_bytes); });
}

std::vector<ImapMessage> ImapSession::list_open(Selection selection, std::size_t max_count,
                                                std::size_t* total, std::size_t max_bytes) {
  Connection& c = *connection_;
  c.ensure_open();
  const std::string search =
      selection == Selection::unseen ? "UID SEARCH UNSEEN UNDELETED" : "UID SEARCH UNDELETED";
  std::vector<std::uint32_t> uids;
  const std::string found = c.command(search, "UID SEARCH");
  for (const auto line : split_lines(found)) {
    if (!line.starts_with("* SEARCH")) continue;
    for (const auto word : words(line.substr(8))) {
      std::uint32_t uid = 0;
      if (!parse_number(word, uid) || uid == 0) {
        throw std::runtime_error(c.where() + " sent a malformed SEARCH response " +
                                 quote_text(printable(line)));
      }
      uids.push_back(uid);
    }
  }
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  if (total != nullptr) *total = uids.size();

  // The sizes of `batch` (one UID FETCH); a UID the folder no longer has is absent.
  const auto message_sizes = [&](const std::vector<std::uint32_t>& batch) {
    // "* 12 FETCH (UID 40 RFC822.SIZE 1834)"; other untagged responses may come in between.
    std::map<std::uint32_t, std::size_t> sizes;
    const std::string fetched =
        c.command("UID FETCH " + uid_set(batch) + " (UID RFC822.SIZE)", "UID FETCH (RFC822.SIZE)");
    for (const auto line : split_lines(fetched)) {
      const auto open = line.find('(');
      const auto close = line.rfind(')');
      if (!line.starts_with("* ") || open == std::string_view::npos ||
          close == std::string_view::npos || close < open ||
          line.find(" FETCH ") == std::string_view::npos) {
        continue;
      }
      const auto items = words(line.substr(open + 1, close - open - 1));
      std::optional<std::uint32_t> uid;
      std::optional<std::size_t> size;
      for (std::size_t i = 0; i + 1 < items.size(); ++i) {
        const std::string name = upper(items[i]);
        if (name == "UID") {
          std::uint32_t value = 0;
          if (parse_number(items[i + 1], value)) uid = value;
        } else if (name == "RFC822.SIZE") {
          std::size_t value = 0;
          if (parse_number(items[i + 1], value)) size = value;
        }
      }
      if (uid && size) sizes[*uid] = *size;
    }
    return sizes;
  };
  // Sizes are asked a window at a time, until the windows hold `max_count` messages that fit.
  std::vector<ImapMessage> out;
  std::size_t fitting = 0;
  for (std::size_t from = 0; from < uids.size() && fitting < max_count;) {
    const std::size_t count = std::min(max_count - fitting, uids.size() - from);
    const std::vector<std::uint32_t> window(
        uids.begin() + static_cast<std::ptrdiff_t>(from),
        uids.begin() + static_cast<std::ptrdiff_t>(from + count));
    from += count;
    const auto sizes = message_sizes(window);
    for (const auto uid : window) {
      // A UID without its FETCH line was expunged meanwhile.
      if (const auto found = sizes.find(uid); found != sizes.end()) {
        out.push_back({uid, found->second});
        if (found->second <= max_bytes) ++fitting;
      }
    }
  }
  return out;
}

std::optional<std::string> ImapSession::fetch(std::uint32_t uid, std::size_t max_bytes) {
  return connection_->fetch(uid, max_bytes);
}

void ImapSession::mark_seen(const std::vector<std::uint32_t>& uids) {
  if (uids.empty()) return;
  Connection& c = *connection_;
  c.retrying([&] {
    c.open_read_write();
    for (const auto& chunk : chunks(uids)) {
      c.command("UID STORE " + uid_set(chunk) + " +FLAGS.SILENT (\\Seen)", "UID STORE \\Seen");
    }
  });
}

void ImapSession::remove(const std::vector<std::uint32_t>& uids) {
  if (uids.empty()) return;
  Connection& c = *connection_;
  // Each command can be sent again: flags and expunges of gone UIDs change nothing.
  c.retrying([&] {
    c.open_read_write();
    for (const auto& chunk : chunks(uids)) {
      const std::string set = uid_set(chunk);
      c.command("UID STORE " + set + " +FLAGS.SILENT (\\Deleted)", "UID STORE \\Deleted");
      // RFC 4315 expunges just these; a plain EXPUNGE also removes what others marked
      // \Deleted, which is what that flag asks for anyway.
      if (c.has_capability("UIDPLUS")) {
        c.command("UID EXPUNGE " + set, "UID EXPUNGE");
      } else {
        c.command("EXPUNGE", "EXPUNGE");
      }
    }
  });
}

void ImapSession::move(const std::vector<std::uint32_t>& uids, const std::string& folder) {
  check_imap_folder(folder, "IMAP move");
  if (uids.empty()) return;
  Connection& c = *connection_;
  // Sent again after a dead connection, a MOVE of gone UIDs does nothing; the COPY fallback
  // may copy twice, which leaves a duplicate in the target folder, never a loss.
  c.retrying([&] {
    c.open_read_write();
    for (const auto& chunk : chunks(uids)) {
      const std::string set = uid_set(chunk);
      if (c.has_capability("MOVE")) {  // RFC 6851: atomic
        c.command("UID MOVE " + set + " " + imap_string(folder),
                  "UID MOVE to " + quote_text(folder));
        continue;
      }
      c.command("UID COPY " + set + " " + imap_string(folder), "UID COPY to " + quote_text(folder));
      c.command("UID STORE " + set + " +FLAGS.SILENT (\\Deleted)", "UID STORE \\Deleted");
      if (c.has_capability("UIDPLUS")) {
        c.command("UID EXPUNGE " + set, "UID EXPUNGE");
      } else {
        c.command("EXPUNGE", "EXPUNGE");
      }
    }
  });
}

}  // namespace slmhub::mail
