"""Cluster fixtures for the scale-out tests (issue 15 items 3-6): real
servers from the Debian packages, started in temp dirs on loopback
addresses, stopped by PID.

PgCluster: a PostgreSQL 15 primary and a synchronous streaming standby
(pg_basebackup -R, synchronous_standby_names) on two loopback addresses
with one port, so that psqlODBC's single Port and a libpq multi-host
Servername reach both; stop_primary() stops the primary with
"-m immediate" (SIGQUIT to the postmaster), promote() promotes the standby.

GaleraCluster: three MariaDB Galera nodes (galera-4, rsync SST) on
127.0.0.11-13; kill() on a node is kill -9, start() again rejoins it.

Haproxy: an haproxy in front of backends (web hosts in HTTP mode with an
HTTP health check, or database nodes in TCP mode), on a free port of
127.0.0.1, each checked every 200 ms; states() reads what it thinks of them.
BatchLoad: client threads sending batches of creates and updates through
whatever is under test, and what they had acknowledged.
"""
import collections
import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import servers  # noqa: E402

PG_BIN = servers.PG_BIN


class Haproxy:
    """haproxy -f CONF -db (in the foreground) from a config written in a
    temp dir, with its log (stderr) there too: one frontend on 127.0.0.1 and
    a free port, one backend "be" over BACKENDS, [(name, addr, port) or
    (name, addr, port, server options such as "backup")], balanced
    round robin, each server checked every 200 ms, down after two failures,
    up after two successes.

    CHECK "GET /path": an HTTP check (option httpchk, a 200 expected); None:
    a TCP connect.  EXTRA_BACKEND_LINES go into the backend as they are
    (e.g. "option mysql-check user NAME" in place of the TCP connect).
    mode "http": a log line per request (requests()); a request whose
    connection failed goes to another server (retries 3, option redispatch
    1, retry-on conn-failure: it never reached a server, so any request may
    be sent again).  mode "tcp": a server marked down has its sessions shut
    (a client on a dead node would wait for its timeout otherwise).
    stats(), server(name) and states() read the runtime API's "show stat"
    (a unix socket in the temp dir).  Stopped by its PID."""

    def __init__(self, backends, mode="http", check=None, extra_backend_lines=(),
                 timeout_s=120):
        self.exe = harness.which("haproxy")
        self.dir = tempfile.mkdtemp(prefix="eb-haproxy-")
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        self.log_path = os.path.join(self.dir, "haproxy.log")
        self.socket = os.path.join(self.dir, "admin.sock")
        self.port = harness.free_port()
        self.proc = None
        lines = ["global",
                 "    log stderr format raw local0 info",
                 "    stats socket %s mode 600 level admin" % self.socket,
                 "    maxconn 512",
                 "defaults",
                 "    mode %s" % mode,
                 "    log global",
                 "    option %slog" % mode,
                 "    timeout connect 2s",
                 "    timeout client %ds" % harness.scaled(timeout_s),
                 "    timeout server %ds" % harness.scaled(timeout_s),
                 "    timeout check %ds" % harness.scaled(2)]
        server_options = "inter 200ms fall 2 rise 2"
        if mode == "http":
            lines += ["    retries 3", "    option redispatch 1", "    retry-on conn-failure"]
        else:
            server_options += " on-marked-down shutdown-sessions"
        lines += ["frontend fe",
                  "    bind 127.0.0.1:%d" % self.port,
                  "    default_backend be",
                  "backend be",
                  "    balance roundrobin"]
        if check is not None:
            lines += ["    option httpchk %s" % check, "    http-check expect status 200"]
        lines += ["    " + line for line in extra_backend_lines]
        lines.append("    default-server " + server_options)
        for backend in backends:
            name, addr, port, options = (tuple(backend) + ("",))[:4]
            lines.append(("    server %s %s:%d check %s" % (name, addr, port, options)).rstrip())
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        harness.stop_at_exit(self, "cleanup")

    def start(self):
        """Check the config (haproxy -c), start, and wait for the listener;
        returns self."""
        t = subprocess.run([self.exe, "-c", "-f", self.conf], capture_output=True, text=True)
        if t.returncode != 0:
            raise servers.ServerError("haproxy -c refuses the config:\n%s%s"
                                      % (t.stdout, t.stderr))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([self.exe, "-f", self.conf, "-db"],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        harness.wait_listening(self.port, self.proc)
        if self.proc.poll() is not None:
            raise servers.ServerExited("haproxy exited with %s at start-up:\n%s"
                                       % (self.proc.returncode, self.log()))
        return self

    def stats(self):
        """The runtime API's "show stat": a dict per proxy and server (the
        CSV's columns: pxname, svname, status, check_status, stot, ...)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(harness.scaled(10))
            s.connect(self.socket)
            s.sendall(b"show stat\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        text = data.decode("utf-8", "replace").lstrip("# ")
        return list(csv.DictReader(io.StringIO(text)))

    def server(self, name):
        """The stats row of server NAME of the backend."""
        return next(r for r in self.stats() if r["pxname"] == "be" and r["svname"] == name)

    def states(self):
        """Each server's state as haproxy sees it: {"n1": "UP", ...} (the
        state alone, without a "1/2" of a change under way)."""
        return {r["svname"]: r["status"].split()[0] for r in self.stats()
                if r["pxname"] == "be" and r["svname"] != "BACKEND"}

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def requests(self):
        """mode http: each request's log line (option httplog) as a dict of
        its server, status (-1: no answer) and termination state ("----"
        when it ended normally)."""
        return [m.groupdict() for m in re.finditer(
            r"(?m)^\S+ \[[^]]+\] fe be/(?P<server>\S+) \S+ (?P<status>-?\d+) \S+ \S+ \S+ "
            r"(?P<flags>\S{4}) ", self.log())]

    def stop(self):
        """SIGTERM by PID (haproxy stops at once), SIGKILL if it lingers."""
        if self.proc is not None:
            harness.stop_process(self.proc)

    def cleanup(self):
        """Stop, and remove the temp dir."""
        self.stop()
        harness.forget_at_exit(self)
        shutil.rmtree(self.dir, ignore_errors=True)


class BatchLoad:
    """CLIENTS threads, each sending batches until stop(): client c sends
    BATCH ids of its own a round, cycling through IDS of them (c * 10000 +
    k), so later rounds update what earlier ones created, with the subject
    "c<c> n<round>"; or, given pick, the ids pick(c, round) returns.
    send(c, batch) returns the Response (None: no answer); an answer that
    again(r) says to send again is sent again, as a client does; every
    other answer must be a 207 with 200 or 201 for each item, in order.

    answers: an Answer for every request (small: the responses themselves,
    kept, would make Python's garbage collector stop the clients for a
    tenth of a second and more, which the tests would take for gaps);
    acked: id -> the subject of the last 207 that acknowledged it;
    writes: id -> [(sent, answered, subject)] of every 207 that did;
    created: id -> how many 207s said 201 for it;
    errors: what went wrong in a client (it stops)."""

    # status None: no answer; activity: the program's activityID, if any
    Answer = collections.namedtuple("Answer", "sent answered status headers activity")

    def __init__(self, send, again, clients, batch, ids, pick=None):
        self.send, self.again = send, again
        self.batch, self.ids = batch, ids
        self.pick = pick or (lambda c, n: [c * 10000 + (n * batch + k) % ids
                                           for k in range(batch)])
        self.answers, self.acked, self.errors = [], {}, []
        self.writes, self.created = {}, {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(c,), daemon=True)
                        for c in range(clients)]

    def _client(self, c):
        n = 0
        try:
            while not self.stopping.is_set():
                ids = self.pick(c, n)
                subject = "c%d n%d" % (c, n)
                batch = [harness.event(i, subject=subject) for i in ids]
                while True:
                    sent = time.monotonic()
                    r = self.send(c, batch)
                    a = self.Answer(sent, time.monotonic(), r and r.status, r and r.headers,
                                    r and isinstance(r.json, dict)
                                    and (r.json.get("debug") or {}).get("activityID"))
                    with self.lock:
                        self.answers.append(a)
                    if not self.again(r):
                        break
                got = [(d["id"][0]["value"], d["status"]) for d in r.json["data"]] \
                    if r.status == 207 else None
                if got is None or [g[0] for g in got] != ids or \
                        any(s not in (200, 201) for _, s in got):
                    raise AssertionError("not a 207 for each item: %r" % r)
                with self.lock:
                    for i, s in got:
                        self.acked[i] = subject
                        self.writes.setdefault(i, []).append((sent, a.answered, subject))
                        self.created[i] = self.created.get(i, 0) + (s == 201)
                n += 1
        except Exception as e:  # reported in the main thread
            self.errors.append("client %d: %r" % (c, e))

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self, case):
        """Stop the clients after their batch in hand is acknowledged; fails
        CASE (a TestCase) if one hangs or went wrong."""
        self.stopping.set()
        for t in self.threads:
            t.join(harness.scaled(180))
        case.assertFalse(any(t.is_alive() for t in self.threads), "a client hangs")
        case.assertEqual(self.errors, [])

    def ack_times(self):
        return sorted(a.answered for a in self.answers if a.status == 207)

    def assert_stored(self, case, stored):
        """STORED ({id: subject}, the database after the run) holds every
        acknowledged item with the subject of its last 207, and no other."""
        missing = sorted(i for i in self.acked if i not in stored)
        differ = sorted(i for i in self.acked if i in stored and stored[i] != self.acked[i])
        case.assertEqual(missing, [], "acknowledged items missing")
        case.assertEqual(differ, [], "acknowledged items with another value")
        case.assertEqual(set(stored), set(self.acked))


class PgNode(servers.PostgresServer):
    """A PostgreSQL server on one loopback address (addr) and a given port.
    With primary=None it is a new primary (initdb, the schema); else a
    standby copied from that primary by pg_basebackup -R."""

    prefix = "eb-pgnode-"

    def __init__(self, addr, port=None, primary=None, standby_name=None):
        super().__init__()
        self.addr = addr
        if port is not None:
            self.port = port
        self.primary = primary
        self.standby_name = standby_name
        if primary is not None:
            self.password = primary.password

    def _init(self):
        self.data = os.path.join(self.dir, "data")
        if self.primary is None:
            super()._init()
            hba = os.path.join(self.data, "pg_hba.conf")
            with open(hba) as f:
                rest = f.read()
            # first: the standby's replication connection as the admin,
            # loopback only; the program from any loopback address
            with open(hba, "w") as f:
                f.write("host replication %s 127.0.0.0/8 trust\n" % self.admin)
                f.write("host all all 127.0.0.0/8 %s\n" % self.host_auth)
                f.write(rest)
            return
        p = self.primary
        self._run([os.path.join(PG_BIN, "pg_basebackup"), "-D", self.data, "-R",
                   "-X", "stream", "-c", "fast", "-h", p.addr, "-p", str(p.port), "-U", p.admin,
                   "-d", "application_name=%s" % self.standby_name, "--no-sync"],
                  as_owner=True)

    def _server_argv(self):
        argv = super()._server_argv()
        argv[argv.index("listen_addresses=127.0.0.1")] = "listen_addresses=" + self.addr
        # the synchronous commit is what item 3 tests: the primary's COMMIT
        # returns once the standby has the WAL on disk
        argv[argv.index("synchronous_commit=off")] = "synchronous_commit=on"
        argv += ["-c", "wal_level=replica", "-c", "max_wal_senders=8",
                 "-c", "hot_standby=on", "-c", "wal_keep_size=64MB"]
        return argv

    def _setup(self):
        if self.primary is None:
            super()._setup()

    def stop_immediate(self):
        """pg_ctl stop -m immediate: SIGQUIT to the postmaster."""
        pid = self.pid
        if pid and harness.pid_alive(pid):
            os.kill(pid, signal.SIGQUIT)
        if self.proc is not None:
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self._kill_proc()
        while pid and harness.pid_alive(pid):
            time.sleep(0.05)
        self.proc = None
        self.pid = None

    def promote(self, timeout=30.0):
        self._run([os.path.join(PG_BIN, "pg_ctl"), "promote", "-w", "-t", str(int(timeout)),
                   "-D", self.data], as_owner=True)

    def in_recovery(self):
        return self.query("SELECT pg_is_in_recovery()", database="postgres")[0][0] == "t"


class PgCluster:
    """Primary on 127.0.0.2, synchronous standby on 127.0.0.3, one port."""

    def __init__(self, primary_addr="127.0.0.2", standby_addr="127.0.0.3"):
        self.port = harness.free_port()
        self.primary = PgNode(primary_addr, self.port, standby_name="standby1")
        self.standby = None
        self.standby_addr = standby_addr

    def start(self):
        self.primary.start()
        self.standby = PgNode(self.standby_addr, self.port, primary=self.primary,
                              standby_name="standby1")
        self.standby.start()
        # synchronous once the standby is there (before, every commit of
        # the set-up would wait for it); ALTER SYSTEM writes it to the
        # data dir, which the standby copied before: only the primary has it
        self.primary.execute("ALTER SYSTEM SET synchronous_standby_names = 'standby1'",
                             database="postgres")
        self.primary.execute("SELECT pg_reload_conf()", database="postgres")
        # wait until the standby streams synchronously
        deadline = time.time() + 30
        while time.time() < deadline:
            rows = self.primary.query("SELECT sync_state FROM pg_stat_replication "
                                      "WHERE application_name = 'standby1'",
                                      database="postgres")
            if rows and rows[0][0] == "sync":
                return self
            time.sleep(0.1)
        raise servers.ServerError("standby not in sync after 30 s")

    def odbc(self, **over):
        """psqlODBC through libpq multi-host: the standby is tried too, and
        only a server that takes writes is kept."""
        keys = {"Driver": self.primary.driver,
                "Servername": "%s,%s" % (self.primary.addr, self.standby.addr),
                "Port": str(self.port), "Database": servers.DATABASE,
                "UID": self.primary.user, "PWD": self.primary.password,
                "pqopt": "{target_session_attrs=read-write}"}
        keys.update(over)
        return ";".join("%s=%s" % kv for kv in keys.items())

    def cleanup(self):
        for n in (self.standby, self.primary):
            if n is not None:
                n.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


# --- MariaDB Galera ----------------------------------------------------------------

GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so"


def galera_available():
    return servers.MariaDBServer.available() and os.path.exists(GALERA_PROVIDER) \
        and harness.which("rsync") is not None


class GaleraNode(servers.MariaDBServer):
    """One node of a Galera cluster: a mariadbd on its own loopback address,
    with free ports for clients, group communication, IST and the rsync SST.
    The first node of a new cluster bootstraps it (--wsrep-new-cluster, the
    database, the user, the schema); the others join it and get all that by
    SST. Ready means Synced, not merely answering."""

    prefix = "eb-galera-"

    def __init__(self, cluster, name, addr, bootstrap=False):
        super().__init__()
        self.cluster = cluster
        self.name = name
        self.addr = addr
        self.bootstrap = bootstrap
        self.gcomm_port, self.ist_port, self.sst_port = (harness.free_port() for _ in range(3))
        if not bootstrap:
            self.password = cluster.nodes[0].password

    def _server_argv(self):
        argv = super()._server_argv()
        argv[argv.index("--bind-address=127.0.0.1")] = "--bind-address=" + self.addr
        provider_options = ";".join([
            "gmcast.listen_addr=tcp://%s:%d" % (self.addr, self.gcomm_port),
            "ist.recv_addr=%s:%d" % (self.addr, self.ist_port),
            "gcache.size=64M",
            # a node killed is noticed within seconds, not the default 5-15
            "evs.suspect_timeout=PT2S", "evs.inactive_timeout=PT4S",
            "evs.keepalive_period=PT0.5S", "evs.inactive_check_period=PT0.5S",
            "evs.install_timeout=PT4S"])
        argv += ["--wsrep-on=ON", "--wsrep-provider=" + GALERA_PROVIDER,
                 "--wsrep-cluster-name=eb-test", "--wsrep-node-name=" + self.name,
                 "--wsrep-cluster-address=" + self.cluster.address(),
                 "--wsrep-node-address=%s:%d" % (self.addr, self.gcomm_port),
                 "--wsrep-node-incoming-address=%s:%d" % (self.addr, self.port),
                 "--wsrep-provider-options=" + provider_options,
                 "--wsrep-sst-method=rsync",
                 "--wsrep-sst-receive-address=%s:%d" % (self.addr, self.sst_port),
                 "--binlog-format=ROW", "--innodb-autoinc-lock-mode=2",
                 "--default-storage-engine=InnoDB"]
        if self.bootstrap and self.starts == 0:
            argv.append("--wsrep-new-cluster")
        return argv

    def status(self, name):
        rows = self.query("SHOW GLOBAL STATUS LIKE '%s'" % name, database=None)
        return rows[0][1] if rows else None

    def _ping(self):
        p = self._client("SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'", database=None)
        out = p.stdout.decode(errors="replace")
        return p.returncode == 0 and ">Synced<" in out, p.stderr.decode(errors="replace") + out

    def _wait_ready(self, timeout=120.0):
        # a joiner copies the data first (SST)
        super()._wait_ready(timeout)

    def _setup(self):
        if self.bootstrap:
            super()._setup()

    def kill(self):
        """kill -9: no shutdown, no goodbye to the cluster."""
        pid = self.pid or (self.proc.pid if self.proc else None)
        if pid and harness.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(30)
        self.proc = None
        self.pid = None


class GaleraCluster:
    """Three Galera nodes on 127.0.0.11-13, started one after the other (the
    first bootstraps, the others join by rsync SST)."""

    def __init__(self, addrs=("127.0.0.11", "127.0.0.12", "127.0.0.13")):
        self.nodes = []
        for i, addr in enumerate(addrs):
            self.nodes.append(GaleraNode(self, "n%d" % (i + 1), addr, bootstrap=(i == 0)))

    def address(self):
        return "gcomm://" + ",".join("%s:%d" % (n.addr, n.gcomm_port) for n in self.nodes)

    def start(self):
        """The first node, then the others at once (each copies it by SST)."""
        self.nodes[0].start()
        errors = []

        def join(n):
            try:
                n.start()
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=join, args=(n,)) for n in self.nodes[1:]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return self

    def synced(self, timeout=120.0):
        """Wait until every node is Synced in a cluster of all of them."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if all(n._ping()[0] and self.size(n) == len(self.nodes) for n in self.nodes):
                    return
            except servers.ServerError:
                pass
            time.sleep(0.2)
        raise servers.ServerError("the Galera cluster is not whole after %ds" % timeout)

    def size(self, node):
        return int(node.status("wsrep_cluster_size"))

    def odbc(self, node, **over):
        """The connection string of one node (MariaDB Connector/ODBC holds
        one server)."""
        return node.odbc_with(**dict({"Server": node.addr}, **over))

    def cleanup(self):
        for n in reversed(self.nodes):
            n.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
