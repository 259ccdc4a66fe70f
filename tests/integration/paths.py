"""Where the tests find the source and the build: EB_SRCDIR and EB_BUILDDIR
(set by make check), the program, the token signer and the schema."""
import os


HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("EB_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
BUILDDIR = os.environ.get("EB_BUILDDIR") or SRCDIR
# the built program; BINARY is what the tests and the servers' configs run:
# the program itself, or under `make check-valgrind` a wrapper (see below)
PROGRAM = os.path.join(BUILDDIR, "src", "events-batch.fcgi")
MKTOKEN = os.path.join(BUILDDIR, "tools", "mktoken")
SCHEMA = os.path.join(SRCDIR, "sql", "schema-sqlite.sql")
GEN_EVENTS = os.path.join(SRCDIR, "..", "shared", "bench", "gen_events.py")
