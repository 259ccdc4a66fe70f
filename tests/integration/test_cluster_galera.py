"""MariaDB Galera under load (issue 15 item 5, SPEC §13): three nodes on
loopback addresses (clusters.GaleraCluster: galera-4, rsync SST), written
by the program behind real lighttpd servers.

- Through haproxy (TCP, a check of each node): one program instance, the
  node haproxy sends it to is killed with -9 mid-load; haproxy's check takes
  it out and the program's failover runs the lost batches again on another
  node.
- Two program instances writing to two different nodes at once, the same
  hot ids from both sides: Galera's certification conflicts (and InnoDB's
  deadlocks) are run again, never reported as item failures; the third node
  is killed with -9 mid-load.

After each run: every answer was a 207 or a 503 with Retry-After (a client
sends a 503's batch again, as an integrator does); no item was refused;
each id got exactly one 201 over the run; every id holds the value of an
acknowledged batch that no later acknowledged batch overwrote, on every
node; the killed node rejoins and holds the same rows."""
import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusters  # noqa: E402
import harness  # noqa: E402
import webservers  # noqa: E402

CLIENTS, BATCH, HOT = 6, 20, 60
FAILOVER_SECONDS = 20


class Load:
    """Clients that send batches of hot ids to servers (each client to one)
    until stopped, and what they were told."""

    def __init__(self, test, servers, ids):
        self.test = test
        self.servers = servers
        self.ids = ids
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers = []     # (time, status, retry-after)
        self.writes = {}      # id -> [(sent, acknowledged, subject)] of its 207s
        self.created = {}     # id -> 201s over the run
        self.errors = []

    def client(self, c):
        server = self.servers[c % len(self.servers)]
        rnd = random.Random(c)
        n = 0
        try:
            while not self.stop.is_set():
                ids = rnd.sample(self.ids, BATCH)
                subject = "c%d n%d" % (c, n)
                batch = [harness.event(i, subject=subject) for i in ids]
                while True:
                    sent = time.monotonic()
                    r = server.request(batch, timeout=120)
                    with self.lock:
                        self.answers.append((time.monotonic(), r.status,
                                             r.headers.get("retry-after")))
                    if r.status != 503:
                        break
                    self.test.assertNotIn("cannot be known", r.raw.decode(errors="replace"))
                acked = time.monotonic()
                self.test.assertEqual(r.status, 207, r)
                got = [(d["id"][0]["value"], d["status"]) for d in r.json["data"]]
                self.test.assertEqual([g[0] for g in got], ids)
                self.test.assertTrue(all(s in (200, 201) for _, s in got), got)
                with self.lock:
                    for i, s in got:
                        self.writes.setdefault(i, []).append((sent, acked, subject))
                        if s == 201:
                            self.created[i] = self.created.get(i, 0) + 1
                n += 1
        except Exception as e:  # reported in the main thread
            self.errors.append("client %d: %r" % (c, e))

    def run(self, during, seconds):
        """Run the clients; call during() after a while; stop seconds later."""
        threads = [threading.Thread(target=self.client, args=(c,), daemon=True)
                   for c in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(harness.scaled(2))
        self.before = sum(1 for _, s, _ in self.answers if s == 207)
        self.event_at = time.monotonic()
        during()
        time.sleep(harness.scaled(seconds))
        self.stop.set()
        for t in threads:
            t.join(harness.scaled(180))
        self.test.assertFalse(any(t.is_alive() for t in threads), "a client hangs")
        self.test.assertEqual(self.errors, [])
        self.test.assertGreater(self.before, 0, "no batch acknowledged before the kill")
        self.test.assertTrue([t for t, s, _ in self.answers if s == 207 and t > self.event_at],
                             "no batch acknowledged after the kill")

    def report(self, what, log):
        acks = sorted(t for t, s, _ in self.answers if s == 207)
        gap = max(b - a for a, b in zip(acks, acks[1:]) if b > self.event_at)
        print("# %s: %d answers, %d of them 503; %d conflicts run again, %d failovers, "
              "%d lost commits found out; the longest time without a 207 after the kill %.2f s"
              % (what, len(self.answers), sum(1 for _, s, _ in self.answers if s == 503),
                 log.count("deadlock or serialization failure"),
                 log.count("trying again in") - log.count("conflicted again"),
                 log.count("the lost commit's outcome: "),
                 gap))
        return gap

    def check_answers(self):
        for _, status, retry_after in self.answers:
            self.test.assertIn(status, (207, 503))
            if status == 503:
                self.test.assertRegex(retry_after or "", r"\A[1-9][0-9]*\Z")
        self.test.assertEqual(sorted(self.created), sorted(self.writes),
                              "an id was acknowledged but never created")
        twice = {i: n for i, n in self.created.items() if n != 1}
        self.test.assertEqual(twice, {}, "ids created more than once")

    def check_rows(self, node):
        """Each acknowledged id holds the subject of a 207 whose batch no
        batch sent after that 207 overwrote (a later one must win)."""
        rows = {int(i): s for i, s in node.query("SELECT Event_ID, Subject FROM Event")}
        self.test.assertEqual(sorted(rows), sorted(self.writes), node.name)
        wrong = []
        for i, writes in self.writes.items():
            mine = [w for w in writes if w[2] == rows[i]]
            if not mine or any(w[0] > mine[0][1] for w in writes):
                wrong.append((i, rows[i], sorted(writes)[-3:]))
        self.test.assertEqual(wrong, [], "%s holds a value a later batch overwrote" % node.name)
        return rows


class GaleraUnderLoadTest(harness.EnvelopeChecks, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not clusters.galera_available() or harness.which("lighttpd") is None:
            raise unittest.SkipTest("MariaDB, galera-4, rsync, Connector/ODBC or lighttpd "
                                    "not installed")
        cls.cluster = clusters.GaleraCluster()
        try:
            cls.cluster.start()
        except BaseException:
            cls.cluster.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def setUp(self):
        self.cluster.synced()
        self.cluster.nodes[0].execute("DELETE FROM Event; DELETE FROM EventBatchCommit")

    def instance(self, odbc, max_procs=2):
        sb = harness.Sandbox()
        self.addCleanup(sb.close)
        sb.write_config(limits={"failover_seconds": FAILOVER_SECONDS},
                        databases={"test": odbc})
        return webservers.Lighttpd(sb, max_procs=max_procs, run_user=None)

    def rejoin(self, node, load):
        node.start()
        self.cluster.synced()
        rows = load.check_rows(self.cluster.nodes[0])
        self.assertEqual(load.check_rows(node), rows)

    def test_through_haproxy_with_the_node_in_use_killed(self):
        n1, n2, n3 = self.cluster.nodes
        # one node takes the writes, the others wait as backups: what
        # Galera's documentation advises against certification conflicts
        proxy = clusters.Haproxy([(n.name, n.addr, n.port, "" if n is n1 else "backup")
                                  for n in self.cluster.nodes], mode="tcp")
        self.addCleanup(proxy.cleanup)
        proxy.start()
        lt = self.instance(self.cluster.odbc(n1, Server="127.0.0.1", Port=str(proxy.port)),
                           max_procs=3)
        load = Load(self, [lt], list(range(1, HOT + 1)))
        load.run(n1.kill, 4)
        self.assertEqual(proxy.states()["n1"], "DOWN")
        load.check_answers()
        for node in (n2, n3):
            load.check_rows(node)
        log = lt.log()
        gap = load.report("through haproxy, the node in use killed", log)
        self.assert_no_sanitizer(log)
        self.assertRegex(log, r"(SQLSTATE [0-9A-Z]{5}\); trying again|lost commit)")
        self.assertLess(gap, FAILOVER_SECONDS + 5)
        self.rejoin(n1, load)

    def test_two_instances_on_two_nodes_with_hot_ids_and_a_node_killed(self):
        n1, n2, n3 = self.cluster.nodes
        a = self.instance(self.cluster.odbc(n1))
        b = self.instance(self.cluster.odbc(n2))
        load = Load(self, [a, b], list(range(1, HOT + 1)))
        load.run(n3.kill, 3)
        load.check_answers()
        for node in (n1, n2):
            load.check_rows(node)
        log = a.log() + b.log()
        load.report("two instances, hot ids, n3 killed", log)
        for lt in (a, b):
            self.assert_no_sanitizer(lt.log())
        # the hot ids did conflict, and the conflicts were run again
        self.assertRegex(log, r"deadlock or serialization failure \(SQLSTATE (40001|HY000)\)")
        self.rejoin(n3, load)

    def test_a_batch_larger_than_a_write_set_is_a_413_and_writes_nothing(self):
        n1 = self.cluster.nodes[0]
        lt = self.instance(self.cluster.odbc(n1))
        small = [harness.event(i, subject="small") for i in range(1, 11)]
        large = [harness.event(i, subject="large") for i in range(1, 201)]
        # the write set's bytes (checked at COMMIT), then its rows (checked
        # at each statement)
        for name, value, default in (("wsrep_max_ws_size", 100000, 2147483647),
                                     ("wsrep_max_ws_rows", 50, 0)):
            n1.execute("SET GLOBAL %s = %d" % (name, value), database=None)
            self.addCleanup(n1.execute, "SET GLOBAL %s = %d" % (name, default), database=None)
            r = lt.request(large)
            err = self.assert_error(r, 413, "/api/events-batch")
            self.assertEqual(err["type"], "urn:events-batch:too-many-items")
            self.assertIn("smaller batches", err["detail"])
            self.assertEqual(n1.count(), 0, name)
            n1.execute("SET GLOBAL %s = %d" % (name, default), database=None)
        self.assertEqual(lt.request(small).statuses(), [201] * 10)
        self.assertEqual(lt.request(large).statuses(), [200] * 10 + [201] * 190)
        self.assert_no_sanitizer(lt.log())


if __name__ == "__main__":
    harness.main()
