"""Cluster fixtures for the scale-out tests (issue 15 items 3-6): real
servers from the Debian packages, started in temp dirs on loopback
addresses, stopped by PID.

PgCluster: a PostgreSQL 15 primary and a synchronous streaming standby
(pg_basebackup -R, synchronous_standby_names) on two loopback addresses
with one port, so that psqlODBC's single Port and a libpq multi-host
Servername reach both; stop_primary() stops the primary with
"-m immediate" (SIGQUIT to the postmaster), promote() promotes the standby.
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import servers  # noqa: E402

PG_BIN = servers.PG_BIN


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
