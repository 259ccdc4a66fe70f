"""events-batch run as plain CGI (SPEC §2 "plain CGI"): one process per
request, the request in the environment and on stdin, the answer on stdout.

Every test runs the real binary against a real SQLite file in a fresh
sandbox, checks the HTTP answer and the rows in the database, and checks the
process exited 0 without a sanitizer report.
"""
import datetime
import fcntl
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import webservers  # noqa: E402

STAMP_RE = re.compile(r"\A\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}\Z")

INT_FIELDS = ["event_ID", "reminder_Event_ID", "reportSeries_Key", "userGroup_Key"]
BOOL_FIELDS = ["claim_Audit_Event", "process_Automation_Event", "reminder"]
DATE_FIELDS = ["completion_Date", "due_Date", "end_Date", "entry_Date",
               "next_Scheduled_Date", "next_Scheduled_Time", "start_Date", "update_Date"]
STRING_LIMITS = {"entry_User": 20, "event_Processor": 256, "event_Type": 32,
                 "priority": 32, "status": 32, "subject": 512, "update_User": 20,
                 "user_ID": 20}
STRING_FIELDS = list(STRING_LIMITS) + ["meta_Data"]
NON_NULLABLE = ["event_ID", "claim_Audit_Event", "process_Automation_Event", "reminder",
                "entry_Date", "update_Date"]
ALL_FIELDS = INT_FIELDS + BOOL_FIELDS + DATE_FIELDS + STRING_FIELDS + ["completion_Percent"]
NULLABLE = [f for f in ALL_FIELDS if f not in NON_NULLABLE]
assert len(set(ALL_FIELDS)) == 25


def column(field):
    """SPEC §8: the column is the JSON name with a capital first letter."""
    return field[0].upper() + field[1:]


def full_event(eid, **over):
    """An Event with all 25 fields given."""
    e = {
        "event_ID": eid, "claim_Audit_Event": True,
        "completion_Date": "2024-01-02T03:04:05.678Z", "completion_Percent": 12.5,
        "due_Date": "2024-01-03", "end_Date": "2024-01-04T05:06",
        "entry_Date": "2024-01-01T00:30:00+01:00", "entry_User": "entry-%d" % (eid % 1000),
        "event_Processor": "processor", "event_Type": "type",
        "meta_Data": "{\"k\": %d}" % eid, "next_Scheduled_Date": "2024-02-01",
        "next_Scheduled_Time": "2024-02-01T12:00:00", "priority": "High",
        "process_Automation_Event": True, "reminder": False,
        "reminder_Event_ID": eid + 1, "reportSeries_Key": -eid, "start_Date": "2023-12-31",
        "status": "Open", "subject": "subject %d" % eid,
        "update_Date": "2024-05-05T05:05:05.5", "update_User": "upd", "userGroup_Key": 7,
        "user_ID": "u%d" % (eid % 1000),
    }
    e.update(over)
    return e


def parse_stamp(text):
    """A stored "YYYY-MM-DD HH:MM:SS.SSS" as an aware UTC datetime."""
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc)


def base_env():
    """What the harness passes to every CGI run besides the request."""
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "ODBCSYSINI", "ODBCINI"):
        if k in os.environ:
            e[k] = os.environ[k]
    return e


def padded(items, size):
    """A JSON array body of exactly size bytes (spaces before the ']')."""
    body = json.dumps(items).encode()
    assert len(body) <= size
    return body[:-1] + b" " * (size - len(body)) + b"]"


class CgiCase(harness.EnvelopeChecks, unittest.TestCase):
    """case(), assert_clean_exit, assert_no_sanitizer, assert_error,
    assert_unavailable and assert_multistatus come from
    harness.EnvelopeChecks."""
    limits = None

    def setUp(self):
        self.sb = harness.Sandbox(limits=self.limits)

    def tearDown(self):
        self.sb.close()

    # --- running the program ------------------------------------------------

    def cgi(self, body, env=None, **over):
        """Run one CGI request (the good request's variables, changed by
        `over`, or exactly `env`); asserts a clean exit."""
        if env is None:
            env = self.sb.headers(**over)
        r, err, rc = self.sb.cgi(body, env=env)
        self.assert_clean_exit(rc, err)
        return r, err

    # --- the database -------------------------------------------------------

    def seed(self):
        """Store event 1 through the program; returns a snapshot of the table."""
        r, _ = self.cgi([harness.event(1, subject="seeded")])
        self.assert_multistatus(r, [(1, 201)])
        return self.sb.rows()

    def row(self, eid):
        rows = self.sb.rows("SELECT * FROM Event WHERE Event_ID = ?", (eid,))
        self.assertEqual(len(rows), 1, "no row for event %r" % eid)
        return rows[0]

    def ids(self):
        return [r["Event_ID"] for r in self.sb.rows("SELECT Event_ID FROM Event ORDER BY Event_ID")]


# A batch that would change the seeded row and add one: "nothing written"
# means the snapshot is unchanged after a refused request.
WOULD_WRITE = [harness.event(1, subject="changed"), harness.event(2)]


class RequestChecksTest(CgiCase):
    """SPEC §4 rows 1, 2, 6, 8-12 and their order; §6 error envelope."""

    def test_path_not_ending_in_events_batch_is_404_and_writes_nothing(self):
        before = self.seed()
        for script, info in (("/api/other", None), ("/api/events-batchx", None),
                             ("/api/xevents-batch", None), ("/api/events-batch/more", None),
                             ("/api", "/events-batch/x"), ("/", None)):
            with self.case(script=script, info=info):
                r, _ = self.cgi(WOULD_WRITE, SCRIPT_NAME=script, PATH_INFO=info)
                self.assert_error(r, 404, instance=script + (info or ""))
        self.assertEqual(self.sb.rows(), before)

    def test_request_path_is_script_name_plus_path_info_under_any_prefix(self):
        cases = [("/events-batch", None), ("/a/b/c/events-batch", None),
                 ("/api/events-batch/", None), ("/api", "/events-batch"),
                 ("", "/x/events-batch"), ("/cgi-bin/eb.cgi", "/events-batch/")]
        for n, (script, info) in enumerate(cases, start=10):
            with self.case(script=script, info=info):
                r, _ = self.cgi([harness.event(n)], SCRIPT_NAME=script, PATH_INFO=info,
                                REQUEST_URI="/elsewhere")
                self.assert_multistatus(r, [(n, 201)])
        self.assertEqual(self.ids(), list(range(10, 10 + len(cases))))

    def test_script_name_and_path_info_win_over_request_uri(self):
        r, _ = self.cgi(WOULD_WRITE, SCRIPT_NAME="/api/other", REQUEST_URI="/api/events-batch")
        self.assert_error(r, 404, instance="/api/other")
        self.assertEqual(self.sb.count(), 0)

    def test_request_uri_without_query_is_the_path_when_cgi_paths_are_empty(self):
        r, _ = self.cgi([harness.event(5)], SCRIPT_NAME="", PATH_INFO=None,
                        REQUEST_URI="/prefix/events-batch?a=1&b=/x")
        self.assert_multistatus(r, [(5, 201)])
        r, _ = self.cgi([harness.event(6)], SCRIPT_NAME=None, PATH_INFO="",
                        REQUEST_URI="/prefix/events-batch/")
        self.assert_multistatus(r, [(6, 201)])
        r, _ = self.cgi([harness.event(7)], SCRIPT_NAME="", PATH_INFO="",
                        REQUEST_URI="/prefix/other?next=/events-batch")
        self.assert_error(r, 404, instance="/prefix/other")
        self.assertEqual(self.ids(), [5, 6])

    def test_method_other_than_put_is_405_with_allow_put(self):
        before = self.seed()
        for method in ("GET", "POST", "DELETE", "PATCH", "HEAD", "put", None):
            with self.case(method=method):
                r, _ = self.cgi(WOULD_WRITE, REQUEST_METHOD=method)
                self.assert_error(r, 405)
                self.assertEqual(r.headers.get("allow"), "PUT")
        self.assertEqual(self.sb.rows(), before)

    def test_wrong_path_is_checked_before_method(self):
        before = self.seed()
        r, _ = self.cgi(WOULD_WRITE, REQUEST_METHOD="GET", SCRIPT_NAME="/api/other")
        self.assert_error(r, 404, instance="/api/other")
        self.assertNotIn("allow", r.headers)
        # and before everything else that is wrong with the request
        r, _ = self.cgi(b"not json", REQUEST_METHOD="POST", SCRIPT_NAME="/nope",
                        HTTP_USER_AGENT=None, HTTP_X_API_KEY=None, HTTP_AUTHORIZATION=None,
                        HTTP_VBASOFTWARE_DATABASE=None, CONTENT_TYPE="text/plain")
        self.assert_error(r, 404, instance="/nope")
        self.assertEqual(self.sb.rows(), before)

    def test_method_is_checked_before_credentials_and_database(self):
        r, _ = self.cgi(WOULD_WRITE, REQUEST_METHOD="GET", HTTP_X_API_KEY="wrong",
                        HTTP_AUTHORIZATION=None, HTTP_VBASOFTWARE_DATABASE="nosuch")
        self.assert_error(r, 405)
        self.assertEqual(r.headers.get("allow"), "PUT")
        self.assertEqual(self.sb.count(), 0)

    def test_missing_or_unknown_database_header_is_400(self):
        before = self.seed()
        for name in (None, "", "nosuch", "TEST", "test ", "../test", "test;drop"):
            with self.case(database=name):
                r, _ = self.cgi(WOULD_WRITE, HTTP_VBASOFTWARE_DATABASE=name)
                self.assert_error(r, 400)
        self.assertEqual(self.sb.rows(), before)

    def test_credentials_are_checked_before_the_database_header(self):
        r, _ = self.cgi(WOULD_WRITE, HTTP_X_API_KEY="wrong", HTTP_VBASOFTWARE_DATABASE="nosuch")
        self.assert_error(r, 401)
        self.assertEqual(self.sb.count(), 0)

    def test_unknown_database_is_checked_before_content_type_and_length(self):
        r, _ = self.cgi(b"xx", HTTP_VBASOFTWARE_DATABASE="nosuch", CONTENT_TYPE="text/plain",
                        CONTENT_LENGTH="2147483648")
        self.assert_error(r, 400)
        self.assertEqual(self.sb.count(), 0)

    def test_json_content_types_are_accepted(self):
        types = ["application/json", "text/json", "application/vnd.foo+json",
                 "application/json; charset=utf-8", "application/json;charset=UTF-8",
                 "APPLICATION/JSON; CHARSET=Utf-8", "Text/JSON; charset=utf-8",
                 "application/problem+json", 'application/json; charset="utf-8"',
                 "application/vnd.api+json; charset=utf-8"]
        for n, ctype in enumerate(types, start=1):
            with self.case(content_type=ctype):
                r, _ = self.cgi([harness.event(n)], CONTENT_TYPE=ctype)
                self.assert_multistatus(r, [(n, 201)])
        self.assertEqual(self.ids(), list(range(1, len(types) + 1)))

    def test_non_json_content_types_are_415(self):
        before = self.seed()
        for ctype in ("text/plain", "application/json; charset=latin-1",
                      "application/json; charset=iso-8859-1", None, "",
                      "application/x-www-form-urlencoded", "application/jsonp",
                      "multipart/form-data", "text/html; charset=utf-8",
                      "application/json-patch", "json"):
            with self.case(content_type=ctype):
                r, _ = self.cgi(WOULD_WRITE, CONTENT_TYPE=ctype)
                self.assert_error(r, 415)
        self.assertEqual(self.sb.rows(), before)

    def test_wrong_content_type_is_checked_before_body_size(self):
        before = self.seed()
        r, _ = self.cgi(b"[]", CONTENT_TYPE="text/plain", CONTENT_LENGTH="2147483648")
        self.assert_error(r, 415)
        r, _ = self.cgi(b"not json", CONTENT_TYPE="text/plain")
        self.assert_error(r, 415)
        self.assertEqual(self.sb.rows(), before)

    def run_with_open_stdin(self, body, **over):
        """Run the CGI with stdin a pipe that stays open: a program that read
        the body would block.  Returns (response, stderr, unread bytes)."""
        before_fd, write_fd = os.pipe()
        try:
            os.write(write_fd, body)
            env = base_env()
            env["EVENTS_BATCH_CONFIG"] = self.sb.conf_path
            env.update(self.sb.headers(**over))
            p = subprocess.run([harness.BINARY], stdin=before_fd, env=env,
                               capture_output=True, timeout=harness.scaled(60))
            os.close(write_fd)
            write_fd = None
            unread = os.read(before_fd, 1 << 16)
        finally:
            os.close(before_fd)
            if write_fd is not None:
                os.close(write_fd)
        err = p.stderr.decode("utf-8", "replace")
        self.assert_clean_exit(p.returncode, err)
        return harness.parse_cgi(p.stdout), err, unread

    def test_content_length_over_max_body_bytes_is_413_without_reading_the_body(self):
        before = self.seed()
        r, _, unread = self.run_with_open_stdin(b"[]", CONTENT_LENGTH="2147483648")
        self.assert_error(r, 413)
        self.assertEqual(unread, b"[]", "the body was read")
        # the size is checked before the body is parsed
        r, _, unread = self.run_with_open_stdin(b"{not json", CONTENT_LENGTH="99999999999")
        self.assert_error(r, 413)
        self.assertEqual(unread, b"{not json")
        self.assertEqual(self.sb.rows(), before)

    def test_body_shorter_than_content_length_is_400(self):
        before = self.seed()
        body = json.dumps(WOULD_WRITE).encode()
        r, _ = self.cgi(body, CONTENT_LENGTH=str(len(body) + 10))
        self.assert_error(r, 400)
        self.assertEqual(self.sb.rows(), before)

    def test_malformed_content_length_is_400(self):
        before = self.seed()
        body = json.dumps(WOULD_WRITE).encode()
        for length in ("abc", "-1", "1e3", "12x", " 5", "+5", "99999999999999999999999x"):
            with self.case(content_length=length):
                r, _ = self.cgi(body, CONTENT_LENGTH=length)
                self.assert_error(r, 400)
        self.assertEqual(self.sb.rows(), before)

    def test_invalid_bodies_are_400_and_write_nothing(self):
        before = self.seed()
        good = json.dumps(WOULD_WRITE).encode()
        bodies = {
            "empty": b"",
            "whitespace only": b"  \n",
            "malformed": b'[{"event_ID": 1,',
            "trailing garbage": good + b" x",
            "two documents": good + good,
            "single quotes": b"[{'event_ID': 1}]",
            "invalid utf-8 byte": good.replace(b"changed", b"ch\xffnged"),
            "overlong utf-8": good.replace(b"changed", b"ch\xc0\xafnged"),
            "utf-8 encoded surrogate": good.replace(b"changed", b"ch\xed\xa0\x80nged"),
            "lone surrogate escape": good.replace(b"changed", b"ch\\ud800nged"),
            "latin-1 text": "[{\"event_ID\": 1, \"subject\": \"caf\xe9\"}]".encode("latin-1"),
            "utf-16": json.dumps(WOULD_WRITE).encode("utf-16"),
            "100000 open brackets": b"[" * 100000,
            "100000 nested arrays": b"[" * 100000 + b"]" * 100000,
            "deep objects": b'[{"a":' * 50000 + b"1" + b"}" * 50000 + b"]",
            "real overflow 1e999": good.replace(b'"changed"', b"1e999"),
            "completion_Percent 1e999": json.dumps([harness.event(1)]).encode()
                .replace(b'"reminder"', b'"completion_Percent": -1e999, "reminder"'),
            "integer beyond int64": good.replace(b'"event_ID": 2', b'"event_ID": 99999999999999999999999'),
            "NaN literal": good.replace(b'"changed"', b"NaN"),
            "object": b'{"event_ID": 1}',
            "empty object": b"{}",
            "string": b'"x"',
            "number": b"42",
            "null": b"null",
            "true": b"true",
            "NUL byte outside strings": good[:-1] + b"\x00]",
        }
        for name, body in bodies.items():
            with self.case(body=name):
                r, _ = self.cgi(body)
                self.assert_error(r, 400)
        self.assertEqual(self.sb.rows(), before)

    def test_empty_array_is_207_with_empty_data(self):
        before = self.seed()
        r, _ = self.cgi(b"[]")
        self.assert_multistatus(r, [])
        self.assertEqual(r.json["data"], [])
        r, _ = self.cgi(b" \n[ ]\n")
        self.assert_multistatus(r, [])
        self.assertEqual(self.sb.rows(), before)

    def test_batch_with_nothing_to_store_touches_no_database(self):
        # an unreachable database: a batch that stores nothing never notices
        self.sb.write_config(databases={"test": "Driver=SQLite3;Database=%s;NoCreat=1"
                                        % os.path.join(self.sb.dir, "missing.db")})
        r, err = self.cgi(b"[]")
        self.assert_multistatus(r, [])
        r, err = self.cgi([{"event_ID": 4}, 7])
        self.assert_multistatus(r, [(4, 400), (None, 400)])
        self.assertNotIn("database", err)
        self.assertFalse(os.path.exists(os.path.join(self.sb.dir, "missing.db")))
        r, _ = self.cgi(WOULD_WRITE)
        self.assert_unavailable(r)

    def test_invalid_body_is_checked_before_the_database_is_reached(self):
        self.sb.write_config(databases={"test": "Driver=SQLite3;Database=%s;NoCreat=1"
                                        % os.path.join(self.sb.dir, "missing.db")})
        r, _ = self.cgi(b"[1,")
        self.assert_error(r, 400)
        self.assertFalse(os.path.exists(os.path.join(self.sb.dir, "missing.db")))

    def test_unreachable_database_is_503_with_retry_after(self):
        before = self.seed()
        sub = os.path.join(self.sb.dir, "sub")
        os.mkdir(sub)
        targets = {"missing file": os.path.join(self.sb.dir, "missing.db"),
                   "missing directory": os.path.join(self.sb.dir, "nodir", "x.db"),
                   "a directory": sub}
        for name, target in targets.items():
            with self.case(database=name):
                self.sb.write_config(databases={
                    "test": "Driver=SQLite3;Database=%s;NoCreat=1" % target})
                r, _ = self.cgi(WOULD_WRITE)
                self.assert_unavailable(r)
        self.assertFalse(os.path.exists(targets["missing file"]))
        self.assertFalse(os.path.exists(os.path.join(self.sb.dir, "nodir")))
        self.assertEqual(os.listdir(sub), [])
        self.assertEqual(self.sb.rows(), before)

    def test_file_that_is_not_a_database_is_503_and_left_unchanged(self):
        junk = os.path.join(self.sb.dir, "junk.db")
        content = b"this is not an SQLite database\n" * 200
        with open(junk, "wb") as f:
            f.write(content)
        self.sb.write_config(databases={"test": "Driver=SQLite3;Database=%s;NoCreat=1" % junk})
        r, _ = self.cgi(WOULD_WRITE)
        self.assert_unavailable(r)
        with open(junk, "rb") as f:
            self.assertEqual(f.read(), content)


    def test_database_without_the_event_table_is_500_and_gets_no_table(self):
        empty = os.path.join(self.sb.dir, "empty.db")
        sqlite3.connect(empty).close()  # a valid SQLite file with no tables
        self.sb.write_config(databases={"test": "Driver=SQLite3;Database=%s;NoCreat=1" % empty})
        r, err = self.cgi(WOULD_WRITE)
        # not the client's fault and not worth a retry: 500, nothing applied
        self.assert_error(r, 500)
        self.assertEqual(r.json["error"]["type"], "urn:events-batch:internal-error")
        self.assertIn("no such table", err)
        con = sqlite3.connect(empty)
        self.assertEqual(con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0], 0)
        con.close()


class LimitsTest(CgiCase):
    """max_batch_items and max_body_bytes from [limits]."""
    limits = {"max_batch_items": 3, "max_body_bytes": 4096}

    def test_more_items_than_max_batch_items_is_413_and_writes_nothing(self):
        before = self.seed()
        r, _ = self.cgi([harness.event(i) for i in range(1, 5)])
        self.assert_error(r, 413)
        # a batch of junk items is still refused as a whole, not item by item
        r, _ = self.cgi([1, 2, "x", None])
        self.assert_error(r, 413)
        self.assertEqual(self.sb.rows(), before)

    def test_exactly_max_batch_items_is_accepted(self):
        r, _ = self.cgi([harness.event(i) for i in range(1, 4)])
        self.assert_multistatus(r, [(1, 201), (2, 201), (3, 201)])
        self.assertEqual(self.ids(), [1, 2, 3])

    def test_too_many_items_is_checked_before_the_database_is_reached(self):
        self.sb.write_config(limits=self.limits, databases={
            "test": "Driver=SQLite3;Database=%s;NoCreat=1" % os.path.join(self.sb.dir, "nope.db")})
        r, _ = self.cgi([harness.event(i) for i in range(1, 5)])
        self.assert_error(r, 413)

    def test_body_of_exactly_max_body_bytes_is_accepted_one_more_is_413(self):
        r, _ = self.cgi(padded([harness.event(1)], 4096))
        self.assert_multistatus(r, [(1, 201)])
        before = self.sb.rows()
        r, _ = self.cgi(padded([harness.event(1, subject="x"), harness.event(2)], 4097))
        self.assert_error(r, 413)
        self.assertEqual(self.sb.rows(), before)


class EventFieldsTest(CgiCase):
    """SPEC §5: types, nulls, limits, dates, and what is stored (§8)."""

    def test_every_field_is_stored_with_its_type(self):
        e = full_event(42, meta_Data="{\"a\": [1, 2]} 'quoted' ; DROP TABLE Event; --",
                       subject="Ünïcödé ✓ 😀", completion_Percent=-0.125)
        r, _ = self.cgi([e])
        self.assert_multistatus(r, [(42, 201)])
        self.assertEqual(self.row(42), {
            "Event_ID": 42, "Claim_Audit_Event": 1,
            "Completion_Date": "2024-01-02 03:04:05.678", "Completion_Percent": -0.125,
            "Due_Date": "2024-01-03 00:00:00.000", "End_Date": "2024-01-04 05:06:00.000",
            "Entry_Date": "2023-12-31 23:30:00.000", "Entry_User": "entry-42",
            "Event_Processor": "processor", "Event_Type": "type",
            "Meta_Data": "{\"a\": [1, 2]} 'quoted' ; DROP TABLE Event; --",
            "Next_Scheduled_Date": "2024-02-01 00:00:00.000",
            "Next_Scheduled_Time": "2024-02-01 12:00:00.000", "Priority": "High",
            "Process_Automation_Event": 1, "Reminder": 0, "Reminder_Event_ID": 43,
            "ReportSeries_Key": -42, "Start_Date": "2023-12-31 00:00:00.000",
            "Status": "Open", "Subject": "Ünïcödé ✓ 😀",
            "Update_Date": "2024-05-05 05:05:05.500", "Update_User": "upd",
            "UserGroup_Key": 7, "User_ID": "u42"})
        # stored with the SQL types a reader expects
        types = self.sb.rows("SELECT typeof(Event_ID) AS id, typeof(Claim_Audit_Event) AS b, "
                             "typeof(Completion_Percent) AS d, typeof(Due_Date) AS t, "
                             "typeof(UserGroup_Key) AS i, typeof(Subject) AS s FROM Event")[0]
        self.assertEqual(types, {"id": "integer", "b": "integer", "d": "real", "t": "text",
                                 "i": "integer", "s": "text"})

    def test_stored_date_times_are_readable_by_sqlite_date_functions(self):
        r, _ = self.cgi([full_event(1)])
        self.assert_multistatus(r, [(1, 201)])
        got = self.sb.rows("SELECT strftime('%Y-%m-%dT%H:%M:%f', Completion_Date) AS c, "
                           "julianday(Update_Date) - julianday(Entry_Date) AS days FROM Event")[0]
        self.assertEqual(got["c"], "2024-01-02T03:04:05.678")
        self.assertAlmostEqual(got["days"], 125.0 + (5 * 3600 + 35 * 60 + 5.5) / 86400, places=6)

    def test_type_violations_are_per_item_400_naming_the_field(self):
        bad = []
        for f in INT_FIELDS:
            bad += [(f, v) for v in ("5", 1.5, 2147483648, -2147483649, 4294967296,
                                     True, [1], {"a": 1}, "")]
        for f in BOOL_FIELDS:
            bad += [(f, v) for v in (1, 0, "true", "false", "", [], {}, 1.0)]
        bad += [("completion_Percent", v) for v in ("50", "1e3", True, False, [], {}, "")]
        for f in STRING_FIELDS:
            bad += [(f, v) for v in (5, 0, True, 1.5, [], ["a"], {"a": "b"})]
        for f in DATE_FIELDS:
            bad += [(f, v) for v in (20240301, 1709251200, True, [], {}, "2024-02-30", "")]
        bad += [("due_Date", v) for v in (
            "2023-02-29", "1900-02-29", "2024-04-31", "2024-13-01", "2024-00-10", "2024-01-00",
            "2024-01-32", "2024-03-01T24:00", "2024-03-01T10:60",
            "2024-03-01T10:20:61", "2024-03-01T10", "2024-03-01T10:2", "2024-03-01T1:20",
            "2024-03-01T10:20:30.", "2024-03-01T10:20:30+0200", "2024-03-01T10:20:30+02",
            "2024-03-01T10:20:30+2:00", "2024-03-01 10:20", "2024-3-1", "24-03-01",
            "20240301", "2024/03/01", "2024-03-01T10:20:30ZZ", "2024-03-01T10:20Zjunk",
            "2024-03-01T", "2024-03-01Z", "2024-03-01T10:20:30 ", " 2024-03-01",
            "2024-03-01\u0000", "tomorrow", "2024-03-01T10:20:30.5.5", "2024-03-01T10:20:30+25:00",
            "2024-03-01T10:20:30-02:60")]
        items, expected = [], []
        for n, (field, value) in enumerate(bad, start=1000):
            item = harness.event(n)
            item[field] = value
            items.append(item)
            expected.append((None if field == "event_ID" else n, 400, field))
        items.append(harness.event(1))
        r, _ = self.cgi(items)
        data = self.assert_multistatus(r, [(eid, st) for eid, st, _ in expected] + [(1, 201)])
        for entry, (eid, _, field), (_, value) in zip(data, expected, bad):
            with self.case(field=field, value=value):
                self.assertTrue(entry["body"].startswith(field + ": "), entry)
                self.assertGreater(len(entry["body"]), len(field) + 2)
        self.assertEqual(self.ids(), [1])

    def test_required_fields_missing_or_null_are_per_item_400(self):
        items, expected = [], []
        for n, field in enumerate(["event_ID"] + BOOL_FIELDS, start=10):
            item = harness.event(n)
            del item[field]
            items.append(item)
            expected.append((None if field == "event_ID" else n, field + ": required"))
        for n, field in enumerate(NON_NULLABLE, start=20):
            item = harness.event(n)
            item[field] = None
            items.append(item)
            expected.append((None if field == "event_ID" else n, None))
        items.append(harness.event(1))
        r, _ = self.cgi(items)
        data = self.assert_multistatus(r, [(eid, 400) for eid, _ in expected] + [(1, 201)])
        for entry, item, (_, body) in zip(data, items, expected):
            with self.case(item=item):
                if body is not None:
                    self.assertEqual(entry["body"], body)
                else:
                    field = [f for f in NON_NULLABLE if f in item and item[f] is None][0]
                    self.assertTrue(entry["body"].startswith(field + ": "), entry)
        self.assertEqual(self.ids(), [1])

    def test_int32_bounds_are_accepted_and_stored(self):
        items = []
        for n, value in enumerate((-2147483648, 2147483647, 0, -1), start=1):
            items.append(harness.event(n, reminder_Event_ID=value, reportSeries_Key=value,
                                       userGroup_Key=value))
        items += [harness.event(-2147483648), harness.event(2147483647), harness.event(0)]
        r, _ = self.cgi(items)
        self.assert_multistatus(r, [(1, 201), (2, 201), (3, 201), (4, 201),
                                    (-2147483648, 201), (2147483647, 201), (0, 201)])
        for n, value in enumerate((-2147483648, 2147483647, 0, -1), start=1):
            row = self.row(n)
            self.assertEqual((row["Reminder_Event_ID"], row["ReportSeries_Key"],
                              row["UserGroup_Key"]), (value, value, value))
        self.assertEqual(self.ids(), [-2147483648, 0, 1, 2, 3, 4, 2147483647])

    def test_booleans_are_stored_as_0_and_1(self):
        r, _ = self.cgi([harness.event(1, claim_Audit_Event=True, process_Automation_Event=False,
                                       reminder=True),
                         harness.event(2, claim_Audit_Event=False, process_Automation_Event=True,
                                       reminder=False)])
        self.assert_multistatus(r, [(1, 201), (2, 201)])
        got = [(x["Claim_Audit_Event"], x["Process_Automation_Event"], x["Reminder"])
               for x in self.sb.rows()]
        self.assertEqual(got, [(1, 0, 1), (0, 1, 0)])

    def test_completion_percent_takes_any_finite_number(self):
        values = [0, 50, -1.5, 99.99, 1e308, -1e308, 5e-324, 2 ** 53, 12345678901234567]
        r, _ = self.cgi([harness.event(n, completion_Percent=v) for n, v in enumerate(values, 1)])
        self.assert_multistatus(r, [(n, 201) for n in range(1, len(values) + 1)])
        stored = [x["Completion_Percent"] for x in self.sb.rows()]
        self.assertEqual(stored, [float(v) for v in values])

    def test_string_limits_count_characters_not_bytes(self):
        items, expected = [], []
        n = 1
        for field, limit in STRING_LIMITS.items():
            for ch in ("é", "😀", "a"):
                items.append(harness.event(n, **{field: ch * limit}))
                expected.append((n, 201, field, ch * limit))
                n += 1
            for ch in ("é", "a"):
                items.append(harness.event(n, **{field: ch * (limit + 1)}))
                expected.append((n, 400, field, "%s: longer than %d characters" % (field, limit)))
                n += 1
        r, _ = self.cgi(items)
        data = self.assert_multistatus(r, [(eid, st) for eid, st, _, _ in expected])
        for entry, (eid, status, field, what) in zip(data, expected):
            with self.case(id=eid, field=field):
                if status == 201:
                    self.assertEqual(self.row(eid)[column(field)], what)
                else:
                    self.assertEqual(entry["body"], what)
        self.assertEqual(self.ids(), [eid for eid, st, _, _ in expected if st == 201])

    def test_entry_user_of_21_multibyte_characters_is_refused_by_name(self):
        r, _ = self.cgi([harness.event(1, entry_User="é" * 20), harness.event(2, entry_User="é" * 21)])
        data = self.assert_multistatus(r, [(1, 201), (2, 400)])
        self.assertEqual(data[1]["body"], "entry_User: longer than 20 characters")
        self.assertEqual(self.row(1)["Entry_User"], "é" * 20)
        self.assertEqual(self.ids(), [1])

    def test_meta_data_and_empty_strings_are_stored_exactly(self):
        big = "ü" * 100000 + "\n\t\"\\ end"
        r, _ = self.cgi([harness.event(1, meta_Data=big, subject="", status="",
                                       user_ID=" padded ")])
        self.assert_multistatus(r, [(1, 201)])
        row = self.row(1)
        self.assertEqual(row["Meta_Data"], big)
        self.assertEqual(row["Subject"], "")
        self.assertEqual(row["Status"], "")
        self.assertEqual(row["User_ID"], " padded ")

    def test_nul_character_in_a_string_is_a_per_item_400_naming_the_field(self):
        body = json.dumps([harness.event(1, subject="a\u0000b"), harness.event(2),
                           harness.event(3, meta_Data="x\u0000"),
                           harness.event(4, entry_User="\u0000")]).encode()
        self.assertIn(b"\\u0000", body)
        r, _ = self.cgi(body)
        data = self.assert_multistatus(r, [(1, 400), (2, 201), (3, 400), (4, 400)])
        self.assertTrue(data[0]["body"].startswith("subject: "), data[0])
        self.assertTrue(data[2]["body"].startswith("meta_Data: "), data[2])
        self.assertTrue(data[3]["body"].startswith("entry_User: "), data[3])
        self.assertEqual(self.ids(), [2])

    def test_date_time_forms_are_stored_as_utc_milliseconds(self):
        cases = [
            ("2024-03-01", "2024-03-01 00:00:00.000"),
            ("2024-03-01T10:20", "2024-03-01 10:20:00.000"),
            ("2024-03-01T10:20:30", "2024-03-01 10:20:30.000"),
            ("2024-03-01T10:20:30.5", "2024-03-01 10:20:30.500"),
            ("2024-03-01T10:20:30.12", "2024-03-01 10:20:30.120"),
            ("2024-03-01T10:20:30.123456789", "2024-03-01 10:20:30.123"),
            ("2024-03-01T10:20:30.9999", "2024-03-01 10:20:30.999"),
            ("2024-03-01T23:59:59.999999Z", "2024-03-01 23:59:59.999"),
            ("2024-03-01T10:20Z", "2024-03-01 10:20:00.000"),
            ("2024-03-01T10:20:30Z", "2024-03-01 10:20:30.000"),
            ("2024-03-01T10:20:30+00:00", "2024-03-01 10:20:30.000"),
            ("2024-03-01T10:20:30-00:00", "2024-03-01 10:20:30.000"),
            ("2024-03-01T01:30:00+02:00", "2024-02-29 23:30:00.000"),
            ("2024-03-01T01:30+02:00", "2024-02-29 23:30:00.000"),
            ("2023-03-01T01:30:00+02:00", "2023-02-28 23:30:00.000"),
            ("2024-12-31T23:30:00-01:00", "2025-01-01 00:30:00.000"),
            ("2024-03-01T10:20:30.123+05:30", "2024-03-01 04:50:30.123"),
            ("2024-03-01T00:00:00.250-09:45", "2024-03-01 09:45:00.250"),
            ("2024-02-29", "2024-02-29 00:00:00.000"),
            ("2000-02-29T12:00", "2000-02-29 12:00:00.000"),
            ("1970-01-01T00:00:00Z", "1970-01-01 00:00:00.000"),
            ("1969-12-31T23:59:59.999Z", "1969-12-31 23:59:59.999"),
            ("0001-01-01", "0001-01-01 00:00:00.000"),
            ("9999-12-31T23:59:59.999", "9999-12-31 23:59:59.999"),
        ]
        r, _ = self.cgi([harness.event(n, due_Date=text) for n, (text, _) in enumerate(cases, 1)])
        self.assert_multistatus(r, [(n, 201) for n in range(1, len(cases) + 1)])
        for n, (text, stored) in enumerate(cases, 1):
            with self.case(date=text):
                self.assertEqual(self.row(n)["Due_Date"], stored)

    def test_every_date_field_converts_offsets_to_utc(self):
        item = harness.event(1, **{f: "2024-03-01T01:30:00+02:00" for f in DATE_FIELDS})
        r, _ = self.cgi([item])
        self.assert_multistatus(r, [(1, 201)])
        row = self.row(1)
        for f in DATE_FIELDS:
            with self.case(field=f):
                self.assertEqual(row[column(f)], "2024-02-29 23:30:00.000")

    def test_nullable_fields_accept_null(self):
        r, _ = self.cgi([full_event(1)])
        self.assert_multistatus(r, [(1, 201)])
        r, _ = self.cgi([harness.event(1, **{f: None for f in NULLABLE})])
        self.assert_multistatus(r, [(1, 200)])
        row = self.row(1)
        for f in NULLABLE:
            with self.case(field=f):
                self.assertIsNone(row[column(f)])

    def test_unknown_fields_are_ignored(self):
        item = harness.event(1, subject="kept", unknown=1, nested={"event_ID": 99},
                             extra=[1, "x", None], Event_Id_Extra="5", **{"": "empty key"})
        r, _ = self.cgi([item])
        self.assert_multistatus(r, [(1, 201)])
        self.assertEqual(self.ids(), [1])
        self.assertEqual(self.row(1)["Subject"], "kept")


class ReplaceSemanticsTest(CgiCase):
    """SPEC §5: PUT replaces the row, except the entry_/update_ rules."""

    def now(self):
        return datetime.datetime.now(datetime.timezone.utc)

    def assert_recent(self, stamp):
        self.assertRegex(stamp, STAMP_RE)
        delta = abs((parse_stamp(stamp) - self.now()).total_seconds())
        self.assertLess(delta, 60, "%s is not UTC now (%s)" % (stamp, self.now()))

    def test_absent_nullable_fields_become_null_on_update(self):
        r, _ = self.cgi([full_event(1)])
        self.assert_multistatus(r, [(1, 201)])
        first = self.row(1)
        r, _ = self.cgi([harness.event(1)])
        self.assert_multistatus(r, [(1, 200)])
        row = self.row(1)
        for f in NULLABLE:
            if f in ("entry_User", "update_User"):
                continue
            with self.case(field=f):
                self.assertIsNone(row[column(f)])
        self.assertEqual((row["Claim_Audit_Event"], row["Process_Automation_Event"],
                          row["Reminder"]), (0, 0, 0))
        # entry_* kept, update_* defaulted
        self.assertEqual(row["Entry_Date"], first["Entry_Date"])
        self.assertEqual(row["Entry_User"], first["Entry_User"])
        self.assertEqual(row["Update_User"], harness.USER)
        self.assert_recent(row["Update_Date"])

    def test_entry_date_and_user_are_replaced_when_given_on_update(self):
        r, _ = self.cgi([harness.event(1, entry_Date="2020-01-01", entry_User="first")])
        self.assert_multistatus(r, [(1, 201)])
        r, _ = self.cgi([harness.event(1, entry_Date="2021-06-07T08:09:10Z", entry_User="second")])
        self.assert_multistatus(r, [(1, 200)])
        row = self.row(1)
        self.assertEqual((row["Entry_Date"], row["Entry_User"]),
                         ("2021-06-07 08:09:10.000", "second"))
        # one given, the other kept
        r, _ = self.cgi([harness.event(1, entry_User="third")])
        self.assert_multistatus(r, [(1, 200)])
        row = self.row(1)
        self.assertEqual((row["Entry_Date"], row["Entry_User"]),
                         ("2021-06-07 08:09:10.000", "third"))
        r, _ = self.cgi([harness.event(1, entry_Date="2022-02-02")])
        self.assert_multistatus(r, [(1, 200)])
        row = self.row(1)
        self.assertEqual((row["Entry_Date"], row["Entry_User"]),
                         ("2022-02-02 00:00:00.000", "third"))

    def test_entry_and_update_fields_default_to_now_and_the_token_user_on_create(self):
        r, _ = self.cgi([harness.event(1)])
        self.assert_multistatus(r, [(1, 201)])
        row = self.row(1)
        self.assertEqual(row["Entry_User"], harness.USER)
        self.assertEqual(row["Update_User"], harness.USER)
        self.assert_recent(row["Entry_Date"])
        self.assert_recent(row["Update_Date"])

    def test_update_date_and_user_default_again_on_each_update(self):
        r, _ = self.cgi([harness.event(1, update_Date="2020-01-01", update_User="bob")])
        self.assert_multistatus(r, [(1, 201)])
        row = self.row(1)
        self.assertEqual((row["Update_Date"], row["Update_User"]), ("2020-01-01 00:00:00.000", "bob"))
        r, _ = self.cgi([harness.event(1)])
        self.assert_multistatus(r, [(1, 200)])
        row = self.row(1)
        self.assertEqual(row["Update_User"], harness.USER)
        self.assert_recent(row["Update_Date"])

    def test_the_user_comes_from_the_token(self):
        token = self.sb.token({"sub": "alice"})
        r, _ = self.cgi([harness.event(1)], HTTP_AUTHORIZATION="Bearer " + token)
        self.assert_multistatus(r, [(1, 201)])
        row = self.row(1)
        self.assertEqual((row["Entry_User"], row["Update_User"]), ("alice", "alice"))
        r, _ = self.cgi([harness.event(1)])
        self.assert_multistatus(r, [(1, 200)])
        row = self.row(1)
        self.assertEqual((row["Entry_User"], row["Update_User"]), ("alice", harness.USER))

    def test_explicit_null_user_fields_store_null(self):
        r, _ = self.cgi([harness.event(1, entry_User=None, update_User=None)])
        self.assert_multistatus(r, [(1, 201)])
        row = self.row(1)
        self.assertEqual((row["Entry_User"], row["Update_User"]), (None, None))
        r, _ = self.cgi([harness.event(2, entry_User="someone")])
        self.assert_multistatus(r, [(2, 201)])
        r, _ = self.cgi([harness.event(2, entry_User=None)])
        self.assert_multistatus(r, [(2, 200)])
        self.assertIsNone(self.row(2)["Entry_User"])
        # absent afterwards: the NULL is kept, not replaced by the token's user
        r, _ = self.cgi([harness.event(2)])
        self.assert_multistatus(r, [(2, 200)])
        self.assertIsNone(self.row(2)["Entry_User"])

    def test_now_is_utc_whatever_the_process_time_zone(self):
        for n, tz in enumerate(("America/New_York", "Asia/Kolkata", "Pacific/Chatham",
                                "EST5EDT", "UTC-14"), start=1):
            with self.case(TZ=tz):
                r, _ = self.cgi([harness.event(n)], TZ=tz)
                self.assert_multistatus(r, [(n, 201)])
                row = self.row(n)
                self.assert_recent(row["Entry_Date"])
                self.assert_recent(row["Update_Date"])
                # a given date without offset is UTC too, not local time
                r, _ = self.cgi([harness.event(n, due_Date="2024-07-01T12:00")], TZ=tz)
                self.assert_multistatus(r, [(n, 200)])
                self.assertEqual(self.row(n)["Due_Date"], "2024-07-01 12:00:00.000")


class BatchTest(CgiCase):
    """Per-item outcomes and the 207 envelope (SPEC §5, §6)."""

    def test_invalid_item_gets_400_and_the_others_are_stored(self):
        self.cgi([harness.event(2, subject="before")])
        before = self.row(2)
        items = [harness.event(1, subject="one"), harness.event(2, subject=5),
                 harness.event(3, subject="three"), harness.event(4, reminder=1)]
        r, _ = self.cgi(items)
        data = self.assert_multistatus(r, [(1, 201), (2, 400), (3, 201), (4, 400)])
        self.assertTrue(data[1]["body"].startswith("subject: "))
        self.assertTrue(data[3]["body"].startswith("reminder: "))
        self.assertEqual(self.ids(), [1, 2, 3])
        self.assertEqual(self.row(2), before)
        self.assertEqual(self.row(1)["Subject"], "one")
        self.assertEqual(self.row(3)["Subject"], "three")

    def test_id_value_is_null_when_event_id_is_missing_or_invalid(self):
        items = [{"claim_Audit_Event": False, "process_Automation_Event": False, "reminder": False},
                 harness.event("5"), harness.event(1.5), harness.event(2147483648),
                 harness.event(None), harness.event(True), harness.event(7, claim_Audit_Event="x")]
        r, _ = self.cgi(items)
        data = self.assert_multistatus(r, [(None, 400)] * 6 + [(7, 400)])
        self.assertEqual(data[0]["body"], "event_ID: required")
        for entry in data[1:6]:
            self.assertTrue(entry["body"].startswith("event_ID: "), entry)
        self.assertTrue(data[6]["body"].startswith("claim_Audit_Event: "), data[6])
        self.assertEqual(self.sb.count(), 0)

    def test_every_broken_rule_of_an_item_is_named(self):
        r, _ = self.cgi([harness.event(1, subject=5, due_Date="2024-02-30", reminder=None)])
        data = self.assert_multistatus(r, [(1, 400)])
        for field in ("subject", "due_Date", "reminder"):
            self.assertIn(field + ": ", data[0]["body"])
        self.assertEqual(self.sb.count(), 0)

    def test_item_that_is_not_an_object_gets_400(self):
        r, _ = self.cgi([1, "x", None, [], [harness.event(9)], True, harness.event(2)])
        data = self.assert_multistatus(r, [(None, 400)] * 6 + [(2, 201)])
        for entry in data[:6]:
            self.assertTrue(entry["body"], entry)
        self.assertEqual(self.ids(), [2])

    def test_same_new_id_twice_is_201_then_200_and_the_later_wins(self):
        r, _ = self.cgi([harness.event(5, subject="first", priority="low"),
                         harness.event(5, subject="second")])
        self.assert_multistatus(r, [(5, 201), (5, 200)])
        row = self.row(5)
        self.assertEqual((row["Subject"], row["Priority"]), ("second", None))
        r, _ = self.cgi([harness.event(5, subject="third"), harness.event(6),
                         harness.event(5, subject="fourth"), harness.event(6, subject="six")])
        self.assert_multistatus(r, [(5, 200), (6, 201), (5, 200), (6, 200)])
        self.assertEqual(self.row(5)["Subject"], "fourth")
        self.assertEqual(self.row(6)["Subject"], "six")
        self.assertEqual(self.ids(), [5, 6])

    def test_invalid_repeat_of_an_id_does_not_undo_the_valid_one(self):
        r, _ = self.cgi([harness.event(8, subject="valid"), harness.event(8, subject=["bad"]),
                         harness.event(9, subject=1), harness.event(9, subject="later")])
        self.assert_multistatus(r, [(8, 201), (8, 400), (9, 400), (9, 201)])
        self.assertEqual(self.row(8)["Subject"], "valid")
        self.assertEqual(self.row(9)["Subject"], "later")

    def test_envelope_lists_results_in_input_order(self):
        self.cgi([harness.event(20)])
        items = [harness.event(30), harness.event(20), harness.event(10), harness.event(-5)]
        r, _ = self.cgi(items)
        self.assertEqual(r.headers.get("content-type"), harness.JSON_TYPE)
        j = r.json
        self.assertEqual(set(j), {"data", "error", "debug"})
        self.assertIsNone(j["error"])
        self.assertRegex(j["debug"]["activityID"], harness.UUID_RE)
        self.assertEqual(j["data"], [
            {"id": [{"key": "event_ID", "value": 30}], "status": 201, "body": "Created"},
            {"id": [{"key": "event_ID", "value": 20}], "status": 200, "body": "Updated"},
            {"id": [{"key": "event_ID", "value": 10}], "status": 201, "body": "Created"},
            {"id": [{"key": "event_ID", "value": -5}], "status": 201, "body": "Created"}])
        self.assertEqual(int(r.headers["content-length"]), len(r.raw))
        self.assertEqual(self.ids(), [-5, 10, 20, 30])

    def test_activity_id_is_a_fresh_uuid_for_every_request(self):
        seen = set()
        for body in ([harness.event(1)], [harness.event(1)], b"[]", b"{bad"):
            r, _ = self.cgi(body)
            aid = r.json["debug"]["activityID"]
            self.assertRegex(aid, harness.UUID_RE)
            self.assertNotIn(aid, seen)
            seen.add(aid)
        r, _ = self.cgi(b"[]", REQUEST_METHOD="GET")
        self.assertNotIn(r.json["debug"]["activityID"], seen)


class RobustnessTest(CgiCase):
    """Hostile input: answered, never crashes, writes nothing it should not."""

    def assert_refused_then_served(self, status, body=None, instance=None, **over):
        """One hostile request (the good request's variables changed by
        over): refused with status and the §6 envelope, the database as it
        was, and a good request right after it is stored.  Returns the
        refusal's (Response, stderr)."""
        if self.sb.count() == 0:
            self.seed()
        before = self.sb.rows()
        r, err = self.cgi(WOULD_WRITE if body is None else body, **over)
        self.assert_error(r, status, instance)
        self.assertEqual(self.sb.rows(), before, "a refused request changed the database")
        eid = 100 + len(before)
        good, _ = self.cgi([harness.event(eid)])
        self.assert_multistatus(good, [(eid, 201)])
        return r, err

    def test_content_length_of_any_number_of_digits_over_the_limit_is_413(self):
        # a number too large for 64 bits is still a number, and over max_body_bytes
        for length in (str(2 ** 50 + 1), str(2 ** 64), "9" * 30, "1" + "0" * 400):
            with self.case(content_length=length[:40]):
                r, _ = self.assert_refused_then_served(413, CONTENT_LENGTH=length)
                self.assertIn("exceeds the limit of 16777216 bytes", r.json["error"]["detail"])

    def logged_status(self, err):
        """The status in the request's log line."""
        m = re.search(r"(?m) method=\S* .* status=(\d+) ", err)
        self.assertIsNotNone(m, err)
        return int(m.group(1))

    def test_path_over_2048_bytes_is_414_though_its_first_2047_end_in_events_batch(self):
        attack = "/" + "a" * 2033 + "/events-batch/../../admin"
        self.assertTrue(attack[:2047].endswith("/events-batch"))
        shown = attack[:2048]
        for where, over in (("SCRIPT_NAME", {"SCRIPT_NAME": attack}),
                            ("SCRIPT_NAME + PATH_INFO",
                             {"SCRIPT_NAME": attack[:1000], "PATH_INFO": attack[1000:]}),
                            ("REQUEST_URI", {"SCRIPT_NAME": "", "REQUEST_URI": attack + "?q=1"})):
            with self.case(where=where):
                r, err = self.assert_refused_then_served(414, instance=shown, **over)
                self.assertEqual(r.json["error"]["type"], "urn:events-batch:uri-too-long")
                self.assertEqual(self.logged_status(err), 414)

    def test_path_of_2048_bytes_is_served_and_of_2049_is_414(self):
        def path(n):
            return "/" + "p" * (n - 1 - len("/events-batch")) + "/events-batch"
        self.assertEqual(len(path(2048)), 2048)
        r, _ = self.cgi([harness.event(7)], SCRIPT_NAME=path(2048))
        self.assert_multistatus(r, [(7, 201)])
        # the query is not part of the path
        r, _ = self.cgi([harness.event(7)], SCRIPT_NAME="", REQUEST_URI=path(2048) + "?" + "q" * 5000)
        self.assert_multistatus(r, [(7, 200)])
        self.assert_refused_then_served(414, instance=path(2049)[:2048], SCRIPT_NAME=path(2049))

    def test_path_bytes_that_are_not_utf8_keep_the_status_of_the_failing_check(self):
        # instance shows each ill-formed part as U+FFFD, as Python's "replace" does
        for raw, over, status in (
                (b"/\xff/events-batch", {"REQUEST_METHOD": "GET"}, 405),
                (b"/\xc0\xaf/events-batch", {"REQUEST_METHOD": "DELETE"}, 405),
                (b"/\xe0\x80\xaf/events-batch", {"HTTP_X_API_KEY": "wrong-key"}, 401),
                (b"/\xed\xa0\x80/events-batch", {"HTTP_USER_AGENT": ""}, 403),
                (b"/\xf4\x90\x80\x80/events-batch", {"HTTP_VBASOFTWARE_DATABASE": "nope"}, 400),
                (b"/\xe2\x82/events-batch", {"CONTENT_TYPE": "text/plain"}, 415),
                (b"/x/\xe2\x82", {}, 404),
                (b"/\xff\xfe" * 700 + b"/events-batch", {}, 414)):
            path = raw.decode("utf-8", "surrogateescape")
            shown = raw[:2048].decode("utf-8", "replace")
            with self.case(path=raw[:40]):
                self.assertIn("\ufffd", shown)
                r, err = self.assert_refused_then_served(status, instance=shown, SCRIPT_NAME=path,
                                                         **over)
                self.assertEqual(self.logged_status(err), status)
                if status == 405:
                    self.assertEqual(r.headers.get("allow"), "PUT")
                if status == 401:
                    self.assertEqual(r.headers.get("www-authenticate"),
                                     'Bearer realm="events-batch"')

    def test_a_good_put_under_a_prefix_that_is_not_utf8_is_served(self):
        # only the suffix is judged: such a prefix is the web server's business
        path = b"/\xff\xc0\xaf/events-batch".decode("utf-8", "surrogateescape")
        r, _ = self.cgi([harness.event(3)], SCRIPT_NAME=path)
        self.assert_multistatus(r, [(3, 201)])
        self.assertEqual(self.ids(), [3])

    def test_tokens_with_crit_a_nul_in_the_payload_or_too_long_a_life_are_401(self):
        (_, good), *flawed = self.sb.flawed_tokens()
        # the reference: a token made the same way, without the flaw
        r, _ = self.cgi([harness.event(50)], HTTP_AUTHORIZATION="Bearer " + good)
        self.assert_multistatus(r, [(50, 201)])
        for name, token in flawed:
            with self.case(token=name):
                r, _ = self.assert_refused_then_served(401, HTTP_AUTHORIZATION="Bearer " + token)
                self.assertEqual(r.json["error"]["type"], "urn:events-batch:invalid-token")
                self.assertEqual(r.headers.get("www-authenticate"),
                                 'Bearer realm="events-batch", error="invalid_token"')

    def test_nesting_one_level_past_jansson_limit_is_400_for_the_whole_body(self):
        # an element alone is 2048 deep, which Jansson takes; inside the
        # body's array it is 2049: the whole body is refused, no item-level 400
        for name, body in (("arrays", b"[" + b"[" * 2048 + b"]" * 2048 + b"]"),
                           ("a scalar", b"[" + b"[" * 2047 + b"1" + b"]" * 2047 + b"]"),
                           ("after an item", b"[" + json.dumps(harness.event(5)).encode() +
                            b"," + b'{"a":' * 2048 + b"1" + b"}" * 2048 + b"]")):
            with self.case(body=name):
                r, _ = self.assert_refused_then_served(400, body=body)
                self.assertIn("maximum parsing depth reached", r.json["error"]["detail"])
        # one level less is a batch: its items answered one by one
        r, _ = self.cgi(b"[" + b"[" * 2047 + b"]" * 2047 + b"," +
                        json.dumps(harness.event(6)).encode() + b"]")
        self.assert_multistatus(r, [(None, 400), (6, 201)])

    def test_large_array_of_junk_items_is_answered_item_by_item(self):
        items = [None, 0, "", [], {}, {"event_ID": 1}] * 200
        r, _ = self.cgi(items)
        self.assert_multistatus(r, [((1 if i % 6 == 5 else None), 400)
                                    for i in range(len(items))])
        self.assertEqual(self.sb.count(), 0)

    def test_huge_string_values_are_refused_by_rule_without_crashing(self):
        r, _ = self.cgi([harness.event(1, subject="x" * 1000000, entry_Date="2" * 100000,
                                       event_ID=1)])
        data = self.assert_multistatus(r, [(1, 400)])
        self.assertIn("subject: longer than 512 characters", data[0]["body"])
        self.assertIn("entry_Date: ", data[0]["body"])
        self.assertEqual(self.sb.count(), 0)

    def test_many_broken_fields_in_one_item_give_a_bounded_body(self):
        item = {f: {"bad": True} for f in ALL_FIELDS}
        item.update({"x%d" % i: i for i in range(1000)})
        r, _ = self.cgi([item] * 50)
        data = self.assert_multistatus(r, [(None, 400)] * 50)
        self.assertTrue(data[0]["body"].startswith("event_ID: "))
        self.assertEqual(self.sb.count(), 0)


class LogTest(CgiCase):
    """SPEC §2: one log line per request on stderr, no secrets."""

    def request_lines(self, err, activity):
        return [line for line in err.splitlines()
                if "activity=%s" % activity in line and "method=" in line]

    def test_one_log_line_with_activity_method_database_counts_status_and_duration(self):
        self.cgi([harness.event(2)])
        r, err = self.cgi([harness.event(1), harness.event(2), harness.event(3, subject=5)])
        self.assert_multistatus(r, [(1, 201), (2, 200), (3, 400)])
        aid = r.json["debug"]["activityID"]
        lines = self.request_lines(err, aid)
        self.assertEqual(len(lines), 1, err)
        line = lines[0]
        for token in ("method=PUT", "db=test", "created=1", "updated=1", "failed=1",
                      "status=207"):
            self.assertRegex(line, r"(^|\s)%s(\s|$)" % re.escape(token), line)
        self.assertRegex(line, r"(^|\s)duration_ms=\d+(\.\d+)?(\s|$)")
        # no line of this run names another activity
        for other in re.findall(r"activity=(\S+)", err):
            self.assertEqual(other, aid)

    def test_refused_request_is_logged_with_its_status(self):
        r, err = self.cgi(b"[", CONTENT_TYPE="application/json")
        self.assert_error(r, 400)
        lines = self.request_lines(err, r.json["debug"]["activityID"])
        self.assertEqual(len(lines), 1, err)
        self.assertRegex(lines[0], r"(^|\s)status=400(\s|$)")
        self.assertRegex(lines[0], r"(^|\s)method=PUT(\s|$)")
        self.assertRegex(lines[0], r"(^|\s)created=0(\s|$)")
        r, err = self.cgi(b"[]", REQUEST_METHOD="DELETE")
        lines = self.request_lines(err, r.json["debug"]["activityID"])
        self.assertEqual(len(lines), 1, err)
        self.assertRegex(lines[0], r"(^|\s)status=405(\s|$)")
        self.assertRegex(lines[0], r"(^|\s)method=DELETE(\s|$)")

    def test_api_key_token_secret_and_database_path_never_appear_in_the_log(self):
        with open(self.sb.key_path) as f:
            secret = f.read().strip()
        token = self.sb.token()
        missing = os.path.join(self.sb.dir, "gone", "missing.db")
        runs = []
        env = self.sb.headers(HTTP_AUTHORIZATION="Bearer " + token)
        runs.append(self.cgi([harness.event(1)], env=env))
        runs.append(self.cgi(b"[1,", env=env))
        runs.append(self.cgi([harness.event(1)], env=dict(env, REQUEST_METHOD="GET")))
        wrong_key = "wrong-key-" + harness.API_KEY
        runs.append(self.cgi([harness.event(1)], env=dict(env, HTTP_X_API_KEY=wrong_key)))
        bad_token = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        runs.append(self.cgi([harness.event(1)], env=dict(env, HTTP_AUTHORIZATION="Bearer " + bad_token)))
        self.sb.write_config(databases={
            "test": "Driver=SQLite3;Database=%s;NoCreat=1;PWD=pa55word" % missing})
        runs.append(self.cgi([harness.event(1)], env=env))
        self.assertEqual([r.status for r, _ in runs], [207, 400, 405, 401, 401, 503])
        for (r, err), what in zip(runs, ("207", "400", "405", "401 key", "401 token", "503")):
            with self.case(run=what):
                self.assertIn("activity=%s" % r.json["debug"]["activityID"], err)
                for s in (harness.API_KEY, token, token.split(".")[2], bad_token, secret,
                          self.sb.db_path, missing, "pa55word"):
                    self.assertNotIn(s, err)
                self.assertNotIn("wrong-key", err)


class HealthTest(CgiCase):
    """SPEC §12 as plain CGI: GET .../events-batch/health from a constant,
    with no header, no key, no database and no log line."""

    HEAD = (b"Status: 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
            b"Content-Length: 15\r\nCache-Control: no-store\r\n\r\n")

    def run_raw(self, env):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
             "EVENTS_BATCH_CONFIG": self.sb.conf_path}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                e[k] = os.environ[k]
        e.update(env)
        p = subprocess.run([harness.BINARY], input=b"", env=e, capture_output=True,
                           timeout=harness.scaled(60))
        err = p.stderr.decode("utf-8", "replace")
        self.assert_clean_exit(p.returncode, err)
        return p.stdout, err

    def test_get_is_200_ok_from_a_constant_with_no_header_and_no_log_line(self):
        # a database that cannot be reached: health does not look
        missing = os.path.join(self.sb.dir, "missing.db")
        self.sb.write_config(databases={"test": "Driver=SQLite3;Database=%s" % missing})
        for env in ({"REQUEST_METHOD": "GET", "SCRIPT_NAME": "/api/events-batch",
                     "PATH_INFO": "/health"},
                    {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "/events-batch/health/"},
                    {"REQUEST_METHOD": "GET", "REQUEST_URI": "/x/events-batch/health?probe=1"}):
            with self.case(env=env):
                out, err = self.run_raw(env)
                self.assertEqual(out, self.HEAD + b'{"status":"ok"}')
                self.assertEqual(err, "")
                r = harness.parse_cgi(out)   # recorded for test_openapi.py
                self.assertEqual((r.status, r.json), (200, {"status": "ok"}))
        self.assertFalse(os.path.exists(missing))

    def test_head_gets_the_header_fields_alone(self):
        out, err = self.run_raw({"REQUEST_METHOD": "HEAD",
                                 "SCRIPT_NAME": "/api/events-batch/health"})
        self.assertEqual((out, err), (self.HEAD, ""))

    def test_other_methods_are_405_with_allow_get_head_and_logged(self):
        for method in ("POST", "PUT", "DELETE", "OPTIONS"):
            with self.case(method=method):
                r, err = self.cgi([harness.event(1)], REQUEST_METHOD=method,
                                  SCRIPT_NAME="/api/events-batch/health")
                self.assert_error(r, 405, instance="/api/events-batch/health")
                self.assertEqual(r.headers.get("allow"), "GET, HEAD")
                self.assertEqual(r.headers.get("cache-control"), "no-store")
                self.assertRegex(err, r" method=%s .* status=405 " % method)
        self.assertEqual(self.sb.count(), 0)

    def test_near_misses_are_not_the_health_path(self):
        for path, status in (("/api/events-batch/healthz", 404),
                             ("/api/events-batch/health//", 404),
                             ("/api/health", 404),
                             ("/api/events-batch" + "/x" * 1100 + "/events-batch/health", 414)):
            with self.case(path=path[:80]):
                out, _ = self.run_raw({"REQUEST_METHOD": "GET", "SCRIPT_NAME": path})
                r = harness.parse_cgi(out)
                self.assert_error(r, status, instance=path[:2048])


class DryRunCgiTest(CgiCase):
    """SPEC §11 where the dry run does not get to run: no
    Preference-Applied, the log line still says dry_run=1."""

    def test_refused_dry_run_has_no_preference_applied_and_logs_dry_run(self):
        before = self.seed()
        r, err = self.cgi(WOULD_WRITE, HTTP_PREFER="tx=rollback", HTTP_X_API_KEY="wrong")
        self.assert_error(r, 401)
        self.assertNotIn("preference-applied", r.headers)
        self.assertRegex(err, r" status=401 duration_ms=[0-9.]+ dry_run=1\n")
        self.sb.write_config(databases={"test": "Driver=SQLite3;Database=%s;NoCreat=1"
                                        % os.path.join(self.sb.dir, "missing.db")})
        r, err = self.cgi(WOULD_WRITE, HTTP_PREFER="tx=rollback")
        self.assert_unavailable(r)
        self.assertNotIn("preference-applied", r.headers)
        self.assertRegex(err, r" status=503 duration_ms=[0-9.]+ dry_run=1\n")
        self.assertEqual(self.sb.rows(), before)


class ConfigTest(CgiCase):
    """SPEC §2: a bad config stops start-up with FILE:LINE: message."""

    def good_lines(self):
        with open(self.sb.conf_path) as f:
            return f.read().splitlines()

    def write(self, name, lines):
        path = os.path.join(self.sb.dir, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def run_binary(self, args=(), env_config=None, body=None):
        body = json.dumps(body or [harness.event(7)]).encode()
        env = base_env()
        env.update(self.sb.headers())
        env["CONTENT_LENGTH"] = str(len(body))
        if env_config is not None:
            env["EVENTS_BATCH_CONFIG"] = env_config
        p = subprocess.run([harness.BINARY] + list(args), input=body, env=env,
                           capture_output=True, timeout=harness.scaled(60))
        err = p.stderr.decode("utf-8", "replace")
        self.assert_no_sanitizer(err)
        return p.returncode, harness.parse_cgi(p.stdout), err

    def assert_refused(self, path, line, words, args=None, env_config=None):
        before = self.sb.rows()
        rc, _, err = self.run_binary(args if args is not None else ["--config", path],
                                     env_config=env_config)
        self.assertNotEqual(rc, 0, err)
        pattern = r"(?m)^%s:%s: \S" % (re.escape(path), line)
        self.assertRegex(err, pattern)
        msg = re.search(pattern + r".*$", err).group(0)
        for w in words:
            self.assertIn(w, msg)
        self.assertEqual(self.sb.rows(), before)

    def insert_after(self, lines, header, new):
        """Lines with `new` right after `header`; returns (lines, its line number)."""
        i = lines.index(header) + 1
        return lines[:i] + [new] + lines[i:], i + 1

    def test_bad_settings_stop_start_up_with_file_and_line(self):
        self.seed()
        base = self.good_lines()
        key_line = next(i for i, l in enumerate(base) if l.startswith("jwt_key_file")) + 1
        cases = []
        for header, new, words in (
                ("[limits]", "bogus_key = 1", ["bogus_key"]),
                ("[limits]", "max_batch_items = lots", ["max_batch_items"]),
                ("[limits]", "max_batch_items = 0", ["max_batch_items"]),
                ("[limits]", "max_body_bytes = -5", ["max_body_bytes"]),
                ("[limits]", "max_body_bytes = 12abc", ["max_body_bytes"]),
                ("[auth]", "jwt_algorithm = none", ["jwt_algorithm"]),
                ("[auth]", "jwt_algorithm = HS1024", ["jwt_algorithm"]),
                ("[auth]", "api_key_sha256 = not-hex", ["api_key_sha256"]),
                ("[auth]", "api_key_sha256 = " + "z" * 64, ["api_key_sha256"]),
                ("[auth]", "clock_skew_seconds = soon", ["clock_skew_seconds"]),
                ("[auth]", "jwt_max_lifetime_seconds = -1", ["jwt_max_lifetime_seconds"]),
                ("[auth]", "jwt_max_lifetime_seconds = 99999999", ["jwt_max_lifetime_seconds"]),
                ("[auth]", "unknown_auth_key = x", ["unknown_auth_key"]),
                ("[databases]", "bad name = Driver=SQLite3;Database=/tmp/x.db", ["bad name"]),
                ("[limits]", "this line has no equals sign", []),
                ("[auth]", "[nonsense]", ["nonsense"])):
            lines, n = self.insert_after(base, header, new)
            cases.append((new, lines, n, words))
        cases.append(("unknown section at end", base + ["", "[extras]", "a = b"],
                      len(base) + 2, ["extras"]))
        cases.append(("key before any section", ["max_body_bytes = 100"] + base, 1, []))
        # [databases] is the last section: a second "test" there is the culprit
        cases.append(("database defined twice",
                      base + ["test = Driver=SQLite3;Database=/nonexistent/dup.db"],
                      len(base) + 1, ["test"]))
        for name, lines, n, words in cases:
            with self.case(case=name):
                path = self.write("bad.conf", lines)
                self.assert_refused(path, n, words)
        # the key file: missing, or a directory
        for name, target in (("missing", os.path.join(self.sb.dir, "no-such.key")),
                             ("directory", self.sb.dir)):
            with self.case(case="jwt_key_file " + name):
                lines = list(base)
                lines[key_line - 1] = "jwt_key_file = " + target
                path = self.write("badkey.conf", lines)
                self.assert_refused(path, key_line, ["jwt_key_file"])

    def test_bad_config_refuses_in_cgi_mode_through_the_environment_too(self):
        base = self.good_lines()
        lines, n = self.insert_after(base, "[limits]", "max_batch_items = many")
        path = self.write("env-bad.conf", lines)
        self.assert_refused(path, n, ["max_batch_items"], args=[], env_config=path)
        self.assertEqual(self.sb.count(), 0)

    def test_missing_config_file_stops_start_up(self):
        path = os.path.join(self.sb.dir, "nowhere.conf")
        self.assert_refused(path, r"\d+", [])
        self.assert_refused(path, r"\d+", [], args=[], env_config=path)
        self.assertEqual(self.sb.count(), 0)

    def test_config_option_wins_over_the_environment(self):
        base = self.good_lines()
        bad, n = self.insert_after(base, "[limits]", "bogus = 1")
        bad_path = self.write("bad.conf", bad)
        rc, r, err = self.run_binary(["--config", self.sb.conf_path], env_config=bad_path)
        self.assertEqual(rc, 0, err)
        self.assert_multistatus(r, [(7, 201)])
        self.assertEqual(self.ids(), [7])
        # and the other way round: a bad --config is not rescued by the environment
        self.assert_refused(bad_path, n, ["bogus"], args=["--config", bad_path],
                            env_config=self.sb.conf_path)
        self.assertEqual(self.ids(), [7])

    def test_config_from_the_environment_is_used_without_the_option(self):
        # a config whose "test" database is a file that does not exist
        lines = [l for l in self.good_lines() if not l.startswith("test ")]
        lines.append("test = Driver=SQLite3;Database=%s;NoCreat=1"
                     % os.path.join(self.sb.dir, "elsewhere.db"))
        elsewhere = self.write("elsewhere.conf", lines)
        rc, r, err = self.run_binary([], env_config=elsewhere)
        self.assertEqual(rc, 0, err)
        self.assert_error(r, 503)
        self.assertEqual(self.sb.count(), 0)
        rc, r, err = self.run_binary([], env_config=self.sb.conf_path)
        self.assertEqual(rc, 0, err)
        self.assert_multistatus(r, [(7, 201)])
        self.assertEqual(self.ids(), [7])
        # and --config beats it
        rc, r, err = self.run_binary(["--config", elsewhere], env_config=self.sb.conf_path)
        self.assertEqual(rc, 0, err)
        self.assert_error(r, 503)
        self.assertEqual(self.ids(), [7])

    def test_comments_and_spacing_in_a_good_config_are_understood(self):
        lines = ["# a comment", "; another", ""]
        for line in self.good_lines():
            if line.startswith("["):
                lines.append("  %s  " % line)
            elif "=" in line and not line.startswith("test"):
                k, v = line.split("=", 1)
                lines.append("\t%s   =   %s   # trailing comment" % (k.strip(), v.strip()))
            else:
                lines.append(line)
        lines.insert(lines.index("  [limits]  ") + 1, "max_body_bytes = 300 # small")
        path = self.write("spaced.conf", lines)
        rc, r, err = self.run_binary(["--config", path], body=[harness.event(1)])
        self.assertEqual(rc, 0, err)
        self.assert_multistatus(r, [(1, 201)])
        rc, r, err = self.run_binary(["--config", path],
                                     body=[harness.event(i) for i in range(2, 6)])
        self.assertEqual(rc, 0, err)
        self.assert_error(r, 413)
        self.assertEqual(self.ids(), [1])


class LargeBatchTest(CgiCase):
    """10,000 events of all 25 fields in one request (the default limit)."""

    def assert_counts_logged(self, err, **counts):
        lines = [l for l in err.splitlines() if "method=PUT" in l]
        self.assertEqual(len(lines), 1, err)
        for k, v in dict(counts, status=207).items():
            self.assertRegex(lines[0], r"(^|\s)%s=%d(\s|$)" % (k, v))

    def test_ten_thousand_full_events_are_created_then_updated(self):
        items = [full_event(i) for i in range(1, 10001)]
        r, err = self.cgi(items)
        self.assertEqual(r.status, 207, r)
        data = r.json["data"]
        self.assertEqual(len(data), 10000)
        self.assertEqual([d["id"][0]["value"] for d in data], list(range(1, 10001)))
        self.assertEqual({d["status"] for d in data}, {201})
        self.assertEqual(self.sb.count(), 10000)
        self.assertEqual(self.sb.rows("SELECT COUNT(*) AS n FROM Event WHERE Subject = "
                                      "'subject ' || Event_ID AND Reminder_Event_ID = Event_ID + 1 "
                                      "AND Claim_Audit_Event = 1 AND Due_Date = "
                                      "'2024-01-03 00:00:00.000'")[0]["n"], 10000)
        self.assert_counts_logged(err, created=10000, updated=0, failed=0)
        for item in items:
            item["subject"] = "again %d" % item["event_ID"]
        r, err = self.cgi(items)
        self.assertEqual(r.status, 207, r)
        self.assertEqual([d["status"] for d in r.json["data"]], [200] * 10000)
        self.assertEqual(self.sb.count(), 10000)
        self.assertEqual(self.sb.rows("SELECT COUNT(*) AS n FROM Event WHERE Subject = "
                                      "'again ' || Event_ID")[0]["n"], 10000)
        self.assert_counts_logged(err, created=0, updated=10000, failed=0)
        self.assertEqual(self.row(9999), dict(self.row(9999), Subject="again 9999"))


class WriterQueueTest(CgiCase):
    """SQLite: writers queue for the database file (flock) before BEGIN
    IMMEDIATE, rather than polling the driver's busy handler (10 ms a try)."""

    def hold_queue(self):
        fd = os.open(self.sb.db_path, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def test_a_writer_waits_in_the_queue_while_it_is_held_then_stores(self):
        """While another holds the queue, a batch waits for it (it cannot
        skip it), and is stored as soon as the queue is free."""
        fd = self.hold_queue()
        done = []
        t = threading.Thread(target=lambda: done.append(self.cgi([harness.event(1)])),
                             daemon=True)
        t.start()
        t.join(harness.scaled(1.5))
        self.assertTrue(t.is_alive(), "the batch did not wait for the queue: %r" % done)
        self.assertEqual(self.ids(), [])
        released = time.monotonic()
        fcntl.flock(fd, fcntl.LOCK_UN)
        t.join(harness.scaled(30))
        self.assertFalse(t.is_alive())
        self.assert_multistatus(done[0][0], [(1, 201)])
        self.assertEqual(self.ids(), [1])
        self.assertLess(time.monotonic() - released, harness.scaled(10))

    def test_a_worker_leaves_the_queue_after_every_kind_of_batch(self):
        """A FastCGI worker keeps its connection, and the file open, between
        requests; the queue is free again after a commit, after a batch
        redone item by item, and after a batch that failed."""
        # a short driver busy timeout, for the 503 at the end
        self.sb.write_config(databases={
            "test": "Driver=SQLite3;Database=%s;NoCreat=1;Timeout=300" % self.sb.db_path})
        lt = webservers.Lighttpd(self.sb, max_procs=1, run_user=None)
        con = sqlite3.connect(self.sb.db_path)
        con.executescript("CREATE TRIGGER refuse BEFORE INSERT ON Event "
                          "WHEN NEW.Subject = 'refuse' BEGIN SELECT RAISE(ABORT, 'no'); END;")
        con.close()
        fd = os.open(self.sb.db_path, os.O_RDONLY)
        self.addCleanup(os.close, fd)

        def queue_is_free():
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises when held
            fcntl.flock(fd, fcntl.LOCK_UN)

        for batch, want in (([harness.event(1)], [(1, 201)]),
                            ([harness.event(2), harness.event(3, subject="refuse")],
                             [(2, 201), (3, 500)]),
                            ([harness.event(4, reminder="no")], [(4, 400)])):
            with self.case(batch=batch):
                self.assert_multistatus(lt.request(batch), want)
                queue_is_free()
        # SQLite's lock held elsewhere (not queued): BEGIN times out, 503
        other = sqlite3.connect(self.sb.db_path, isolation_level=None)
        self.addCleanup(other.close)
        other.execute("BEGIN EXCLUSIVE")
        self.assert_unavailable(lt.request([harness.event(5)]))
        queue_is_free()
        other.execute("ROLLBACK")
        self.assert_multistatus(lt.request([harness.event(5)]), [(5, 201)])
        queue_is_free()


if __name__ == "__main__":
    harness.main()
