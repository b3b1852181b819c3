// The billing document as the file writers see it: an invoice or a credit note with its
// lines, already computed (plugins/billing_export decides every figure; the writers only
// format). Money is integer cents, quantities are integer thousandths, dates are local
// calendar dates "YYYY-MM-DD" in the provider's zone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slmhub::files {

enum class DocumentKind { invoice, credit_note };

struct Party {
  std::string id;     // the customer's billing code, or the provider's configured id
  std::string name;   // registration name
  std::string email;  // optional: a contact address ("" = none)
};

struct DocumentLine {
  std::string id;           // "1", "2", ... unique within the document
  std::string kind;         // subscription, time, oncall, credit, adjustment, carry_forward, ...
  std::string description;  // one line of text shown to the customer
  std::int64_t quantity_milli = 0;  // thousandths of `unit_code`: 1.25 hours = 1250
  std::string unit_code;  // UN/ECE Rec. 20: MON (month), HUR (hour), WEE (week), C62 (one)
  std::int64_t unit_price_cents = 0;  // price of one unit (0 when the line has no unit price)
  std::int64_t amount_cents = 0;      // the line's amount; negative for credits
  std::string period_start;           // "" or the date the line's period starts
  std::string period_end;             // "" or its last date (inclusive)
  std::string reference;  // what it comes from: a service id, ticket, incident numbers, ...
};

struct Document {
  DocumentKind kind = DocumentKind::invoice;
  std::string number;        // "INV-FY2027-000001", "CN-FY2027-000001"
  std::string issue_date;    // YYYY-MM-DD
  std::string due_date;      // YYYY-MM-DD ("" = none)
  std::string period_start;  // the invoiced month's first and last dates
  std::string period_end;
  std::string currency;           // ISO 4217, e.g. "USD"
  std::string note;               // optional free text ("" = none)
  std::string billing_reference;  // a credit note: the number of the invoice it corrects
  Party supplier;
  Party customer;
  std::vector<DocumentLine> lines;
  std::int64_t total_cents = 0;  // the sum of the lines' amounts; never negative
};

}  // namespace slmhub::files
