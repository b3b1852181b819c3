#include "codec.hpp"

#include "csv.hpp"

namespace slmhub::billing {

RateCard rate_card_from_json(const Json& value, const std::string& path,
                             std::vector<FieldError>& errors) {
  ObjectReader r(value, path, errors);
  RateCard card;
  if (!r.is_object()) return card;
  card.id = r.required_string("id");
  card.valid_from = r.required_date("valid_from");
  card.hourly_rate_cents = r.required_int("hourly_rate_cents", 0, kMaxAmountCents);
  card.oncall_week_cents =
      r.optional_int("oncall_week_cents", 0, kMaxAmountCents).value_or(kOncallWeekCents);
  if (const Json* offerings = r.take("offerings")) {
    const std::string at = r.path_of("offerings");
    if (!offerings->is_object()) {
      errors.push_back({at, "must be an object of service id → monthly charge in cents"});
    } else {
      for (const auto& [service, cents] : offerings->items()) {
        if (!cents.is_number_integer() || cents.get<std::int64_t>() < 0 ||
            cents.get<std::int64_t>() > kMaxAmountCents) {
          errors.push_back({path_key(at, service), "must be a whole number of cents from 0 to " +
                                                       std::to_string(kMaxAmountCents)});
        } else {
          card.offerings[service] = cents.get<std::int64_t>();
        }
      }
    }
  }
  r.finish();
  return card;
}

Json to_json(const RateCard& card) {
  Json offerings = Json::object();
  for (const auto& [service, cents] : card.offerings) offerings[service] = cents;
  return {{"id", card.id},
          {"valid_from", format_date(card.valid_from)},
          {"hourly_rate_cents", card.hourly_rate_cents},
          {"oncall_week_cents", card.oncall_week_cents},
          {"offerings", offerings}};
}

TimeEntry time_entry_from_json(const Json& value, const std::string& path,
                               std::vector<FieldError>& errors) {
  ObjectReader r(value, path, errors);
  TimeEntry e;
  if (!r.is_object()) return e;
  e.id = r.optional_string("id").value_or("");
  e.customer = r.required_string("customer");
  e.date = r.required_date("date");
  e.minutes = r.required_int("minutes", 1, 24 * 60);
  e.description = r.required_string("description");
  e.ticket = r.optional_string("ticket").value_or("");
  if (auto kind = r.optional_string("kind")) {
    if (auto k = parse_work_kind(*kind)) {
      e.kind = *k;
    } else {
      r.error("kind", "must be included_support or billable, not '" + *kind + "'");
    }
  }
  r.finish();
  return e;
}

Json to_json(const TimeEntry& e) {
  return {{"id", e.id},
          {"customer", e.customer},
          {"date", format_date(e.date)},
          {"minutes", e.minutes},
          {"rounded_minutes", round_up_to_quarter_hour(e.minutes)},
          {"description", e.description},
          {"ticket", e.ticket},
          {"kind", to_string(e.kind)}};
}

OncallRequest oncall_request_from_json(const Json& value, const std::string& path,
                                       std::vector<FieldError>& errors) {
  ObjectReader r(value, path, errors);
  OncallRequest o;
  if (!r.is_object()) return o;
  o.id = r.optional_string("id").value_or("");
  o.customer = r.required_string("customer");
  o.first_day = r.required_date("first_day");
  o.last_day = r.required_date("last_day");
  if (auto d = r.optional_date("requested_on")) o.requested_on = *d;
  o.reason = r.optional_string("reason", EmptyString::allow).value_or("");
  r.finish();
  return o;
}

Json to_json(const OncallRequest& o) {
  return {{"id", o.id},
          {"customer", o.customer},
          {"first_day", format_date(o.first_day)},
          {"last_day", format_date(o.last_day)},
          {"days", oncall_days(o)},
          {"weeks", oncall_weeks(o)},
          {"requested_on", format_date(o.requested_on)},
          {"reason", o.reason},
          {"state", o.state}};
}

Json to_json(const Line& l, int number) {
  Json out = {{"id", std::to_string(number)},
              {"kind", l.kind},
              {"description", l.description},
              {"quantity", files::format_quantity(l.quantity_milli)},
              {"quantity_milli", l.quantity_milli},
              {"unit_code", l.unit_code},
              {"unit_price_cents", l.unit_price_cents},
              {"amount_cents", l.amount_cents},
              {"reference", l.reference},
              {"sources", l.sources}};
  out["period_start"] = l.period_start ? Json(format_date(*l.period_start)) : Json();
  out["period_end"] = l.period_end ? Json(format_date(*l.period_end)) : Json();
  return out;
}

}  // namespace slmhub::billing
