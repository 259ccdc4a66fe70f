"""FastCGI connections that are slow, silent, kept or hostile (SPEC §2):
read_timeout_seconds closes a connection that brings no complete request,
or whose body stalls, and writes nothing of it; silent connections cost no
thread; a connection the web server keeps (FCGI_KEEP_CONN) has its next
request served at once; a stop signal cuts a stalled read after a second.

The client is the small FastCGI client of test_fastcgi.py, talking to
`--listen` workers on 127.0.0.1; every process is stopped by its PID.
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_fastcgi import (CGI_FCGI, FCGI_BEGIN_REQUEST, FcgiCase, fcgi_params,  # noqa: E402
                          fcgi_read_response, fcgi_record, fcgi_stdin, open_sockets,
                          wait_listening)

FCGI_KEEP_CONN = 1
# short, so that a test sees the timeout; scaled, so that valgrind's slow
# worker still reads a good request's head well inside it
TIMEOUT = max(2, int(harness.scaled(2)))


class ConnectionCase(FcgiCase):
    threads = 1

    def setUp(self):
        super().setUp()
        if CGI_FCGI is None:
            self.skipTest("cgi-fcgi (libfcgi-bin) not installed")
        if not os.path.isdir("/proc/self/fd"):
            self.skipTest("no /proc")
        self.sb.write_config(limits={"threads": self.threads,
                                     "read_timeout_seconds": self.read_timeout})
        self.proc, self.conn, self.log = self.start_listen()

    read_timeout = TIMEOUT

    def connect(self):
        host, port = self.conn.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=harness.scaled(60))
        self.addCleanup(s.close)
        return s

    def request_bytes(self, body, keep=False, **over):
        return (fcgi_record(FCGI_BEGIN_REQUEST, struct.pack("!HB5x", 1, FCGI_KEEP_CONN if keep
                                                            else 0)) +
                fcgi_params(self.fcgi_env(body, **over)))

    def whole_request(self, items, keep=False, **over):
        body = json.dumps(items).encode()
        return self.request_bytes(body, keep, **over) + fcgi_stdin(body) + fcgi_record(5)

    def sockets(self):
        return open_sockets(self.proc.pid)

    def wait_closed_by_worker(self, s, timeout):
        """The worker closes s (EOF, or a reset) within timeout seconds;
        returns what it sent before."""
        s.settimeout(harness.scaled(timeout))
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return got
                got += chunk
        except ConnectionResetError:
            return got
        except socket.timeout:
            self.fail("the worker left the connection open for %d s" % timeout)

    def assert_still_serves(self, eid=1):
        r = self.cgi_fcgi(self.conn, [harness.event(eid)])
        self.assert_multistatus(r, [(eid, 201)])

    def assert_nothing_but(self, ids):
        self.assertEqual(self.ids(), ids)

    def stop_and_assert_0(self):
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(harness.scaled(10)), 0)


class StalledTest(ConnectionCase):
    """read_timeout_seconds: one thread, so a stalled client would stop the
    worker without it."""

    def test_a_stalled_body_is_closed_and_writes_nothing(self):
        body = json.dumps([harness.event(i, subject="s" * 300) for i in range(10, 40)]).encode()
        self.assertGreater(len(body), 9900)
        s = self.connect()
        s.sendall(self.request_bytes(body[:9900]) + fcgi_stdin(body[:100]))
        self.wait_closed_by_worker(s, TIMEOUT + 30)
        self.assert_still_serves()
        self.assert_nothing_but([1])
        self.assertIn("closed a connection whose request stalled for %d s" % TIMEOUT,
                      self.worker_log(self.log))
        self.stop_and_assert_0()

    def test_half_a_record_header_is_closed(self):
        s = self.connect()
        s.sendall(fcgi_record(FCGI_BEGIN_REQUEST, struct.pack("!HB5x", 1, 0))[:4])
        self.assertEqual(self.wait_closed_by_worker(s, TIMEOUT + 30), b"")
        self.assert_still_serves()
        self.assert_nothing_but([1])
        self.assertIn("closed a connection that brought no complete request in %d s" % TIMEOUT,
                      self.worker_log(self.log))
        self.stop_and_assert_0()

    def test_params_that_never_end_are_closed(self):
        body = json.dumps([harness.event(5)]).encode()
        head = self.request_bytes(body)
        s = self.connect()
        s.sendall(head[:-8])  # all but the empty PARAMS record that ends them
        self.assertEqual(self.wait_closed_by_worker(s, TIMEOUT + 30), b"")
        self.assert_still_serves()
        self.assert_nothing_but([1])
        self.stop_and_assert_0()

    def test_a_silent_connection_is_closed_after_the_timeout(self):
        s = self.connect()
        self.assertEqual(self.wait_closed_by_worker(s, TIMEOUT + 30), b"")
        self.stop_and_assert_0()

    def test_a_slow_body_that_keeps_coming_is_served(self):
        """The timeout is on silence, not on the whole upload: a body that
        arrives in pieces, each within the timeout, is stored."""
        items = [harness.event(i, subject="slow") for i in range(20, 23)]
        body = json.dumps(items).encode()
        s = self.connect()
        s.sendall(self.request_bytes(body))
        pieces = [body[i:i + 100] for i in range(0, len(body), 100)][:4]
        sent = 0
        for piece in pieces:
            time.sleep(TIMEOUT * 0.4)
            s.sendall(fcgi_stdin(piece))
            sent += len(piece)
        s.sendall(fcgi_stdin(body[sent:]) + fcgi_record(5))
        out, _ = fcgi_read_response(s)
        self.assert_multistatus(harness.parse_cgi(out), [(i, 201) for i in range(20, 23)])
        self.stop_and_assert_0()


class StopDuringStallTest(ConnectionCase):
    """A stop signal while a request's bytes are still arriving: they get
    one second more, then the wait ends, nothing is written, exit 0 (the
    read timeout, 300 s here, is not what ends it)."""
    read_timeout = 300

    def test_sigterm_during_a_stalled_body_exits_0_at_once(self):
        self.assert_still_serves()
        body = json.dumps([harness.event(i, subject="s" * 300) for i in range(10, 40)]).encode()
        s = self.connect()
        idle = self.sockets()
        s.sendall(self.request_bytes(body) + fcgi_stdin(body[:100]))
        harness.wait_for(lambda: self.sockets() > idle or self.sockets() >= 2,
                         what="the worker to accept the stalling client")
        time.sleep(0.3)  # the thread is waiting for the rest of the body
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(harness.scaled(15))
        except subprocess.TimeoutExpired:
            rc = "still running 15 s after SIGTERM"
        took = time.monotonic() - began
        self.assertEqual(rc, 0)
        self.assertLess(took, 60, "the read timeout, not the stop, ended the wait")
        self.assert_nothing_but([1])
        self.assertIn("stop signal SIGTERM", self.worker_log(self.log))

    def test_a_request_completed_within_the_grace_second_is_served(self):
        self.assert_still_serves()
        items = [harness.event(i, subject="in flight") for i in range(10, 13)]
        body = json.dumps(items).encode()
        s = self.connect()
        s.sendall(self.request_bytes(body) + fcgi_stdin(body[:50]))
        harness.wait_for(lambda: self.sockets() >= 2, what="the accept")
        time.sleep(0.2)
        self.proc.send_signal(signal.SIGTERM)
        s.sendall(fcgi_stdin(body[50:]) + fcgi_record(5))
        out, _ = fcgi_read_response(s)
        self.assert_multistatus(harness.parse_cgi(out), [(i, 201) for i in range(10, 13)])
        self.assertEqual(self.proc.wait(harness.scaled(10)), 0)
        self.assert_nothing_but([1, 10, 11, 12])

    def test_sigterm_with_silent_connections_open_exits_0(self):
        conns = [self.connect() for _ in range(20)]
        harness.wait_for(lambda: self.sockets() >= 21, what="the worker to accept them")
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(harness.scaled(10)), 0)
        for s in conns:
            self.assertEqual(self.wait_closed_by_worker(s, 10), b"")


class SilentConnectionsTest(ConnectionCase):
    """Connections that send nothing hold no thread: a worker of one thread
    with many of them open still answers at once."""
    read_timeout = 300

    def test_many_silent_connections_do_not_keep_the_worker_from_serving(self):
        conns = [self.connect() for _ in range(100)]
        harness.wait_for(lambda: self.sockets() >= 101, what="the worker to accept them")
        for i in range(1, 4):
            self.assert_still_serves(i)
        # and a silent one that speaks up late is served too
        conns[0].sendall(self.whole_request([harness.event(50)]))
        out, _ = fcgi_read_response(conns[0])
        self.assert_multistatus(harness.parse_cgi(out), [(50, 201)])
        self.assert_nothing_but([1, 2, 3, 50])
        self.stop_and_assert_0()

    def test_more_silent_connections_than_it_holds_lose_the_oldest(self):
        """The worker holds 256 silent connections; the 257th closes the
        first, and the worker goes on serving."""
        first = self.connect()
        harness.wait_for(lambda: self.sockets() >= 2, what="the first accept")
        conns = [self.connect() for _ in range(256)]
        self.assertEqual(self.wait_closed_by_worker(first, 30), b"")
        self.assert_still_serves()
        self.assertEqual(len(conns), 256)
        self.stop_and_assert_0()


class KeptConnectionTest(ConnectionCase):
    """FCGI_KEEP_CONN: the web server sends the next request on the same
    connection; it is served at once, with no other connection arriving."""

    def test_requests_on_a_kept_connection_are_served_in_turn(self):
        s = self.connect()
        for n, eid in enumerate((1, 2, 1)):
            s.settimeout(harness.scaled(20))
            s.sendall(self.whole_request([harness.event(eid)], keep=True))
            out, status = fcgi_read_response(s)
            self.assertEqual(status, 0)
            self.assert_multistatus(harness.parse_cgi(out), [(eid, 200 if n == 2 else 201)])
        self.assert_nothing_but([1, 2])
        self.stop_and_assert_0()

    def test_a_refusal_with_its_body_unread_keeps_the_connection_in_step(self):
        """A 401 answered before the body is read: the rest of the body is
        skipped, and the next request on the connection is read right."""
        s = self.connect()
        s.sendall(self.whole_request([harness.event(7)], keep=True, HTTP_X_API_KEY="wrong"))
        out, _ = fcgi_read_response(s)
        self.assertEqual(harness.parse_cgi(out).status, 401)
        s.sendall(self.whole_request([harness.event(8)], keep=True))
        out, _ = fcgi_read_response(s)
        self.assert_multistatus(harness.parse_cgi(out), [(8, 201)])
        self.assert_nothing_but([8])
        self.stop_and_assert_0()

    def test_a_large_unread_body_closes_the_kept_connection(self):
        big = json.dumps([harness.event(i, subject="x" * 500) for i in range(1, 400)]).encode()
        self.assertGreater(len(big), 65536 * 2)
        s = self.connect()
        s.sendall(self.request_bytes(big, keep=True, HTTP_X_API_KEY="wrong") +
                  fcgi_stdin(big) + fcgi_record(5))
        out, _ = fcgi_read_response(s)
        self.assertEqual(harness.parse_cgi(out).status, 401)
        self.wait_closed_by_worker(s, 30)
        self.assert_still_serves()
        self.assert_nothing_but([1])
        self.stop_and_assert_0()

    def test_a_kept_connection_left_idle_is_closed_after_the_timeout(self):
        s = self.connect()
        s.sendall(self.whole_request([harness.event(3)], keep=True))
        out, _ = fcgi_read_response(s)
        self.assert_multistatus(harness.parse_cgi(out), [(3, 201)])
        self.assertEqual(self.wait_closed_by_worker(s, TIMEOUT + 30), b"")
        self.assert_still_serves()
        self.stop_and_assert_0()

    def test_a_kept_connection_holds_no_thread_between_requests(self):
        """One thread: a connection kept open after its request does not
        keep another client waiting."""
        s = self.connect()
        s.sendall(self.whole_request([harness.event(3)], keep=True))
        fcgi_read_response(s)
        self.assert_still_serves(4)
        s.sendall(self.whole_request([harness.event(5)], keep=True))
        out, _ = fcgi_read_response(s)
        self.assert_multistatus(harness.parse_cgi(out), [(5, 201)])
        self.assert_nothing_but([3, 4, 5])
        self.stop_and_assert_0()


class MixedClientsTest(ConnectionCase):
    """Many clients at once, each opening connections that bring a good
    request, two on a kept connection, nothing, a stalled body or part of
    a head: every good request is answered 207 and stored, nothing else
    is, and the worker exits 0 afterwards."""
    threads = 3

    def test_good_requests_are_served_among_silent_stalled_and_broken_ones(self):
        import random
        import threading
        served, errors, lock = set(), [], threading.Lock()

        def one(s, eid, keep):
            body = json.dumps([harness.event(eid)]).encode()
            s.sendall(self.request_bytes(body, keep) + fcgi_stdin(body) + fcgi_record(5))
            out, _ = fcgi_read_response(s)
            if harness.parse_cgi(out).status != 207:
                raise AssertionError("%d: %r" % (eid, harness.parse_cgi(out)))
            with lock:
                served.add(eid)

        def client(t):
            rnd = random.Random(t)
            for i in range(12):
                kind = rnd.choice(["good", "good", "kept", "silent", "stall", "part"])
                eid = t * 100 + i
                try:
                    with socket.create_connection(("127.0.0.1", int(self.conn.rsplit(":", 1)[1])),
                                                  timeout=harness.scaled(60)) as s:
                        if kind == "good":
                            one(s, eid, False)
                        elif kind == "kept":
                            one(s, eid, True)
                            one(s, eid + 50, True)
                        elif kind == "silent":
                            time.sleep(rnd.random() * 2)
                        else:
                            body = json.dumps([harness.event(eid)]).encode()
                            head = self.request_bytes(body)
                            s.sendall(head + fcgi_stdin(body[:10]) if kind == "stall"
                                      else head[:rnd.randrange(1, len(head))])
                            time.sleep(rnd.random() * 2)
                except Exception as e:  # reported below, in the test's thread
                    errors.append("%s %d: %r" % (kind, eid, e))
        clients = [threading.Thread(target=client, args=(t,)) for t in range(6)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(harness.scaled(300))
        self.assertEqual(errors, [])
        self.assertGreater(len(served), 10)
        self.assert_nothing_but(sorted(served))
        self.stop_and_assert_0()


class WebServerAddrsTest(FcgiCase):
    """FCGI_WEB_SERVER_ADDRS, as libfcgi honours it: a TCP client whose
    address is not listed is closed unanswered."""

    def start(self, addrs):
        port = harness.free_port()
        env = dict(os.environ, FCGI_WEB_SERVER_ADDRS=addrs)
        p, log = self.start_worker([harness.BINARY, "--listen", "127.0.0.1:%d" % port,
                                    "--config", self.sb.conf_path], "listen", env=env)
        wait_listening(port, p)
        return p, "127.0.0.1:%d" % port

    def test_a_client_not_listed_is_refused_and_a_listed_one_served(self):
        if CGI_FCGI is None:
            self.skipTest("cgi-fcgi (libfcgi-bin) not installed")
        p, conn = self.start("127.0.0.2")
        host, port = conn.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=harness.scaled(30))
        self.addCleanup(s.close)
        body = json.dumps([harness.event(1)]).encode()
        s.sendall(fcgi_record(FCGI_BEGIN_REQUEST, struct.pack("!HB5x", 1, 0)) +
                  fcgi_params(self.fcgi_env(body)) + fcgi_stdin(body) + fcgi_record(5))
        try:  # closed unanswered: the end, or a reset (our bytes were unread)
            self.assertEqual(s.recv(100), b"")
        except ConnectionResetError:
            pass
        self.assertEqual(self.ids(), [])
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(harness.scaled(10)), 0)
        p, conn = self.start("127.0.0.2, 127.0.0.1")
        r = self.cgi_fcgi(conn, [harness.event(1)])
        self.assert_multistatus(r, [(1, 201)])
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(harness.scaled(10)), 0)


if __name__ == "__main__":
    harness.main()
