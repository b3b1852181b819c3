#!/usr/bin/python3
"""A ServiceNow instance simulator, for tests and benchmarks of slmhub's ServiceNow connector.

No ServiceNow instance is reachable from our machines, so this server reproduces what the
connector depends on (../shared/SERVICENOW.md, "The simulator must reproduce"):

- the Table API (/api/now/table/{t}, also /api/now/v1/... and /api/now/v2/...) on incident,
  cmdb_ci_outage, change_request, cmdb_ci_service, cmdb_ci, sys_user, sys_user_group and
  sys_journal_field: every value a string, references as {"link", "value"}, display values,
  sys_mod_count / sys_updated_on / sys_updated_by, journal fields (comments, work_notes),
  the incident priority matrix, encoded queries (= != < <= > >= LIKE STARTSWITH IN ISEMPTY
  ISNOTEMPTY, ^OR, ^NQ, ORDERBY, ORDERBYDESC; a term on an unknown field is dropped, so the
  query widens), Link + X-Total-Count pagination with short pages when an ACL hides rows;
- the Import Set API for the staging table u_slmhub_incident_import (coalesce on
  correlation_id);
- basic auth, OAuth password and refresh_token grants at /oauth_token.do with expiring
  tokens, and mutual TLS;
- the error envelope, rate-limit rules (429 + Retry-After), injected faults (any status,
  200 with a hibernation HTML page, slow answers, dropped connections, cancelled
  transactions);
- a business-rule hook that posts each insert/update of chosen tables to a webhook URL, with
  basic / token / HMAC authentication, duplicates and reordering.

Tests steer it through a control API under /sim/ (no auth, JSON in and out; listed below).
All state is in memory. --seed makes sys_ids and the webhook's duplicates and reordering
repeatable (OAuth tokens stay random).

Listens on 127.0.0.1 only. Prints "control PORT" and then "ready PORT" on stdout once it
accepts connections; --port 0 (the default) lets the kernel pick a free port, so there is no
race for it. With TLS the control API also listens on a plain-HTTP port of its own (the
"control" line); without TLS both lines carry the same port. Runs until its stdin reaches
end of file (the test keeps a pipe open and closes it to stop the server; if the test process
dies the pipe closes with it), or until killed with --ignore-stdin. By hand:

    tests/support/servicenow_sim.py --port 8089
    curl -u admin:admin 'http://127.0.0.1:8089/api/now/table/incident?sysparm_limit=5'
    curl -X POST -d '{"count": 1000}' http://127.0.0.1:8089/sim/bulk/incident

Control API (POST bodies are JSON objects; errors answer {"error": "..."} with 400 or 404):
  GET    /sim/health                          {"ok": true}
  POST   /sim/reset                           back to the state right after start
  POST   /sim/records/{table}                 {fields..., "_user": "jdoe"}: insert as that user
                                              (business rules and webhook hook run) -> 201
                                              {"result": record}; "_user" defaults to admin
  PATCH  /sim/records/{table}/{sys_id}        {fields..., "_user"} -> {"result", "changed"}
  DELETE /sim/records/{table}/{sys_id}        -> 204
  GET    /sim/records/{table}[?query=ENC]     {"result": [every record, raw, ACLs ignored]}
  GET    /sim/records/{table}/{sys_id}        {"result": record}
  GET    /sim/journal/{sys_id}                {"result": [sys_journal_field rows, oldest first]}
  POST   /sim/bulk/{table}                    {"count", "fields" ("{i}" is replaced by the
                                              index), "start" ("yyyy-MM-dd HH:mm:ss"),
                                              "step_seconds" (1), "per_step" (3 records share
                                              each timestamp), "_user", "hook" (false),
                                              "return_ids" (false)} -> {"count", "first",
                                              "last", "first_updated_on", "last_updated_on"}
  POST   /sim/faults                          one fault or {"faults": [...]}: {"kind":
                                              "status"|"html"|"slow"|"drop"|"cancel", "method",
                                              "path" (prefix), "count" (1; -1 = forever),
                                              "status", "message", "detail", "body",
                                              "content_type", "headers", "delay_ms",
                                              "after_commit", "partial", "min_limit" (1000),
                                              "before_commit" (slow: wait before the write)}
  GET    /sim/faults, DELETE /sim/faults
  POST   /sim/rate_limit                      {"limit", "window_seconds" (3600), "per_user"}
                                              or {} to remove the rule
  POST   /sim/acl                             {"hidden": [sys_id...], "every_nth": N, "query":
                                              ENC, "tables": [...], "readonly": {table:
                                              [field...]}} or {} for no ACL; a read-only
                                              field is left out of Table API writes without
                                              a word, as a field ACL does
  POST   /sim/webhook                         {"url", "tables" (all), "enabled" (true), "auth":
                                              {"kind": "none"|"basic"|"token"|"hmac", "user",
                                              "password", "header", "token", "secret",
                                              "timestamp_header", "timestamp_skew_seconds"},
                                              "rename", "extra", "headers", "duplicates",
                                              "reorder", "flush_ms" (200), "retries" (0),
                                              "retry_delay_ms", "timeout_ms", "ca_file",
                                              "client_certificate", "client_key"}
  PATCH  /sim/webhook                         merges into the configuration
  DELETE /sim/webhook, GET /sim/webhook       off; {"config", "pending", "delivered", "events"}
  POST   /sim/webhook/flush                   send what "reorder" holds back now
  GET    /sim/webhook/deliveries              ?since=N&wait_count=N&timeout_ms=T
                                              {"deliveries": [...], "count"}
  POST   /sim/tokens/expire                   {"refresh": false} -> {"expired": N}
  GET    /sim/requests?since=N                {"requests": [...], "last": N}
  POST   /sim/config                          {"latency_ms", "token_ttl", "users",
                                              "oauth_clients"}
  POST   /sim/clock                           {"now": "yyyy-MM-dd HH:mm:ss"} freezes record
                                              time, {"offset_seconds": N} shifts it, {} = real
"""

import argparse
import base64
import bisect
import calendar
import collections
import hashlib
import hmac
import http.client
import http.server
import itertools
import json
import math
import random
import re
import secrets
import ssl
import sys
import threading
import time
import traceback
import urllib.parse

JSON_TYPE = "application/json;charset=UTF-8"
DEFAULT_LIMIT = 10000
STAGING_TABLE = "u_slmhub_incident_import"
HIBERNATION_PAGE = (
    "<!DOCTYPE html><html><head><title>Instance Hibernating page</title></head>"
    "<body><h1>Your instance is hibernating</h1><p>This developer instance is asleep to save "
    "resources. Sign in to the developer portal to wake it up.</p></body></html>")
CANCELLED = "Transaction cancelled: maximum execution time exceeded"

# ---------------------------------------------------------------------------------------------
# Tables


class TableSpec:
    """The dictionary entry of a table: its fields, which are references (to which table),
    choices, journal fields, defaults and the prefix of its number."""

    def __init__(self, name, fields, refs=None, choices=None, journal=(), defaults=None,
                 number=None, display="name", common=None):
        self.name = name
        self.common = common if common is not None else [
            "sys_id", "sys_created_on", "sys_created_by", "sys_updated_on", "sys_updated_by",
            "sys_mod_count", "sys_tags"]
        self.fields = list(self.common) + [f for f in fields if f not in self.common]
        self.field_set = set(self.fields)
        self.refs = refs or {}
        self.choices = choices or {}
        self.reverse_choices = {f: {label: code for code, label in c.items()}
                                for f, c in self.choices.items()}
        self.journal = set(journal)
        self.defaults = defaults or {}
        self.number = number
        self.display = display


INCIDENT_STATES = {"1": "New", "2": "In Progress", "3": "On Hold", "6": "Resolved",
                   "7": "Closed", "8": "Canceled"}
IMPACT = {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"}
PRIORITY = {"1": "1 - Critical", "2": "2 - High", "3": "3 - Moderate", "4": "4 - Low",
            "5": "5 - Planning"}
CHANGE_STATES = {"-5": "New", "-4": "Assess", "-3": "Authorize", "-2": "Scheduled",
                 "-1": "Implement", "0": "Review", "3": "Closed", "4": "Canceled"}
BOOLEAN = {"true": "true", "false": "false"}

TABLES = {spec.name: spec for spec in [
    TableSpec(
        "incident",
        ["number", "short_description", "description", "caller_id", "opened_at", "opened_by",
         "resolved_at", "closed_at", "state", "incident_state", "hold_reason", "impact",
         "urgency", "priority", "severity", "category", "subcategory", "contact_type",
         "assignment_group", "assigned_to", "cmdb_ci", "business_service", "correlation_id",
         "correlation_display", "close_code", "close_notes", "work_notes", "comments",
         "active", "reassignment_count", "reopen_count", "sys_class_name", "u_outage"],
        refs={"caller_id": "sys_user", "opened_by": "sys_user",
              "assignment_group": "sys_user_group", "assigned_to": "sys_user",
              "cmdb_ci": "cmdb_ci", "business_service": "cmdb_ci_service"},
        choices={"state": INCIDENT_STATES, "incident_state": INCIDENT_STATES,
                 "impact": IMPACT, "urgency": IMPACT, "severity": IMPACT,
                 "priority": PRIORITY, "active": BOOLEAN,
                 "hold_reason": {"1": "Awaiting Caller", "3": "Awaiting Problem",
                                 "4": "Awaiting Vendor", "5": "Awaiting Change"}},
        journal=("comments", "work_notes"),
        defaults={"state": "1", "incident_state": "1", "impact": "3", "urgency": "3",
                  "priority": "5", "severity": "3", "active": "true",
                  "reassignment_count": "0", "reopen_count": "0",
                  "sys_class_name": "incident", "u_outage": "false"},
        number="INC", display="number"),
    TableSpec(
        "cmdb_ci_outage",
        ["cmdb_ci", "type", "begin", "end", "duration", "task_number", "short_description",
         "message"],
        refs={"cmdb_ci": "cmdb_ci", "task_number": "task"},
        choices={"type": {"outage": "Outage", "degradation": "Degradation",
                          "planned": "Planned"}},
        defaults={"type": "outage"}, display="sys_id"),
    TableSpec(
        "change_request",
        ["number", "short_description", "description", "type", "state", "start_date",
         "end_date", "work_start", "work_end", "cmdb_ci", "assignment_group", "assigned_to",
         "correlation_id", "correlation_display", "close_code", "close_notes", "work_notes",
         "comments", "active", "sys_class_name", "impact", "risk"],
        refs={"cmdb_ci": "cmdb_ci", "assignment_group": "sys_user_group",
              "assigned_to": "sys_user"},
        choices={"state": CHANGE_STATES, "active": BOOLEAN, "impact": IMPACT,
                 "risk": {"2": "High", "3": "Moderate", "4": "Low"},
                 "type": {"normal": "Normal", "standard": "Standard",
                          "emergency": "Emergency"}},
        journal=("comments", "work_notes"),
        defaults={"state": "-5", "type": "normal", "active": "true", "impact": "3",
                  "risk": "3", "sys_class_name": "change_request"},
        number="CHG", display="number"),
    TableSpec(
        "cmdb_ci_service",
        ["name", "operational_status", "busines_criticality", "owned_by", "support_group",
         "used_for", "sys_class_name"],
        refs={"owned_by": "sys_user", "support_group": "sys_user_group"},
        choices={"operational_status": {"1": "Operational", "2": "Non-Operational"}},
        defaults={"operational_status": "1", "sys_class_name": "cmdb_ci_service"}),
    TableSpec(
        "cmdb_ci", ["name", "operational_status", "sys_class_name"],
        choices={"operational_status": {"1": "Operational", "2": "Non-Operational"}},
        defaults={"operational_status": "1", "sys_class_name": "cmdb_ci"}),
    TableSpec(
        "sys_user",
        ["user_name", "name", "first_name", "last_name", "email", "active", "time_zone",
         "web_service_access_only", "sys_class_name"],
        choices={"active": BOOLEAN},
        defaults={"active": "true", "web_service_access_only": "false",
                  "sys_class_name": "sys_user"}),
    TableSpec(
        "sys_user_group", ["name", "description", "email", "manager", "active"],
        refs={"manager": "sys_user"}, choices={"active": BOOLEAN},
        defaults={"active": "true"}),
    TableSpec(
        "sys_journal_field", ["element_id", "name", "element", "value"],
        common=["sys_id", "sys_created_on", "sys_created_by", "sys_tags"], display="value"),
]}

# A reference to "task" (cmdb_ci_outage.task_number) points into any of these.
TASK_TABLES = ("incident", "change_request")
TASK_FIELDS = set(TABLES["incident"].fields) & set(TABLES["change_request"].fields)

# Compared as numbers in queries and ORDERBY (everything else compares as text, which is
# right for the "yyyy-MM-dd HH:mm:ss" date-times too).
NUMERIC = {"sys_mod_count", "state", "incident_state", "impact", "urgency", "priority",
           "severity", "hold_reason", "operational_status", "reassignment_count",
           "reopen_count"}
READ_ONLY = {"sys_created_on", "sys_created_by", "sys_updated_on", "sys_updated_by",
             "sys_mod_count", "priority", "duration"}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def glide_time(epoch):
    return time.strftime(TIME_FORMAT, time.gmtime(epoch))


def parse_glide_time(text):
    return calendar.timegm(time.strptime(text, TIME_FORMAT))


def as_text(value):
    """A JSON value written to a field, as the string ServiceNow stores."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):  # {"value": ...} as some clients send references
        return as_text(value.get("value", ""))
    if isinstance(value, (list, tuple)):
        return ",".join(as_text(v) for v in value)
    return str(value)


# ---------------------------------------------------------------------------------------------
# Encoded queries

TERM = re.compile(r"([a-z_][a-z0-9_.]*)(ISNOTEMPTY|ISEMPTY|STARTSWITH|ENDSWITH|NOT LIKE|"
                  r"NOTLIKE|LIKE|NOT IN|NOTIN|IN|!=|>=|<=|=|>|<)(.*)\Z", re.S)


def number_of(text):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


class Query:
    """A parsed encoded query: OR-ed groups of AND-ed clauses of OR-ed terms, plus ORDERBY.

    Terms on fields the table does not have are dropped (the query widens), as ServiceNow
    does; ORDERBY on an unknown field is ignored."""

    def __init__(self, sim, spec, text):
        self.sim = sim
        self.spec = spec
        self.groups = []  # [[clause, ...], ...]; clause = tuple of (field, op, value)
        self.order = []  # [(field, descending)]
        self.dropped = []  # terms ignored, for the request log
        text = (text or "").replace("^^", "\x00")
        for group_text in text.split("^NQ"):
            group = []
            last_dropped = False  # an ^OR after a dropped term stands on its own
            for token in group_text.split("^"):
                token = token.replace("\x00", "^")
                if token in ("", "EQ"):
                    continue
                if token.startswith("ORDERBYDESC"):
                    self.add_order(token[len("ORDERBYDESC"):], True)
                    continue
                if token.startswith("ORDERBY"):
                    self.add_order(token[len("ORDERBY"):], False)
                    continue
                if token.startswith("GROUPBY"):
                    continue
                alternative = token.startswith("OR")
                term = self.parse_term(token[2:] if alternative else token)
                if term is None:
                    last_dropped = last_dropped or not alternative
                    continue
                if alternative and group and not last_dropped:
                    group[-1] = group[-1] + (term,)
                else:
                    group.append((term,))
                    last_dropped = False
            self.groups.append(group)
        if any(not g for g in self.groups):
            self.groups = []  # one group matches everything, so the whole query does
        self.predicate = self.compile_groups(self.groups)

    def add_order(self, field, descending):
        if self.sim.getter(self.spec, field) is not None:
            self.order.append((field, descending))
        else:
            self.dropped.append("ORDERBY" + field)

    def parse_term(self, token):
        match = TERM.match(token)
        if not match or self.sim.getter(self.spec, match.group(1)) is None:
            self.dropped.append(token)
            return None
        return match.groups()

    def compile_term(self, term):
        field, op, value = term
        get = self.sim.getter(self.spec, field)
        numeric = field in NUMERIC
        if op == "=":
            return lambda r: get(r) == value
        if op == "!=":
            return lambda r: get(r) != value
        if op in ("ISEMPTY", "ISNOTEMPTY"):
            empty = op == "ISEMPTY"
            return lambda r: (get(r) == "") == empty
        if op in ("IN", "NOT IN", "NOTIN"):
            values = set(value.split(","))
            inside = op == "IN"
            return lambda r: (get(r) in values) == inside
        if op in ("LIKE", "NOT LIKE", "NOTLIKE", "STARTSWITH", "ENDSWITH"):
            needle = value.lower()
            if op == "STARTSWITH":
                return lambda r: get(r).lower().startswith(needle)
            if op == "ENDSWITH":
                return lambda r: get(r).lower().endswith(needle)
            inside = op == "LIKE"
            return lambda r: (needle in get(r).lower()) == inside
        compare = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
                   ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}[op]
        wanted = number_of(value) if numeric else None

        def test(r):
            got = get(r)
            if got == "":
                return False  # SQL: NULL compares false
            if wanted is not None:
                n = number_of(got)
                if n is not None:
                    return compare(n, wanted)
            return compare(got, value)
        return test

    def compile_clauses(self, clauses):
        tests = []
        for clause in clauses:
            alternatives = [self.compile_term(t) for t in clause]
            if len(alternatives) == 1:
                tests.append(alternatives[0])
            else:
                tests.append(lambda r, a=alternatives: any(t(r) for t in a))
        if not tests:
            return None
        if len(tests) == 1:
            return tests[0]
        return lambda r: all(t(r) for t in tests)

    def compile_groups(self, groups):
        if not groups:
            return None
        compiled = [self.compile_clauses(g) for g in groups]
        if len(compiled) == 1:
            return compiled[0]
        return lambda r: any(c(r) for c in compiled)

    def keyset(self):
        """For the sweep pattern (records after a (sys_updated_on, sys_id) cursor in that
        order): (start key, inclusive, predicate for the remaining clauses); else None."""
        if self.order != [("sys_updated_on", False), ("sys_id", False)]:
            return None

        def pick(group, wanted):
            found, rest = {}, []
            for clause in group:
                key = (clause[0][0], clause[0][1]) if len(clause) == 1 else None
                if key in wanted and key not in found:
                    found[key] = clause[0][2]
                else:
                    rest.append(clause)
            return found, rest

        if len(self.groups) == 2:
            after, rest1 = pick(self.groups[0], {("sys_updated_on", ">")})
            tie, rest2 = pick(self.groups[1], {("sys_updated_on", "="), ("sys_id", ">")})
            if (len(after) == 1 and len(tie) == 2
                    and after[("sys_updated_on", ">")] == tie[("sys_updated_on", "=")]
                    and sorted(rest1) == sorted(rest2)):
                return ((tie[("sys_updated_on", "=")], tie[("sys_id", ">")]), False,
                        self.compile_clauses(rest1))
        if len(self.groups) == 1:
            bound, rest = pick(self.groups[0], {("sys_updated_on", ">"), ("sys_updated_on", ">=")})
            if len(bound) == 1:
                (_, op), value = next(iter(bound.items()))
                if op == ">":
                    return (value, "\uffff"), False, self.compile_clauses(rest)
                return (value, ""), True, self.compile_clauses(rest)
        return None


# ---------------------------------------------------------------------------------------------
# State


class Table:
    def __init__(self, spec):
        self.spec = spec
        self.records = {}  # sys_id -> {field: text}, only non-empty fields; insertion order
        self.seq = {}  # sys_id -> 1-based creation order (for the every_nth ACL)
        self.created = 0
        self.index = []  # sorted [(sys_updated_on, sys_id)]: keyset sweeps by bisect
        self.next_number = 10001

    def index_add(self, record):
        bisect.insort(self.index, (record.get("sys_updated_on", ""), record["sys_id"]))

    def index_remove(self, record):
        key = (record.get("sys_updated_on", ""), record["sys_id"])
        at = bisect.bisect_left(self.index, key)
        if at < len(self.index) and self.index[at] == key:
            del self.index[at]


class SimError(Exception):
    """An answer in ServiceNow's error envelope."""

    def __init__(self, status, message, detail="", headers=()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = list(headers)


def envelope(message, detail):
    return {"error": {"message": message, "detail": detail}, "status": "failure"}


class Sim:
    """The instance: tables, users, tokens, and what the control API configured."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.cert_user = args.cert_user
        self.hook = Hook(self)
        self.reset()

    def reset(self):
        """Back to the state right after start: no records, the command line's settings."""
        with self.lock:
            args = self.args
            seed = args.seed
            self.users = dict(args.users)
            self.oauth_clients = dict(args.oauth_clients)
            self.token_ttl = args.token_ttl
            self.latency_ms = args.latency_ms
            self.rng = random.Random(seed) if seed is not None else random.Random()
            self.tables = {name: Table(spec) for name, spec in TABLES.items()}
            self.journal = collections.defaultdict(list)  # element_id -> [journal rows]
            self.access_tokens = {}  # token -> (user, expires epoch)
            self.refresh_tokens = {}  # token -> (user, client_id, expires epoch)
            self.faults = []
            self.rate_limit = None
            self.rate_window = (0, collections.Counter())
            self.acl = None
            self.requests = []
            self.request_seq = 0
            self.import_sets = 10000
            self.clock_frozen = None
            self.clock_offset = 0
            self.hook.reset(seed)
            if args.acl_every_nth:
                self.set_acl({"every_nth": args.acl_every_nth})

    # --- clock and ids

    def now(self):
        if self.clock_frozen is not None:
            return self.clock_frozen
        return int(time.time()) + self.clock_offset

    def new_id(self):
        while True:
            candidate = "%032x" % self.rng.getrandbits(128)
            if not any(candidate in t.records for t in self.tables.values()):
                return candidate

    # --- field access (dot-walking one or more references)

    def getter(self, spec, field):
        """A function record -> text for `field` of `spec` (dot-walks references), or None
        when the table has no such field."""
        head, _, rest = field.partition(".")
        if spec is None or head not in spec.field_set:
            return None
        if not rest:
            return lambda r: r.get(head, "")
        target = spec.refs.get(head)
        if target is None:
            return None
        target_spec = TABLES.get(target)
        if target == "task":
            if rest.partition(".")[0] not in TASK_FIELDS:
                return None
            target_spec = TABLES["incident"]
        inner = self.getter(target_spec, rest)
        if inner is None:
            return None

        def walk(r):
            found = self.lookup(target, r.get(head, ""))
            return inner(found[1]) if found else ""
        return walk

    def lookup(self, table, sys_id):
        """(spec, record) of sys_id in `table` (any task table for "task"), or None."""
        if not sys_id:
            return None
        for name in (TASK_TABLES if table == "task" else (table,)):
            t = self.tables.get(name)
            if t is not None and sys_id in t.records:
                return t.spec, t.records[sys_id]
        return None

    # --- writes

    def write(self, table_name, sys_id, fields, user, input_display=False, hook=True):
        """Inserts (sys_id None) or updates a record as `user`, applying the business logic
        (numbers, defaults, priority, journal fields). Returns (record, changed); an update
        that changes nothing is no update at all (no sys_mod_count, no hook)."""
        table = self.tables[table_name]
        spec = table.spec
        with self.lock:
            old = None
            if sys_id is not None:
                old = table.records.get(sys_id)
                if old is None:
                    raise SimError(404, "No Record found",
                                   "Record doesn't exist or ACL restricts the record retrieval")
                record = dict(old)
            else:
                record = dict(spec.defaults)
            notes = []
            given = set()
            for name, value in fields.items():
                text = as_text(value)
                if name not in spec.field_set or name in READ_ONLY:
                    continue
                if name == "sys_id" and (old is not None or not re.fullmatch("[0-9a-f]{32}", text)
                                         or any(text in t.records for t in self.tables.values())):
                    continue
                if name == "number" and old is not None:
                    continue
                if name in spec.journal:
                    if text:
                        notes.append((name, text))
                    continue
                if input_display and name in spec.reverse_choices:
                    text = spec.reverse_choices[name].get(text, text)
                given.add(name)
                if text:
                    record[name] = text
                else:
                    record.pop(name, None)
            now = glide_time(self.now())
            self.business_rules(spec, record, given, now)
            if old is not None and record == old and not notes:
                return old, False
            if old is None:
                record.setdefault("sys_id", self.new_id())
                record["sys_created_on"] = now
                record["sys_created_by"] = user
                record["sys_mod_count"] = "0"
                if spec.number and "number" not in record:
                    record["number"] = "%s%07d" % (spec.number, table.next_number)
                    table.next_number += 1
                if table_name == "incident":
                    record.setdefault("opened_at", now)
                table.created += 1
                table.seq[record["sys_id"]] = table.created
            else:
                record["sys_mod_count"] = str(int(old.get("sys_mod_count", "0")) + 1)
                table.index_remove(old)
            if "sys_updated_on" in spec.field_set:
                record["sys_updated_on"] = now
                record["sys_updated_by"] = user
            table.records[record["sys_id"]] = record
            if "sys_updated_on" in spec.field_set:
                table.index_add(record)
            for element, text in notes:
                self.add_journal(table_name, record["sys_id"], element, text, user, now)
            if hook:
                self.hook.event(table_name, record, notes)
            return record, True

    def business_rules(self, spec, record, given, now):
        """What the instance's business rules do on every write (`given`: the fields written)."""
        if spec.name == "incident":
            if "state" not in given and "incident_state" in given:
                record["state"] = record.get("incident_state", "")
            if record.get("state"):
                record["incident_state"] = record["state"]
            impact, urgency = record.get("impact", ""), record.get("urgency", "")
            if impact in ("1", "2", "3") and urgency in ("1", "2", "3"):
                record["priority"] = str(int(impact) + int(urgency) - 1)
            state = record.get("state", "")
            if state in ("6", "7") and not record.get("resolved_at"):
                record["resolved_at"] = now
            elif state not in ("6", "7", "8") and record.get("resolved_at"):
                # Reopened: the instance clears the resolution (its "incident reopen" rule).
                record["resolved_at"] = ""
            if state == "7" and not record.get("closed_at"):
                record["closed_at"] = now
            record["active"] = "false" if state in ("7", "8") else "true"
        elif spec.name == "change_request":
            record["active"] = "false" if record.get("state") in ("3", "4") else "true"
        elif spec.name == "cmdb_ci_outage":
            try:
                seconds = parse_glide_time(record["end"]) - parse_glide_time(record["begin"])
                record["duration"] = glide_time(max(0, seconds))  # glide_duration: from epoch
            except (KeyError, ValueError):
                record.pop("duration", None)

    def add_journal(self, table_name, element_id, element, text, user, now):
        journal = self.tables["sys_journal_field"]
        row = {"sys_id": self.new_id(), "element_id": element_id, "name": table_name,
               "element": element, "value": text, "sys_created_on": now,
               "sys_created_by": user}
        journal.records[row["sys_id"]] = row
        journal.created += 1
        journal.seq[row["sys_id"]] = journal.created
        self.journal[element_id].append(row)

    def delete(self, table_name, sys_id):
        table = self.tables[table_name]
        with self.lock:
            record = table.records.pop(sys_id, None)
            if record is None:
                raise SimError(404, "No Record found",
                               "Record doesn't exist or ACL restricts the record retrieval")
            table.seq.pop(sys_id, None)
            if "sys_updated_on" in table.spec.field_set:
                table.index_remove(record)

    def bulk(self, table_name, body):
        """Generates records fast, without business-rule hooks unless "hook" is true."""
        count = int(body.get("count", 0))
        fields = body.get("fields") or {}
        user = body.get("_user", "admin")
        step = int(body.get("step_seconds", 1))
        per_step = max(1, int(body.get("per_step", 3)))
        if "start" in body:
            start = parse_glide_time(body["start"])
        else:
            start = self.now() - step * ((count + per_step - 1) // per_step)
        if body.get("hook"):
            ids = []
            for i in range(count):
                record, _ = self.write(table_name, None, expand(fields, i), user)
                ids.append(record["sys_id"])
            return self.bulk_result(table_name, ids, body)
        table = self.tables[table_name]
        spec = table.spec
        with self.lock:
            template = dict(spec.defaults)
            templated = {}
            for name, value in fields.items():
                text = as_text(value)
                if name in spec.field_set and name not in READ_ONLY and name not in spec.journal:
                    if "{i}" in text:
                        templated[name] = text
                    elif text:
                        template[name] = text
            self.business_rules(spec, template, set(fields), glide_time(start))
            ids, keys = [], []
            stamp_of = {}
            for i in range(count):
                at = start + step * (i // per_step)
                stamp = stamp_of.get(at)
                if stamp is None:
                    stamp_of.clear()
                    stamp = stamp_of[at] = glide_time(at)
                record = dict(template)
                for name, text in templated.items():
                    record[name] = text.replace("{i}", str(i))
                sys_id = self.new_id()
                record["sys_id"] = sys_id
                record["sys_created_on"] = record["sys_updated_on"] = stamp
                record["sys_created_by"] = record["sys_updated_by"] = user
                record["sys_mod_count"] = "0"
                if spec.number:
                    record["number"] = "%s%07d" % (spec.number, table.next_number)
                    table.next_number += 1
                if table_name == "incident":
                    record.setdefault("opened_at", stamp)
                table.records[sys_id] = record
                table.created += 1
                table.seq[sys_id] = table.created
                ids.append(sys_id)
                keys.append((stamp, sys_id))
            if "sys_updated_on" in spec.field_set:
                table.index = sorted(table.index + keys)
            return self.bulk_result(table_name, ids, body)

    def bulk_result(self, table_name, ids, body):
        records = self.tables[table_name].records
        out = {"count": len(ids)}
        if ids:
            out.update(first=ids[0], last=ids[-1],
                       first_updated_on=records[ids[0]].get("sys_updated_on", ""),
                       last_updated_on=records[ids[-1]].get("sys_updated_on", ""))
        if body.get("return_ids"):
            out["sys_ids"] = ids
        return out

    # --- ACLs

    def set_acl(self, body):
        with self.lock:
            if not body:
                self.acl = None
                return
            self.acl = {"hidden": set(body.get("hidden") or []),
                        "every_nth": int(body.get("every_nth") or 0),
                        "query": body.get("query") or "",
                        "tables": set(body.get("tables") or []),
                        "readonly": {t: set(f) for t, f in (body.get("readonly") or {}).items()},
                        "compiled": {}}

    def writable(self, table_name, fields):
        """`fields` without those a field ACL keeps this user from writing: the Table API
        leaves them out and answers as if nothing happened."""
        acl = self.acl
        if acl is None or not acl["readonly"].get(table_name):
            return fields
        return {k: v for k, v in fields.items() if k not in acl["readonly"][table_name]}

    def hidden(self, table_name):
        """A predicate record -> hidden by the ACL for this table, or None."""
        acl = self.acl
        if acl is None or (acl["tables"] and table_name not in acl["tables"]):
            return None
        table = self.tables[table_name]
        query = None
        if acl["query"]:
            query = acl["compiled"].get(table_name)
            if query is None:
                query = acl["compiled"][table_name] = Query(self, table.spec, acl["query"])
        names, nth, seq = acl["hidden"], acl["every_nth"], table.seq

        def test(r):
            sys_id = r["sys_id"]
            if sys_id in names:
                return True
            if nth and seq.get(sys_id, 0) % nth == 0:
                return True
            return bool(query and query.predicate and query.predicate(r))
        return test

    def acl_description(self):
        acl = self.acl
        if acl is None:
            return None
        return {"hidden": sorted(acl["hidden"]), "every_nth": acl["every_nth"],
                "query": acl["query"], "tables": sorted(acl["tables"])}

    # --- reads

    def select(self, table_name, query_text, offset, limit, count):
        """The window [offset, offset+limit) of the matching records, before the ACL.
        Returns (records, total) with total None when not counted; `more` tells whether
        rows remain after the window."""
        table = self.tables[table_name]
        with self.lock:
            query = Query(self, table.spec, query_text)
            keyset = query.keyset()
            if keyset is not None or (query.order == [("sys_updated_on", False), ("sys_id", False)]
                                      and "sys_updated_on" in table.spec.field_set):
                # The (sys_updated_on, sys_id) index is already in the requested order.
                if keyset is not None:
                    key, inclusive, predicate = keyset
                    start = (bisect.bisect_left if inclusive else bisect.bisect_right)(
                        table.index, key)
                else:
                    start, predicate = 0, query.predicate
                records = table.records
                if predicate is None:
                    total = len(table.index) - start
                    window = [records[i] for _, i in
                              table.index[start + offset:start + offset + limit]]
                    return window, total, offset + limit < total, query
                matches = (records[i] for _, i in itertools.islice(table.index, start, None))
                return self.window(filter(predicate, matches), offset, limit, count) + (query,)
            predicate = query.predicate
            rows = table.records.values()
            if query.order:
                rows = list(rows) if predicate is None else [r for r in rows if predicate(r)]
                for field, descending in reversed(query.order):
                    rows.sort(key=self.sort_key(table.spec, field), reverse=descending)
            elif predicate is not None:
                rows = filter(predicate, rows)
            return self.window(iter(rows), offset, limit, count) + (query,)

    @staticmethod
    def window(rows, offset, limit, count):
        skipped = sum(1 for _ in itertools.islice(rows, offset))
        page = list(itertools.islice(rows, limit))
        if count:
            rest = sum(1 for _ in rows)
            total = skipped + len(page) + rest
            return page, total, rest > 0
        more = next(rows, None) is not None
        return page, None, more

    def sort_key(self, spec, field):
        get = self.getter(spec, field)
        if field in NUMERIC:
            def key(r):
                n = number_of(get(r))
                return (0, 0) if n is None else (1, n)
            return key
        return get

    # --- auth

    def authenticate(self, header, peer_has_certificate):
        """(user, how) for an Authorization header; SimError 401 when it does not identify a
        user."""
        if header:
            scheme, _, credentials = header.partition(" ")
            scheme = scheme.lower()
            if scheme == "basic":
                try:
                    name, _, password = base64.b64decode(credentials.strip()).decode(
                        "utf-8").partition(":")
                except (ValueError, UnicodeDecodeError):
                    name, password = None, None
                if name is not None and self.users.get(name) == password:
                    return name, "basic"
            elif scheme == "bearer":
                with self.lock:
                    found = self.access_tokens.get(credentials.strip())
                if found and found[1] > time.time():
                    return found[0], "bearer"
        elif peer_has_certificate and self.cert_user:
            return self.cert_user, "certificate"
        raise SimError(401, "User Not Authenticated", "Required to provide Auth information",
                       [("WWW-Authenticate", 'BASIC realm="Service-now"')])

    def oauth(self, form):
        """The /oauth_token.do answer: (status, body)."""
        denied = (401, {"error_description": "access_denied", "error": "server_error"})
        client = form.get("client_id", "")
        if client not in self.oauth_clients or self.oauth_clients[client] != form.get(
                "client_secret"):
            return denied
        grant = form.get("grant_type", "")
        now = time.time()
        with self.lock:
            if grant == "password":
                user = form.get("username", "")
                if user not in self.users or self.users[user] != form.get("password"):
                    return denied
                refresh = secrets.token_urlsafe(64)
                self.refresh_tokens[refresh] = (user, client, now + 100 * 86400)
            elif grant == "refresh_token":
                refresh = form.get("refresh_token", "")
                found = self.refresh_tokens.get(refresh)
                if not found or found[1] != client or found[2] <= now:
                    return denied
                user = found[0]
            else:
                return denied
            access = secrets.token_urlsafe(64)
            self.access_tokens[access] = (user, now + self.token_ttl)
        return 200, {"access_token": access, "refresh_token": refresh, "scope": "useraccount",
                     "token_type": "Bearer", "expires_in": self.token_ttl}

    def expire_tokens(self, refresh):
        with self.lock:
            for token, (user, _) in list(self.access_tokens.items()):
                self.access_tokens[token] = (user, 0)
            expired = len(self.access_tokens)
            if refresh:
                for token, (user, client, _) in list(self.refresh_tokens.items()):
                    self.refresh_tokens[token] = (user, client, 0)
                expired += len(self.refresh_tokens)
            return expired

    # --- rate limit and faults

    def check_rate(self, user):
        """Headers to add, or SimError 429."""
        with self.lock:
            rule = self.rate_limit
            if rule is None:
                return []
            now = time.time()
            window = rule["window_seconds"]
            start = math.floor(now / window) * window
            if self.rate_window[0] != start:
                self.rate_window = (start, collections.Counter())
            counts = self.rate_window[1]
            who = user if rule.get("per_user") else ""
            counts[who] += 1
            reset = int(start + window)
            headers = [("X-RateLimit-Limit", str(rule["limit"])), ("X-RateLimit-Reset", str(reset))]
            if counts[who] > rule["limit"]:
                retry = max(1, math.ceil(start + window - now))
                raise SimError(
                    429, "Rate limit exceeded",
                    "Rate limit of %d requests per %d seconds for rule %r exceeded"
                    % (rule["limit"], window, rule.get("name", "slmhub test rule")),
                    headers + [("Retry-After", str(retry))])
            return headers

    def take_fault(self, method, path, params):
        with self.lock:
            for fault in self.faults:
                if fault.get("method") and fault["method"].upper() != method:
                    continue
                if fault.get("path") and not path.startswith(fault["path"]):
                    continue
                if fault["kind"] == "cancel":
                    limit = number_of(params.get("sysparm_limit", "")) or DEFAULT_LIMIT
                    if method != "GET" or limit <= int(fault.get("min_limit", 1000)):
                        continue
                fault["used"] = fault.get("used", 0) + 1
                if fault.get("count", 1) >= 0 and fault["used"] >= fault.get("count", 1):
                    self.faults.remove(fault)
                return dict(fault)
        return None

    # --- request log

    def log_request(self, entry):
        with self.lock:
            self.request_seq += 1
            entry["seq"] = self.request_seq
            self.requests.append(entry)


def expand(fields, i):
    return {k: (v.replace("{i}", str(i)) if isinstance(v, str) else v) for k, v in fields.items()}


# ---------------------------------------------------------------------------------------------
# Rendering


class Renderer:
    """Records as the Table API returns them for one request's sysparm_* parameters."""

    def __init__(self, sim, spec, base, params):
        self.sim = sim
        self.spec = spec
        self.base = base
        display = params.get("sysparm_display_value", "false").lower()
        self.display = display if display in ("true", "all") else "false"
        self.links = params.get("sysparm_exclude_reference_link", "false").lower() != "true"
        wanted = [f.strip() for f in params.get("sysparm_fields", "").split(",") if f.strip()]
        wanted = [f for f in wanted if sim.getter(spec, f) is not None]
        self.fields = []
        for field in wanted or spec.fields:
            head, _, rest = field.partition(".")
            getter = sim.getter(spec, field)
            ref = spec.refs.get(head) if not rest else None
            self.fields.append((field, getter, ref))

    def render(self, record):
        if self.display == "false":
            out = {}
            links = self.links
            for field, get, ref in self.fields:
                value = get(record)
                if ref is not None and value and links:
                    out[field] = {"link": "%s/api/now/table/%s/%s" % (self.base, ref, value),
                                  "value": value}
                else:
                    out[field] = value
            return out
        out = {}
        for field, get, ref in self.fields:
            value = get(record)
            label = self.label(field, value, ref, record)
            if ref is not None and value:
                item = {"display_value": label}
                if self.links:
                    item["link"] = "%s/api/now/table/%s/%s" % (self.base, ref, value)
                if self.display == "all":
                    item["value"] = value
                out[field] = item
            elif self.display == "all":
                out[field] = {"display_value": label, "value": value}
            else:
                out[field] = label
        return out

    def label(self, field, value, ref, record):
        if ref is not None:
            found = self.sim.lookup(ref, value)
            if not found:
                return ""
            spec, target = found
            return target.get(spec.display, "")
        if field in self.spec.journal:
            rows = self.sim.journal.get(record.get("sys_id", ""), [])
            return "".join(
                "%s - %s (%s)\n%s\n\n" % (row["sys_created_on"], row["sys_created_by"],
                                           "Additional comments" if field == "comments"
                                           else "Work notes", row["value"])
                for row in reversed(rows) if row["element"] == field)
        choices = self.spec.choices.get(field)
        if choices:
            return choices.get(value, value)
        return value


# ---------------------------------------------------------------------------------------------
# The business-rule hook (webhooks from ServiceNow)


class Hook:
    """Posts a flat JSON object for every insert/update of the configured tables, from a
    background thread, with duplicates and reordering on demand. At most once per event unless
    "retries" is set (a business rule with execute() does not retry)."""

    def __init__(self, sim):
        self.sim = sim
        self.cond = threading.Condition()
        self.thread = None
        self.config = None

    def reset(self, seed):
        with self.cond:
            self.config = None
            self.queue = collections.deque()
            self.deliveries = []
            # A delivery under way when the state is reset belongs to the state before: its
            # outcome is not recorded in the new one (a test saw its predecessor's webhook).
            self.generation = getattr(self, "generation", 0) + 1
            self.events = 0
            self.rng = random.Random(None if seed is None else seed + 1)
            self.last_event = 0.0
            self.flush_now = False
            self.cond.notify_all()

    def configure(self, config, merge=False):
        with self.cond:
            if merge and self.config:
                config = dict(self.config, **config)
            if config and "url" not in config:
                raise SimError(400, "webhook config needs url")
            self.config = config or None
            if self.thread is None:
                self.thread = threading.Thread(target=self.run, name="hook", daemon=True)
                self.thread.start()
            self.cond.notify_all()

    def event(self, table_name, record, notes):
        with self.cond:
            config = self.config
            if not config or not config.get("enabled", True):
                return
            tables = config.get("tables")
            if tables and table_name not in tables:
                return
            spec = TABLES[table_name]
            payload = {f: record.get(f, "") for f in spec.fields if f not in spec.journal}
            for element, text in notes:
                payload[element] = text
            payload["table"] = table_name
            for old, new in (config.get("rename") or {}).items():
                if old in payload:
                    payload[new] = payload.pop(old)
            payload.update({k: as_text(v) for k, v in (config.get("extra") or {}).items()})
            self.events += 1
            item = {"event": self.events, "table": table_name, "sys_id": record["sys_id"],
                    "sys_mod_count": record.get("sys_mod_count", ""),
                    "body": json.dumps(payload, separators=(",", ":")), "config": config,
                    "duplicate": False, "generation": self.generation}
            self.queue.append(item)
            duplicates = config.get("duplicates") or 0
            if isinstance(duplicates, bool):
                duplicates = 1 if duplicates else 0
            if ((isinstance(duplicates, int) and duplicates >= 1 and self.events % duplicates == 0)
                    or (isinstance(duplicates, float) and self.rng.random() < duplicates)):
                self.queue.append(dict(item, duplicate=True))
            self.last_event = time.monotonic()
            self.cond.notify_all()

    def run(self):
        while True:
            with self.cond:
                while not self.queue:
                    self.cond.wait()
                config = self.queue[0]["config"]
                reorder = int(config.get("reorder") or 0)
                if reorder > 1:
                    flush = config.get("flush_ms", 200) / 1000.0
                    while len(self.queue) < reorder and not self.flush_now:
                        left = self.last_event + flush - time.monotonic()
                        if left <= 0:
                            break
                        self.cond.wait(left)
                    batch = [self.queue.popleft() for _ in range(min(reorder, len(self.queue)))]
                    self.rng.shuffle(batch)
                else:
                    batch = [self.queue.popleft()]
                if not self.queue:
                    self.flush_now = False
            for item in batch:
                self.deliver(item)

    def deliver(self, item):
        config = item["config"]
        body = item["body"].encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "ServiceNow/1.0"}
        headers.update(config.get("headers") or {})
        auth = config.get("auth") or {}
        kind = auth.get("kind", "none")
        if kind == "basic":
            pair = "%s:%s" % (auth.get("user", ""), auth.get("password", ""))
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif kind == "token":
            if auth.get("header"):
                headers[auth["header"]] = auth.get("token", "")
            else:
                headers["Authorization"] = "Bearer " + auth.get("token", "")
        elif kind == "hmac":
            message = body
            if auth.get("timestamp_header"):
                stamp = str(int(time.time()) + int(auth.get("timestamp_skew_seconds", 0)))
                headers[auth["timestamp_header"]] = stamp
                message = stamp.encode() + b"." + body
            # As GlideCertificateEncryption.generateMac: the key is given base64-encoded.
            key = base64.b64decode(auth.get("secret", ""))
            digest = hmac.new(key, message, hashlib.sha256).digest()
            headers[auth.get("header", "X-SN-Signature")] = base64.b64encode(digest).decode()
        attempts = 1 + int(config.get("retries", 0))
        for attempt in range(1, attempts + 1):
            status, error, answer = self.post(config, body, headers)
            record = {"table": item["table"], "sys_id": item["sys_id"],
                      "sys_mod_count": item["sys_mod_count"], "event": item["event"],
                      "duplicate": item["duplicate"], "attempt": attempt, "status": status,
                      "error": error, "response": answer, "body": item["body"],
                      "headers": headers, "time": time.time()}
            with self.cond:
                if item["generation"] != self.generation:
                    return
                record["seq"] = len(self.deliveries) + 1
                self.deliveries.append(record)
                self.cond.notify_all()
            if 200 <= status < 300:
                break
            if attempt < attempts:
                time.sleep(config.get("retry_delay_ms", 100) / 1000.0)

    @staticmethod
    def post(config, body, headers):
        url = urllib.parse.urlsplit(config["url"])
        timeout = config.get("timeout_ms", 10000) / 1000.0
        try:
            if url.scheme == "https":
                context = ssl.create_default_context(cafile=config.get("ca_file") or None)
                if config.get("client_certificate"):
                    context.load_cert_chain(config["client_certificate"], config.get("client_key"))
                connection = http.client.HTTPSConnection(url.hostname, url.port or 443,
                                                         timeout=timeout, context=context)
            else:
                connection = http.client.HTTPConnection(url.hostname, url.port or 80,
                                                        timeout=timeout)
            try:
                target = url.path or "/"
                if url.query:
                    target += "?" + url.query
                connection.request("POST", target, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read(4000).decode("utf-8", "replace")
                return response.status, "", answer
            finally:
                connection.close()
        except (OSError, http.client.HTTPException, ssl.SSLError, ValueError) as e:
            return 0, "%s: %s" % (type(e).__name__, e), ""

    def wait(self, count, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.deliveries) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return list(self.deliveries)

    def flush(self):
        with self.cond:
            self.flush_now = True
            self.cond.notify_all()

    def describe(self):
        with self.cond:
            return {"config": self.config, "pending": len(self.queue),
                    "delivered": len(self.deliveries), "events": self.events}


# ---------------------------------------------------------------------------------------------
# HTTP

TABLE_PATH = re.compile(r"/api/now/(?:v[12]/)?table/([^/]+)(?:/([^/]+))?/?\Z")
IMPORT_PATH = re.compile(r"/api/now/(?:v[12]/)?import/([^/]+)/?\Z")


class Dropped(Exception):
    """Close the connection without answering."""

    def __init__(self, partial=False):
        super().__init__("dropped")
        self.partial = partial


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries Content-Length
    server_version = "ServiceNow/1.0"
    timeout = 600  # an idle keep-alive connection is closed after this many seconds

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):
        if self.server.sim.args.verbose:
            sys.stderr.write("servicenow_sim: %s\n" % (format % args))

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def reply(self, status, body=b"", content_type=JSON_TYPE, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 204 and body:
            self.wfile.write(body)
        self.wfile.flush()

    def reply_json(self, status, value, headers=()):
        body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self.reply(status, body, JSON_TYPE, headers)

    def drop(self, partial):
        if partial:  # the headers promise a body that never comes in full
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + JSON_TYPE.encode() +
                                 b"\r\nContent-Length: 1000\r\n\r\n{\"result\":[")
                self.wfile.flush()
            except OSError:
                pass
        self.close_connection = True

    def base_url(self):
        host = self.headers.get("Host") or "127.0.0.1:%d" % self.server.server_address[1]
        return "%s://%s" % ("https" if self.server.context else "http", host)

    def dispatch(self):
        sim = self.server.sim
        method = self.command
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        params = {k: v[0] for k, v in urllib.parse.parse_qs(url.query,
                                                            keep_blank_values=True).items()}
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        if path == "/sim" or path.startswith("/sim/"):
            self.control(method, path, params, body)
            return
        if not self.server.api:
            self.reply_json(404, envelope("Not found", "this port serves the control API only"))
            return
        entry = {"time": time.time(), "method": method, "path": path, "query": url.query,
                 "params": params, "user": "", "auth": "none", "status": 0}
        if method in ("POST", "PUT", "PATCH"):
            if path == "/oauth_token.do":
                form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
                entry["body"] = {"grant_type": form.get("grant_type", [""])[0]}
            else:
                entry["body"] = body.decode("utf-8", "replace")[:20000]
        # Logged before the answer goes out, so a test that has its answer sees it logged.
        try:
            status, payload, headers, content_type, delay, drop_after = self.api(
                sim, method, path, params, body, entry)
            if delay:
                time.sleep(delay)
            if drop_after is not None:
                raise Dropped(drop_after)
            entry["status"] = status
            sim.log_request(entry)
            if isinstance(payload, bytes):
                self.reply(status, payload, content_type, headers)
            else:
                self.reply_json(status, payload, headers)
        except Dropped as dropped:
            entry["dropped"] = True
            sim.log_request(entry)
            self.drop(dropped.partial)
        except OSError:
            self.close_connection = True

    def api(self, sim, method, path, params, body, entry):
        """(status, JSON value or bytes, headers, content type, delay seconds, drop) of one
        request outside the control API. `drop` None = answer, else drop the connection after
        the work is done (True = after the headers and part of the body)."""
        headers = []
        delay = 0.0
        fault = None
        try:
            if path.startswith("/api/now/"):
                if sim.latency_ms:
                    time.sleep(sim.latency_ms / 1000.0)
                peer = self.connection.getpeercert() if self.server.context else None
                user, how = sim.authenticate(self.headers.get("Authorization"), bool(peer))
                entry["user"], entry["auth"] = user, how
                headers += sim.check_rate(user)
            fault = sim.take_fault(method, path, params)
            if fault is not None:
                entry["fault"] = fault["kind"]
                kind = fault["kind"]
                headers += list((fault.get("headers") or {}).items())
                if kind == "drop" and not fault.get("after_commit"):
                    raise Dropped(bool(fault.get("partial")))
                if kind == "html":
                    return (fault.get("status", 200), HIBERNATION_PAGE.encode(), headers,
                            "text/html;charset=UTF-8", 0, None)
                if kind == "status":
                    status = int(fault.get("status", 500))
                    if "body" in fault:
                        return (status, fault["body"].encode(), headers,
                                fault.get("content_type", "text/html;charset=UTF-8"), 0, None)
                    message, detail = default_error(status)
                    raise SimError(status, fault.get("message", message),
                                   fault.get("detail", detail))
                if kind == "cancel":
                    raise SimError(int(fault.get("status", 500)), CANCELLED,
                                   "Transaction cancelled: maximum execution time exceeded. "
                                   "Check logs for error trace or enable glide.rest.debug "
                                   "property to verify REST request processing")
                if kind == "slow":
                    delay = fault.get("delay_ms", 1000) / 1000.0
                    if fault.get("before_commit"):
                        # The transaction runs on after its client gave up: the write lands
                        # late, and a look for it meanwhile finds nothing.
                        time.sleep(delay)
                        delay = 0
            status, payload, more = self.route(sim, method, path, params, body, entry)
            drop = None
            if fault is not None and fault["kind"] == "drop":
                drop = bool(fault.get("partial"))
            return status, payload, headers + more, JSON_TYPE, delay, drop
        except SimError as e:
            return (e.status, envelope(e.message, e.detail), headers + e.headers, JSON_TYPE,
                    delay, None)
        except Dropped:
            raise
        except Exception:  # a bug in the simulator: say so in the log and the answer
            sys.stderr.write(traceback.format_exc())
            return (500, envelope("Internal simulator error", traceback.format_exc(limit=3)),
                    headers, JSON_TYPE, 0, None)

    def route(self, sim, method, path, params, body, entry):
        if path == "/oauth_token.do":
            if method != "POST":
                raise SimError(405, "Method not Supported", "use POST")
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace"),
                                                              keep_blank_values=True).items()}
            status, payload = sim.oauth(form)
            return status, payload, []
        match = TABLE_PATH.match(path)
        if match:
            return self.table_api(sim, method, match.group(1), match.group(2), params, body,
                                  entry)
        match = IMPORT_PATH.match(path)
        if match:
            if method != "POST":
                raise SimError(405, "Method not Supported", "the import API accepts POST")
            return self.import_api(sim, match.group(1), params, body, entry)
        raise SimError(400, "Requested URI does not represent any resource", "")

    def table_api(self, sim, method, table_name, sys_id, params, body, entry):
        if table_name not in sim.tables:
            raise SimError(400, "Invalid table %s" % table_name, "")
        spec = sim.tables[table_name].spec
        renderer = Renderer(sim, spec, self.base_url(), params)
        user = entry["user"]
        if sys_id is None and method == "GET":
            return self.list_records(sim, table_name, renderer, params)
        if sys_id is None and method == "POST":
            fields = sim.writable(table_name, parse_object(body))
            record, _ = sim.write(table_name, None, fields, user,
                                  params.get("sysparm_input_display_value") == "true")
            location = "%s/api/now/table/%s/%s" % (self.base_url(), table_name, record["sys_id"])
            return 201, {"result": renderer.render(record)}, [("Location", location)]
        if sys_id is None or method == "POST":
            raise SimError(405, "Method not Supported",
                           "%s is not supported on %s" % (method, self.path.split("?")[0]))
        with sim.lock:
            record = sim.tables[table_name].records.get(sys_id)
            hidden = sim.hidden(table_name)
            if record is None or (hidden and hidden(record)):
                raise SimError(404, "No Record found",
                               "Record doesn't exist or ACL restricts the record retrieval")
        if method == "GET":
            return 200, {"result": renderer.render(record)}, []
        if method in ("PUT", "PATCH"):
            fields = sim.writable(table_name, parse_object(body))
            record, _ = sim.write(table_name, sys_id, fields, user,
                                  params.get("sysparm_input_display_value") == "true")
            return 200, {"result": renderer.render(record)}, []
        if method == "DELETE":
            sim.delete(table_name, sys_id)
            return 204, b"", []
        raise SimError(405, "Method not Supported", method)

    def list_records(self, sim, table_name, renderer, params):
        offset = max(0, int(number_of(params.get("sysparm_offset", "0")) or 0))
        limit = int(number_of(params.get("sysparm_limit", "")) or 0)
        if limit <= 0:
            limit = DEFAULT_LIMIT
        count = params.get("sysparm_no_count", "false").lower() != "true"
        page, total, more, _ = sim.select(table_name, params.get("sysparm_query", ""), offset,
                                          limit, count)
        hidden = sim.hidden(table_name)
        if hidden:
            page = [r for r in page if not hidden(r)]
        with sim.lock:  # labels read other records and the journal
            result = [renderer.render(r) for r in page]
        headers = []
        if total is not None:
            headers.append(("X-Total-Count", str(total)))
        suppress = params.get("sysparm_suppress_pagination_header", "false").lower() == "true"
        if not suppress and (offset > 0 or more):
            headers.append(("Link", self.links(params, offset, limit, total, more)))
        return 200, {"result": result}, headers

    def links(self, params, offset, limit, total, more):
        path = self.path.split("?")[0]

        def url(at):
            query = [("sysparm_offset", str(at)), ("sysparm_limit", str(limit))]
            query += [(k, v) for k, v in params.items()
                      if k not in ("sysparm_offset", "sysparm_limit")]
            return "<%s%s?%s>" % (self.base_url(), path,
                                  urllib.parse.urlencode(query, quote_via=urllib.parse.quote))

        links = ['%s;rel="first"' % url(0)]
        if offset > 0:
            links.append('%s;rel="prev"' % url(max(0, offset - limit)))
        if more:
            links.append('%s;rel="next"' % url(offset + limit))
        if total is not None:
            links.append('%s;rel="last"' % url(max(0, (total - 1) // limit * limit)))
        return ",".join(links)

    def import_api(self, sim, staging, params, body, entry):
        if staging != STAGING_TABLE:
            raise SimError(400, "Invalid table %s" % staging, "")
        row = parse_object(body)
        spec = TABLES["incident"]
        fields = {}
        for name, value in row.items():
            target = name[2:] if name.startswith("u_") and name[2:] in spec.field_set else name
            fields[target] = value
        key = as_text(fields.get("correlation_id", ""))
        with sim.lock:
            existing = None
            if key:
                for record in sim.tables["incident"].records.values():
                    if record.get("correlation_id") == key:
                        existing = record
                        break
            if existing is None:
                record, _ = sim.write("incident", None, fields, entry["user"])
                status = "inserted"
            else:
                record, changed = sim.write("incident", existing["sys_id"], fields, entry["user"])
                status = "updated" if changed else "ignored"
            sim.import_sets += 1
            import_set = "ISET%07d" % sim.import_sets
        result = {"transform_map": "SLMHub Incident", "table": "incident",
                  "display_name": "number", "display_value": record.get("number", ""),
                  "record_link": "%s/api/now/table/incident/%s" % (self.base_url(),
                                                                    record["sys_id"]),
                  "status": status, "sys_id": record["sys_id"]}
        if status == "ignored":
            result["status_message"] = "No field values changed"
        return 201, {"import_set": import_set, "staging_table": staging, "result": [result]}, []

    # --- control API

    def control(self, method, path, params, body):
        sim = self.server.sim
        try:
            data = json.loads(body) if body.strip() else None
        except ValueError as e:
            self.reply_json(400, {"error": "control body is not JSON: %s" % e})
            return
        try:
            status, value = control(sim, method, path, params, data)
        except SimError as e:
            status, value = e.status, {"error": e.message}
        except (KeyError, ValueError, TypeError) as e:
            status, value = 400, {"error": "%s: %s" % (type(e).__name__, e)}
        except Exception:
            sys.stderr.write(traceback.format_exc())
            status, value = 500, {"error": traceback.format_exc()}
        if status == 204:
            self.reply(204)
        else:
            self.reply_json(status, value)


def default_error(status):
    return {
        400: ("Bad Request", ""),
        401: ("User Not Authenticated", "Required to provide Auth information"),
        403: ("Operation Failed", "Error during insert of the record (a business rule aborted it)"),
        404: ("No Record found", "Record doesn't exist or ACL restricts the record retrieval"),
        429: ("Rate limit exceeded", ""),
        500: ("Internal Server Error", ""),
        502: ("Bad Gateway", ""),
        503: ("Service Unavailable", ""),
    }.get(status, ("Error", ""))


def parse_object(body):
    try:
        value = json.loads(body.decode("utf-8")) if body.strip() else None
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        raise SimError(400, "Exception while reading request",
                       "The payload is not valid JSON." if value is None
                       else "The payload must be a JSON object.")
    return value


CONTROL_ROUTES = []


def route(method, pattern):
    def register(function):
        CONTROL_ROUTES.append((method, re.compile(pattern + r"/?\Z"), function))
        return function
    return register


def control(sim, method, path, params, data):
    for wanted, pattern, function in CONTROL_ROUTES:
        match = pattern.match(path)
        if match and wanted == method:
            return function(sim, params, data or {}, *match.groups())
    raise SimError(404, "no control route %s %s" % (method, path))


def table_of(sim, name):
    if name not in sim.tables:
        raise SimError(404, "no table %s (tables: %s)" % (name, ", ".join(sorted(sim.tables))))
    return sim.tables[name]


def raw(table, record):
    """Every field of a record as stored (journal fields always read back empty)."""
    return {f: record.get(f, "") for f in table.spec.fields if f not in table.spec.journal}


def fields_and_user(data):
    fields = {k: v for k, v in data.items() if k != "_user"}
    return fields, data.get("_user", "admin")


@route("GET", "/sim/health")
def _health(sim, params, data):
    return 200, {"ok": True}


@route("POST", "/sim/reset")
def _reset(sim, params, data):
    sim.reset()
    return 200, {"ok": True}


@route("POST", "/sim/records/([^/]+)")
def _create(sim, params, data, table_name):
    table_of(sim, table_name)
    fields, user = fields_and_user(data)
    record, _ = sim.write(table_name, None, fields, user)
    return 201, {"result": raw(sim.tables[table_name], record)}


@route("PATCH", "/sim/records/([^/]+)/([^/]+)")
def _update(sim, params, data, table_name, sys_id):
    table_of(sim, table_name)
    fields, user = fields_and_user(data)
    record, changed = sim.write(table_name, sys_id, fields, user)
    return 200, {"result": raw(sim.tables[table_name], record), "changed": changed}


@route("DELETE", "/sim/records/([^/]+)/([^/]+)")
def _delete(sim, params, data, table_name, sys_id):
    table_of(sim, table_name)
    sim.delete(table_name, sys_id)
    return 204, None


@route("GET", "/sim/records/([^/]+)")
def _records(sim, params, data, table_name):
    table = table_of(sim, table_name)
    with sim.lock:
        rows = list(table.records.values())
        if params.get("query"):
            predicate = Query(sim, table.spec, params["query"]).predicate
            if predicate:
                rows = [r for r in rows if predicate(r)]
        return 200, {"result": [raw(table, r) for r in rows]}


@route("GET", "/sim/records/([^/]+)/([^/]+)")
def _record(sim, params, data, table_name, sys_id):
    table = table_of(sim, table_name)
    with sim.lock:
        record = table.records.get(sys_id)
        if record is None:
            raise SimError(404, "no %s record %s" % (table_name, sys_id))
        return 200, {"result": raw(table, record)}


@route("GET", "/sim/journal/([^/]+)")
def _journal(sim, params, data, sys_id):
    with sim.lock:
        return 200, {"result": [dict(row) for row in sim.journal.get(sys_id, [])]}


@route("POST", "/sim/bulk/([^/]+)")
def _bulk(sim, params, data, table_name):
    table_of(sim, table_name)
    started = time.monotonic()
    result = sim.bulk(table_name, data)
    result["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    return 200, result


FAULT_KINDS = ("status", "html", "slow", "drop", "cancel")


@route("POST", "/sim/faults")
def _add_faults(sim, params, data):
    faults = data.get("faults") if "faults" in data else [data]
    for fault in faults:
        if fault.get("kind") not in FAULT_KINDS:
            raise SimError(400, "fault kind must be one of %s, not %r"
                           % (", ".join(FAULT_KINDS), fault.get("kind")))
    with sim.lock:
        sim.faults.extend(dict(f) for f in faults)
        return 200, {"faults": list(sim.faults)}


@route("GET", "/sim/faults")
def _faults(sim, params, data):
    with sim.lock:
        return 200, {"faults": list(sim.faults)}


@route("DELETE", "/sim/faults")
def _clear_faults(sim, params, data):
    with sim.lock:
        sim.faults = []
    return 204, None


@route("POST", "/sim/rate_limit")
def _rate_limit(sim, params, data):
    with sim.lock:
        if not data:
            sim.rate_limit = None
        else:
            if int(data["limit"]) < 0 or int(data.get("window_seconds", 3600)) <= 0:
                raise SimError(400, "rate limit needs limit >= 0 and window_seconds > 0")
            sim.rate_limit = {"limit": int(data["limit"]),
                              "window_seconds": int(data.get("window_seconds", 3600)),
                              "per_user": bool(data.get("per_user", False)),
                              "name": data.get("name", "slmhub test rule")}
        sim.rate_window = (0, collections.Counter())
        return 200, {"rate_limit": sim.rate_limit}


@route("POST", "/sim/acl")
def _acl(sim, params, data):
    sim.set_acl(data)
    return 200, {"acl": sim.acl_description()}


@route("POST", "/sim/webhook")
def _webhook(sim, params, data):
    sim.hook.configure(data)
    return 200, sim.hook.describe()


@route("PATCH", "/sim/webhook")
def _webhook_merge(sim, params, data):
    sim.hook.configure(data, merge=True)
    return 200, sim.hook.describe()


@route("DELETE", "/sim/webhook")
def _webhook_off(sim, params, data):
    sim.hook.configure(None)
    return 204, None


@route("GET", "/sim/webhook")
def _webhook_state(sim, params, data):
    return 200, sim.hook.describe()


@route("POST", "/sim/webhook/flush")
def _webhook_flush(sim, params, data):
    sim.hook.flush()
    return 200, sim.hook.describe()


@route("GET", "/sim/webhook/deliveries")
def _deliveries(sim, params, data):
    since = int(params.get("since", 0))
    wait = int(params.get("wait_count", 0))
    deliveries = sim.hook.wait(wait, int(params.get("timeout_ms", 5000)) / 1000.0)
    return 200, {"deliveries": deliveries[since:], "count": len(deliveries)}


@route("POST", "/sim/tokens/expire")
def _expire(sim, params, data):
    return 200, {"expired": sim.expire_tokens(bool(data.get("refresh")))}


@route("GET", "/sim/requests")
def _requests(sim, params, data):
    since = int(params.get("since", 0))
    with sim.lock:
        chosen = sim.requests[max(0, since):]  # seq n is at index n - 1
        return 200, {"requests": chosen, "last": sim.request_seq}


@route("POST", "/sim/config")
def _config(sim, params, data):
    with sim.lock:
        if "latency_ms" in data:
            sim.latency_ms = int(data["latency_ms"])
        if "token_ttl" in data:
            sim.token_ttl = int(data["token_ttl"])
        if "users" in data:
            sim.users = dict(data["users"])
        if "oauth_clients" in data:
            sim.oauth_clients = dict(data["oauth_clients"])
        return 200, {"latency_ms": sim.latency_ms, "token_ttl": sim.token_ttl,
                     "users": sorted(sim.users), "oauth_clients": sorted(sim.oauth_clients)}


@route("POST", "/sim/clock")
def _clock(sim, params, data):
    with sim.lock:
        sim.clock_frozen = None
        sim.clock_offset = 0
        if data.get("now"):
            sim.clock_frozen = parse_glide_time(data["now"])
        elif data.get("offset_seconds"):
            sim.clock_offset = int(data["offset_seconds"])
        return 200, {"now": glide_time(sim.now())}


# ---------------------------------------------------------------------------------------------
# Main


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port, sim, context, api):
        self.sim = sim
        self.context = context
        self.api = api
        super().__init__(("127.0.0.1", port), Handler)

    def finish_request(self, request, client_address):
        if self.context is None:
            super().finish_request(request, client_address)
            return
        # The TLS handshake runs here, in the connection's own thread, so a slow or broken
        # client cannot hold up accept().
        request.settimeout(30)
        try:
            secured = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            if self.sim.args.verbose:
                sys.stderr.write("servicenow_sim: TLS handshake failed: %s\n" % e)
            return
        try:
            secured.settimeout(Handler.timeout)
            super().finish_request(secured, client_address)
        finally:
            try:
                secured.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError, ssl.SSLError)):
            super().handle_error(request, client_address)


def pair(text):
    name, sep, secret = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME:SECRET, got %r" % text)
    return name, secret


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0,
                        help="plain-HTTP control port when --tls-cert is given (0 = any)")
    parser.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--client-ca", help="require client certificates signed by this CA "
                        "(mutual TLS)")
    parser.add_argument("--cert-user", default="",
                        help="with --client-ca: the user a request with a verified client "
                        "certificate and no Authorization header runs as")
    parser.add_argument("--user", dest="users", action="append", type=pair,
                        help="NAME:PASSWORD, repeatable (default admin:admin, slmhub:slmhub)")
    parser.add_argument("--oauth-client", dest="oauth_clients", action="append", type=pair,
                        default=[], help="CLIENT_ID:SECRET, repeatable")
    parser.add_argument("--token-ttl", type=int, default=1799,
                        help="OAuth access token lifetime in seconds")
    parser.add_argument("--latency-ms", type=int, default=0,
                        help="added to every Table API and Import Set API request")
    parser.add_argument("--seed", type=int, help="repeatable sys_ids and webhook randomness")
    parser.add_argument("--acl-every-nth", type=int, default=0,
                        help="an ACL hides every Nth record created in each table")
    parser.add_argument("--ignore-stdin", action="store_true",
                        help="run until killed, not until stdin closes")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args()
    if args.users is None:
        args.users = [("admin", "admin"), ("slmhub", "slmhub")]
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.client_ca and not args.tls_cert:
        parser.error("--client-ca needs --tls-cert and --tls-key")

    sim = Sim(args)
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.client_ca)
    servers = [Server(args.port, sim, context, api=True)]
    if context is not None:
        servers.append(Server(args.control_port, sim, None, api=False))
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, name="control", daemon=True).start()
    print("control %d" % servers[-1].server_address[1], flush=True)
    print("ready %d" % servers[0].server_address[1], flush=True)

    def watch_stdin():
        sys.stdin.buffer.read()
        for server in servers:
            threading.Thread(target=server.shutdown, daemon=True).start()

    if not args.ignore_stdin:
        threading.Thread(target=watch_stdin, name="stdin", daemon=True).start()
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass
    for server in servers:
        server.server_close()


if __name__ == "__main__":
    main()
