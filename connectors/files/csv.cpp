#include "csv.hpp"

#include <string_view>

namespace slmhub::files {
namespace {

// |value| without overflow, also for INT64_MIN.
std::uint64_t magnitude(std::int64_t value) {
  return value < 0 ? ~static_cast<std::uint64_t>(value) + 1 : static_cast<std::uint64_t>(value);
}

bool needs_quotes(std::string_view field) {
  if (field.empty()) return false;
  if (field.find_first_of(",\"\r\n") != std::string_view::npos) return true;
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  return blank(field.front()) || blank(field.back());
}

const char* kind_name(DocumentKind kind) {
  return kind == DocumentKind::credit_note ? "credit_note" : "invoice";
}

}  // namespace

std::string format_money(std::int64_t cents) {
  const std::uint64_t abs = magnitude(cents);
  const std::uint64_t fraction = abs % 100;
  std::string out = cents < 0 ? "-" : "";
  out += std::to_string(abs / 100);
  out += '.';
  out += static_cast<char>('0' + fraction / 10);
  out += static_cast<char>('0' + fraction % 10);
  return out;
}

std::string format_quantity(std::int64_t milli) {
  const std::uint64_t abs = magnitude(milli);
  std::uint64_t fraction = abs % 1000;
  std::string out = milli < 0 ? "-" : "";
  out += std::to_string(abs / 1000);
  if (fraction == 0) return out;
  std::string digits = {static_cast<char>('0' + fraction / 100),
                        static_cast<char>('0' + fraction / 10 % 10),
                        static_cast<char>('0' + fraction % 10)};
  while (digits.back() == '0') digits.pop_back();
  out += '.';
  out += digits;
  return out;
}

void append_csv_row(std::string& out, const std::vector<std::string>& fields) {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ',';
    const std::string& field = fields[i];
    if (!needs_quotes(field)) {
      out += field;
      continue;
    }
    out += '"';
    for (char c : field) {
      if (c == '"') out += '"';
      out += c;
    }
    out += '"';
  }
  out += "\r\n";
}

std::string invoices_csv_header() {
  std::string out;
  append_csv_row(out, {"document_type", "document_number",   "issue_date",      "due_date",
                       "period_start",  "period_end",        "currency",        "customer_id",
                       "customer_name", "billing_reference", "line_id",         "line_kind",
                       "description",   "quantity",          "unit_code",       "unit_price",
                       "amount",        "line_period_start", "line_period_end", "reference",
                       "document_total"});
  return out;
}

void append_invoice_csv_rows(std::string& out, const Document& doc) {
  const std::string total = format_money(doc.total_cents);
  for (const DocumentLine& line : doc.lines) {
    append_csv_row(out, {kind_name(doc.kind),
                         doc.number,
                         doc.issue_date,
                         doc.due_date,
                         doc.period_start,
                         doc.period_end,
                         doc.currency,
                         doc.customer.id,
                         doc.customer.name,
                         doc.billing_reference,
                         line.id,
                         line.kind,
                         line.description,
                         format_quantity(line.quantity_milli),
                         line.unit_code,
                         format_money(line.unit_price_cents),
                         format_money(line.amount_cents),
                         line.period_start,
                         line.period_end,
                         line.reference,
                         total});
  }
}

std::string invoices_csv(const std::vector<Document>& documents) {
  std::string out = invoices_csv_header();
  for (const Document& doc : documents) append_invoice_csv_rows(out, doc);
  return out;
}

}  // namespace slmhub::files
