// The CSV accounting imports: RFC 4180 quoting and CRLF row ends, the stable column set, and
// money and quantities as exact decimals, checked by reading the file back with Python's csv
// module as a spreadsheet or an ERP import would.
#include "csv.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <limits>

#include "process.hpp"
#include "sample_documents.hpp"

namespace slmhub::files {
namespace {

const char* const kHeader =
    "document_type,document_number,issue_date,due_date,period_start,period_end,currency,"
    "customer_id,customer_name,billing_reference,line_id,line_kind,description,quantity,"
    "unit_code,unit_price,amount,line_period_start,line_period_end,reference,document_total\r\n";

TEST(Csv, MoneyHasExactlyTwoDecimals) {
  EXPECT_EQ(format_money(0), "0.00");
  EXPECT_EQ(format_money(5), "0.05");
  EXPECT_EQ(format_money(-5), "-0.05");
  EXPECT_EQ(format_money(-150), "-1.50");
  EXPECT_EQ(format_money(22400), "224.00");
  EXPECT_EQ(format_money(123456789), "1234567.89");
  EXPECT_EQ(format_money(std::numeric_limits<std::int64_t>::min()), "-92233720368547758.08");
}

TEST(Csv, QuantityIsTheShortestExactDecimal) {
  EXPECT_EQ(format_quantity(0), "0");
  EXPECT_EQ(format_quantity(5), "0.005");
  EXPECT_EQ(format_quantity(-150), "-0.15");
  EXPECT_EQ(format_quantity(22400), "22.4");
  EXPECT_EQ(format_quantity(123456789), "123456.789");
  EXPECT_EQ(format_quantity(1250), "1.25");
  EXPECT_EQ(format_quantity(2000), "2");
  EXPECT_EQ(format_quantity(500), "0.5");
  EXPECT_EQ(format_quantity(-1500), "-1.5");
}

TEST(Csv, FieldsAreQuotedOnlyWhenTheyMustBe) {
  std::string out;
  append_csv_row(out, {"plain", "a,b", "say \"hi\"", "two\nlines", "cr\rhere", " lead", "trail ",
                       "", "in side", "\xC3\xBC"});
  append_csv_row(out, {"second"});
  EXPECT_EQ(out,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\rhere\",\" lead\",\"trail \",,"
            "in side,\xC3\xBC\r\nsecond\r\n");
}

TEST(Csv, HeaderRowAlone) { EXPECT_EQ(invoices_csv({}), kHeader); }

TEST(Csv, OneRowPerLineWithTheDocumentOnEachRow) {
  Document doc = test::plain_invoice();
  doc.lines.resize(2);
  doc.lines[1].quantity_milli = -500;
  doc.lines[1].unit_price_cents = 12000;
  doc.lines[1].amount_cents = -6000;
  doc.total_cents = 26050;
  EXPECT_EQ(invoices_csv({doc}),
            std::string(kHeader) +
                "invoice,INV-FY2027-000002,2027-04-01,2027-04-30,2027-03-01,2027-03-31,USD,EDU-007,"
                "\"Education, Department of\",,1,subscription,Mail service,1,MON,320.50,320.50,"
                "2027-03-01,2027-03-31,svc-mail,260.50\r\n"
                "invoice,INV-FY2027-000002,2027-04-01,2027-04-30,2027-03-01,2027-03-31,USD,EDU-007,"
                "\"Education, Department of\",,2,time,Project work,-0.5,HUR,120.00,-60.00,,,"
                "TCK-2002,260.50\r\n");
  // A credit note names the invoice it corrects.
  const std::string cn = invoices_csv({test::credit_note()});
  EXPECT_NE(cn.find("\r\ncredit_note,CN-FY2027-000001,2027-04-03,2027-04-17,2027-03-01,2027-03-31,"
                    "USD,EDU-007,\"Education, Department of\",INV-FY2027-000002,1,oncall,"),
            std::string::npos)
      << cn;
}

std::string hex(const std::string& bytes) {
  static const char* const digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

TEST(Csv, PythonsCsvReaderGetsEveryFieldAndTheTotalsBack) {
  const Document first = test::invoice_with_carry_forward();
  const Document second = test::plain_invoice();
  const Document third = test::credit_note();
  test::ScratchDir dir;
  const auto file = dir.path() / "invoices.csv";
  std::ofstream(file, std::ios::binary) << invoices_csv({first, second, third});

  // Per document: its rows, document_total, and the sum of the amount column (exact decimals);
  // then the hex of the description with a quote, a comma and a line break, as read back.
  const std::string script =
      "import csv, sys\n"
      "from decimal import Decimal\n"
      "with open(sys.argv[1], newline='', encoding='utf-8') as f:\n"
      "    rows = list(csv.reader(f, strict=True))\n"
      "header, rows = rows[0], rows[1:]\n"
      "print(len(header), header[-1])\n"
      "docs = {}\n"
      "for r in rows:\n"
      "    d = dict(zip(header, r))\n"
      "    assert len(r) == len(header), r\n"
      "    n, total, sums = docs.get(d['document_number'], (0, d['document_total'], Decimal(0)))\n"
      "    docs[d['document_number']] = (n + 1, total, sums + Decimal(d['amount']))\n"
      "for number, (n, total, sums) in docs.items():\n"
      "    print(number, n, total, sums)\n"
      "print(dict(zip(header, rows[1]))['description'].encode('utf-8').hex())\n";
  const auto result =
      test::run_command(slmhub::test::python() + " -c " + test::shell_quote(script) + " " +
                        test::shell_quote(file.string()) + " 2>&1");
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_EQ(result.output,
            "21 document_total\n"
            "INV-FY2027-000001 5 0.00 0.00\n"
            "INV-FY2027-000002 3 380.55 380.55\n"
            "CN-FY2027-000001 2 254.00 254.00\n" +
                hex(first.lines[1].description) + "\n");
}

}  // namespace
}  // namespace slmhub::files
