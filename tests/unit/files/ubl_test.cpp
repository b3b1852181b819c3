// UBL 2.1 files as an accounting system receives them: each one valid against the OASIS
// schemas (xmllint, as DESIGN.md §6 asks), its payable amount the sum of its lines, text
// escaped, and the same document always the same bytes.
#include "ubl.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <stdexcept>

#include "error_of.hpp"
#include "sample_documents.hpp"
#include "test_files.hpp"

namespace slmhub::files {
namespace {

// Validates the file against the main schema of `document` ("Invoice", "CreditNote"):
// xmllint's exit status and messages.
test::CommandResult validate(const std::filesystem::path& file, const std::string& document) {
  const auto schema =
      slmhub::test::shared_dir() / "ubl-2.1" / "maindoc" / ("UBL-" + document + "-2.1.xsd");
  return test::run_command("xmllint --noout --schema " + test::shell_quote(schema.string()) + " " +
                           test::shell_quote(file.string()) + " 2>&1");
}

std::filesystem::path write(const test::ScratchDir& dir, const std::string& xml) {
  auto file = dir.path() / "document.xml";
  std::ofstream(file, std::ios::binary) << xml;
  return file;
}

// The string value of an XPath 1.0 expression over the written file (UBL's namespaces
// matched by local-name(), which xmllint --xpath needs).
std::string xpath(const std::filesystem::path& file, const std::string& expression) {
  const auto result = test::run_command("xmllint --xpath " + test::shell_quote(expression) + " " +
                                        test::shell_quote(file.string()) + " 2>&1");
  EXPECT_EQ(result.status, 0) << expression << ": " << result.output;
  std::string out = result.output;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string path_of(const std::string& steps) {
  // "Invoice/LegalMonetaryTotal/PayableAmount" → /*[local-name()='Invoice']/*[...]...
  std::string out;
  std::size_t begin = 0;
  while (begin <= steps.size()) {
    const std::size_t end = std::min(steps.find('/', begin), steps.size());
    out += "/*[local-name()='" + steps.substr(begin, end - begin) + "']";
    begin = end + 1;
  }
  return out;
}

// "-1234.05" → -123405; the test fails on anything but an optional '-', digits, '.', 2 digits.
std::int64_t cents_of(const std::string& text) {
  const bool negative = !text.empty() && text[0] == '-';
  const std::string digits = text.substr(negative ? 1 : 0);
  const std::size_t dot = digits.find('.');
  EXPECT_TRUE(dot != std::string::npos && dot > 0 && digits.size() == dot + 3) << text;
  if (dot == std::string::npos || dot == 0 || digits.size() != dot + 3) return 0;
  const std::int64_t value =
      std::stoll(digits.substr(0, dot)) * 100 + std::stoll(digits.substr(dot + 1));
  return negative ? -value : value;
}

// PayableAmount and every line's LineExtensionAmount as written; the lines must add up.
void expect_lines_add_up(const std::filesystem::path& file, const std::string& root,
                         const std::string& line, const std::string& payable) {
  EXPECT_EQ(xpath(file, "string(" + path_of(root + "/LegalMonetaryTotal/PayableAmount") + ")"),
            payable);
  EXPECT_EQ(xpath(file, "string(" + path_of(root + "/LegalMonetaryTotal/PayableAmount") +
                            "/@currencyID)"),
            "USD");
  const int count = std::stoi(xpath(file, "count(" + path_of(root + "/" + line) + ")"));
  std::int64_t sum = 0;
  for (int i = 1; i <= count; ++i) {
    sum += cents_of(xpath(file, "string(" + path_of(root + "/" + line) + "[" + std::to_string(i) +
                                    "]/*[local-name()='LineExtensionAmount'])"));
  }
  EXPECT_EQ(sum, cents_of(payable));
  EXPECT_EQ(
      xpath(file, "string(" + path_of(root + "/LegalMonetaryTotal/LineExtensionAmount") + ")"),
      xpath(file, "string(" + path_of(root + "/LegalMonetaryTotal/PayableAmount") + ")"));
}

TEST(Ubl, InvoiceWithEveryLineKindValidatesAndAddsUp) {
  const Document doc = test::invoice_with_carry_forward();
  test::ScratchDir dir;
  const auto file = write(dir, ubl_xml(doc));
  const auto result = validate(file, "Invoice");
  EXPECT_EQ(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("validates"), std::string::npos) << result.output;

  expect_lines_add_up(file, "Invoice", "InvoiceLine", "0.00");
  EXPECT_EQ(xpath(file, "count(" + path_of("Invoice/InvoiceLine") + ")"), "5");
  EXPECT_EQ(xpath(file, "string(" + path_of("Invoice/InvoiceTypeCode") + ")"), "380");
  EXPECT_EQ(xpath(file, "string(" + path_of("Invoice/DueDate") + ")"), "2027-04-30");
  EXPECT_EQ(xpath(file, "string(" + path_of("Invoice/InvoicePeriod/EndDate") + ")"), "2027-03-31");
  EXPECT_EQ(xpath(file, "string(" +
                            path_of("Invoice/AccountingCustomerParty/Party/Contact/"
                                    "ElectronicMail") +
                            ")"),
            "ap@dot.example.gov");
  // The time line: 1.25 hours at 120.00, its kind, the text with its line break kept.
  const std::string time = path_of("Invoice/InvoiceLine") + "[2]";
  EXPECT_EQ(xpath(file, "string(" + time + "/*[local-name()='InvoicedQuantity'])"), "1.25");
  EXPECT_EQ(xpath(file, "string(" + time + "/*[local-name()='InvoicedQuantity']/@unitCode)"),
            "HUR");
  EXPECT_EQ(xpath(file, "string(" + time + "/*[local-name()='Note'])"), "time");
  EXPECT_EQ(xpath(file, "string(" + time + "/*[local-name()='Price']/*)"), "120.00");
  EXPECT_EQ(xpath(file, "string(" + time + "/*[local-name()='Item']/*[local-name()='Name'])"),
            "Support: printer \"queue\" migration, phase 2 after hours");
  EXPECT_EQ(
      xpath(file, "string(" + time + "/*[local-name()='Item']/*[local-name()='Description'])"),
      doc.lines[1].description);
  // The credit: no negative price; the quantity carries the sign instead.
  const std::string credit = path_of("Invoice/InvoiceLine") + "[4]";
  EXPECT_EQ(xpath(file, "string(" + credit + "/*[local-name()='InvoicedQuantity'])"), "-1");
  EXPECT_EQ(xpath(file, "string(" + credit + "/*[local-name()='Price']/*)"), "2500.00");
  EXPECT_EQ(xpath(file, "string(" + credit + "/*[local-name()='LineExtensionAmount'])"),
            "-2500.00");
  // The carry_forward line has no unit price, so no Price.
  const std::string carry = path_of("Invoice/InvoiceLine") + "[5]";
  EXPECT_EQ(xpath(file, "count(" + carry + "/*[local-name()='Price'])"), "0");
  EXPECT_EQ(xpath(file, "string(" + carry + "/*[local-name()='LineExtensionAmount'])"), "402.00");
}

TEST(Ubl, CreditNoteNamesTheInvoiceItCorrectsAndValidates) {
  const Document doc = test::credit_note();
  test::ScratchDir dir;
  const std::string xml = ubl_xml(doc);
  const auto file = write(dir, xml);
  const auto result = validate(file, "CreditNote");
  EXPECT_EQ(result.status, 0) << result.output;

  expect_lines_add_up(file, "CreditNote", "CreditNoteLine", "254.00");
  EXPECT_EQ(xpath(file, "string(" + path_of("CreditNote/CreditNoteTypeCode") + ")"), "381");
  EXPECT_EQ(xpath(file, "string(" +
                            path_of("CreditNote/BillingReference/"
                                    "InvoiceDocumentReference/ID") +
                            ")"),
            "INV-FY2027-000002");
  EXPECT_EQ(xpath(file, "string(" + path_of("CreditNote/PaymentMeans/PaymentDueDate") + ")"),
            "2027-04-17");
  EXPECT_EQ(xpath(file, "string(" + path_of("CreditNote/CreditNoteLine") +
                            "[2]/*[local-name()='CreditedQuantity'])"),
            "0.25");
  // Not valid as an invoice: the writer chose the document type by kind.
  EXPECT_NE(validate(file, "Invoice").status, 0);
}

TEST(Ubl, TextIsEscapedAndForbiddenCharactersDropped) {
  Document doc = test::plain_invoice();
  doc.customer.name = "R&D <Labs> \"North\"\x01\x1F\tEnd";
  doc.note = "Line one\r\nline two & more";
  test::ScratchDir dir;
  const std::string xml = ubl_xml(doc);
  EXPECT_NE(xml.find("<cbc:Name>R&amp;D &lt;Labs&gt; &quot;North&quot;\tEnd</cbc:Name>"),
            std::string::npos)
      << xml;
  const auto file = write(dir, xml);
  const auto result = validate(file, "Invoice");
  EXPECT_EQ(result.status, 0) << result.output;
  EXPECT_EQ(xpath(file, "string(" +
                            path_of("Invoice/AccountingCustomerParty/Party/PartyName/Name") + ")"),
            "R&D <Labs> \"North\"\tEnd");
  EXPECT_EQ(xpath(file, "string-length(" + path_of("Invoice/Note") + ")"), "25");  // CR kept
  EXPECT_EQ(escape_xml("a\xFF"
                       "b\xEF\xBF\xBF"
                       "c"),
            "a\xEF\xBF\xBD"
            "bc");
  EXPECT_EQ(escape_xml("x\ty\nz", true), "x&#9;y&#10;z");
}

TEST(Ubl, TheSameDocumentGivesTheSameBytes) {
  const std::string first = ubl_xml(test::invoice_with_carry_forward());
  const std::string second = ubl_xml(test::invoice_with_carry_forward());
  EXPECT_EQ(first, second);
  EXPECT_EQ(first.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                        "<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\" "
                        "xmlns:cac=\"urn:oasis:names:specification:ubl:schema:xsd:"
                        "CommonAggregateComponents-2\" xmlns:cbc=\"urn:oasis:names:specification:"
                        "ubl:schema:xsd:CommonBasicComponents-2\">\n"
                        "  <cbc:UBLVersionID>2.1</cbc:UBLVersionID>\n"
                        "  <cbc:ID>INV-FY2027-000001</cbc:ID>\n",
                        0),
            0u)
      << first;
  EXPECT_TRUE(first.ends_with("  </cac:InvoiceLine>\n</Invoice>\n"));
}

TEST(Ubl, RefusesWhatCannotBeAValidDocument) {
  Document doc = test::plain_invoice();
  doc.total_cents += 1;
  EXPECT_EQ(slmhub::test::error_of<std::invalid_argument>([&] { ubl_xml(doc); }),
            "UBL document INV-FY2027-000002: total 380.56 is not the sum of its lines' amounts "
            "380.55");
  doc = test::plain_invoice();
  doc.lines.clear();
  doc.total_cents = 0;
  EXPECT_EQ(slmhub::test::error_of<std::invalid_argument>([&] { ubl_xml(doc); }),
            "UBL document INV-FY2027-000002: has no lines (UBL needs at least one)");
  doc = test::plain_invoice();
  doc.issue_date = "1.4.2027";
  EXPECT_EQ(slmhub::test::error_of<std::invalid_argument>([&] { ubl_xml(doc); }),
            "UBL document INV-FY2027-000002: issue_date \"1.4.2027\" is not a date YYYY-MM-DD");
  doc = test::plain_invoice();
  doc.currency = "usd";
  EXPECT_NE(slmhub::test::error_of<std::invalid_argument>([&] { ubl_xml(doc); }).find("currency"),
            std::string::npos);
}

}  // namespace
}  // namespace slmhub::files
