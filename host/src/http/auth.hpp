// API tokens: `Authorization: Bearer slm_<id>_<secret>`. Only a SHA-256 of the secret is
// stored (the secret is 256 random bits, so a slow hash would add nothing); each token has
// roles (DESIGN.md §5.2), an optional expiry and can be revoked.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "slmhub/http.hpp"
#include "slmhub/log.hpp"
#include "slmhub/store.hpp"

namespace slmhub::host {

struct TokenInfo {
  std::string id;
  std::string name;
  std::vector<std::string> roles;
  Instant created_at{};
  std::optional<Instant> expires_at;
  std::optional<Instant> revoked_at;
};

struct NewToken {
  TokenInfo info;
  std::string token;  // shown once; never stored
};

enum class AuthResult { ok, missing, invalid, expired };

class TokenStore {
 public:
  TokenStore(Store& store, const Clock& clock);

  // Throws std::invalid_argument for an unknown role.
  // `actor` (a token id or "cli") is recorded in the audit log with the change.
  NewToken create(const std::string& actor, const std::string& name,
                  const std::vector<std::string>& roles, std::optional<Instant> expires_at);
  bool revoke(const std::string& actor, const std::string& id);
  std::vector<TokenInfo> list() const;
  bool empty() const;
  // Checks an Authorization header value.
  AuthResult authenticate(const std::string& authorization, Principal& out);

  static bool valid_role(const std::string& role);
  // Throws std::invalid_argument naming the first role that is not valid, or when there is none.
  static void check_roles(const std::vector<std::string>& roles);

 private:
  struct Cached {
    std::string hash;
    Principal principal;
    std::optional<Instant> expires_at;
    std::chrono::steady_clock::time_point loaded;
  };
  Store& store_;
  const Clock& clock_;
  std::mutex mutex_;
  // Shared, so a request takes its token's entry without copying the principal.
  std::unordered_map<std::string, std::shared_ptr<const Cached>> cache_;
};

std::string random_token(std::size_t bytes);  // base64url, no padding

// Failed authentication per client: after `limit` invalid or expired credentials within
// `window`, the client gets 429 (with Retry-After) on every route that checks credentials
// until its oldest failure leaves the window, so a token cannot be guessed at speed. A missing
// token is not a failure (a browser asks without one first). Guesses sent in parallel gain
// nothing: the verdict on a guess is given only under the limit, decided under one lock with
// the failures before it, so at most `limit` guesses per window are ever answered. At most
// `max_clients` clients are remembered; past that the quietest are forgotten, so the table
// cannot grow without end.
class FailedAuthLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  FailedAuthLimiter(int limit, Clock::duration window, std::size_t max_clients = 10000);
  // Zero when `client` may try; otherwise how long it must wait. A cheap early refusal: the
  // limit itself is kept by settle().
  Clock::duration blocked_for(const std::string& client);
  // After checking a credential of `client`: zero when the verdict may be answered, and then a
  // failure is recorded if `failed`; otherwise how long the client must wait, and it must get
  // 429 whatever the verdict was (nothing is recorded).
  Clock::duration settle(const std::string& client, bool failed);
  // The key a client is counted under: its IPv4 address, or the /64 of an IPv6 address (one
  // subscriber's network; one host can use any address in it).
  static std::string client_key(const std::string& address);
  bool enabled() const { return limit_ > 0; }

 private:
  const int limit_;
  const Clock::duration window_;
  const std::size_t max_clients_;
  std::mutex mutex_;
  // The wait for a client's failures pruned to the window; the caller holds the lock.
  Clock::duration wait_locked(const std::string& client, Clock::time_point now);
  std::unordered_map<std::string, std::vector<Clock::time_point>> failures_;
};

}  // namespace slmhub::host
