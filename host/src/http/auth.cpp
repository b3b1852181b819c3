#include "http/auth.hpp"
#include "slmhub/digest.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

namespace slmhub::host {
namespace {

// A revoked token stops working within this long on every instance.
constexpr auto kCacheTtl = std::chrono::seconds(5);

std::string join_roles(const std::vector<std::string>& roles) {
  std::string text;
  for (const auto& r : roles) text += (text.empty() ? "" : ",") + r;
  return text;
}

std::vector<std::string> split_roles(const std::string& text) {
  std::vector<std::string> roles;
  std::size_t start = 0;
  while (start < text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) roles.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return roles;
}

}  // namespace

std::string random_token(std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1)
    throw std::runtime_error("no randomness available for a token");
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  unsigned int buffer = 0;
  int bits = 0;
  for (unsigned char c : raw) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 6) {
      out += kAlphabet[(buffer >> (bits - 6)) & 63];
      bits -= 6;
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (6 - bits)) & 63];
  return out;
}

bool TokenStore::valid_role(const std::string& role) {
  // Roles are stored comma-separated: a comma in a customer id would read back as a second
  // role ("customer:x,admin").
  if (role.starts_with("customer:")) return role.size() > 9 && role.find(',') == std::string::npos;
  const auto& roles = staff_roles();
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

TokenStore::TokenStore(Store& store, const Clock& clock) : store_(store), clock_(clock) {}

namespace {

// Tokens are audited like every other change; the audit table belongs to the core schema,
// which is migrated before any token can be made.
void audit_token(Tx& tx, Instant at, const std::string& actor, const std::string& action,
                 const std::string& id, const std::string& after) {
  tx.exec(
      "INSERT INTO audit_log(at, actor, action, entity, entity_id, before, after) VALUES "
      "(?, ?, ?, 'token', ?, NULL, ?)",
      {to_epoch(at), actor, action, id, after.empty() ? Value{} : Value{after}});
}

}  // namespace

void TokenStore::check_roles(const std::vector<std::string>& roles) {
  if (roles.empty()) throw std::invalid_argument("a token needs at least one role");
  for (const auto& r : roles) {
    if (!valid_role(r))
      throw std::invalid_argument("unknown role '" + r +
                                  "' (allowed: viewer, operator, service_manager, approver, "
                                  "billing, admin, customer:<id> without a comma)");
  }
}

NewToken TokenStore::create(const std::string& actor, const std::string& name,
                            const std::vector<std::string>& roles,
                            std::optional<Instant> expires_at) {
  check_roles(roles);
  NewToken result;
  // Hex id: no '_' so the token splits unambiguously.
  result.info.id = sha256_hex(random_token(16)).substr(0, 12);
  result.info.name = name;
  result.info.roles = roles;
  result.info.created_at = clock_.now();
  result.info.expires_at = expires_at;
  std::string secret = random_token(32);
  result.token = "slm_" + result.info.id + "_" + secret;
  store_.transact([&](Tx& tx) {
    tx.exec(
        "INSERT INTO api_tokens(id, name, secret_hash, roles, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        {result.info.id, name, sha256_hex(secret), join_roles(roles),
         to_epoch(result.info.created_at), expires_at ? Value{to_epoch(*expires_at)} : Value{}});
    audit_token(tx, result.info.created_at, actor, "create", result.info.id,
                Json({{"name", name}, {"roles", roles}}).dump());
  });
  return result;
}

bool TokenStore::revoke(const std::string& actor, const std::string& id) {
  std::int64_t changed = 0;
  store_.transact([&](Tx& tx) {
    changed = tx.exec("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                      {to_epoch(clock_.now()), id});
    if (changed > 0) audit_token(tx, clock_.now(), actor, "revoke", id, "");
  });
  std::lock_guard lock(mutex_);
  cache_.erase(id);
  return changed > 0;
}

std::vector<TokenInfo> TokenStore::list() const {
  std::vector<TokenInfo> tokens;
  for (const auto& row :
       store_.query("SELECT id, name, roles, created_at, expires_at, revoked_at FROM api_tokens "
                    "ORDER BY created_at, id")) {
    TokenInfo t;
    t.id = row.text(0);
    t.name = row.text(1);
    t.roles = split_roles(row.text(2));
    t.created_at = from_epoch(row.integer(3));
    if (auto e = row.optional_integer(4)) t.expires_at = from_epoch(*e);
    if (auto r = row.optional_integer(5)) t.revoked_at = from_epoch(*r);
    tokens.push_back(std::move(t));
  }
  return tokens;
}

bool TokenStore::empty() const {
  return store_.query("SELECT COUNT(*) FROM api_tokens").at(0).integer(0) == 0;
}

AuthResult TokenStore::authenticate(const std::string& authorization, Principal& out) {
  if (authorization.empty()) return AuthResult::missing;
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), authorization.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) ==
               std::tolower(static_cast<unsigned char>(b));
      }))
    return AuthResult::invalid;
  std::string token = authorization.substr(kBearer.size());
  if (!token.starts_with("slm_") || token.size() < 4 + 12 + 1 + 20 || token[16] != '_')
    return AuthResult::invalid;
  std::string id = token.substr(4, 12);
  std::string hash = sha256_hex(token.substr(17));

  auto now_steady = std::chrono::steady_clock::now();
  std::shared_ptr<const Cached> cached;
  {
    std::lock_guard lock(mutex_);
    auto it = cache_.find(id);
    if (it != cache_.end() && now_steady - it->second->loaded < kCacheTtl) cached = it->second;
  }
  if (!cached) {
    auto rows = store_.query(
        "SELECT name, secret_hash, roles, expires_at, revoked_at FROM api_tokens WHERE id = ?",
        {id});
    if (rows.empty() || !rows[0].is_null(4)) return AuthResult::invalid;
    Cached c;
    c.hash = rows[0].text(1);
    c.principal.id = id;
    c.principal.name = rows[0].text(0);
    for (auto& r : split_roles(rows[0].text(2))) c.principal.roles.insert(r);
    if (auto e = rows[0].optional_integer(3)) c.expires_at = from_epoch(*e);
    c.loaded = now_steady;
    cached = std::make_shared<const Cached>(std::move(c));
    std::lock_guard lock(mutex_);
    cache_[id] = cached;
  }
  if (cached->hash.size() != hash.size() ||
      CRYPTO_memcmp(cached->hash.data(), hash.data(), hash.size()) != 0)
    return AuthResult::invalid;
  if (cached->expires_at && *cached->expires_at <= clock_.now()) return AuthResult::expired;
  out = cached->principal;
  return AuthResult::ok;
}

FailedAuthLimiter::FailedAuthLimiter(int limit, Clock::duration window, std::size_t max_clients)
    : limit_(limit), window_(window), max_clients_(max_clients) {}

FailedAuthLimiter::Clock::duration FailedAuthLimiter::wait_locked(const std::string& client,
                                                                  Clock::time_point now) {
  const auto it = failures_.find(client);
  if (it == failures_.end()) return Clock::duration::zero();
  auto& times = it->second;
  std::erase_if(times, [&](Clock::time_point t) { return t + window_ <= now; });
  if (times.empty()) {
    failures_.erase(it);
    return Clock::duration::zero();
  }
  if (static_cast<int>(times.size()) < limit_) return Clock::duration::zero();
  return times.front() + window_ - now;
}

FailedAuthLimiter::Clock::duration FailedAuthLimiter::blocked_for(const std::string& client) {
  if (limit_ <= 0) return Clock::duration::zero();
  std::lock_guard lock(mutex_);
  return wait_locked(client, Clock::now());
}

FailedAuthLimiter::Clock::duration FailedAuthLimiter::settle(const std::string& client,
                                                             bool failed) {
  if (limit_ <= 0) return Clock::duration::zero();
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  if (const auto wait = wait_locked(client, now); wait.count() > 0) return wait;
  if (!failed) return Clock::duration::zero();
  if (failures_.size() >= max_clients_ && !failures_.count(client)) {
    // Forget every client whose failures have all left the window, or else the one that
    // failed longest ago.
    std::erase_if(failures_,
                  [&](const auto& entry) { return entry.second.back() + window_ <= now; });
    if (failures_.size() >= max_clients_) {
      auto oldest = failures_.begin();
      for (auto it = failures_.begin(); it != failures_.end(); ++it)
        if (it->second.back() < oldest->second.back()) oldest = it;
      failures_.erase(oldest);
    }
  }
  failures_[client].push_back(now);  // fewer than limit_ before it (wait_locked said so)
  return Clock::duration::zero();
}

std::string FailedAuthLimiter::client_key(const std::string& address) {
  in6_addr v6{};
  if (::inet_pton(AF_INET6, address.c_str(), &v6) != 1 || IN6_IS_ADDR_V4MAPPED(&v6)) return address;
  std::fill(v6.s6_addr + 8, v6.s6_addr + 16, 0);
  char text[INET6_ADDRSTRLEN];
  ::inet_ntop(AF_INET6, &v6, text, sizeof text);
  return std::string(text) + "/64";
}

}  // namespace slmhub::host
