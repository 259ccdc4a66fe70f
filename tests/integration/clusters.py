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

Haproxy: haproxy in front of servers (TCP or HTTP), each checked every
200 ms; states() reads what it thinks of them.
"""
import csv
import io
import os
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
    """haproxy -db (foreground) on 127.0.0.1 and a free port, in front of
    BACKENDS, a list of (name, addr, port, options): MODE "tcp" or "http",
    each server checked every 200 ms (CHECK_LINES: the backend's check,
    such as "option httpchk GET /health"; none: a TCP connect), down after
    two failures, up after two successes. EXTRA_BACKEND_LINES go into the
    backend as they are. A stats socket in its folder answers states()."""

    def __init__(self, backends, mode="tcp", check_lines=(), extra_backend_lines=(),
                 timeout_s=120):
        self.dir = tempfile.mkdtemp(prefix="eb-haproxy-")
        self.port = harness.free_port()
        self.stats = os.path.join(self.dir, "stats.sock")
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        lines = ["global", "    stats socket %s mode 600 level admin" % self.stats,
                 "    log stderr format short local0 info",
                 "defaults", "    mode %s" % mode, "    log global",
                 "    timeout connect 2s", "    timeout client %ds" % timeout_s,
                 "    timeout server %ds" % timeout_s,
                 "frontend in", "    bind 127.0.0.1:%d" % self.port,
                 "    default_backend servers",
                 "backend servers"]
        lines += ["    " + line for line in list(check_lines) + list(extra_backend_lines)]
        lines += ["    default-server inter 200ms fall 2 rise 2 on-marked-down shutdown-sessions"]
        lines += ["    server %s %s:%d check %s" % (name, addr, port, options)
                  for name, addr, port, options in backends]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        harness.stop_at_exit(self, "cleanup")

    def start(self):
        with open(os.path.join(self.dir, "haproxy.log"), "ab") as log:
            self.proc = subprocess.Popen([harness.which("haproxy"), "-db", "-f", self.conf],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        harness.wait_listening(self.port, self.proc)
        return self

    def states(self):
        """Each server's state as haproxy sees it: {"n1": "UP", ...}."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.stats)
            s.sendall(b"show stat\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        rows = list(csv.reader(io.StringIO(out.decode().lstrip("# "))))
        head = rows[0]
        return {r[1]: r[head.index("status")].split()[0] for r in rows[1:]
                if len(r) == len(head) and r[0] == "servers" and r[1] != "BACKEND"}

    def log(self):
        with open(os.path.join(self.dir, "haproxy.log"), errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        harness.forget_at_exit(self)
        shutil.rmtree(self.dir, ignore_errors=True)


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
