// The billing_export plugin module: reads plugins.billing_export.*, registers the routes, the
// credit subscription, the monthly export and daily estimate jobs, the e-mail sender and the
// `slmhub export invoices` command. The logic is in billing.cpp (docs/billing.md).
#include <map>
#include <memory>
#include <ostream>

#include "atomic_dir.hpp"
#include "billing.hpp"
#include "slmhub/errors.hpp"
#include "slmhub/plugin.hpp"
#include "smtp.hpp"

namespace {

using slmhub::billing::Billing;
using slmhub::billing::Settings;
namespace exit_code = slmhub::exit_code;

constexpr const char* kUsage = "--month YYYY-MM --out DIR [--format csv,ubl]";

int export_command(Billing& billing, const std::vector<std::string>& args, std::ostream& out,
                   std::ostream& err) {
  auto usage = [&](const std::string& why) {
    err << "slmhub export invoices: " << why << "\nusage: slmhub export invoices " << kUsage
        << "\n";
    return exit_code::kUsage;
  };
  std::map<std::string, std::string> flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::optional<std::string> value;
    if (const auto eq = name.find('='); name.starts_with("--") && eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (name != "--month" && name != "--out" && name != "--format" && name != "--config")
      return usage("unexpected argument '" + args[i] + "'");
    if (!value) {
      if (i + 1 >= args.size()) return usage(name + " needs a value");
      value = args[++i];
    }
    if (flags.contains(name)) return usage(name + " given twice");
    flags[name] = *value;
  }
  if (!flags.contains("--month")) return usage("--month YYYY-MM is required");
  if (!flags.contains("--out")) return usage("--out DIR is required");
  date::year_month month;
  try {
    month = slmhub::parse_month(flags["--month"]);
  } catch (const std::exception& e) {
    return usage(std::string("--month: ") + e.what());
  }
  std::vector<std::string> formats;
  std::string list = flags.contains("--format") ? flags["--format"] : "csv,ubl";
  for (std::size_t start = 0; start <= list.size();) {
    const auto comma = std::min(list.find(',', start), list.size());
    formats.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  try {
    const auto result = billing.export_month({"cli"}, month, formats, flags["--out"]);
    const auto& r = result.record;
    out << (result.written ? "wrote " : "unchanged: ") << result.directory.string() << " ("
        << r.at("documents").get<std::int64_t>() << " documents, " << r.at("files").size() + 1
        << " files)\n";
    return exit_code::kOk;
  } catch (const slmhub::ValidationError& e) {  // a bad --format
    return usage(e.detail());
  } catch (const slmhub::Problem& e) {  // the month cannot be finalised, an entry has no price
    err << "slmhub export invoices: " << e.detail() << "\n";
    return e.status() >= 500 ? exit_code::kTempFail : exit_code::kDataErr;
  } catch (const slmhub::files::WriteError& e) {
    err << "slmhub export invoices: " << e.what() << "\n";
    return exit_code::kCantCreate;
  } catch (const std::logic_error& e) {  // a document the writers refuse: a bug, not the input
    err << "slmhub export invoices: internal error: " << e.what() << "\n";
    return 70;                         // EX_SOFTWARE
  } catch (const std::exception& e) {  // the store (busy, unreachable): the next run completes it
    err << "slmhub export invoices: " << e.what() << "\n";
    return exit_code::kTempFail;
  }
}

class BillingExport : public slmhub::Plugin {
 public:
  slmhub::PluginInfo info() const override {
    return {"billing_export", "1.0.0", slmhub::kPluginApi, {}};
  }

  std::vector<slmhub::ConfigKey> config_schema() const override {
    using T = slmhub::ConfigType;
    std::vector<slmhub::ConfigKey> keys = {
        {"currency", T::string, "USD", "ISO 4217 currency of every invoice"},
        {"supplier.id", T::string, "PROVIDER",
         "the provider's id on invoices (UBL PartyIdentification)"},
        {"supplier.name", T::string, "Service provider", "the provider's name on invoices"},
        {"supplier.email", T::string, "", "the provider's billing address on invoices"},
        {"payment_terms_days", T::integer, "30", "days from issue to due date"},
        {"final_invoice_days", T::integer, "14",
         "days from issue to due date of a customer's final invoice (after cancellation)"},
        {"included_hours_per_year", T::integer, "20",
         "support hours included per customer and fiscal year before time is billed"},
        {"export.dir", T::string, "var/exports",
         "where POST /api/v1/exports and the monthly job write invoices-YYYY-MM/"},
        {"export.formats", T::list, "csv,ubl", "formats of the monthly export"},
        {"export.schedule", T::cron, "0 6 5 * *",
         "when the previous month is finalised and exported, with any final month not exported yet "
         "(cron, provider zone); empty: never"},
        {"estimates.schedule", T::cron, "0 7 * * *",
         "when due estimates are issued and changed ones re-issued (cron, provider zone); "
         "empty: never"},
        {"estimates.months_before", T::integer, "3",
         "estimates are issued this many months before the fiscal year starts"},
        {"estimates.significant_percent", T::integer, "10",
         "a change of at least this share of the current year's cost is marked significant"},
    };
    for (auto& key : slmhub::mail::smtp_config_keys(
             "SMTP server that sends estimates; empty: they wait in the outbox",
             "billing_export_smtp_password")) {
      if (key.key == "smtp.from") key.help = "sender of estimate e-mail (needed with smtp.host)";
      keys.push_back(std::move(key));
    }
    return keys;
  }

  void start(slmhub::Host& host) override {
    const slmhub::Config& config = host.config();
    host.store().migrate("billing_export", Billing::migrations());
    Settings s;
    s.currency = config.string("currency");
    if (s.currency.size() != 3 || !std::all_of(s.currency.begin(), s.currency.end(), ::isupper))
      throw std::invalid_argument(
          "plugins.billing_export.currency must be an ISO 4217 code such "
          "as USD, not '" +
          s.currency + "'");
    s.supplier = {config.string("supplier.id"), config.string("supplier.name"),
                  config.string("supplier.email")};
    s.payment_terms_days = static_cast<int>(positive(config, "payment_terms_days"));
    s.final_invoice_days = static_cast<int>(positive(config, "final_invoice_days"));
    s.included_minutes_per_year = config.integer("included_hours_per_year") * 60;
    if (s.included_minutes_per_year < 0)
      throw std::invalid_argument("plugins.billing_export.included_hours_per_year must be >= 0");
    s.export_dir = config.string("export.dir");
    s.estimate_months_before = static_cast<int>(positive(config, "estimates.months_before"));
    s.significant_basis_points = positive(config, "estimates.significant_percent") * 100;
    s.export_formats = config.list("export.formats");
    for (const auto& f : s.export_formats) {
      if (f != "csv" && f != "ubl")
        throw std::invalid_argument("plugins.billing_export.export.formats: '" + f +
                                    "' is not a format (csv, ubl)");
    }
    if (s.export_formats.empty())
      throw std::invalid_argument("plugins.billing_export.export.formats names no format");

    billing_ = std::make_unique<Billing>(host.store(), host.catalog(), host.events(), host.outbox(),
                                         host.clock(), host.log(), s);
    Billing& billing = *billing_;
    billing.subscribe();
    billing.add_routes(host.http());
    register_email(host);

    const std::string zone = host.catalog().provider_calendar().zone()->name();
    if (const std::string schedule = config.string("export.schedule"); !schedule.empty()) {
      host.scheduler().add({"billing_export.monthly", schedule, zone,
                            "finalise and export the previous month's invoices, and any final "
                            "month not exported yet",
                            [&billing](const slmhub::JobContext& job) {
                              return billing.export_due(job.scheduled_for);
                            },
                            "billing"});
    }
    if (const std::string schedule = config.string("estimates.schedule"); !schedule.empty()) {
      host.scheduler().add(
          {"billing_export.estimates", schedule, zone,
           "annual cost estimates: issue when due, re-issue when rates change",
           [&billing](const slmhub::JobContext& job) { return billing.run_estimates(job.now); },
           "billing"});
    }
    host.commands().add(
        {"export invoices", kUsage,
         "finalises the month's invoices if needed and writes DIR/invoices-YYYY-MM/ "
         "(CSV, UBL 2.1, manifest.json) atomically; re-running gives the same bytes",
         [&billing](const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
           return export_command(billing, args, out, err);
         }});
  }

  void stop() override { billing_.reset(); }

 private:
  static std::int64_t positive(const slmhub::Config& config, const std::string& key) {
    const std::int64_t v = config.integer(key);
    if (v <= 0) throw std::invalid_argument("plugins.billing_export." + key + " must be > 0");
    return v;
  }

  void register_email(slmhub::Host& host) {
    const slmhub::Config& config = host.config();
    if (config.string("smtp.host").empty()) {
      host.log().info("smtp.host is not set: estimates wait in the outbox until it is");
      return;
    }
    const auto smtp = slmhub::mail::smtp_settings_from_config(
        config, "billing_export", host.secrets().get("billing_export_smtp_password").value_or(""));
    const std::string from = config.string("smtp.from");
    if (!slmhub::looks_like_email(from))
      throw std::invalid_argument(
          "plugins.billing_export.smtp.from must be an address when smtp.host is set, not '" +
          from + "'");
    host.outbox().register_sender(
        slmhub::billing::kEmailChannel,
        slmhub::mail::make_email_sender(smtp, from, config.string("smtp.from_name"), host.clock()));
  }

  std::unique_ptr<Billing> billing_;
};

std::unique_ptr<slmhub::Plugin> create() { return std::make_unique<BillingExport>(); }

}  // namespace

SLMHUB_PLUGIN(create)
