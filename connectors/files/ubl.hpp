// UBL 2.1 (OASIS) for accounting systems that import e-invoices: an invoice as an `Invoice`
// document, a credit note as a `CreditNote`, valid against the standard's schemas
// (../shared/ubl-2.1/maindoc). No tax: the provider bills internal customers without VAT.
#pragma once

#include <string>
#include <string_view>

#include "document.hpp"

namespace slmhub::files {

// The document as UTF-8 XML with an XML declaration, two-space indentation and a final newline.
// The same document always gives the same bytes (no timestamps, no generated ids).
//
// Header: UBLVersionID 2.1, ID, IssueDate, DueDate (an invoice; a credit note carries its due
// date as PaymentMeans/PaymentDueDate), InvoiceTypeCode 380 / CreditNoteTypeCode 381, Note,
// DocumentCurrencyCode, InvoicePeriod, BillingReference/InvoiceDocumentReference, the supplier
// and customer parties (PartyIdentification, PartyName, PartyLegalEntity, Contact e-mail) and
// LegalMonetaryTotal (LineExtensionAmount and TaxExclusiveAmount: the sum of the lines;
// PayableAmount: total_cents). Each line: ID, Note (its kind), Invoiced/CreditedQuantity,
// LineExtensionAmount, InvoicePeriod, Item (Description, Name: the description on one line,
// AdditionalInformation: its reference) and Price.
//
// A unit price is never written negative (EN 16931 BR-27): a line with a negative unit price
// is written with the price's absolute value and the quantity's sign flipped, so quantity ×
// price is still the line's amount (a credit of 1 × -15.00 becomes -1 × 15.00).
//
// Throws std::invalid_argument naming the document when it cannot be a valid UBL document: no
// lines, a date that is not YYYY-MM-DD, a currency that is not three capital letters, or a
// total_cents that is not the sum of the lines' amounts.
std::string ubl_xml(const Document& doc);

// `text` safe for XML 1.0 element content and double-quoted attribute values: & < > " escaped,
// CR, and (in attributes) TAB and LF as character references so a parser does not normalise
// them away; characters XML 1.0 forbids (C0 controls but TAB, LF, CR; U+FFFE, U+FFFF) dropped;
// bytes that are not UTF-8 replaced by U+FFFD.
std::string escape_xml(std::string_view text, bool attribute = false);

}  // namespace slmhub::files
