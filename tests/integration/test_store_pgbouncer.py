"""The stored-rows suite (store_suite.py) through pgbouncer in transaction
pooling (SPEC §13), in front of a real PostgreSQL 15, both started by the
test on loopback ports: two server connections shared by every worker, so
that each transaction may run on a connection another worker's last one
used. The program must rely on no session state there: its statements are
not prepared under names on the server (psqlODBC names them after memory
addresses, which workers forked from one parent share).

And the same batches, from concurrent FastCGI workers, stored through
pgbouncer and straight into PostgreSQL, give the same rows, value for
value."""
import json
import os
import random
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import servers  # noqa: E402
from store_suite import StoreTests  # noqa: E402

PGBOUNCER = harness.which("pgbouncer") or "/usr/sbin/pgbouncer"


class PgBouncer:
    """A pgbouncer on 127.0.0.1 in front of server (a servers.PostgresServer),
    pool_mode = transaction, two server connections per user and database.
    It stands in for the server in the suite: the ODBC string names its
    port; queries, stop and start go to PostgreSQL behind it."""

    def __init__(self, server):
        self.pg = server
        self.dir = os.path.join(server.dir, "pgbouncer")
        os.makedirs(self.dir, exist_ok=True)
        self.port = harness.free_port()
        self.proc = None
        with open(os.path.join(self.dir, "userlist.txt"), "w") as f:
            f.write('"%s" "%s"\n' % (server.user, server.password))
        with open(os.path.join(self.dir, "pgbouncer.ini"), "w") as f:
            f.write("\n".join([
                "[databases]",
                "%s = host=127.0.0.1 port=%d dbname=%s" % (servers.DATABASE, server.port,
                                                           servers.DATABASE),
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                "listen_port = %d" % self.port,
                "unix_socket_dir =",
                "auth_type = scram-sha-256" if server.host_auth != "md5" else "auth_type = md5",
                "auth_file = %s" % os.path.join(self.dir, "userlist.txt"),
                "pool_mode = transaction",
                "default_pool_size = 2",
                "max_client_conn = 200",
                "server_login_retry = 1",
                "logfile = %s" % os.path.join(self.dir, "pgbouncer.log"),
                "pidfile = %s" % os.path.join(self.dir, "pgbouncer.pid"),
                ""]))
        if server.root:
            subprocess.run(["chown", "-R", server.owner, self.dir], check=True)
        harness.stop_at_exit(self, "cleanup")

    def start(self):
        """Start PostgreSQL (when it is stopped) and pgbouncer."""
        self.pg.start()
        if self.proc is not None and self.proc.poll() is None:
            return self
        argv = [PGBOUNCER, os.path.join(self.dir, "pgbouncer.ini")]
        if self.pg.root:
            argv = [harness.which("runuser") or "runuser", "-u", self.pg.owner, "--"] + argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=self.dir)
        harness.wait_listening(self.port, timeout=30)
        return self

    def cleanup(self):
        if self.proc is not None:
            harness.stop_process(self.proc)
        self.proc = None

    def log(self):
        try:
            with open(os.path.join(self.dir, "pgbouncer.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # what the suite asks of a server
    def odbc_with(self, **over):
        return self.pg.odbc_with(**dict({"Port": str(self.port)}, **over))

    @property
    def odbc(self):
        return self.odbc_with()

    @property
    def password(self):
        return self.pg.password

    def __getattr__(self, name):  # query, execute, empty, stop, count ...
        return getattr(self.pg, name)


class PgbouncerStoreTest(StoreTests, unittest.TestCase):
    backend = "postgresql"
    connections_across_restart = 1

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(PGBOUNCER):
            raise unittest.SkipTest("pgbouncer not installed")
        super().setUpClass()
        bouncer = PgBouncer(cls.server)
        cls.addClassCleanup(bouncer.cleanup)
        cls.server = bouncer.start()

    # pgbouncer stands between: a PostgreSQL restart leaves the program's
    # connection to pgbouncer open, and pgbouncer itself needs up to
    # server_login_retry (1 s) to reach the server again, which the
    # program's failover retry covers
    def with_failover_seconds(self, n):
        self.sb.write_config(limits={"failover_seconds": n},
                             databases={"test": self.server.odbc})

    def test_server_down_is_503_with_retry_after_and_the_worker_recovers(self):
        self.with_failover_seconds(3)
        super().test_server_down_is_503_with_retry_after_and_the_worker_recovers()

    def test_server_restart_between_two_requests_to_the_same_worker(self):
        self.with_failover_seconds(5)
        super().test_server_restart_between_two_requests_to_the_same_worker()

    def test_batches_through_pgbouncer_store_what_they_store_straight(self):
        """Six clients, each creating then updating ids of its own, through
        4 FastCGI workers to pgbouncer; then the same batches straight to
        PostgreSQL: every answer and every row the same."""
        plans = []
        for c in range(6):
            rng = random.Random(700 + c)
            ids = [c * 1000 + i for i in range(1, 61)]
            plans.append([[harness.event(i, subject="c%d r%d" % (c, run), userGroup_Key=run,
                                         completion_Percent=rng.random() * 100)
                           for i in rng.sample(ids, 40)] for run in range(4)])

        def send(odbc):
            self.server.empty()
            self.sb.write_config(databases={"test": odbc})
            lt = self.lighttpd(max_procs=4)
            token = {"Authorization": "Bearer " + self.sb.token()}
            answers = [[] for _ in plans]
            errors = []

            def client(c):
                try:
                    for batch in plans[c]:
                        r = lt.request(batch, headers=token)
                        answers[c].append((r.status, r.json and [
                            (d["id"][0]["value"], d["status"]) for d in r.json["data"]]))
                except Exception as e:  # reported in the main thread
                    errors.append("client %d: %r" % (c, e))
            threads = [threading.Thread(target=client, args=(c,), daemon=True)
                       for c in range(len(plans))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(harness.scaled(300))
            self.assertFalse(any(t.is_alive() for t in threads), "a client hangs")
            self.assertEqual(errors, [])
            self.sb.stop_processes()  # this lighttpd and its workers
            return answers, self.rows()

        through, rows_through = send(self.server.odbc)
        straight, rows_straight = send(self.server.pg.odbc)
        for c, answers in enumerate(through):
            for r, (status, items) in enumerate(answers):
                self.assertEqual(status, 207, (c, r, items))
                self.assertTrue(all(s in (200, 201) for _, s in items), (c, r, items))
        self.assertEqual(through, straight)
        self.assertEqual(len(rows_through), 6 * 60 - sum(
            len(set(range(c * 1000 + 1, c * 1000 + 61)) -
                {e["event_ID"] for batch in plans[c] for e in batch}) for c in range(6)))
        for i in rows_straight:
            for k in ("entry_Date", "update_Date"):  # the time of each request
                rows_straight[i].pop(k)
                rows_through[i].pop(k)
        self.assertEqual(rows_through, rows_straight)
        self.assertNotIn("does not exist", self.server.log())


if __name__ == "__main__":
    harness.main()
