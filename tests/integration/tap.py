"""A TAP runner for unittest: each test file ends with tap.main() (through
harness.main), which prints TAP for automake's driver and, under valgrind,
fails a test whose processes' logs report errors."""
import sys
import traceback
import unittest

from memcheck import VALGRIND, new_valgrind_errors, valgrind_report


class TapResult(unittest.TestResult):
    """One TAP line per test method; a failed subTest fails its method."""

    def __init__(self):
        super().__init__()
        self.n = 0
        self._test = None
        self._reported = False
        self._sub_errors = []

    def startTest(self, test):
        super().startTest(test)
        self._test = test
        self._reported = False
        self._sub_errors = []

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._sub_errors.append((subtest, err))

    def stopTest(self, test):
        if not self._reported and self._sub_errors:
            self._line(False, test)
            for subtest, err in self._sub_errors:
                print("# in %s" % subtest.id())
                self._diag(err)
        super().stopTest(test)

    def _line(self, ok, test, note=""):
        self._reported = True
        self.n += 1
        name = test.id()
        if isinstance(test, unittest.TestCase):  # else "tearDownClass (module.Class)"
            name = name.split(".", 1)[-1]
        print("%s %d - %s%s" % ("ok" if ok else "not ok", self.n, name, note))
        sys.stdout.flush()

    def addSuccess(self, test):
        self._line(True, test)

    def _failed(self, test, err):
        # a test that fails, then fails a cleanup too, is one TAP line
        # with both diagnostics; a class's or module's set-up or tear-down
        # (never started as a test) gets a line of its own
        if not self._reported or test is not self._test:
            self._line(False, test)
        self._diag(err)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._failed(test, err)

    def addError(self, test, err):
        super().addError(test, err)
        self._failed(test, err)

    def addSkip(self, test, reason):
        self._line(True, test, " # SKIP " + reason)

    @staticmethod
    def _diag(err):
        for line in "".join(traceback.format_exception(*err)).splitlines():
            print("# " + line)


def _tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _tests(t)
        else:
            yield t


def _check_valgrind(test):
    found = new_valgrind_errors()
    if found:
        test.fail(valgrind_report(found)[-12000:])


def main(module=None):
    """Run the TestCases of the calling module, reporting TAP on stdout.
    Under valgrind, each test ends with a look at the logs (a cleanup added
    first, so it runs after the test's own); what a class's processes
    report after its last test fails the run."""
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[module or "__main__"])
    print("1..%d" % suite.countTestCases())
    sys.stdout.flush()
    if VALGRIND:
        for test in _tests(suite):
            test.addCleanup(_check_valgrind, test)
    result = TapResult()
    suite.run(result)
    ok = result.wasSuccessful()
    late = new_valgrind_errors()
    if late:
        ok = False
        for line in valgrind_report(late).splitlines():
            print("# " + line)
    sys.exit(0 if ok else 1)
