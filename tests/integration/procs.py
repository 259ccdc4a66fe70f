"""Processes and ports: finding programs, free ports, waiting for a
listener or a condition, whether a process lives, stopping one, and a
last-resort stop at exit for servers a test left running."""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import time

from memcheck import scaled


def which(name):
    return shutil.which(name) or next(
        (p for p in ("/usr/sbin/" + name, "/sbin/" + name) if os.path.exists(p)), None)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_sockets(pid):
    """How many sockets process pid has open (/proc/PID/fd)."""
    fd_dir = "/proc/%d/fd" % pid
    n = 0
    for fd in os.listdir(fd_dir):
        try:
            n += os.readlink(os.path.join(fd_dir, fd)).startswith("socket:")
        except OSError:
            pass
    return n


def tcp_listening(port):
    """Whether something listens on 127.0.0.1:port, found without connecting
    (a probe connection is itself a request attempt for a FastCGI worker)."""
    want = ":%04X" % port
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].endswith(want) and fields[3] == "0A":
                return True
    return False


def wait_listening(port, proc=None, timeout=10.0):
    """Until something listens on 127.0.0.1:port (or proc, if given, has
    exited). Read from /proc/net, else by connecting."""
    if os.path.exists("/proc/net/tcp"):
        wait_for(lambda: tcp_listening(port) or (proc is not None and proc.poll() is not None),
                 timeout=timeout, what="a listener on port %d" % port)
        return
    deadline = time.time() + scaled(timeout)
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on 127.0.0.1:%d" % port)


def pid_alive(pid):
    """Whether pid is a live process (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_process(p, sig=signal.SIGTERM, timeout=30):
    """Stop a Popen by its PID (sig, then SIGKILL after timeout, scaled);
    returns its exit status."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
            return p.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            p.kill()
        return p.wait()
    return p.returncode


_at_exit = []  # (object, method name): what a test run must stop if it did not


def stop_at_exit(obj, method):
    """Have obj.method() called when the test run exits, unless
    forget_at_exit(obj) came first: a last resort for servers a test
    left running."""
    _at_exit.append((obj, method))


def forget_at_exit(obj):
    _at_exit[:] = [(o, m) for o, m in _at_exit if o is not obj]


@atexit.register
def _stop_leftovers():
    for obj, method in list(reversed(_at_exit)):
        getattr(obj, method)()


def wait_for(predicate, timeout=20.0, what="condition", interval=0.02):
    """Poll until predicate() is true (a guard against hanging, not a timing
    assertion; scaled by TIME_SCALE); returns its value."""
    deadline = time.time() + scaled(timeout)
    while True:
        v = predicate()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)
