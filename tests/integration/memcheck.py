"""Valgrind bookkeeping for `make check-valgrind`: the wrapper that runs a
program under memcheck, one log per process, and the errors the logs report
that no test has reported yet; and TIME_SCALE, by which the timeouts that
bound the program's work grow under it."""
import atexit
import os
import re
import shlex
import shutil
import tempfile
import time

from paths import PROGRAM


# Valgrind (`make check-valgrind`): EB_VALGRIND is the valgrind command and
# its options (Makefile.am's VALGRIND_FLAGS).  Every run of the program then
# goes through a wrapper script, named like the program, that execs it under
# valgrind with one log file per process in VALGRIND_LOGS; each test fails
# when a log it caused reports an error (main runs new_valgrind_errors
# after each test).
VALGRIND = shlex.split(os.environ.get("EB_VALGRIND", ""))
# Timeouts that bound the program's work (never the assertions themselves)
# are multiplied by this: memcheck makes the program 20-50 times slower.
TIME_SCALE = float(os.environ.get("EB_TIME_SCALE") or (10 if VALGRIND else 1))
VALGRIND_DIR = None     # the wrappers, the suppressions and the logs
VALGRIND_LOGS = None
WRAPPED = {}            # wrapper path -> the program it runs


def scaled(seconds):
    """A timeout of seconds on an ordinary run, scaled by TIME_SCALE."""
    return seconds * TIME_SCALE


def _valgrind_setup():
    """A folder every user may use (a server's workers run as www-data):
    the suppression files copied there, and the log folder."""
    global VALGRIND_DIR, VALGRIND_LOGS, VALGRIND
    VALGRIND_DIR = tempfile.mkdtemp(prefix="eb-valgrind-")
    os.chmod(VALGRIND_DIR, 0o755)
    VALGRIND_LOGS = os.path.join(VALGRIND_DIR, "logs")
    os.mkdir(VALGRIND_LOGS)
    os.chmod(VALGRIND_LOGS, 0o1777)
    argv = [shutil.which(VALGRIND[0]) or VALGRIND[0]]
    for i, arg in enumerate(VALGRIND[1:]):
        if arg.startswith("--suppressions="):
            copy = os.path.join(VALGRIND_DIR, "supp%d" % i)
            shutil.copy(arg.split("=", 1)[1], copy)
            os.chmod(copy, 0o644)
            arg = "--suppressions=" + copy
        argv.append(arg)
    VALGRIND = argv
    atexit.register(shutil.rmtree, VALGRIND_DIR, True)


def wrap(program, folder=None):
    """A script named like program, in folder (a new one in VALGRIND_DIR by
    default), that execs program under valgrind with its arguments."""
    if folder is None:
        folder = tempfile.mkdtemp(prefix="bin-", dir=VALGRIND_DIR)
        os.chmod(folder, 0o755)
    path = os.path.join(folder, os.path.basename(program))
    log = os.path.join(VALGRIND_LOGS, os.path.basename(program) + ".%p.log")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec %s --log-file=%s %s \"$@\"\n"
                % (" ".join(shlex.quote(a) for a in VALGRIND), shlex.quote(log),
                   shlex.quote(program)))
    os.chmod(path, 0o755)
    WRAPPED[path] = program
    return path


def runnable(program):
    """How to run a copy of the program (an installed one): itself, or
    under valgrind a wrapper for it."""
    return wrap(program) if VALGRIND else program


if VALGRIND:
    _valgrind_setup()
    BINARY = wrap(PROGRAM)
else:
    BINARY = PROGRAM


# a record of an error in a valgrind log: its first line and its stack
_VG_RECORD = re.compile(r"(?m)^==\d+== (\S.*)\n(?:==\d+==    (?:at|by) 0x.*\n)+")
_VG_SUMMARY = re.compile(r"(?m)^==\d+== ERROR SUMMARY: (\d+) errors")
# the end of a process killed by a signal that is no memory error (a
# SIGTERM or SIGKILL a test sends, a SIGPIPE from a client gone)
_VG_QUIET_END = re.compile(r"Process terminating with default action of signal "
                           r"(1|2|9|13|14|15) ")
_vg_reported = {}       # log path -> how many of its errors a test reported


def valgrind_errors(text):
    """The errors a valgrind log reports: each error record (a headline with
    its stack: invalid accesses, uninitialised values, bad frees, fatal
    signals, the definite and indirect leaks), and the ERROR SUMMARY when it
    counts errors that no record shows."""
    errors = [m.group(0) for m in _VG_RECORD.finditer(text)
              if not _VG_QUIET_END.match(m.group(1))]
    m = _VG_SUMMARY.search(text)
    if not errors and m and int(m.group(1)):
        errors.append(m.group(0))
    return errors


def _log_pid(name):
    """The PID in a log's name (PROGRAM.PID.log)."""
    try:
        return int(name.rsplit(".", 2)[-2])
    except (IndexError, ValueError):
        return None


def _stat(pid):
    """(state, ppid) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, ValueError, IndexError):
        return None


# processes that outlive a test on purpose (the server a test class shares,
# and what it started): their workers' logs are read while they run
LONG_LIVED = set()


def _ending(pid):
    """Whether pid is a live process that no LONG_LIVED one started: one a
    test stopped (or should have), about to finish its valgrind log."""
    while pid > 1:
        st = _stat(pid)
        if st is None or st[0] == "Z":
            return False
        if pid in LONG_LIVED:
            return False
        pid = st[1]
    return True


def new_valgrind_errors():
    """[(log path, errors)] of what the logs report that no test reported
    yet, once the processes a test has stopped have finished their logs
    (valgrind writes the leaks at exit)."""
    out = []
    if VALGRIND_LOGS is None:
        return out
    names = sorted(os.listdir(VALGRIND_LOGS))
    deadline = time.time() + scaled(10)
    while time.time() < deadline and any(_ending(_log_pid(n) or 0) for n in names):
        time.sleep(0.1)
    for name in names:
        path = os.path.join(VALGRIND_LOGS, name)
        try:
            with open(path, errors="replace") as f:
                errors = valgrind_errors(f.read())
        except OSError:
            continue
        seen = _vg_reported.get(path, 0)
        if len(errors) > seen:
            out.append((path, errors[seen:]))
            _vg_reported[path] = len(errors)
    return out


def valgrind_report(found):
    return "\n".join("valgrind: %s:\n%s" % (os.path.basename(path), "".join(errors))
                     for path, errors in found)
