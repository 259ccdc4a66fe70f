#!/usr/bin/env python3
"""bench/bench.py - the events-batch benchmark.  Run it through bench/run.sh,
which builds the program and the helpers and hands over a temporary
directory; bench/README.md says what is measured and how.

Everything this script starts (PostgreSQL, lighttpd with its FastCGI
workers, wrk, pgbench, sqlite_alone) listens on 127.0.0.1 only or not at all,
runs for a bounded time, and is stopped by its PID before the script exits;
the temporary directory is then removed.
"""
import contextlib
import csv
import ctypes
import hashlib
import http.client
import importlib.util
import io
import json
import math
import multiprocessing
import os
import platform
import pwd
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(TOP, "bench")


def env_num(name, default, conv=float):
    v = os.environ.get(name, "").strip()
    return conv(v) if v else default


SECONDS = env_num("BENCH_SECONDS", 10.0)
RUNS = env_num("BENCH_RUNS", 3, int)
CONNS = env_num("BENCH_CONNECTIONS", 4, int)
BATCHES = [int(x) for x in os.environ.get("BENCH_BATCHES", "1 100 1000").split()]
DBS = os.environ.get("BENCH_DBS", "sqlite pg").split()
SEED = env_num("BENCH_SEED", 1, int)
RSS_EVENTS = env_num("BENCH_RSS_EVENTS", 10000, int)
GEN = os.environ.get("BENCH_GEN") or os.path.join(TOP, "..", "shared", "bench", "gen_events.py")
TMP = os.environ["BENCH_TMP"]
BUILD = os.environ["EB_BUILDDIR"]
BIN = os.path.join(TMP, "bin")
PG_BIN = os.environ.get("EB_PG_BINDIR", "/usr/lib/postgresql/15/bin")
KEEP = os.environ.get("BENCH_KEEP", "") not in ("", "0")
# Events per second the program is expected to reach, per batch size: enough
# distinct batches are generated for that rate over BENCH_SECONDS (each one
# is sent once; after that a load generator starts its list again).
GUESS = {1: 6000, 100: 80000, 1000: 100000}
for part in os.environ.get("BENCH_GUESS", "").replace(",", " ").split():
    b, r = part.split(":")
    GUESS[int(b)] = int(r)

API_KEY = "bench-api-key-" + secrets.token_hex(8)
PG_ADMIN = "ebadmin"
PG_USER = "events_app"
PG_DB = "events"

# The Event columns, in table order: JSON name, column, kind.
FIELDS = [
    ("event_ID", "Event_ID", "int"), ("claim_Audit_Event", "Claim_Audit_Event", "bool"),
    ("completion_Date", "Completion_Date", "time"),
    ("completion_Percent", "Completion_Percent", "double"),
    ("due_Date", "Due_Date", "time"), ("end_Date", "End_Date", "time"),
    ("entry_Date", "Entry_Date", "time"), ("entry_User", "Entry_User", "text"),
    ("event_Processor", "Event_Processor", "text"), ("event_Type", "Event_Type", "text"),
    ("meta_Data", "Meta_Data", "text"),
    ("next_Scheduled_Date", "Next_Scheduled_Date", "time"),
    ("next_Scheduled_Time", "Next_Scheduled_Time", "time"),
    ("priority", "Priority", "text"),
    ("process_Automation_Event", "Process_Automation_Event", "bool"),
    ("reminder", "Reminder", "bool"), ("reminder_Event_ID", "Reminder_Event_ID", "int"),
    ("reportSeries_Key", "ReportSeries_Key", "int"), ("start_Date", "Start_Date", "time"),
    ("status", "Status", "text"), ("subject", "Subject", "text"),
    ("update_Date", "Update_Date", "time"), ("update_User", "Update_User", "text"),
    ("userGroup_Key", "UserGroup_Key", "int"), ("user_ID", "User_ID", "text"),
]

LOG_RE = re.compile(r"events-batch\[(\d+)\]: activity=\S+ method=PUT db=(\S+) items=(\d+) "
                    r"created=(\d+) updated=(\d+) failed=(\d+) status=(\d+) duration_ms=([\d.]+)")


def say(*a):
    print(*a, flush=True)


def run(argv, timeout, check=True, **kw):
    p = subprocess.run(argv, capture_output=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (
            " ".join(map(str, argv[:6])), p.returncode,
            p.stdout.decode(errors="replace")[-3000:], p.stderr.decode(errors="replace")[-3000:]))
    return p


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, math.ceil(p / 100.0 * len(v)) - 1))
    return v[k]


# ---------------------------------------------------------------- data

_gen = None


def _load_gen():
    global _gen
    if _gen is None:
        spec = importlib.util.spec_from_file_location("gen_events", GEN)
        _gen = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_gen)
    return _gen


def gen_via_main(count, seed, lo, hi):
    """gen_events.py --count count --seed seed --id-range lo:hi, its stdout."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        _load_gen().main(["--count", str(count), "--seed", str(seed), "--id-range",
                          "%d:%d" % (lo, hi)])
    return buf.getvalue()


def gen_direct(count, seed, lo, hi):
    """The same output as gen_via_main, without argparse and with the C JSON
    encoder (json.dump to a stream is the pure-Python one): run() checks
    that both agree before using it."""
    g = _load_gen()
    import random
    r = random.Random(seed)
    ids = r.sample(range(lo, hi + 1), count)
    return json.dumps([g.event(r, e) for e in ids], ensure_ascii=False,
                      separators=(",", ":")) + "\n"


def sqlite_time(s):
    # the generator writes "YYYY-MM-DDTHH:MM:SSZ"; the program stores
    # "YYYY-MM-DD HH:MM:SS.SSS" (UTC)
    if s is None:
        return None
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)(?:T(\d\d:\d\d)(:\d\d)?(?:\.(\d+))?)?Z?", s)
    if not m:
        raise ValueError("unexpected date-time %r" % s)
    ms = (m.group(4) or "")[:3].ljust(3, "0")
    return "%s %s%s.%s" % (m.group(1), m.group(2) or "00:00", m.group(3) or ":00", ms)


def sqlite_row(e):
    row = []
    for name, _col, kind in FIELDS:
        v = e.get(name)
        if v is not None and kind == "bool":
            v = 1 if v else 0
        elif kind == "time":
            v = sqlite_time(v)
        row.append(v)
    return tuple(row)


def make_batch(task):
    """One generated batch: its text, the text with column-named (lower
    case) keys for PostgreSQL, and the rows to preload (the ids of the first
    half of its window) for SQLite."""
    use_main, b, j, seed, lo, hi, first_new = task
    text = (gen_via_main if use_main else gen_direct)(b, seed, lo, hi)
    items = json.loads(text)
    lower = json.dumps([{k.lower(): v for k, v in e.items()} for e in items],
                       ensure_ascii=False, separators=(",", ":"))
    pre = [sqlite_row(e) for e in items if e["event_ID"] < first_new]
    return b, j, text, lower, pre


class Space:
    """The ids of one batch size: batch j draws b ids (gen_events.py
    --id-range) from its own window of 2b ids; the first b ids of every
    window are preloaded, the other b are new.  So every batch is about half
    new and half existing, and no two batches share an id."""

    def __init__(self, b, count, base):
        self.b, self.count, self.base = b, count, base
        self.span = 2 * b * count

    def window(self, j):
        lo = self.base + 2 * self.b * j + 1
        return lo, lo + 2 * self.b - 1, lo + self.b  # lo, hi, first new id

    def new_ids_sql(self, col):
        """A condition true for the not-preloaded ids of this space."""
        return "(%s > %d AND %s <= %d AND ((%s - %d - 1) %% %d) >= %d)" % (
            col, self.base, col, self.base + self.span, col, self.base, 2 * self.b, self.b)


def generate(spaces, datadir):
    """Write every batch: datadir/bB/NNNNNN.json (one file per batch, in
    order), datadir/bB.tK (wrk thread K's batches, one per line) and
    datadir/pg_bodies.csv (for PostgreSQL's bench_body table).  Returns the
    preload rows for SQLite."""
    use_main = False
    for args in ((100, SEED, 1, 200), (1, SEED + 1, 7, 8)):
        if gen_direct(*args) != gen_via_main(*args):
            say("note: the direct generator path differs from gen_events.py main(); using main()")
            use_main = True
            break
    tasks = []
    for sp in spaces:
        os.makedirs(os.path.join(datadir, "b%d" % sp.b), exist_ok=True)
        for j in range(sp.count):
            lo, hi, first_new = sp.window(j)
            tasks.append((use_main, sp.b, j, SEED * 1000003 + sp.b * 7919 + j, lo, hi, first_new))
    pre = []
    threads = {sp.b: [open(os.path.join(datadir, "b%d.t%d" % (sp.b, k)), "w", encoding="utf-8")
                      for k in range(CONNS)] for sp in spaces}
    with open(os.path.join(datadir, "pg_bodies.csv"), "w", encoding="utf-8", newline="") as pgf, \
            multiprocessing.Pool(os.cpu_count() or 2) as pool:
        w = csv.writer(pgf)
        for b, j, text, lower, rows in pool.imap(make_batch, tasks, chunksize=64):
            with open(os.path.join(datadir, "b%d" % b, "%06d.json" % j), "w",
                      encoding="utf-8") as f:
                f.write(text)
            threads[b][j % CONNS].write(text.rstrip("\n") + "\n")
            w.writerow([b, j, lower])
            pre.extend(rows)
    for fs in threads.values():
        for f in fs:
            f.close()
    for sp in spaces:
        with open(os.path.join(datadir, "b%d.list" % sp.b), "w") as f:
            for j in range(sp.count):
                f.write(os.path.join(datadir, "b%d" % sp.b, "%06d.json\n" % j))
    return pre


# ---------------------------------------------------------------- processes

class Procs:
    """Processes we started, stopped by PID.  We are a child subreaper, so
    FastCGI workers that outlive lighttpd come back to us."""

    def __init__(self):
        self.items = []  # (name, Popen, how to find the real pid, stop signal)
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        except Exception:
            pass

    def start(self, name, argv, stdout, stop_signal=signal.SIGTERM, real_pid=None, **kw):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout,
                             stderr=subprocess.STDOUT, **kw)
        self.items.append((name, p, real_pid, stop_signal))
        return p

    @staticmethod
    def alive(pid):
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    @staticmethod
    def children(pid):
        """PIDs whose parent is pid, with their command names."""
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            comm = st[st.index("(") + 1:st.rindex(")")]
            fields = st.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append((int(d), comm, fields[0]))
        return out

    def reap(self):
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def stop_all(self):
        for name, p, real_pid, sig in reversed(self.items):
            pid = None
            if real_pid is not None:
                try:
                    pid = real_pid()
                except Exception:
                    pid = None
            pid = pid or p.pid
            if p.poll() is None or self.alive(pid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.time() + 60
            while (p.poll() is None or self.alive(pid)) and time.time() < deadline:
                time.sleep(0.05)
                self.reap()
            for q in (pid, p.pid):
                if self.alive(q):
                    say("warning: %s (pid %d) did not stop; killing it" % (name, q))
                    os.kill(q, signal.SIGKILL)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        # orphans (FastCGI workers) that came back to us
        deadline = time.time() + 30
        while time.time() < deadline:
            self.reap()
            kids = [(pid, comm, state) for pid, comm, state in self.children(os.getpid())
                    if state != "Z"]
            if not kids:
                break
            for pid, comm, _ in kids:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        self.reap()
        self.items = []


# ---------------------------------------------------------------- servers

class Postgres:
    def __init__(self, procs, root):
        self.procs = procs
        self.dir = os.path.join(root, "pg")
        os.makedirs(self.dir)
        self.data = os.path.join(self.dir, "data")
        self.as_owner = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o700)
            self.as_owner = [shutil.which("runuser") or "runuser", "-u", "postgres", "--"]
        self.password = "Eb%sPw" % secrets.token_hex(12)
        self.port = None

    def pid(self):
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def start(self):
        run(self.as_owner + [os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", PG_ADMIN,
                             "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                             "--no-locale", "--no-sync"], timeout=300, cwd=self.dir)
        for attempt in range(3):
            self.port = free_port()
            log = open(os.path.join(TMP, "postgres.log"), "ab")
            # default durability: fsync, synchronous_commit, full_page_writes on
            p = self.procs.start("postgres", self.as_owner + [
                os.path.join(PG_BIN, "postgres"), "-D", self.data, "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + self.dir,
                "-c", "max_connections=50", "-c", "TimeZone=UTC"],
                log, stop_signal=signal.SIGINT, real_pid=self.pid, cwd=self.dir)
            deadline = time.time() + 60
            while time.time() < deadline and p.poll() is None:
                if self.psql("SELECT 1", db="postgres", check=False).returncode == 0:
                    break
                time.sleep(0.2)
            if p.poll() is None:
                break
            self.procs.items.pop()
        else:
            raise RuntimeError("postgres did not start; see postgres.log")
        self.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (PG_USER, self.password), db="postgres")
        self.psql("CREATE DATABASE %s OWNER %s ENCODING 'UTF8' TEMPLATE template0"
                  % (PG_DB, PG_USER), db="postgres")
        with open(os.path.join(TOP, "sql", "schema-postgresql.sql")) as f:
            self.psql(f.read(), user=PG_USER)

    def psql(self, sql, db=PG_DB, user=PG_ADMIN, check=True, timeout=600):
        return run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                    "-h", self.dir, "-p", str(self.port), "-U", user, "-d", db, "-f", "-"],
                   timeout=timeout, check=check, input=sql.encode(),
                   env=dict(os.environ, PGCONNECT_TIMEOUT="5", PGTZ="UTC"))

    def odbc(self):
        return ("Driver=PostgreSQL Unicode;Server=127.0.0.1;Port=%d;Database=%s;UID=%s;PWD=%s"
                % (self.port, PG_DB, PG_USER, self.password))


def set_list(prefix=""):
    return ", ".join("%s = %s%s" % (c.lower(), prefix, c.lower()) for _, c, _k in FIELDS[1:])


class Bench:
    def __init__(self):
        self.procs = Procs()
        self.spaces = []
        self.results = {}  # (kind, db, b) -> [per-run dict]
        self.started = time.time()
        self.pg = None
        self.lighttpd = None
        self.notes = []
        self.cgi_pids = set()

    # ------------------------------------------------------------ set-up
    def setup(self):
        os.chmod(TMP, 0o711)  # postgres must reach its directory
        self.data = os.path.join(TMP, "data")
        os.makedirs(self.data)
        base = 10_000_000
        for b in BATCHES:
            count = max(2 * CONNS, math.ceil(GUESS.get(b, 20000) * SECONDS / b) + CONNS)
            sp = Space(b, count, base)
            self.spaces.append(sp)
            base += (sp.span // 1_000_000 + 1) * 1_000_000
        self.rss_base = base
        t = time.time()
        say("generating batches with %s ..." % os.path.relpath(GEN, TOP))
        pre = generate(self.spaces, self.data)
        say("  %s in %.0f s; %d rows preloaded"
            % (", ".join("%d x %d events" % (sp.count, sp.b) for sp in self.spaces),
               time.time() - t, len(pre)))
        lo, hi = self.rss_base + 1, self.rss_base + 2 * RSS_EVENTS
        self.rss_body = os.path.join(self.data, "rss.json")
        with open(self.rss_body, "w", encoding="utf-8") as f:
            f.write(gen_direct(RSS_EVENTS, SEED + 99, lo, hi))

        # SQLite: the schema, the preloaded rows
        os.makedirs(os.path.join(TMP, "sqlite"))
        self.sqlite_path = os.path.join(TMP, "sqlite", "events.db")
        con = sqlite3.connect(self.sqlite_path)
        with open(os.path.join(TOP, "sql", "schema-sqlite.sql")) as f:
            con.executescript(f.read())
        con.executemany("INSERT INTO Event (%s) VALUES (%s)" % (
            ", ".join(c for _, c, _k in FIELDS), ", ".join("?" * len(FIELDS))), pre)
        con.commit()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        del pre
        self.sqlite_odbc = "Driver=SQLite3;Database=%s;NoCreat=1" % self.sqlite_path
        self.sqlite_sync = self.odbc_sqlite_sync()

        # PostgreSQL: its own server, the schema, the batches, the preload
        if "pg" in DBS:
            say("starting PostgreSQL ...")
            self.pg = Postgres(self.procs, TMP)
            self.pg.start()
            csvf = os.path.join(self.data, "pg_bodies.csv")
            sql = ["CREATE TABLE bench_body (batch integer, i integer, body json, "
                   "PRIMARY KEY (batch, i));",
                   # stored as it came, uncompressed: reading it costs what receiving it would
                   "ALTER TABLE bench_body ALTER COLUMN body SET STORAGE EXTERNAL;",
                   "\\copy bench_body FROM '%s' WITH (FORMAT csv)" % csvf]
            for sp in self.spaces:
                sql.append("CREATE SEQUENCE bench_seq_%d MINVALUE 0 START 0;" % sp.b)
                sql.append("INSERT INTO event SELECT r.* FROM bench_body b, "
                           "json_populate_recordset(NULL::event, b.body) r WHERE b.batch = %d "
                           "AND NOT %s;" % (sp.b, sp.new_ids_sql("r.event_id")))
            self.pg.psql("\n".join(sql), user=PG_USER)
            self.pg.psql("VACUUM ANALYZE; CHECKPOINT;")
            os.remove(csvf)
            for sp in self.spaces:
                with open(os.path.join(TMP, "pg", "bulk_%d.sql" % sp.b), "w") as f:
                    f.write(self.pg_bulk_sql(sp))

        # the program's configuration, key, token; lighttpd
        keyfile = os.path.join(TMP, "jwt.key")
        with open(keyfile, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        self.api_key_file = os.path.join(TMP, "api.key")
        with open(self.api_key_file, "w") as f:
            f.write(API_KEY)
        self.conf = os.path.join(TMP, "events-batch.conf")
        dbs = "sqlite = %s\n" % self.sqlite_odbc
        if self.pg:
            dbs += "pg = %s\n" % self.pg.odbc()
        with open(self.conf, "w") as f:
            f.write("[limits]\nmax_body_bytes = 16777216\nmax_batch_items = 10000\n\n"
                    "[auth]\napi_key_sha256 = %s\njwt_algorithm = HS256\njwt_key_file = %s\n"
                    "jwt_user_claim = sub\njwt_database_claim = vbasoftware-database\n\n"
                    "[databases]\n%s" % (hashlib.sha256(API_KEY.encode()).hexdigest(),
                                         keyfile, dbs))
        claims = {"sub": "bench", "exp": int(time.time()) + 86400,
                  "vbasoftware-database": ["sqlite", "pg"]}
        tok = run([os.path.join(BUILD, "tools", "mktoken"), "HS256", keyfile, json.dumps(claims)],
                  timeout=30).stdout.decode().strip()
        self.token = tok
        self.token_file = os.path.join(TMP, "token")
        with open(self.token_file, "w") as f:
            f.write(tok)
        self.start_lighttpd()

    def odbc_sqlite_sync(self):
        """PRAGMA synchronous as the program's connection string sets it
        (the SQLite ODBC driver has its own default), through isql."""
        names = {"0": "OFF", "1": "NORMAL", "2": "FULL", "3": "EXTRA"}
        isql = shutil.which("isql")
        if isql:
            p = run([isql, "-b", "-k", self.sqlite_odbc], timeout=30, check=False,
                    input=b"PRAGMA synchronous;\n")
            m = re.search(rb"\|\s*([0-3])\s*\|", p.stdout)
            if m:
                return names[m.group(1).decode()]
        self.notes.append("could not ask the ODBC driver for PRAGMA synchronous; assuming FULL")
        return "FULL"

    def pg_bulk_sql(self, sp):
        return ("-- the best single-statement bulk upsert of one generated batch: batch number\n"
                "-- nextval() (so each batch is used once, in order) is read from bench_body and\n"
                "-- expanded by json_populate_recordset; rows in event_id order, as the program\n"
                "-- writes them\n"
                "INSERT INTO event SELECT r.* FROM json_populate_recordset(NULL::event, "
                "(SELECT body FROM bench_body WHERE batch = %d AND i = "
                "(SELECT nextval('bench_seq_%d') %% %d))) AS r ORDER BY r.event_id "
                "ON CONFLICT (event_id) DO UPDATE SET %s;\n" % (sp.b, sp.b, sp.count, set_list("EXCLUDED.")))

    def start_lighttpd(self):
        self.http_port = free_port()
        os.makedirs(os.path.join(TMP, "htdocs"), exist_ok=True)
        os.makedirs(os.path.join(TMP, "uploads"), exist_ok=True)
        # the shipped fragment, its paths filled in (the bench's URL and
        # CONNS workers), included from a top-level config with what it
        # leaves out, and the empty FastCGI program /hello beside it
        with open(os.path.join(TOP, "apache-conf", "lighttpd-events-batch.conf")) as f:
            fragment = f.read()
        for old, new in (("/usr/local/libexec/events-batch/events-batch.fcgi",
                          os.path.join(BUILD, "src", "events-batch.fcgi")),
                         ("/etc/events-batch.conf", self.conf),
                         ("/run/lighttpd/", TMP + "/"),
                         ('"/api/events-batch" =>', '"/events-batch" =>')):
            fragment = fragment.replace(old, new)
        fragment = re.sub(r'("max-procs"\s*=>\s*)\d+', r"\g<1>%d" % CONNS, fragment)
        include = os.path.join(TMP, "15-events-batch.conf")
        with open(include, "w") as f:
            f.write(fragment)
        conf = os.path.join(TMP, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write('''server.modules = ( )
server.document-root = "%(tmp)s/htdocs"
server.bind = "127.0.0.1"
server.port = %(port)d
server.errorlog = "%(tmp)s/lighttpd-error.log"
server.upload-dirs = ( "%(tmp)s/uploads" )
include "%(include)s"
fastcgi.server += (
  "/hello" => ((
    "socket" => "%(tmp)s/hello.sock",
    "bin-path" => "%(hello)s",
    "check-local" => "disable",
    "max-procs" => %(procs)d,
  )),
)
''' % {"tmp": TMP, "port": self.http_port, "include": include,
       "hello": os.path.join(BIN, "hello"), "procs": CONNS})
        # the program's log lines reach lighttpd's error log through the
        # FastCGI stderr stream, or lighttpd's own stderr (a worker's stderr):
        # both are read
        self.prog_log = os.path.join(TMP, "program.log")
        self.logs = [self.prog_log, os.path.join(TMP, "lighttpd-error.log")]
        lighttpd = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
        self.lighttpd = self.procs.start("lighttpd", [lighttpd, "-D", "-f", conf],
                                         open(self.prog_log, "ab"))
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.lighttpd.poll() is not None:
                raise RuntimeError("lighttpd exited; see %s" % self.prog_log)
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.http_port), timeout=1):
                if len(self.workers()) >= CONNS:
                    return
            time.sleep(0.1)
        raise RuntimeError("lighttpd did not come up")

    def workers(self, name="events-batch.fc"):
        return [pid for pid, comm, state in Procs.children(self.lighttpd.pid)
                if comm.startswith(name) and state != "Z"]

    # ------------------------------------------------------------ resets
    def reset(self, db):
        """Back to the preloaded rows (the new half of every window deleted),
        the WAL checkpointed, so that each measurement starts alike."""
        if db == "sqlite":
            con = sqlite3.connect(self.sqlite_path, timeout=120)
            for sp in self.spaces:
                con.execute("DELETE FROM Event WHERE " + sp.new_ids_sql("Event_ID"))
            con.execute("DELETE FROM Event WHERE Event_ID > %d" % self.rss_base)
            con.commit()
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            con.close()
        else:
            sql = ["DELETE FROM event WHERE %s;" % sp.new_ids_sql("event_id") for sp in self.spaces]
            sql.append("DELETE FROM event WHERE event_id > %d;" % self.rss_base)
            sql += ["ALTER SEQUENCE bench_seq_%d RESTART WITH 0;" % sp.b for sp in self.spaces]
            self.pg.psql("\n".join(sql), user=PG_USER)
            self.pg.psql("VACUUM event; CHECKPOINT;")

    def log_offsets(self):
        return [os.path.getsize(f) if os.path.exists(f) else 0 for f in self.logs]

    def log_since(self, offsets):
        """The program's log lines written since offsets."""
        lines = []
        for f, off in zip(self.logs, offsets):
            with contextlib.suppress(OSError), open(f, "rb") as fh:
                fh.seek(off)
                lines += fh.read().decode(errors="replace").splitlines()
        return lines

    def settle(self):
        """Wait until the workers have finished what wrk left in flight."""
        deadline = time.time() + 120
        last, still = -1, 0
        while time.time() < deadline:
            size = sum(self.log_offsets())
            still = still + 1 if size == last else 0
            if still >= 5:
                return
            last = size
            time.sleep(0.1)

    # ------------------------------------------------------------ measurements
    def wrk(self, path, db, sp, seconds=None):
        seconds = seconds or SECONDS
        pattern = os.path.join(self.data, "b%d.t%%d" % sp.b)
        off = self.log_offsets()
        p = run(["wrk", "-t", str(CONNS), "-c", str(CONNS), "-d", "%gs" % seconds,
                 "--timeout", "120s", "-s", os.path.join(BENCH, "put.lua"),
                 "http://127.0.0.1:%d%s" % (self.http_port, path), "--",
                 pattern, db, self.api_key_file, self.token_file],
                timeout=seconds + 300)
        m = re.search(r"^BENCH (\{.*\})$", p.stdout.decode(), re.M)
        if not m:
            raise RuntimeError("wrk printed no result:\n" + p.stdout.decode()[-2000:])
        w = json.loads(m.group(1))
        secs = w["duration_us"] / 1e6
        r = {"req_s": w["requests"] / secs, "events_s": w["requests"] * sp.b / secs,
             "p50": w["p50_us"] / 1e3, "p99": w["p99_us"] / 1e3, "max": w["max_us"] / 1e3,
             "requests": w["requests"], "reused": w["reused"],
             "errors": w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"],
             "not_207": w["not_207"]}
        if path != "/hello":
            self.settle()
            created = updated = failed = 0
            durations = []
            for line in self.log_since(off):
                m = LOG_RE.search(line)
                if m and m.group(2) == db:
                    created += int(m.group(4))
                    updated += int(m.group(5))
                    failed += int(m.group(6))
                    durations.append(float(m.group(8)))
                elif "events-batch[" in line and "connected" not in line:
                    self.notes.append("program log: " + line.strip()[:300])
            if not durations:
                self.notes.append("no log line of the program found for %s, batch %d" % (db, sp.b))
            r["new_frac"] = created / max(1, created + updated)
            r["failed_items"] = failed
            r["in_p50"] = pct(durations, 50) if durations else None
            r["in_p99"] = pct(durations, 99) if durations else None
        return r

    def sqlite_alone(self, sp, procs):
        self.reset("sqlite")
        p = run([os.path.join(BIN, "sqlite_alone"), self.sqlite_path, self.sqlite_sync,
                 "%g" % SECONDS, str(procs), os.path.join(self.data, "b%d.list" % sp.b)],
                timeout=SECONDS + 300)
        o = json.loads(p.stdout.decode())
        return {"events_s": o["events"] / o["seconds"], "req_s": o["batches"] / o["seconds"],
                "p50": o["p50_ms"], "p99": o["p99_ms"], "max": o["max_ms"],
                "requests": o["batches"], "reused": o["reused"], "errors": 0, "not_207": 0}

    def pgbench(self, sp):
        self.reset("pg")
        logdir = os.path.join(TMP, "pgbench-log")
        shutil.rmtree(logdir, ignore_errors=True)
        os.makedirs(logdir)
        p = run([os.path.join(PG_BIN, "pgbench"), "-n", "-M", "prepared", "-c", str(CONNS),
                 "-j", str(CONNS), "-T", "%d" % max(1, round(SECONDS)),
                 "-f", os.path.join(TMP, "pg", "bulk_%d.sql" % sp.b),
                 "--log", "--log-prefix", os.path.join(logdir, "tx"),
                 "-h", "127.0.0.1", "-p", str(self.pg.port), "-U", PG_USER, PG_DB],
                timeout=SECONDS + 300, env=dict(os.environ, PGPASSWORD=self.pg.password))
        out = p.stdout.decode()
        tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))
        lat = []
        for name in os.listdir(logdir):
            with open(os.path.join(logdir, name)) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[2].isdigit():
                        lat.append(int(parts[2]) / 1e3)
        used = int(self.pg.psql("SELECT last_value FROM bench_seq_%d" % sp.b,
                                user=PG_USER).stdout.decode().strip() or 0) + 1
        failed = re.search(r"number of failed transactions: (\d+)", out)
        return {"events_s": tps * sp.b, "req_s": tps, "p50": pct(lat, 50), "p99": pct(lat, 99),
                "max": max(lat) if lat else float("nan"), "requests": len(lat),
                "reused": max(0, used - sp.count), "errors": int(failed.group(1)) if failed else 0,
                "not_207": 0}

    def record(self, kind, db, b, r):
        self.results.setdefault((kind, db, b), []).append(r)
        extra = ""
        if r.get("in_p50") is not None:
            extra = "  new %.0f%%  in-program p50 %.2f p99 %.2f ms" % (
                100 * r["new_frac"], r["in_p50"], r["in_p99"])
        if r.get("reused"):
            extra += "  (%d batches sent again)" % r["reused"]
        if r.get("errors") or r.get("not_207") or r.get("failed_items"):
            extra += "  ERRORS: %d socket/timeout, %d not 207, %d failed items" % (
                r["errors"], r["not_207"], r.get("failed_items", 0))
        with open("/proc/loadavg") as fh:
            extra += "  [load %s]" % fh.read().split()[0]
        say("  %-14s %-6s batch %5d: %10.0f events/s %9.1f req/s  p50 %8.2f  p99 %8.2f ms%s"
            % (kind, db, b, r["events_s"], r["req_s"], r["p50"], r["p99"], extra))

    def warm_up(self):
        say("warming up (connections, prepared statements) ...")
        sp = self.spaces[0]
        for db in DBS:
            self.wrk("/events-batch", db, sp, seconds=2)
            self.wrk("/hello", "-", sp, seconds=1)
            self.reset(db)

    def measure(self):
        for run_no in range(1, RUNS + 1):
            say("run %d of %d (%g s per measurement)" % (run_no, RUNS, SECONDS))
            for sp in self.spaces:
                self.record("hello", "-", sp.b, self.wrk("/hello", "-", sp))
                for db in DBS:
                    self.reset(db)
                    self.record("program", db, sp.b, self.wrk("/events-batch", db, sp))
                    if db == "sqlite":
                        self.record("alone x%d" % CONNS, db, sp.b, self.sqlite_alone(sp, CONNS))
                        if CONNS != 1:
                            self.record("alone x1", db, sp.b, self.sqlite_alone(sp, 1))
                    else:
                        self.record("pgbench bulk", db, sp.b, self.pgbench(sp))

    # ------------------------------------------------------------ peak RSS
    def peak_rss(self):
        """A worker's VmHWM after a RSS_EVENTS batch through lighttpd, and
        the program run once as plain CGI under /usr/bin/time -v."""
        self.rss = {}
        with open(self.rss_body, "rb") as f:
            body = f.read()
        for db in DBS:
            self.reset(db)
            off = self.log_offsets()
            c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=600)
            c.request("PUT", "/events-batch", body=body, headers={
                "x-api-key": API_KEY, "Authorization": "Bearer " + self.token,
                "vbasoftware-database": db, "User-Agent": "events-batch-bench/1",
                "Content-Type": "application/json"})
            resp = c.getresponse()
            resp.read()
            c.close()
            self.settle()
            pid = None
            for line in self.log_since(off):
                m = LOG_RE.search(line)
                if m and int(m.group(3)) == RSS_EVENTS:
                    pid = int(m.group(1))
            hwm = None
            if pid:
                with open("/proc/%d/status" % pid) as f:
                    hwm = int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) / 1024
            all_hwm = []
            for w in self.workers():
                with contextlib.suppress(OSError), open("/proc/%d/status" % w) as f:
                    all_hwm.append(int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) / 1024)
            # plain CGI, the same batch again (now all updates)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GATEWAY_INTERFACE": "CGI/1.1",
                   "REQUEST_METHOD": "PUT", "SCRIPT_NAME": "/events-batch", "PATH_INFO": "",
                   "REQUEST_URI": "/events-batch", "SERVER_PROTOCOL": "HTTP/1.1",
                   "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
                   "HTTP_USER_AGENT": "events-batch-bench/1", "HTTP_X_API_KEY": API_KEY,
                   "HTTP_AUTHORIZATION": "Bearer " + self.token,
                   "HTTP_VBASOFTWARE_DATABASE": db, "EVENTS_BATCH_CONFIG": self.conf}
            with open(self.rss_body, "rb") as stdin:
                p = subprocess.run(["/usr/bin/time", "-v", os.path.join(BUILD, "src",
                                                                        "events-batch.fcgi")],
                                   stdin=stdin, capture_output=True, env=env, timeout=600)
            m = re.search(rb"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
            cgi = int(m.group(1)) / 1024 if m else None
            cgi_ok = p.stdout.startswith(b"Status: 207")
            self.cgi_pids.update(int(x) for x in re.findall(rb"events-batch\[(\d+)\]", p.stderr))
            self.rss[db] = {"status": resp.status, "fcgi": hwm, "fcgi_max": max(all_hwm or [0]),
                            "cgi": cgi, "cgi_ok": cgi_ok}
            say("  peak RSS, %s, %d events: FastCGI worker %s MiB (HTTP %d; largest of the "
                "workers %.1f MiB), plain CGI %s MiB (%s)" % (
                    db, RSS_EVENTS, "%.1f" % hwm if hwm else "?", resp.status,
                    max(all_hwm or [0]), "%.1f" % cgi if cgi else "?",
                    "207" if cgi_ok else "NOT 207"))

    def remove_commlogs(self):
        """Debian's odbcinst.ini turns psqlODBC's CommLog on: every process
        that opened a PostgreSQL connection left /tmp/psqlodbc_*_<user><pid>.log.
        Remove those of the program processes this run started."""
        pids = set(self.cgi_pids)
        for log in self.logs:
            with contextlib.suppress(OSError), open(log, "rb") as f:
                pids.update(int(x) for x in re.findall(rb"events-batch\[(\d+)\]", f.read()))
        user = pwd.getpwuid(os.geteuid()).pw_name
        with contextlib.suppress(OSError):
            for name in os.listdir("/tmp"):
                m = re.fullmatch(r"psqlodbc_.*_%s(\d+)\.log" % re.escape(user), name)
                path = os.path.join("/tmp", name)
                if m and int(m.group(1)) in pids and os.path.getmtime(path) >= self.started - 1:
                    with contextlib.suppress(OSError):
                        os.remove(path)

    # ------------------------------------------------------------ report
    def med(self, kind, db, b, key):
        rs = self.results.get((kind, db, b))
        if not rs:
            return None
        vals = [r[key] for r in rs if r.get(key) is not None and not math.isnan(r[key])]
        if key == "new_frac":
            vals = [r[key] for r in rs if r.get("in_p50") is not None]
        return statistics.median(vals) if vals else None

    def ratio(self, kind, db, b, key, lkind, lkey=None, invert=False):
        """Median over runs of the per-run ratio program / limit."""
        a = self.results.get((kind, db, b)) or []
        z = self.results.get((lkind, db if lkind != "hello" else "-", b)) or []
        vals = []
        for x, y in zip(a, z):
            num, den = x[key], y[lkey or key]
            if den:
                vals.append(num / den)
        return statistics.median(vals) if vals else None

    def limit_kind(self, db, b, for_latency=False):
        if db == "pg":
            return "pgbench bulk"
        if for_latency or CONNS == 1:
            return "alone x%d" % CONNS
        # events/s limit: the better of one writer and CONNS writers
        one = self.med("alone x1", db, b, "events_s") or 0
        many = self.med("alone x%d" % CONNS, db, b, "events_s") or 0
        return "alone x1" if one >= many else "alone x%d" % CONNS

    def report(self):
        f = lambda v, d=0: "-" if v is None else ("%.*f" % (d, v))
        say("")
        say("## events-batch benchmark: medians of %d runs, %g s each, %d connections"
            % (RUNS, SECONDS, CONNS))
        say("")
        say("| case | batch | events/s | req/s | p50 ms | p99 ms | limit events/s | limit p99 ms "
            "| ratio events/s | ratio p99 | req/s ÷ hello | new ids | in-program p50/p99 ms |")
        say("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for db in DBS:
            for sp in self.spaces:
                b = sp.b
                lk = self.limit_kind(db, b)
                lkl = self.limit_kind(db, b, for_latency=True)
                say("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |" % (
                    db, b, f(self.med("program", db, b, "events_s")),
                    f(self.med("program", db, b, "req_s"), 1),
                    f(self.med("program", db, b, "p50"), 2), f(self.med("program", db, b, "p99"), 2),
                    f(self.med(lk, db, b, "events_s")), f(self.med(lkl, db, b, "p99"), 2),
                    f(self.ratio("program", db, b, "events_s", lk), 3),
                    f(self.ratio("program", db, b, "p99", lkl), 2),
                    f(self.ratio("program", db, b, "req_s", "hello"), 3),
                    "-" if self.med("program", db, b, "new_frac") is None else
                    "%.0f%%" % (100 * self.med("program", db, b, "new_frac")),
                    f(self.med("program", db, b, "in_p50"), 2),
                    f(self.med("program", db, b, "in_p99"), 2)))
        for sp in self.spaces:
            b = sp.b
            say("| hello (HTTP ceiling) | %d | - | %s | %s | %s | | | | | | | |" % (
                b, f(self.med("hello", "-", b, "req_s"), 1), f(self.med("hello", "-", b, "p50"), 2),
                f(self.med("hello", "-", b, "p99"), 2)))
        say("")
        say("The limits (the database alone, same batches, same ids, same settings):")
        say("")
        say("| limit | batch | events/s | batches/s | p50 ms | p99 ms | max ms | batches sent again |")
        say("|---|---:|---:|---:|---:|---:|---:|---:|")
        kinds = []
        if "sqlite" in DBS:
            kinds += [("alone x1", "sqlite"), ("alone x%d" % CONNS, "sqlite")]
        if "pg" in DBS:
            kinds += [("pgbench bulk", "pg")]
        for kind, db in kinds:
            for sp in self.spaces:
                if (kind, db, sp.b) not in self.results:
                    continue
                if kind == "pgbench bulk":
                    name = "pg: bulk upsert, pgbench -c %d" % CONNS
                else:
                    n = int(kind.split("x")[1])
                    name = "sqlite: C API, %d process%s (synchronous=%s)" % (
                        n, "" if n == 1 else "es", self.sqlite_sync)
                say("| %s | %d | %s | %s | %s | %s | %s | %s |" % (
                    name, sp.b, f(self.med(kind, db, sp.b, "events_s")),
                    f(self.med(kind, db, sp.b, "req_s"), 1), f(self.med(kind, db, sp.b, "p50"), 2),
                    f(self.med(kind, db, sp.b, "p99"), 2), f(self.med(kind, db, sp.b, "max"), 1),
                    f(self.med(kind, db, sp.b, "reused"))))
        say("")
        for db, r in self.rss.items():
            say("Peak RSS of a worker, %d-event batch, %s: %s MiB as a FastCGI worker (VmHWM; HTTP %d),"
                " %s MiB as plain CGI (/usr/bin/time -v)" % (
                    RSS_EVENTS, db, f(r["fcgi"], 1), r["status"], f(r["cgi"], 1)))
        say("")
        say("Goals:")
        goals = []
        if "pg" in DBS and 1000 in BATCHES:
            goals.append(("PostgreSQL, batch 1000: events/s >= 0.8 x bulk-upsert limit",
                          self.ratio("program", "pg", 1000, "events_s", "pgbench bulk"), 0.8, True))
        if "sqlite" in DBS and 1000 in BATCHES:
            goals.append(("SQLite, batch 1000: events/s >= 0.5 x SQLite-alone rate",
                          self.ratio("program", "sqlite", 1000, "events_s",
                                     self.limit_kind("sqlite", 1000)), 0.5, True))
        if "sqlite" in DBS and 1 in BATCHES:
            goals.append(("SQLite, batch 1: events/s >= 0.8 x SQLite-alone rate (synchronous=%s)"
                          % self.sqlite_sync,
                          self.ratio("program", "sqlite", 1, "events_s",
                                     self.limit_kind("sqlite", 1)), 0.8, True))
        if 100 in BATCHES:
            for db in DBS:
                goals.append(("%s, batch 100: p99 <= 2 x database-alone p99" % db,
                              self.ratio("program", db, 100, "p99",
                                         self.limit_kind(db, 100, for_latency=True)), 2.0, False))
        for db, r in self.rss.items():
            goals.append(("peak RSS of a worker, %d-event batch (%s) < 64 MiB" % (RSS_EVENTS, db),
                          r["fcgi"], 64.0, False))
        for text, v, goal, higher in goals:
            if v is None:
                say("- %s: not measured" % text)
                continue
            met = v >= goal if higher else v < goal
            if met:
                say("- %s: met (%.3g)" % (text, v))
            elif higher:
                say("- %s: MISSED: %.3g, the goal needs %.1fx more" % (
                    text, v, goal / v if v else float("inf")))
            elif v / goal < 1.5:
                say("- %s: MISSED: %.3g, %.0f%% over" % (text, v, 100 * (v / goal - 1)))
            else:
                say("- %s: MISSED: %.3g, %.1fx over" % (text, v, v / goal))
        if self.notes:
            say("")
            say("Notes:")
            for n in dict.fromkeys(self.notes):
                say("- " + n)
        say("")
        say("Per run (events/s; p99 ms):")
        for key, rs in sorted(self.results.items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][0])):
            say("  %-14s %-6s %5d: %s" % (key[0], key[1], key[2], "  ".join(
                "%.0f; %.2f" % (r["events_s"], r["p99"]) for r in rs)))

    def facts(self):
        def first(argv):
            with contextlib.suppress(Exception):
                p = subprocess.run(argv, capture_output=True, timeout=10)
                return (p.stdout + p.stderr).decode(errors="replace").strip().splitlines()[0]
            return "?"
        cpu = "?"
        with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
            m = re.search(r"^model name\s*:\s*(.*)$", fh.read(), re.M)
            cpu = m.group(1) if m else "?"
        say("machine: %d CPUs (nproc), %s; %s; kernel %s" % (
            os.cpu_count(), cpu, time.strftime("%Y-%m-%d %H:%M:%S %Z"), platform.release()))
        rev = first(["git", "-C", TOP, "describe", "--always", "--dirty", "--exclude", "*"])
        say("program: %s, commit %s" % (os.path.join(BUILD, "src", "events-batch.fcgi"), rev))
        say("versions: %s; %s; SQLite %s; %s; %s" % (
            first(["lighttpd", "-v"]), first([os.path.join(PG_BIN, "postgres"), "--version"]),
            sqlite3.sqlite_version, first(["wrk", "-v"]),
            first([os.path.join(BUILD, "src", "events-batch.fcgi"), "--version"])))


def main():
    b = Bench()
    interrupted = []

    def on_signal(signum, frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    rc = 0
    try:
        b.facts()
        b.setup()
        say("program's SQLite connection runs with synchronous=%s (asked through the ODBC driver)"
            % b.sqlite_sync)
        b.warm_up()
        b.measure()
        say("peak RSS ...")
        b.peak_rss()
        b.report()
    except KeyboardInterrupt:
        say("interrupted")
        rc = 130
    except Exception as e:
        say("benchmark failed: %s" % e)
        rc = 1
        if KEEP:
            raise
    finally:
        b.procs.stop_all()
        if b.lighttpd is not None:
            b.remove_commlogs()
        if KEEP:
            say("kept %s" % TMP)
        else:
            shutil.rmtree(TMP, ignore_errors=True)
        say("total time %.0f s" % (time.time() - b.started))
    return rc


if __name__ == "__main__":
    sys.exit(main())
