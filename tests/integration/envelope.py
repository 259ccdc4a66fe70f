"""The checks of the program's answers (SPEC §6) and of its stderr and
logs that every test file shares: EnvelopeChecks."""
import contextlib
import re
import unittest


ENDPOINT = "/api/events-batch"      # the path the program is served at
UUID_RE = re.compile(r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
JSON_TYPE = "application/json; charset=utf-8"
# what a sanitizer report or a crash leaves on stderr or in a server's log
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error", "Segmentation fault")
# the body of a stored item, by its status (SPEC §6)
ITEM_BODIES = {201: "Created", 200: "Updated"}


def sanitizer_marks(text):
    """The SANITIZER_MARKS that text holds (empty when it is clean)."""
    return [mark for mark in SANITIZER_MARKS if mark in text]


def _item_pair(entry):
    """(event_ID, status) of one 207 entry; the entry itself when it has not
    that shape, so that the comparison fails and shows it."""
    try:
        return (entry["id"][0]["value"], entry["status"])
    except (KeyError, IndexError, TypeError):
        return entry


class EnvelopeChecks:
    """The checks of the program's answers and logs, mixed into the
    unittest.TestCase classes of every test file (it uses their assert*).

    error_instance is the path an error's "instance" must be when a test
    does not name one."""

    error_instance = ENDPOINT

    @contextlib.contextmanager
    def case(self, **info):
        """Like subTest, but a failure stops the test and is reported (the
        harness's TAP runner does not report subtest failures)."""
        try:
            yield
        except AssertionError as e:
            where = ", ".join("%s=%r" % kv for kv in info.items())
            e.args = ("[%s] %s" % (where, e.args[0] if e.args else ""),) + e.args[1:]
            raise

    # --- answers (SPEC §6) ----------------------------------------------------

    def assert_multistatus(self, r, expected, case=None):
        """207 with exactly these (event_ID, status) pairs, in this order:
        expected is [(id or None, status)].  Each entry's id is the one-key
        list SPEC §6 gives, its body a string, "Created" for 201 and
        "Updated" for 200.  case(item=i) wraps the checks of entry i (by
        default self.case, which names the item in the failure).  Returns
        the entries."""
        case = case or self.case
        expected = list(expected)
        self.assertEqual(r.status, 207, r)
        self.assertEqual(r.headers.get("content-type"), JSON_TYPE, r)
        j = r.json
        self.assertIsInstance(j, dict, r)
        self.assertIsNone(j.get("error", "missing"))
        self.assertRegex(j["debug"]["activityID"], UUID_RE)
        data = j["data"]
        self.assertIsInstance(data, list, r)
        self.assertEqual([_item_pair(d) for d in data], expected)
        for i, (entry, (eid, status)) in enumerate(zip(data, expected)):
            with case(item=i):
                self.assertEqual(entry.get("id"), [{"key": "event_ID", "value": eid}], entry)
                self.assertEqual(entry.get("status"), status, entry)
                self.assertIsInstance(entry.get("body"), str, entry)
                if status in ITEM_BODIES:
                    self.assertEqual(entry["body"], ITEM_BODIES[status])
        return data

    def assert_error(self, r, status, instance=None):
        """The program's own request-level failure (SPEC §6), not a server's
        error page: data null and an RFC 7807 error with non-empty type,
        title and detail, the HTTP status, and instance (by default
        self.error_instance).  Returns the error object."""
        if instance is None:
            instance = self.error_instance
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.headers.get("content-type"), JSON_TYPE, r)
        j = r.json
        self.assertIsInstance(j, dict, "not the program's envelope: %r" % (r,))
        self.assertIn("data", j)
        self.assertIsNone(j["data"])
        err = j.get("error")
        self.assertIsInstance(err, dict, r)
        for k in ("type", "title", "detail"):
            self.assertIsInstance(err.get(k), str, k)
            self.assertTrue(err[k], k)
        self.assertEqual(err.get("status"), status)
        self.assertEqual(err.get("instance"), instance)
        self.assertRegex(j["debug"]["activityID"], UUID_RE)
        return err

    def assert_unavailable(self, r, instance=None):
        """503 as assert_error checks it, with a Retry-After in whole
        seconds (at least 1).  Returns the error object."""
        err = self.assert_error(r, 503, instance)
        self.assertRegex(r.headers.get("retry-after", ""), r"\A[1-9][0-9]*\Z",
                         "503 without a Retry-After in seconds: %r" % r.headers)
        return err

    # --- stderr and logs --------------------------------------------------------

    def assert_no_sanitizer(self, text, what="sanitizer/crash report", tail=None):
        """No SANITIZER_MARKS in text (a process's stderr or a server's log);
        the failure shows what and the text (its last tail characters)."""
        shown = text if tail is None else text[-tail:]
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, text, "%s:\n%s" % (what, shown))

    def assert_clean_exit(self, rc, err):
        """A run of the program exited 0 and left no sanitizer report."""
        self.assertEqual(rc, 0, "exit status %r, stderr:\n%s" % (rc, err))
        self.assert_no_sanitizer(err)
