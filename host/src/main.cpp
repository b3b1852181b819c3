// The slmhub command line (DESIGN.md §5.1). Errors are one line on stderr naming the
// input, the place and the rule; exit statuses follow sysexits.h.
#include <Poco/Exception.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "app/server.hpp"
#include "core/core_store.hpp"
#include "http/auth.hpp"
#include "jobs/job_scheduler.hpp"
#include "plugins/plugin_manager.hpp"
#include "slmhub/commands.hpp"
#include "slmhub/errors.hpp"
#include "storage/database.hpp"
#include "storage/store_copy.hpp"

namespace {

using slmhub::host::Server;
using slmhub::host::Settings;

using namespace slmhub::exit_code;

const char* kUsageText =
    "usage: slmhub COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  serve [--config F] [--daemon]      run the server (in the foreground unless --daemon)\n"
    "  import DATASET.json [--config F]   upsert a dataset into the store (all or nothing)\n"
    "  plugins list [--verbose] [--config F]   plugins: name, version, state, path, failure\n"
    "                                     reason; --verbose adds each one's configuration keys\n"
    "  jobs list [--config F]             scheduled jobs with their last and next runs\n"
    "  jobs run NAME [--config F]         run one job now\n"
    "  migrate [--config F]               apply pending schema migrations and list versions\n"
    "  migrate --to URL [--config F]      copy the whole store into an empty PostgreSQL database\n"
    "  tokens create --name N --role R[,R...] [--expires ISO]   create an API token\n"
    "  tokens list | tokens revoke ID     manage API tokens\n"
    "  PLUGIN COMMAND ...                 commands that plugins add (see plugins list)\n"
    "\n"
    "--config F (or SLMHUB_CONFIG) names the configuration file; every key can be\n"
    "overridden by SLMHUB_<KEY> in the environment (db.url -> SLMHUB_DB_URL).\n"
    "Run 'slmhub COMMAND --help' for one command.\n";

struct Args {
  std::vector<std::string> words;            // positional
  std::map<std::string, std::string> flags;  // --name value
  bool help = false;
};

Args parse_args(int argc, char** argv, std::vector<std::string>& rest) {
  Args a;
  for (int i = 1; i < argc; ++i) rest.emplace_back(argv[i]);
  for (std::size_t i = 0; i < rest.size(); ++i) {
    const auto& arg = rest[i];
    if (arg == "--help" || arg == "-h") {
      a.help = true;
    } else if (arg == "--daemon" || arg == "--verbose") {
      a.flags[arg] = "1";
    } else if (arg == "--config" || arg == "--name" || arg == "--role" || arg == "--expires" ||
               arg == "--to") {
      if (i + 1 >= rest.size()) throw std::invalid_argument(arg + " needs a value");
      a.flags[arg] = rest[++i];
    } else if (arg.starts_with("--config=")) {
      a.flags["--config"] = arg.substr(9);
    } else {
      a.words.push_back(arg);
    }
  }
  return a;
}

Settings load_settings(const Args& args) {
  std::string path;
  if (auto it = args.flags.find("--config"); it != args.flags.end()) {
    path = it->second;
  } else if (const char* env = std::getenv("SLMHUB_CONFIG")) {
    path = env;
  } else if (std::filesystem::exists("/etc/slmhub/slmhub.properties")) {
    path = "/etc/slmhub/slmhub.properties";
  }
  return path.empty() ? Settings() : Settings::load(path);
}

std::string binary_dir(const char* argv0) {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) self = std::filesystem::absolute(argv0);
  return self.parent_path().string();
}

// `ready_fd`, when given, is told (a byte, then closed) once the server listens: the parent
// of `serve --daemon` waits for it, so that it can exit with the child's status on failure.
int serve(Server& server, int ready_fd = -1) {
  // Block the termination signals in every thread; this one waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  server.open(true);
  std::string token = server.ensure_admin_token();
  int port = server.serve();
  auto host = server.settings().string("http.host");
  auto url = server.settings().string("http.public_url");
  if (url.empty())
    url = (server.https() ? "https://" : "http://") + host + ":" + std::to_string(port);
  std::cout << "slmhub listening on " << url << std::endl;
  if (!token.empty()) {
    std::cout << "admin token (shown once; also in "
              << server.settings().resolve_path(server.settings().string("auth.admin_token_file"))
              << "): " << token << std::endl;
  }
  if (ready_fd >= 0) {
    const char ready = '1';
    if (::write(ready_fd, &ready, 1) != 1) {
      // The parent is gone; the server runs on regardless.
    }
    ::close(ready_fd);
  }
  int sig = 0;
  // SIGHUP: the TLS certificate and key are read again (a renewed certificate without a
  // restart); nothing else is reloaded.
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    auto& log = server.log("host");
    if (!server.https()) {
      log.info("SIGHUP: nothing to reload (HTTPS is not configured)");
      continue;
    }
    try {
      log.info("SIGHUP: now serving " + server.reload_tls());
    } catch (const std::exception& e) {
      log.error("SIGHUP: the TLS certificate was not reloaded, the old one stays: " +
                std::string(e.what()));
    }
  }
  server.log("host").info(std::string("stopping on ") + (sig == SIGINT ? "SIGINT" : "SIGTERM"));
  server.shutdown();
  return kOk;
}

int print_problem(const std::string& input, const slmhub::Problem& p) {
  if (p.errors().empty()) {
    std::cerr << "slmhub: " << input << ": " << p.detail() << "\n";
  } else {
    for (const auto& e : p.errors())
      std::cerr << "slmhub: " << input << ": " << e.path << ": " << e.message << "\n";
  }
  return p.status() >= 500 ? kTempFail : kDataErr;
}

// One configuration key as `plugins list --verbose` shows it: the value this server uses
// (from the file, the environment or the default) as a line the file would take, then what
// the key is. The second line, not a trailing comment: the file has whole-line comments only,
// and a copied line must not carry one into its value.
//   plugins.hello.greeting = hello
//       string, default "hello": what GET /api/v1/hello answers
std::string describe(const Settings& settings, const std::string& plugin,
                     const slmhub::ConfigKey& key) {
  const std::string name = "plugins." + plugin + "." + key.key;
  const std::string value = settings.get(name).value_or(key.default_value);
  std::string text = name + " =" + (value.empty() ? "" : " " + value) + "\n      " +
                     slmhub::to_string(key.type) + ", ";
  if (key.required)
    text += "required";
  else if (key.default_value.empty())
    text += "unset by default";
  else
    text += "default \"" + key.default_value + "\"";
  if (!key.help.empty()) text += ": " + key.help;
  return text;
}

// Runs the plugin command `args` names, if `commands` has it; nothing when it does not.
std::optional<int> run_plugin_command(const slmhub::host::CommandRegistry& commands,
                                      const Args& args, const std::vector<std::string>& raw) {
  std::size_t used = 0;
  const auto* spec = commands.find(args.words, used);
  if (!spec) return std::nullopt;
  std::vector<std::string> rest;
  // Hand the plugin everything after its command words, flags included.
  std::size_t skipped = 0;
  for (const auto& r : raw) {
    if (skipped < used && r == args.words[skipped]) {
      ++skipped;
      continue;
    }
    rest.push_back(r);
  }
  if (args.help) {
    std::cout << "slmhub " << spec->name << " " << spec->usage << "\n  " << spec->help << "\n";
    return kOk;
  }
  return spec->run(rest, std::cout, std::cerr);
}

// Before the store is opened: opening migrates it, which a running server's store must not
// undergo behind its back. Exit 1 when refused (the store is served, the target unreachable
// or not empty) or when a table differs; nothing is committed then.
int migrate_to(Server& server, const std::string& url) {
  const auto refused = [](const std::exception& e) {
    std::cerr << "slmhub migrate --to: " << e.what() << "\n";
    return 1;
  };
  try {
    // A server writing to the store while it is copied would leave the copy behind.
    server.lock_sqlite_store();
  } catch (const std::runtime_error& e) {
    return refused(e);
  }
  server.open();  // a configuration that cannot run fails as for any command
  try {
    auto target = slmhub::host::Database::open(url);
    std::cerr << "copying " << server.database().display_url() << " into " << target->display_url()
              << std::endl;
    const auto checks =
        slmhub::host::copy_store(server.database(), *target,
                                 [](const std::string& line) { std::cerr << line << std::endl; });
    std::int64_t rows = 0;
    std::cout << "table\trows\tsha256\n";
    for (const auto& check : checks) {
      std::cout << check.table << "\t" << check.target_rows << "\t" << check.target_sha256 << "\n";
      rows += check.target_rows;
    }
    std::cout << checks.size() << " tables, " << rows
              << " rows copied; every count and checksum matches the source\n";
    return kOk;
  } catch (const std::runtime_error& e) {
    return refused(e);
  }
}

// Whether the words are one of the forms of their built-in command (its usage in run()'s kHelp).
bool is_form(const Args& args) {
  const auto& w = args.words;
  const std::string& cmd = w[0];
  if (cmd == "serve" || cmd == "migrate") return w.size() == 1;
  if (cmd == "import") return w.size() == 2;
  if (cmd == "plugins") return w.size() == 2 && w[1] == "list";
  if (cmd == "jobs") return (w.size() == 2 && w[1] == "list") || (w.size() == 3 && w[1] == "run");
  if (cmd == "tokens") {
    return (w.size() == 2 && (w[1] == "create" || w[1] == "list")) ||
           (w.size() == 3 && w[1] == "revoke");
  }
  return false;
}

int run(int argc, char** argv) {
  std::vector<std::string> raw;
  Args args = parse_args(argc, argv, raw);
  if (args.words.empty()) {
    std::cout << kUsageText;
    return args.help ? kOk : kUsage;
  }
  const std::string cmd = args.words[0];
  if (cmd == "--version" || cmd == "version") {
    std::cout << "slmhub 0.1.0 (plugin API " << slmhub::kPluginApi << ")\n";
    return kOk;
  }
  static const std::map<std::string, std::string> kHelp{
      {"serve",
       "slmhub serve [--config F] [--daemon]\n  Runs the server until SIGINT or SIGTERM "
       "(--daemon detaches it first).\n  Prints the URL, and on the first start an admin token "
       "(also written to\n  auth.admin_token_file).\n"},
      {"import",
       "slmhub import DATASET.json [--config F]\n  Validates the dataset (DESIGN.md §5.3) and "
       "upserts it in one transaction:\n  all or nothing; importing the same file twice changes "
       "nothing.\n  Exit 0 done, 65 invalid dataset, 66 file missing.\n"},
      {"plugins",
       "slmhub plugins list [--verbose] [--config F]\n  Lists the plugins, one a line: name, "
       "version, state, path and the reason one\n  failed. --verbose adds, under each, the "
       "configuration keys it reads: the\n  value in use, the type, the default and what the key "
       "does.\n"},
      {"jobs",
       "slmhub jobs list [--config F]\nslmhub jobs run NAME [--config F]\n  Lists jobs, or runs "
       "one now in this process (recorded like a scheduled run).\n"},
      {"migrate",
       "slmhub migrate [--config F]\n  Applies pending migrations of the host and every plugin, "
       "then prints the\n  schema version of each owner.\n"
       "slmhub migrate --to postgresql://USER@HOST/DB [--config F]\n  Moves the store to "
       "another database: builds the same schema there, copies every\n  row of every table in "
       "one transaction and commits only when each table's row\n  count and SHA-256 checksum "
       "read back match; prints them per table. The\n  target must hold no data; the server must "
       "be stopped. Exit 0 copied, 1 refused\n  or a table differs (nothing committed).\n"},
      {"tokens",
       "slmhub tokens create --name N --role R[,R...] [--expires ISO]\nslmhub tokens list\nslmhub "
       "tokens revoke ID\n  Roles: viewer, operator, service_manager, approver, billing, admin,\n  "
       "customer:<id>. The token is printed once; only its hash is stored.\n"},
  };
  if (args.help) {
    if (auto it = kHelp.find(cmd); it != kHelp.end()) {
      std::cout << it->second;
      return kOk;
    }
  }

  // A built-in command's words are checked before anything is opened: a mistyped command
  // must not create, migrate or lock a store, nor fail on one instead of on its words.
  if (const auto it = kHelp.find(cmd); it != kHelp.end() && !is_form(args)) {
    std::string given;
    for (const auto& word : args.words) given += (given.empty() ? "" : " ") + word;
    std::cerr << "slmhub: '" << given << "' is not one of the forms of '" << cmd << "':\n"
              << it->second;
    return kUsage;
  }

  Settings settings = load_settings(args);
  Server server(std::move(settings), binary_dir(argv[0]));
  // kHelp names every built-in command. Any other may be a plugin's offline command, which
  // runs without the store: an offline tool must not create or migrate a database.
  if (!kHelp.contains(cmd)) {
    if (auto status = run_plugin_command(server.offline_commands(), args, raw)) return *status;
  }

  if (cmd == "serve") {
    if (args.flags.contains("--daemon")) {
      // Detach before any thread exists; systemd runs the foreground form instead. The parent
      // exits once the child listens, or with the child's status when it could not start (a
      // bad setting, a port in use): a start-up script must not take a failure for a start.
      int ready[2];
      if (::pipe(ready) != 0) throw std::runtime_error("cannot make a pipe to detach");
      pid_t child = fork();
      if (child < 0) throw std::runtime_error("cannot fork to detach");
      if (child > 0) {
        ::close(ready[1]);
        char byte = 0;
        ssize_t got = 0;
        do {
          got = ::read(ready[0], &byte, 1);
        } while (got < 0 && errno == EINTR);
        ::close(ready[0]);
        if (got == 1) {
          std::cout << "slmhub serve detached as pid " << child << std::endl;
          return kOk;
        }
        int status = 0;
        while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : kSoftware;
      }
      ::close(ready[0]);
      setsid();
      return serve(server, ready[1]);
    }
    return serve(server);
  }

  if (cmd == "migrate" && args.flags.contains("--to"))
    return migrate_to(server, args.flags["--to"]);
  // What a command reads besides the store is read first: a missing file or a bad option
  // leaves the store as it was.
  std::stringstream text;
  if (cmd == "import") {
    std::ifstream in(args.words[1]);
    if (!in) {
      std::cerr << "slmhub: " << args.words[1] << ": cannot read the file\n";
      return kNoInput;
    }
    text << in.rdbuf();
  }
  std::optional<slmhub::Instant> expires;
  std::vector<std::string> roles;
  if (cmd == "tokens" && args.words[1] == "create") {
    if (!args.flags.contains("--name") || !args.flags.contains("--role")) {
      std::cerr << "slmhub tokens create: --name and --role are required\n";
      return kUsage;
    }
    std::stringstream list(args.flags["--role"]);
    for (std::string r; std::getline(list, r, ',');)
      if (!r.empty()) roles.push_back(r);
    try {
      slmhub::host::TokenStore::check_roles(roles);
    } catch (const std::invalid_argument& e) {
      std::cerr << "slmhub tokens create: " << e.what() << "\n";
      return kUsage;
    }
    if (args.flags.contains("--expires")) expires = slmhub::parse_instant(args.flags["--expires"]);
  }
  server.open();
  if (cmd == "import") {
    const auto& file = args.words[1];
    try {
      auto result =
          server.core().import(slmhub::Actor{"cli:import"}, slmhub::parse_json(text.str(), 256));
      std::cout << file << ": " << result.created << " created, " << result.updated << " updated, "
                << result.unchanged << " unchanged\n";
      return kOk;
    } catch (const slmhub::Problem& p) {
      return print_problem(file, p);
    }
  }
  if (cmd == "migrate") {
    for (const auto& [owner, version] : server.database().applied_versions())
      std::cout << owner << " " << version << "\n";
    return kOk;
  }
  if (cmd == "plugins") {
    for (const auto& rec : server.plugins().records()) {
      std::cout << rec.name << "\t" << (rec.version.empty() ? "-" : rec.version) << "\t"
                << slmhub::host::to_string(rec.state) << "\t" << rec.path;
      if (!rec.reason.empty()) std::cout << "\t" << rec.reason;
      std::cout << "\n";
      if (args.flags.contains("--verbose")) {
        for (const auto& key : rec.config)
          std::cout << "  " << describe(server.settings(), rec.name, key) << "\n";
      }
    }
    return kOk;
  }
  if (cmd == "jobs" && args.words[1] == "list") {
    for (const auto& j : server.jobs().list()) std::cout << to_json(j).dump() << "\n";
    return kOk;
  }
  if (cmd == "jobs") {
    try {
      std::cout << server.jobs().run_now(args.words[2]) << "\n";
      return kOk;
    } catch (const std::out_of_range&) {
      std::cerr << "slmhub jobs run: no job named '" << args.words[2] << "'\n";
      return kUsage;
    } catch (const slmhub::host::JobBusy& e) {  // running elsewhere: try again later
      std::cerr << "slmhub jobs run: " << e.what() << "\n";
      return kTempFail;
    } catch (const slmhub::host::JobFailed& e) {  // ran, and is recorded as failed
      std::cerr << "slmhub jobs run: " << args.words[2] << " failed: " << e.what() << "\n";
      return 1;
    }
  }
  if (cmd == "tokens") {
    auto& tokens = server.tokens();
    if (args.words[1] == "create") {
      auto created = tokens.create("cli", args.flags["--name"], roles, expires);
      std::cout << created.token << "\n";
      return kOk;
    }
    if (args.words[1] == "list") {
      for (const auto& t : tokens.list()) {
        std::cout << t.id << "\t" << t.name << "\t";
        for (std::size_t i = 0; i < t.roles.size(); ++i) std::cout << (i ? "," : "") << t.roles[i];
        std::cout << (t.revoked_at ? "\trevoked" : "") << "\n";
      }
      return kOk;
    }
    if (!tokens.revoke("cli", args.words[2])) {  // the form left: revoke ID
      std::cerr << "slmhub tokens revoke: no active token '" << args.words[2] << "'\n";
      return kDataErr;
    }
    return kOk;
  }
  if (auto status = run_plugin_command(server.commands(), args, raw)) return *status;
  std::cerr << "slmhub: unknown command '" << cmd << "'\n" << kUsageText;
  return kUsage;
}

}  // namespace

int main(int argc, char** argv) {
  // A peer that hangs up while we write (a mail or webhook client, an SMTP server closing a
  // kept connection, a TLS socket OpenSSL writes with plain write()) is an error on that
  // connection, never a reason for the process to die.
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return run(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::cerr << "slmhub: " << e.what() << "\n";
    return kUsage;
  } catch (const slmhub::Problem& e) {
    // As the SDK maps a problem: the caller's input 65, a busy or absent store 75 (retry).
    std::cerr << "slmhub: " << e.what() << "\n";
    return e.status() >= 500 ? kTempFail : kDataErr;
  } catch (const Poco::Exception& e) {
    // what() is only the class's name ("Net Exception"); the text says what went wrong.
    std::cerr << "slmhub: " << e.displayText() << "\n";
    return kConfig;
  } catch (const std::exception& e) {
    std::cerr << "slmhub: " << e.what() << "\n";
    return kConfig;
  }
}
