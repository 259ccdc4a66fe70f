"""A sandbox per test: a real SQLite file, a config, keys and tokens, the
program run as plain CGI, and its answers (Response, parse_cgi), each
recorded for test_openapi.py."""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

from memcheck import BINARY, scaled
from paths import MKTOKEN, SCHEMA
from procs import which
from envelope import JSON_TYPE


API_KEY = "test-api-key-0123456789"
USER = "tester"


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
    if not log_dir or headers.get("content-type") != JSON_TYPE or not body:
        return   # (no body: the answer to a HEAD)
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
        # a database that is down answers 503 after failover_seconds (SPEC
        # §13): 1 s here, unless a test says otherwise
        limits = dict({"failover_seconds": 1}, **(limits or {}))
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
