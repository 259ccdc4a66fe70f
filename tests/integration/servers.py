"""Real database servers for the integration tests: a PostgreSQL 15 and a
MariaDB 10.11, each in a fresh temporary directory, listening on a free port
of 127.0.0.1 only (and on a unix socket inside that directory for the admin
client), with durability switched off for speed.

Each server gets a database 'events' loaded with the project's schema file
and an application user with a random password; the tests hand the program
the ODBC connection string `odbc` and read rows back with the servers' own
command-line clients (query()).  stop() and start() keep the port and the
data, for the restart and "server down" tests; cleanup() stops the server by
its PID and removes the directory.

initdb and postgres refuse to run as root: then the directory belongs to the
'postgres' user and they run through `runuser -u postgres --`.  mariadbd run
as root gets --user=mysql and a data directory owned by mysql.
"""
import csv
import getpass
import io
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

import harness

PG_BIN = os.environ.get("EB_PG_BINDIR", "/usr/lib/postgresql/15/bin")
APP_USER = "events_app"
DATABASE = "events"

def _exit_on_sigterm(signum, frame):
    # KeyboardInterrupt, not SystemExit: unittest records the latter as one
    # test's error and goes on, but lets the former end the run
    raise KeyboardInterrupt("SIGTERM")


# a test run stopped with SIGTERM (a harness's timeout) still stops its
# servers, from harness.stop_at_exit's atexit hook
if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def odbc_driver_installed(name):
    """Whether unixODBC knows a driver called name (odbcinst -q -d)."""
    exe = harness.which("odbcinst")
    if exe is None:
        return True  # cannot tell; let the connection say
    out = subprocess.run([exe, "-q", "-d"], capture_output=True, text=True)
    return "[%s]" % name in out.stdout.splitlines()


class ServerError(RuntimeError):
    pass


class ServerExited(ServerError):
    """The server process ended during start-up (e.g. its port was taken)."""


class _Server:
    """What both servers share: a temp dir, a port, a process, a password."""

    prefix = "eb-server-"
    owner = None          # OS user the server runs as when we are root
    stop_signal = signal.SIGTERM

    def __init__(self):
        self.root = os.geteuid() == 0
        self.dir = tempfile.mkdtemp(prefix=self.prefix)
        if self.root:
            os.chmod(self.dir, 0o750)
            pw = pwd.getpwnam(self.owner)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.port = harness.free_port()
        # hex only: no character that would need quoting in a connection string
        self.password = "Eb%sPw" % secrets.token_hex(12)
        self.user = APP_USER
        self.proc = None
        self.pid = None
        self.starts = 0
        harness.stop_at_exit(self, "cleanup")

    def __repr__(self):
        return "<%s 127.0.0.1:%d %s>" % (type(self).__name__, self.port, self.dir)

    @property
    def running(self):
        return self.pid is not None and harness.pid_alive(self.pid)

    def _log_tail(self, name, n=40):
        path = os.path.join(self.dir, name)
        try:
            with open(path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no %s)" % path

    def _run(self, argv, as_owner=False, **kw):
        if as_owner and self.root:
            argv = [harness.which("runuser") or "runuser", "-u", self.owner, "--"] + argv
        p = subprocess.run(argv, capture_output=True, cwd=self.dir, **kw)
        if p.returncode != 0:
            raise ServerError("%s failed (%d):\n%s%s" % (
                argv[0] if not as_owner else " ".join(argv[:5]), p.returncode,
                p.stdout.decode(errors="replace")[-2000:],
                p.stderr.decode(errors="replace")[-2000:]))
        return p

    def _wait_ready(self, timeout=60.0):
        deadline = time.time() + timeout
        last = ""
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise ServerExited("%r exited with %s during start-up:\n%s" % (
                    self, self.proc.returncode, self._log_tail(self.log_name)))
            ok, last = self._ping()
            if ok:
                return
            time.sleep(0.1)
        raise ServerError("%r not ready after %ds: %s\n%s" % (
            self, timeout, last, self._log_tail(self.log_name)))

    def start(self):
        """Start the server (again: same port, same data) and wait until it
        answers; returns self."""
        if self.running:
            return self
        if self.starts == 0:
            self._init()
        for attempt in range(3):
            with open(os.path.join(self.dir, "stdio.log"), "ab") as out:
                self.proc = subprocess.Popen(self._server_argv(), stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=out, cwd=self.dir)
            try:
                self._wait_ready()
                self.pid = self._server_pid()
                break
            except ServerExited:
                self._kill_proc()
                # the free port was taken meanwhile: on the first start only
                # (a restart must keep its port), try another
                if self.starts > 0 or attempt == 2:
                    raise
                self.port = harness.free_port()
            except BaseException:
                self._kill_proc()
                raise
        if self.starts == 0:
            self._setup()
        self.starts += 1
        return self

    def stop(self, timeout=60.0):
        """Stop the server by its PID and wait until it is gone."""
        if self.proc is None:
            return
        pid = self.pid or self.proc.pid
        if harness.pid_alive(pid):
            try:
                os.kill(pid, self.stop_signal)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_proc()
        deadline = time.time() + timeout
        while harness.pid_alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        if harness.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.proc = None
        self.pid = None

    def _kill_proc(self):
        """SIGKILL the server (found by its pid file when not yet known) and
        the process we started (runuser, or the server itself)."""
        pids = {self.pid, self.proc.pid if self.proc else None}
        try:
            pid = self._server_pid()
            # a stale pid file may name a recycled PID: only ours is killed
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if self.dir.encode() in f.read():
                    pids.add(pid)
        except (OSError, ValueError, AttributeError):
            pass
        for pid in pids - {None}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self.proc.wait()
        self.proc = None
        self.pid = None

    def cleanup(self):
        try:
            self.stop()
        finally:
            harness.forget_at_exit(self)
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def odbc_with(self, **over):
        """The connection string with some of its keys replaced."""
        keys = {"Driver": self.driver, "Server": "127.0.0.1", "Port": str(self.port),
                "Database": DATABASE, "UID": self.user, "PWD": self.password}

        keys.update(over)
        return ";".join("%s=%s" % kv for kv in keys.items())

    @property
    def odbc(self):
        return self.odbc_with()

    def schema_sql(self):
        with open(os.path.join(harness.SRCDIR, "sql", self.schema_file)) as f:
            return f.read()

    def count(self, table="Event"):
        return int(self.query("SELECT COUNT(*) FROM %s" % table)[0][0])


class PostgresServer(_Server):
    prefix = "eb-pg-"
    owner = "postgres"
    driver = "PostgreSQL Unicode"
    schema_file = "schema-postgresql.sql"
    log_name = "stdio.log"       # postgres logs to its stderr
    stop_signal = signal.SIGINT   # "fast" shutdown: clients are disconnected
    admin = "ebadmin"             # bootstrap superuser; local socket only
    NULL = "\x01NULL\x01"

    @staticmethod
    def available():
        return all(os.path.exists(os.path.join(PG_BIN, b))
                   for b in ("initdb", "postgres", "psql")) and \
            odbc_driver_installed(PostgresServer.driver)

    # the password check on TCP: SCRAM, as PostgreSQL 15 does by default;
    # under valgrind md5, because SCRAM's PBKDF2 (in libpq, under memcheck)
    # makes a login take seconds, against the program's 5-s login timeout
    host_auth = "md5" if harness.VALGRIND else "scram-sha-256"

    def _init(self):
        self.data = os.path.join(self.dir, "data")
        # trust on the socket (inside our 0750 dir) for the admin client;
        # TCP, which the program uses, needs the password
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", self.admin,
                   "--auth-local=trust", "--auth-host=" + self.host_auth, "-E", "UTF8",
                   "--no-locale", "--no-sync"], as_owner=True)

    def _server_argv(self):
        argv = [os.path.join(PG_BIN, "postgres"), "-D", self.data, "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + self.dir,
                "-c", "fsync=off", "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off", "-c", "max_connections=50",
                "-c", "logging_collector=off", "-c", "log_destination=stderr",
                "-c", "TimeZone=UTC", "-c", "password_encryption=" + self.host_auth]
        if self.root:
            argv = [harness.which("runuser") or "runuser", "-u", self.owner, "--"] + argv
        return argv

    def _server_pid(self):
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def _psql(self, sql, database=DATABASE, user=None):
        return subprocess.run(
            [os.path.join(PG_BIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--csv", "-t",
             "-P", "null=" + self.NULL, "-h", self.dir, "-p", str(self.port),
             "-U", user or self.admin, "-d", database, "-f", "-"],
            input=sql.encode(), capture_output=True, timeout=120,
            env=dict(os.environ, PGCONNECT_TIMEOUT="5", PGTZ="UTC", PGCLIENTENCODING="UTF8"))

    def _ping(self):
        p = self._psql("SELECT 1", database="postgres")
        return p.returncode == 0, p.stderr.decode(errors="replace")

    def _setup(self):
        self.execute("CREATE ROLE %s LOGIN PASSWORD '%s'" % (self.user, self.password),
                     database="postgres")
        self.execute("CREATE DATABASE %s OWNER %s ENCODING 'UTF8' TEMPLATE template0"
                     % (DATABASE, self.user), database="postgres")
        # the application user owns what its schema creates
        self.execute(self.schema_sql(), user=self.user)

    def query(self, sql, database=DATABASE, user=None):
        """Rows of the last statement of sql, as lists of str (None for NULL)."""
        p = self._psql(sql, database, user)
        if p.returncode != 0:
            raise ServerError("psql: %s\n-- in: %s" % (p.stderr.decode(errors="replace"),
                                                       sql[:500]))
        text = p.stdout.decode("utf-8")
        return [[None if v == self.NULL else v for v in row]
                for row in csv.reader(io.StringIO(text, newline=""))]

    execute = query

    def empty(self):
        self.execute("TRUNCATE Event")


class MariaDBServer(_Server):
    prefix = "eb-my-"
    owner = "mysql"
    driver = "MariaDB Unicode"
    schema_file = "schema-mariadb.sql"
    log_name = "error.log"

    @staticmethod
    def available():
        return all(harness.which(b) for b in ("mariadb-install-db", "mariadbd", "mariadb")) \
            and odbc_driver_installed(MariaDBServer.driver)

    def _init(self):
        self.data = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "mysqld.sock")
        # the admin is the OS user, by unix_socket authentication over the
        # socket in our directory; nobody can log in over TCP but APP_USER
        self.admin = "root" if self.root else getpass.getuser()
        # a temp folder of its own: servers made at once in the shared /tmp
        # were seen to remove each other's temporary tables
        self.tmp = os.path.join(self.dir, "tmp")
        os.mkdir(self.tmp)
        if self.root:
            pw = pwd.getpwnam(self.owner)
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
        self._run([harness.which("mariadb-install-db"), "--no-defaults",
                   "--user=" + (self.owner if self.root else self.admin),
                   "--datadir=" + self.data, "--skip-test-db", "--skip-name-resolve",
                   "--auth-root-authentication-method=socket", "--tmpdir=" + self.tmp])

    def _server_argv(self):
        argv = [harness.which("mariadbd"), "--no-defaults",
                "--datadir=" + self.data, "--bind-address=127.0.0.1", "--port=%d" % self.port,
                "--socket=" + self.socket, "--pid-file=" + os.path.join(self.dir, "mysqld.pid"),
                "--tmpdir=" + self.tmp,
                "--log-error=" + os.path.join(self.dir, "error.log"),
                "--skip-log-bin", "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0", "--innodb-buffer-pool-size=64M",
                "--max-connections=50",
                "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
                "--default-time-zone=+00:00"]
        if self.root:
            argv.insert(2, "--user=" + self.owner)
        return argv

    def _server_pid(self):
        return self.proc.pid

    def _client(self, sql, database=DATABASE):
        argv = [harness.which("mariadb"), "--no-defaults", "--protocol=socket",
                "--socket=" + self.socket, "-u", self.admin, "--xml",
                "--default-character-set=utf8mb4", "--connect-timeout=5"]
        if database:
            argv.append(database)
        return subprocess.run(argv, input=sql.encode(), capture_output=True, timeout=120)

    def _ping(self):
        p = self._client("SELECT 1", database=None)
        return p.returncode == 0, p.stderr.decode(errors="replace")

    def _setup(self):
        pw = self.password  # hex: nothing to escape
        self.execute("CREATE DATABASE %s CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;"
                     "CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s';"
                     "GRANT ALL ON %s.* TO '%s'@'127.0.0.1';"
                     % (DATABASE, self.user, pw, DATABASE, self.user), database=None)
        self.execute(self.schema_sql())

    def query(self, sql, database=DATABASE):
        """Rows of the statements of sql, as lists of str (None for NULL).
        Read as XML, which keeps NULL apart from 'NULL' and any text exact."""
        p = self._client(sql, database)
        if p.returncode != 0:
            raise ServerError("mariadb: %s\n-- in: %s" % (p.stderr.decode(errors="replace"),
                                                          sql[:500]))
        rows = []
        out = p.stdout.decode("utf-8")
        nil = "{http://www.w3.org/2001/XMLSchema-instance}nil"
        # one <resultset> document per statement that returns rows
        for doc in out.split('<?xml version="1.0"?>'):
            if not doc.strip():
                continue
            for row in ET.fromstring(doc.strip()).iter("row"):
                rows.append([None if f.get(nil) == "true" else (f.text or "")
                             for f in row.iter("field")])
        return rows

    execute = query

    def empty(self):
        self.execute("DELETE FROM Event")
