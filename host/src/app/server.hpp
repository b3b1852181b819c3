// The composition root: configuration, store, plugins, event bus, outbox, scheduler and
// HTTP, created in dependency order and torn down in reverse (STYLE.md: stop HTTP, stop
// the scheduler and join, plugin stop(), destroy plugin objects, unload libraries).
// The CLI uses the same object without serving, so `slmhub jobs run` or `slmhub import`
// see exactly the plugins, routes and jobs a running server has.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "app/logger.hpp"
#include "config/settings.hpp"
#include "slmhub/plugin.hpp"

namespace slmhub::host {

class Database;
class Router;
class TokenStore;
class Metrics;
class HttpServer;
class PluginManager;
class EventBus;
class OutboxService;
class JobScheduler;
class CoreStore;
class DeadlineStore;
class CommandRegistry;

class Server {
 public:
  // `clock` is every "now" of the host and its plugins (deadlines, jobs, audit, tokens);
  // null means the system clock. Tests pass a manual one to walk through days and months.
  Server(Settings settings, std::string binary_dir, const Clock* clock = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the store, applies migrations, loads and starts plugins, builds the route table.
  // Throws std::runtime_error with a one-line reason when the server cannot run.
  // `serving`: this process is `slmhub serve`. On SQLite it first takes the store's lock
  // (lock_sqlite_store), so a second server refuses before it migrates anything. Any other
  // command names itself "<instance.id>/cli-<pid>" in leases, so a `slmhub jobs run` on the
  // server's machine never passes for the server holding a lease. Plugins see it as
  // Host::serving(): only then do they open listeners of their own (LMTP).
  void open(bool serving = false);
  // Loads the plugin libraries and returns the commands they register offline
  // (Plugin::register_offline_commands), without opening the store or starting a plugin: an
  // offline tool such as `slmhub report availability` must not touch a database. open()
  // afterwards starts the plugins loaded here and replaces the registry with its own.
  CommandRegistry& offline_commands();
  // Starts HTTP and, unless `background` is false, the background workers (event dispatch,
  // outbox, jobs); returns the bound port. Tests on a manual clock serve without them and
  // drive events() and jobs() by hand, so nothing happens behind their back.
  int serve(bool background = true);
  void shutdown();
  // On the embedded SQLite store (db.url), takes the lock that makes one process at a time
  // serve it, or throws naming the lock file when another one holds it. Nothing on
  // PostgreSQL, which instances share.
  void lock_sqlite_store();
  // Whether the API is served over TLS; reload_tls() reads its certificate and key again
  // (SIGHUP) and returns what is served now, or throws and keeps the pair it had.
  bool https() const;
  std::string reload_tls();

  Logger& log(const std::string& source);
  const Settings& settings() const { return settings_; }
  Database& database() { return *db_; }
  TokenStore& tokens() { return *tokens_; }
  PluginManager& plugins() { return *plugins_; }
  JobScheduler& jobs() { return *jobs_; }
  CoreStore& core() { return *core_; }
  EventBus& events() { return *events_; }
  CommandRegistry& commands() { return *commands_; }
  Router& router() { return *router_; }
  bool ready() const { return ready_; }
  // First start with no token at all: creates an admin token and writes it to
  // auth.admin_token_file. Returns it, or "" when tokens already exist.
  std::string ensure_admin_token();

 private:
  class PluginHost;
  void validate_settings() const;
  void load_plugins();  // once per Server
  void add_host_routes();
  std::string store_url() const;  // db.url with a relative SQLite path resolved

  Settings settings_;
  std::string binary_dir_;
  std::mutex log_mutex_;
  LogLevel log_level_ = LogLevel::information;
  std::map<std::string, std::unique_ptr<StderrLogger>> loggers_;  // by source
  SystemClock system_clock_;
  const Clock& clock_;
  // Declared in construction order; destroyed in reverse. PluginManager comes first so it
  // is destroyed last: everything below may hold callbacks into plugin libraries.
  std::unique_ptr<PluginManager> plugins_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<TokenStore> tokens_;
  std::unique_ptr<CommandRegistry> commands_;
  std::unique_ptr<EventBus> events_;
  std::unique_ptr<OutboxService> outbox_;
  std::unique_ptr<JobScheduler> jobs_;
  std::unique_ptr<CoreStore> core_;
  std::unique_ptr<DeadlineStore> deadlines_;
  std::vector<std::unique_ptr<PluginHost>> hosts_;
  std::unique_ptr<HttpServer> http_;
  // The embedded SQLite store serves one process: `serve` holds an exclusive lock on
  // PATH.lock beside it (the descriptor, -1 when not held) for as long as it runs.
  int serve_lock_fd_ = -1;
  std::atomic<bool> ready_{false};
  bool serving_ = false;
  bool opened_to_serve_ = false;  // open(true): Host::serving() for the plugins
};

// Plugin-contributed CLI subcommands, by their words ("report availability").
class CommandRegistry {
 public:
  void add(CommandSpec spec, const std::string& owner);
  const CommandSpec* find(const std::vector<std::string>& words, std::size_t& used) const;
  std::vector<std::pair<CommandSpec, std::string>> all() const { return commands_; }

 private:
  std::vector<std::pair<CommandSpec, std::string>> commands_;
};

}  // namespace slmhub::host
