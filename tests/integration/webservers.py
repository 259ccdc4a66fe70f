"""Real web servers started from the SHIPPED configs in apache-conf/: for
test_hosting.py and test_compression.py, and (Lighttpd) for every suite that
runs the program as FastCGI behind a web server.

Each helper reads a shipped file, replaces only its default paths (the
installed program, its folder, /etc/events-batch.conf, the /run/... sockets)
with the built program and paths inside the test's sandbox, and includes it
from a minimal main configuration written next to it: Listen/bind on
127.0.0.1 and a free port, pid file and error log in the sandbox.  The URL
prefix of the shipped file (/api/events-batch) is kept as it is (Lighttpd
can serve another).

  ApacheFcgid    apache2 -DFOREGROUND, event MPM, mod_fcgid  (events-batch-fcgid.conf)
  ApacheCgi      apache2 -DFOREGROUND, event MPM, mod_cgid   (events-batch-cgi.conf)
  ApacheCgiPrefork  the same, prefork MPM and mod_cgi
  Lighttpd       lighttpd -D, mod_fastcgi bin-path           (lighttpd-events-batch.conf)
  NginxListen    nginx + the program as events-batch.service starts it
                 (ExecStart ... --listen SOCKET, as the unit's User)
  NginxSpawnFcgi nginx + spawn-fcgi -n -s SOCKET -- PROGRAM
                 (nginx-events-batch-upstream.conf and nginx-events-batch.conf
                 for both; NginxListenNewConnections without the upstream)

Servers that run as root here get the user a production install gives them
(www-data); the program then runs as that user too, so the sandbox (config,
key file, SQLite file and its folder) is handed to that user (Lighttpd with
run_user=None runs as we do).  Each server has a folder of its own in the
sandbox, so one sandbox may hold several.  Every process is started by us, is
stopped by its PID, and lives under the sandbox.
"""
import grp
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import time

import harness

PREFIX = "/api/events-batch"
MODULES = "/usr/lib/apache2/modules"
RUN_USER = "www-data"
SANITIZER_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")

# the shipped files' default paths
INSTALLED_PROGRAM = harness.INSTALLED_PROGRAM
INSTALLED_CONFIG = harness.INSTALLED_CONFIG


class ServerFailed(RuntimeError):
    pass


wait_for = harness.wait_for


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


shipped = harness.shipped


# --- processes ----------------------------------------------------------------

pid_alive = harness.pid_alive


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descendants(root):
    """PIDs of every live descendant of root."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            pp = _ppid(int(name))
            if pp is not None:
                children.setdefault(pp, []).append(int(name))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def is_program(pid, program=None):
    """Whether pid runs the program under test: its executable, or under
    valgrind (program a harness.wrap wrapper) valgrind's tool running the
    program the wrapper names (the first word of its command line that is
    not an option)."""
    program = program or harness.BINARY
    real = harness.WRAPPED.get(program)
    try:
        if real is None:
            return os.path.samefile("/proc/%d/exe" % pid, program)
        if not os.path.basename(os.readlink("/proc/%d/exe" % pid)).startswith("memcheck-"):
            return False
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().decode("utf-8", "replace").split("\0")
        client = next((a for a in argv[1:] if not a.startswith("-")), None)
        return client is not None and os.path.samefile(client, real)
    except OSError:
        return False


def io_read_bytes(pid):
    """Bytes the process has read with read(2) and friends (/proc/PID/io)."""
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pending_signals(pid):
    """The signals pending (not yet delivered, e.g. blocked) for pid."""
    mask = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("SigPnd:", "ShdPnd:")):
                    mask |= int(line.split()[1], 16)
    except OSError:
        return set()
    return {s for s in signal.Signals if mask & (1 << (int(s) - 1))}


def kill_pids(pids, program=None):
    """Last resort for processes we started indirectly (workers of a server
    that is already gone): SIGKILL each one by PID."""
    for pid in pids:
        if pid_alive(pid) and is_program(pid, program):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def give_to(user, *paths):
    """chown -R paths to user (the account the server runs the program as)."""
    pw = pwd.getpwnam(user)
    for top in paths:
        for dirpath, dirnames, filenames in os.walk(top):
            os.chown(dirpath, pw.pw_uid, pw.pw_gid)
            for n in filenames:
                os.chown(os.path.join(dirpath, n), pw.pw_uid, pw.pw_gid, follow_symlinks=False)


def runnable_by(user, path):
    """Whether user can run path (every folder up to it must be searchable)."""
    runuser = harness.which("runuser")
    if runuser is None:
        return True  # cannot tell; the server's log will say
    out = subprocess.run([runuser, "-u", user, "--", "test", "-x", path], capture_output=True)
    return out.returncode == 0


def program_for(sb, user):
    """The program as user may run it: the built one, or (when a folder on
    its way is closed to user, e.g. a checkout under /root) a copy installed
    in the sandbox, as `make install` would put it in libexec (under
    valgrind: a copy, and a wrapper for it in libexec)."""
    if user is None or runnable_by(user, harness.PROGRAM):
        return harness.BINARY
    d = os.path.join(sb.dir, "libexec", "events-batch")
    name = os.path.basename(harness.PROGRAM)
    path = os.path.join(d, "valgrind" if harness.VALGRIND else "", name)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copy2(harness.PROGRAM, path)
    if harness.VALGRIND:
        return harness.wrap(path, d)
    return path


# --- HTTP -------------------------------------------------------------------------

def good_headers(sb, token=None):
    return {"User-Agent": "eb-tests/1", "x-api-key": harness.API_KEY,
            "Authorization": "Bearer " + (token or sb.token()),
            "vbasoftware-database": "test", "Content-Type": "application/json"}


class BrokenResponse(AssertionError):
    """The server answered with a cut-off response, or not at all."""


def http_request(port, body, headers, method="PUT", path=PREFIX, chunked=False,
                 timeout=300):
    """One real HTTP/1.1 request to 127.0.0.1:port; a chunked request sends
    the body in pieces with Transfer-Encoding: chunked and no Content-Length.
    A response cut off (or none at all) raises BrokenResponse."""
    if body is not None and not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body).encode()
    h = {k: v for k, v in headers.items() if v is not None}
    what = "%s %s (%s body of %d bytes)" % (method, path, "chunked" if chunked else "a",
                                            len(body or b""))
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=harness.scaled(timeout))
    try:
        try:
            if chunked:
                pieces = [body[i:i + 65536] for i in range(0, len(body), 65536)]
                c.request(method, path, body=iter(pieces), headers=h, encode_chunked=True)
            else:
                c.request(method, path, body=body, headers=h)
            r = c.getresponse()
        except (http.client.HTTPException, ConnectionError) as e:
            raise BrokenResponse("%s: no response (%r)" % (what, e)) from e
        try:
            data = r.read()
        except (http.client.HTTPException, ConnectionError) as e:
            partial = getattr(e, "partial", b"")
            raise BrokenResponse("%s: the response %d was cut off after %d bytes of its body "
                                 "(%r): %r" % (what, r.status, len(partial), e, partial[:300])
                                 ) from e
        return harness.Response(r.status, r.getheaders(), data)
    finally:
        c.close()


# --- the servers ---------------------------------------------------------------------

class WebServer:
    """What every server shares: a folder in the sandbox, a port, the server
    process, the shipped file with its paths filled in, requests, logs."""

    name = "server"
    shipped_name = None
    run_user = None          # the user the program runs as (None: as we are)
    prefix = PREFIX          # the URL of a request() that names no path

    def __init__(self, sb, name=None, program=None):
        """A folder of the server's own in sb: sb.dir/NAME (the class's name
        by default), NAME-2 and so on when a server of that name came
        first.  PROGRAM, when given, is what the server runs instead of the
        built program (as we are: a profiler's wrapper, for bench/)."""
        self.sb = sb
        base = os.path.join(sb.dir, name or self.name)
        self.dir, n = base, 1
        while os.path.exists(self.dir):
            n += 1
            self.dir = "%s-%d" % (base, n)
        self.name = os.path.basename(self.dir)
        self.run = os.path.join(self.dir, "run")      # stands for /run
        os.makedirs(self.run)
        os.makedirs(os.path.join(self.dir, "tmp"))
        self.port = harness.free_port()
        self.proc = None
        self.seen_workers = set()
        harness.stop_at_exit(self, "stop")
        self.stderr_path = os.path.join(self.dir, "server-stderr.log")
        if program is not None:
            self.run_user = None
            self.program = program
        elif self.run_user is not None and os.geteuid() == 0:
            self.program = program_for(sb, self.run_user)
            give_to(self.run_user, sb.dir)
        else:
            self.run_user = None
            self.program = harness.BINARY

    # paths ---------------------------------------------------------------

    def fill_in(self, text):
        """The shipped text with its default paths replaced (the URL stays)."""
        return harness.fill_in(text, self.program, self.sb.conf_path, self.run)

    def install_shipped(self, target_name=None):
        """Write the shipped file, paths filled in, into the server's folder."""
        text = self.fill_in(shipped(self.shipped_name))
        path = os.path.join(self.dir, target_name or self.shipped_name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def server_env(self):
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               "TMPDIR": os.path.join(self.dir, "tmp"), "LANG": "C"}
        for k in SANITIZER_ENV + ("ODBCSYSINI", "ODBCINI"):
            if k in os.environ:
                env[k] = os.environ[k]
        return env

    def start_server(self, argv, env=None):
        with open(self.stderr_path, "ab") as err:
            # a session of its own: Apache's prefork MPM signals its whole
            # process group when it stops
            self.proc = self.sb.start(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                      env=env or self.server_env(), start_new_session=True)
        try:
            wait_for(lambda: harness.tcp_listening(self.port) or self.proc.poll() is not None,
                     what="%s to listen on port %d" % (self.name, self.port))
        except AssertionError:
            raise ServerFailed("%s did not listen:\n%s" % (self.name, self.log()))
        if self.proc.poll() is not None:
            raise ServerFailed("%s exited with %s at start-up:\n%s"
                               % (self.name, self.proc.returncode, self.log()))

    # requests ------------------------------------------------------------

    def request(self, body, headers=None, token=None, method="PUT", path=None,
                chunked=False, timeout=300):
        """One HTTP request to the server (http_request): the headers of a
        good request (good_headers), HEADERS over them (None drops one);
        PATH is the server's prefix unless given."""
        h = good_headers(self.sb, token)
        h.update(headers or {})
        try:
            return http_request(self.port, body, h, method=method, path=path or self.prefix,
                                chunked=chunked, timeout=timeout)
        except BrokenResponse as e:
            time.sleep(0.2)  # let the server finish writing its error log
            tail = "\n".join(self.log().splitlines()[-6:])
            raise BrokenResponse("%s\n%s log, last lines:\n%s" % (e, self.name, tail)) from None

    # processes -------------------------------------------------------------

    def server_pids(self):
        # a server that exited is reaped: its PID may be another's by now
        return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []

    def workers(self):
        """Live processes of the program started by this server."""
        found = set()
        for root in self.server_pids():
            if is_program(root, self.program):
                found.add(root)
            for pid in descendants(root):
                if is_program(pid, self.program):
                    found.add(pid)
        self.seen_workers |= found
        return sorted(found)

    # logs ------------------------------------------------------------------

    def log_files(self):
        return [self.stderr_path]

    def log(self):
        return "".join(read_text(p) for p in self.log_files())

    def program_crash_log(self):
        """The log, less what reports on the server's own processes: the
        text the tests search for the program's sanitizer and crash
        reports."""
        return self.log()

    # stopping --------------------------------------------------------------

    def stop(self):
        """Stop the server (by PID) and whatever it started."""
        harness.forget_at_exit(self)
        self.workers()
        if self.proc is not None:
            harness.stop_process(self.proc)
        try:
            wait_for(lambda: not any(pid_alive(p) for p in self.seen_workers), timeout=15,
                     what="the workers to exit")
        except AssertionError:
            kill_pids(self.seen_workers, self.program)


class Apache(WebServer):
    """apache2 -f MAIN -DFOREGROUND from a minimal main config that includes
    the shipped file."""

    run_user = RUN_USER
    mpm = "event"
    modules = ()
    extra = ""
    loglevel = "warn"

    def __init__(self, sb):
        super().__init__(sb)
        self.errorlog = os.path.join(self.dir, "error.log")
        self.pidfile = os.path.join(self.dir, "apache2.pid")
        self.docroot = os.path.join(self.dir, "htdocs")
        os.makedirs(self.docroot)
        include = self.install_shipped()
        user = self.run_user or pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
        lines = ["ServerRoot %s" % self.dir,
                 "ServerName 127.0.0.1",
                 "Listen 127.0.0.1:%d" % self.port,
                 "PidFile %s" % self.pidfile,
                 "DefaultRuntimeDir %s" % self.run,
                 "ErrorLog %s" % self.errorlog,
                 "LogLevel %s" % self.loglevel,
                 "User %s" % user,
                 "Group %s" % group,
                 "DocumentRoot %s" % self.docroot,
                 "TypesConfig /etc/mime.types"]
        if self.mpm == "event":
            lines += ["StartServers 1", "ServerLimit 2", "ThreadsPerChild 16",
                      "MaxRequestWorkers 32", "MinSpareThreads 4", "MaxSpareThreads 32"]
        else:
            lines += ["StartServers 2", "MinSpareServers 2", "MaxSpareServers 8",
                      "MaxRequestWorkers 16"]
        for mod in ("mpm_" + self.mpm, "authz_core", "alias", "mime", "env") + tuple(self.modules):
            lines.append("LoadModule %s_module %s/mod_%s.so" % (mod, MODULES, mod))
        lines.append(self.extra)
        lines.append("Include %s" % include)
        self.main_conf = os.path.join(self.dir, "apache2.conf")
        with open(self.main_conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.apache2 = harness.which("apache2")
        t = subprocess.run([self.apache2, "-t", "-f", self.main_conf], capture_output=True,
                           text=True, env=self.server_env())
        self.syntax = (t.returncode, t.stdout + t.stderr)
        if t.returncode != 0:
            raise ServerFailed("apache2 -t refuses the config:\n" + self.syntax[1])
        self.start_server([self.apache2, "-f", self.main_conf, "-DFOREGROUND"])

    def log_files(self):
        return [self.errorlog, self.stderr_path]

    def program_crash_log(self):
        # AH00052 is Apache's parent on one of its own children (an MPM
        # process); the program is never one (mod_fcgid's process manager or
        # the CGI daemon starts it). An httpd child that segfaults while
        # Apache stops right after a graceful restart was seen in CI.
        return "".join(line for line in self.log().splitlines(True)
                       if "AH00052: child pid" not in line)

    def graceful_stop(self):
        """apachectl graceful-stop: apache2 -k graceful-stop (SIGWINCH to the
        parent): children finish their requests, then the server exits."""
        subprocess.run([self.apache2, "-f", self.main_conf, "-k", "graceful-stop"],
                       check=True, capture_output=True, env=self.server_env())


class ApacheFcgid(Apache):
    name = "apache-fcgid"
    shipped_name = "events-batch-fcgid.conf"
    modules = ("fcgid",)
    # mod_fcgid logs each worker's exit status at info
    loglevel = "warn fcgid:info"

    @property
    def extra(self):
        # where mod_fcgid keeps its sockets and process table (Debian puts
        # them under /var/lib/apache2/fcgid); the sanitizer options for an
        # ASan build of the program (mod_fcgid passes workers no other
        # environment than FcgidInitialEnv)
        out = ["FcgidIPCDir %s/fcgid" % self.run,
               "FcgidProcessTableFile %s/fcgid_shm" % self.run]
        for k in SANITIZER_ENV:
            if k in os.environ:
                out.append('FcgidInitialEnv %s "%s"' % (k, os.environ[k]))
        return "\n".join(out)


class ApacheCgi(Apache):
    name = "apache-cgi"
    shipped_name = "events-batch-cgi.conf"
    modules = ("cgid",)

    @property
    def extra(self):
        out = ["ScriptSock %s/cgisock" % self.run]
        for k in SANITIZER_ENV:
            if k in os.environ:
                out.append("PassEnv %s" % k)
        return "\n".join(out)


class ApacheCgiPrefork(ApacheCgi):
    """The same shipped file under the prefork MPM with mod_cgi (the other
    way the file's header names): the program's stdin and stdout are pipes,
    where mod_cgid gives it one socket."""

    name = "apache-cgi-prefork"
    mpm = "prefork"
    modules = ("cgi",)

    @property
    def extra(self):
        return "\n".join("PassEnv %s" % k for k in SANITIZER_ENV if k in os.environ)


class Lighttpd(WebServer):
    """lighttpd -D from a minimal main config that includes the shipped
    fragment (as conf-enabled/15-events-batch.conf is on Debian): lighttpd
    spawns the workers through mod_fastcgi (listen socket on fd 0), with the
    environment server_env() gives lighttpd (the sanitizer options), which
    mod_fastcgi passes on.

    As shipped by default, and as root lighttpd drops to www-data as
    Debian's lighttpd.conf makes it (test_hosting.py).  The FastCGI suites
    set max_procs (the fragment's max-procs), maybe prefix (its URL), and
    run_user=None: lighttpd and the workers run as we do, on the sandbox as
    the test made it.  name: the server's folder in the sandbox, for two
    servers in one."""

    name = "lighttpd"
    shipped_name = "lighttpd-events-batch.conf"

    def __init__(self, sb, max_procs=None, prefix=PREFIX, run_user=RUN_USER, name=None,
                 program=None):
        self.run_user = run_user
        self.prefix = prefix
        super().__init__(sb, name, program)
        self.errorlog = os.path.join(self.dir, "error.log")
        docroot = os.path.join(self.dir, "htdocs")
        os.makedirs(docroot)
        # Debian's lighttpd package makes /run/lighttpd, owned by www-data
        os.makedirs(os.path.join(self.run, "lighttpd"))
        self.main_conf = self.write_conf(docroot, max_procs)
        if self.run_user is not None:
            give_to(self.run_user, self.dir)
        lt = harness.which("lighttpd")
        t = subprocess.run([lt, "-tt", "-f", self.main_conf], capture_output=True, text=True,
                           env=self.server_env())
        self.syntax = (t.returncode, t.stdout + t.stderr)
        if t.returncode != 0:
            raise ServerFailed("lighttpd -tt refuses the config:\n" + self.syntax[1])
        self.start_server([lt, "-D", "-f", self.main_conf])

    def write_conf(self, docroot, max_procs):
        """Write 15-events-batch.conf (the shipped fragment: its paths filled
        in, the URL self.prefix, and MAX_PROCS for its max-procs unless None)
        and lighttpd.conf, which includes it, into the server's folder;
        returns the path of lighttpd.conf."""
        text = self.fill_in(shipped(self.shipped_name))
        text = text.replace('"%s" =>' % PREFIX, '"%s" =>' % self.prefix)
        if max_procs is not None:
            text = re.sub(r'("max-procs"\s*=>\s*)\d+', r"\g<1>%d" % max_procs, text)
        include = os.path.join(self.dir, "15-events-batch.conf")
        with open(include, "w") as f:
            f.write(text)
        lines = ['server.modules = ( )',
                 'server.document-root = "%s"' % docroot,
                 'server.bind = "127.0.0.1"',
                 'server.port = %d' % self.port,
                 'server.pid-file = "%s/lighttpd.pid"' % self.run,
                 'server.errorlog = "%s"' % self.errorlog]
        if self.run_user is not None:
            group = grp.getgrgid(pwd.getpwnam(self.run_user).pw_gid).gr_name
            lines += ['server.username = "%s"' % self.run_user,
                      'server.groupname = "%s"' % group]
        lines.append('include "%s"' % include)
        main = os.path.join(self.dir, "lighttpd.conf")
        with open(main, "w") as f:
            f.write("\n".join(lines) + "\n")
        return main

    def log_files(self):
        """lighttpd's error log (with the workers' request log lines, sent
        as FastCGI stderr), then the stderr of lighttpd and the workers."""
        return [self.errorlog, self.stderr_path]


class Nginx(WebServer):
    """nginx (daemon off) with the shipped location block inside a server
    block, and a FastCGI process of ours behind it on a unix socket."""

    shipped_name = "nginx-events-batch.conf"
    upstream_name = "nginx-events-batch-upstream.conf"
    run_user = RUN_USER
    keep_conn = True

    def __init__(self, sb):
        super().__init__(sb)
        self.errorlog = os.path.join(self.dir, "error.log")
        self.fcgi_log = os.path.join(self.dir, "program.log")
        self.fcgi = None
        self.socket = None
        block = self.fill_in(shipped(self.shipped_name))
        upstream = self.fill_in(shipped(self.upstream_name))
        m = re.search(r"(?m)^\s*server\s+unix:([^;\s]+)\s*;", upstream)
        if m is None:
            raise ServerFailed("no server unix:... in " + self.upstream_name)
        self.socket = m.group(1)
        if not self.keep_conn:
            # as a site without the upstream would have it: a new FastCGI
            # connection per request
            block = re.sub(r"(?m)^\s*fastcgi_keep_conn on;\n", "", block)
            block = block.replace("fastcgi_pass events_batch;",
                                  "fastcgi_pass unix:%s;" % self.socket)
            upstream = ""
        # nginx finds `include fastcgi_params` next to its main config
        shutil.copy("/etc/nginx/fastcgi_params", os.path.join(self.dir, "fastcgi_params"))
        tmp = os.path.join(self.dir, "nginx-tmp")
        os.makedirs(tmp)
        user = self.run_user or pwd.getpwuid(os.geteuid()).pw_name
        conf = """daemon off;
master_process on;
worker_processes 1;
%(user)s
pid %(run)s/nginx.pid;
error_log %(errorlog)s info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %(tmp)s/body;
    fastcgi_temp_path %(tmp)s/fastcgi;
    proxy_temp_path %(tmp)s/proxy;
    uwsgi_temp_path %(tmp)s/uwsgi;
    scgi_temp_path %(tmp)s/scgi;
    %(upstream)s
    server {
        listen 127.0.0.1:%(port)d;
        server_name localhost;
%(block)s
    }
}
""" % {"user": "user %s;" % user if os.geteuid() == 0 else "", "run": self.run,
            "errorlog": self.errorlog, "tmp": tmp, "port": self.port, "upstream": upstream,
            "block": "\n".join("        " + l for l in block.splitlines())}
        self.main_conf = os.path.join(self.dir, "nginx.conf")
        with open(self.main_conf, "w") as f:
            f.write(conf)
        self.nginx = harness.which("nginx")
        argv = [self.nginx, "-c", self.main_conf, "-e", self.errorlog]
        t = subprocess.run(argv + ["-t"], capture_output=True, text=True, env=self.server_env())
        self.syntax = (t.returncode, t.stdout + t.stderr)
        if t.returncode != 0:
            raise ServerFailed("nginx -t refuses the config:\n" + self.syntax[1])
        self.start_fcgi()
        self.start_server(argv)

    def start_fcgi(self):
        raise NotImplementedError

    def _wait_socket(self):
        try:
            wait_for(lambda: os.path.exists(self.socket) or self.fcgi.poll() is not None,
                     what="the socket " + self.socket)
        except AssertionError:
            raise ServerFailed("no socket %s:\n%s" % (self.socket, read_text(self.fcgi_log)))
        if self.fcgi.poll() is not None:
            raise ServerFailed("the FastCGI process exited with %s:\n%s"
                               % (self.fcgi.returncode, read_text(self.fcgi_log)))

    def workers(self):
        """The FastCGI process we started (with spawn-fcgi -n: the program
        itself, exec'd)."""
        live = [self.fcgi.pid] if self.fcgi is not None and self.fcgi.poll() is None else []
        self.seen_workers |= set(live)
        return live

    def log_files(self):
        return [self.errorlog, self.stderr_path, self.fcgi_log]

    def program_log(self):
        # the program sends its request log lines as FastCGI stderr, which
        # nginx writes to its error log ("FastCGI sent in stderr")
        return read_text(self.errorlog)

    def stop(self):
        harness.forget_at_exit(self)
        if self.proc is not None:
            harness.stop_process(self.proc)
        if self.fcgi is not None:
            harness.stop_process(self.fcgi)


def parse_unit(text):
    """The [Service] settings of a systemd unit, as {key: [values]}."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == "Service" and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


class NginxListen(Nginx):
    """nginx + the program started as events-batch.service starts it: the
    unit's ExecStart (paths filled in), Environment, User/Group and its
    RuntimeDirectory; stopped with the unit's KillSignal."""

    name = "nginx-listen"

    def start_fcgi(self):
        unit = parse_unit(self.fill_in(shipped("events-batch.service")))
        self.unit = unit
        argv = unit["ExecStart"][0].split()
        env = self.server_env()
        for assignment in unit.get("Environment", []):
            k, v = assignment.strip('"').split("=", 1)
            env[k] = v
        user = unit.get("User", [None])[0] if os.geteuid() == 0 else None
        group = unit.get("Group", [None])[0] if os.geteuid() == 0 else None
        for d in unit.get("RuntimeDirectory", []):
            path = os.path.join(self.run, d)
            os.makedirs(path, exist_ok=True)
            if user:
                give_to(user, path)
        self.kill_signal = signal.Signals[unit.get("KillSignal", ["SIGTERM"])[0]]
        with open(self.fcgi_log, "ab") as log:
            self.fcgi = self.sb.start(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                      env=env, user=user, group=group,
                                      start_new_session=True)
        self._wait_socket()


class NginxListenNewConnections(NginxListen):
    """NginxListen without the shipped upstream: fastcgi_pass to the socket
    itself, a new connection per request."""

    name = "nginx-listen-new"
    keep_conn = False


class NginxSpawnFcgi(Nginx):
    """nginx + spawn-fcgi -n -s SOCKET -- PROGRAM (spawn-fcgi makes the
    socket, then execs the program with it on fd 0)."""

    name = "nginx-spawn-fcgi"

    def start_fcgi(self):
        os.makedirs(os.path.dirname(self.socket), exist_ok=True)
        argv = [harness.which("spawn-fcgi"), "-n", "-s", self.socket]
        if self.run_user is not None:
            argv += ["-u", self.run_user, "-g", self.run_user,
                     "-U", self.run_user, "-G", self.run_user]
        argv += ["--", self.program]
        env = self.server_env()
        env["EVENTS_BATCH_CONFIG"] = self.sb.conf_path
        with open(self.fcgi_log, "ab") as log:
            self.fcgi = self.sb.start(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                      env=env, start_new_session=True)
        self._wait_socket()


def systemd_verify(sb):
    """systemd-analyze verify on the shipped unit with its paths filled in
    (verify insists that ExecStart names an existing program); returns
    (returncode, output) or None without systemd-analyze."""
    exe = harness.which("systemd-analyze")
    if exe is None:
        return None
    d = os.path.join(sb.dir, "systemd")
    os.makedirs(d, exist_ok=True)
    text = shipped("events-batch.service")
    text = text.replace(INSTALLED_PROGRAM, harness.BINARY).replace(
        INSTALLED_CONFIG, sb.conf_path)
    path = os.path.join(d, "events-batch.service")
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([exe, "verify", path], capture_output=True, text=True,
                       env=dict(os.environ, SYSTEMD_LOG_LEVEL="notice"))
    return p.returncode, p.stdout + p.stderr


def missing(*names):
    """Which of these programs are not installed, as a skip reason, or None."""
    gone = [n for n in names if harness.which(n) is None]
    return ", ".join(gone) + " not installed" if gone else None


class SharedServer:
    """One web server per test class, from its shipped config, serving every
    test of the class (mixed into a TestCase that names server_class and
    the programs it needs); a missing program skips each test."""

    server_class = None
    needs = ()

    @classmethod
    def setUpClass(cls):
        # a missing server skips each test (one TAP line per test, as planned)
        cls.why_skip = missing(*cls.needs)
        cls.server = None
        if cls.why_skip:
            return
        cls.sb = harness.Sandbox()
        cls.token = cls.sb.token()
        try:
            cls.server = cls.server_class(cls.sb)
        except BaseException:
            cls.sb.close()
            raise
        # the server and its workers serve every test of the class
        cls.long_lived = {p.pid for p in cls.sb.procs}
        harness.LONG_LIVED.update(cls.long_lived)

    @classmethod
    def tearDownClass(cls):
        if cls.server is None:
            return
        harness.LONG_LIVED.difference_update(cls.long_lived)
        try:
            cls.server.stop()
            text = cls.server.log()
        finally:
            cls.sb.close()
        if harness.sanitizer_marks(text):
            raise AssertionError("sanitizer report in the logs:\n" + text[-6000:])
        # under valgrind: what the workers reported on their way out (the
        # leaks), here rather than in the next class's first test
        found = harness.new_valgrind_errors()
        if found:
            raise AssertionError(harness.valgrind_report(found)[-12000:])

    def setUp(self):
        if self.why_skip:
            self.skipTest(self.why_skip)

    def tearDown(self):
        self.assert_no_sanitizer(self.server.program_crash_log(), "sanitizer report in the logs",
                                 tail=6000)
