#!/usr/bin/python3
"""Writes signed ServiceNow webhooks for the ingest benchmark: one per line, "SIGNATURE BODY",
where SIGNATURE is base64(HMAC-SHA256(secret, BODY)) as a business rule computes it and BODY
a flat JSON object of strings for an incident change, each with its own sys_id.

    make_webhooks.py SECRET COUNT PREFIX > hooks.txt
"""
import base64
import hashlib
import hmac
import json
import sys

secret, count, prefix = sys.argv[1].encode(), int(sys.argv[2]), sys.argv[3]
description = "Users report that the reporting database answers slowly after the nightly load. " * 3
out = sys.stdout
for i in range(count):
    sys_id = hashlib.md5(("%s-%d" % (prefix, i)).encode()).hexdigest()
    body = json.dumps({
        "table": "incident", "sys_id": sys_id, "sys_mod_count": "3",
        "sys_updated_by": "jdoe", "sys_updated_on": "2026-11-30 10:00:00",
        "number": "INC%07d" % i, "state": "2", "impact": "2", "urgency": "2", "priority": "3",
        "short_description": "Reporting database slow", "description": description,
        "assignment_group": "a715cd759f2002002920bde8132e7018", "cmdb_ci": "",
    }, separators=(",", ":"))
    signature = base64.b64encode(hmac.new(secret, body.encode(), hashlib.sha256).digest()).decode()
    out.write(signature + " " + body + "\n")
