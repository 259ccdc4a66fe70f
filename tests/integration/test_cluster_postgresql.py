"""A PostgreSQL failover under load (issue 15 item 3, SPEC §13): a primary
and a synchronous streaming standby on two loopback addresses (clusters.py),
reached through psqlODBC's libpq multi-host Servername with
target_session_attrs=read-write, behind a real lighttpd with three FastCGI
workers. Six clients send batches of 50 creates and updates; the primary is
stopped with -m immediate and the standby promoted.

What must hold: every answer is a 207 or a 503 with Retry-After (a client
sends a 503's batch again, as an integrator does); every item a 207
acknowledged is on the survivor with the value of the last batch that
acknowledged it; the gap in acknowledgements is bounded by
failover_seconds, and printed."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusters  # noqa: E402
import harness  # noqa: E402
import servers  # noqa: E402
import webservers  # noqa: E402

CLIENTS, BATCH, IDS = 6, 50, 150
FAILOVER_SECONDS = 20


class PostgresqlFailoverUnderLoadTest(harness.EnvelopeChecks, unittest.TestCase):

    def setUp(self):
        if not servers.PostgresServer.available() or harness.which("lighttpd") is None:
            self.skipTest("PostgreSQL, psqlODBC or lighttpd not installed")
        self.cluster = clusters.PgCluster()
        self.addCleanup(self.cluster.cleanup)
        self.cluster.start()
        self.sb = harness.Sandbox()
        self.addCleanup(self.sb.close)
        self.sb.write_config(limits={"failover_seconds": FAILOVER_SECONDS},
                             databases={"test": self.cluster.odbc()})

    def test_stop_the_primary_and_promote_the_standby_under_load(self):
        lt = webservers.Lighttpd(self.sb, max_procs=3, run_user=None)
        token = {"Authorization": "Bearer " + self.sb.token()}
        # a 503 is sent again, as an integrator does
        load = clusters.BatchLoad(lambda c, batch: lt.request(batch, headers=token, timeout=120),
                                  lambda r: r.status == 503, CLIENTS, BATCH, IDS).start()
        time.sleep(harness.scaled(2))
        before = len(load.acked)
        stopped = time.monotonic()
        self.cluster.primary.stop_immediate()
        time.sleep(0.5)
        self.cluster.standby.promote()
        promoted = time.monotonic()
        time.sleep(harness.scaled(3))
        load.stop(self)
        self.assertGreater(before, 0, "no batch was acknowledged before the failover")

        for a in load.answers:
            self.assertIn(a.status, (207, 503))
            if a.status == 503:
                self.assertRegex(a.headers.get("retry-after") or "", r"\A[1-9][0-9]*\Z")
        acks = load.ack_times()
        self.assertTrue([t for t in acks if t > promoted], "no batch acknowledged after")
        # the gap: the longest time without an acknowledgement, across the stop
        gap = max(b - a for a, b in zip(acks, acks[1:]) if b > stopped)
        print("# failover: the standby promoted %.2f s after the primary stopped; the longest "
              "time without a 207 across it %.2f s; %d answers, %d of them 503"
              % (promoted - stopped, gap, len(load.answers),
                 sum(1 for a in load.answers if a.status == 503)))
        self.assertLess(gap, FAILOVER_SECONDS + 5)

        load.assert_stored(self, {int(i): s for i, s in self.cluster.standby.query(
            "SELECT Event_ID, Subject FROM Event")})
        log = lt.log()
        self.assert_no_sanitizer(log)
        self.assertRegex(log, r"(SQLSTATE [0-9A-Z]{5}\); trying again|lost commit)")


if __name__ == "__main__":
    harness.main()
