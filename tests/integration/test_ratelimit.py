"""Rate limits per API key (SPEC §9, §4 row 4a), end to end: the real
program as two FastCGI workers behind a real lighttpd and as plain CGI
processes, all drawing from one bucket per key in the files under
rate_state_dir, against a real SQLite file.

Rates are tiny (1 token a second, a burst of 5), so that a refill cannot
pass for a burst: the counts are exact where the test runs faster than a
token a second, and bounded by burst + elapsed x rate where it may not.
"""
import concurrent.futures
import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import API_KEY, Sandbox, event  # noqa: E402
from webservers import Lighttpd  # noqa: E402

SECOND_KEY = "second-api-key-0123456789"
RATE, BURST = 1, 5
RATE_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")


class RateLimitCase(unittest.TestCase):
    def setUp(self):
        self.sb = Sandbox()
        self.state = os.path.join(self.sb.dir, "rate")
        self.configure()
        self.token = self.sb.token(ttl=3600)
        self.lighttpd = None

    def configure(self, rate=RATE, burst=BURST):
        self.sb.write_config(
            limits={"rate_per_second": rate, "rate_burst": burst,
                    "rate_state_dir": self.state},
            auth={"api_key_sha256": [hashlib.sha256(API_KEY.encode()).hexdigest(),
                                     hashlib.sha256(SECOND_KEY.encode()).hexdigest()]})

    def tearDown(self):
        self.sb.close()

    def cgi(self, body=None, key=API_KEY, **over):
        env = self.sb.headers(**dict({"HTTP_X_API_KEY": key,
                                      "HTTP_AUTHORIZATION": "Bearer " + self.token}, **over))
        r, err, rc = self.sb.cgi([] if body is None else body, env=env)
        self.assertEqual(rc, 0, err)
        self.assertLess(r.status, 500, (r, err))
        return r

    def fcgi(self, body=None, key=API_KEY, **over):
        if self.lighttpd is None:
            self.lighttpd = Lighttpd(self.sb, max_procs=2, run_user=None)
        h = {"x-api-key": key, "Authorization": "Bearer " + self.token}
        h.update(over)
        r = self.lighttpd.request([] if body is None else body, headers=h)
        self.assertLess(r.status, 500, r)
        return r

    def assert_refused(self, r):
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json["data"], None)
        self.assertEqual(r.json["error"]["type"], "urn:events-batch:rate-limited")
        self.assertEqual(r.json["error"]["status"], 429)
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        self.assertEqual(r.headers["ratelimit-remaining"], "0")
        self.assertEqual(r.headers["ratelimit-limit"], str(BURST))

    def drain(self, via=None, key=API_KEY):
        """Requests until one is refused (a slow run, under sanitizers, may
        see a token come back in between); returns the 429."""
        for _ in range(BURST + 30):
            r = (via or self.cgi)(key=key)
            if r.status == 429:
                self.assert_refused(r)
                return r
            self.assertEqual(r.status, 207, r)
        self.fail("never refused")

    def count(self, results):
        ok = sum(1 for r in results if r.status == 207)
        refused = [r for r in results if r.status != 207]
        for r in refused:
            self.assert_refused(r)
        return ok, len(refused)


class SharedBucketTest(RateLimitCase):
    def test_fastcgi_workers_and_cgi_processes_draw_from_one_bucket(self):
        started = time.monotonic()
        results = []
        # two workers (lighttpd max-procs 2) and CGI processes, interleaved
        for i in range(12):
            results.append(self.fcgi() if i % 2 == 0 else self.cgi())
        elapsed = time.monotonic() - started
        ok, refused = self.count(results)
        self.assertGreaterEqual(ok, BURST)
        self.assertLessEqual(ok, BURST + int(elapsed * RATE), (ok, elapsed))
        self.assertEqual(ok + refused, 12)
        # the bucket ran dry for both kinds of process
        refused_at = [i for i, r in enumerate(results) if r.status == 429]
        self.assertTrue(any(i % 2 == 0 for i in refused_at), refused_at)
        self.assertTrue(any(i % 2 == 1 for i in refused_at), refused_at)

    def test_two_keys_have_separate_buckets(self):
        self.drain(key=API_KEY)
        second = self.cgi(key=SECOND_KEY)
        self.assertEqual(second.status, 207, second)
        self.assertEqual(second.headers["ratelimit-remaining"], str(BURST - 1))

    def test_the_bucket_refills(self):
        last = self.drain()
        time.sleep(int(last.headers["retry-after"]) + 0.2)
        again = self.cgi()
        self.assertEqual(again.status, 207, again)

    def test_many_clients_at_once_never_pass_more_than_the_bucket_holds(self):
        started = time.monotonic()
        self.fcgi()  # the workers are up; that request took a token
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            jobs = [pool.submit(self.fcgi if i % 4 else self.cgi) for i in range(200)]
            results = [j.result() for j in jobs]
        elapsed = time.monotonic() - started
        ok, refused = self.count(results)
        self.assertLessEqual(ok + 1, BURST + int(elapsed * RATE), (ok, elapsed))
        self.assertEqual(ok + refused, 200)


class HeadersTest(RateLimitCase):
    def test_a_207_and_later_errors_of_a_limited_key_carry_the_headers(self):
        r = self.cgi([event(1)])
        self.assertEqual(r.status, 207, r)
        self.assertEqual(r.headers["ratelimit-limit"], str(BURST))
        self.assertEqual(r.headers["ratelimit-remaining"], str(BURST - 1))
        self.assertEqual(r.headers["ratelimit-reset"], "1")
        self.assertNotIn("retry-after", r.headers)
        bad_token = self.cgi(HTTP_AUTHORIZATION="Bearer nope")
        self.assertEqual(bad_token.status, 401)
        self.assertEqual(bad_token.headers["ratelimit-remaining"], str(BURST - 2))
        no_db = self.cgi(HTTP_VBASOFTWARE_DATABASE="other")
        self.assertEqual(no_db.status, 400)
        for h in RATE_HEADERS:
            self.assertIn(h, no_db.headers)
        media = self.cgi(CONTENT_TYPE="text/plain")
        self.assertEqual(media.status, 415)
        self.assertIn("ratelimit-reset", media.headers)

    def test_answers_before_the_key_is_known_carry_none(self):
        for r in (self.cgi(key="wrong-key"), self.cgi(REQUEST_METHOD="GET")):
            self.assertIn(r.status, (401, 405))
            for h in RATE_HEADERS:
                self.assertNotIn(h, r.headers)

    def test_a_refused_request_writes_nothing(self):
        for _ in range(5):
            self.drain()
            r = self.cgi([event(7), event(8)])
            if r.status == 429:
                break
            # a token came back in between (a slow run): try again
            con = sqlite3.connect(self.sb.db_path, timeout=30)
            con.execute("DELETE FROM Event")
            con.commit()
            con.close()
        self.assert_refused(r)
        self.assertEqual(self.sb.count(), 0)
        self.assertIn("over its rate limit", r.json["error"]["detail"])

    def test_no_limit_configured_sends_no_headers(self):
        self.sb.write_config()
        for _ in range(BURST + 2):
            r = self.cgi()
            self.assertEqual(r.status, 207)
            for h in RATE_HEADERS:
                self.assertNotIn(h, r.headers)
        self.assertFalse(os.path.exists(self.state))


class BrokenStateTest(RateLimitCase):
    """A corrupt, truncated, deleted or unusable state file: never a 5xx,
    never a crash, and a good caller refused for one refill at most."""

    def files(self):
        return [os.path.join(self.state, n) for n in os.listdir(self.state)]

    def assert_served_within_a_refill(self, via):
        r = via()
        if r.status == 429:
            time.sleep(1.0 / RATE + 0.2)
            r = via()
        self.assertEqual(r.status, 207, r)

    def each_via(self, damage):
        for via in (self.cgi, self.fcgi):
            with self.subTest(via=via.__name__):
                self.drain(via)
                for f in self.files():
                    damage(f)
                self.assert_served_within_a_refill(via)
                self.assert_served_within_a_refill(self.cgi)
                self.assert_served_within_a_refill(self.fcgi)
                time.sleep(BURST / RATE)  # full again for the next one

    def test_a_corrupt_file(self):
        def corrupt(f):
            with open(f, "r+b") as fh:
                fh.write(os.urandom(32))
        self.each_via(corrupt)

    def test_a_truncated_file(self):
        for size in (5, 0):
            with self.subTest(size=size):
                def truncate(f):
                    with open(f, "r+b") as fh:
                        fh.truncate(size)
                self.fcgi()
                workers = self.lighttpd.workers()
                self.each_via(truncate)
                # cut to nothing under the workers' mappings: their next
                # access was a SIGBUS, caught; the same workers still serve
                self.assertEqual(self.lighttpd.workers(), workers)
                for f in self.files():
                    self.assertEqual(os.path.getsize(f), 16)

    def test_a_deleted_file_and_folder(self):
        def delete(f):
            os.unlink(f)
        self.each_via(delete)
        shutil.rmtree(self.state)
        self.assert_served_within_a_refill(self.cgi)
        self.assertTrue(os.path.isdir(self.state))

    def test_an_unusable_file(self):
        # a folder in the file's place fails for root too; each process
        # then limits the key alone, from a full bucket
        self.drain(self.cgi)
        self.fcgi()
        for f in self.files():
            os.unlink(f)
            os.mkdir(f)
        # a worker follows the path within a second (the drained old file
        # until then)
        self.assert_served_within_a_refill(self.fcgi)
        self.assert_served_within_a_refill(self.fcgi)
        for _ in range(3):
            self.assertEqual(self.cgi().status, 207)
            self.assertEqual(self.fcgi().status, 207)
        self.assertIn("this process limits the key alone", self.lighttpd.log())

    def test_a_process_stopped_or_killed_mid_run_wedges_nobody(self):
        # a process that stops (SIGSTOP, a debugger) or dies while it has
        # the file mapped holds nothing others wait for: a take is one
        # compare-and-swap
        self.drain(self.cgi)
        holder = self.sb.start([sys.executable, "-c", (
            "import mmap, os, sys, time\n"
            "maps = [mmap.mmap(os.open(f, os.O_RDWR), 16) for f in sys.argv[1:]]\n"
            "print('mapped', flush=True)\n"
            "time.sleep(600)\n")] + self.files(), stdout=subprocess.PIPE)
        self.assertEqual(holder.stdout.readline(), b"mapped\n")
        os.kill(holder.pid, signal.SIGSTOP)
        started = time.monotonic()
        self.assert_refused(self.cgi())  # still drained, and at once
        self.assertLess(time.monotonic() - started, 5)
        holder.kill()
        holder.wait()
        time.sleep(1.0 / RATE + 0.2)
        r = self.cgi()
        self.assertEqual(r.status, 207, r)
        self.assertLess(int(r.headers["ratelimit-remaining"]), BURST - 2, r)

    def test_an_unusable_folder(self):
        os.makedirs(os.path.dirname(self.state), exist_ok=True)
        with open(self.state, "w") as f:
            f.write("a file where the folder should be")
        for _ in range(3):
            r = self.cgi()
            self.assertEqual(r.status, 207, r)
            self.assertEqual(r.headers["ratelimit-limit"], str(BURST))


if __name__ == "__main__":
    harness.main()
