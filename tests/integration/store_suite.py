"""What the program stores, checked row by row on every database it supports
(SPEC §5, §7, §8): the same tests run against SQLite (the sandbox's file),
a real PostgreSQL 15 and a real MariaDB 10.11 server that the test file starts
in a temp dir on a loopback port (servers.py) and stops afterwards.

StoreTests is a mixin: each test_store_<backend>.py makes it a TestCase with
`backend` set to "sqlite", "postgresql" or "mariadb".

Values read back are normalized so that one set of expectations holds on all
three: date-times as "YYYY-MM-DD HH:MM:SS.mmm" text, booleans and integers as
int, doubles as float, text as str, NULL as None.
"""
import collections
import datetime
import hashlib
import json
import os
import random
import re
import secrets
import sqlite3
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import servers  # noqa: E402
import webservers  # noqa: E402

DB_ERROR_RE = re.compile(r"\Adatabase error \(SQLSTATE [0-9A-Z]{5}\)\Z")
TIME_FMT = "%Y-%m-%d %H:%M:%S.%f"

# JSON name, column, kind (SPEC §5 and §8)
FIELDS = [
    ("event_ID", "Event_ID", "int"),
    ("claim_Audit_Event", "Claim_Audit_Event", "bool"),
    ("completion_Date", "Completion_Date", "time"),
    ("completion_Percent", "Completion_Percent", "double"),
    ("due_Date", "Due_Date", "time"),
    ("end_Date", "End_Date", "time"),
    ("entry_Date", "Entry_Date", "time"),
    ("entry_User", "Entry_User", "text"),
    ("event_Processor", "Event_Processor", "text"),
    ("event_Type", "Event_Type", "text"),
    ("meta_Data", "Meta_Data", "text"),
    ("next_Scheduled_Date", "Next_Scheduled_Date", "time"),
    ("next_Scheduled_Time", "Next_Scheduled_Time", "time"),
    ("priority", "Priority", "text"),
    ("process_Automation_Event", "Process_Automation_Event", "bool"),
    ("reminder", "Reminder", "bool"),
    ("reminder_Event_ID", "Reminder_Event_ID", "int"),
    ("reportSeries_Key", "ReportSeries_Key", "int"),
    ("start_Date", "Start_Date", "time"),
    ("status", "Status", "text"),
    ("subject", "Subject", "text"),
    ("update_Date", "Update_Date", "time"),
    ("update_User", "Update_User", "text"),
    ("userGroup_Key", "UserGroup_Key", "int"),
    ("user_ID", "User_ID", "text"),
]
NULLABLE = [name for name, _, _ in FIELDS if name not in (
    "event_ID", "claim_Audit_Event", "process_Automation_Event", "reminder",
    "entry_Date", "update_Date", "entry_User", "update_User")]

INT32_MIN, INT32_MAX = -2**31, 2**31 - 1
# the name of the constraint / trigger message the refusal tests add: the
# driver's message names it, the response must not
REFUSE_MARK = "eb_refuse_marker"
REFUSED_SUBJECT = "refuse me"


def fill(pattern, n):
    """pattern repeated to exactly n characters (code points)."""
    return (pattern * (n // len(pattern) + 1))[:n]


def normalize(kind, v):
    if v is None:
        return None
    if kind in ("int", "bool"):
        return int(v)
    if kind == "double":
        return float(v)
    return str(v)


def parse_time(text):
    return datetime.datetime.strptime(text, TIME_FMT)


# sandboxes of tests in flight, closed (their processes stopped by PID) if
# the run is interrupted before the tests' own cleanups
_open_sandboxes = set()


class _Leftovers:
    @staticmethod
    def close():
        for sb in list(_open_sandboxes):
            sb.close()


harness.stop_at_exit(_Leftovers, "close")


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class StoreTests(harness.EnvelopeChecks):
    """The tests; a TestCase subclass sets `backend`.  The answer and log
    checks (assert_multistatus, assert_error, assert_unavailable,
    assert_clean_exit, assert_no_sanitizer) come from harness.EnvelopeChecks."""

    backend = None
    server = None
    # connections the worker opens across a server restart: its first,
    # then a new one (1 where a pooler keeps the program's connection)
    connections_across_restart = 2

    # --- the database under test -------------------------------------------

    @classmethod
    def setUpClass(cls):
        cls.server = None
        kind = {"sqlite": None, "postgresql": servers.PostgresServer,
                "mariadb": servers.MariaDBServer}[cls.backend]
        if not os.path.exists(harness.BINARY):
            raise unittest.SkipTest("no program at %s (build first)" % harness.BINARY)
        if kind is None:
            return
        if not kind.available():
            raise unittest.SkipTest("%s server or its ODBC driver not installed" % cls.backend)
        server = kind()
        cls.addClassCleanup(server.cleanup)
        server.start()
        cls.server = server

    def setUp(self):
        self.logs = []      # every stderr text of the program seen by this test
        self.lighttpds = []
        self.secrets = []   # what must never be in a log
        if self.server is not None:
            self.server.start()   # a failed test may have left it stopped
            self.server.empty()
            self.sb = harness.Sandbox(databases={"test": self.server.odbc})
            self.secrets += [self.server.password, self.server.odbc]
        else:
            self.sb = harness.Sandbox()
            self.secrets.append("Driver=SQLite3;Database=%s" % self.sb.db_path)
        _open_sandboxes.add(self.sb)
        self.addCleanup(self._finish)

    def _finish(self):
        """Stop what the test started (by PID), then check every log seen."""
        try:
            for lt in self.lighttpds:
                lt.stop()   # and waits for its workers
            self.sb.stop_processes(timeout=30)
            for lt in self.lighttpds:
                self.logs.append(lt.log())
        finally:
            self.sb.close()
            _open_sandboxes.discard(self.sb)
        text = "\n".join(self.logs)
        self.assert_no_sanitizer(text, "sanitizer report in the program's stderr")
        self.assert_no_secrets(text)

    def assert_no_secrets(self, text):
        for s in self.secrets:
            self.assertNotIn(s, text, "a credential or connection string is in the log")
        self.assertNotRegex(text, r"(?i)\bPWD=", "a connection string's PWD is in the log")

    def select_list(self):
        out = []
        for _, col, kind in FIELDS:
            if self.backend == "postgresql" and kind == "time":
                out.append("to_char(%s, 'YYYY-MM-DD HH24:MI:SS.MS')" % col)
            elif self.backend == "postgresql" and kind == "bool":
                out.append("CAST(%s AS INTEGER)" % col)
            elif self.backend == "mariadb" and kind == "time":
                out.append("LEFT(DATE_FORMAT(%s, '%%Y-%%m-%%d %%H:%%i:%%s.%%f'), 23)" % col)
            else:
                out.append(col)
        return ", ".join(out)

    def query(self, sql):
        """Rows of sql as lists (str on servers, native on SQLite)."""
        if self.server is not None:
            return self.server.query(sql)
        con = sqlite3.connect(self.sb.db_path, timeout=30)
        try:
            return [list(r) for r in con.execute(sql)]
        finally:
            con.close()

    def execute(self, sql):
        if self.server is not None:
            self.server.execute(sql)
            return
        con = sqlite3.connect(self.sb.db_path, timeout=30)
        try:
            con.executescript(sql)
        finally:
            con.close()

    def rows(self):
        """{event_ID: {json name: normalized value}} of every stored row."""
        out = {}
        for raw in self.query("SELECT %s FROM Event ORDER BY Event_ID" % self.select_list()):
            row = {name: normalize(kind, v) for (name, _, kind), v in zip(FIELDS, raw)}
            out[row["event_ID"]] = row
        return out

    def row(self, eid):
        got = self.rows()
        self.assertIn(eid, got, "row %d is not stored" % eid)
        return got[eid]

    def count(self):
        return int(self.query("SELECT COUNT(*) FROM Event")[0][0])

    def ids(self):
        return [int(r[0]) for r in self.query("SELECT Event_ID FROM Event ORDER BY Event_ID")]

    # --- talking to the program ----------------------------------------------

    def put(self, items, env=None):
        """One request as plain CGI; checks the exit code and sanitizers."""
        r, err, rc = self.sb.cgi(items if isinstance(items, (bytes, bytearray))
                                 else json.dumps(items).encode(), env=env, timeout=600)
        self.logs.append(err)
        self.assert_clean_exit(rc, err)
        r.stderr = err
        return r

    def lighttpd(self, max_procs):
        if harness.which("lighttpd") is None:
            self.skipTest("lighttpd not installed")
        lt = webservers.Lighttpd(self.sb, max_procs=max_procs, run_user=None)
        self.lighttpds.append(lt)
        return lt

    def assert_recent(self, text, before, after):
        """A default "now": between the request's start and end (UTC), with
        a second of slack for the millisecond truncation."""
        self.assertIsNotNone(text)
        t = parse_time(text)
        self.assertLessEqual(before - datetime.timedelta(seconds=1), t, text)
        self.assertLessEqual(t, after + datetime.timedelta(seconds=1), text)

    # --- every field -----------------------------------------------------------

    FULL_A = {
        "event_ID": INT32_MAX,
        "claim_Audit_Event": True,
        "completion_Date": "2024-02-29T23:59:59.9999+02:00",
        "completion_Percent": 0.1,
        "due_Date": "2024-03-01",
        "end_Date": "2023-12-31T23:30-01:00",
        "entry_Date": "2020-01-01T00:00:00Z",
        "entry_User": "fmüller",
        "event_Processor": fill("Prozessor-ßé-", 256),
        "event_Type": "réclamation",
        "meta_Data": None,  # set below: long, with quotes and backslashes
        "next_Scheduled_Date": "2024-06-30T12:00:00.5+05:30",
        "next_Scheduled_Time": "1970-01-01T08:15:30Z",
        "priority": fill("Ü", 32),
        "process_Automation_Event": False,
        "reminder": True,
        "reminder_Event_ID": INT32_MIN,
        "reportSeries_Key": 0,
        "start_Date": "2024-02-29T00:00:00.123456789Z",
        "status": "Open ✓",
        "subject": fill("fmüller réclamation ", 512),
        "update_Date": "2025-01-02T03:04:05.006Z",
        "update_User": fill("ü", 20),
        "userGroup_Key": INT32_MAX,
        "user_ID": "u-00042",
    }
    META = ("{\"note\": \"fmüller réclamation\", 'single' \"double\" \\ back\\slash \\\\two "
            "\\n not-a-newline\nreal newline\ttab 😀 ✓ €}")
    FULL_A_STORED = dict(
        FULL_A, claim_Audit_Event=1, process_Automation_Event=0, reminder=1,
        completion_Date="2024-02-29 21:59:59.999",
        due_Date="2024-03-01 00:00:00.000",
        end_Date="2024-01-01 00:30:00.000",
        entry_Date="2020-01-01 00:00:00.000",
        next_Scheduled_Date="2024-06-30 06:30:00.500",
        next_Scheduled_Time="1970-01-01 08:15:30.000",
        start_Date="2024-02-29 00:00:00.123",
        update_Date="2025-01-02 03:04:05.006")

    FULL_B = {
        "event_ID": INT32_MIN,
        "claim_Audit_Event": False,
        "completion_Date": None,
        "completion_Percent": -1e300,
        "due_Date": None,
        "end_Date": None,
        "entry_Date": "1999-12-31T23:59:59.999-00:30",
        "entry_User": "",
        "event_Processor": None,
        "event_Type": "",
        "meta_Data": None,
        "next_Scheduled_Date": None,
        "next_Scheduled_Time": None,
        "priority": None,
        "process_Automation_Event": True,
        "reminder": False,
        "reminder_Event_ID": INT32_MAX,
        "reportSeries_Key": -1,
        "start_Date": None,
        "status": None,
        "subject": None,
        "update_Date": "2000-01-01T00:29:59.999+00:30",
        "update_User": "x",
        "userGroup_Key": None,
        "user_ID": None,
    }
    FULL_B_STORED = dict(
        FULL_B, claim_Audit_Event=0, process_Automation_Event=1, reminder=0,
        entry_Date="2000-01-01 00:29:59.999", update_Date="1999-12-31 23:59:59.999")

    def full_items(self):
        a = dict(self.FULL_A, meta_Data=fill(self.META, 100000))
        a_stored = dict(self.FULL_A_STORED, meta_Data=a["meta_Data"])
        extra = []
        for i, d in enumerate((1 / 3, 1.7976931348623157e308, -2.2250738585072014e-308,
                               123456.789, 100.0, 0.0, 1e-300)):
            extra.append(harness.event(1000 + i, completion_Percent=d,
                                       update_Date="2024-01-01T00:00:00Z"))
        return [a, self.FULL_B] + extra, [a_stored, self.FULL_B_STORED]

    def assert_row_equals(self, got, want):
        for name, _, kind in FIELDS:
            w = want[name]
            if isinstance(w, bool):
                w = int(w)
            if kind == "double" and w is not None:
                self.assertIsNotNone(got[name], name)
                self.assertEqual(float(got[name]), float(w),
                                 "%s: %r stored as %r" % (name, w, got[name]))
            else:
                self.assertEqual(got[name], w, "%s of event %d" % (name, want["event_ID"]))

    def test_every_field_is_stored_exactly(self):
        items, stored = self.full_items()
        r = self.put(items)
        self.assert_multistatus(r, [(it["event_ID"], 201) for it in items])
        got = self.rows()
        self.assertEqual(sorted(got), sorted(it["event_ID"] for it in items))
        for want in stored:
            self.assert_row_equals(got[want["event_ID"]], want)
        for it in items[2:]:
            self.assertEqual(got[it["event_ID"]]["completion_Percent"], it["completion_Percent"],
                             "double %r" % it["completion_Percent"])
        # the same rows written again as updates come back the same
        r = self.put(items)
        self.assert_multistatus(r, [(it["event_ID"], 200) for it in items])
        self.assertEqual(self.rows(), got)

    # --- created, updated, defaults --------------------------------------------

    def test_create_then_update_keeps_entry_fields_and_nulls_absent_ones(self):
        first = dict(harness.event(7), entry_Date="2021-05-05T10:00:00Z", entry_User="creator",
                     update_Date="2021-05-06T10:00:00Z", update_User="upd0", subject="first",
                     priority="High", userGroup_Key=5, completion_Percent=12.5,
                     due_Date="2021-06-01T00:00:00Z", meta_Data="m")
        r = self.put([first])
        self.assert_multistatus(r, [(7, 201)])
        row = self.row(7)
        self.assertEqual((row["entry_Date"], row["entry_User"], row["update_Date"],
                          row["update_User"], row["priority"]),
                         ("2021-05-05 10:00:00.000", "creator", "2021-05-06 10:00:00.000",
                          "upd0", "High"))

        # PUT replaces the row: absent nullable fields become NULL, the
        # entry_ fields are kept, the update_ fields default to now / the token's user
        second = harness.event(7, claim_Audit_Event=True, reminder=True, subject="second")
        before = utc_now()
        r = self.put([second])
        after = utc_now()
        self.assert_multistatus(r, [(7, 200)])
        row = self.row(7)
        self.assertEqual(row["entry_Date"], "2021-05-05 10:00:00.000")
        self.assertEqual(row["entry_User"], "creator")
        self.assert_recent(row["update_Date"], before, after)
        self.assertEqual(row["update_User"], harness.USER)
        self.assertEqual((row["subject"], row["claim_Audit_Event"], row["reminder"],
                          row["process_Automation_Event"]), ("second", 1, 1, 0))
        for name in NULLABLE:
            if name != "subject":
                self.assertIsNone(row[name], name)

        # each kept field is replaced only when given
        r = self.put([harness.event(7, entry_User="changer")])
        self.assert_multistatus(r, [(7, 200)])
        row = self.row(7)
        self.assertEqual((row["entry_Date"], row["entry_User"]),
                         ("2021-05-05 10:00:00.000", "changer"))
        r = self.put([harness.event(7, entry_Date="2022-02-02T02:02:02.002+01:00")])
        self.assert_multistatus(r, [(7, 200)])
        row = self.row(7)
        self.assertEqual((row["entry_Date"], row["entry_User"]),
                         ("2022-02-02 01:02:02.002", "changer"))
        self.assertIsNone(row["subject"])
        self.assertEqual(self.count(), 1)

    def test_create_without_entry_and_update_fields_defaults_to_now_and_token_user(self):
        before = utc_now()
        r = self.put([harness.event(8), harness.event(9, update_User="someone")])
        after = utc_now()
        self.assert_multistatus(r, [(8, 201), (9, 201)])
        rows = self.rows()
        for eid in (8, 9):
            self.assert_recent(rows[eid]["entry_Date"], before, after)
            self.assert_recent(rows[eid]["update_Date"], before, after)
            self.assertEqual(rows[eid]["entry_User"], harness.USER)
            for name in NULLABLE:
                self.assertIsNone(rows[eid][name], name)
        self.assertEqual(rows[8]["update_User"], harness.USER)
        self.assertEqual(rows[9]["update_User"], "someone")

    def test_update_that_changes_nothing_is_still_200(self):
        # every column explicit, so the second write stores identical values
        # (MariaDB then reports 0 affected rows)
        item = dict(harness.event(11), entry_Date="2024-01-01T00:00:00Z", entry_User="e",
                    update_Date="2024-01-02T00:00:00Z", update_User="u", subject="same")
        r = self.put([item])
        self.assert_multistatus(r, [(11, 201)])
        stored = self.rows()
        for _ in range(2):
            r = self.put([item])
            self.assert_multistatus(r, [(11, 200)])
        r = self.put([item, item])
        self.assert_multistatus(r, [(11, 200), (11, 200)])
        self.assertEqual(self.rows(), stored)
        # a new id sent twice, identical: created, then an update that changes nothing
        other = dict(item, event_ID=12)
        r = self.put([other, other])
        self.assert_multistatus(r, [(12, 201), (12, 200)])
        self.assertEqual(self.count(), 2)

    # --- order within a batch ---------------------------------------------------

    def test_duplicates_in_a_batch_apply_in_order_and_the_later_wins(self):
        r = self.put([harness.event(5, subject="a", priority="p1"),
                      harness.event(3, subject="three"),
                      harness.event(5, subject="b"),
                      harness.event(5, subject="c", userGroup_Key=9)])
        self.assert_multistatus(r, [(5, 201), (3, 201), (5, 200), (5, 200)])
        rows = self.rows()
        self.assertEqual(sorted(rows), [3, 5])
        self.assertEqual((rows[5]["subject"], rows[5]["priority"], rows[5]["userGroup_Key"]),
                         ("c", None, 9))
        r = self.put([harness.event(3, subject="x"), harness.event(3, subject="y")])
        self.assert_multistatus(r, [(3, 200), (3, 200)])
        self.assertEqual(self.row(3)["subject"], "y")

    def test_descending_ids_are_reported_in_input_order(self):
        r = self.put([harness.event(20, subject="old20")])
        self.assert_multistatus(r, [(20, 201)])
        batch = [harness.event(30, subject="s30"), harness.event(25, reminder=1),
                 harness.event(20, subject="s20"), harness.event(10, subject="s10"),
                 harness.event(-5, subject="s-5")]
        r = self.put(batch)
        data = self.assert_multistatus(r, [(30, 201), (25, 400), (20, 200), (10, 201),
                                           (-5, 201)])
        self.assertIn("reminder", data[1]["body"])
        rows = self.rows()
        self.assertEqual(sorted(rows), [-5, 10, 20, 30])
        for eid in (-5, 10, 20, 30):
            self.assertEqual(rows[eid]["subject"], "s%d" % eid)

    # --- a row the database refuses ---------------------------------------------

    def add_refusal(self):
        """Make the database refuse rows whose Subject is REFUSED_SUBJECT."""
        if self.backend == "sqlite":
            self.execute(
                "CREATE TRIGGER %(m)s_ins BEFORE INSERT ON Event WHEN NEW.Subject = '%(s)s' "
                "BEGIN SELECT RAISE(ABORT, '%(m)s'); END;"
                "CREATE TRIGGER %(m)s_upd BEFORE UPDATE ON Event WHEN NEW.Subject = '%(s)s' "
                "BEGIN SELECT RAISE(ABORT, '%(m)s'); END;" % {"m": REFUSE_MARK,
                                                              "s": REFUSED_SUBJECT})
            return
        self.addCleanup(self.execute, "ALTER TABLE Event DROP CONSTRAINT IF EXISTS %s"
                        % REFUSE_MARK)
        self.execute("ALTER TABLE Event ADD CONSTRAINT %s CHECK (Subject IS NULL OR "
                     "Subject <> '%s')" % (REFUSE_MARK, REFUSED_SUBJECT))

    def assert_refused(self, result):
        self.assertEqual(result["status"], 500)
        body = result["body"]
        self.assertTrue(body.startswith("database error (SQLSTATE "), body)
        self.assertRegex(body, DB_ERROR_RE)
        # the SQLSTATE each driver reports for a CHECK violation (SQLite's
        # driver reports a trigger's RAISE(ABORT) as HY000)
        want = {"postgresql": "23514", "mariadb": "23000"}.get(self.backend)
        if want is not None:
            self.assertEqual(body, "database error (SQLSTATE %s)" % want)

    def test_a_row_the_database_refuses_fails_alone(self):
        self.add_refusal()
        r = self.put([harness.event(1, subject="one"),
                      harness.event(2, subject=REFUSED_SUBJECT),
                      harness.event(3, subject="three")])
        data = self.assert_multistatus(r, [(1, 201), (2, 500), (3, 201)])
        self.assert_refused(data[1])
        # the driver's message (naming the constraint) is logged, not returned
        self.assertNotIn(REFUSE_MARK, r.raw.decode("utf-8"))
        self.assertIn(REFUSE_MARK, r.stderr)
        rows = self.rows()
        self.assertEqual(sorted(rows), [1, 3])
        self.assertEqual((rows[1]["subject"], rows[3]["subject"]), ("one", "three"))

        # refused as an update: the stored row stays as it was
        r = self.put([harness.event(3, subject=REFUSED_SUBJECT),
                      harness.event(1, subject="one again"),
                      harness.event(4, subject="four"),
                      harness.event(2, subject=REFUSED_SUBJECT),
                      harness.event(3, subject=REFUSED_SUBJECT, priority="x")])
        data = self.assert_multistatus(r, [(3, 500), (1, 200), (4, 201), (2, 500), (3, 500)])
        for i in (0, 3, 4):
            self.assert_refused(data[i])
        self.assertNotIn(REFUSE_MARK, r.raw.decode("utf-8"))
        rows = self.rows()
        self.assertEqual(sorted(rows), [1, 3, 4])
        self.assertEqual((rows[1]["subject"], rows[3]["subject"], rows[4]["subject"]),
                         ("one again", "three", "four"))
        self.assertIsNone(rows[3]["priority"])

    def mixed_batch(self, model, seed, refused=()):
        """600 items over ids 1..399 (stored or not, repeated), kept fields
        given or not, the items at positions `refused` refused by the
        database. Updates model (id -> subject, entry_User) the way writing
        the items one at a time in order would; returns (batch, expected
        [(id, status)])."""
        rng = random.Random(seed)  # a fixed seed: the same batch every run
        batch, want = [], []
        for k in range(600):
            item = harness.event(rng.randrange(1, 400), subject="s%d k%d" % (seed, k))
            if rng.random() < 0.3:
                item["entry_User"] = "u%d" % k
            if k in refused:
                item["subject"] = REFUSED_SUBJECT
            batch.append(item)
            eid = item["event_ID"]
            if k in refused:
                want.append((eid, 500))
                continue
            want.append((eid, 200 if eid in model else 201))
            row = model.setdefault(eid, {"entry_User": harness.USER})
            row["subject"] = item["subject"]
            row["entry_User"] = item.get("entry_User", row["entry_User"])
        return batch, want

    def assert_fast_path(self, r):
        """No statement of r's batch failed: the bulk statements took every
        row, without the item-by-item redo."""
        self.assertNotRegex(r.stderr, r"database: \w+ failed|item by item", r.stderr)

    def assert_rows_are(self, model):
        rows = self.rows()
        self.assertEqual(sorted(rows), sorted(model))
        for eid, row in model.items():
            self.assertEqual({"subject": rows[eid]["subject"],
                              "entry_User": rows[eid]["entry_User"]}, row, "event %d" % eid)

    def put_mixed_batch(self, seed):
        """Store rows 2, 5 ... 398, then put mixed_batch(seed) over them and
        check each item's status and each row; the second answer and the
        model."""
        existing = range(2, 400, 3)
        r = self.put([harness.event(i, subject="old%d" % i, entry_User="first")
                      for i in existing])
        self.assertEqual(r.statuses(), [201] * len(existing))
        model = {i: {"subject": "old%d" % i, "entry_User": "first"} for i in existing}
        batch, want = self.mixed_batch(model, seed)
        r = self.put(batch)
        self.assert_multistatus(r, want)
        self.assert_rows_are(model)
        return r, model

    def test_a_mixed_batch_gets_what_writing_item_by_item_would_give(self):
        """The fast path writes many rows per statement. A batch larger than
        one statement, of rows stored and not, kept fields given or not and
        repeated ids, gets for each item the status, and for each row the
        values, of writing the items one at a time in order; so does one
        with two rows the database refuses (redone item by item)."""
        r, model = self.put_mixed_batch(6)
        self.assert_fast_path(r)

        self.add_refusal()
        batch, want = self.mixed_batch(model, 7, refused=(150, 420))
        data = self.assert_multistatus(self.put(batch), want)
        for k in (150, 420):
            self.assert_refused(data[k])
        self.assert_rows_are(model)

    # --- dry run (SPEC §11) --------------------------------------------------------

    def dump(self):
        """Every row, every column, as the database gives them back."""
        return self.query("SELECT %s FROM Event ORDER BY Event_ID" % self.select_list())

    def put_prefer(self, items, prefer):
        return self.put(items, env=self.sb.headers(HTTP_PREFER=prefer))

    def assert_dry_run(self, r):
        """A 207 that says it was a dry run, logged as one."""
        self.assertEqual(r.status, 207, r)
        self.assertEqual(r.headers.get("preference-applied"), "tx=rollback", r.headers)
        self.assertRegex(r.stderr, r" status=207 duration_ms=[0-9.]+ dry_run=1\n")

    def assert_real_run(self, r):
        self.assertEqual(r.status, 207, r)
        self.assertNotIn("preference-applied", r.headers)
        self.assertRegex(r.stderr, r" status=207 duration_ms=[0-9.]+\n")
        self.assertNotIn("dry_run", r.stderr)

    def test_dry_run_answers_what_the_real_run_then_does_and_stores_nothing(self):
        """New ids, existing ones, an invalid item, rows the database
        refuses (the careful redo, with savepoints) and a repeated id: the
        dry run answers item for item what the same batch then answers for
        real, and the table is row for row, column for column, as before."""
        self.add_refusal()
        r = self.put([harness.event(2, subject="two", entry_User="first", priority="p"),
                      harness.event(3, subject="three")])
        self.assert_multistatus(r, [(2, 201), (3, 201)])
        batch = [harness.event(1, subject="one"),
                 harness.event(2, subject="two again"),
                 {"event_ID": 4, "claim_Audit_Event": "yes"},
                 harness.event(5, subject=REFUSED_SUBJECT),
                 harness.event(3, subject=REFUSED_SUBJECT),
                 harness.event(1, subject="one again", entry_User="later"),
                 harness.event(6, due_Date="2024-02-30"),
                 harness.event(7)]
        want = [(1, 201), (2, 200), (4, 400), (5, 500), (3, 500), (1, 200), (6, 400), (7, 201)]
        before = self.dump()
        dry = self.put_prefer(batch, "return=minimal, tx=rollback")
        self.assert_dry_run(dry)
        self.assert_multistatus(dry, want)
        self.assertIn("item by item", dry.stderr)   # the careful redo ran
        self.assertEqual(self.dump(), before)
        real = self.put(batch)
        self.assert_real_run(real)
        self.assertEqual(real.json["data"], dry.json["data"])
        self.assertNotEqual(self.dump(), before)
        self.assertEqual(self.ids(), [1, 2, 3, 7])

    def test_dry_run_on_the_fast_path_and_of_one_item_stores_nothing(self):
        """Without a refused row the batch takes the bulk statements (and a
        batch of one the shortest way there is): still nothing is stored,
        and the worker's next requests are served as usual."""
        r = self.put([harness.event(i, subject="old%d" % i) for i in range(1, 300, 2)])
        self.assertEqual(r.statuses(), [201] * 150)
        before = self.dump()
        batch = [harness.event(i, subject="new%d" % i) for i in range(1, 300)]
        dry = self.put_prefer(batch, "tx=rollback")
        self.assert_dry_run(dry)
        self.assert_multistatus(dry, [(i, 200 if i % 2 else 201) for i in range(1, 300)])
        self.assert_fast_path(dry)
        self.assertEqual(self.dump(), before)
        for one, status in ((harness.event(1000), 201), (harness.event(1, subject="x"), 200)):
            one_dry = self.put_prefer([one], "TX=Rollback")
            self.assert_dry_run(one_dry)
            self.assert_multistatus(one_dry, [(one["event_ID"], status)])
            self.assertEqual(self.dump(), before)
        real = self.put(batch)
        self.assert_real_run(real)
        self.assertEqual(real.json["data"], dry.json["data"])
        self.assertEqual(self.ids(), list(range(1, 300)))

    def test_dry_run_with_nothing_to_store_still_says_it_was_applied(self):
        before = self.dump()
        for batch, want in (([], []), ([{"event_ID": 9}], [(9, 400)])):
            r = self.put_prefer(batch, "tx=rollback")
            self.assert_dry_run(r)
            self.assert_multistatus(r, want)
        self.assertEqual(self.dump(), before)

    def test_other_prefer_values_are_ignored_and_the_batch_is_stored(self):
        for k, prefer in enumerate(("return=minimal", "tx=commit", "tx=commit, tx=rollback",
                                    "return=minimal; tx=rollback", "tx=rollbacks",
                                    'x="tx=rollback"', "")):
            with self.case(prefer=prefer):
                r = self.put_prefer([harness.event(100 + k)], prefer)
                self.assert_real_run(r)
                self.assert_multistatus(r, [(100 + k, 201)])
        self.assertEqual(self.ids(), list(range(100, 107)))

    def test_dry_run_on_a_worker_keeps_it_serving(self):
        """FastCGI: a dry run lets go of its transaction and (SQLite) of the
        writers' queue, so the same worker's next requests are served and
        stored."""
        lt = self.lighttpd(max_procs=1)
        before = self.dump()
        r = lt.request([harness.event(1), harness.event(2)], headers={"Prefer": "tx=rollback"})
        self.assertEqual(r.headers.get("preference-applied"), "tx=rollback", r.headers)
        self.assert_multistatus(r, [(1, 201), (2, 201)])
        self.assertEqual(self.dump(), before)
        r = lt.request([harness.event(1), harness.event(3)])
        self.assertNotIn("preference-applied", r.headers)
        self.assert_multistatus(r, [(1, 201), (3, 201)])
        r = lt.request([harness.event(1), harness.event(4)], headers={"Prefer": "tx=rollback"})
        self.assert_multistatus(r, [(1, 200), (4, 201)])
        self.assertEqual(self.ids(), [1, 3])
        log = self.wait_log_lines(lt, 3)
        self.assertEqual(len(re.findall(r" status=207 duration_ms=[0-9.]+ dry_run=1\n", log)), 2,
                         log)
        self.assertEqual(len(self.worker_pids(log)), 1, log)

    # --- one worker, many requests ------------------------------------------------

    def test_one_worker_reuses_its_connection_for_every_kind_of_write(self):
        """FastCGI: the worker's connection and prepared statements serve
        requests of every shape (all fields, kept fields given or not,
        duplicates, invalid items) and store each exactly."""
        lt = self.lighttpd(max_procs=1)
        token = {"Authorization": "Bearer " + self.sb.token()}
        items, stored = self.full_items()
        a, b = items[0]["event_ID"], items[1]["event_ID"]
        r = lt.request(items[:2], headers=token)
        self.assert_multistatus(r, [(a, 201), (b, 201)])
        got = self.rows()
        self.assert_row_equals(got[a], stored[0])
        self.assert_row_equals(got[b], stored[1])

        r = lt.request([harness.event(a, subject="two", update_User="u2")], headers=token)
        self.assert_multistatus(r, [(a, 200)])
        row = self.row(a)
        self.assertEqual((row["subject"], row["meta_Data"], row["entry_User"],
                          row["entry_Date"], row["update_User"]),
                         ("two", None, "fmüller", "2020-01-01 00:00:00.000", "u2"))

        r = lt.request([harness.event(a, entry_User="u3"),
                         harness.event(b, entry_Date="2001-01-01T00:00:00+01:00")], headers=token)
        self.assert_multistatus(r, [(a, 200), (b, 200)])
        got = self.rows()
        self.assertEqual((got[a]["entry_User"], got[a]["entry_Date"]),
                         ("u3", "2020-01-01 00:00:00.000"))
        self.assertEqual((got[b]["entry_User"], got[b]["entry_Date"]),
                         ("", "2000-12-31 23:00:00.000"))

        r = lt.request([harness.event(5, meta_Data="m" * 5000), harness.event(5, reminder=1),
                        harness.event(5, meta_Data="short"), harness.event(6)], headers=token)
        self.assert_multistatus(r, [(5, 201), (5, 400), (5, 200), (6, 201)])
        self.assertEqual(self.row(5)["meta_Data"], "short")
        self.assertEqual(self.ids(), sorted([a, b, 5, 6]))
        log = self.wait_log_lines(lt, 4)
        self.assertEqual(len(self.worker_pids(log)), 1, log)
        self.assertEqual(len(re.findall(r"database test: connected", log)), 1, log)

    # --- the biggest item the body limit allows -----------------------------------

    def test_meta_data_as_long_as_the_body_limit_allows(self):
        limit = 16777216   # the default max_body_bytes
        unit = 'fmüller "réclamation" \\ back\\slash\ttab\n😀 '
        item = harness.event(1)
        overhead = len(json.dumps([dict(item, meta_Data="")]).encode())
        unit_bytes = len(json.dumps(unit)[1:-1].encode())  # one unit's JSON text
        meta = unit * ((limit - overhead - 64) // unit_bytes)
        body = json.dumps([dict(item, meta_Data=meta)]).encode()
        self.assertLessEqual(len(body), limit)
        self.assertGreater(len(body), limit - 1024)
        r = self.put(body)
        self.assert_multistatus(r, [(1, 201)])
        digest = hashlib.md5(meta.encode()).hexdigest()
        if self.backend == "sqlite":
            got = self.query("SELECT Meta_Data FROM Event")[0][0]
            self.assertEqual((len(got), hashlib.md5(got.encode()).hexdigest()),
                             (len(meta), digest))
        else:
            chars = "length" if self.backend == "postgresql" else "CHAR_LENGTH"
            got = self.query("SELECT %s(Meta_Data), MD5(Meta_Data) FROM Event" % chars)
            self.assertEqual(got, [[str(len(meta)), digest]])

    # --- a big batch --------------------------------------------------------------

    def test_ten_thousand_events_in_one_batch(self):
        n = 10000
        batch = [harness.event(i, subject="s%d" % i, userGroup_Key=i % 7) for i in range(1, n + 1)]
        r = self.put(batch)
        self.assertEqual(r.status, 207, r)
        # (not assertEqual: its diff of two 10,000-item lists takes minutes)
        self.assertTrue(r.statuses() == [201] * n, collections.Counter(r.statuses()))
        self.assertEqual([d["id"][0]["value"] for d in r.json["data"]], list(range(1, n + 1)))
        self.assertEqual(self.count(), n)
        self.assert_fast_path(r)
        r = self.put(batch)
        self.assertEqual(r.status, 207, r)
        self.assertTrue(r.statuses() == [200] * n, collections.Counter(r.statuses()))
        self.assert_fast_path(r)
        self.assertEqual(self.count(), n)
        sample = self.query("SELECT Event_ID, Subject, UserGroup_Key FROM Event "
                            "WHERE Event_ID IN (1, 4321, 10000) ORDER BY Event_ID")
        self.assertEqual([[int(a), b, int(c)] for a, b, c in sample],
                         [[1, "s1", 1], [4321, "s4321", 4321 % 7], [10000, "s10000", 10000 % 7]])

    # --- concurrent writers -----------------------------------------------------------

    THREADS, BATCHES, SIZE, SPAN = 8, 5, 200, 400

    def test_concurrent_writers_count_each_id_created_once(self):
        lt = self.lighttpd(max_procs=4)
        token = self.sb.token()
        plans = []
        for t in range(self.THREADS):
            rng = random.Random(4000 + t)   # fixed seeds: the same batches every run
            # first batch: the same new ids for every thread, each in its own
            # order, sent at once; then ids from ranges that overlap by 3/4
            first = list(range(1, self.SIZE + 1))
            rng.shuffle(first)
            low = 1 + t * self.SPAN // 4
            plans.append([first] + [rng.sample(range(low, low + self.SPAN), self.SIZE)
                                    for _ in range(self.BATCHES - 1)])
        distinct = {i for plan in plans for batch in plan for i in batch}
        results = [[] for _ in plans]
        failures = []
        start = threading.Barrier(self.THREADS)

        def writer(t):
            try:
                start.wait(harness.scaled(60))
                for b, ids in enumerate(plans[t]):
                    batch = [harness.event(i, subject="t%d b%d" % (t, b), userGroup_Key=t)
                             for i in ids]
                    results[t].append((ids, lt.request(
                        batch, headers={"Authorization": "Bearer " + token})))
            except Exception as e:  # reported below, in the main thread
                failures.append("writer %d: %r" % (t, e))

        threads = [threading.Thread(target=writer, args=(t,), daemon=True)
                   for t in range(self.THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(600)
        self.assertFalse(any(th.is_alive() for th in threads), "a writer hangs")
        self.assertEqual(failures, [])
        created = 0
        writers_of = {}
        for t, done in enumerate(results):
            self.assertEqual(len(done), self.BATCHES)
            for b, (ids, r) in enumerate(done):
                self.assertEqual(r.status, 207, r)
                got = [(d["id"][0]["value"], d["status"]) for d in r.json["data"]]
                self.assertEqual([g[0] for g in got], ids)
                bad = [g for g in got if g[1] not in (200, 201)]
                self.assertEqual(bad, [], "items failed under concurrent writers")
                created += sum(1 for g in got if g[1] == 201)
                for i in ids:
                    writers_of.setdefault(i, set()).add("t%d b%d" % (t, b))
        self.assertEqual(created, len(distinct), "201s over all responses")
        self.assertEqual(self.count(), len(distinct))
        rows = self.rows()
        self.assertEqual(set(rows), distinct)
        for i, row in rows.items():
            self.assertIn(row["subject"], writers_of[i])
            self.assertEqual(row["userGroup_Key"], int(row["subject"].split()[0][1:]))

    # --- the server goes away -------------------------------------------------------------

    def need_server(self):
        if self.server is None:
            self.skipTest("SQLite has no server to restart or stop")

    @staticmethod
    def worker_pids(log):
        return {m.group(1) for m in re.finditer(r"events-batch\[(\d+)\]: activity=\S+ method=",
                                                log)}

    def wait_log_lines(self, lt, n):
        """The workers write their log line after the response: wait for it
        (a bound against hanging, not a timing assertion)."""
        deadline = time.time() + 30
        while time.time() < deadline:
            if len(re.findall(r" method=\S+ db=", lt.log())) >= n:
                return lt.log()
            time.sleep(0.05)
        self.fail("the workers did not log %d requests:\n%s" % (n, lt.log()))

    def test_server_restart_between_two_requests_to_the_same_worker(self):
        self.need_server()
        lt = self.lighttpd(max_procs=1)
        token = {"Authorization": "Bearer " + self.sb.token()}
        r = lt.request([harness.event(i) for i in range(1, 51)], headers=token)
        self.assert_multistatus(r, [(i, 201) for i in range(1, 51)])
        self.server.stop()
        self.server.start()
        batch = [harness.event(i, subject="after") for i in range(41, 101)]
        r = lt.request(batch, headers=token)
        self.assert_multistatus(r, [(i, 200 if i <= 50 else 201) for i in range(41, 101)])
        self.assertEqual(self.count(), 100)
        self.assertEqual(sorted(i for i, row in self.rows().items()
                                if row["subject"] == "after"), list(range(41, 101)))
        log = self.wait_log_lines(lt, 2)
        self.assertEqual(len(self.worker_pids(log)), 1, "not served by one worker:\n" + log)
        self.assertEqual(len(re.findall(r"database test: connected", log)),
                         self.connections_across_restart, log)

    def test_server_down_is_503_with_retry_after_and_the_worker_recovers(self):
        self.need_server()
        lt = self.lighttpd(max_procs=1)
        token = {"Authorization": "Bearer " + self.sb.token()}
        r = lt.request([harness.event(1)], headers=token)
        self.assert_multistatus(r, [(1, 201)])
        self.server.stop()
        # first with the worker's cached connection, then with none
        for _ in range(2):
            r = lt.request([harness.event(2), harness.event(1, subject="changed")],
                           headers=token)
            self.assert_unavailable(r)
        # plain CGI too
        r = self.put([harness.event(3)])
        self.assert_unavailable(r)
        self.server.start()
        self.assertEqual(self.ids(), [1], "nothing of a 503 batch may be applied")
        self.assertIsNone(self.row(1)["subject"])
        r = lt.request([harness.event(2), harness.event(1, subject="changed")], headers=token)
        self.assert_multistatus(r, [(2, 201), (1, 200)])
        self.assertEqual(self.ids(), [1, 2])
        self.assertEqual(self.row(1)["subject"], "changed")
        log = self.wait_log_lines(lt, 4)
        self.assertEqual(len(self.worker_pids(log)), 1, "the worker was restarted:\n" + log)
        self.assertEqual(len(re.findall(r"status=503", log)), 2, log)

    # --- credentials --------------------------------------------------------------------

    def test_log_never_contains_the_password_or_connection_string(self):
        # a good request, a connection refused for its password (servers)
        # or an unopenable file (SQLite), and a server that is down; every
        # stderr text of every test is also checked in _finish
        if self.server is None:
            password = "Eb%sPw" % secrets.token_hex(12)
            good = "Driver=SQLite3;Database=%s;NoCreat=1;UID=eb;PWD=%s" % (self.sb.db_path,
                                                                           password)
            bad = "Driver=SQLite3;Database=%s;NoCreat=1;UID=eb;PWD=%s" % (
                os.path.join(self.sb.dir, "missing", "events.db"), password)
            self.secrets += [password, good, bad]
        else:
            password = "Wrong%sPw" % secrets.token_hex(8)
            good, bad = self.server.odbc, self.server.odbc_with(PWD=password)
            self.secrets += [password, bad]
        self.sb.write_config(databases={"test": good})
        r = self.put([harness.event(1), harness.event(2, reminder="yes")])
        self.assert_multistatus(r, [(1, 201), (2, 400)])
        self.sb.write_config(databases={"test": bad})
        r = self.put([harness.event(3)])
        self.assert_unavailable(r)
        self.assertRegex(r.stderr, r"connect failed")   # the driver's reason is logged
        # a login refused is no failover: waiting does not mend a password
        self.assertNotRegex(r.stderr, r"trying again")
        self.sb.write_config(databases={"test": good})
        if self.server is not None:
            self.server.stop()
            r = self.put([harness.event(3)])
            self.assert_unavailable(r)
            self.server.start()
        self.assertEqual(self.ids(), [1])
        text = "\n".join(self.logs)
        self.assertRegex(text, r"status=207")
        self.assertRegex(text, r"status=503")
        self.assert_no_secrets(text)
