#include "link_header.hpp"

#include "slmhub/digest.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace slmhub::servicenow {
namespace {

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
               hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// The URL split at its query: what comes before '?', and the parameters after it (the
// fragment, which a server never sees, dropped).
struct SplitUrl {
  std::string head;
  std::vector<std::string> params;
};

SplitUrl split(const std::string& url) {
  SplitUrl out;
  const std::string_view whole = std::string_view(url).substr(0, url.find('#'));
  const auto question = whole.find('?');
  out.head = std::string(whole.substr(0, question));
  if (question == std::string_view::npos) return out;
  std::string_view query = whole.substr(question + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    if (!param.empty()) out.params.emplace_back(param);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::string_view param_name(std::string_view param) { return param.substr(0, param.find('=')); }

}  // namespace

std::string Origin::text() const { return scheme + "://" + host + ":" + std::to_string(port); }

std::optional<Origin> origin_of(std::string_view url) {
  const auto separator = url.find("://");
  if (separator == std::string_view::npos) return std::nullopt;
  Origin origin;
  for (const char c : url.substr(0, separator)) origin.scheme += lower(c);
  if (origin.scheme != "https" && origin.scheme != "http") return std::nullopt;
  std::string_view rest = url.substr(separator + 3);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  std::string_view host;
  std::string_view port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(0, close + 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  for (const char c : host) {
    if (std::isspace(static_cast<unsigned char>(c)) != 0) return std::nullopt;
    origin.host += lower(c);
  }
  if (port.empty()) {
    origin.port = origin.scheme == "https" ? 443 : 80;
  } else {
    const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), origin.port);
    if (error != std::errc() || end != port.data() + port.size() || origin.port < 1 ||
        origin.port > 65535) {
      return std::nullopt;
    }
  }
  return origin;
}

std::string with_query_param(const std::string& url, std::string_view name,
                             std::string_view value) {
  SplitUrl parts = split(url);
  std::erase_if(parts.params,
                [&](const std::string& param) { return url_decode(param_name(param)) == name; });
  parts.params.push_back(percent_encode(name) + "=" + percent_encode(value));
  std::string out = parts.head;
  for (std::size_t i = 0; i < parts.params.size(); ++i) {
    out += (i == 0 ? '?' : '&');
    out += parts.params[i];
  }
  return out;
}

std::optional<std::string> query_param(const std::string& url, std::string_view name) {
  const SplitUrl parts = split(url);
  for (const auto& param : parts.params) {
    if (url_decode(param_name(param)) != name) continue;
    const auto equals = param.find('=');
    return equals == std::string::npos ? std::string() : url_decode(param.substr(equals + 1));
  }
  return std::nullopt;
}

std::optional<std::string> find_next_link(const std::vector<std::string>& headers) {
  for (const std::string& header : headers) {
    const std::string_view text = header;
    std::size_t pos = 0;
    while (true) {
      // Each link-value: <URI> followed by ;-separated parameters, links separated by ','.
      pos = text.find('<', pos);
      if (pos == std::string_view::npos) break;
      const auto close = text.find('>', pos + 1);
      if (close == std::string_view::npos) break;
      const std::string_view uri = text.substr(pos + 1, close - pos - 1);
      pos = close + 1;
      std::optional<std::string> rel;
      while (pos < text.size() && text[pos] != ',') {
        if (text[pos] != ';') {
          ++pos;
          continue;
        }
        ++pos;
        while (pos < text.size() && is_space(text[pos])) ++pos;
        const std::size_t name_start = pos;
        while (pos < text.size() && text[pos] != '=' && text[pos] != ';' && text[pos] != ',' &&
               !is_space(text[pos])) {
          ++pos;
        }
        const std::string_view name = text.substr(name_start, pos - name_start);
        while (pos < text.size() && is_space(text[pos])) ++pos;
        std::string value;
        if (pos < text.size() && text[pos] == '=') {
          ++pos;
          while (pos < text.size() && is_space(text[pos])) ++pos;
          if (pos < text.size() && text[pos] == '"') {
            ++pos;
            while (pos < text.size() && text[pos] != '"') {
              if (text[pos] == '\\' && pos + 1 < text.size()) ++pos;
              value += text[pos++];
            }
            if (pos < text.size()) ++pos;  // the closing quote
          } else {
            while (pos < text.size() && text[pos] != ';' && text[pos] != ',' &&
                   !is_space(text[pos])) {
              value += text[pos++];
            }
          }
        }
        // RFC 8288 §3.3: only the first rel parameter counts.
        if (iequals(name, "rel") && !rel) rel = value;
      }
      if (!rel) continue;
      // rel may list several relation types separated by spaces.
      std::string_view types = *rel;
      while (!types.empty()) {
        while (!types.empty() && is_space(types.front())) types.remove_prefix(1);
        const auto end = std::min(types.size(), types.find_first_of(" \t"));
        if (end > 0 && iequals(types.substr(0, end), "next")) return std::string(uri);
        types.remove_prefix(end);
      }
    }
  }
  return std::nullopt;
}

}  // namespace slmhub::servicenow
