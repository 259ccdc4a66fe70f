"""Faults with real parts, each checked in the database afterwards (SPEC §7):
a worker killed in the middle of a batch, a full disk, a read-only database,
and a long run of concurrent clients with good and bad batches."""
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import webservers  # noqa: E402

# the soak's length: under valgrind a shorter one (still thousands of the
# workers' allocations per second of it) keeps `make check-valgrind` short
SOAK_SECONDS = float(os.environ.get("EB_SOAK_SECONDS") or (20 if harness.VALGRIND else 60))


def big_batch(first, count, pad=1000):
    return [harness.event(first + i, meta_Data="m" * pad, subject="s%d" % i)
            for i in range(count)]


class FaultCase(harness.EnvelopeChecks, unittest.TestCase):
    def setUp(self):
        self.sb = harness.Sandbox()
        self.addCleanup(self.sb.close)

    def mount(self, *args):
        """mount(8) for this test, undone at cleanup; skips where not allowed."""
        target = args[-1]
        os.makedirs(target, exist_ok=True)
        p = subprocess.run(["mount"] + list(args), capture_output=True, text=True)
        if p.returncode != 0:
            self.skipTest("cannot mount here (%s)" % p.stderr.strip())
        self.addCleanup(subprocess.run, ["umount", "-l", target], capture_output=True)

    def use_database_in(self, folder):
        """Move the sandbox's schema'd database into folder."""
        path = os.path.join(folder, "events.db")
        harness.Sandbox.create_db(path)
        self.sb.db_path = path
        self.sb.write_config(databases={"test": "Driver=SQLite3;Database=%s;NoCreat=1" % path})
        return path

    def cgi(self, body, **over):
        r, err, rc = self.sb.cgi(body, env=self.sb.headers(**over))
        self.assert_clean_exit(rc, err)
        return r


class KilledWorkerTest(FaultCase):
    def test_sigkill_in_the_middle_of_a_batch_applies_none_of_it(self):
        self.cgi([harness.event(1, subject="before")])
        batch = big_batch(100, 10000)
        body = json.dumps(batch).encode()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "EVENTS_BATCH_CONFIG": self.sb.conf_path, "CONTENT_LENGTH": str(len(body))}
        env.update(self.sb.headers())
        wal = self.sb.db_path + "-wal"
        size_before = os.path.getsize(wal) if os.path.exists(wal) else 0
        p = subprocess.Popen([harness.BINARY], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
        p.stdin.write(body)
        p.stdin.close()
        # the batch is being written once uncommitted pages spill into the WAL
        harness.wait_for(lambda: p.poll() is None and os.path.exists(wal) and
                         os.path.getsize(wal) > size_before + (1 << 20),
                         timeout=120, what="the worker to be writing the batch")
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
        p.stderr.close()
        self.assertEqual(p.returncode, -signal.SIGKILL)
        rows = self.sb.rows("SELECT Event_ID, Subject FROM Event ORDER BY Event_ID")
        self.assertEqual(rows, [{"Event_ID": 1, "Subject": "before"}])
        # the same PUT again gives the full result
        r = self.cgi(batch)
        self.assert_multistatus(r, [(e["event_ID"], 201) for e in batch])
        self.assertEqual(self.sb.count(), 10001)


class DiskTest(FaultCase):
    def test_full_disk_is_503_and_applies_nothing(self):
        folder = os.path.join(self.sb.dir, "small")
        self.mount("-t", "tmpfs", "-o", "size=768k", "tmpfs", folder)
        self.use_database_in(folder)
        r = self.cgi([harness.event(1, subject="fits")])
        self.assert_multistatus(r, [(1, 201)])
        r = self.cgi(big_batch(100, 2000))
        # never a 207 that claims rows it did not store
        self.assert_unavailable(r)
        self.assertEqual(self.sb.rows("SELECT Event_ID FROM Event"), [{"Event_ID": 1}])
        # the file is still whole, and what fits still goes in
        r = self.cgi([harness.event(2)])
        self.assert_multistatus(r, [(2, 201)])
        con = sqlite3.connect(self.sb.db_path)
        self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        con.close()

    def test_read_only_database_is_503_and_unchanged(self):
        folder = os.path.join(self.sb.dir, "data")
        os.makedirs(folder)
        path = self.use_database_in(folder)
        self.cgi([harness.event(1, subject="kept")])
        con = sqlite3.connect(path)  # fold the WAL back, so the file alone holds the rows
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        with open(path, "rb") as f:
            before = f.read()
        self.mount("--bind", "-o", "ro", folder, folder)
        r = self.cgi([harness.event(1, subject="changed"), harness.event(2)])
        self.assert_unavailable(r)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), before)


class SoakTest(FaultCase):
    """16 clients for EB_SOAK_SECONDS (60; 20 under valgrind) against 4 FastCGI workers behind
    lighttpd, with good batches, batches with bad items, bodies that are not
    JSON and callers without a token."""

    def test_sixteen_clients_with_mixed_batches(self):
        lt = webservers.Lighttpd(self.sb, max_procs=4, run_user=None)
        token = self.sb.token(ttl=3600 + int(SOAK_SECONDS))
        stored, lock, failures = set(), threading.Lock(), []
        counts = {"requests": 0}
        deadline = time.time() + SOAK_SECONDS

        def client(n):
            rnd = random.Random(n)
            while time.time() < deadline and not failures:
                kind = rnd.choice(("good", "good", "mixed", "not json", "no token"))
                ids = rnd.sample(range(1, 5000), rnd.choice((1, 10, 100)))
                headers = {"Authorization": "Bearer " + token}
                if kind == "no token":
                    headers["Authorization"] = None
                if kind == "not json":
                    body = b'[{"event_ID": 1,'
                else:
                    body = [harness.event(i, subject="c%d" % n) for i in ids]
                    if kind == "mixed":
                        body += [{"event_ID": "x"}, harness.event(ids[0], reminder=1)]
                try:
                    r = lt.request(body, headers=headers)
                    expect = {"good": 207, "mixed": 207, "not json": 400, "no token": 401}[kind]
                    if r.status != expect or r.json is None:
                        raise AssertionError("%s: %r" % (kind, r))
                    if expect == 207:
                        got = [d["status"] for d in r.json["data"]]
                        if any(s not in (200, 201) for s in got[:len(ids)]) or \
                                got[len(ids):] != [400] * (len(got) - len(ids)):
                            raise AssertionError("%s: %r" % (kind, got))
                        with lock:
                            stored.update(ids)
                    with lock:
                        counts["requests"] += 1
                except Exception as e:  # reported once, below
                    failures.append(e)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SOAK_SECONDS + harness.scaled(300))
        self.assertEqual(failures, [])
        self.assertGreater(counts["requests"], 16)
        self.assertEqual(self.sb.count(), len(stored))
        # no worker died: every request line came from the first 4 workers
        log = lt.log()
        pids = {line.split("[", 1)[1].split("]", 1)[0] for line in log.splitlines()
                if "events-batch[" in line and " method=" in line}
        self.assertLessEqual(len(pids), 4, pids)
        self.assert_no_sanitizer(log)


if __name__ == "__main__":
    harness.main()
