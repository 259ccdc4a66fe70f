"""A real lighttpd on 127.0.0.1 that spawns the program through
mod_fastcgi, for the FastCGI suites."""
import http.client
import json
import os
import subprocess

from memcheck import BINARY, scaled
from procs import free_port, wait_listening, which
from sandbox import API_KEY, Response


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
