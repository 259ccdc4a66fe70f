"""Shared parts of the integration tests: a TAP runner for unittest, and a
sandbox that holds a real SQLite file, a config, keys and tokens, and runs the
real program as CGI or with --listen; and EnvelopeChecks, the checks of the
program's answers (SPEC §6) and of its stderr and logs that every test file
shares.  The program as FastCGI behind a real web server is webservers.py's
(Lighttpd, for most suites).

Every path is under a fresh temporary directory; every server listens on
127.0.0.1 only and is stopped by its PID.

The parts live in modules of their own, one concern each (paths, memcheck,
procs, sandbox, envelope, tap); this module gathers them, so that a test
file imports one name.
"""
from paths import *  # noqa: F401,F403
from memcheck import *  # noqa: F401,F403
from procs import *  # noqa: F401,F403
from sandbox import *  # noqa: F401,F403
from envelope import *  # noqa: F401,F403
from tap import *  # noqa: F401,F403
