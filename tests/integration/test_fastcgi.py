"""events-batch run as FastCGI (SPEC §2): spawned by a real lighttpd
(mod_fastcgi bin-path), by spawn-fcgi, and standalone with --listen; spoken
to over real HTTP, with cgi-fcgi (libfcgi-bin), or with the small FastCGI
client below when a test must control the timing of a request's parts.

Every server listens on 127.0.0.1 or a socket in the sandbox, and every
process is stopped by its PID in tearDown.
"""
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import webservers  # noqa: E402

PREFIX = harness.ENDPOINT
CGI_FCGI = harness.which("cgi-fcgi")
SPAWN_FCGI = harness.which("spawn-fcgi")


wait_for = harness.wait_for


wait_listening = harness.wait_listening


# --- a minimal FastCGI client (responder role), for exact control -----------

FCGI_BEGIN_REQUEST, FCGI_END_REQUEST, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT = 1, 3, 4, 5, 6
FCGI_STDERR = 7


def fcgi_record(rtype, content=b"", req_id=1):
    return struct.pack("!BBHHBx", 1, rtype, req_id, len(content), 0) + content


def fcgi_params(params):
    out = b""
    for k, v in params.items():
        # a str holding surrogateescape'd bytes (not UTF-8) goes as those bytes
        k, v = k.encode(), v.encode("utf-8", "surrogateescape")
        for n in (len(k), len(v)):
            out += bytes([n]) if n < 128 else struct.pack("!I", n | 0x80000000)
        out += k + v
    return fcgi_record(FCGI_PARAMS, out) + fcgi_record(FCGI_PARAMS)


def fcgi_stdin(data):
    out = b""
    for i in range(0, len(data), 32768):
        out += fcgi_record(FCGI_STDIN, data[i:i + 32768])
    return out


open_sockets = harness.open_sockets


def fcgi_read_response(sock, stderr=None):
    """Read records until END_REQUEST; returns (stdout bytes, app status).
    stderr, a list, gets the FCGI_STDERR contents (the log lines)."""
    buf, stdout = b"", b""

    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError("FastCGI connection closed before END_REQUEST")
            buf += chunk
    while True:
        need(8)
        _, rtype, _, clen, plen = struct.unpack("!BBHHBx", buf[:8])
        need(8 + clen + plen)
        content, buf = buf[8:8 + clen], buf[8 + clen + plen:]
        if rtype == FCGI_STDOUT:
            stdout += content
        elif rtype == FCGI_STDERR and stderr is not None:
            stderr.append(content)
        elif rtype == FCGI_END_REQUEST:
            return stdout, struct.unpack("!I", content[:4])[0]


class FcgiCase(harness.EnvelopeChecks, unittest.TestCase):
    """The answer and log checks (assert_multistatus, assert_error,
    assert_unavailable, assert_no_sanitizer) come from
    harness.EnvelopeChecks."""
    limits = None
    error_instance = PREFIX

    def setUp(self):
        self.sb = harness.Sandbox(limits=self.limits)
        self.token = self.sb.token()
        self.worker_logs = []
        self.servers = []   # the web servers of the test (new_lighttpd)

    def tearDown(self):
        # stop what we started (by PID; a server once its workers are gone),
        # then look at what the workers wrote
        try:
            for server in self.servers:
                server.stop()
            self.sb.stop_processes()
            text = self.all_logs()
        finally:
            self.sb.close()
        self.assert_no_sanitizer(text, "sanitizer report in the worker logs")

    def all_logs(self):
        text = "".join(server.log() for server in self.servers)
        for name in self.worker_logs:
            if os.path.exists(name):
                with open(name, errors="replace") as f:
                    text += f.read()
        return text

    def ids(self):
        return [r["Event_ID"] for r in self.sb.rows("SELECT Event_ID FROM Event ORDER BY Event_ID")]

    # --- logs ---------------------------------------------------------------

    @staticmethod
    def request_lines(text):
        return [l for l in text.splitlines() if "events-batch[" in l and " method=" in l]

    @staticmethod
    def pids(lines):
        return {re.search(r"events-batch\[(\d+)\]", l).group(1) for l in lines}

    # --- talking FastCGI ----------------------------------------------------

    def fcgi_env(self, body, **over):
        h = self.sb.headers(HTTP_AUTHORIZATION="Bearer " + self.token, **over)
        h["CONTENT_LENGTH"] = str(len(body))
        h["SERVER_PROTOCOL"] = "HTTP/1.1"
        h["GATEWAY_INTERFACE"] = "CGI/1.1"
        return h

    def cgi_fcgi(self, conn, body, **over):
        """One request through cgi-fcgi -bind -connect CONN."""
        if not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env.update(self.fcgi_env(body, **over))
        p = subprocess.run([CGI_FCGI, "-bind", "-connect", conn], input=body, env=env,
                           capture_output=True, timeout=harness.scaled(120))
        self.assertEqual(p.returncode, 0, p.stderr)
        # the request's log lines come as FastCGI stderr, which cgi-fcgi
        # passes to its own stderr, as a web server would to its error log
        with open(self.fcgi_stderr_log(), "ab") as f:
            f.write(p.stderr)
        return harness.parse_cgi(p.stdout)

    def fcgi_stderr_log(self):
        return os.path.join(self.sb.dir, "fcgi-stderr.log")

    def start_worker(self, argv, name, env=None):
        log = os.path.join(self.sb.dir, name + ".log")
        self.worker_logs.append(log)
        e = dict(os.environ) if env is None else env
        with open(log, "wb") as f:
            return self.sb.start(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=f, env=e), log

    def start_listen(self, address=None):
        """BINARY --listen ADDRESS --config CONF; returns (proc, conn, log)."""
        if address is None:
            port = harness.free_port()
            address = "127.0.0.1:%d" % port
        p, log = self.start_worker([harness.BINARY, "--listen", address,
                                    "--config", self.sb.conf_path], "listen")
        if address.startswith("/"):
            wait_for(lambda: os.path.exists(address) or p.poll() is not None,
                     what="the socket " + address)
        else:
            wait_listening(int(address.rsplit(":", 1)[1]), p)
        self.assertIsNone(p.poll(), "the worker exited at start-up")
        return p, address, log

    def read(self, path):
        with open(path, errors="replace") as f:
            return f.read()

    def worker_log(self, path):
        """A --listen or spawned worker's log: its own stderr, then the
        FastCGI stderr of the requests it served (the "server's" log)."""
        text = self.read(path)
        if os.path.exists(self.fcgi_stderr_log()):
            text += self.read(self.fcgi_stderr_log())
        return text


def new_lighttpd(test, **kw):
    """A lighttpd for test (an FcgiCase), its workers running as we do;
    test's tearDown reads its logs."""
    if harness.which("lighttpd") is None:
        test.skipTest("lighttpd not installed")
    lt = webservers.Lighttpd(test.sb, run_user=None, **kw)
    test.servers.append(lt)
    return lt


class LighttpdTest(FcgiCase):
    """Spawned FastCGI behind a real lighttpd, over real HTTP."""

    def put(self, lt, body, **kw):
        headers = {"Authorization": "Bearer " + self.token}
        headers.update(kw.pop("headers", {}))
        return lt.request(body, headers=headers, **kw)

    def test_batch_over_http_is_created_then_updated(self):
        lt = new_lighttpd(self, max_procs=1)
        batch = [harness.event(i, subject="s%d" % i) for i in (3, 1, 2)]
        r = self.put(lt, batch)
        self.assert_multistatus(r, [(3, 201), (1, 201), (2, 201)])
        self.assertEqual(self.ids(), [1, 2, 3])
        batch[0]["subject"] = "changed"
        r = self.put(lt, batch)
        self.assert_multistatus(r, [(3, 200), (1, 200), (2, 200)])
        self.assertEqual(self.sb.rows("SELECT Subject FROM Event WHERE Event_ID = 3")[0]["Subject"],
                         "changed")
        self.assertEqual(self.sb.rows("SELECT Update_User FROM Event WHERE Event_ID = 1")[0]
                         ["Update_User"], harness.USER)
        self.assertEqual(self.sb.count(), 3)

    def test_log_line_of_each_request_reaches_the_server_log(self):
        lt = new_lighttpd(self, max_procs=1)
        self.put(lt, [harness.event(9)])
        r = self.put(lt, [harness.event(9), harness.event(10), harness.event(11, reminder=1)])
        self.assert_multistatus(r, [(9, 200), (10, 201), (11, 400)])
        aid = r.json["debug"]["activityID"]
        wait_for(lambda: "activity=%s" % aid in lt.log(), what="the log line")
        lines = [l for l in self.request_lines(lt.log()) if "activity=%s" % aid in l]
        self.assertEqual(len(lines), 1, lt.log())
        for token in ("method=PUT", "db=test", "created=1", "updated=1", "failed=1",
                      "status=207"):
            self.assertRegex(lines[0], r"(^|\s)%s(\s|$)" % re.escape(token))
        self.assertRegex(lines[0], r"(^|\s)duration_ms=\d+(\.\d+)?(\s|$)")
        self.assertNotIn(harness.API_KEY, lt.log())
        self.assertNotIn(self.token, lt.log())

    def test_get_over_http_is_405_with_allow_put(self):
        lt = new_lighttpd(self, max_procs=1)
        self.put(lt, [harness.event(1, subject="kept")])
        before = self.sb.rows()
        batch = json.dumps([harness.event(1, subject="changed"), harness.event(2)]).encode()
        for method, body in (("GET", None), ("POST", batch), ("DELETE", batch),
                             ("PATCH", batch)):
            r = self.put(lt, body, method=method)
            self.assert_error(r, 405)
            self.assertEqual(r.headers.get("allow"), "PUT", method)
        self.assertEqual(self.sb.rows(), before)

    def test_chunked_request_body_over_http_is_accepted(self):
        lt = new_lighttpd(self, max_procs=1)
        body = json.dumps([harness.event(i) for i in range(1, 4)]).encode()
        c = http.client.HTTPConnection("127.0.0.1", lt.port, timeout=harness.scaled(120))
        try:
            c.request("PUT", PREFIX, body=iter([body[:10], body[10:]]), encode_chunked=True,
                      headers={"User-Agent": "eb-tests/1", "x-api-key": harness.API_KEY,
                               "Authorization": "Bearer " + self.token,
                               "vbasoftware-database": "test",
                               "Content-Type": "application/json"})
            resp = c.getresponse()
            r = harness.Response(resp.status, resp.getheaders(), resp.read())
        finally:
            c.close()
        self.assert_multistatus(r, [(1, 201), (2, 201), (3, 201)])
        self.assertEqual(self.ids(), [1, 2, 3])

    def test_paths_under_the_prefix(self):
        lt = new_lighttpd(self, max_procs=1)
        for path in (PREFIX + "/extra", PREFIX + "x", PREFIX + "/extra?q=/events-batch"):
            r = self.put(lt, [harness.event(1)], path=path)
            self.assert_error(r, 404, instance=path.split("?")[0])
        self.assertEqual(self.sb.count(), 0)
        r = self.put(lt, [harness.event(1)], path=PREFIX + "?trace=1")
        self.assert_multistatus(r, [(1, 201)])
        r = self.put(lt, [harness.event(2)], path=PREFIX + "/")
        self.assert_multistatus(r, [(2, 201)])
        self.assertEqual(self.ids(), [1, 2])

    def test_any_prefix_works_behind_the_server(self):
        lt = new_lighttpd(self, max_procs=1, prefix="/svc/")
        r = self.put(lt, [harness.event(4)], path="/svc/v2/tenant-a/events-batch")
        self.assert_multistatus(r, [(4, 201)])
        r = self.put(lt, [harness.event(5)], path="/svc/v2/other")
        self.assert_error(r, 404, instance="/svc/v2/other")
        self.assertEqual(self.ids(), [4])

    def test_database_connection_is_reused_across_requests(self):
        lt = new_lighttpd(self, max_procs=1)
        statuses = []
        for i in range(6):
            statuses.append(self.put(lt, [harness.event(i % 3)]).status)
        statuses.append(self.put(lt, b"[oops").status)
        statuses.append(self.put(lt, [harness.event(1)]).status)
        self.assertEqual(statuses, [207] * 6 + [400, 207])
        wait_for(lambda: len(self.request_lines(lt.log())) == 8, what="8 log lines")
        log = lt.log()
        self.assertEqual(len(re.findall(r"database test: connected", log)), 1, log)
        self.assertEqual(len(self.pids(self.request_lines(log))), 1, log)
        self.assertEqual(self.ids(), [0, 1, 2])

    def test_invalid_body_over_http_is_400_and_writes_nothing(self):
        lt = new_lighttpd(self, max_procs=1)
        self.put(lt, [harness.event(1)])
        before = self.sb.rows()
        for body in (b"", b"{}", b"[1,", b"\xff[]", b"[" * 100000):
            r = self.put(lt, body)
            self.assert_error(r, 400)
        r = self.put(lt, [harness.event(1, subject="x")],
                     headers={"Content-Type": "text/plain"})
        self.assert_error(r, 415)
        self.assertEqual(self.sb.rows(), before)


class LighttpdLimitsTest(FcgiCase):
    limits = {"max_batch_items": 3, "max_body_bytes": 4096}

    def put(self, lt, body, **kw):
        return lt.request(body, headers={"Authorization": "Bearer " + self.token}, **kw)

    def test_batch_over_max_batch_items_is_413_and_the_worker_keeps_serving(self):
        lt = new_lighttpd(self, max_procs=1)
        r = self.put(lt, [harness.event(1)])
        self.assert_multistatus(r, [(1, 201)])
        r = self.put(lt, [harness.event(i) for i in range(2, 6)])
        self.assert_error(r, 413)
        r = self.put(lt, [harness.event(2)])
        self.assert_multistatus(r, [(2, 201)])
        self.assertEqual(self.ids(), [1, 2])
        self.assertEqual(len(self.pids(self.request_lines(lt.log()))), 1, lt.log())

    def test_body_over_max_body_bytes_is_413_and_the_worker_keeps_serving(self):
        lt = new_lighttpd(self, max_procs=1)
        body = json.dumps([harness.event(1, meta_Data="x" * 5000)]).encode()
        r = self.put(lt, body)
        self.assert_error(r, 413)
        r = self.put(lt, [harness.event(2)])
        self.assert_multistatus(r, [(2, 201)])
        self.assertEqual(self.ids(), [2])
        self.assertEqual(len(self.pids(self.request_lines(lt.log()))), 1, lt.log())


class ConcurrencyTest(FcgiCase):
    """SPEC §7: several workers write at once; no item fails for a lock."""

    THREADS, BATCHES, SIZE = 8, 10, 200

    def test_concurrent_batches_from_many_clients_all_succeed(self):
        lt = new_lighttpd(self, max_procs=4)
        headers = {"Authorization": "Bearer " + self.token}
        plan = {}
        for t in range(self.THREADS):
            for b in range(self.BATCHES):
                start = ((t + b) % 8) * 100
                plan[(t, b)] = [harness.event(i, subject="t%d-b%d" % (t, b), userGroup_Key=t,
                                              completion_Percent=b / 10)
                                for i in range(start, start + self.SIZE)]
        distinct = {e["event_ID"] for batch in plan.values() for e in batch}
        results, errors = {}, []
        barrier = threading.Barrier(self.THREADS)

        def client(t):
            try:
                barrier.wait(harness.scaled(30))
                for b in range(self.BATCHES):
                    results[(t, b)] = lt.request(plan[(t, b)], headers=headers)
            except Exception as e:  # reported below, in the test's thread
                errors.append("thread %d: %r" % (t, e))
        threads = [threading.Thread(target=client, args=(t,)) for t in range(self.THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(240)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), self.THREADS * self.BATCHES)
        created = 0
        for key, r in sorted(results.items()):
            self.assertEqual(r.status, 207, "%r: %r" % (key, r))
            data = r.json["data"]
            self.assertEqual([d["id"][0]["value"] for d in data],
                             [e["event_ID"] for e in plan[key]])
            self.assertLessEqual({d["status"] for d in data}, {200, 201}, key)
            created += sum(d["status"] == 201 for d in data)
        self.assertEqual(self.sb.count(), len(distinct))
        self.assertEqual(set(self.ids()), distinct)
        self.assertEqual(created, len(distinct))
        # every row holds the values of one whole item that was sent for it
        for row in self.sb.rows("SELECT Event_ID, Subject, UserGroup_Key, Completion_Percent "
                                "FROM Event"):
            m = re.fullmatch(r"t(\d+)-b(\d+)", row["Subject"])
            self.assertIsNotNone(m, row)
            t, b = int(m.group(1)), int(m.group(2))
            self.assertEqual((row["UserGroup_Key"], row["Completion_Percent"]), (t, b / 10))
            self.assertIn(row["Event_ID"], [e["event_ID"] for e in plan[(t, b)]])
        log = lt.log()
        lines = self.request_lines(log)
        self.assertEqual(len(lines), self.THREADS * self.BATCHES)
        self.assertGreater(len(self.pids(lines)), 1, "only one worker served: no concurrency")
        self.assertNotIn("status=503", log)


class ThreadsTest(FcgiCase):
    """[limits] threads: one worker process serves that many requests at
    once, each thread with its own database connection."""

    def setUp(self):
        super().setUp()
        if CGI_FCGI is None:
            self.skipTest("cgi-fcgi (libfcgi-bin) not installed")

    def stall(self, p, conn, body):
        """A client that sends a request's head and 100 bytes of its body
        (longer than that), then waits, once worker p has accepted it;
        returns its socket."""
        if not os.path.isdir("/proc/%d/fd" % p.pid):
            self.skipTest("no /proc")

        def sockets():
            return open_sockets(p.pid)
        self.assertGreater(len(body), 100)
        idle = sockets()
        host, port = conn.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=harness.scaled(60))
        self.addCleanup(s.close)
        s.sendall(fcgi_record(FCGI_BEGIN_REQUEST, struct.pack("!HB5x", 1, 0)) +
                  fcgi_params(self.fcgi_env(body)) + fcgi_stdin(body[:100]))
        wait_for(lambda: sockets() > idle, what="the worker to accept the stalling client")
        return s

    def test_one_worker_serves_another_request_while_a_client_stalls(self):
        self.sb.write_config(limits={"threads": 2})
        p, conn, log = self.start_listen()
        body = json.dumps([harness.event(i, subject="slow") for i in (10, 11)]).encode()
        s = self.stall(p, conn, body)
        # the other thread answers while the first waits for the body
        r = self.cgi_fcgi(conn, [harness.event(1)])
        self.assert_multistatus(r, [(1, 201)])
        s.sendall(fcgi_stdin(body[100:]) + fcgi_record(FCGI_STDIN))
        out, _ = fcgi_read_response(s)
        self.assert_multistatus(harness.parse_cgi(out), [(10, 201), (11, 201)])
        self.assertEqual(self.ids(), [1, 10, 11])
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(harness.scaled(10)), 0)

    def test_with_one_thread_requests_are_served_one_at_a_time(self):
        self.sb.write_config(limits={"threads": 1})
        p, conn, log = self.start_listen()
        body = json.dumps([harness.event(10, subject="s" * 200)]).encode()
        s = self.stall(p, conn, body)
        result = []

        def second():
            try:
                result.append(self.cgi_fcgi(conn, [harness.event(1)]))
            except Exception as e:  # reported below, in the test's thread
                result.append(e)
        waiting = threading.Thread(target=second, daemon=True)
        waiting.start()
        waiting.join(harness.scaled(2))
        self.assertTrue(waiting.is_alive(), "answered while the only thread was busy: %r"
                        % result)
        s.sendall(fcgi_stdin(body[100:]) + fcgi_record(FCGI_STDIN))
        out, _ = fcgi_read_response(s)
        self.assert_multistatus(harness.parse_cgi(out), [(10, 201)])
        waiting.join(harness.scaled(30))
        self.assert_multistatus(result[0], [(1, 201)])

    def test_concurrent_batches_of_one_worker_all_succeed(self):
        """8 clients, one worker of 4 threads: every item stored once,
        created counted once per id, no 503 for a lock."""
        self.sb.write_config(limits={"threads": 4})
        p, conn, log = self.start_listen()
        results, errors = {}, []

        def client(t):
            try:
                for b in range(5):
                    batch = [harness.event(i, subject="t%d" % t) for i in range(b * 20, b * 20 + 40)]
                    results[(t, b)] = self.cgi_fcgi(conn, batch)
            except Exception as e:  # reported below, in the test's thread
                errors.append("client %d: %r" % (t, e))
        threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(harness.scaled(120))
        self.assertEqual(errors, [])
        created = 0
        for key, r in results.items():
            self.assertEqual(r.status, 207, "%r: %r" % (key, r))
            self.assertLessEqual({d["status"] for d in r.json["data"]}, {200, 201}, key)
            created += sum(d["status"] == 201 for d in r.json["data"])
        self.assertEqual(len(results), 40)
        self.assertEqual(self.ids(), list(range(0, 120)))
        self.assertEqual(created, 120)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(harness.scaled(10)), 0)


class DatabaseGoneTest(FcgiCase):
    """SPEC §4 row 12 and §7: the database goes away between requests."""

    def setUp(self):
        super().setUp()
        self.data = os.path.join(self.sb.dir, "data")
        self.away = os.path.join(self.sb.dir, "data.away")
        os.mkdir(self.data)
        self.sb.db_path = os.path.join(self.data, "events.db")
        harness.Sandbox.create_db(self.sb.db_path)
        self.sb.write_config(databases={
            "test": "Driver=SQLite3;Database=%s;NoCreat=1" % self.sb.db_path})

    def put(self, lt, body):
        return lt.request(body, headers={"Authorization": "Bearer " + self.token})

    def rows_in(self, directory):
        con = sqlite3.connect(os.path.join(directory, "events.db"), timeout=30)
        try:
            return [r[0] for r in con.execute("SELECT Event_ID FROM Event ORDER BY Event_ID")]
        finally:
            con.close()

    def test_database_missing_at_first_use_is_503_then_served_by_the_same_worker(self):
        lt = new_lighttpd(self, max_procs=1)
        r = lt.request(None, method="GET")  # the worker is up, no database yet
        self.assert_error(r, 405)
        os.rename(self.data, self.away)
        try:
            r = self.put(lt, [harness.event(1), harness.event(2)])
            self.assert_unavailable(r)
            r = self.put(lt, [harness.event(3)])
            self.assert_unavailable(r)
            self.assertFalse(os.path.exists(self.data), "the database was created elsewhere")
            self.assertEqual(self.rows_in(self.away), [])
        finally:
            os.rename(self.away, self.data)
        r = self.put(lt, [harness.event(1), harness.event(2)])
        self.assert_multistatus(r, [(1, 201), (2, 201)])
        self.assertEqual(self.ids(), [1, 2])
        log = lt.log()
        self.assertEqual(len(self.pids(self.request_lines(log))), 1, log)
        self.assertEqual([re.search(r" status=(\d+)", l).group(1)
                          for l in self.request_lines(log)], ["405", "503", "503", "207"], log)

    def test_listen_worker_survives_an_unreachable_database(self):
        p, conn, log = self.start_listen()
        os.rename(self.data, self.away)
        try:
            r = self.cgi_fcgi(conn, [harness.event(1)])
            self.assert_unavailable(r)
        finally:
            os.rename(self.away, self.data)
        self.assertIsNone(p.poll(), "the worker exited")
        r = self.cgi_fcgi(conn, [harness.event(1)])
        self.assert_multistatus(r, [(1, 201)])
        self.assertEqual(self.ids(), [1])
        self.assertEqual(len(self.pids(self.request_lines(self.worker_log(log)))), 1)


class HostileInputTest(FcgiCase):
    """Hostile input sent to a --listen worker by the FastCGI client above
    (exact bytes in the params): each request gets the status of the check
    that fails it, writes nothing, and the same worker serves a good
    request right after it."""

    def setUp(self):
        super().setUp()
        if CGI_FCGI is None:
            self.skipTest("cgi-fcgi (libfcgi-bin) not installed")
        self.proc, self.conn, self.log = self.start_listen()
        r = self.cgi_fcgi(self.conn, [harness.event(1, subject="seeded")])
        self.assert_multistatus(r, [(1, 201)])
        self.next_id = 100

    def raw_request(self, body, **over):
        """One request with the good request's params changed by over
        (CONTENT_LENGTH too), the body and the end of stdin in one send."""
        if not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        params = self.fcgi_env(body)
        params.update(over)
        params = {k: v for k, v in params.items() if v is not None}
        host, port = self.conn.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=harness.scaled(60))
        try:
            s.sendall(fcgi_record(FCGI_BEGIN_REQUEST, struct.pack("!HB5x", 1, 0)) +
                      fcgi_params(params) + fcgi_stdin(body) + fcgi_record(FCGI_STDIN))
            err = []
            out, _ = fcgi_read_response(s, err)
        finally:
            s.close()
        # the log lines, where cgi_fcgi puts those of the requests it sends
        with open(self.fcgi_stderr_log(), "ab") as f:
            f.write(b"".join(err))
        return harness.parse_cgi(out)

    def assert_refused_then_served(self, status, body=None, instance=None, **over):
        before = self.sb.rows()
        r = self.raw_request([harness.event(1, subject="changed"), harness.event(2)]
                             if body is None else body, **over)
        self.assert_error(r, status, instance)
        self.assertEqual(self.sb.rows(), before, "a refused request changed the database")
        self.next_id += 1
        good = self.cgi_fcgi(self.conn, [harness.event(self.next_id)])
        self.assert_multistatus(good, [(self.next_id, 201)])
        self.assertIsNone(self.proc.poll(), "the worker exited")
        lines = self.request_lines(self.worker_log(self.log))
        self.assertEqual(self.pids(lines), {str(self.proc.pid)})
        return r

    def test_headers_are_found_among_many_params_and_a_near_name_is_not_one(self):
        # the worker finds params by a hash of their names (up to 96 of
        # them; more go to libfcgi's own lookup): the right one among 40 and
        # among 150 others, none that only looks like one
        for extra in (40, 150):
            with self.subTest(extra=extra):
                pad = {"HTTP_X_PAD_%d" % i: "v%d" % i for i in range(extra)}
                pad["HTTP_X_API_KEYS"] = "a near name"
                pad["HTTP_X_API_KE"] = "another"
                self.next_id += 1
                r = self.raw_request([harness.event(self.next_id)], **pad)
                self.assert_multistatus(r, [(self.next_id, 201)])
                r = self.raw_request([harness.event(self.next_id)], HTTP_X_API_KEY=None, **pad)
                self.assert_error(r, 401)
                r = self.raw_request([harness.event(self.next_id)], HTTP_USER_AGENT=None,
                                     HTTP_USER_AGENTS="eb-tests/1", **pad)
                self.assert_error(r, 403)
        self.assertIsNone(self.proc.poll(), "the worker exited")

    def test_path_over_2048_bytes_is_414(self):
        attack = "/" + "a" * 2033 + "/events-batch/../../admin"
        r = self.assert_refused_then_served(414, instance=attack[:2048], SCRIPT_NAME=attack)
        self.assertEqual(r.json["error"]["type"], "urn:events-batch:uri-too-long")
        self.assert_refused_then_served(414, instance=attack[:2048], SCRIPT_NAME="",
                                        REQUEST_URI=attack)

    def test_path_bytes_that_are_not_utf8_keep_the_status_of_the_failing_check(self):
        for raw, over, status in ((b"/\xff/events-batch", {"REQUEST_METHOD": "GET"}, 405),
                                  (b"/\xc0\xaf/events-batch", {"HTTP_X_API_KEY": "nope"}, 401),
                                  (b"/\xed\xa0\x80", {}, 404)):
            with self.case(path=raw):
                r = self.assert_refused_then_served(
                    status, instance=raw.decode("utf-8", "replace"),
                    SCRIPT_NAME=raw.decode("utf-8", "surrogateescape"), **over)
                if status == 401:
                    self.assertEqual(r.headers.get("www-authenticate"),
                                     'Bearer realm="events-batch"')
        text = self.worker_log(self.log)
        self.assertEqual([re.search(r" status=(\d+)", l).group(1)
                          for l in self.request_lines(text)][-6::2], ["405", "401", "404"], text)

    def test_tokens_with_crit_a_nul_in_the_payload_or_too_long_a_life_are_401(self):
        for name, token in self.sb.flawed_tokens()[1:]:  # the good one aside
            with self.case(token=name):
                r = self.assert_refused_then_served(401, HTTP_AUTHORIZATION="Bearer " + token)
                self.assertEqual(r.headers.get("www-authenticate"),
                                 'Bearer realm="events-batch", error="invalid_token"')

    def test_nesting_one_level_past_jansson_limit_is_400_for_the_whole_body(self):
        r = self.assert_refused_then_served(400, body=b"[" + b"[" * 2048 + b"]" * 2048 + b"]")
        self.assertIn("maximum parsing depth reached", r.json["error"]["detail"])

    def test_content_length_of_any_number_of_digits_over_the_limit_is_413(self):
        for length in (str(2 ** 64), "9" * 30):
            with self.case(content_length=length):
                self.assert_refused_then_served(413, CONTENT_LENGTH=length)


class ListenTest(FcgiCase):
    """Standalone FastCGI (--listen) and spawn-fcgi, spoken to with cgi-fcgi."""

    def setUp(self):
        super().setUp()
        if CGI_FCGI is None:
            self.skipTest("cgi-fcgi (libfcgi-bin) not installed")

    def test_listen_on_tcp_port_serves_requests(self):
        p, conn, log = self.start_listen()
        r = self.cgi_fcgi(conn, [harness.event(1), harness.event(2, subject="two")])
        self.assert_multistatus(r, [(1, 201), (2, 201)])
        r = self.cgi_fcgi(conn, [harness.event(2), harness.event(3)])
        self.assert_multistatus(r, [(2, 200), (3, 201)])
        self.assertEqual(self.ids(), [1, 2, 3])
        self.assertIsNone(self.sb.rows("SELECT Subject FROM Event WHERE Event_ID = 2")[0]["Subject"])
        r = self.cgi_fcgi(conn, [harness.event(4)], REQUEST_METHOD="GET")
        self.assert_error(r, 405)
        self.assertEqual(r.headers.get("allow"), "PUT")
        text = self.worker_log(log)
        self.assertEqual(len(self.request_lines(text)), 3, text)
        self.assertEqual(text.count("database test: connected"), 1, text)
        self.assertEqual(self.ids(), [1, 2, 3])

    def test_listen_on_unix_socket_path_serves_requests(self):
        sock = os.path.join(self.sb.dir, "eb-listen.sock")
        p, conn, log = self.start_listen(sock)
        r = self.cgi_fcgi(sock, [harness.event(7)])
        self.assert_multistatus(r, [(7, 201)])
        r = self.cgi_fcgi(sock, [harness.event(7)])
        self.assert_multistatus(r, [(7, 200)])
        self.assertEqual(self.ids(), [7])
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(harness.scaled(10)), 0)

    def test_listen_worker_answers_413_for_a_large_body_and_keeps_serving(self):
        self.sb.write_config(limits={"max_body_bytes": 4096})
        p, conn, log = self.start_listen()
        big = json.dumps([harness.event(1, meta_Data="x" * 20000)]).encode()
        r = self.cgi_fcgi(conn, big)
        self.assert_error(r, 413)
        r = self.cgi_fcgi(conn, [harness.event(2)])
        self.assert_multistatus(r, [(2, 201)])
        self.assertEqual(self.ids(), [2])
        self.assertIsNone(p.poll())

    def test_client_gone_mid_body_leaves_the_worker_serving_and_writes_nothing(self):
        p, conn, log = self.start_listen()
        host, port = conn.rsplit(":", 1)
        body = json.dumps([harness.event(i) for i in range(1, 51)]).encode()
        s = socket.create_connection((host, int(port)), timeout=harness.scaled(60))
        s.sendall(fcgi_record(FCGI_BEGIN_REQUEST, struct.pack("!HB5x", 1, 0)) +
                  fcgi_params(self.fcgi_env(body)) + fcgi_stdin(body[:100]))
        s.close()
        r = self.cgi_fcgi(conn, [harness.event(99)])
        self.assert_multistatus(r, [(99, 201)])
        self.assertIsNone(p.poll(), "the worker exited")
        self.assertEqual(self.ids(), [99])
        # the broken request's own log line went out as FastCGI stderr on
        # the dead connection; the next one arrives, from the same worker
        lines = self.request_lines(self.worker_log(log))
        self.assertEqual(len(self.pids(lines)), 1)
        self.assertRegex(lines[-1], r"(^|\s)status=207(\s|$)")

    def test_body_shorter_than_content_length_over_fastcgi_is_400(self):
        p, conn, _ = self.start_listen()
        host, port = conn.rsplit(":", 1)
        body = json.dumps([harness.event(i) for i in range(1, 51)]).encode()
        s = socket.create_connection((host, int(port)), timeout=harness.scaled(60))
        try:
            s.sendall(fcgi_record(FCGI_BEGIN_REQUEST, struct.pack("!HB5x", 1, 0)) +
                      fcgi_params(self.fcgi_env(body)) + fcgi_stdin(body[:100]) +
                      fcgi_record(FCGI_STDIN))
            out, _ = fcgi_read_response(s)
        finally:
            s.close()
        self.assert_error(harness.parse_cgi(out), 400)
        self.assertEqual(self.sb.count(), 0)
        r = self.cgi_fcgi(conn, [harness.event(1)])
        self.assert_multistatus(r, [(1, 201)])

    def test_spawn_fcgi_spawned_worker_serves_requests(self):
        if SPAWN_FCGI is None:
            self.skipTest("spawn-fcgi not installed")
        port = harness.free_port()
        env = dict(os.environ, EVENTS_BATCH_CONFIG=self.sb.conf_path)
        p, log = self.start_worker([SPAWN_FCGI, "-n", "-a", "127.0.0.1", "-p", str(port),
                                    "--", harness.BINARY], "spawned", env=env)
        wait_listening(port, p)
        conn = "127.0.0.1:%d" % port
        r = self.cgi_fcgi(conn, [harness.event(1)])
        self.assert_multistatus(r, [(1, 201)])
        r = self.cgi_fcgi(conn, [harness.event(1), harness.event(2)])
        self.assert_multistatus(r, [(1, 200), (2, 201)])
        self.assertEqual(self.ids(), [1, 2])
        text = self.worker_log(log)
        self.assertEqual(text.count("database test: connected"), 1, text)
        # spawn-fcgi -n execs the program: this is the worker itself
        self.assertEqual(self.pids(self.request_lines(text)), {str(p.pid)})
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(harness.scaled(10)), 0)

    def test_bad_config_stops_listen_mode_with_file_and_line(self):
        with open(self.sb.conf_path, "a") as f:
            f.write("[bogus]\n")
        n = len(open(self.sb.conf_path).read().splitlines())
        port = harness.free_port()
        p = subprocess.run([harness.BINARY, "--listen", "127.0.0.1:%d" % port,
                            "--config", self.sb.conf_path], capture_output=True, timeout=harness.scaled(30),
                           stdin=subprocess.DEVNULL)
        err = p.stderr.decode("utf-8", "replace")
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(err, r"(?m)^%s:%d: \S" % (re.escape(self.sb.conf_path), n))
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


class SignalTest(FcgiCase):
    """SPEC §2: SIGTERM / SIGUSR1 finish the request in flight, then exit 0."""

    def setUp(self):
        super().setUp()
        if CGI_FCGI is None:
            self.skipTest("cgi-fcgi (libfcgi-bin) not installed")

    def test_sigterm_to_an_idle_listen_worker_exits_0(self):
        p, conn, _ = self.start_listen()
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(harness.scaled(10)), 0)
        # after it has served and holds a database connection
        p, conn, _ = self.start_listen()
        r = self.cgi_fcgi(conn, [harness.event(1)])
        self.assert_multistatus(r, [(1, 201)])
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(harness.scaled(10)), 0)
        self.assertEqual(self.ids(), [1])

    def test_sigterm_after_a_connection_closed_without_a_request_exits_0(self):
        """A TCP probe (load balancer health check, a client that gives up)
        must not leave the worker deaf to SIGTERM."""
        p, conn, _ = self.start_listen()
        r = self.cgi_fcgi(conn, [harness.event(1)])
        self.assert_multistatus(r, [(1, 201)])
        host, port = conn.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=harness.scaled(30))
        try:
            s.shutdown(socket.SHUT_WR)
            # the worker accepted, read EOF and closed its side: it is done
            # with this connection and idle again
            self.assertEqual(s.recv(100), b"")
        finally:
            s.close()
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(harness.scaled(10))
        except subprocess.TimeoutExpired:
            rc = "still running 10 s after SIGTERM"
            p.kill()
            p.wait()
        self.assertEqual(rc, 0)
        self.assertEqual(self.ids(), [1])

    def test_sigusr1_to_an_idle_listen_worker_exits_0(self):
        p, conn, _ = self.start_listen()
        r = self.cgi_fcgi(conn, [harness.event(1)])
        self.assert_multistatus(r, [(1, 201)])
        p.send_signal(signal.SIGUSR1)
        self.assertEqual(p.wait(harness.scaled(10)), 0)

    def test_sigterm_during_a_request_finishes_it_then_exits_0(self):
        p, conn, log = self.start_listen()
        r = self.cgi_fcgi(conn, [harness.event(1)])  # connected to the database
        self.assert_multistatus(r, [(1, 201)])
        if not os.path.isdir("/proc/%d/fd" % p.pid):
            self.skipTest("no /proc")

        def sockets():
            return open_sockets(p.pid)
        # idle: the listening socket only (the last connection is closed)
        wait_for(lambda: sockets() == 1, what="the worker to close the last connection")
        body = json.dumps([harness.event(i, subject="in flight") for i in range(1, 51)]).encode()
        host, port = conn.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=harness.scaled(60))
        try:
            s.sendall(fcgi_record(FCGI_BEGIN_REQUEST, struct.pack("!HB5x", 1, 0)) +
                      fcgi_params(self.fcgi_env(body)) + fcgi_stdin(body[:100]))
            # the worker has accepted the connection: the request is in flight
            wait_for(lambda: sockets() >= 2, what="the accept")
            p.send_signal(signal.SIGTERM)
            s.sendall(fcgi_stdin(body[100:]) + fcgi_record(FCGI_STDIN))
            out, app_status = fcgi_read_response(s)
        finally:
            s.close()
        r = harness.parse_cgi(out)
        self.assert_multistatus(r, [(1, 200)] + [(i, 201) for i in range(2, 51)])
        self.assertEqual(p.wait(harness.scaled(10)), 0)
        self.assertEqual(self.sb.count(), 50)
        self.assertEqual(self.sb.rows("SELECT COUNT(*) AS n FROM Event WHERE Subject = 'in flight'")
                         [0]["n"], 50)


if __name__ == "__main__":
    harness.main()
