#include "ubl.hpp"

#include <cctype>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include "csv.hpp"

namespace slmhub::files {
namespace {

constexpr const char* kNamespaceInvoice = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2";
constexpr const char* kNamespaceCreditNote =
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2";
constexpr const char* kNamespaceCac =
    "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2";
constexpr const char* kNamespaceCbc =
    "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";

using Attributes = std::vector<std::pair<std::string, std::string>>;

// Appends elements with a fixed indentation; no state beyond the depth, so the output only
// depends on the calls.
class XmlWriter {
 public:
  XmlWriter() { out_ = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"; }

  void open(const std::string& name, const Attributes& attributes = {}) {
    start_tag(name, attributes);
    out_ += ">\n";
    ++depth_;
  }
  void close(const std::string& name) {
    --depth_;
    indent();
    out_ += "</" + name + ">\n";
  }
  void leaf(const std::string& name, std::string_view text, const Attributes& attributes = {}) {
    start_tag(name, attributes);
    out_ += '>';
    out_ += escape_xml(text);
    out_ += "</" + name + ">\n";
  }
  std::string take() { return std::move(out_); }

 private:
  void indent() { out_.append(static_cast<std::size_t>(depth_) * 2, ' '); }
  void start_tag(const std::string& name, const Attributes& attributes) {
    indent();
    out_ += '<' + name;
    for (const auto& [key, value] : attributes) {
      out_ += ' ' + key + "=\"" + escape_xml(value, true) + '"';
    }
  }

  std::string out_;
  int depth_ = 0;
};

// Decodes one UTF-8 sequence at `text[i]`; returns the code point and advances `i`, or returns
// -1 (advancing by one byte) for a malformed, overlong or surrogate sequence.
long next_code_point(std::string_view text, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) {
    ++i;
    return lead;
  }
  std::size_t length = 0;
  long cp = 0;
  long min = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    cp = lead & 0x1F;
    min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    cp = lead & 0x0F;
    min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    cp = lead & 0x07;
    min = 0x10000;
  } else {
    ++i;
    return -1;
  }
  if (i + length > text.size()) {
    ++i;
    return -1;
  }
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) {
      ++i;
      return -1;
    }
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return -1;
  }
  i += length;
  return cp;
}

bool is_date(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return false;
  static constexpr std::size_t kDigits[] = {0, 1, 2, 3, 5, 6, 8, 9};
  for (std::size_t k : kDigits) {
    if (text[k] < '0' || text[k] > '9') return false;
  }
  const int month = (text[5] - '0') * 10 + (text[6] - '0');
  const int day = (text[8] - '0') * 10 + (text[9] - '0');
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

void check_date(const Document& doc, const std::string& field, const std::string& value,
                bool optional) {
  if (optional && value.empty()) return;
  if (!is_date(value)) {
    throw std::invalid_argument("UBL document " + doc.number + ": " + field + " \"" + value +
                                "\" is not a date YYYY-MM-DD");
  }
}

void check_document(const Document& doc) {
  if (doc.lines.empty()) {
    throw std::invalid_argument("UBL document " + doc.number +
                                ": has no lines (UBL needs at least one)");
  }
  const std::string& c = doc.currency;
  if (c.size() != 3 || !std::isupper(static_cast<unsigned char>(c[0])) ||
      !std::isupper(static_cast<unsigned char>(c[1])) ||
      !std::isupper(static_cast<unsigned char>(c[2]))) {
    throw std::invalid_argument("UBL document " + doc.number + ": currency \"" + c +
                                "\" is not an ISO 4217 code of three capital letters");
  }
  check_date(doc, "issue_date", doc.issue_date, false);
  check_date(doc, "due_date", doc.due_date, true);
  check_date(doc, "period_start", doc.period_start, true);
  check_date(doc, "period_end", doc.period_end, true);
  std::int64_t sum = 0;
  for (const DocumentLine& line : doc.lines) {
    check_date(doc, "line " + line.id + " period_start", line.period_start, true);
    check_date(doc, "line " + line.id + " period_end", line.period_end, true);
    sum += line.amount_cents;
  }
  if (sum != doc.total_cents) {
    throw std::invalid_argument("UBL document " + doc.number + ": total " +
                                format_money(doc.total_cents) +
                                " is not the sum of its lines' amounts " + format_money(sum));
  }
}

// A name is shown on one line: line breaks and tabs become spaces.
std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '\r' || c == '\n' || c == '\t') c = ' ';
  }
  return text;
}

void write_period(XmlWriter& xml, const std::string& start, const std::string& end) {
  if (start.empty() && end.empty()) return;
  xml.open("cac:InvoicePeriod");
  if (!start.empty()) xml.leaf("cbc:StartDate", start);
  if (!end.empty()) xml.leaf("cbc:EndDate", end);
  xml.close("cac:InvoicePeriod");
}

void write_party(XmlWriter& xml, const std::string& role, const Party& party) {
  xml.open(role);
  xml.open("cac:Party");
  if (!party.id.empty()) {
    xml.open("cac:PartyIdentification");
    xml.leaf("cbc:ID", party.id);
    xml.close("cac:PartyIdentification");
  }
  xml.open("cac:PartyName");
  xml.leaf("cbc:Name", party.name);
  xml.close("cac:PartyName");
  xml.open("cac:PartyLegalEntity");
  xml.leaf("cbc:RegistrationName", party.name);
  xml.close("cac:PartyLegalEntity");
  if (!party.email.empty()) {
    xml.open("cac:Contact");
    xml.leaf("cbc:ElectronicMail", party.email);
    xml.close("cac:Contact");
  }
  xml.close("cac:Party");
  xml.close(role);
}

void write_line(XmlWriter& xml, const Document& doc, const DocumentLine& line, bool credit_note) {
  const Attributes currency = {{"currencyID", doc.currency}};
  const std::string element = credit_note ? "cac:CreditNoteLine" : "cac:InvoiceLine";
  // BR-27: no negative price; the quantity takes the sign instead (see ubl.hpp).
  const bool flip = line.unit_price_cents < 0;
  const std::int64_t quantity_milli = flip ? -line.quantity_milli : line.quantity_milli;
  const std::int64_t price_cents = flip ? -line.unit_price_cents : line.unit_price_cents;

  xml.open(element);
  xml.leaf("cbc:ID", line.id);
  if (!line.kind.empty()) xml.leaf("cbc:Note", line.kind);
  Attributes unit;
  if (!line.unit_code.empty()) unit.emplace_back("unitCode", line.unit_code);
  xml.leaf(credit_note ? "cbc:CreditedQuantity" : "cbc:InvoicedQuantity",
           format_quantity(quantity_milli), unit);
  xml.leaf("cbc:LineExtensionAmount", format_money(line.amount_cents), currency);
  write_period(xml, line.period_start, line.period_end);
  xml.open("cac:Item");
  if (!line.description.empty()) xml.leaf("cbc:Description", line.description);
  xml.leaf("cbc:Name", one_line(line.description.empty() ? line.kind : line.description));
  if (!line.reference.empty()) xml.leaf("cbc:AdditionalInformation", line.reference);
  xml.close("cac:Item");
  if (price_cents != 0) {
    xml.open("cac:Price");
    xml.leaf("cbc:PriceAmount", format_money(price_cents), currency);
    xml.close("cac:Price");
  }
  xml.close(element);
}

}  // namespace

std::string escape_xml(std::string_view text, bool attribute) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t begin = i;
    const long cp = next_code_point(text, i);
    if (cp < 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      continue;
    }
    switch (cp) {
      case '&':
        out += "&amp;";
        continue;
      case '<':
        out += "&lt;";
        continue;
      case '>':
        out += "&gt;";
        continue;
      case '"':
        out += "&quot;";
        continue;
      case '\r':
        out += "&#13;";
        continue;
      case '\t':
      case '\n':
        if (attribute) {
          out += cp == '\t' ? "&#9;" : "&#10;";
        } else {
          out += static_cast<char>(cp);
        }
        continue;
      default:
        break;
    }
    if (cp < 0x20 || cp == 0xFFFE || cp == 0xFFFF) continue;  // not an XML 1.0 character
    out.append(text.substr(begin, i - begin));
  }
  return out;
}

std::string ubl_xml(const Document& doc) {
  check_document(doc);
  const bool credit_note = doc.kind == DocumentKind::credit_note;
  const std::string root = credit_note ? "CreditNote" : "Invoice";
  const Attributes currency = {{"currencyID", doc.currency}};

  XmlWriter xml;
  xml.open(root, {{"xmlns", credit_note ? kNamespaceCreditNote : kNamespaceInvoice},
                  {"xmlns:cac", kNamespaceCac},
                  {"xmlns:cbc", kNamespaceCbc}});
  xml.leaf("cbc:UBLVersionID", "2.1");
  xml.leaf("cbc:ID", doc.number);
  xml.leaf("cbc:IssueDate", doc.issue_date);
  if (!credit_note && !doc.due_date.empty()) xml.leaf("cbc:DueDate", doc.due_date);
  // UNCL 1001: 380 commercial invoice, 381 credit note.
  xml.leaf(credit_note ? "cbc:CreditNoteTypeCode" : "cbc:InvoiceTypeCode",
           credit_note ? "381" : "380");
  if (!doc.note.empty()) xml.leaf("cbc:Note", doc.note);
  xml.leaf("cbc:DocumentCurrencyCode", doc.currency);
  write_period(xml, doc.period_start, doc.period_end);
  if (!doc.billing_reference.empty()) {
    xml.open("cac:BillingReference");
    xml.open("cac:InvoiceDocumentReference");
    xml.leaf("cbc:ID", doc.billing_reference);
    xml.close("cac:InvoiceDocumentReference");
    xml.close("cac:BillingReference");
  }
  write_party(xml, "cac:AccountingSupplierParty", doc.supplier);
  write_party(xml, "cac:AccountingCustomerParty", doc.customer);
  if (credit_note && !doc.due_date.empty()) {
    // A CreditNote has no DueDate; UNCL 4461 code 1 is "instrument not defined".
    xml.open("cac:PaymentMeans");
    xml.leaf("cbc:PaymentMeansCode", "1");
    xml.leaf("cbc:PaymentDueDate", doc.due_date);
    xml.close("cac:PaymentMeans");
  }
  std::int64_t lines_cents = 0;
  for (const DocumentLine& line : doc.lines) lines_cents += line.amount_cents;
  xml.open("cac:LegalMonetaryTotal");
  xml.leaf("cbc:LineExtensionAmount", format_money(lines_cents), currency);
  xml.leaf("cbc:TaxExclusiveAmount", format_money(lines_cents), currency);
  xml.leaf("cbc:PayableAmount", format_money(doc.total_cents), currency);
  xml.close("cac:LegalMonetaryTotal");
  for (const DocumentLine& line : doc.lines) write_line(xml, doc, line, credit_note);
  xml.close(root);
  return xml.take();
}

}  // namespace slmhub::files
