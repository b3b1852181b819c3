#!/usr/bin/env python3
"""The store's share of a first sweep: what writing its rows costs without slmhub.

Reads what slmhub wrote for the first COUNT tickets of a sweep (SWEEP_DB: the ticket rows,
their audit rows and `ticket.created` events, their ServiceNow links) and writes the same rows
again, with the same statements (the queue's number taken by an UPDATE per ticket, links
upserted), into an empty database of the same schema at WORK_DB: WAL, synchronous=FULL, a 32
MiB page cache and one transaction per PAGE tickets, as slmhub's store does. Nothing else:
no HTTP, no JSON, no mapping. Prints the CPU seconds the writing took (Python's own loop
included, so a ceiling on the floor) and the wall time.

    store_floor.py SWEEP_DB WORK_DB COUNT PAGE
"""

import os
import sqlite3
import sys
import time


def main() -> None:
    sweep_db, work_db, count, page = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    src = sqlite3.connect(f"file:{sweep_db}?mode=ro", uri=True)
    schema = [
        sql
        for (sql,) in src.execute(
            "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        )
    ]
    tickets = src.execute(
        "SELECT * FROM tickets WHERE kind = 'incident' ORDER BY id LIMIT ?", (count,)
    ).fetchall()
    ids = [t[0] for t in tickets]
    audit = dict(
        src.execute(
            "SELECT entity_id, after FROM audit_log WHERE entity = 'ticket' AND action = 'create'"
        ).fetchall()
    )
    events = dict(
        src.execute("SELECT subject, payload FROM events WHERE type = 'ticket.created'").fetchall()
    )
    links = {
        row[3]: row
        for row in src.execute(
            "SELECT tbl, sys_id, number, local_id, mod_count, updated_on, synced "
            "FROM servicenow_links WHERE tbl = 'incident'"
        )
    }
    queue = src.execute("SELECT name, prefix FROM ticket_queues WHERE name = 'servicenow'").fetchone()
    src.close()
    missing = [i for i in ids if i not in audit or i not in events or i not in links]
    if len(ids) < count or missing:
        sys.exit(f"store_floor: {sweep_db} holds {len(ids)} tickets, {len(missing)} incomplete")

    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(work_db + suffix):
            os.remove(work_db + suffix)
    db = sqlite3.connect(work_db, isolation_level=None, cached_statements=64)
    db.execute("PRAGMA journal_mode=WAL")
    for sql in schema:
        db.execute(sql)
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA cache_size=-32768")
    db.execute("INSERT INTO ticket_queues(name, prefix, next_number) VALUES (?, ?, 1)", queue)
    db.execute("INSERT INTO ticket_numbers(prefix, next_number) VALUES (?, 1)", (queue[1],))
    columns = len(tickets[0])
    insert_ticket = f"INSERT INTO tickets VALUES ({', '.join('?' * columns)})"

    cpu, wall = time.process_time(), time.perf_counter()
    for first in range(0, len(tickets), page):
        db.execute("BEGIN")
        for t in tickets[first : first + page]:
            db.execute(
                "UPDATE ticket_queues SET next_number = next_number + 1 WHERE name = ? "
                "RETURNING prefix",
                (queue[0],),
            ).fetchall()
            db.execute(
                "UPDATE ticket_numbers SET next_number = next_number + 1 WHERE prefix = ? "
                "RETURNING next_number - 1",
                (queue[1],),
            ).fetchall()
            db.execute(insert_ticket, t)
            db.execute(
                "INSERT INTO audit_log(at, actor, action, entity, entity_id, before, after, "
                "after_is_next) VALUES (?, ?, 'create', 'ticket', ?, NULL, ?, 0)",
                (t[9], "system:servicenow", t[0], audit[t[0]]),
            )
            db.execute(
                "INSERT INTO events (type, subject, payload, at) VALUES ('ticket.created', ?, ?, ?)",
                (t[0], events[t[0]], t[9]),
            )
            db.execute(
                "INSERT INTO servicenow_links(tbl, sys_id, number, local_id, mod_count, "
                "updated_on, synced) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(tbl, sys_id) DO "
                "UPDATE SET number = excluded.number, local_id = excluded.local_id, mod_count = "
                "excluded.mod_count, updated_on = excluded.updated_on, synced = excluded.synced",
                links[t[0]],
            )
        db.execute("COMMIT")
    print(f"{time.process_time() - cpu:.2f} {time.perf_counter() - wall:.2f}")
    db.close()


if __name__ == "__main__":
    main()
