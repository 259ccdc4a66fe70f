"""The README's first quick-start command: scripts/demo.sh serves the program
behind lighttpd and prints a curl command whose batch is created, then
updated.  Run here on a free port, in a temp dir, with the finished build."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import shutil
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class DemoTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="eb-demo-")
        self.port = harness.free_port()
        env = dict(os.environ, DEMO_PORT=str(self.port), DEMO_DIR=self.dir,
                   EB_BUILDDIR=harness.BUILDDIR, DEMO_PROGRAM=harness.BINARY)
        self.out = open(os.path.join(self.dir, "demo.out"), "w+")
        self.proc = subprocess.Popen(["sh", os.path.join(harness.SRCDIR, "scripts", "demo.sh")],
                                     env=env, stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        harness.wait_listening(self.port, self.proc, timeout=60)

    def tearDown(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(harness.scaled(10))
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def printed_curl(self):
        self.out.seek(0)
        text = self.out.read()
        m = re.search(r"^curl .*?batch\.json$", text, re.S | re.M)
        self.assertIsNotNone(m, text)
        return m.group(0)

    def run_curl(self, cmd):
        p = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_printed_curl_creates_then_updates(self):
        cmd = self.printed_curl()
        self.assertIn("127.0.0.1:%d/events-batch" % self.port, cmd)
        first = self.run_curl(cmd)
        self.assertEqual([d["status"] for d in first["data"]], [201, 201, 201])
        self.assertIsNone(first["error"])
        second = self.run_curl(cmd)
        self.assertEqual([d["status"] for d in second["data"]], [200, 200, 200])
        rows = subprocess.run(["sqlite3", os.path.join(self.dir, "demo.db"),
                               "SELECT Event_ID, Entry_User FROM Event ORDER BY 1"],
                              capture_output=True, text=True, check=True).stdout.split()
        self.assertEqual(rows, ["1001|demo", "1002|demo", "1003|demo"])
        # "Log lines appear below": the program's line for each request,
        # in what demo.sh printed, after that sentence
        def said():
            self.out.seek(0)
            return self.out.read()
        harness.wait_for(lambda: len(re.findall(r"method=PUT db=demo items=3 ", said())) == 2,
                         what="the two requests' log lines in the demo's output")
        text = said()
        self.assertLess(text.index("Log lines appear below"), text.index("method=PUT db=demo"))
        self.assertIn("created=3 updated=0", text)
        self.assertIn("created=0 updated=3", text)


if __name__ == "__main__":
    harness.main()
