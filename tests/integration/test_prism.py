"""The program's answers through Stoplight Prism (`prism proxy --errors`),
which checks each one against doc/openapi.yaml: one request for every kind
of answer, and a control that a wrong answer is caught.

Prism proxies to an upstream written here, which forwards to the program
behind a real lighttpd.  Prism answers on its own whatever the description
does not route (another path, another method), so the upstream can change
the method and the path it forwards (X-Upstream-Method, X-Upstream-Path):
the program's 404, 405 and 414 then come back through Prism, checked
against the operation's responses.  Asked for it (X-Upstream-Canned), the
upstream answers a canned wrong answer instead: the control.

With --errors, a response that breaks the description becomes Prism's own
500 problem (type ...#VIOLATIONS, an sl-violations header), and Prism logs
it; a request that breaks it is refused before it reaches the program (422,
401).  Each check below therefore wants the program's own status and
envelope back, no sl-violations header, and no warning or error in Prism's
log for that request."""
import hashlib
import http.client
import http.server
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_openapi  # noqa: E402
import webservers  # noqa: E402

PRISM = os.path.join(test_openapi.TOOLS, "node_modules", ".bin", "prism")
REALM = 'Bearer realm="events-batch"'
REFUSED_SUBJECT = "refuse me"
# a key of its own for the 429, so that the other tests' key never runs dry
LIMITED_KEY = "prism-limited-key-0123456789"
BURST = 20
# what Prism logs when it finds a violation or refuses a request
PRISM_TROUBLE = re.compile(r"\b(warning|error|violation)", re.I)
# answers the description forbids, for the control: name -> (status,
# headers, body, what Prism's sl-violations header must say)
GOOD_ID = "3f0c6c1e-9b7e-4d0a-8f6f-2d4c1b7a9e10"
PROBLEM = {"type": "urn:events-batch:invalid-api-key", "title": "Invalid API Key",
           "status": 401, "detail": "x", "instance": "/api/events-batch"}
CANNED = {
    "207 with item status 202": (
        207, {}, {"data": [{"id": [{"key": "event_ID", "value": 1}], "status": 202,
                            "body": "Created"}],
                  "error": None, "debug": {"activityID": GOOD_ID}},
        "data.0.status must be equal to one of the allowed values"),
    "207 with an error object": (
        207, {}, {"data": [], "error": {}, "debug": {"activityID": GOOD_ID}},
        "property error must be null"),
    "401 without WWW-Authenticate": (
        401, {}, {"data": None, "error": PROBLEM, "debug": {"activityID": GOOD_ID}},
        "required property 'www-authenticate'"),
    # Prism only warns here (the status passes unchanged), in sl-violations
    "418, a status not described": (
        418, {"WWW-Authenticate": REALM},
        {"data": None, "error": dict(PROBLEM, status=418), "debug": {"activityID": GOOD_ID}},
        "Unable to match the returned status code"),
}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
              "proxy-connection", "te", "trailer", "upgrade"}


class Upstream(http.server.ThreadingHTTPServer):
    """What Prism proxies to, on 127.0.0.1: forwards each request to
    127.0.0.1:target_port and sends the answer back as it came, or sends a
    CANNED answer."""

    daemon_threads = True

    def __init__(self, target_port):
        super().__init__(("127.0.0.1", 0), UpstreamHandler)
        self.target_port = target_port


class UpstreamHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        canned = self.headers.get("X-Upstream-Canned")
        if canned:
            status, headers, doc, _ = CANNED[canned]
            self._send(status, list(headers.items()) + [("Content-Type", harness.JSON_TYPE)],
                       json.dumps(doc).encode())
            return
        method = self.headers.get("X-Upstream-Method") or self.command
        path = self.headers.get("X-Upstream-Path") or self.path
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in HOP_BY_HOP and not k.lower().startswith("x-upstream-")}
        c = http.client.HTTPConnection("127.0.0.1", self.server.target_port, timeout=60)
        try:
            # lighttpd refuses a GET with a body
            c.request(method, path, body=body if method == "PUT" else None, headers=headers)
            r = c.getresponse()
            self._send(r.status, [(k, v) for k, v in r.getheaders()
                                  if k.lower() not in HOP_BY_HOP], r.read())
        finally:
            c.close()

    def _send(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_GET = do_POST = do_DELETE = _any


class PrismProxyTest(harness.EnvelopeChecks, unittest.TestCase):
    """The program behind lighttpd, behind `prism proxy --errors`."""

    @classmethod
    def setUpClass(cls):
        test_openapi.install_tools()
        sb = cls.sb = harness.Sandbox()
        try:
            gone = os.path.join(sb.dir, "missing.db")
            sb.write_config(
                limits={"max_body_bytes": 4096, "max_batch_items": 5,
                        "rate_per_second": 1, "rate_burst": BURST,
                        "rate_state_dir": os.path.join(sb.dir, "rate")},
                auth={"jwt_database_claim": "vbasoftware-database",
                      "api_key_sha256": [hashlib.sha256(harness.API_KEY.encode()).hexdigest(),
                                         hashlib.sha256(LIMITED_KEY.encode()).hexdigest()]},
                databases={"test": "Driver=SQLite3;Database=%s;NoCreat=1" % sb.db_path,
                           "gone": "Driver=SQLite3;Database=%s;NoCreat=1" % gone})
            # the database refuses rows with this subject: an item's 500
            con = sqlite3.connect(sb.db_path)
            con.execute("CREATE TRIGGER refuse BEFORE INSERT ON Event WHEN NEW.Subject = '%s' "
                        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END" % REFUSED_SUBJECT)
            con.commit()
            con.close()
            cls.lighttpd = webservers.Lighttpd(sb, max_procs=1, run_user=None)
            cls.upstream = Upstream(cls.lighttpd.port)
            threading.Thread(target=cls.upstream.serve_forever, daemon=True).start()
            cls.port = harness.free_port()
            cls.prism_log = os.path.join(sb.dir, "prism.log")
            # the upstream's /api and Prism's /events-batch: the program's path
            sb.start([PRISM, "proxy", "--errors", test_openapi.SPEC,
                      "http://127.0.0.1:%d/api" % cls.upstream.server_address[1],
                      "--host", "127.0.0.1", "--port", str(cls.port)],
                     stdout=open(cls.prism_log, "wb"), stderr=subprocess.STDOUT,
                     stdin=subprocess.DEVNULL)
            harness.wait_listening(cls.port, timeout=60)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "upstream", None):
            cls.upstream.shutdown()
            cls.upstream.server_close()
        cls.sb.close()

    # --- requests through Prism -----------------------------------------------

    def token(self, database="test"):
        return self.sb.token({"vbasoftware-database": database})

    def prism_log_text(self):
        with open(self.prism_log, errors="replace") as f:
            return f.read()

    def put(self, body, headers=None, upstream=None, method="PUT", path="/events-batch"):
        """A PUT /events-batch (or method on path) through Prism: a good
        request unless headers (None values dropped) say otherwise; upstream
        holds X-Upstream-* headers.  Returns (harness.Response, Prism's log
        lines of it)."""
        h = {"User-Agent": "eb-tests/1", "x-api-key": harness.API_KEY,
             "Authorization": "Bearer " + self.token(), "vbasoftware-database": "test",
             "Content-Type": "application/json"}
        h.update(headers or {})
        h.update(upstream or {})
        h = {k: v for k, v in h.items() if v is not None}
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        before = len(self.prism_log_text())
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            c.request(method, path, body=body, headers=h)
            raw = c.getresponse()
            status, headers, data = raw.status, raw.getheaders(), raw.read()
        finally:
            c.close()
        # Prism's lines of the request, for a second look (the answer's
        # sl-violations header is the first): wait until they are written
        harness.wait_for(lambda: re.search(r"Received forward response|terminated|"
                                           r"\berror\b", self.prism_log_text()[before:]),
                         timeout=10, what="Prism's log of the request")
        time.sleep(0.05)
        lines = self.prism_log_text()[before:].splitlines()
        if (upstream or {}).get("X-Upstream-Canned"):
            # not the program's answer: not recorded for test_openapi.py
            return types.SimpleNamespace(status=status, raw=data, json=json.loads(data),
                                         headers={k.lower(): v for k, v in headers}), lines
        return harness.Response(status, headers, data), lines

    def assert_prism_passed(self, r, lines, status):
        """Prism found nothing wrong and passed the program's answer on."""
        self.assertIsNone(r.headers.get("sl-violations"), "Prism found violations")
        self.assertEqual([l for l in lines if PRISM_TROUBLE.search(l)], [], "\n".join(lines))
        self.assertTrue(any("Received forward response" in l for l in lines), "\n".join(lines))
        self.assertEqual(r.status, status, r)

    def assert_error_passed(self, status, body=None, headers=None, upstream=None,
                            instance=None):
        r, lines = self.put([harness.event(1)] if body is None else body, headers, upstream)
        self.assert_prism_passed(r, lines, status)
        self.assert_error(r, status, instance)
        return r

    # --- every kind of answer passes ---------------------------------------------

    def test_207_with_201_200_400_and_500_items_passes(self):
        # ids no other test stores (the others are refused before the store)
        batch = [harness.event(71), harness.event(72, subject=REFUSED_SUBJECT),
                 harness.event(73, due_Date="2024-02-30"), harness.event(71, subject="again")]
        r, lines = self.put(batch)
        self.assert_prism_passed(r, lines, 207)
        self.assert_multistatus(r, [(71, 201), (72, 500), (73, 400), (71, 200)])
        self.assertEqual(r.headers.get("ratelimit-limit"), str(BURST))
        self.assertRegex(r.headers.get("ratelimit-remaining", ""), r"\A[0-9]+\Z")
        self.assertRegex(r.headers.get("ratelimit-reset", ""), r"\A[0-9]+\Z")

    def test_400_unknown_database_passes(self):
        self.assert_error_passed(400, headers={"vbasoftware-database": "nosuch"})

    def test_401_unknown_api_key_passes_with_its_challenge(self):
        r = self.assert_error_passed(401, headers={"x-api-key": "not-the-key"})
        self.assertEqual(r.headers.get("www-authenticate"), REALM)

    def test_401_bad_token_passes_with_its_challenge(self):
        r = self.assert_error_passed(401, headers={"Authorization": "Bearer not.a.token"})
        self.assertEqual(r.headers.get("www-authenticate"), REALM + ', error="invalid_token"')

    def test_403_database_the_token_does_not_name_passes(self):
        self.assert_error_passed(403, headers={"Authorization": "Bearer " + self.token("other")})

    def test_404_other_path_passes(self):
        self.assert_error_passed(404, upstream={"X-Upstream-Path": "/api/events-batch/other"},
                                 instance="/api/events-batch/other")

    def test_405_get_passes_with_allow_put(self):
        r = self.assert_error_passed(405, upstream={"X-Upstream-Method": "GET"})
        self.assertEqual(r.headers.get("allow"), "PUT")

    def test_413_body_over_max_body_bytes_passes(self):
        self.assert_error_passed(413, body=[harness.event(1, meta_Data="m" * 5000)])

    def test_413_more_than_max_batch_items_passes(self):
        self.assert_error_passed(413, body=[harness.event(i) for i in range(1, 7)])

    def test_414_path_over_2048_bytes_passes(self):
        path = "/api/events-batch" + "/x" * 1100 + "/events-batch"
        self.assert_error_passed(414, upstream={"X-Upstream-Path": path}, instance=path[:2048])

    def test_415_charset_other_than_utf8_passes(self):
        self.assert_error_passed(
            415, headers={"Content-Type": "application/json; charset=iso-8859-1"})

    def test_429_a_key_over_its_rate_limit_passes_with_retry_after(self):
        token = "Bearer " + self.token()
        for _ in range(2 * BURST):
            r, lines = self.put([], headers={"x-api-key": LIMITED_KEY, "Authorization": token})
            if r.status == 429:
                break
            self.assert_prism_passed(r, lines, 207)
        self.assert_prism_passed(r, lines, 429)
        self.assert_error(r, 429)
        self.assertRegex(r.headers.get("retry-after", ""), r"\A[1-9][0-9]*\Z")
        self.assertEqual(r.headers.get("ratelimit-remaining"), "0")

    def test_503_database_that_cannot_be_reached_passes(self):
        r = self.assert_error_passed(503, headers={
            "vbasoftware-database": "gone", "Authorization": "Bearer " + self.token("gone")})
        self.assertRegex(r.headers.get("retry-after", ""), r"\A[1-9][0-9]*\Z")

    def test_207_of_a_dry_run_passes_with_preference_applied(self):
        r, lines = self.put([harness.event(81), harness.event(81, subject="again")],
                            headers={"Prefer": "return=minimal, tx=rollback"})
        self.assert_prism_passed(r, lines, 207)
        self.assert_multistatus(r, [(81, 201), (81, 200)])
        self.assertEqual(r.headers.get("preference-applied"), "tx=rollback")

    # the health path needs none of the request's headers
    NO_HEADERS = {"User-Agent": None, "x-api-key": None, "Authorization": None,
                  "vbasoftware-database": None, "Content-Type": None}

    def test_health_200_passes(self):
        r, lines = self.put(None, headers=self.NO_HEADERS, method="GET",
                            path="/events-batch/health")
        self.assert_prism_passed(r, lines, 200)
        self.assertEqual(r.json, {"status": "ok"})
        self.assertEqual(r.headers.get("cache-control"), "no-store")

    def test_health_405_passes_with_allow_get_head(self):
        r, lines = self.put(None, headers=self.NO_HEADERS, method="GET",
                            path="/events-batch/health", upstream={"X-Upstream-Method": "POST"})
        self.assert_prism_passed(r, lines, 405)
        self.assert_error(r, 405, instance="/api/events-batch/health")
        self.assertEqual(r.headers.get("allow"), "GET, HEAD")

    # --- the control ---------------------------------------------------------------

    def test_prism_catches_answers_that_break_the_description(self):
        """The control: the check every test above makes fails on each
        CANNED answer, and Prism names what is wrong."""
        for name, (status, _, _, complaint) in CANNED.items():
            with self.case(canned=name):
                r, lines = self.put([harness.event(1)], upstream={"X-Upstream-Canned": name})
                with self.assertRaises(AssertionError):
                    self.assert_prism_passed(r, lines, status)
                self.assertIn(complaint, r.headers.get("sl-violations", ""), r.headers)
                self.assertTrue([l for l in lines if PRISM_TROUBLE.search(l)], "\n".join(lines))

    def test_prism_refuses_a_request_that_breaks_the_description(self):
        """...and so never shows the program what the description forbids
        (why 404, 405 and 414 go through the upstream's rewriting)."""
        r, lines = self.put([{"event_ID": "1"}])
        self.assertEqual(r.status, 422, r)
        self.assertFalse(any("Forwarding" in l for l in lines), "\n".join(lines))


if __name__ == "__main__":
    harness.main()
