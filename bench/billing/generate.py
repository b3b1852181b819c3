#!/usr/bin/python3
"""The [billing] benchmark's input: a dataset (DESIGN.md §5.3) and a billing import.

  generate.py OUT_DIR [--customers N] [--month YYYY-MM]

Writes OUT_DIR/dataset.json (provider calendar and zone America/Chicago, fiscal year from
September, two services, N customers c00001... each with a billing code, a billing contact at
example.org and 2 subscriptions running through the month) and OUT_DIR/billing.json for
POST /api/v1/billing/import ({rate_cards, time_entries, oncall_requests}: one rate card in force
since the previous fiscal year, per customer 9 time entries dated in the month and 1 on-call
request starting in it, asked for well ahead), so each customer's invoice of the month has
2 + 9 + 1 = 12 lines. Deterministic: the same arguments give the same bytes. Standard library
only.
"""
import argparse
import calendar
import datetime
import json
import os
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--customers", type=int, default=10000)
    ap.add_argument("--month", default="2026-10")
    args = ap.parse_args()
    year, month = (int(x) for x in args.month.split("-"))
    days_in_month = calendar.monthrange(year, month)[1]
    first = datetime.date(year, month, 1)
    rng = random.Random(20261001)

    services = [
        {"id": "oracle-prod", "name": "Oracle database (Production)", "environment": "production",
         "hours": "24x7", "target_percent": 99.75},
        {"id": "mysql-qa", "name": "MySQL database (QA)", "environment": "qa",
         "hours": "business", "target_percent": 99.57},
    ]
    business = {d: ["08:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    customers = []
    for i in range(1, args.customers + 1):
        cid = f"c{i:05d}"
        customers.append({
            "id": cid,
            # A comma and a quote in every name: the CSV has to quote them.
            "name": f"Department {i:05d}, \"Unit {i % 97}\"",
            "billing_code": f"BC-{i:05d}",
            "subscriptions": [
                {"service": "oracle-prod", "monthly_charge_cents": 150000 + (i % 7) * 1000,
                 "start": "2025-09-01T05:00:00Z"},
                {"service": "mysql-qa", "monthly_charge_cents": 40000 + (i % 5) * 500,
                 "start": "2026-01-01T06:00:00Z"},
            ],
            "contacts": [
                {"role": "technical_primary", "name": f"DBA {i:05d}",
                 "email": f"dba@{cid}.example.org"},
                {"role": "billing", "name": f"Billing {i:05d}",
                 "email": f"billing@{cid}.example.org"},
            ],
        })
    dataset = {
        "timezone": "America/Chicago",
        "fiscal_year_start_month": 9,
        "provider_calendar": "business",
        "calendars": [{"id": "business", "timezone": "America/Chicago", "hours": business,
                       "holidays": ["2026-11-26", "2026-11-27", "2026-12-24", "2026-12-25"]}],
        "services": services,
        "customers": customers,
    }

    rate_cards = [{"id": "FY2026", "valid_from": "2025-09-01", "hourly_rate_cents": 12000,
                   "oncall_week_cents": 22400,
                   "offerings": {"oracle-prod": 150000, "mysql-qa": 40000}},
                  {"id": "FY2027", "valid_from": "2026-09-01", "hourly_rate_cents": 12500,
                   "oncall_week_cents": 22400,
                   "offerings": {"oracle-prod": 155000, "mysql-qa": 42000}}]
    kinds = ["included_support"] * 7 + ["billable"] * 2
    entries, oncall = [], []
    for i in range(1, args.customers + 1):
        cid = f"c{i:05d}"
        for k in range(9):
            day = first + datetime.timedelta(days=rng.randrange(days_in_month))
            entries.append({
                "id": f"TE-{cid}-{k + 1}",
                "customer": cid,
                "date": day.isoformat(),
                "minutes": rng.randrange(5, 240),
                "description": f"Index rebuild, \"stats\" refresh #{k + 1}",
                "ticket": f"DBR{i * 10 + k:07d}",
                "kind": kinds[k],
            })
        start = first + datetime.timedelta(days=rng.randrange(days_in_month - 13))
        length = rng.randrange(1, 15)  # 1-14 days: 1 or 2 started weeks
        oncall.append({
            "id": f"OC-{cid}",
            "customer": cid,
            "first_day": start.isoformat(),
            "last_day": (start + datetime.timedelta(days=length - 1)).isoformat(),
            "requested_on": (start - datetime.timedelta(days=21 + rng.randrange(30))).isoformat(),
            "reason": "Quarter-end batch",
        })
    billing = {"rate_cards": rate_cards, "time_entries": entries, "oncall_requests": oncall}

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "dataset.json"), "w") as f:
        json.dump(dataset, f, separators=(",", ":"))
    with open(os.path.join(args.out, "billing.json"), "w") as f:
        json.dump(billing, f, separators=(",", ":"))
    print(f"{args.customers} customers, {len(entries)} time entries, {len(oncall)} on-call "
          f"requests for {args.month}: {12 * args.customers} invoice lines expected")


if __name__ == "__main__":
    main()
