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

# the shipped web server configs, and the default paths in them that a test
# (or the demo) replaces with its own, longest first
SHIPPED = os.path.join(SRCDIR, "apache-conf")
INSTALLED_PROGRAM = "/usr/local/libexec/events-batch/events-batch.fcgi"
INSTALLED_DIR = "/usr/local/libexec/events-batch"
INSTALLED_CONFIG = "/etc/events-batch.conf"


def shipped(name):
    """The text of apache-conf/NAME."""
    with open(os.path.join(SHIPPED, name)) as f:
        return f.read()


def fill_in(text, program, config, run):
    """A shipped text with its default paths replaced: the installed program
    (and its folder), the config file, and /run/ by the folder RUN."""
    for old, new in ((INSTALLED_PROGRAM, program),
                     (INSTALLED_DIR, os.path.dirname(program)),
                     (INSTALLED_CONFIG, config),
                     ("/run/", run.rstrip("/") + "/")):
        text = text.replace(old, new)
    return text
