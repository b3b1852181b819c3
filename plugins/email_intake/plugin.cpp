// The email_intake plugin module: queues from configuration, the LMTP listener, the
// /api/v1/mail routes, `slmhub mailgate`, and the outbox's "email" channel over SMTP. All
// logic is in slmhub_email_core and the mail connector; this file only wires them in.
#include <iostream>
#include <memory>

#include "intake.hpp"
#include "lmtp.hpp"
#include "mailgate.hpp"
#include "polling.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/errors.hpp"
#include "slmhub/plugin.hpp"
#include "smtp.hpp"

namespace {

using slmhub::Json;
using slmhub::Request;
using slmhub::Response;
using slmhub::email::IntakeResult;
using slmhub::email::MailIntake;

Json result_json(const IntakeResult& r) {
  return {{"outcome", r.outcome},
          {"ticket", r.ticket.empty() ? Json() : Json(r.ticket)},
          {"detail", r.detail},
          {"auto_replied", r.auto_replied}};
}

// The {id} of a path: a row id, or 404 naming `what`.
std::int64_t id_param(const Request& req, const std::string& what) {
  const std::string& id = req.params.at("id");
  if (id.empty() || id.size() > 18 || id.find_first_not_of("0123456789") != std::string::npos) {
    throw slmhub::NotFound("no " + what + " '" + id + "'");
  }
  return std::stoll(id);
}

class EmailIntake : public slmhub::Plugin {
 public:
  slmhub::PluginInfo info() const override {
    return {"email_intake", "0.1.0", slmhub::kPluginApi, {}};
  }

  std::vector<slmhub::ConfigKey> config_schema() const override {
    using T = slmhub::ConfigType;
    std::vector<slmhub::ConfigKey> keys{
        {"queues", T::list, "",
         "ticket queues fed by mail, comma-separated name:PREFIX:address items "
         "(db-requests:DBR:db-requests@example.org)"},
        {"unknown_sender", T::string, "new_ticket",
         "a reply from someone neither requester nor customer contact: new_ticket or hold"},
        {"autoreplies_per_sender_per_day", T::integer, "5",
         "most auto-replies to one address a day"},
        {"lmtp.listen", T::string, "",
         "host:port of the LMTP listener an MTA delivers to (127.0.0.1:2424); empty: none"},
        {"lmtp.max_message_bytes", T::integer, "52428800", "largest message taken over LMTP"},
        {"lmtp.max_connections", T::integer, "16", "concurrent LMTP sessions"},
        {"poll.mailboxes", T::list, "",
         "POP3/IMAP mailboxes polled into queues, comma-separated URLs: "
         "imaps://USER@HOST/INBOX?queue=NAME&secret=SECRET[&mode=flag|delete|move&move_to=F] "
         "or pop3s://USER@HOST?queue=NAME&secret=SECRET; the password is secret SECRET"},
        {"poll.schedule", T::cron, "* * * * *", "when the mailboxes are polled (cron, UTC)"},
        {"poll.ca_file", T::string, "", "extra CA certificate file to verify the mail servers"},
        {"poll.max_message_bytes", T::integer, "52428800",
         "larger polled messages stay on the server (and are reported)"},
        {"poll.max_messages", T::integer, "500", "most messages one poll takes from a mailbox"},
        {"poll.timeout_ms", T::integer, "30000", "connect and response timeout of a poll"},
    };
    for (auto& key : slmhub::mail::smtp_config_keys(
             "SMTP server that sends the outbox's e-mail (auto-replies and every notice); "
             "empty: e-mail waits in the outbox",
             "smtp_password")) {
      if (key.key == "smtp.from")
        key.help = "sender of notices that name no From (default: the first queue's address)";
      keys.push_back(std::move(key));
    }
    return keys;
  }

  void register_offline_commands(slmhub::Commands& commands) override {
    commands.add({"mailgate",
                  "--url URL --queue NAME [--token-file FILE] [--sender ADDRESS] < message",
                  "hands one message from an MTA pipe to a running server's mail intake; exit "
                  "status 0 delivered, 65 refused, 75 try later, 77 not allowed",
                  [](const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
                    return slmhub::email::run_mailgate(args, std::cin, out, err);
                  }});
  }

  void start(slmhub::Host& host) override {
    const slmhub::Config& config = host.config();
    slmhub::email::IntakeSettings settings;
    for (const auto& item : config.list("queues")) {
      try {
        settings.queues.push_back(slmhub::email::parse_queue(item));
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("plugins.email_intake.queues: ") + e.what());
      }
    }
    if (const std::string from = config.string("smtp.from"); !from.empty()) {
      settings.own_addresses.push_back(from);
    }
    settings.unknown_sender = config.string("unknown_sender", "new_ticket");
    if (settings.unknown_sender != "new_ticket" && settings.unknown_sender != "hold") {
      throw std::invalid_argument(
          "plugins.email_intake.unknown_sender must be new_ticket or hold, not '" +
          settings.unknown_sender + "'");
    }
    settings.autoreplies_per_sender_per_day =
        static_cast<int>(config.integer("autoreplies_per_sender_per_day", 5));

    host.store().migrate("email_intake", MailIntake::migrations());
    intake_ = std::make_unique<MailIntake>(host.store(), host.catalog(), host.tickets(),
                                           host.outbox(), host.clock(), host.log(), settings);
    intake_->declare_queues();
    register_sender(host);
    register_routes(host.http());
    start_lmtp(host);
    start_polling(host);
  }

  void stop() override {
    if (lmtp_) lmtp_->stop();
    lmtp_.reset();
  }

 private:
  void register_sender(slmhub::Host& host) {
    const slmhub::Config& config = host.config();
    const std::string smtp_host = config.string("smtp.host");
    if (smtp_host.empty()) {
      host.log().warning("smtp.host is not set: e-mail stays in the outbox until it is");
      return;
    }
    const auto smtp = slmhub::mail::smtp_settings_from_config(
        config, "email_intake", host.secrets().get("smtp_password").value_or(""));
    std::string from = config.string("smtp.from");
    if (from.empty() && !intake_->queues().empty()) from = intake_->queues().front().address;
    if (from.empty()) {
      throw std::invalid_argument(
          "plugins.email_intake.smtp.from is needed when no queue is configured");
    }
    host.outbox().register_sender(
        "email", slmhub::mail::make_email_sender(
                     smtp, from, config.string("smtp.from_name", "slmhub"), host.clock()));
  }

  void start_lmtp(slmhub::Host& host) {
    const std::string listen = host.config().string("lmtp.listen");
    if (listen.empty()) return;
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
      throw std::invalid_argument("plugins.email_intake.lmtp.listen must be host:port, not '" +
                                  listen + "'");
    }
    slmhub::mail::LmtpSettings s;
    s.host = listen.substr(0, colon);
    s.port =
        static_cast<int>(slmhub::parse_config_integer("lmtp.listen", listen.substr(colon + 1)));
    s.max_message_bytes =
        static_cast<std::size_t>(host.config().integer("lmtp.max_message_bytes", 50 << 20));
    s.max_connections = static_cast<int>(host.config().integer("lmtp.max_connections", 16));
    // A CLI command (`slmhub jobs run email_intake.poll-1`) beside the server: the port is
    // the server's, and binding it would fail this plugin and hide its jobs.
    if (!host.serving()) return;
    MailIntake& intake = *intake_;
    slmhub::mail::LmtpHandlers handlers;
    handlers.check_recipient =
        [&intake](const std::string& rcpt) -> std::optional<slmhub::mail::LmtpReply> {
      if (intake.queue_for_address(rcpt)) return std::nullopt;
      return slmhub::mail::LmtpReply{550, "5.1.1", "no queue for <" + rcpt + ">"};
    };
    handlers.deliver = [&intake](const slmhub::mail::Envelope& envelope, std::string message) {
      // Each queue applies the message once; recipients of the same queue share the result.
      std::vector<slmhub::mail::LmtpReply> replies;
      std::vector<std::pair<const slmhub::email::Queue*, std::string>> done;
      for (const auto& rcpt : envelope.recipients) {
        const auto* queue = intake.queue_for_address(rcpt);
        std::string answer;
        for (const auto& [q, a] : done) {
          if (q == queue) answer = a;
        }
        if (answer.empty()) {
          const IntakeResult r = intake.receive(
              *queue, envelope.mail_from.empty() ? slmhub::email::kNullSender : envelope.mail_from,
              message);
          answer = r.outcome + (r.ticket.empty() ? "" : " " + r.ticket);
          done.emplace_back(queue, answer);
        }
        replies.push_back({250, "2.0.0", answer});
      }
      return replies;
    };
    lmtp_ = std::make_unique<slmhub::mail::LmtpServer>(s, std::move(handlers), host.log());
    const int port = lmtp_->start();
    host.log().info("LMTP listening on " + s.host + ":" + std::to_string(port));
  }

  // One job per mailbox; the commit is the intake's receive, which returns a result once the
  // message is committed (quarantine included) or throws when even that fails.
  void start_polling(slmhub::Host& host) {
    const slmhub::Config& config = host.config();
    slmhub::email::MailboxSettings defaults;
    defaults.ca_file = config.string("poll.ca_file");
    defaults.max_message_bytes =
        static_cast<std::size_t>(config.integer("poll.max_message_bytes", 50 << 20));
    defaults.max_messages_per_poll =
        static_cast<std::size_t>(config.integer("poll.max_messages", 500));
    defaults.timeout_ms = static_cast<int>(config.integer("poll.timeout_ms", 30000));
    const auto secret = [&host](const std::string& name) { return host.secrets().get(name); };
    const auto mailboxes = config.list("poll.mailboxes");
    for (std::size_t i = 0; i < mailboxes.size(); ++i) {
      auto settings = slmhub::email::parse_mailbox(mailboxes[i], secret, defaults);
      const slmhub::email::Queue* queue = intake_->queue_named(settings.queue);
      if (queue == nullptr) {
        throw std::invalid_argument(
            "plugins.email_intake.poll.mailboxes: " + slmhub::email::describe(settings) +
            " names queue '" + settings.queue + "', which is not in queues");
      }
      auto poller = std::make_shared<slmhub::email::MailboxPoller>(std::move(settings), host.log());
      MailIntake& intake = *intake_;
      host.scheduler().add({"email_intake.poll-" + std::to_string(i + 1),
                            config.string("poll.schedule", "* * * * *"), "UTC",
                            "fetches new mail from " + slmhub::email::describe(poller->settings()) +
                                " into queue " + queue->name,
                            [poller, queue, &intake](const slmhub::JobContext&) {
                              return poller->poll([queue, &intake](const std::string& raw) {
                                intake.receive(*queue, "",
                                               raw);  // "" : no envelope sender when polled
                                return true;
                              });
                            }});
      pollers_.push_back(std::move(poller));
    }
  }

  void register_routes(slmhub::HttpRoutes& http) {
    MailIntake& intake = *intake_;
    http.add({"POST", "/api/v1/mail/inbound", "operator",
              [&intake](const Request& req) {
                const std::string name = req.query_param("queue");
                const auto* queue = intake.queue_named(name);
                if (!queue) {
                  throw slmhub::ValidationError(
                      "queue", name.empty() ? "required" : "no mail queue '" + name + "'");
                }
                if (req.body.empty()) throw slmhub::ValidationError("body", "no message");
                // X-Envelope-From: <address>, or <> for a bounce (mailgate --sender).
                std::string sender = req.header("x-envelope-from");
                if (sender != slmhub::email::kNullSender && sender.size() >= 2 &&
                    sender.front() == '<' && sender.back() == '>') {
                  sender = sender.substr(1, sender.size() - 2);
                }
                const IntakeResult r = intake.receive(*queue, sender, req.body);
                return Response::json(result_json(r), r.outcome == "ticket" ? 201 : 200);
              },
              "one raw RFC 5322 message for a queue (what slmhub mailgate sends): a ticket, a "
              "reply on one, or quarantine"});
    http.add({"GET", "/api/v1/mail/quarantine", "operator",
              [&intake](const Request& req) {
                const std::string state = req.query_param("state");
                if (!state.empty() && state != "quarantined" && state != "held" &&
                    state != "replayed") {
                  throw slmhub::ValidationError(
                      "state", "'" + state + "' is not quarantined, held or replayed");
                }
                return Response::json({{"messages", intake.quarantine(state)}});
              },
              "messages kept whole because they could not be processed or were held for review"});
    http.add({"GET", "/api/v1/mail/attachments", "viewer",
              [&intake](const Request& req) {
                const std::string ticket = req.query_param("ticket");
                if (ticket.empty()) throw slmhub::ValidationError("ticket", "required");
                return Response::json({{"attachments", intake.attachments(ticket)}});
              },
              "the attachments of a ticket's mail (?ticket=), without their bytes"});
    http.add({"GET", "/api/v1/mail/attachments/{id}", "viewer",
              [&intake](const Request& req) {
                auto found = intake.attachment(id_param(req, "mail attachment"));
                if (!found) {
                  throw slmhub::NotFound("no mail attachment '" + req.params.at("id") + "'");
                }
                return Response::download(std::move(found->bytes), found->content_type,
                                          found->name);
              },
              "one attachment's bytes as they were sent, as a download"});
    http.add({"POST", "/api/v1/mail/quarantine/{id}/replay", "operator",
              [&intake](const Request& req) {
                return Response::json(
                    result_json(intake.replay(slmhub::Actor{"token:" + req.principal.id},
                                              id_param(req, "quarantined message"))));
              },
              "processes a quarantined or held message again"});
  }

  std::unique_ptr<MailIntake> intake_;
  std::unique_ptr<slmhub::mail::LmtpServer> lmtp_;
  std::vector<std::shared_ptr<slmhub::email::MailboxPoller>> pollers_;
};

std::unique_ptr<slmhub::Plugin> create() { return std::make_unique<EmailIntake>(); }

}  // namespace

SLMHUB_PLUGIN(create)
