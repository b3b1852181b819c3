// RFC 4180 CSV for accounting: the invoice export's one file of every document's lines, and
// the number formats it (and the UBL writer) print money and quantities in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "document.hpp"

namespace slmhub::files {

// Cents as a decimal amount with exactly two decimals: 22400 → "224.00", -150 → "-1.50",
// 5 → "0.05", 0 → "0.00".
std::string format_money(std::int64_t cents);

// Thousandths as the shortest exact decimal (at most 3 decimals, no trailing zeros):
// 1250 → "1.25", 2000 → "2", 500 → "0.5", -1500 → "-1.5", 0 → "0".
std::string format_quantity(std::int64_t milli);

// Appends one record: the fields joined by ',', the row ended by CRLF. A field is quoted with
// '"' (an inner '"' doubled) when it contains ',', '"', CR or LF, or starts or ends with a
// space or tab (which some readers would trim).
void append_csv_row(std::string& out, const std::vector<std::string>& fields);

// A header row, then one row per line of every document, documents and lines in the given
// order. The columns are stable (docs/billing.md lists them for accounting):
//
//   document_type      invoice | credit_note
//   document_number    Document::number
//   issue_date         YYYY-MM-DD
//   due_date           YYYY-MM-DD or empty
//   period_start       the document's period, YYYY-MM-DD
//   period_end
//   currency           ISO 4217
//   customer_id        Document::customer.id
//   customer_name      Document::customer.name
//   billing_reference  a credit note: the invoice it corrects; else empty
//   line_id            DocumentLine::id
//   line_kind          subscription, time, oncall, credit, adjustment, carry_forward, ...
//   description
//   quantity           format_quantity: "1.25", "2", "-1.5"
//   unit_code          UN/ECE Rec. 20: MON, HUR, WEE, C62
//   unit_price         format_money: "224.00", "-1.50"
//   amount             format_money
//   line_period_start  YYYY-MM-DD or empty
//   line_period_end
//   reference          service id, ticket, incident numbers, ...
//   document_total     format_money of Document::total_cents, repeated on each of its rows
//
// A document without lines has no row.
std::string invoices_csv(const std::vector<Document>& documents);
// The same file in pieces, for a writer that gets the documents one at a time:
// invoices_csv(docs) == invoices_csv_header() + append_invoice_csv_rows(...) for each.
std::string invoices_csv_header();
void append_invoice_csv_rows(std::string& out, const Document& doc);

}  // namespace slmhub::files
