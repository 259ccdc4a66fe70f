"""Two web hosts behind haproxy (issue 15 item 6): two lighttpd instances
(webservers.Lighttpd), each with two FastCGI workers of its own, one config
and one PostgreSQL database, behind haproxy in HTTP mode (clusters.Haproxy:
round robin, the health check on SPEC §12's GET <prefix>/events-batch/health
every 200 ms, fall 2 rise 2, retries on connection failures to the other
host).  Five clients send batches of 100 creates and updates (long enough
that some are in flight when the host stops); one host is stopped (SIGTERM
to lighttpd by its PID; its workers finish what they hold and exit) while
they run.

What must hold: every answer is a 207, or a failure from haproxy (its 502
or 503 page, or an answer cut off) for a request in flight on the host that
stopped: at most one a client, sent before that host was gone, in
haproxy's log on that host alone, and sent again by the client, as an
integrator does.  Every request sent after the stop is answered by the
other host (the activity ID of each 207 is in one host's log, and after the
stop in the survivor's).  haproxy's health check passed on both hosts
before (L7OK) and marked the stopped one down.  Every item a 207
acknowledged is in the database with the value of the last 207 that
acknowledged it.  The failures, the time until haproxy marked the host
down and the longest time without a 207 are printed."""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusters  # noqa: E402
import harness  # noqa: E402
import servers  # noqa: E402
import webservers as ws  # noqa: E402

CLIENTS, BATCH, IDS = 5, 100, 200
HEALTH = ws.PREFIX + "/health"


def activities(log):
    """The activity IDs of the PUTs a host's workers logged."""
    return set(re.findall(r"events-batch\[\d+\]: activity=(\S+) method=PUT ", log))


def failed(r):
    """No answer (or one cut off), or haproxy's own for a request its
    server did not answer: 502, or 503 when no server is up (its HTML
    page; the program's 503 is JSON).  r: a Response or a BatchLoad.Answer."""
    return r is None or r.status is None or (
        r.status in (502, 503) and r.headers.get("content-type") != harness.JSON_TYPE)


class TwoWebHostsBehindHaproxyTest(harness.EnvelopeChecks, unittest.TestCase):

    def setUp(self):
        missing = ws.missing("lighttpd", "haproxy")
        if missing or not servers.PostgresServer.available():
            self.skipTest(missing or "PostgreSQL or psqlODBC not installed")
        self.pg = servers.PostgresServer()
        self.addCleanup(self.pg.cleanup)
        self.pg.start()
        self.sb = harness.Sandbox(databases={"test": self.pg.odbc})
        self.addCleanup(self.sb.close)
        self.hosts = [ws.Lighttpd(self.sb, max_procs=2, run_user=None, name=name)
                      for name in ("host-a", "host-b")]
        for h in self.hosts:
            self.addCleanup(h.stop)
        self.proxy = clusters.Haproxy([(h.name, "127.0.0.1", h.port) for h in self.hosts],
                                      check="GET " + HEALTH)
        self.addCleanup(self.proxy.cleanup)
        self.proxy.start()
        # the health check passes on both: the URL reaches the program
        harness.wait_for(lambda: all(self.proxy.server(h.name)["check_status"] == "L7OK"
                                     for h in self.hosts), timeout=30,
                         what="haproxy to check both hosts")

    def test_stop_one_host_under_load(self):
        gone, survivor = self.hosts
        headers = ws.good_headers(self.sb, self.sb.token())

        def send(c, batch):
            try:
                return ws.http_request(self.proxy.port, batch, headers, timeout=120)
            except ws.BrokenResponse:
                return None

        load = clusters.BatchLoad(send, failed, CLIENTS, BATCH, IDS).start()
        time.sleep(harness.scaled(2))
        self.assertTrue(activities(gone.log()) and activities(survivor.log()),
                        "both hosts serve before the stop")
        stopped = time.monotonic()
        gone.stop()          # SIGTERM to lighttpd; waits for its workers to exit
        went = time.monotonic()
        harness.wait_for(lambda: self.proxy.states()[gone.name] == "DOWN",
                         timeout=10, what="haproxy to mark %s down" % gone.name)
        marked = time.monotonic()
        time.sleep(harness.scaled(2.5))
        load.stop(self)

        failures = [a for a in load.answers if failed(a)]
        late = [a for a in failures if a.sent > went or a.answered < stopped]
        self.assertEqual(late, [], "failures of requests not in flight at the stop")
        self.assertLessEqual(len(failures), CLIENTS, "more than one failure a client")
        logged = [r for r in self.proxy.requests() if (r["status"], r["flags"]) != ("207", "----")]
        self.assertEqual(len(logged), len(failures), self.proxy.log()[-3000:])
        self.assertEqual({r["server"] for r in logged} - {gone.name}, set(), logged)
        # which host answered each 207: its activity ID in that host's log
        acked = [a for a in load.answers if not failed(a)]
        on_gone = activities(gone.log())
        want = {a.activity for a in acked} - on_gone
        harness.wait_for(lambda: want <= activities(survivor.log()), timeout=30,
                         what="the survivor's log lines of the other 207s")
        on_survivor = activities(survivor.log())
        for a in acked:
            self.assertNotEqual(a.activity in on_gone, a.activity in on_survivor, a)
            if a.sent > went:
                self.assertIn(a.activity, on_survivor, "a request after the stop")
        self.assertTrue([a for a in acked if a.sent > went], "no request after the stop")
        state = self.proxy.server(gone.name)
        self.assertEqual((state["status"], state["check_status"]), ("DOWN", "L4CON"))
        state = self.proxy.server(survivor.name)
        self.assertEqual((state["status"], state["check_status"]), ("UP", "L7OK"))
        acks = load.ack_times()
        gap = max(b - a for a, b in zip(acks, acks[1:]) if b > stopped)
        print("# two web hosts: %s stopped in %.2f s (its workers gone); haproxy marked it "
              "down %.2f s after the stop; %d of %d answers failed (%s), each a request in "
              "flight on it; the longest time without a 207 across the stop %.2f s"
              % (gone.name, went - stopped, marked - stopped, len(failures), len(load.answers),
                 ", ".join(sorted({str(a.status or "cut off") for a in failures}))
                 or "none", gap))

        load.assert_stored(self, {int(i): s for i, s in self.pg.query(
            "SELECT Event_ID, Subject FROM Event")})
        for h in self.hosts:
            self.assert_no_sanitizer(h.log(), "sanitizer report in %s's logs" % h.name)


if __name__ == "__main__":
    harness.main()
