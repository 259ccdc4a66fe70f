"""The shipped web-server configs (apache-conf/, issue 5) proven with the real
servers: Apache 2.4 with mod_fcgid, Apache as plain CGI (event MPM with
mod_cgid, and prefork with mod_cgi), lighttpd (mod_fastcgi bin-path), and
nginx in front of the program started as events-batch.service starts it
(--listen on a unix socket) or by spawn-fcgi -n.  Each server is started from the shipped file with only its
paths filled in (webservers.py) and spoken to over real HTTP on 127.0.0.1;
every answer is checked against the rows in the real SQLite file.

Graceful stop: a 10,000-event batch is held inside the worker by a write lock
the test takes on the database (the worker waits for it with SQLite's busy
timeout); the server is stopped as production stops it, the lock is
released once the stop has reached the server (or the worker: the signal is
seen pending in /proc/PID/status while the request runs), and then every row
of the batch must be there and the worker must have exited 0.
"""
import ctypes
import json
import os
import pwd
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import webservers as ws  # noqa: E402

PREFIX = ws.PREFIX
DEFAULT_MAX_BODY = 16777216          # SPEC §3 default of [limits] max_body_bytes
IN_FLIGHT_EVENTS = 10000             # max_batch_items: the largest batch there is
# mod_fcgid 2.3.9, when Apache stops or restarts, sends its workers SIGTERM and
# SIGKILL 8 s later (kill_all_subprocess in fcgid_pm_main.c), whatever they are
# doing. A batch that ends inside that window must be committed and answered;
# one that does not is rolled back whole (test_faults.py). This batch is small
# enough to end well inside it even under the sanitizers or valgrind on a
# loaded machine; 10,000 events there took longer than 8 s on a CI machine.
FCGID_WINDOW_EVENTS = 500
# lighttpd's graceful shutdown (SIGINT) also has a window: it closes what is
# still open after server.graceful-shutdown-timeout (it stopped 8-9 s after
# "graceful shutdown started" here). 10,000 events fit it natively, not under
# valgrind (about a minute): there the batch is the one that fits mod_fcgid's.
LIGHTTPD_GRACEFUL_EVENTS = FCGID_WINDOW_EVENTS if harness.VALGRIND else IN_FLIGHT_EVENTS


SUBREAPER = False


def setUpModule():
    # Become the reaper of orphaned workers (a server that exits leaves its
    # workers to us, not to init), so their exit status can be read.
    global SUBREAPER
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        SUBREAPER = libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        SUBREAPER = False


def reap(pid):
    """The exit status of an orphaned worker that became our child, or None
    when another process reaped it."""
    try:
        got, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if got == pid else None


missing = ws.missing


def body_of_size(size, first_id=1):
    """A valid JSON batch of exactly size bytes (one item padded with
    meta_Data)."""
    base = json.dumps([harness.event(first_id, meta_Data="")]).encode()
    pad = size - len(base)
    assert pad >= 0
    b = json.dumps([harness.event(first_id, meta_Data="p" * pad)]).encode()
    assert len(b) == size, (len(b), size)
    return b


class HostingCase(harness.EnvelopeChecks, unittest.TestCase):
    """Shared checks; subclasses name the server.  The answer checks
    (assert_multistatus, assert_error: the program's own envelope, not a
    server's error page) and assert_no_sanitizer come from
    harness.EnvelopeChecks."""

    server_class = None
    needs = ()
    # whether the server turns a chunked upload into a CONTENT_LENGTH (True),
    # passes it on without one (False), or either (None)
    chunked_gets_length = None
    error_instance = PREFIX

    @staticmethod
    def request_lines(text):
        return [l for l in text.splitlines() if "events-batch[" in l and " method=" in l]


class ServedTests(ws.SharedServer):
    """The tests every server gets (mixed into a HostingCase that names the
    server): one server per class, started from the shipped config; the
    tests share it and empty the table before each test."""

    def setUp(self):
        super().setUp()
        con = sqlite3.connect(self.sb.db_path, timeout=30)
        try:
            con.execute("DELETE FROM Event")
            con.commit()
        finally:
            con.close()

    def put(self, body, **kw):
        return self.server.request(body, token=self.token, **kw)

    def ids(self):
        return [r["Event_ID"] for r in self.sb.rows("SELECT Event_ID FROM Event ORDER BY Event_ID")]

    def program_log(self):
        """Where the program's request log lines go: the server's error log
        (FastCGI workers send them as FCGI_STDERR records)."""
        return self.server.log()

    # the tests ---------------------------------------------------------------

    def test_config_passes_the_servers_syntax_check(self):
        rc, out = self.server.syntax
        self.assertEqual(rc, 0, out)
        self.assertNotIn("warn", out.lower(), out)

    def test_batch_is_207_created_then_updated_and_stored(self):
        batch = [harness.event(3, subject="three", priority="high",
                               due_Date="2024-05-06T07:08:09+02:00"),
                 harness.event(1, subject="one", meta_Data="{\"k\": [1, 2]}"),
                 harness.event(2, reminder=True, userGroup_Key=12)]
        r = self.put(batch)
        data = self.assert_multistatus(r, [(3, 201), (1, 201), (2, 201)])
        self.assertEqual([d["body"] for d in data], ["Created"] * 3)
        rows = {row["Event_ID"]: row for row in self.sb.rows()}
        self.assertEqual(sorted(rows), [1, 2, 3])
        self.assertEqual(rows[3]["Subject"], "three")
        self.assertEqual(rows[3]["Priority"], "high")
        self.assertEqual(rows[3]["Due_Date"][:19], "2024-05-06 05:08:09")
        self.assertEqual(rows[1]["Meta_Data"], "{\"k\": [1, 2]}")
        self.assertEqual((rows[2]["Reminder"], rows[2]["UserGroup_Key"]), (1, 12))
        self.assertEqual({row["Entry_User"] for row in rows.values()}, {harness.USER})
        batch[0]["subject"] = "changed"
        r = self.put(batch)
        data = self.assert_multistatus(r, [(3, 200), (1, 200), (2, 200)])
        self.assertEqual([d["body"] for d in data], ["Updated"] * 3)
        self.assertEqual(self.sb.rows("SELECT Subject FROM Event WHERE Event_ID = 3")[0]["Subject"],
                         "changed")
        self.assertEqual(self.sb.count(), 3)

    def test_authorization_header_reaches_the_program(self):
        batch = [harness.event(5), harness.event(6)]
        r = self.put(batch, headers={"Authorization": None})
        self.assert_error(r, 401)
        self.assertRegex(r.headers.get("www-authenticate", ""), r"\ABearer\b")
        self.assertNotIn("invalid_token", r.headers.get("www-authenticate", ""))
        self.assertEqual(self.sb.count(), 0)
        # a token that is sent but wrong: the program saw the header's value
        r = self.put(batch, headers={"Authorization": "Bearer " + self.token[:-4] + "AAAA"})
        self.assert_error(r, 401)
        self.assertIn('error="invalid_token"', r.headers.get("www-authenticate", ""))
        self.assertEqual(self.sb.count(), 0)
        # and a good one is accepted: the header passes through the server
        r = self.put(batch)
        self.assert_multistatus(r, [(5, 201), (6, 201)])
        self.assertEqual(self.ids(), [5, 6])
        self.assertEqual({row["Update_User"] for row in self.sb.rows()}, {harness.USER})

    def test_eight_mib_batch_is_207_and_every_row_is_stored(self):
        n = 9000
        meta = "m" * 900
        batch = [harness.event(i, meta_Data=meta, subject="big %d" % i) for i in range(1, n + 1)]
        body = json.dumps(batch).encode()
        self.assertGreaterEqual(len(body), 8 * 1024 * 1024)
        r = self.put(body)
        data = self.assert_multistatus(r, [(i, 201) for i in range(1, n + 1)])
        self.assertEqual(len(data), n)
        got = self.sb.rows("SELECT COUNT(*) AS n, MIN(Event_ID) AS lo, MAX(Event_ID) AS hi, "
                           "SUM(LENGTH(Meta_Data) = 900) AS full FROM Event")[0]
        self.assertEqual(got, {"n": n, "lo": 1, "hi": n, "full": n})
        self.assertEqual(self.sb.rows("SELECT Subject FROM Event WHERE Event_ID = 4321")[0]
                         ["Subject"], "big 4321")

    def test_body_just_over_max_body_bytes_is_the_programs_413(self):
        """The server's own cap is above the program's default limit, so the
        program answers 413 with its envelope, not the server."""
        body = body_of_size(DEFAULT_MAX_BODY + 512, first_id=77)
        r = self.put(body)
        err = self.assert_error(r, 413)
        self.assertIn(str(DEFAULT_MAX_BODY), err["detail"])
        self.assertEqual(self.sb.count(), 0)
        # exactly the limit is accepted
        body = body_of_size(DEFAULT_MAX_BODY, first_id=78)
        r = self.put(body)
        self.assert_multistatus(r, [(78, 201)])
        self.assertEqual(self.ids(), [78])
        pad = DEFAULT_MAX_BODY - len(json.dumps([harness.event(78, meta_Data="")]))
        self.assertEqual(self.sb.rows("SELECT LENGTH(Meta_Data) AS n FROM Event")[0]["n"], pad)

    def test_chunked_upload_is_read_to_its_end(self):
        batch = [harness.event(i, subject="chunk %d" % i, meta_Data="c" * 300)
                 for i in range(1, 501)]
        r = self.put(batch, chunked=True)
        self.assert_multistatus(r, [(i, 201) for i in range(1, 501)])
        self.assertEqual(self.ids(), list(range(1, 501)))
        self.assertEqual(self.sb.rows("SELECT Subject FROM Event WHERE Event_ID = 500")[0]
                         ["Subject"], "chunk 500")

    def test_chunked_upload_over_max_body_bytes_is_the_programs_413(self):
        body = body_of_size(DEFAULT_MAX_BODY + 512, first_id=88)
        r = self.put(body, chunked=True)
        err = self.assert_error(r, 413)
        self.assertEqual(self.sb.count(), 0)
        # the program's detail names the size only when it had a CONTENT_LENGTH
        if self.chunked_gets_length is not None:
            self.assertEqual("of %d bytes exceeds" % len(body) in err["detail"],
                             self.chunked_gets_length, err["detail"])

    def test_trailing_slash_and_query_reach_the_program(self):
        """SPEC §4: the path may end in /events-batch/ and carry a query."""
        r = self.put([harness.event(21)], path=PREFIX + "?trace=1")
        self.assert_multistatus(r, [(21, 201)])
        r = self.put([harness.event(22)], path=PREFIX + "/")
        self.assert_multistatus(r, [(22, 201)])
        self.assertEqual(self.ids(), [21, 22])

    def test_get_is_405_with_allow_put(self):
        self.put([harness.event(1, subject="kept")])
        before = self.sb.rows()
        r = self.put(None, method="GET")
        self.assert_error(r, 405)
        self.assertEqual(r.headers.get("allow"), "PUT")
        r = self.put([harness.event(1, subject="changed")], method="POST")
        self.assert_error(r, 405)
        self.assertEqual(r.headers.get("allow"), "PUT")
        self.assertEqual(self.sb.rows(), before)

    # the request's headers, all dropped: the health check needs none
    NO_HEADERS = {"User-Agent": None, "x-api-key": None, "Authorization": None,
                  "vbasoftware-database": None, "Content-Type": None}

    def test_health_is_200_ok_for_get_and_head_and_405_for_other_methods(self):
        """SPEC §12 through the shipped config: .../events-batch/health (a
        trailing slash too) reaches the program, needs no header at all,
        and answers GET from any worker without a log line; HEAD gets the
        header fields alone; POST and PUT are the program's 405."""
        for path in (PREFIX + "/health", PREFIX + "/health/"):
            with self.case(path=path):
                r = self.server.request(None, headers=self.NO_HEADERS, method="GET", path=path)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.raw, b'{"status":"ok"}')
                self.assertEqual(r.headers.get("content-type"), harness.JSON_TYPE)
                self.assertEqual(r.headers.get("cache-control"), "no-store")
        r = self.server.request(None, headers=self.NO_HEADERS, method="HEAD",
                                path=PREFIX + "/health")
        self.assertEqual((r.status, r.raw), (200, b""), r)
        self.assertEqual(r.headers.get("cache-control"), "no-store")
        for method in ("POST", "PUT"):
            with self.case(method=method):
                r = self.server.request([harness.event(1)], method=method,
                                        path=PREFIX + "/health")
                self.assert_error(r, 405, instance=PREFIX + "/health")
                self.assertEqual(r.headers.get("allow"), "GET, HEAD")
        self.assertEqual(self.sb.count(), 0)
        aid = r.json["debug"]["activityID"]
        ws.wait_for(lambda: "activity=%s method=" % aid in self.program_log(),
                    what="the log line of activity %s" % aid)
        self.assertNotRegex(self.program_log(), r" method=(GET|HEAD) .* status=200")

    def test_dry_run_header_reaches_the_program(self):
        """SPEC §11: Prefer passes through the server, Preference-Applied
        comes back, and nothing is stored."""
        r = self.put([harness.event(31), harness.event(32)], headers={"Prefer": "tx=rollback"})
        self.assert_multistatus(r, [(31, 201), (32, 201)])
        self.assertEqual(r.headers.get("preference-applied"), "tx=rollback")
        self.assertEqual(self.sb.count(), 0)
        r = self.put([harness.event(31)], headers={"Prefer": "return=minimal"})
        self.assert_multistatus(r, [(31, 201)])
        self.assertNotIn("preference-applied", r.headers)
        self.assertEqual(self.ids(), [31])

    def test_log_line_of_the_request_is_in_the_server_log(self):
        self.put([harness.event(9)])
        r = self.put([harness.event(9), harness.event(10), harness.event(11, reminder=1)])
        self.assert_multistatus(r, [(9, 200), (10, 201), (11, 400)])
        aid = r.json["debug"]["activityID"]
        ws.wait_for(lambda: "activity=%s method=" % aid in self.program_log(),
                    what="the log line of activity %s" % aid)
        log = self.program_log()
        lines = [l for l in self.request_lines(log) if "activity=%s" % aid in l]
        self.assertEqual(len(lines), 1, log[-3000:])
        for token in ("method=PUT", "db=test", "items=3", "created=1", "updated=1", "failed=1",
                      "status=207"):
            self.assertRegex(lines[0], r"(^|\s)%s(\s|$)" % re.escape(token))
        self.assertRegex(lines[0], r"events-batch\[\d+\]: ")
        self.assertNotIn(harness.API_KEY, log)
        self.assertNotIn(self.token, log)
        self.assertEqual(self.ids(), [9, 10])

    # helpers for the server-specific tests

    def worker_env(self, pid):
        with open("/proc/%d/environ" % pid, "rb") as f:
            return dict(kv.decode("utf-8", "replace").split("=", 1)
                        for kv in f.read().split(b"\0") if b"=" in kv)

    def assert_worker_runs_as(self, pid, user):
        want = pwd.getpwnam(user).pw_uid if os.geteuid() == 0 else os.geteuid()
        self.assertEqual(os.stat("/proc/%d" % pid).st_uid, want)


class ApacheFcgidTest(ServedTests, HostingCase):
    """events-batch-fcgid.conf: Apache 2.4, event MPM, mod_fcgid."""
    server_class = ws.ApacheFcgid
    needs = ("apache2",)

    def program_log(self):
        return ws.read_text(self.server.errorlog)  # Apache's ErrorLog itself

    def test_shipped_settings_are_in_force(self):
        text = ws.shipped("events-batch-fcgid.conf")
        for directive in ("FcgidPassHeader Authorization", "FcgidMaxRequestLen",
                          "FcgidIOTimeout", "FcgidMaxProcessesPerClass",
                          "FcgidInitialEnv EVENTS_BATCH_CONFIG"):
            self.assertRegex(text, r"(?m)^\s*%s\b" % re.escape(directive))
        cap = int(re.search(r"(?m)^\s*FcgidMaxRequestLen\s+(\d+)", text).group(1))
        self.assertGreater(cap, DEFAULT_MAX_BODY)
        # the workers are mod_fcgid's, run as the server's User, and were
        # given the config path by FcgidInitialEnv
        r = self.put([harness.event(1)])
        self.assert_multistatus(r, [(1, 201)])
        workers = self.server.workers()
        self.assertTrue(workers)
        for pid in workers:
            self.assert_worker_runs_as(pid, ws.RUN_USER)
            self.assertEqual(self.worker_env(pid).get("EVENTS_BATCH_CONFIG"), self.sb.conf_path)


class ApacheCgiTest(ServedTests, HostingCase):
    """events-batch-cgi.conf: Apache 2.4, event MPM, mod_cgid."""
    server_class = ws.ApacheCgi
    needs = ("apache2",)
    # mod_cgid passes a chunked body on as it is: the program reads it to
    # its end (or to max_body_bytes)
    chunked_gets_length = False

    def program_log(self):
        return ws.read_text(self.server.errorlog)  # Apache's ErrorLog itself


class ApacheCgiPreforkTest(ServedTests, HostingCase):
    """events-batch-cgi.conf: Apache 2.4, prefork MPM, mod_cgi."""
    server_class = ws.ApacheCgiPrefork
    needs = ("apache2",)
    chunked_gets_length = False

    def program_log(self):
        return ws.read_text(self.server.errorlog)


class LighttpdTest(ServedTests, HostingCase):
    """lighttpd-events-batch.conf: lighttpd 1.4 mod_fastcgi, bin-path."""
    server_class = ws.Lighttpd
    needs = ("lighttpd",)

    def program_log(self):
        # request lines arrive as FastCGI stderr, which lighttpd writes to
        # server.errorlog itself
        return ws.read_text(self.server.errorlog)

    def test_shipped_settings_are_in_force(self):
        text = ws.shipped("lighttpd-events-batch.conf")
        kib = int(re.search(r"(?m)^\s*server\.max-request-size\s*=\s*(\d+)", text).group(1))
        self.assertGreater(kib * 1024, DEFAULT_MAX_BODY)
        procs = int(re.search(r'"max-procs"\s*=>\s*(\d+)', text).group(1))
        # lighttpd spawned max-procs workers with bin-environment's config
        ws.wait_for(lambda: len(self.server.workers()) == procs,
                    what="%d workers" % procs)
        for pid in self.server.workers():
            self.assert_worker_runs_as(pid, ws.RUN_USER)
            self.assertEqual(self.worker_env(pid).get("EVENTS_BATCH_CONFIG"), self.sb.conf_path)
        r = self.put([harness.event(1)])
        self.assert_multistatus(r, [(1, 201)])


class NginxListenTest(ServedTests, HostingCase):
    """nginx-events-batch.conf + the program as events-batch.service runs it."""
    server_class = ws.NginxListen
    needs = ("nginx",)
    # fastcgi_request_buffering on: nginx reads a chunked body whole and
    # passes CONTENT_LENGTH, as the shipped file says
    chunked_gets_length = True

    def program_log(self):
        return self.server.program_log()

    def test_requests_go_over_one_kept_connection(self):
        """The shipped upstream keeps FastCGI connections open
        (FCGI_KEEP_CONN): each request after the first is served at once on
        the kept one (SPEC §2), not when another connection arrives."""
        for i in range(1, 6):
            r = self.put([harness.event(i)])
            self.assert_multistatus(r, [(i, 201)])
        pid = self.server.fcgi.pid
        # idle, the program holds its listening socket and the kept one
        counts = []
        for _ in range(5):
            time.sleep(0.1)
            counts.append(harness.open_sockets(pid))
        self.assertEqual(counts, [2] * 5)

    def test_program_runs_as_the_units_user_with_its_environment(self):
        unit = self.server.unit
        p = self.server.fcgi
        self.assertIsNone(p.poll())
        self.assert_worker_runs_as(p.pid, unit["User"][0])
        self.assertEqual(self.worker_env(p.pid).get("EVENTS_BATCH_CONFIG"), self.sb.conf_path)
        self.assertTrue(os.path.exists(self.server.socket))
        self.assertEqual(os.path.dirname(self.server.socket),
                         os.path.join(self.server.run, unit["RuntimeDirectory"][0]))


class NginxNewConnectionsTest(ServedTests, HostingCase):
    """nginx-events-batch.conf as a site without the shipped upstream would
    use it: fastcgi_pass to the socket, a new FastCGI connection per
    request (the shipped files keep them, NginxListenTest)."""
    server_class = ws.NginxListenNewConnections
    needs = ("nginx",)
    chunked_gets_length = True

    def program_log(self):
        return self.server.program_log()


class NginxSpawnFcgiTest(ServedTests, HostingCase):
    """nginx-events-batch.conf + spawn-fcgi -n -s SOCKET -- the program."""
    server_class = ws.NginxSpawnFcgi
    needs = ("nginx", "spawn-fcgi")
    chunked_gets_length = True

    def program_log(self):
        return self.server.program_log()


# --- stopping with a batch in flight --------------------------------------------

class InFlight:
    """A 10,000-event batch sent in a thread while the test holds SQLite's
    write lock, so the worker is provably inside the request (it has read
    the whole body and waits for the lock) until release()."""

    def __init__(self, case, server, events=IN_FLIGHT_EVENTS):
        self.case, self.server, self.sb = case, server, server.sb
        self.ids = list(range(100001, 100001 + events))
        self.body = json.dumps([harness.event(i, subject="in flight") for i in self.ids]).encode()
        self.result = {}
        self.lock = sqlite3.connect(self.sb.db_path, timeout=30, isolation_level=None)
        case.addCleanup(self.release)
        self.lock.execute("BEGIN IMMEDIATE")
        before = {pid: ws.io_read_bytes(pid) for pid in server.workers()}
        self.thread = threading.Thread(target=self._send, daemon=True)
        self.thread.start()

        def reading():
            return [pid for pid in server.workers()
                    if ws.io_read_bytes(pid) - before.get(pid, 0) >= len(self.body)]
        self.worker = ws.wait_for(lambda: reading() or not self.thread.is_alive(), timeout=120,
                                  what="a worker to read the whole batch")
        case.assertTrue(self.thread.is_alive(), "the request ended early: %r" % self.result)
        self.worker = self.worker[0]

    def _send(self):
        try:
            self.result["response"] = self.server.request(self.body, token=self.case.token,
                                                          timeout=300)
        except Exception as e:  # the server may drop the client when it stops
            self.result["error"] = e

    def wait_signal_pending(self, sig=signal.SIGTERM):
        """The stop signal has reached the worker while it serves the batch:
        pending (blocked), or taken by the worker's main thread, which says
        so in the log while a serving thread goes on with the batch."""
        said = "[%d]: stop signal %s:" % (self.worker, sig.name)
        ws.wait_for(lambda: sig in ws.pending_signals(self.worker)
                    or said in self.server.log() or not ws.pid_alive(self.worker), timeout=60,
                    what="%s to reach worker %d" % (sig.name, self.worker))
        self.case.assertTrue(ws.pid_alive(self.worker),
                             "worker %d died while the batch was in flight" % self.worker)

    def release(self):
        if self.lock is not None:
            if self.lock.in_transaction:
                self.lock.execute("ROLLBACK")
            self.lock.close()
            self.lock = None

    def finish(self):
        """Release the lock; returns the response (None if the server dropped
        the client)."""
        self.release()
        self.thread.join(300)
        self.case.assertFalse(self.thread.is_alive(), "the request never ended")
        return self.result.get("response")

    def assert_all_rows(self):
        got = self.sb.rows("SELECT COUNT(*) AS n FROM Event WHERE Subject = 'in flight' "
                           "AND Event_ID BETWEEN ? AND ?", (self.ids[0], self.ids[-1]))[0]["n"]
        self.case.assertEqual(got, len(self.ids), "rows of the batch in flight committed")

    def assert_207(self, r):
        self.case.assertIsNotNone(r, "the client lost the answer: %r" % self.result)
        self.case.assert_multistatus(r, [(i, 201) for i in self.ids])

    def wait_worker_gone(self):
        ws.wait_for(lambda: not ws.pid_alive(self.worker), timeout=60,
                    what="worker %d to exit" % self.worker)


class StopCase(HostingCase):
    """A fresh server per test; stopped by the test."""

    def setUp(self):
        why = missing(*self.needs)
        if why:
            self.skipTest(why)
        self.sb = harness.Sandbox()
        self.addCleanup(self.sb.close)
        self.token = self.sb.token()
        self.server = self.server_class(self.sb)
        # cleanups run last first: stop the server, then read its logs
        self.addCleanup(lambda: self.assert_no_sanitizer(self.server.program_crash_log(),
                                                         "sanitizer report in the logs",
                                                         tail=6000))
        self.addCleanup(self.server.stop)
        # the worker is up and has its database connection
        r = self.server.request([harness.event(1)], token=self.token)
        self.assert_multistatus(r, [(1, 201)])


class ApacheFcgidStopTest(StopCase):
    server_class = ws.ApacheFcgid
    needs = ("apache2",)

    def fcgid_exit_code(self, pid):
        """mod_fcgid's account of how worker pid ended."""
        m = ws.wait_for(lambda: re.search(r"events-batch\.fcgi\(%d\) exit\([^)]*\), (.*)" % pid,
                                          self.server.log()),
                        what="mod_fcgid to report the exit of %d" % pid)
        return m.group(1)

    def test_graceful_stop_finishes_the_batch_in_flight(self):
        """apachectl graceful-stop: the client gets its 207, every row is
        there, then mod_fcgid stops the worker and it exits 0."""
        job = InFlight(self, self.server)
        self.server.graceful_stop()
        ws.wait_for(lambda: "AH00492" in self.server.log(), what="Apache to begin stopping")
        r = job.finish()
        job.assert_207(r)
        job.assert_all_rows()
        self.assertEqual(self.server.proc.wait(harness.scaled(60)), 0)
        job.wait_worker_gone()
        self.assertEqual(self.fcgid_exit_code(job.worker),
                         "terminated by calling exit(), return code: 0")
        self.assertEqual(self.sb.count(), IN_FLIGHT_EVENTS + 1)

    def test_sigterm_to_apache_lets_the_worker_commit_the_batch_in_flight(self):
        """apachectl stop (SIGTERM): mod_fcgid sends the worker SIGTERM while
        the batch runs; the worker commits it all, then exits 0."""
        job = InFlight(self, self.server, FCGID_WINDOW_EVENTS)
        self.server.proc.send_signal(signal.SIGTERM)
        job.wait_signal_pending(signal.SIGTERM)
        job.finish()  # Apache drops the client: no answer to check
        self.assertEqual(self.server.proc.wait(harness.scaled(60)), 0)
        job.wait_worker_gone()
        job.assert_all_rows()
        self.assertEqual(self.fcgid_exit_code(job.worker),
                         "terminated by calling exit(), return code: 0")

    def test_graceful_restart_recycles_the_worker_after_its_batch(self):
        """apachectl graceful (log rotation): the worker gets SIGTERM in the
        middle of a batch, the client still gets its 207, the worker exits 0
        and a new worker serves the next request."""
        job = InFlight(self, self.server, FCGID_WINDOW_EVENTS)
        subprocess.run([self.server.apache2, "-f", self.server.main_conf, "-k", "graceful"],
                       check=True, capture_output=True, env=self.server.server_env())
        job.wait_signal_pending(signal.SIGTERM)
        r = job.finish()
        job.assert_207(r)
        job.assert_all_rows()
        job.wait_worker_gone()
        self.assertEqual(self.fcgid_exit_code(job.worker),
                         "terminated by calling exit(), return code: 0")
        r = self.server.request([harness.event(2)], token=self.token)
        self.assert_multistatus(r, [(2, 201)])
        self.assertNotIn(job.worker, self.server.workers())
        self.assertIsNone(self.server.proc.poll())


class LighttpdStopTest(StopCase):
    server_class = ws.Lighttpd
    needs = ("lighttpd",)

    def test_sigterm_to_lighttpd_lets_the_worker_commit_the_batch_in_flight(self):
        """lighttpd stops at once on SIGTERM and passes it to its workers: the
        worker, still waiting for the lock when lighttpd is gone, commits the
        batch, then exits 0."""
        job = InFlight(self, self.server)
        self.server.proc.send_signal(signal.SIGTERM)
        job.wait_signal_pending(signal.SIGTERM)
        self.server.proc.wait(harness.scaled(60))
        self.assertTrue(ws.pid_alive(job.worker))
        job.finish()  # lighttpd dropped the client: no answer to check
        job.wait_worker_gone()
        job.assert_all_rows()
        if SUBREAPER:  # the orphaned worker became our child
            self.assertEqual(reap(job.worker), 0)

    def test_graceful_shutdown_of_lighttpd_answers_the_batch_in_flight(self):
        """SIGINT: lighttpd's graceful shutdown waits for the request; the
        client gets its 207, every row is there, the worker exits."""
        job = InFlight(self, self.server, LIGHTTPD_GRACEFUL_EVENTS)
        self.server.proc.send_signal(signal.SIGINT)
        ws.wait_for(lambda: "graceful shutdown started" in self.server.log(),
                    what="lighttpd to begin its graceful shutdown")
        r = job.finish()
        job.assert_207(r)
        job.assert_all_rows()
        self.server.proc.wait(harness.scaled(60))
        job.wait_worker_gone()
        status = reap(job.worker)
        if status is not None:  # else lighttpd reaped it before it exited
            self.assertEqual(status, 0)


class ListenStopTest(StopCase):
    """The program as events-batch.service runs it (behind nginx): systemd
    stops it with the unit's KillSignal."""
    server_class = ws.NginxListen
    needs = ("nginx",)

    def stop_in_flight(self, sig):
        job = InFlight(self, self.server)
        self.assertEqual(job.worker, self.server.fcgi.pid)
        self.server.fcgi.send_signal(sig)
        job.wait_signal_pending(sig)
        r = job.finish()
        job.assert_207(r)
        self.assertEqual(self.server.fcgi.wait(harness.scaled(60)), 0)
        job.assert_all_rows()
        return job

    def test_kill_signal_of_the_unit_finishes_the_batch_then_exits_0(self):
        self.assertEqual(self.server.kill_signal, signal.SIGTERM)
        self.stop_in_flight(self.server.kill_signal)
        lines = self.request_lines(self.server.program_log())
        self.assertRegex(lines[-1], r" items=%d created=%d .* status=207 "
                         % (IN_FLIGHT_EVENTS, IN_FLIGHT_EVENTS))

    def test_sigusr1_finishes_the_batch_then_exits_0(self):
        self.stop_in_flight(signal.SIGUSR1)


class SpawnFcgiStopTest(StopCase):
    server_class = ws.NginxSpawnFcgi
    needs = ("nginx", "spawn-fcgi")

    def test_sigterm_finishes_the_batch_then_exits_0(self):
        job = InFlight(self, self.server)
        # spawn-fcgi -n execs the program: the process we started is the worker
        self.assertEqual(job.worker, self.server.fcgi.pid)
        self.server.fcgi.send_signal(signal.SIGTERM)
        job.wait_signal_pending(signal.SIGTERM)
        job.assert_207(job.finish())
        self.assertEqual(self.server.fcgi.wait(harness.scaled(60)), 0)
        job.assert_all_rows()


class SystemdUnitTest(unittest.TestCase):
    def test_unit_passes_systemd_analyze_verify(self):
        sb = harness.Sandbox()
        self.addCleanup(sb.close)
        out = ws.systemd_verify(sb)
        if out is None:
            self.skipTest("systemd-analyze not installed")
        rc, text = out
        self.assertEqual(rc, 0, text)
        self.assertNotRegex(text, r"(?i)unknown|invalid|ignoring", text)


if __name__ == "__main__":
    harness.main()
