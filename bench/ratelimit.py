#!/usr/bin/env python3
"""bench/ratelimit.py - what the rate limit check (SPEC §9) costs a request.
Run it through bench/ratelimit.sh, which builds the program; bench/README.md
says what is measured.

Two lighttpd servers on 127.0.0.1 serve the built program (2 FastCGI
workers each) on a SQLite file of their own: A with no rate limit, B with a
limit too high to refuse anything.  For `PUT []` and for a batch of one
event (an update of an existing row), wrk runs A, B, A, B, ...  and the
table shows per variant the median req/s, the workers' CPU time per request
(/proc/PID/stat), their system calls per request (strace -c on both workers
for a few seconds of wrk) and their instructions per request (callgrind,
from two runs of fixed request counts, so that start-up and exit cancel).

The servers, the program's config, keys and tokens come from the
integration tests' sandbox (tests/integration), wrk runs bench/put.lua.
Each variant lives in a temporary directory of its own (the sandbox's),
removed at the end; everything started is stopped by its PID.
"""
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(TOP, "bench")
os.environ.setdefault("EB_SRCDIR", TOP)
os.environ.pop("EB_VALGRIND", None)  # the program itself, not the tests' memcheck wrapper
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import harness  # noqa: E402
from harness import API_KEY, Sandbox, event, pid_alive, wait_for  # noqa: E402
from webservers import Lighttpd  # noqa: E402


def setting(name, default):
    """BENCH_<name> from the environment, of default's type; else default."""
    v = os.environ.get("BENCH_" + name, "").strip()
    return type(default)(v) if v else default


SECONDS = setting("SECONDS", 10.0)
RUNS = setting("RUNS", 5)
CONNS = setting("CONNECTIONS", 4)
STRACE_SECONDS = setting("STRACE_SECONDS", 3.0)
CALLGRIND = [int(n) for n in setting("CALLGRIND", "200 1200").split()]
# perf's syscall tracepoints (perf_event_paranoid permitting), else strace
PERF = os.environ.get("BENCH_PERF", shutil.which("perf") or "") or None
WORKERS = 2
IDS_PER_CONN = 2000
LIMIT = 1000000  # rate_per_second and rate_burst of B: nothing is refused
VARIANTS = ("A", "B")
SHAPES = ("[]", "1 event")


def say(*a):
    print(*a, file=sys.stderr, flush=True)


class Variant:
    """A sandbox (SQLite file, config, key, token) for one variant, its
    request files for put.lua, and the lighttpd that serves it."""

    def __init__(self, name):
        self.name = name
        self.sb = Sandbox()
        limits = {"threads": 4}
        if name == "B":
            limits.update(rate_per_second=LIMIT, rate_burst=LIMIT,
                          rate_state_dir=os.path.join(self.sb.dir, "rate"))
        self.sb.write_config(limits=limits)
        self.key_file = self.write("api.key", API_KEY)
        self.token_file = self.write("token", self.sb.token(ttl=24 * 3600))
        # every id of the one-event batches exists: each request is an update
        ids = range(1, CONNS * IDS_PER_CONN + 1)
        con = sqlite3.connect(self.sb.db_path)
        con.executemany("INSERT INTO Event (Event_ID, Claim_Audit_Event, Process_Automation_Event,"
                        " Reminder, Entry_Date, Update_Date) VALUES (?, 0, 0, 0, ?, ?)",
                        [(i, "2024-01-01 00:00:00", "2024-01-01 00:00:00") for i in ids])
        con.commit()
        con.close()
        self.patterns = {}
        for shape in SHAPES:
            tag = "empty" if shape == "[]" else "one"
            for k in range(CONNS):
                if shape == "[]":
                    lines = ["[]"]
                else:
                    lines = [json.dumps([event(k * IDS_PER_CONN + i + 1, subject="bench",
                                               priority="normal")])
                             for i in range(IDS_PER_CONN)]
                self.write("%s.t%d" % (tag, k), "\n".join(lines))
            self.patterns[shape] = os.path.join(self.sb.dir, tag + ".t%d")
        self.server = None
        self.program = None  # the built program; a callgrind wrapper later

    def write(self, name, text):
        path = os.path.join(self.sb.dir, name)
        with open(path, "w") as f:
            f.write(text + "\n")
        return path

    def start(self):
        self.server = Lighttpd(self.sb, max_procs=WORKERS, run_user=None, program=self.program)
        wait_for(lambda: len(self.workers()) == WORKERS, what="the workers")
        self.server.request([])  # a first request: the workers are up

    def stop(self):
        """lighttpd, then its workers (under callgrind too), by PID."""
        if self.server is None:
            return
        workers = self.workers()
        self.server.stop()
        for pid in workers:
            if pid_alive(pid):
                os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not any(pid_alive(p) for p in workers), timeout=120,
                 what="the workers to exit")
        self.server = None

    def workers(self):
        """lighttpd's children: the workers, whatever they run under
        (webservers' own list knows the program and memcheck only)."""
        pid = self.server.proc.pid
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def close(self):
        self.stop()
        self.sb.close()


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def wrk(v, shape, seconds):
    """One wrk run against v; (requests, req/s)."""
    p = subprocess.run(
        ["wrk", "-t", str(CONNS), "-c", str(CONNS), "-d", "%gs" % seconds, "--timeout", "60s",
         "-s", os.path.join(BENCH, "put.lua"),
         "http://127.0.0.1:%d%s" % (v.server.port, v.server.prefix), "--",
         v.patterns[shape], "test", v.key_file, v.token_file],
        capture_output=True, text=True, timeout=seconds + 120)
    m = re.search(r"^BENCH (\{.*\})$", p.stdout, re.M)
    if not m:
        raise RuntimeError("wrk printed no result:\n%s%s" % (p.stdout[-2000:], p.stderr[-2000:]))
    w = json.loads(m.group(1))
    errors = sum(w[k] for k in ("err_connect", "err_read", "err_write", "err_timeout"))
    if w["not_207"] or errors:
        raise RuntimeError("%s %s: %d answers not 207 (last %s), %d socket errors"
                           % (v.name, shape, w["not_207"], w["last_bad_status"], errors))
    return w["requests"], w["requests"] / (w["duration_us"] / 1e6)


def measure_rate(v, shape):
    """req/s and the workers' CPU µs per request of one wrk run."""
    pids = v.workers()
    before = cpu_ticks(pids)
    n, rps = wrk(v, shape, SECONDS)
    time.sleep(0.2)  # what was in flight
    ticks = cpu_ticks(pids) - before
    return {"rps": rps, "cpu_us": ticks * 1e6 / os.sysconf("SC_CLK_TCK") / n, "n": n}


STRACE_ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", re.M)
PERF_ROW = re.compile(r"^(\d+),[^,]*,syscalls:sys_enter_(\w+),", re.M)


def measure_syscalls(v, shape):
    """System calls per request of the workers (all their threads), by
    name, over a wrk run: counted by perf's syscall tracepoints, which
    hardly slow a call, else by strace -c (which does, and so makes the
    threads wait for each other more often)."""
    out = os.path.join(v.sb.dir, "syscalls.out")
    pids = [str(p) for p in v.workers()]
    if PERF:
        argv = [PERF, "stat", "-x,", "-o", out, "-e", "syscalls:sys_enter_*", "-p", ",".join(pids)]
        row, seconds = PERF_ROW, SECONDS
    else:
        argv = ["strace", "-c", "-f", "-o", out] + [a for p in pids for a in ("-p", p)]
        row, seconds = STRACE_ROW, STRACE_SECONDS
    tracer = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached
    n, _ = wrk(v, shape, seconds)
    time.sleep(0.2)
    tracer.send_signal(signal.SIGINT)
    tracer.wait(timeout=60)
    with open(out) as f:
        text = f.read()
    return {name: int(c) / n for c, name in row.findall(text) if name != "total" and int(c)}


def callgrind_wrapper(root):
    """A script that runs the program under callgrind, one profile per
    process in root/cg."""
    path = os.path.join(root, "events-batch.fcgi")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s/cg/cg.%%p "
                "%s \"$@\"\n" % (root, harness.PROGRAM))
    os.chmod(path, 0o755)
    return path


def callgrind_run(v, shape, count):
    """Instructions of both workers (and the check's own, inclusive) after
    count requests of shape, the workers started and stopped around them."""
    cg = os.path.join(v.sb.dir, "cg")
    shutil.rmtree(cg, ignore_errors=True)
    os.makedirs(cg)
    v.start()
    body = "[]" if shape == "[]" else None
    c = http.client.HTTPConnection("127.0.0.1", v.server.port, timeout=300)
    headers = {"x-api-key": API_KEY, "Authorization": "Bearer " + open(v.token_file).read().strip(),
               "vbasoftware-database": "test", "Content-Type": "application/json",
               "User-Agent": "events-batch-bench/1"}
    for i in range(count):
        if body is None:
            data = json.dumps([event(i + 1, subject="bench", priority="normal")])
        else:
            data = body
        c.request("PUT", v.server.prefix, body=data, headers=headers)
        r = c.getresponse()
        r.read()
        if r.status != 207:
            raise RuntimeError("callgrind run: answer %d" % r.status)
    c.close()
    v.stop()
    total = check = 0
    for name in os.listdir(cg):
        out = subprocess.run(["callgrind_annotate", "--inclusive=yes", os.path.join(cg, name)],
                             capture_output=True, text=True, check=True).stdout
        m = re.search(r"^\s*([\d,]+) .*PROGRAM TOTALS", out, re.M)
        total += int(m.group(1).replace(",", ""))
        # inclusive; ratelimit_check may only jump to ratelimit_check_at
        check += max([int(c.replace(",", "")) for c in re.findall(
            r"^\s*([\d,]+) .*\bratelimit_check(?:_at)?\b", out, re.M)] or [0])
    return total, check


def measure_instructions(v, shape):
    """Instructions per request: the difference of two callgrind runs of
    fixed counts over the difference of the counts; and the check's."""
    n1, n2 = CALLGRIND
    t1, c1 = callgrind_run(v, shape, n1)
    t2, c2 = callgrind_run(v, shape, n2)
    return {"ir": (t2 - t1) / (n2 - n1), "ir_check": (c2 - c1) / (n2 - n1)}


def fmt(x, digits=0):
    return "{:,.{}f}".format(x, digits)


def main():
    for tool in ("wrk", "strace", "valgrind", "callgrind_annotate", "lighttpd"):
        if harness.which(tool) is None:
            sys.exit("ratelimit.py: %s is not installed" % tool)
    variants = {}
    try:
        for name in VARIANTS:
            variants[name] = Variant(name)
        fs = subprocess.run(["stat", "-f", "-c", "%T", variants["B"].sb.dir],
                            capture_output=True, text=True).stdout.strip()
        rates = {(n, s): [] for n in VARIANTS for s in SHAPES}
        for v in variants.values():
            v.start()
            for shape in SHAPES:
                wrk(v, shape, 2)  # warm up
        for shape in SHAPES:
            for i in range(RUNS):
                for name in VARIANTS:
                    r = measure_rate(variants[name], shape)
                    rates[name, shape].append(r)
                    say("%s %-8s run %d: %8.0f req/s  %6.1f µs CPU/request" %
                        (name, shape, i + 1, r["rps"], r["cpu_us"]))
        calls = {(n, s): measure_syscalls(variants[n], s) for s in SHAPES for n in VARIANTS}
        for v in variants.values():
            v.stop()
            v.program = callgrind_wrapper(v.sb.dir)
        ir = {}
        for shape in SHAPES:
            for name in VARIANTS:
                ir[name, shape] = measure_instructions(variants[name], shape)
                say("%s %-8s callgrind: %s instructions/request" %
                    (name, shape, fmt(ir[name, shape]["ir"])))
        report(rates, calls, ir, fs)
    finally:
        for v in variants.values():
            v.close()


def report(rates, calls, ir, fs):
    print("rate limit check, lighttpd with %d workers x 4 threads, wrk -c%d, %d interleaved runs "
          "of %gs per variant; SQLite; state file on %s" % (WORKERS, CONNS, RUNS, SECONDS, fs))
    print("A: no rate limit; B: rate_per_second = rate_burst = %d; system calls counted by %s\n"
          % (LIMIT, "perf's tracepoints" if PERF else "strace -c"))
    print("| request | variant | req/s (median) | req/s runs | worker CPU µs/request (median) "
          "| syscalls/request | instructions/request | of which ratelimit_check |")
    print("|---|---|---|---|---|---|---|---|")
    for shape in SHAPES:
        for name in VARIANTS:
            rs = rates[name, shape]
            c = calls[name, shape]
            print("| `PUT %s` | %s | %s | %s | %.1f | %.1f | %s | %s |" % (
                "[]" if shape == "[]" else "[event]", name,
                fmt(statistics.median(r["rps"] for r in rs)),
                " ".join(fmt(r["rps"]) for r in rs),
                statistics.median(r["cpu_us"] for r in rs), sum(c.values()),
                fmt(ir[name, shape]["ir"]), fmt(ir[name, shape]["ir_check"])))
    print("\nsystem calls per request that differ by 0.05 or more, B - A:")
    for shape in SHAPES:
        a, b = calls["A", shape], calls["B", shape]
        diff = {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b)}
        print("  %s: %s" % (shape, ", ".join("%s %+.2f" % (k, d) for k, d in
                                             sorted(diff.items(), key=lambda kv: -abs(kv[1]))
                                             if abs(d) >= 0.05) or "none"))


if __name__ == "__main__":
    main()
