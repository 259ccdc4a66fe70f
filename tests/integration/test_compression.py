"""Compressed request bodies (SPEC §10, §4 rows 9, 9a and 10), on the real
program as plain CGI and through real web servers started from the shipped
configs: a gzip or deflate (zlib) batch stores exactly the rows the plain
one does; a bomb is a 413 with a small peak RSS and nothing stored; a body
that does not inflate is 400; another coding is 415 with Accept-Encoding;
identity is the plain body.  The web servers must pass Content-Encoding on
to the program rather than decode (or refuse) it themselves."""
import gzip
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import webservers as ws  # noqa: E402

EVENTS = 500
DEFAULT_MAX_BODY = 16 * 1024 * 1024
BOMB_SIZE = 64 * 1024 * 1024
# the bomb may cost the max_body_bytes buffer it fills, not its 64 MiB
BOMB_RSS_KIB = 64 * 1024


def batch(first_id=1, n=EVENTS):
    """n valid events with every defaulted field given, so that two runs
    store the same rows whenever they run."""
    return [harness.event(first_id + i, subject="compressed %d é" % i,
                          entry_Date="2020-01-01T00:00:00Z", entry_User="u%d" % (i % 7),
                          update_Date="2025-01-02T03:04:05Z", update_User="v",
                          meta_Data="x" * (i % 50))
            for i in range(n)]


def empty_table(sb):
    con = sqlite3.connect(sb.db_path, timeout=30)
    try:
        con.execute("DELETE FROM Event")
        con.commit()
    finally:
        con.close()


def body_of(events):
    return json.dumps(events).encode()


def deflate_zlib(data):
    return zlib.compress(data, 9)


def deflate_raw(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def gzip_bomb(size=BOMB_SIZE):
    """size bytes of zeros gzipped (about size / 1000), made chunk by chunk."""
    c = zlib.compressobj(9, zlib.DEFLATED, 15 + 16)
    zeros = bytes(1 << 20)
    out = [c.compress(zeros) for _ in range(size >> 20)]
    return b"".join(out) + c.flush()


def run_measured(argv, body, env):
    """Run argv with body on stdin: (stdout, stderr, rc, peak RSS in KiB of
    that process alone, from wait4)."""
    with tempfile.TemporaryFile() as i, tempfile.TemporaryFile() as o, \
            tempfile.TemporaryFile() as e:
        i.write(body)
        i.seek(0)
        p = subprocess.Popen(argv, stdin=i, stdout=o, stderr=e, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        o.seek(0)
        e.seek(0)
        return o.read(), e.read().decode("utf-8", "replace"), p.returncode, usage.ru_maxrss


class CgiCompressionTest(harness.EnvelopeChecks, unittest.TestCase):
    """The program as plain CGI, a sandbox (SQLite file) per test."""

    error_instance = "/api/events-batch"

    def setUp(self):
        self.sb = harness.Sandbox()
        self.addCleanup(self.sb.close)

    def put(self, body, coding, sb=None, **over):
        sb = sb or self.sb
        env = sb.headers(HTTP_CONTENT_ENCODING=coding, **over)
        r, err, rc = sb.cgi(body, env=env)
        self.assert_clean_exit(rc, err)
        return r

    def plain_rows(self, events):
        plain = harness.Sandbox()
        self.addCleanup(plain.close)
        r = self.put(body_of(events), None, sb=plain)
        self.assert_multistatus(r, [(e["event_ID"], 201) for e in events])
        rows = plain.rows()
        self.assertEqual(len(rows), len(events))
        return rows

    def test_gzip_and_deflate_batches_store_the_rows_of_the_plain_one(self):
        events = batch()
        want = self.plain_rows(events)
        raw = body_of(events)
        for coding, packed in (("gzip", gzip.compress(raw)), ("deflate", deflate_zlib(raw)),
                               ("GZip", gzip.compress(raw)), ("x-gzip", gzip.compress(raw)),
                               ("gzip, identity", gzip.compress(raw))):
            with self.subTest(coding=coding):
                sb = harness.Sandbox()
                self.addCleanup(sb.close)
                self.assertLess(len(packed), len(raw))
                r = self.put(packed, coding, sb=sb)
                self.assert_multistatus(r, [(e["event_ID"], 201) for e in events])
                self.assertEqual(sb.rows(), want)

    def test_identity_and_no_coding_are_the_plain_body(self):
        events = batch(n=20)
        want = self.plain_rows(events)
        r = self.put(body_of(events), "identity")
        self.assert_multistatus(r, [(e["event_ID"], 201) for e in events])
        self.assertEqual(self.sb.rows(), want)

    def test_concatenated_gzip_members_are_one_body(self):
        events = batch(n=10)
        raw = body_of(events)
        half = len(raw) // 2
        r = self.put(gzip.compress(raw[:half]) + gzip.compress(raw[half:]), "gzip")
        self.assert_multistatus(r, [(e["event_ID"], 201) for e in events])
        self.assertEqual(self.sb.count(), 10)

    def test_bomb_is_413_with_a_small_peak_rss_and_nothing_stored(self):
        bomb = gzip_bomb()
        self.assertLess(len(bomb), DEFAULT_MAX_BODY // 100)  # CONTENT_LENGTH passes row 9
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "EVENTS_BATCH_CONFIG": self.sb.conf_path, "CONTENT_LENGTH": str(len(bomb))}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "ODBCSYSINI", "ODBCINI"):
            if k in os.environ:
                env[k] = os.environ[k]
        env.update(self.sb.headers(HTTP_CONTENT_ENCODING="gzip"))
        argv = [harness.BINARY]
        out, err, rc, peak = run_measured(argv, bomb, env)
        self.assert_clean_exit(rc, err)
        r = harness.parse_cgi(out)
        e = self.assert_error(r, 413)
        self.assertIn("inflated", e["detail"])
        self.assertEqual(self.sb.count(), 0)
        # the same run with a plain one-event batch: what the program costs
        # anyway (the sanitizers' shadow memory, valgrind)
        small = body_of(batch(n=1))
        env["CONTENT_LENGTH"] = str(len(small))
        del env["HTTP_CONTENT_ENCODING"]
        out, err, rc, base = run_measured(argv, small, env)
        self.assert_clean_exit(rc, err)
        self.assertEqual(harness.parse_cgi(out).status, 207)
        self.assertLess(peak - base, BOMB_RSS_KIB,
                        "the bomb's peak RSS %d KiB, a small batch's %d KiB" % (peak, base))
        if not harness.VALGRIND and "ASAN_OPTIONS" not in os.environ:
            # natively, the whole process
            self.assertLess(peak, BOMB_RSS_KIB, "peak RSS %d KiB" % peak)

    def test_body_that_does_not_inflate_is_400_and_nothing_stored(self):
        raw = body_of(batch(n=5))
        packed = gzip.compress(raw)
        corrupt = bytearray(packed)
        corrupt[len(corrupt) // 2] ^= 0x55
        cases = (("corrupt", "gzip", bytes(corrupt)),
                 ("truncated", "gzip", packed[:-6]),
                 ("trailing garbage", "gzip", packed + b"garbage"),
                 ("trailing garbage after zlib", "deflate", deflate_zlib(raw) + b"\0"),
                 ("not compressed", "gzip", raw),
                 ("gzip sent as deflate", "deflate", packed),
                 ("raw deflate", "deflate", deflate_raw(raw)))
        for name, coding, body in cases:
            with self.subTest(case=name):
                r = self.put(body, coding)
                e = self.assert_error(r, 400)
                self.assertEqual(e["type"], "urn:events-batch:invalid-body")
                self.assertIn("does not inflate", e["detail"])
                self.assertEqual(self.sb.count(), 0)

    def test_other_codings_are_415_with_accept_encoding(self):
        packed = gzip.compress(body_of(batch(n=2)))
        for coding in ("br", "zstd", "compress", "gzip, gzip", "deflate, gzip"):
            with self.subTest(coding=coding):
                r = self.put(packed, coding)
                e = self.assert_error(r, 415)
                self.assertEqual(e["type"], "urn:events-batch:unsupported-content-encoding")
                self.assertEqual(r.headers.get("accept-encoding"), "gzip, deflate")
                self.assertEqual(self.sb.count(), 0)

    def test_length_over_max_is_413_before_the_coding_is_judged(self):
        self.sb.write_config(limits={"max_body_bytes": 1000})
        r = self.put(b"x" * 2000, "br")
        self.assert_error(r, 413)
        self.assertNotIn("accept-encoding", r.headers)


class ServedCompression(ws.SharedServer):
    """Through a real web server from its shipped config (mixed into a
    TestCase that names it): the server passes Content-Encoding on and the
    program inflates."""

    server_class = None
    needs = ()
    error_instance = ws.PREFIX

    def put(self, body, coding):
        return self.server.request(body, token=self.token,
                                   headers={"Content-Encoding": coding} if coding else None)

    def test_gzipped_batch_stores_the_rows_of_the_plain_one(self):
        events = batch()
        raw = body_of(events)
        empty_table(self.sb)
        r = self.put(raw, None)
        self.assert_multistatus(r, [(e["event_ID"], 201) for e in events])
        want = self.sb.rows()
        self.assertEqual(len(want), EVENTS)
        for coding, packed in (("gzip", gzip.compress(raw)), ("deflate", deflate_zlib(raw))):
            with self.subTest(coding=coding):
                empty_table(self.sb)
                r = self.put(packed, coding)
                self.assert_multistatus(r, [(e["event_ID"], 201) for e in events])
                self.assertEqual(self.sb.rows(), want)

    def test_bad_and_unknown_codings_reach_the_program(self):
        r = self.put(gzip.compress(body_of(batch(n=2)))[:-4], "gzip")
        self.assertIn("does not inflate", self.assert_error(r, 400)["detail"])
        r = self.put(b"[]", "br")
        self.assert_error(r, 415)
        self.assertEqual(r.headers.get("accept-encoding"), "gzip, deflate")


    def test_bomb_is_413_and_the_worker_serves_the_next_batch(self):
        empty_table(self.sb)
        r = self.put(gzip_bomb(), "gzip")
        self.assertIn("inflated", self.assert_error(r, 413)["detail"])
        self.assertEqual(self.sb.count(), 0)
        # what the program left unread of the bomb does not spill into the
        # next request (nginx keeps its FastCGI connections)
        for i in range(3):
            r = self.put(gzip.compress(body_of(batch(first_id=10 * i + 1, n=2))), "gzip")
            self.assert_multistatus(r, [(10 * i + 1, 201), (10 * i + 2, 201)])
        self.assertEqual(self.sb.count(), 6)


class LighttpdCompressionTest(ServedCompression, harness.EnvelopeChecks, unittest.TestCase):
    """lighttpd-events-batch.conf: mod_fastcgi, bin-path."""
    server_class = ws.Lighttpd
    needs = ("lighttpd",)


class ApacheFcgidDeflate(ws.ApacheFcgid):
    """Apache mod_fcgid with mod_deflate loaded too, as Debian enables it."""
    modules = ("fcgid", "deflate")


class ApacheFcgidCompressionTest(ServedCompression, harness.EnvelopeChecks, unittest.TestCase):
    """events-batch-fcgid.conf: Apache mod_fcgid, mod_deflate loaded: it
    leaves the request body to the program and compresses the 207."""
    server_class = ApacheFcgidDeflate
    needs = ("apache2",)

    def test_the_207_comes_back_gzipped_when_accepted(self):
        empty_table(self.sb)
        h = ws.good_headers(self.sb, self.token)
        h.update({"Content-Encoding": "gzip", "Accept-Encoding": "gzip"})
        c = http.client.HTTPConnection("127.0.0.1", self.server.port,
                                       timeout=harness.scaled(120))
        try:
            c.request("PUT", ws.PREFIX, body=gzip.compress(body_of(batch(n=50))), headers=h)
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        self.assertEqual(r.status, 207)
        self.assertEqual(r.getheader("Content-Encoding"), "gzip")
        doc = json.loads(gzip.decompress(data))
        self.assertEqual([d["status"] for d in doc["data"]], [201] * 50)
        self.assertEqual(self.sb.count(), 50)


class NginxCompressionTest(ServedCompression, harness.EnvelopeChecks, unittest.TestCase):
    """nginx-events-batch.conf, the program on --listen."""
    server_class = ws.NginxListen
    needs = ("nginx",)


if __name__ == "__main__":
    harness.main()
