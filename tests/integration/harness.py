"""Shared parts of the integration tests: a TAP runner for unittest, and a
sandbox that holds a real SQLite file, a config, keys and tokens, and runs the
real program as CGI, as FastCGI behind a real lighttpd, or with --listen;
and EnvelopeChecks, the checks of the program's answers (SPEC §6) and of its
stderr and logs that every test file shares.

Every path is under a fresh temporary directory; every server listens on
127.0.0.1 only and is stopped by its PID.
"""
import atexit
import contextlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("EB_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
BUILDDIR = os.environ.get("EB_BUILDDIR") or SRCDIR
# the built program; BINARY is what the tests and the servers' configs run:
# the program itself, or under `make check-valgrind` a wrapper (see below)
PROGRAM = os.path.join(BUILDDIR, "src", "events-batch.fcgi")
MKTOKEN = os.path.join(BUILDDIR, "tools", "mktoken")
SCHEMA = os.path.join(SRCDIR, "sql", "schema-sqlite.sql")
GEN_EVENTS = os.path.join(SRCDIR, "..", "shared", "bench", "gen_events.py")

API_KEY = "test-api-key-0123456789"
USER = "tester"

ENDPOINT = "/api/events-batch"      # the path the program is served at
UUID_RE = re.compile(r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
JSON_TYPE = "application/json; charset=utf-8"
# what a sanitizer report or a crash leaves on stderr or in a server's log
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error", "Segmentation fault")
# the body of a stored item, by its status (SPEC §6)
ITEM_BODIES = {201: "Created", 200: "Updated"}


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


def which(name):
    return shutil.which(name) or next(
        (p for p in ("/usr/sbin/" + name, "/sbin/" + name) if os.path.exists(p)), None)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_sockets(pid):
    """How many sockets process pid has open (/proc/PID/fd)."""
    fd_dir = "/proc/%d/fd" % pid
    n = 0
    for fd in os.listdir(fd_dir):
        try:
            n += os.readlink(os.path.join(fd_dir, fd)).startswith("socket:")
        except OSError:
            pass
    return n


def tcp_listening(port):
    """Whether something listens on 127.0.0.1:port, found without connecting
    (a probe connection is itself a request attempt for a FastCGI worker)."""
    want = ":%04X" % port
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].endswith(want) and fields[3] == "0A":
                return True
    return False


def wait_listening(port, proc=None, timeout=10.0):
    """Until something listens on 127.0.0.1:port (or proc, if given, has
    exited). Read from /proc/net, else by connecting."""
    if os.path.exists("/proc/net/tcp"):
        wait_for(lambda: tcp_listening(port) or (proc is not None and proc.poll() is not None),
                 timeout=timeout, what="a listener on port %d" % port)
        return
    deadline = time.time() + scaled(timeout)
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on 127.0.0.1:%d" % port)


def pid_alive(pid):
    """Whether pid is a live process (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


_at_exit = []  # (object, method name): what a test run must stop if it did not


def stop_at_exit(obj, method):
    """Have obj.method() called when the test run exits, unless
    forget_at_exit(obj) came first: a last resort for servers a test
    left running."""
    _at_exit.append((obj, method))


def forget_at_exit(obj):
    _at_exit[:] = [(o, m) for o, m in _at_exit if o is not obj]


@atexit.register
def _stop_leftovers():
    for obj, method in list(reversed(_at_exit)):
        getattr(obj, method)()


def wait_for(predicate, timeout=20.0, what="condition", interval=0.02):
    """Poll until predicate() is true (a guard against hanging, not a timing
    assertion; scaled by TIME_SCALE); returns its value."""
    deadline = time.time() + scaled(timeout)
    while True:
        v = predicate()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


def event(eid, **fields):
    """A minimal valid Event, with fields overridden or added."""
    e = {"event_ID": eid, "claim_Audit_Event": False,
         "process_Automation_Event": False, "reminder": False}
    e.update(fields)
    return e


_response_log = None


def record_response(status, headers, body):
    """Append a response of the program (JSON content type) to
    $EB_RESPONSE_LOG/<test file>.jsonl, which test_openapi.py validates
    against doc/openapi.yaml. The file is started afresh by each test file."""
    global _response_log
    log_dir = os.environ.get("EB_RESPONSE_LOG")
    if not log_dir or headers.get("content-type") != JSON_TYPE:
        return
    if _response_log is None:
        os.makedirs(log_dir, exist_ok=True)
        name = os.path.splitext(os.path.basename(sys.argv[0]))[0] or "python"
        _response_log = open(os.path.join(log_dir, name + ".jsonl"), "w")
    try:
        doc = json.loads(body.decode("utf-8"))
    except ValueError:
        doc = body.decode("utf-8", "replace")
    _response_log.write(json.dumps({"status": status, "body": doc,
                                    "where": os.path.basename(sys.argv[0])}) + "\n")
    _response_log.flush()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.raw = body
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            self.json = None
        record_response(status, self.headers, body)

    def statuses(self):
        return [d["status"] for d in self.json["data"]]

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.raw[:300])


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


class Sandbox:
    """A temp dir with a schema'd SQLite file, keys and a config."""

    def __init__(self, **conf):
        self.dir = tempfile.mkdtemp(prefix="eb-test-")
        self.db_path = os.path.join(self.dir, "events.db")
        self.key_path = os.path.join(self.dir, "jwt.key")
        with open(self.key_path, "w") as f:
            f.write(os.urandom(24).hex() + "\n")
        self.create_db(self.db_path)
        self.conf_path = os.path.join(self.dir, "events-batch.conf")
        self.write_config(**conf)
        self.procs = []

    @staticmethod
    def create_db(path):
        with open(SCHEMA) as f:
            schema = f.read()
        con = sqlite3.connect(path)
        con.executescript(schema)
        con.close()

    def write_config(self, limits=None, auth=None, databases=None, extra=""):
        import hashlib
        limits = limits or {}
        a = {"api_key_sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
             "jwt_algorithm": "HS256", "jwt_key_file": self.key_path}
        a.update(auth or {})
        dbs = {"test": "Driver=SQLite3;Database=%s;NoCreat=1" % self.db_path}
        if databases is not None:
            dbs = databases
        lines = ["[limits]"] + ["%s = %s" % kv for kv in limits.items()]
        lines += ["", "[auth]"]
        for k, v in a.items():
            for one in (v if isinstance(v, list) else [v]):
                if one is not None:
                    lines.append("%s = %s" % (k, one))
        lines += ["", "[databases]"] + ["%s = %s" % kv for kv in dbs.items()]
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n" + extra)

    def token(self, claims=None, alg="HS256", key=None, ttl=3600):
        c = {"sub": USER, "exp": int(time.time()) + ttl}
        if claims:
            c.update(claims)
        c = {k: v for k, v in c.items() if v is not None}
        out = subprocess.run([MKTOKEN, alg, key or self.key_path, json.dumps(c)],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def hand_token(self, header, payload):
        """An HS256 token signed here with the sandbox's secret, for headers
        and payloads libjwt never makes (a crit header, a NUL in the
        payload): each is a dict (JSON) or bytes as they are."""
        import base64
        import hashlib
        import hmac

        def seg(part):
            if isinstance(part, dict):
                part = json.dumps(part, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(part).rstrip(b"=").decode()
        with open(self.key_path, "rb") as f:
            secret = f.read()
        secret = secret[:-1] if secret.endswith(b"\n") else secret
        signing_input = seg(header) + "." + seg(payload)
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + seg(mac)

    def flawed_tokens(self):
        """(name, token) for each token SPEC §4 row 5 refuses that libjwt
        would accept: a crit header, bytes after a NUL in the payload, too
        long a life, iat in the future. Each is signed right, and each is
        good without its flaw (the first, "good", shows it)."""
        now = int(time.time())
        claims = {"sub": USER, "exp": now + 3600}
        plain = {"alg": "HS256", "typ": "JWT"}
        cases = (("good", plain, claims),
                 ("crit", dict(plain, crit=["exp"]), claims),
                 ("crit b64", dict(plain, b64=False, crit=["b64"]), claims),
                 ("bytes after a NUL", plain, json.dumps(claims).encode() + b"\0garbage"),
                 ("exp a month ahead", plain, dict(claims, exp=now + 30 * 86400)),
                 ("exp - iat over a day", plain, dict(claims, iat=now - 7200,
                                                      exp=now + 86400 - 3600)),
                 ("iat in the future", plain, dict(claims, iat=now + 600)))
        return [(name, self.hand_token(header, payload)) for name, header, payload in cases]

    def headers(self, **over):
        """The CGI variables of a good request; None values are dropped."""
        h = {"REQUEST_METHOD": "PUT", "SCRIPT_NAME": "/api/events-batch",
             "HTTP_USER_AGENT": "eb-tests/1", "HTTP_X_API_KEY": API_KEY,
             "HTTP_AUTHORIZATION": "Bearer " + self.token(),
             "HTTP_VBASOFTWARE_DATABASE": "test", "CONTENT_TYPE": "application/json"}
        h.update(over)
        return {k: v for k, v in h.items() if v is not None}

    def cgi(self, body, env=None, config=True, timeout=120):
        """Run the program once as plain CGI; returns (Response, stderr)."""
        if not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "ODBCSYSINI", "ODBCINI"):
            if k in os.environ:
                e[k] = os.environ[k]
        if config:
            e["EVENTS_BATCH_CONFIG"] = self.conf_path
        e["CONTENT_LENGTH"] = str(len(body))
        e.update(self.headers() if env is None else env)
        e = {k: v for k, v in e.items() if v is not None}
        p = subprocess.run([BINARY], input=body, env=e, capture_output=True,
                           timeout=scaled(timeout))
        return parse_cgi(p.stdout), p.stderr.decode("utf-8", "replace"), p.returncode

    def rows(self, sql="SELECT * FROM Event ORDER BY Event_ID", args=()):
        con = sqlite3.connect(self.db_path, timeout=30)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute(sql, args)]
        finally:
            con.close()

    def count(self):
        return self.rows("SELECT COUNT(*) AS n FROM Event")[0]["n"]

    def start(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def stop_processes(self, timeout=10):
        """SIGTERM what this sandbox started, by PID; SIGKILL what lingers."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(scaled(timeout))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def close(self):
        self.stop_processes()
        shutil.rmtree(self.dir, ignore_errors=True)


def parse_cgi(out):
    """Split a CGI response (Status: header, headers, body)."""
    head, _, body = out.partition(b"\r\n\r\n")
    status, headers = 200, []
    for line in head.decode("latin-1").split("\r\n"):
        if ":" not in line:
            continue
        k, v = line.split(":", 1)
        if k.lower() == "status":
            status = int(v.split()[0])
        else:
            headers.append((k.strip(), v.strip()))
    return Response(status, headers, body)


class Lighttpd:
    """A real lighttpd on 127.0.0.1 spawning the program through mod_fastcgi
    (listen socket on fd 0), as the README's demo does."""

    def __init__(self, sandbox, max_procs=2, prefix="/api/events-batch"):
        self.sb = sandbox
        self.port = free_port()
        self.errorlog = os.path.join(sandbox.dir, "lighttpd-error.log")
        conf = os.path.join(sandbox.dir, "lighttpd.conf")
        docroot = os.path.join(sandbox.dir, "htdocs")
        os.makedirs(docroot, exist_ok=True)
        env = ['"EVENTS_BATCH_CONFIG" => "%s"' % sandbox.conf_path]
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                env.append('"%s" => "%s"' % (k, os.environ[k]))
        with open(conf, "w") as f:
            f.write("""
server.modules = ("mod_fastcgi")
server.document-root = "%(docroot)s"
server.bind = "127.0.0.1"
server.port = %(port)d
server.errorlog = "%(errorlog)s"
server.pid-file = "%(dir)s/lighttpd.pid"
server.max-request-size = 65536
fastcgi.server = ( "%(prefix)s" => ((
    "socket" => "%(dir)s/eb.sock",
    "bin-path" => "%(binary)s",
    "check-local" => "disable",
    "max-procs" => %(procs)d,
    "bin-environment" => ( %(env)s ),
)) )
""" % {"docroot": docroot, "port": self.port, "errorlog": self.errorlog,
                "dir": sandbox.dir, "prefix": prefix, "binary": BINARY,
                "procs": max_procs, "env": ", ".join(env)})
        self.proc = sandbox.start([which("lighttpd"), "-D", "-f", conf],
                                  stdout=subprocess.DEVNULL, stderr=open(os.path.join(sandbox.dir, "lighttpd-stderr.log"), "wb"))
        wait_listening(self.port)
        self.prefix = prefix

    def request(self, body, headers=None, method="PUT", path=None, timeout=300):
        """One HTTP request; headers are HTTP names, None values dropped."""
        h = {"User-Agent": "eb-tests/1", "x-api-key": API_KEY,
             "Authorization": "Bearer " + self.sb.token(),
             "vbasoftware-database": "test", "Content-Type": "application/json"}
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=scaled(timeout))
        try:
            c.request(method, path or self.prefix, body=body, headers=h)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    def log(self):
        """lighttpd's error log, then the workers' stderr (their log lines)."""
        text = ""
        for name in (self.errorlog, os.path.join(self.sb.dir, "lighttpd-stderr.log")):
            if os.path.exists(name):
                with open(name, errors="replace") as f:
                    text += f.read()
        return text



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
