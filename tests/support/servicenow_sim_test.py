#!/usr/bin/python3
"""Tests of servicenow_sim.py against ../shared/SERVICENOW.md ("The simulator must reproduce").

The connector's tests are only worth what the simulator is worth, so each behaviour the
contract lists is checked here over HTTP, with the simulator running as a subprocess on a free
port (Debian's python3 and its standard library only).
"""

import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SIMULATOR = os.path.join(HERE, "servicenow_sim.py")
ADMIN = ("admin", "admin")


class Simulator:
    """servicenow_sim.py as a subprocess; stops when its stdin closes."""

    def __init__(self, *args):
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, SIMULATOR, "--port", "0", *args], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr)
        self.control_port = None
        self.port = None
        while self.port is None:
            line = self.process.stdout.readline().decode()
            if not line:
                raise RuntimeError("simulator exited: %s" % self.log())
            word, _, number = line.partition(" ")
            if word == "control":
                self.control_port = int(number)
            elif word == "ready":
                self.port = int(number)
        self.tls = None

    def log(self):
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

    def stop(self):
        self.process.stdin.close()
        self.process.wait(10)
        self.process.stdout.close()
        self.stderr.close()

    def connection(self, control=False):
        port = self.control_port if control else self.port
        if self.tls and not control:
            return http.client.HTTPSConnection("127.0.0.1", port, context=self.tls, timeout=10)
        return http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(self, method, path, body=None, auth=ADMIN, headers=None, control=False,
             connection=None):
        """(status, headers, parsed JSON or text or None)."""
        sent = dict(headers or {})
        if auth is not None and not control:
            sent["Authorization"] = basic(*auth)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            sent.setdefault("Content-Type", "application/json")
        own = connection is None
        connection = connection or self.connection(control)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            data = response.read()
        finally:
            if own:
                connection.close()
        kind = response.getheader("Content-Type", "")
        if kind.startswith("application/json") and data:
            value = json.loads(data)
        else:
            value = data.decode("utf-8", "replace") if data else None
        return response.status, response.headers, value

    def control(self, method, path, body=None):
        status, _, value = self.call(method, path, body, control=True)
        if status >= 300:
            raise AssertionError("control %s %s: %d %s" % (method, path, status, value))
        return value

    def table(self, method, table, sys_id="", body=None, auth=ADMIN, **params):
        path = "/api/now/table/" + table + ("/" + sys_id if sys_id else "")
        if params:
            path += "?" + urllib.parse.urlencode(params)
        return self.call(method, path, body, auth)

    def query(self, table, query, **params):
        """The records a GET list returns (asserting 200)."""
        status, _, value = self.table("GET", table, sysparm_query=query, **params)
        assert status == 200, (status, value)
        return value["result"]


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def links(header):
    """{rel: url} of a Link header."""
    out = {}
    for part in (header or "").split(","):
        if part:
            url, _, rel = part.partition(";")
            out[rel.split("=")[1].strip('"')] = url.strip()[1:-1]
    return out


class SimulatorTest(unittest.TestCase):
    ARGS = ("--seed", "7")

    @classmethod
    def setUpClass(cls):
        cls.sim = Simulator(*cls.ARGS)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def setUp(self):
        self.sim.control("POST", "/sim/reset")

    def create(self, table, fields, auth=ADMIN, **params):
        status, headers, value = self.sim.table("POST", table, body=fields, auth=auth, **params)
        self.assertEqual(status, 201, value)
        return value["result"]

    def assertError(self, answer, status, message=None):
        got_status, _, value = answer
        self.assertEqual(got_status, status, value)
        self.assertEqual(value["status"], "failure")
        self.assertEqual(set(value["error"]), {"message", "detail"})
        if message is not None:
            self.assertEqual(value["error"]["message"], message)


class TableApiTest(SimulatorTest):
    def test_create_answers_201_with_location_and_a_record_of_strings(self):
        status, headers, value = self.sim.table(
            "POST", "incident", body={"short_description": "Mail down", "impact": 2,
                                      "urgency": "2", "no_such_field": "x"})
        self.assertEqual(status, 201)
        record = value["result"]
        self.assertRegex(record["sys_id"], r"\A[0-9a-f]{32}\Z")
        self.assertEqual(headers["Location"], "http://127.0.0.1:%d/api/now/table/incident/%s"
                         % (self.sim.port, record["sys_id"]))
        self.assertTrue(all(isinstance(v, str) for v in record.values()), record)
        self.assertEqual(record["number"], "INC0010001")
        self.assertEqual(record["impact"], "2")
        self.assertEqual(record["priority"], "3")
        self.assertEqual(record["state"], "1")
        self.assertEqual(record["incident_state"], "1")
        self.assertEqual(record["sys_mod_count"], "0")
        self.assertEqual(record["sys_created_by"], "admin")
        self.assertEqual(record["caller_id"], "")
        self.assertNotIn("no_such_field", record)
        self.assertRegex(record["sys_updated_on"], r"\A\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\Z")
        second = self.create("incident", {})
        self.assertEqual(second["number"], "INC0010002")

    def test_get_by_id_then_missing_is_404_in_the_envelope(self):
        record = self.create("incident", {"short_description": "x"})
        status, _, value = self.sim.table("GET", "incident", record["sys_id"])
        self.assertEqual(status, 200)
        self.assertEqual(value["result"], record)
        self.assertError(self.sim.table("GET", "incident", "0" * 32), 404, "No Record found")

    def test_patch_and_put_update_partially_and_count_modifications(self):
        self.sim.control("POST", "/sim/clock", {"now": "2026-03-01 10:00:00"})
        record = self.create("incident", {"short_description": "x", "category": "network"})
        self.sim.control("POST", "/sim/clock", {"now": "2026-03-01 10:05:00"})
        status, _, value = self.sim.table("PATCH", "incident", record["sys_id"],
                                          body={"state": "2"}, auth=("slmhub", "slmhub"))
        self.assertEqual(status, 200)
        updated = value["result"]
        self.assertEqual(updated["state"], "2")
        self.assertEqual(updated["incident_state"], "2")
        self.assertEqual(updated["category"], "network")
        self.assertEqual(updated["sys_mod_count"], "1")
        self.assertEqual(updated["sys_updated_by"], "slmhub")
        self.assertEqual(updated["sys_created_by"], "admin")
        self.assertEqual(updated["sys_created_on"], "2026-03-01 10:00:00")
        self.assertEqual(updated["sys_updated_on"], "2026-03-01 10:05:00")
        status, _, value = self.sim.table("PUT", "incident", record["sys_id"],
                                          body={"short_description": "y"})
        self.assertEqual(status, 200)
        self.assertEqual(value["result"]["sys_mod_count"], "2")
        self.assertEqual(value["result"]["state"], "2")
        # Writing the values a record already has is no update, as in ServiceNow.
        status, _, value = self.sim.table("PATCH", "incident", record["sys_id"],
                                          body={"short_description": "y"})
        self.assertEqual(value["result"]["sys_mod_count"], "2")

    def test_delete_answers_204_without_a_body(self):
        record = self.create("incident", {})
        status, headers, value = self.sim.table("DELETE", "incident", record["sys_id"])
        self.assertEqual(status, 204)
        self.assertIsNone(value)
        self.assertError(self.sim.table("DELETE", "incident", record["sys_id"]), 404)
        self.assertError(self.sim.table("PATCH", "incident", record["sys_id"], body={}), 404)

    def test_bad_requests_answer_400(self):
        self.assertError(self.sim.table("GET", "u_nothing"), 400, "Invalid table u_nothing")
        self.assertError(self.sim.call("POST", "/api/now/table/incident", "{not json"), 400,
                         "Exception while reading request")
        self.assertError(self.sim.call("POST", "/api/now/table/incident", "[]"), 400)

    def test_versioned_paths_reach_the_same_table(self):
        record = self.create("incident", {"short_description": "v"})
        for version in ("v1", "v2"):
            status, _, value = self.sim.call(
                "GET", "/api/now/%s/table/incident/%s" % (version, record["sys_id"]))
            self.assertEqual(status, 200)
            self.assertEqual(value["result"]["short_description"], "v")

    def test_unauthenticated_requests_answer_401(self):
        for auth in (None, ("admin", "wrong"), ("nobody", "admin")):
            status, headers, value = self.sim.table("GET", "incident", auth=auth)
            self.assertEqual(status, 401)
            self.assertEqual(value["status"], "failure")
            self.assertIn("WWW-Authenticate", headers)
        status, _, _ = self.sim.call("GET", "/api/now/table/incident", auth=None,
                                     headers={"Authorization": "Bearer made-up"})
        self.assertEqual(status, 401)

    def test_references_render_as_link_and_value(self):
        user = self.sim.control("POST", "/sim/records/sys_user",
                                {"user_name": "jdoe", "name": "Jane Doe"})["result"]
        record = self.create("incident", {"caller_id": user["sys_id"]})
        link = "http://127.0.0.1:%d/api/now/table/sys_user/%s" % (self.sim.port, user["sys_id"])
        self.assertEqual(record["caller_id"], {"link": link, "value": user["sys_id"]})
        self.assertEqual(record["assigned_to"], "")
        _, _, bare = self.sim.table("GET", "incident", record["sys_id"],
                                    sysparm_exclude_reference_link="true")
        self.assertEqual(bare["result"]["caller_id"], user["sys_id"])
        _, _, shown = self.sim.table("GET", "incident", record["sys_id"],
                                     sysparm_display_value="true")
        self.assertEqual(shown["result"]["caller_id"], {"display_value": "Jane Doe", "link": link})
        self.assertEqual(shown["result"]["state"], "New")
        self.assertEqual(shown["result"]["priority"], "5 - Planning")
        self.assertEqual(shown["result"]["impact"], "3 - Low")
        _, _, both = self.sim.table("GET", "incident", record["sys_id"],
                                    sysparm_display_value="all")
        self.assertEqual(both["result"]["caller_id"],
                         {"display_value": "Jane Doe", "link": link, "value": user["sys_id"]})
        self.assertEqual(both["result"]["state"], {"display_value": "New", "value": "1"})
        self.assertEqual(both["result"]["number"],
                         {"display_value": "INC0010001", "value": "INC0010001"})

    def test_fields_parameter_ignores_unknown_names(self):
        record = self.create("incident", {"short_description": "f"})
        _, _, value = self.sim.table("GET", "incident", record["sys_id"],
                                     sysparm_fields="number,short_description,bogus")
        self.assertEqual(value["result"], {"number": "INC0010001", "short_description": "f"})

    def test_journal_fields_read_back_empty_and_live_in_sys_journal_field(self):
        record = self.create("incident", {"comments": "first words"})
        self.assertEqual(record["comments"], "")
        _, _, value = self.sim.table("PATCH", "incident", record["sys_id"],
                                     body={"work_notes": "internal"}, auth=("slmhub", "slmhub"))
        self.assertEqual(value["result"]["work_notes"], "")
        self.assertEqual(value["result"]["sys_mod_count"], "1")
        rows = self.sim.query("sys_journal_field", "element_id=" + record["sys_id"] +
                              "^ORDERBYelement")
        self.assertEqual([(r["element"], r["value"], r["name"], r["sys_created_by"])
                          for r in rows],
                         [("comments", "first words", "incident", "admin"),
                          ("work_notes", "internal", "incident", "slmhub")])
        journal = self.sim.control("GET", "/sim/journal/" + record["sys_id"])["result"]
        self.assertEqual([j["value"] for j in journal], ["first words", "internal"])
        _, _, shown = self.sim.table("GET", "incident", record["sys_id"],
                                     sysparm_display_value="true", sysparm_fields="comments")
        self.assertIn("first words", shown["result"]["comments"])

    def test_priority_follows_the_impact_urgency_matrix_and_is_read_only(self):
        matrix = {("1", "1"): "1", ("1", "2"): "2", ("2", "1"): "2", ("1", "3"): "3",
                  ("2", "2"): "3", ("3", "1"): "3", ("2", "3"): "4", ("3", "2"): "4",
                  ("3", "3"): "5"}
        for (impact, urgency), priority in matrix.items():
            record = self.create("incident", {"impact": impact, "urgency": urgency,
                                              "priority": "1"})
            self.assertEqual(record["priority"], priority, (impact, urgency))
        _, _, value = self.sim.table("PATCH", "incident", record["sys_id"],
                                     body={"impact": "1", "urgency": "1"})
        self.assertEqual(value["result"]["priority"], "1")

    def test_other_tables(self):
        change = self.create("change_request", {"type": "emergency",
                                                "start_date": "2026-05-01 22:00:00"})
        self.assertEqual(change["number"], "CHG0010001")
        self.assertEqual(change["state"], "-5")
        outage = self.create("cmdb_ci_outage", {"begin": "2026-05-01 10:00:00",
                                                "end": "2026-05-01 11:30:00"})
        self.assertNotIn("number", outage)
        self.assertEqual(outage["type"], "outage")
        self.assertEqual(outage["duration"], "1970-01-01 01:30:00")
        service = self.create("cmdb_ci_service", {"name": "Mail"})
        self.assertEqual(service["name"], "Mail")

    def test_input_display_value_accepts_labels(self):
        record = self.create("incident", {"state": "In Progress"},
                             sysparm_input_display_value="true")
        self.assertEqual(record["state"], "2")

    def test_keep_alive_reuses_one_connection(self):
        connection = self.sim.connection()
        try:
            sockets = []
            for _ in range(3):
                status, headers, _ = self.sim.call("GET", "/api/now/table/incident",
                                                   connection=connection)
                self.assertEqual(status, 200)
                self.assertIsNotNone(headers["Content-Length"])
                sockets.append(connection.sock)
            self.assertIsNotNone(sockets[0])
            self.assertTrue(all(s is sockets[0] for s in sockets))
        finally:
            connection.close()

    def test_latency_is_added_to_api_requests_only(self):
        self.sim.control("POST", "/sim/config", {"latency_ms": 200})
        try:
            started = time.monotonic()
            self.assertEqual(self.sim.table("GET", "incident")[0], 200)
            self.assertGreaterEqual(time.monotonic() - started, 0.2)
            started = time.monotonic()
            self.sim.control("GET", "/sim/records/incident")
            self.assertLess(time.monotonic() - started, 0.2)
        finally:
            self.sim.control("POST", "/sim/config", {"latency_ms": 0})

    def test_the_request_log_lists_api_requests(self):
        last = self.sim.control("GET", "/sim/requests")["last"]
        self.sim.table("GET", "incident", auth=("slmhub", "slmhub"), sysparm_limit="5")
        self.sim.table("POST", "incident", body={"short_description": "logged"})
        logged = self.sim.control("GET", "/sim/requests?since=%d" % last)["requests"]
        self.assertEqual([(r["method"], r["path"], r["status"], r["user"]) for r in logged],
                         [("GET", "/api/now/table/incident", 200, "slmhub"),
                          ("POST", "/api/now/table/incident", 201, "admin")])
        self.assertEqual(logged[0]["params"]["sysparm_limit"], "5")
        self.assertIn("logged", logged[1]["body"])


class ImportSetTest(SimulatorTest):
    def test_import_coalesces_on_correlation_id(self):
        path = "/api/now/import/u_slmhub_incident_import"
        row = {"u_correlation_id": "slm-42", "u_short_description": "Printer", "impact": "1"}
        status, _, first = self.sim.call("POST", path, row)
        self.assertEqual(status, 201)
        self.assertEqual(first["staging_table"], "u_slmhub_incident_import")
        self.assertRegex(first["import_set"], r"\AISET\d{7}\Z")
        result = first["result"][0]
        self.assertEqual((result["status"], result["table"], result["display_value"]),
                         ("inserted", "incident", "INC0010001"))
        row["u_short_description"] = "Printer on fire"
        _, _, second = self.sim.call("POST", path, row)
        self.assertEqual(second["result"][0]["status"], "updated")
        self.assertEqual(second["result"][0]["sys_id"], result["sys_id"])
        _, _, third = self.sim.call("POST", path, row)
        self.assertEqual(third["result"][0]["status"], "ignored")
        records = self.sim.query("incident", "correlation_id=slm-42")
        self.assertEqual(len(records), 1)
        self.assertEqual(records[0]["short_description"], "Printer on fire")
        self.assertEqual(records[0]["sys_mod_count"], "1")
        self.assertError(self.sim.call("POST", "/api/now/import/u_other", row), 400)


class QueryTest(SimulatorTest):
    def setUp(self):
        super().setUp()
        rows = [("a", "1", "2", "network", "alpha one"), ("b", "2", "10", "network", "beta"),
                ("c", "6", "3", "", "Alpha two"), ("d", "7", "0", "software", "gamma")]
        self.ids = {}
        for name, state, count, category, text in rows:
            record = self.sim.control("POST", "/sim/records/incident", {
                "correlation_id": name, "state": state, "reassignment_count": count,
                "category": category, "short_description": text})["result"]
            self.ids[name] = record["sys_id"]

    def names(self, query):
        return [r["correlation_id"] for r in self.sim.query("incident", query)]

    def test_operators(self):
        self.assertEqual(self.names("state=2"), ["b"])
        self.assertEqual(self.names("state!=2"), ["a", "c", "d"])
        self.assertEqual(self.names("state>2"), ["c", "d"])
        self.assertEqual(self.names("state>=6"), ["c", "d"])
        self.assertEqual(self.names("state<2"), ["a"])
        self.assertEqual(self.names("state<=2"), ["a", "b"])
        # numeric, not text: "10" > "3"
        self.assertEqual(self.names("reassignment_count>3"), ["b"])
        self.assertEqual(self.names("short_descriptionLIKEalpha"), ["a", "c"])
        self.assertEqual(self.names("short_descriptionSTARTSWITHal"), ["a", "c"])
        self.assertEqual(self.names("correlation_idINa,d,z"), ["a", "d"])
        self.assertEqual(self.names("categoryISEMPTY"), ["c"])
        self.assertEqual(self.names("categoryISNOTEMPTY"), ["a", "b", "d"])
        self.assertEqual(self.names("sys_id=" + self.ids["c"]), ["c"])

    def test_and_or_and_new_query(self):
        self.assertEqual(self.names("category=network^state=2"), ["b"])
        self.assertEqual(self.names("state=1^ORstate=7"), ["a", "d"])
        self.assertEqual(self.names("category=network^state=1^ORstate=2"), ["a", "b"])
        self.assertEqual(self.names("state=1^NQcategory=software"), ["a", "d"])
        self.assertEqual(self.names("state=9"), [])

    def test_order_by(self):
        self.assertEqual(self.names("ORDERBYDESCcorrelation_id"), ["d", "c", "b", "a"])
        self.assertEqual(self.names("ORDERBYcategory^ORDERBYDESCstate"), ["c", "b", "a", "d"])
        self.assertEqual(self.names("ORDERBYDESCreassignment_count"), ["b", "c", "a", "d"])
        # ORDERBY applies globally wherever it stands; an unknown field is ignored
        self.assertEqual(self.names("state>1^ORDERBYDESCstate^NQstate=1^ORDERBYbogus"),
                         ["d", "c", "b", "a"])

    def test_unknown_fields_widen_the_query(self):
        self.assertEqual(self.names("u_nonexistent=zzz"), ["a", "b", "c", "d"])
        self.assertEqual(self.names("state=2^u_nonexistent=zzz"), ["b"])
        self.assertEqual(self.names("state=2^NQu_nonexistent=zzz"), ["a", "b", "c", "d"])
        self.assertEqual(self.names("state=2^ORu_nonexistent=zzz"), ["b"])

    def test_dot_walked_reference_fields(self):
        user = self.sim.control("POST", "/sim/records/sys_user", {"name": "Jane"})["result"]
        self.sim.control("PATCH", "/sim/records/incident/" + self.ids["b"],
                         {"caller_id": user["sys_id"]})
        self.assertEqual(self.names("caller_id.name=Jane"), ["b"])
        _, _, value = self.sim.table("GET", "incident", self.ids["b"],
                                     sysparm_fields="caller_id.name")
        self.assertEqual(value["result"], {"caller_id.name": "Jane"})


class PaginationTest(SimulatorTest):
    def setUp(self):
        super().setUp()
        self.bulk = self.sim.control("POST", "/sim/bulk/incident", {
            "count": 25, "start": "2026-01-01 00:00:00", "step_seconds": 1, "per_step": 3,
            "fields": {"short_description": "bulk {i}"}, "return_ids": True})

    def page(self, **params):
        status, headers, value = self.sim.table("GET", "incident", **params)
        self.assertEqual(status, 200, value)
        return headers, value["result"]

    def test_link_and_total_count(self):
        base = "http://127.0.0.1:%d/api/now/table/incident?" % self.sim.port
        headers, rows = self.page(sysparm_limit=10, sysparm_query="ORDERBYnumber")
        self.assertEqual(len(rows), 10)
        self.assertEqual(headers["X-Total-Count"], "25")
        rel = links(headers["Link"])
        self.assertEqual(set(rel), {"first", "next", "last"})
        self.assertEqual(rel["next"], base + "sysparm_offset=10&sysparm_limit=10"
                         "&sysparm_query=ORDERBYnumber")
        self.assertIn("sysparm_offset=20&", rel["last"])
        headers, rows = self.page(sysparm_limit=10, sysparm_offset=10)
        self.assertEqual(set(links(headers["Link"])), {"first", "prev", "next", "last"})
        self.assertIn("sysparm_offset=0&", links(headers["Link"])["prev"])
        headers, rows = self.page(sysparm_limit=10, sysparm_offset=20)
        self.assertEqual(len(rows), 5)
        self.assertEqual(set(links(headers["Link"])), {"first", "prev", "last"})
        headers, rows = self.page(sysparm_limit=100)
        self.assertEqual(len(rows), 25)
        self.assertNotIn("Link", headers)
        headers, rows = self.page(sysparm_limit=10, sysparm_no_count="true")
        self.assertNotIn("X-Total-Count", headers)
        self.assertEqual(set(links(headers["Link"])), {"first", "next"})
        headers, rows = self.page(sysparm_limit=10, sysparm_suppress_pagination_header="true")
        self.assertNotIn("Link", headers)

    def follow(self, limit, query=""):
        pages = []
        path = "/api/now/table/incident?" + urllib.parse.urlencode(
            {"sysparm_limit": limit, "sysparm_query": query})
        while path:
            status, headers, value = self.sim.call("GET", path)
            self.assertEqual(status, 200)
            pages.append([r["sys_id"] for r in value["result"]])
            url = links(headers.get("Link")).get("next")
            path = urllib.parse.urlsplit(url)._replace(scheme="", netloc="").geturl() if url else ""
        return pages

    def test_acl_hidden_rows_make_short_pages_and_404(self):
        self.sim.control("POST", "/sim/acl", {"every_nth": 4})
        pages = self.follow(10, "ORDERBYnumber")
        self.assertEqual([len(p) for p in pages], [8, 7, 4])  # 25 rows, every 4th hidden
        seen = [i for p in pages for i in p]
        self.assertEqual(seen, [i for n, i in enumerate(self.bulk["sys_ids"], 1) if n % 4])
        headers, _ = self.page(sysparm_limit=10)
        self.assertEqual(headers["X-Total-Count"], "25")  # counted before the ACL
        self.assertError(self.sim.table("GET", "incident", self.bulk["sys_ids"][3]), 404)
        self.sim.control("POST", "/sim/acl", {"hidden": self.bulk["sys_ids"][:10]})
        self.assertEqual([len(p) for p in self.follow(10)], [0, 10, 5])
        self.sim.control("POST", "/sim/acl", {})
        self.assertEqual([len(p) for p in self.follow(10)], [10, 10, 5])

    def test_keyset_sweep_orders_ties_by_sys_id(self):
        expected = sorted((self.sim.control("GET", "/sim/records/incident")["result"]),
                          key=lambda r: (r["sys_updated_on"], r["sys_id"]))
        self.assertEqual(expected[0]["sys_updated_on"], expected[2]["sys_updated_on"])
        cursor = ("", "")
        seen = []
        while True:
            query = ("sys_updated_on>%s^NQsys_updated_on=%s^sys_id>%s"
                     "^ORDERBYsys_updated_on^ORDERBYsys_id" % (cursor[0], cursor[0], cursor[1]))
            rows = self.sim.query("incident", query, sysparm_limit=4)
            if not rows:
                break
            seen += rows
            cursor = (rows[-1]["sys_updated_on"], rows[-1]["sys_id"])
        self.assertEqual([r["sys_id"] for r in seen], [r["sys_id"] for r in expected])
        # The same with a condition AND-ed into both groups, as the connector's sweep does.
        self.sim.control("PATCH", "/sim/records/incident/" + expected[5]["sys_id"],
                         {"category": "skip"})
        query = ("categoryISEMPTY^sys_updated_on>2026-01-01 00:00:01^NQcategoryISEMPTY"
                 "^sys_updated_on=2026-01-01 00:00:01^sys_id>%s^ORDERBYsys_updated_on"
                 "^ORDERBYsys_id" % expected[3]["sys_id"])
        rows = self.sim.query("incident", query)
        skipped = expected[5]["sys_id"]
        self.assertEqual([r["sys_id"] for r in rows],
                         [r["sys_id"] for r in expected[4:] if r["sys_id"] != skipped])


class OAuthTest(SimulatorTest):
    ARGS = ("--oauth-client", "slmhub-client:s3cret", "--token-ttl", "600")

    def token(self, **form):
        body = urllib.parse.urlencode(dict({"client_id": "slmhub-client",
                                            "client_secret": "s3cret"}, **form))
        return self.sim.call("POST", "/oauth_token.do", body, auth=None,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})

    def bearer(self, token):
        return self.sim.call("GET", "/api/now/table/incident", auth=None,
                             headers={"Authorization": "Bearer " + token})

    def test_password_grant_refresh_and_expiry(self):
        status, _, value = self.token(grant_type="password", username="slmhub",
                                      password="slmhub")
        self.assertEqual(status, 200)
        self.assertEqual(value["token_type"], "Bearer")
        self.assertEqual(value["expires_in"], 600)
        self.assertEqual(value["scope"], "useraccount")
        status, _, _ = self.bearer(value["access_token"])
        self.assertEqual(status, 200)
        log = self.sim.control("GET", "/sim/requests")["requests"]
        self.assertEqual((log[-1]["user"], log[-1]["auth"]), ("slmhub", "bearer"))

        self.assertEqual(self.sim.control("POST", "/sim/tokens/expire")["expired"], 1)
        status, _, _ = self.bearer(value["access_token"])
        self.assertEqual(status, 401)
        status, _, renewed = self.token(grant_type="refresh_token",
                                        refresh_token=value["refresh_token"])
        self.assertEqual(status, 200)
        self.assertNotEqual(renewed["access_token"], value["access_token"])
        self.assertIn("refresh_token", renewed)
        self.assertEqual(self.bearer(renewed["access_token"])[0], 200)

        self.sim.control("POST", "/sim/tokens/expire", {"refresh": True})
        status, _, _ = self.token(grant_type="refresh_token", refresh_token=value["refresh_token"])
        self.assertEqual(status, 401)

    def test_wrong_credentials_are_refused(self):
        expected = {"error_description": "access_denied", "error": "server_error"}
        for form in ({"grant_type": "password", "username": "slmhub", "password": "x"},
                     {"grant_type": "password", "username": "slmhub", "password": "slmhub",
                      "client_secret": "wrong"},
                     {"grant_type": "refresh_token", "refresh_token": "made-up"}):
            status, _, value = self.token(**form)
            self.assertEqual((status, value), (401, expected), form)


class RateLimitTest(SimulatorTest):
    def test_beyond_the_limit_answers_429_with_retry_after(self):
        # An hour's window: the counts start again when it rolls over, never during the test.
        self.sim.control("POST", "/sim/rate_limit", {"limit": 2, "window_seconds": 3600})
        for _ in range(2):
            status, headers, _ = self.sim.table("GET", "incident")
            self.assertEqual(status, 200)
            self.assertEqual(headers["X-RateLimit-Limit"], "2")
            reset = int(headers["X-RateLimit-Reset"])
            self.assertLessEqual(reset - time.time(), 3600)
        status, headers, value = self.sim.table("GET", "incident")
        self.assertEqual(status, 429)
        self.assertEqual(value["error"]["message"], "Rate limit exceeded")
        self.assertIn(int(headers["Retry-After"]), range(1, 3601))
        self.assertEqual(headers["X-RateLimit-Reset"], str(reset))
        self.sim.control("POST", "/sim/rate_limit", {})
        status, headers, _ = self.sim.table("GET", "incident")
        self.assertEqual(status, 200)
        self.assertNotIn("X-RateLimit-Limit", headers)


class FaultTest(SimulatorTest):
    def fault(self, **fault):
        self.sim.control("POST", "/sim/faults", fault)

    def incidents(self):
        return self.sim.control("GET", "/sim/records/incident")["result"]

    def test_status_faults_use_the_envelope(self):
        self.fault(kind="status", status=403, method="POST")
        self.fault(kind="status", status=503, count=2)
        self.assertError(self.sim.table("POST", "incident", body={}), 403, "Operation Failed")
        self.assertError(self.sim.table("GET", "incident"), 503)
        self.assertError(self.sim.table("GET", "incident"), 503)
        self.assertEqual(self.sim.table("GET", "incident")[0], 200)
        self.assertEqual(self.incidents(), [])

    def test_hibernating_instance_answers_200_with_html(self):
        self.fault(kind="html")
        status, headers, value = self.sim.table("GET", "incident")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn("hibernating", value)

    def test_slow_answers(self):
        self.fault(kind="slow", delay_ms=300, path="/api/now/table/incident")
        started = time.monotonic()
        self.assertEqual(self.sim.table("GET", "incident")[0], 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.3)

    def test_dropped_connection_before_the_write(self):
        self.fault(kind="drop", method="POST")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.sim.table("POST", "incident", body={"correlation_id": "x"})
        self.assertEqual(self.incidents(), [])
        log = self.sim.control("GET", "/sim/requests")["requests"]
        self.assertTrue(log[-1]["dropped"])

    def test_dropped_connection_after_the_commit_leaves_the_record(self):
        self.fault(kind="drop", method="POST", after_commit=True)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.sim.table("POST", "incident", body={"correlation_id": "slm-1"})
        self.assertEqual([r["correlation_id"] for r in self.incidents()], ["slm-1"])
        # A half-sent answer is a dropped connection too.
        self.fault(kind="drop", partial=True)
        with self.assertRaises(http.client.IncompleteRead):
            self.sim.table("GET", "incident")

    def test_cancelled_transaction_on_large_pages_only(self):
        self.fault(kind="cancel", min_limit=1000)
        self.assertEqual(self.sim.table("GET", "incident", sysparm_limit=1000)[0], 200)
        status, _, value = self.sim.table("GET", "incident")  # default limit 10000
        self.assertEqual(status, 500)
        self.assertEqual(value["error"]["message"],
                         "Transaction cancelled: maximum execution time exceeded")
        self.assertEqual(self.sim.table("GET", "incident")[0], 200)


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook endpoint recording what it receives; answers `status`."""

    daemon_threads = True

    def __init__(self):
        self.received = []
        self.status = 200
        self.cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.cond:
                    receiver.received.append((dict(self.headers), body))
                    receiver.cond.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self):
        return "http://127.0.0.1:%d/api/v1/webhooks/servicenow" % self.server_address[1]

    def wait(self, count):
        with self.cond:
            self.cond.wait_for(lambda: len(self.received) >= count, 10)
            return list(self.received)


class WebhookTest(SimulatorTest):
    def setUp(self):
        super().setUp()
        self.receiver = Receiver()

    def tearDown(self):
        self.receiver.shutdown()
        self.receiver.server_close()

    def hook(self, **config):
        self.sim.control("POST", "/sim/webhook", dict({"url": self.receiver.url(),
                                                       "tables": ["incident"]}, **config))

    def test_user_edits_and_api_writes_post_flat_string_objects(self):
        self.hook(auth={"kind": "basic", "user": "sn", "password": "pw"},
                  rename={"table": "u_table"}, extra={"source": "dev1"})
        group = self.sim.control("POST", "/sim/records/sys_user_group", {"name": "NOC"})["result"]
        record = self.sim.control("POST", "/sim/records/incident", {
            "_user": "jdoe", "short_description": "Disk", "assignment_group": group["sys_id"],
            "comments": "on it"})["result"]
        self.sim.table("PATCH", "incident", record["sys_id"], body={"state": "2"},
                       auth=("slmhub", "slmhub"))
        received = self.receiver.wait(2)
        self.assertEqual(len(received), 2)
        headers, body = received[0]
        self.assertEqual(headers["Authorization"], basic("sn", "pw"))
        first = json.loads(body)
        self.assertTrue(all(isinstance(v, str) for v in first.values()), first)
        self.assertEqual(first["u_table"], "incident")
        self.assertNotIn("table", first)
        self.assertEqual(first["source"], "dev1")
        self.assertEqual(first["sys_id"], record["sys_id"])
        self.assertEqual(first["assignment_group"], group["sys_id"])
        self.assertEqual(first["comments"], "on it")
        self.assertNotIn("work_notes", first)
        self.assertEqual((first["sys_updated_by"], first["sys_mod_count"]), ("jdoe", "0"))
        second = json.loads(received[1][1])
        self.assertEqual((second["sys_updated_by"], second["sys_mod_count"], second["state"]),
                         ("slmhub", "1", "2"))
        self.assertNotIn("comments", second)
        deliveries = self.sim.control("GET", "/sim/webhook/deliveries?wait_count=2")
        self.assertEqual([d["status"] for d in deliveries["deliveries"]], [200, 200])

    def test_token_and_hmac_authentication(self):
        self.hook(auth={"kind": "token", "header": "X-Token", "token": "t0k"})
        self.sim.control("POST", "/sim/records/incident", {"short_description": "a"})
        self.assertEqual(self.receiver.wait(1)[0][0]["X-Token"], "t0k")

        # The key given base64-encoded, as generateMac takes it ("azN5" is "k3y").
        self.hook(auth={"kind": "hmac", "secret": "azN5"})
        self.sim.control("POST", "/sim/records/incident", {"short_description": "b"})
        headers, body = self.receiver.wait(2)[1]
        expected = base64.b64encode(hmac.new(b"k3y", body, hashlib.sha256).digest()).decode()
        self.assertEqual(headers["X-SN-Signature"], expected)

        self.hook(auth={"kind": "hmac", "secret": "azN5", "header": "X-Sig",
                        "timestamp_header": "X-Sig-Time", "timestamp_skew_seconds": -600})
        self.sim.control("POST", "/sim/records/incident", {"short_description": "c"})
        headers, body = self.receiver.wait(3)[2]
        stamp = headers["X-Sig-Time"]
        self.assertLess(abs(int(stamp) - (time.time() - 600)), 10)
        expected = base64.b64encode(hmac.new(b"k3y", stamp.encode() + b"." + body,
                                             hashlib.sha256).digest()).decode()
        self.assertEqual(headers["X-Sig"], expected)

    def test_duplicates_and_reordering(self):
        self.hook(duplicates=2)
        for i in range(4):
            self.sim.control("POST", "/sim/records/incident", {"correlation_id": str(i)})
        received = self.receiver.wait(6)
        self.assertEqual([json.loads(b)["correlation_id"] for _, b in received],
                         ["0", "1", "1", "2", "3", "3"])

        self.sim.control("POST", "/sim/reset")
        self.receiver.received.clear()
        self.hook(reorder=5, flush_ms=5000)
        for i in range(5):
            self.sim.control("POST", "/sim/records/incident", {"correlation_id": str(i)})
        order = [json.loads(b)["correlation_id"] for _, b in self.receiver.wait(5)]
        self.assertEqual(sorted(order), ["0", "1", "2", "3", "4"])
        self.assertNotEqual(order, ["0", "1", "2", "3", "4"])  # --seed 7 shuffles them

    def test_a_burst_of_user_edits(self):
        self.hook()
        result = self.sim.control("POST", "/sim/bulk/incident", {
            "count": 30, "hook": True, "_user": "jdoe", "fields": {"correlation_id": "b{i}"}})
        self.assertEqual(result["count"], 30)
        received = self.receiver.wait(30)
        self.assertEqual([json.loads(b)["correlation_id"] for _, b in received],
                         ["b%d" % i for i in range(30)])
        self.assertEqual({json.loads(b)["sys_updated_by"] for _, b in received}, {"jdoe"})

    def test_disabled_hook_misses_events_and_failures_are_recorded(self):
        self.hook(enabled=False)
        self.sim.control("POST", "/sim/records/incident", {"correlation_id": "missed"})
        self.sim.control("PATCH", "/sim/webhook", {"enabled": True})
        self.receiver.status = 503
        self.sim.control("POST", "/sim/records/incident", {"correlation_id": "sent"})
        self.sim.control("POST", "/sim/records/change_request", {})  # not a hooked table
        received = self.receiver.wait(1)
        self.assertEqual([json.loads(b)["correlation_id"] for _, b in received], ["sent"])
        deliveries = self.sim.control("GET", "/sim/webhook/deliveries?wait_count=1")
        self.assertEqual([d["status"] for d in deliveries["deliveries"]], [503])
        self.assertEqual(self.sim.control("GET", "/sim/webhook")["events"], 1)


def openssl_certificate(directory, name):
    cert, key = (os.path.join(directory, name + ext) for ext in (".crt.pem", ".key.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=" + name, "-addext", "subjectAltName=" + (
                        "IP:" if name[0].isdigit() else "DNS:") + name,
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


class MutualTlsTest(unittest.TestCase):
    def test_https_with_a_client_certificate(self):
        with tempfile.TemporaryDirectory() as directory:
            server_cert, server_key = openssl_certificate(directory, "127.0.0.1")
            client_cert, client_key = openssl_certificate(directory, "slmhub-client")
            sim = Simulator("--tls-cert", server_cert, "--tls-key", server_key,
                            "--client-ca", client_cert, "--cert-user", "slmhub")
            try:
                self.assertNotEqual(sim.control_port, sim.port)
                self.assertTrue(sim.control("GET", "/sim/health")["ok"])
                context = ssl.create_default_context(cafile=server_cert)
                sim.tls = context
                with self.assertRaises((ssl.SSLError, ConnectionError)):
                    sim.call("GET", "/api/now/table/incident")
                context.load_cert_chain(client_cert, client_key)
                status, _, value = sim.call("POST", "/api/now/table/incident", {}, auth=None)
                self.assertEqual(status, 201, value)
                self.assertEqual(value["result"]["sys_created_by"], "slmhub")
                status, headers, _ = sim.call("GET", "/api/now/table/incident?sysparm_limit=1")
                self.assertEqual(status, 200)
            finally:
                sim.stop()


class BulkTest(SimulatorTest):
    def test_bulk_generates_many_records_with_shared_seconds(self):
        result = self.sim.control("POST", "/sim/bulk/incident", {
            "count": 20000, "start": "2026-01-01 00:00:00", "per_step": 4,
            "fields": {"correlation_id": "bulk-{i}", "impact": "1"}})
        self.assertEqual(result["count"], 20000)
        self.assertEqual(result["first_updated_on"], "2026-01-01 00:00:00")
        self.assertEqual(result["last_updated_on"], "2026-01-01 01:23:19")  # 4999 s later
        rows = self.sim.query("incident", "sys_updated_on=2026-01-01 00:00:01^ORDERBYnumber")
        self.assertEqual([r["correlation_id"] for r in rows],
                         ["bulk-4", "bulk-5", "bulk-6", "bulk-7"])
        self.assertEqual(rows[0]["priority"], "3")
        started = time.monotonic()
        cursor = result["first_updated_on"]
        rows = self.sim.query("incident", "sys_updated_on>%s^NQsys_updated_on=%s^sys_id>0"
                              "^ORDERBYsys_updated_on^ORDERBYsys_id" % (cursor, cursor),
                              sysparm_limit=1000)
        self.assertEqual(len(rows), 1000)
        self.assertLess(time.monotonic() - started, 1.0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
