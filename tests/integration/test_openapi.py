"""doc/openapi.yaml: linted with Redocly CLI, and every JSON response that the
other integration tests received from the program (recorded by harness.py in
$EB_RESPONSE_LOG) validated against it with openapi-response-validator.
make check runs this file after the others."""
import glob
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SPEC = os.path.join(harness.SRCDIR, "doc", "openapi.yaml")
TOOLS_SRC = os.path.join(harness.SRCDIR, "tests", "openapi")
TOOLS = os.path.join(harness.BUILDDIR, "tests", "openapi-tools")
# every status the program can answer with, each seen live by some test
EXPECTED_STATUSES = {200, 207, 400, 401, 403, 404, 405, 413, 414, 415, 429, 500, 503}


def install_tools():
    """npm ci the pinned tools into the build tree (once per lockfile);
    test_prism.py uses them too."""
    os.makedirs(TOOLS, exist_ok=True)
    for name in ("package.json", "package-lock.json", "validate.mjs"):
        shutil.copy(os.path.join(TOOLS_SRC, name), TOOLS)
    stamp = os.path.join(TOOLS, "node_modules", ".package-lock.json")
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(
            os.path.join(TOOLS_SRC, "package-lock.json")):
        p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=TOOLS, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError("npm ci failed:\n" + p.stdout + p.stderr)


def setUpModule():
    install_tools()


class OpenAPITest(unittest.TestCase):
    def test_description_passes_redocly_lint(self):
        p = subprocess.run([os.path.join(TOOLS, "node_modules", ".bin", "redocly"), "lint",
                            "--format=stylish", SPEC],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("warning", (p.stdout + p.stderr).lower().replace("deprecation warning", ""))

    def test_every_recorded_response_matches_the_description(self):
        log_dir = os.environ.get("EB_RESPONSE_LOG")
        self.assertTrue(log_dir, "EB_RESPONSE_LOG is not set: nothing was recorded")
        files = sorted(glob.glob(os.path.join(log_dir, "*.jsonl")))
        self.assertTrue(files, "no recorded responses in " + log_dir)
        p = subprocess.run(["node", os.path.join(TOOLS, "validate.mjs"), SPEC] + files,
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        line = p.stdout.strip().splitlines()[-1]
        seen = {int(s) for s in line.split("(statuses ")[1].split(")")[0].split()}
        self.assertEqual(EXPECTED_STATUSES - seen, set(), line)
        self.assertIn(", 0 invalid", line)

    def test_validator_rejects_a_response_that_breaks_the_description(self):
        bad = os.path.join(TOOLS, "bad.jsonl")
        with open(bad, "w") as f:
            f.write('{"status": 207, "where": "self-test", "body": {"data": [{"id": [{"key": '
                    '"event_ID", "value": 1}], "status": 202, "body": "Created"}], '
                    '"error": null, "debug": {"activityID": "not-a-uuid"}}}\n')
            # the health answer is checked too
            f.write('{"status": 200, "where": "self-test", "body": {"status": "down"}}\n')
        p = subprocess.run(["node", os.path.join(TOOLS, "validate.mjs"), SPEC, bad],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("2 invalid", p.stdout)


if __name__ == "__main__":
    harness.main()
