"""A batch cut by a failover (SPEC §7, §13), on real PostgreSQL and MariaDB
servers reached through a TCP relay that this test controls: it drops the
connection in the middle of a batch, just before or just after the COMMIT
reaches the server, or refuses connections for a while, as a failover does.

What must hold: the batch runs again on a new connection within
failover_seconds; a commit whose answer was lost is found out (PostgreSQL
txid_status, MariaDB the marker row) before anything is answered, and the
207 then tells the true outcome of each item; after failover_seconds the
answer is 503 with Retry-After and nothing applied; one log line per retry
names the SQLSTATE."""
import os
import re
import select
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import servers  # noqa: E402


class Relay:
    """127.0.0.1:port -> the server, byte for byte, with one fault armed at
    a time: drop both sides when the client sends a chunk holding `marker`
    (before forwarding it, or just after), or refuse connections while
    closed."""

    def __init__(self, target_port):
        self.target = target_port
        self.port = harness.free_port()
        self.lock = threading.Lock()
        self.fault = None      # (marker, "before" or "after")
        self.dropped = 0
        self.listener = None
        self.stopping = False
        self.conns = []
        self.open()

    def open(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def close_listener(self):
        """Refuse new connections (ECONNREFUSED), as a server that is down."""
        s, self.listener = self.listener, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def arm(self, marker, when):
        with self.lock:
            self.fault = (marker, when)

    def stop(self):
        self.stopping = True
        self.close_listener()
        for c in list(self.conns):
            c.close()

    def _accept(self, s):
        while not self.stopping:
            try:
                client, _ = s.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            self.conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _take(self, data):
        """The fault this chunk from the client fires: 'before', 'after',
        or None."""
        with self.lock:
            if self.fault is None:
                return None
            marker, when = self.fault
            if marker not in data:
                return None
            self.fault = None
            self.dropped += 1
            return when

    def _pump(self, client, server):
        try:
            while True:
                r, _, _ = select.select([client, server], [], [], 60)
                if not r:
                    return
                if server in r:
                    data = server.recv(65536)
                    if not data:
                        return
                    client.sendall(data)
                if client in r:
                    data = client.recv(65536)
                    if not data:
                        return
                    fault = self._take(data)
                    if fault == "before":
                        return
                    server.sendall(data)
                    if fault == "after":
                        return
        except OSError:
            return
        finally:
            # the server sees its client go, the client its server
            for s in (server, client):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


class FailoverCase(harness.EnvelopeChecks):
    backend = None
    server_kind = None
    # the client's message that is the COMMIT (PostgreSQL: a simple Query)
    commit = b"COMMIT\x00"
    # bytes of the batch's first write and of nothing before it
    write = b"INSERT"

    @classmethod
    def setUpClass(cls):
        if not cls.server_kind.available():
            raise unittest.SkipTest("%s server or its ODBC driver not installed" % cls.backend)
        cls.server = cls.server_kind()
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()

    def setUp(self):
        self.server.start()
        self.server.empty()
        self.relay = Relay(self.server.port)
        self.addCleanup(self.relay.stop)
        self.sb = harness.Sandbox()
        self.addCleanup(self.sb.close)
        self.configure(failover_seconds=10)

    def configure(self, **limits):
        self.sb.write_config(limits=limits, databases={
            "test": self.server.odbc_with(Server="127.0.0.1", Port=str(self.relay.port))})

    def put(self, items):
        r, err, rc = self.sb.cgi(items)
        self.assert_clean_exit(rc, err)
        r.stderr = err
        if os.environ.get("EB_SHOW_STDERR"):
            sys.stderr.write(err)
        for secret in (self.server.password,):
            self.assertNotIn(secret, err)
        return r

    def rows(self):
        """{id: subject} of the Event table, read from the server itself."""
        return {int(i): s for i, s in
                self.server.query("SELECT Event_ID, Subject FROM Event ORDER BY Event_ID")}

    def batch(self, ids, subject):
        return [harness.event(i, subject=subject) for i in ids]

    # --- connection lost before the commit ---------------------------------------

    def test_connection_lost_in_the_middle_of_a_batch_runs_it_again(self):
        self.put(self.batch([1, 2], "old"))
        self.relay.arm(self.write, "before")
        r = self.put(self.batch([1, 2, 3], "new"))
        self.assert_multistatus(r, [(1, 200), (2, 200), (3, 201)])
        self.assertEqual(self.relay.dropped, 1)
        self.assertEqual(self.rows(), {1: "new", 2: "new", 3: "new"})
        self.assertRegex(r.stderr, r"the connection or the server was lost \(SQLSTATE "
                                   r"[0-9A-Z]{5}\); trying again in [0-9]+ ms")

    def test_database_back_within_failover_seconds_gets_the_batch(self):
        self.relay.close_listener()
        threading.Timer(1.5, self.relay.open).start()
        r = self.put(self.batch([5, 6], "after the gap"))
        self.assert_multistatus(r, [(5, 201), (6, 201)])
        self.assertEqual(self.rows(), {5: "after the gap", 6: "after the gap"})
        tries = re.findall(r"trying again in [0-9]+ ms", r.stderr)
        self.assertGreaterEqual(len(tries), 2, r.stderr)

    def test_database_gone_longer_than_failover_seconds_is_503_and_applies_nothing(self):
        self.configure(failover_seconds=2)
        self.relay.close_listener()
        started = time.monotonic()
        r = self.put(self.batch([7], "never"))
        took = time.monotonic() - started
        err = self.assert_unavailable(r)
        self.assertIn("nothing was applied", err["detail"])
        self.assertRegex(r.stderr, r"failover_seconds \(2\) ran out")
        # the deadline is kept: tried for the whole of it, not given up at once
        self.assertGreaterEqual(took, 1.9, r.stderr)
        self.relay.open()
        self.assertEqual(self.rows(), {})

    def test_failover_seconds_0_answers_503_at_the_first_loss(self):
        self.configure(failover_seconds=0)
        self.relay.arm(self.write, "before")
        r = self.put(self.batch([8], "x"))
        self.assert_unavailable(r)
        self.assertNotRegex(r.stderr, r"trying again")
        self.assertEqual(self.rows(), {})

    # --- the commit's answer lost ------------------------------------------------------

    def test_commit_lost_after_the_server_had_it_is_found_committed(self):
        self.put(self.batch([1], "old"))
        self.relay.arm(self.commit, "after")
        r = self.put(self.batch([1, 2], "new"))
        # the true outcome of the commit that was made, not of a second run
        self.assert_multistatus(r, [(1, 200), (2, 201)])
        self.assertEqual(self.relay.dropped, 1)
        self.assertRegex(r.stderr, r"lost during the commit")
        self.assertRegex(r.stderr, r"the lost commit's outcome: committed")
        self.assertEqual(self.rows(), {1: "new", 2: "new"})

    def test_commit_lost_before_the_server_had_it_is_run_again(self):
        self.relay.arm(self.commit, "before")
        r = self.put(self.batch([3, 4], "again"))
        self.assert_multistatus(r, [(3, 201), (4, 201)])
        self.assertEqual(self.relay.dropped, 1)
        self.assertRegex(r.stderr, r"lost during the commit")
        self.assertRegex(r.stderr, r"the lost commit's outcome: not committed")
        self.assertEqual(self.rows(), {3: "again", 4: "again"})


class PostgresqlFailoverTest(FailoverCase, unittest.TestCase):
    backend = "postgresql"
    server_kind = servers.PostgresServer
    # the rows of the call of sql/'s upsert function (the check at connect
    # sends '[]'): its JSON parameter
    write = b'[{"c0":'
    # a batch that is one call goes alone, in autocommit: the call is its
    # commit, and its marker row tells what a lost answer did
    commit = write
    # a batch with a repeated id is two calls, in a transaction
    tx_commit = b"COMMIT\x00"

    def test_transaction_commit_lost_after_the_server_had_it_is_found_committed(self):
        self.put(self.batch([1], "old"))
        self.relay.arm(self.tx_commit, "after")
        r = self.put(self.batch([1, 2, 2], "new"))
        self.assert_multistatus(r, [(1, 200), (2, 201), (2, 200)])
        self.assertEqual(self.relay.dropped, 1)
        self.assertRegex(r.stderr, r"lost during the commit")
        self.assertRegex(r.stderr, r"the lost commit's outcome: committed")
        self.assertEqual(self.rows(), {1: "new", 2: "new"})

    def test_transaction_commit_lost_before_the_server_had_it_is_run_again(self):
        self.relay.arm(self.tx_commit, "before")
        r = self.put(self.batch([3, 3], "again"))
        self.assert_multistatus(r, [(3, 201), (3, 200)])
        self.assertEqual(self.relay.dropped, 1)
        self.assertRegex(r.stderr, r"the lost commit's outcome: not committed")
        self.assertEqual(self.rows(), {3: "again"})

    def test_a_lone_batch_lost_answer_gives_each_item_its_true_outcome(self):
        self.put(self.batch([2, 4], "old"))
        self.relay.arm(self.write, "after")
        r = self.put(self.batch([1, 2, 3, 4, 5], "new"))
        self.assert_multistatus(r, [(1, 201), (2, 200), (3, 201), (4, 200), (5, 201)])
        self.assertRegex(r.stderr, r"the lost commit's outcome: committed")
        self.assertEqual(self.rows(), {i: "new" for i in range(1, 6)})
        # the writer of the lost connection is given up; the new one wrote
        # nothing alone yet (the batch was not run again)
        marks = self.server.query("SELECT Batch FROM EventBatchCommit ORDER BY Written")
        self.assertEqual(marks[-1][0], "lost", marks)

    def test_a_given_up_writer_writes_nothing(self):
        # what a call still on its way when the fence ran meets
        w = "0a1b2c3d-0000-4000-8000-000000000001"
        self.assertEqual(self.server.query(
            "SELECT events_batch_outcome_v1('%s')" % w), [["lost "]])
        call = ("SELECT * FROM events_batch_upsert_v2('[{\"c0\":77,\"c1\":false,"
                "\"c6\":\"2024-01-01 00:00:00.000\",\"c14\":false,\"c15\":false,"
                "\"c21\":\"2024-01-01 00:00:00.000\"}]', '{}', '{}', '%s', 'b')")
        with self.assertRaises(Exception) as cm:
            self.server.query(call % w)
        self.assertIn("was given up", str(cm.exception))
        self.assertEqual(self.rows(), {})
        # another writer still writes, and its marker holds the flags
        self.server.query(call % "0a1b2c3d-0000-4000-8000-000000000002")
        self.assertEqual(self.rows(), {77: None})
        self.assertEqual(self.server.query(
            "SELECT events_batch_outcome_v1('0a1b2c3d-0000-4000-8000-000000000002')"),
            [["b 1"]])

    def test_without_the_marker_table_batches_use_a_transaction_and_a_lost_commit_is_found_out(self):
        self.server.execute("DROP TABLE EventBatchCommit CASCADE")
        self.addCleanup(self.server.execute, self.server.schema_sql())
        self.relay.arm(self.tx_commit, "after")
        r = self.put(self.batch([6], "tx"))
        self.assert_multistatus(r, [(6, 201)])
        self.assertRegex(r.stderr, r"no events_batch_outcome_v1 function or EventBatchCommit "
                                   r"table \(SQLSTATE 42P01; see sql/\)")
        self.assertRegex(r.stderr, r"the lost commit's outcome: committed")
        self.assertEqual(self.rows(), {6: "tx"})


class MariadbFailoverTest(FailoverCase, unittest.TestCase):
    backend = "mariadb"
    server_kind = servers.MariaDBServer
    # COM_QUERY "COMMIT" (not READ COMMITTED, which the driver sends first)
    commit = b"\x03COMMIT"

    def test_without_the_marker_table_a_lost_commit_is_503_outcome_unknown(self):
        self.server.execute("DROP TABLE EventBatchCommit")
        self.addCleanup(self.server.execute, self.server.schema_sql())
        self.relay.arm(self.commit, "after")
        r = self.put(self.batch([9], "maybe"))
        err = self.assert_unavailable(r)
        self.assertIn("cannot be known", err["detail"])
        self.assertIn("re-sending it is safe", err["detail"])
        self.assertRegex(r.stderr, r"no EventBatchCommit table")


if __name__ == "__main__":
    harness.main()
