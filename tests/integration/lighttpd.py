"""The one lighttpd launcher of the tests: the shipped fragment
apache-conf/lighttpd-events-batch.conf, its paths filled in, included from a
small generated top-level config (127.0.0.1 and a free port, document root,
pid file, error log).  Lighttpd, for the FastCGI suites, and
webservers.LighttpdServer, for test_hosting.py, both start from it."""
import http.client
import json
import os
import re
import subprocess

from memcheck import BINARY, scaled
from paths import fill_in, shipped
from procs import free_port, wait_listening, which
from sandbox import API_KEY, Response

FRAGMENT = "lighttpd-events-batch.conf"
FRAGMENT_PREFIX = "/api/events-batch"


def lighttpd_conf(folder, port, program, config, run, docroot, errorlog=None,
                  max_procs=None, prefix=None, user=None, group=None, extra=()):
    """Write FOLDER/15-events-batch.conf (the shipped fragment: PROGRAM,
    CONFIG, RUN for /run/, and if given PREFIX for its URL and MAX_PROCS for
    its max-procs) and FOLDER/lighttpd.conf, which includes it and then adds
    the lines EXTRA; return the path of lighttpd.conf."""
    text = fill_in(shipped(FRAGMENT), program, config, run)
    if prefix is not None:
        text = text.replace('"%s" =>' % FRAGMENT_PREFIX, '"%s" =>' % prefix)
    if max_procs is not None:
        text = re.sub(r'("max-procs"\s*=>\s*)\d+', r"\g<1>%d" % max_procs, text)
    include = os.path.join(folder, "15-events-batch.conf")
    with open(include, "w") as f:
        f.write(text)
    lines = ['server.modules = ( )',
             'server.document-root = "%s"' % docroot,
             'server.bind = "127.0.0.1"',
             'server.port = %d' % port,
             'server.pid-file = "%s/lighttpd.pid"' % run]
    if errorlog is not None:
        lines.append('server.errorlog = "%s"' % errorlog)
    if user is not None:
        lines += ['server.username = "%s"' % user, 'server.groupname = "%s"' % group]
    lines.append('include "%s"' % include)
    lines += list(extra)
    main = os.path.join(folder, "lighttpd.conf")
    with open(main, "w") as f:
        f.write("\n".join(lines) + "\n")
    return main


class Lighttpd:
    """A real lighttpd on 127.0.0.1 spawning the program through mod_fastcgi
    (listen socket on fd 0) from the shipped fragment, as the README's demo
    does.  The sanitizer options reach the workers through lighttpd's
    environment, which mod_fastcgi passes on."""

    def __init__(self, sandbox, max_procs=2, prefix="/api/events-batch"):
        self.sb = sandbox
        self.port = free_port()
        self.errorlog = os.path.join(sandbox.dir, "lighttpd-error.log")
        docroot = os.path.join(sandbox.dir, "htdocs")
        run = os.path.join(sandbox.dir, "run")
        os.makedirs(docroot, exist_ok=True)
        os.makedirs(os.path.join(run, "lighttpd"), exist_ok=True)
        conf = lighttpd_conf(sandbox.dir, self.port, BINARY, sandbox.conf_path, run, docroot,
                             errorlog=self.errorlog, max_procs=max_procs, prefix=prefix)
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
