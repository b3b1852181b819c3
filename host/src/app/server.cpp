#include "app/server.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <tuple>

#include "core/core_store.hpp"
#include "deadlines/deadline_store.hpp"
#include "events/event_bus.hpp"
#include "events/outbox.hpp"
#include "http/auth.hpp"
#include "http/http_server.hpp"
#include "http/metrics.hpp"
#include "http/router.hpp"
#include "jobs/job_scheduler.hpp"
#include "plugins/plugin_manager.hpp"
#include "storage/database.hpp"

namespace slmhub::host {

extern const char* const kOpenApiYaml;  // generated from docs/openapi.yaml at build time

namespace {

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : separator) + item;
  return text;
}

// The directory a file is to be written in, made when missing; none for a bare file name
// (sqlite:slmhub.db), for which create_directories("") would throw.
void create_parent_directories(const std::string& file) {
  const auto directory = std::filesystem::path(file).parent_path();
  if (!directory.empty()) std::filesystem::create_directories(directory);
}

}  // namespace

void CommandRegistry::add(CommandSpec spec, const std::string& owner) {
  if (spec.name.empty() || !spec.run)
    throw std::invalid_argument("a command needs a name and a run function");
  for (const auto& [c, o] : commands_) {
    if (c.name == spec.name)
      throw std::invalid_argument("command '" + spec.name + "' from " + owner +
                                  " is already registered by " + o);
  }
  commands_.emplace_back(std::move(spec), owner);
}

const CommandSpec* CommandRegistry::find(const std::vector<std::string>& words,
                                         std::size_t& used) const {
  const CommandSpec* best = nullptr;
  for (const auto& [c, o] : commands_) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start <= c.name.size()) {
      auto space = c.name.find(' ', start);
      if (space == std::string::npos) space = c.name.size();
      parts.push_back(c.name.substr(start, space - start));
      start = space + 1;
    }
    if (parts.size() > words.size()) continue;
    if (!std::equal(parts.begin(), parts.end(), words.begin())) continue;
    if (!best || parts.size() > used) {
      best = &c;
      used = parts.size();
    }
  }
  return best;
}

// What one plugin's start() sees. Registrations are buffered and handed to the real
// registries only when start() returns, so a plugin that throws half-way leaves nothing
// behind (no route to a half-started plugin).
class Server::PluginHost : public Host {
 public:
  PluginHost(Server& server, const std::string& name, std::vector<ConfigKey> schema)
      : server_(server),
        name_(name),
        config_(server.settings_, name, std::move(schema)),
        secrets_(server.settings_),
        log_(server.log(name)),
        http_(*this),
        scheduler_(*this),
        commands_(*this),
        events_(*this),
        outbox_(*this),
        store_(server, log_),
        catalog_(*this) {}

  const Config& config() const override { return config_; }
  Logger& log() override { return log_; }
  const Clock& clock() const override { return server_.clock_; }
  Catalog& catalog() override { return catalog_; }
  Tickets& tickets() override { return *server_.core_; }
  Store& store() override { return store_; }
  Events& events() override { return events_; }
  Outbox& outbox() override { return outbox_; }
  Scheduler& scheduler() override { return scheduler_; }
  Deadlines& deadlines() override { return *server_.deadlines_; }
  HttpRoutes& http() override { return http_; }
  Commands& commands() override { return commands_; }
  const Secrets& secrets() const override { return secrets_; }
  bool serving() const override { return server_.opened_to_serve_; }
  const PluginConfig& plugin_config() const { return config_; }

  void commit() {
    for (auto& r : routes_) server_.router_->add(std::move(r), name_);
    for (auto& j : jobs_) server_.jobs_->add(std::move(j));
    for (auto& c : cmds_) server_.commands_->add(std::move(c), name_);
    for (auto& s : subs_)
      server_.events_->subscribe(s.name, s.types, std::move(s.handler), s.start);
    for (auto& [c, s, r] : senders_)
      server_.outbox_->register_sender(c, std::move(s), std::move(r));
    if (policy_) server_.core_->set_maintenance_policy(std::move(policy_));
    routes_.clear();
  }

 private:
  // The database, with grouped transactions going through the core's group committer.
  struct GroupedStore : Store {
    GroupedStore(Server& s, Logger& log) : s(s), log(log) {}
    void migrate(std::string_view owner, const std::vector<Migration>& migrations) override {
      // A migration that rebuilds a table can take a while on a large store: the log says
      // which one runs before it starts, and how long they took.
      bool applied = false;
      const auto started = std::chrono::steady_clock::now();
      s.db_->migrate(owner, migrations, [&](const Migration& m) {
        applied = true;
        log.info("applying migration " + std::string(owner) + " " + std::to_string(m.version) +
                 ": " + m.description);
      });
      if (applied) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - started)
                            .count();
        log.info("migrations of " + std::string(owner) + " applied in " + std::to_string(ms) +
                 " ms");
      }
    }
    void transact(const std::function<void(Tx&)>& work) override { s.db_->transact(work); }
    void transact_grouped(const std::function<void(Tx&)>& work) override {
      s.core_->writer().submit(work);
    }
    std::vector<Row> query(std::string_view sql, const Params& params) override {
      return s.db_->query(sql, params);
    }
    Dialect dialect() const override { return s.db_->dialect(); }
    Server& s;
    Logger& log;
  };
  // The core catalog, with the maintenance policy held back like the other registrations.
  struct HeldCatalog : Catalog {
    explicit HeldCatalog(PluginHost& h) : h(h) {}
    Catalog& core() { return *h.server_.core_; }
    const Catalog& core() const { return *h.server_.core_; }
    Dataset snapshot() const override { return core().snapshot(); }
    std::optional<Service> service(const std::string& id) const override {
      return core().service(id);
    }
    std::optional<Customer> customer(const std::string& id) const override {
      return core().customer(id);
    }
    std::optional<Interruption> interruption(const std::string& id) const override {
      return core().interruption(id);
    }
    std::optional<MaintenanceWindow> maintenance(const std::string& id) const override {
      return core().maintenance(id);
    }
    BusinessCalendar provider_calendar() const override { return core().provider_calendar(); }
    void record_interruption(Tx& tx, const Actor& actor, const Interruption& item) override {
      core().record_interruption(tx, actor, item);
    }
    bool remove_interruption(Tx& tx, const Actor& actor, const std::string& id) override {
      return core().remove_interruption(tx, actor, id);
    }
    void record_maintenance(Tx& tx, const Actor& actor, const MaintenanceWindow& item) override {
      core().record_maintenance(tx, actor, item);
    }
    void set_maintenance_policy(MaintenancePolicy policy) override {
      if (h.policy_) throw std::logic_error("a maintenance policy is already set");
      h.policy_ = std::move(policy);
    }
    void audit(Tx& tx, const Actor& actor, const std::string& action, const std::string& entity,
               const std::string& id, const Json& before, const Json& after) override {
      core().audit(tx, actor, action, entity, id, before, after);
    }
    PluginHost& h;
  };
  struct Routes : HttpRoutes {
    explicit Routes(PluginHost& h) : h(h) {}
    void add(Route route) override { h.routes_.push_back(std::move(route)); }
    PluginHost& h;
  };
  struct Jobs : Scheduler {
    explicit Jobs(PluginHost& h) : h(h) {}
    void add(JobSpec job) override {
      if (!job.name.starts_with(h.name_ + "."))
        throw std::invalid_argument("job '" + job.name + "': a plugin's job names start with '" +
                                    h.name_ + ".'");
      JobScheduler::check(job);
      h.jobs_.push_back(std::move(job));
    }
    PluginHost& h;
  };
  struct Cmds : Commands {
    explicit Cmds(PluginHost& h) : h(h) {}
    void add(CommandSpec c) override { h.cmds_.push_back(std::move(c)); }
    PluginHost& h;
  };
  struct Evts : Events {
    explicit Evts(PluginHost& h) : h(h) {}
    void publish(Tx& tx, const std::string& type, const std::string& subject,
                 const Json& payload) override {
      h.server_.events_->publish(tx, type, subject, payload);
    }
    using Events::subscribe;
    void subscribe(const std::string& subscriber, const std::vector<std::string>& types,
                   std::function<void(const Event&)> handler, StartAt start) override {
      h.subs_.push_back({h.name_ + "." + subscriber, types, std::move(handler), start});
    }
    PluginHost& h;
  };
  struct Out : Outbox {
    explicit Out(PluginHost& h) : h(h) {}
    void enqueue(Tx& tx, const OutboxMessage& message) override {
      h.server_.outbox_->enqueue(tx, message);
    }
    using Outbox::register_sender;
    void register_sender(const std::string& channel, OutboxSender send,
                         SendRecorder record) override {
      h.senders_.emplace_back(channel, std::move(send), std::move(record));
    }
    PluginHost& h;
  };

  Server& server_;
  std::string name_;
  PluginConfig config_;
  SettingsSecrets secrets_;
  Logger& log_;
  Routes http_;
  Jobs scheduler_;
  Cmds commands_;
  Evts events_;
  Out outbox_;
  GroupedStore store_;
  HeldCatalog catalog_;
  MaintenancePolicy policy_;
  std::vector<Route> routes_;
  std::vector<JobSpec> jobs_;
  std::vector<CommandSpec> cmds_;
  struct HeldSubscription {
    std::string name;
    std::vector<std::string> types;
    std::function<void(const Event&)> handler;
    StartAt start;
  };
  std::vector<HeldSubscription> subs_;
  std::vector<std::tuple<std::string, OutboxSender, SendRecorder>> senders_;
};

Server::Server(Settings settings, std::string binary_dir, const Clock* clock)
    : settings_(std::move(settings)),
      binary_dir_(std::move(binary_dir)),
      clock_(clock ? *clock : system_clock_) {
  // A level that is not one is refused, with its line, by validate_settings(), which runs
  // before the server does anything.
  log_level_ = parse_log_level(settings_.string("log.level")).value_or(LogLevel::information);
}

Server::~Server() {
  shutdown();
  if (serve_lock_fd_ >= 0) close(serve_lock_fd_);
}

Logger& Server::log(const std::string& source) {
  std::lock_guard lock(log_mutex_);
  auto& logger = loggers_[source];
  if (!logger) logger = std::make_unique<StderrLogger>(source, log_level_, log_mutex_);
  return *logger;
}

void Server::validate_settings() const {
  if (auto problems = settings_.validate_host_keys(); !problems.empty())
    throw std::runtime_error(join(problems, "; "));
}

void Server::load_plugins() {
  if (plugins_) return;
  std::vector<std::string> dirs;
  for (const auto& dir : split_config_list(settings_.string("plugins.dir")))
    dirs.push_back(settings_.resolve_path(dir));
  if (dirs.empty())
    dirs.push_back((std::filesystem::path(binary_dir_) / ".." / "plugins").lexically_normal());
  plugins_ = std::make_unique<PluginManager>();
  auto enabled = split_config_list(settings_.string("plugins.enabled"));
  plugins_->load_dirs(dirs, enabled);
  if (plugins_->records().empty())
    log("host").warning("no plugin libraries in " + join(dirs, ", ") + ": running without plugins");
}

CommandRegistry& Server::offline_commands() {
  validate_settings();
  load_plugins();
  commands_ = std::make_unique<CommandRegistry>();
  plugins_->register_offline_commands(
      [this](std::vector<CommandSpec> commands, const std::string& name) {
        // All or none: a plugin with a clashing command leaves no command behind.
        CommandRegistry added = *commands_;
        for (auto& c : commands) added.add(std::move(c), name);
        *commands_ = std::move(added);
      });
  return *commands_;
}

std::string Server::store_url() const {
  std::string url = settings_.string("db.url");
  if (url.starts_with("sqlite:") && !url.starts_with("sqlite:/"))
    url = "sqlite:" + settings_.resolve_path(url.substr(7));
  return url;
}

void Server::open(bool serving) {
  validate_settings();
  Logger& log = this->log("host");
  opened_to_serve_ = serving;
  if (serving) lock_sqlite_store();
  db_ = Database::open(store_url());
  metrics_ = std::make_unique<Metrics>();
  router_ = std::make_unique<Router>();
  commands_ = std::make_unique<CommandRegistry>();
  db_->migrate("host", {{1, "api tokens",
                         "CREATE TABLE api_tokens(id TEXT PRIMARY KEY, name TEXT NOT NULL, "
                         "secret_hash TEXT NOT NULL, roles TEXT NOT NULL, created_at BIGINT NOT "
                         "NULL, expires_at BIGINT, revoked_at BIGINT)"}});
  tokens_ = std::make_unique<TokenStore>(*db_, clock_);
  std::string instance = settings_.string("instance.id");
  if (instance.empty()) {
    char name[256] = {};
    gethostname(name, sizeof name - 1);
    instance = std::string(name) + ":" + std::to_string(getpid());
  }
  if (!serving) instance += "/cli-" + std::to_string(getpid());
  // Only one process serves an SQLite store (see lock_sqlite_store), so leases under
  // another name are left over from a crash and need not be waited out.
  const bool sole_instance = serving && db_->dialect() == Dialect::sqlite;
  EventBusSettings event_settings;
  event_settings.instance = instance;
  event_settings.lease = std::chrono::seconds(settings_.integer("events.lease_seconds"));
  event_settings.sole_instance = sole_instance;
  event_settings.poll_interval = std::chrono::milliseconds(settings_.integer("events.poll_ms"));
  event_settings.max_backoff = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::milliseconds(settings_.integer("events.retry_max_ms")));
  events_ = std::make_unique<EventBus>(*db_, clock_, this->log("events"), event_settings);
  OutboxSettings outbox_settings;
  outbox_settings.max_attempts = static_cast<int>(settings_.integer("outbox.max_attempts"));
  outbox_settings.concurrency = static_cast<int>(settings_.integer("outbox.concurrency"));
  outbox_settings.sole_instance = sole_instance;
  outbox_settings.initial_backoff =
      std::chrono::seconds(settings_.integer("outbox.initial_backoff_seconds"));
  outbox_settings.max_backoff =
      std::chrono::seconds(settings_.integer("outbox.max_backoff_seconds"));
  outbox_settings.claim_timeout =
      std::chrono::seconds(settings_.integer("outbox.claim_timeout_seconds"));
  outbox_ =
      std::make_unique<OutboxService>(*db_, clock_, this->log("outbox"), instance, outbox_settings);
  JobSchedulerSettings job_settings;
  job_settings.tick_interval = std::chrono::milliseconds(settings_.integer("jobs.tick_ms"));
  job_settings.lease_duration = std::chrono::seconds(settings_.integer("jobs.lease_seconds"));
  job_settings.sole_instance = sole_instance;
  jobs_ = std::make_unique<JobScheduler>(*db_, clock_, this->log("jobs"), instance, job_settings);
  core_ = std::make_unique<CoreStore>(*db_, *events_, clock_);
  DeadlineSettings deadline_settings;
  deadline_settings.warn_business_days =
      static_cast<int>(settings_.integer("deadlines.warn_business_days"));
  deadline_settings.notify_outside_business_hours =
      settings_.boolean("deadlines.notify_outside_business_hours");
  const std::string notify_prefix = "deadlines.notify.";
  for (const auto& key : Settings::host_schema()) {
    if (key.key.starts_with(notify_prefix))
      deadline_settings.notify[key.key.substr(notify_prefix.size())] =
          split_config_list(settings_.string(key.key));
  }
  deadline_settings.escalate = split_config_list(settings_.string("deadlines.escalate"));
  deadlines_ = std::make_unique<DeadlineStore>(*db_, *core_, *events_, *outbox_, clock_,
                                               this->log("deadlines"), deadline_settings);
  jobs_->add({"deadlines.watch", settings_.string("deadlines.watch_schedule"), "UTC",
              "warns owners ahead of every deadline and escalates missed ones",
              [this](const JobContext&) { return deadlines_->watch(); }});
  core_->set_response_targets(
      {std::chrono::minutes(settings_.integer("tickets.first_response_minutes.incident")),
       std::chrono::minutes(settings_.integer("tickets.first_response_minutes.service_request"))});
  jobs_->add({"tickets.response-watch", settings_.string("tickets.response_watch_schedule"), "UTC",
              "escalates tickets past their first-response target", [this](const JobContext&) {
                return core_->watch_responses(
                    *outbox_, split_config_list(settings_.string("tickets.escalate")));
              }});
  jobs_->add({"housekeeping.prune", settings_.string("housekeeping.prune_schedule"), "UTC",
              "deletes handled events, sent messages and job runs past their days",
              [this](const JobContext& context) {
                using days = std::chrono::days;
                const auto events =
                    events_->prune(context.now - days(settings_.integer("events.keep_days")));
                const auto sent =
                    outbox_->prune(context.now - days(settings_.integer("outbox.keep_days")));
                const auto runs =
                    jobs_->prune(context.now - days(settings_.integer("jobs.keep_days")));
                return std::to_string(events) + " events, " + std::to_string(sent.deleted) +
                       " sent messages and " + std::to_string(runs) + " job runs deleted; " +
                       std::to_string(sent.emptied) + " sent messages emptied, kept for their" +
                       " dedupe keys";
              }});
  add_host_routes();
  core_->add_routes(*router_);

  load_plugins();
  plugins_->start_all(
      [&](const PluginRecord& plugin) -> Host& {
        hosts_.push_back(std::make_unique<PluginHost>(*this, plugin.name, plugin.config));
        if (auto problems = hosts_.back()->plugin_config().validate(); !problems.empty())
          throw std::runtime_error("configuration: " + join(problems, "; "));
        return *hosts_.back();
      },
      [&](const std::string&) { hosts_.pop_back(); });
  for (auto& h : hosts_) h->commit();
  std::set<std::string> names;
  for (const auto& rec : plugins_->records()) {
    names.insert(rec.name);
    if (rec.state == PluginState::started)
      log.info("plugin " + rec.name + " " + rec.version + " started (" + rec.path + ")");
    else
      log.error("plugin " + rec.path + ": " + rec.reason);
  }
  for (const auto& orphan : settings_.orphan_plugin_keys(names)) log.warning(orphan);
  router_->close();
}

std::string Server::ensure_admin_token() {
  if (!tokens_->empty()) return {};
  auto created = tokens_->create("system", "admin (first start)", {"admin"}, std::nullopt);
  auto path = settings_.resolve_path(settings_.string("auth.admin_token_file"));
  if (!path.empty()) {
    create_parent_directories(path);
    std::ofstream out(path, std::ios::trunc);
    out << created.token << "\n";
    out.close();
    chmod(path.c_str(), S_IRUSR | S_IWUSR);
  }
  return created.token;
}

int Server::serve(bool background) {
  HttpLimits limits;
  limits.max_body_bytes = settings_.integer("http.max_body_bytes");
  limits.max_header_count = static_cast<int>(settings_.integer("http.max_header_count"));
  limits.max_header_bytes = settings_.integer("http.max_header_bytes");
  limits.max_json_depth = static_cast<int>(settings_.integer("http.max_json_depth"));
  limits.request_timeout_ms = static_cast<int>(settings_.integer("http.request_timeout_ms"));
  limits.threads = static_cast<int>(settings_.integer("http.threads"));
  limits.max_queued = static_cast<int>(settings_.integer("http.max_queued"));
  limits.auth_failure_limit = static_cast<int>(settings_.integer("auth.max_failures"));
  limits.auth_failure_window_seconds =
      static_cast<int>(settings_.integer("auth.failure_window_seconds"));
  if (const auto cert = settings_.string("http.tls.cert_file"); !cert.empty())
    limits.tls_cert_file = settings_.resolve_path(cert);
  if (const auto key = settings_.string("http.tls.key_file"); !key.empty())
    limits.tls_key_file = settings_.resolve_path(key);
  core_->start_writer(static_cast<int>(settings_.integer("db.group_commit_max")));
  metrics_->gauge("slmhub_http_slow_clients_cut_total",
                  "connections closed because a request did not arrive within "
                  "http.request_timeout_ms",
                  [this] { return http_ ? static_cast<double>(http_->slow_clients_cut()) : 0.0; });
  metrics_->gauge("slmhub_write_queue_depth", "writes waiting for the group committer",
                  [this] { return static_cast<double>(core_->writer().queued()); });
  metrics_->gauge("slmhub_write_batches_total", "group commits since start",
                  [this] { return static_cast<double>(core_->writer().stats().batches); });
  metrics_->gauge("slmhub_write_batched_writes_total", "writes committed by the group committer",
                  [this] { return static_cast<double>(core_->writer().stats().writes); });
  metrics_->gauge("slmhub_write_commit_seconds_total", "time spent in group commits", [this] {
    return static_cast<double>(core_->writer().stats().commit_micros) / 1e6;
  });
  metrics_->gauge("slmhub_event_backlog", "events not yet handled, summed over subscribers",
                  [this] {
                    double total = 0;
                    for (const auto& s : events_->subscribers())
                      total += static_cast<double>(s.backlog);
                    return total;
                  });
  metrics_->gauge("slmhub_outbox_pending", "outgoing messages not yet delivered", [this] {
    return static_cast<double>(
        db_->query("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')")
            .at(0)
            .integer(0));
  });
  metrics_->gauge("slmhub_outbox_dead", "outgoing messages given up on (dead letters)", [this] {
    return static_cast<double>(
        db_->query("SELECT COUNT(*) FROM outbox WHERE state = 'dead'").at(0).integer(0));
  });
  metrics_->gauge(
      "slmhub_job_runs_failed", "failed job runs kept (jobs.keep_days; pruned ones leave it)",
      [this] {
        return static_cast<double>(
            db_->query("SELECT COUNT(*) FROM job_runs WHERE outcome = 'failed'").at(0).integer(0));
      });
  // First, so that a certificate that cannot be used stops the start before anything runs.
  http_ = std::make_unique<HttpServer>(*router_, *tokens_, *metrics_, log("http"), limits);
  int port =
      http_->start(settings_.string("http.host"), static_cast<int>(settings_.integer("http.port")));
  if (background) {
    events_->start();
    outbox_->start();
    jobs_->start();
  }
  serving_ = true;
  ready_ = true;
  return port;
}

bool Server::https() const { return http_ && http_->tls(); }

std::string Server::reload_tls() {
  if (!http_) throw std::runtime_error("the server is not serving");
  return http_->reload_tls();
}

void Server::lock_sqlite_store() {
  const std::string url = store_url();
  if (!url.starts_with("sqlite:") || serve_lock_fd_ >= 0) return;
  const std::string database = url.substr(7);
  // A lock file rather than the database itself: closing any descriptor of the database
  // file would drop SQLite's own POSIX locks on it. Its directory may not exist yet. Opened
  // read-only (flock needs no more), so a lock file another user left (root running serve
  // once by hand) does not keep the service's user out.
  create_parent_directories(database);
  const std::string path = database + ".lock";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    close(fd);
    throw std::runtime_error(
        error == EWOULDBLOCK
            ? "another slmhub process is serving the store sqlite:" + database + " (it holds " +
                  path +
                  "); an SQLite store serves one process; stop that one, or share a PostgreSQL "
                  "database between instances"
            : "cannot lock " + path + ": " + std::strerror(error));
  }
  serve_lock_fd_ = fd;
}

void Server::shutdown() {
  ready_ = false;
  if (http_) http_->stop();  // no new requests
  http_.reset();
  if (jobs_) jobs_->stop();  // joins a running job
  if (outbox_) outbox_->stop();
  if (events_) events_->stop();
  if (core_) core_->stop_writer();
  if (core_) core_->clear_maintenance_policy();  // it calls into a plugin about to stop
  if (plugins_) plugins_->stop_all();
  serving_ = false;
}

}  // namespace slmhub::host
