"""make install / uninstall into a staging DESTDIR, and the man pages."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def make(*args, **kw):
    """make in the build, its output ours alone: not the flags of a make
    that runs this test (plain `make distcheck` passes -w down, whose
    'Entering directory' lines would mix with the values read here)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "-s", "--no-print-directory", "-C", harness.BUILDDIR] +
                          list(args), capture_output=True, text=True, env=env, **kw)


def installed_files(root):
    found = set()
    for d, _, files in os.walk(root):
        for f in files:
            found.add(os.path.relpath(os.path.join(d, f), root))
    return found


class InstallTest(unittest.TestCase):
    def setUp(self):
        self.stage = tempfile.mkdtemp(prefix="eb-stage-")
        self.addCleanup(shutil.rmtree, self.stage, True)
        out = make("-p", "-n", "install")  # read the configured directories
        self.vars = {}
        for line in out.stdout.splitlines():
            for name in ("prefix", "sysconfdir", "cgibindir", "datadir", "docdir", "mandir"):
                if line.startswith(name + " = "):
                    self.vars[name] = line.split(" = ", 1)[1]

    def path(self, var, *rest):
        value = self.vars[var]
        # expand ${prefix}, ${datarootdir}... as make would
        out = make("-f", "-", "print", input="include Makefile\nprint:\n\t@echo %s\n" % value)
        return os.path.join(self.stage + out.stdout.strip(), *rest)

    def install(self):
        p = make("install", "DESTDIR=" + self.stage)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_install_puts_every_part_in_place_and_uninstall_removes_it(self):
        self.install()
        program = self.path("cgibindir", "events-batch.fcgi")
        self.assertTrue(program.endswith("/libexec/events-batch/events-batch.fcgi"), program)
        self.assertTrue(os.access(program, os.X_OK), program)
        version = subprocess.run([harness.runnable(program), "--version"],
                                 capture_output=True, text=True)
        self.assertEqual(version.stdout.strip(), "events-batch 0.1.0")
        for name in ("schema-sqlite.sql", "schema-postgresql.sql", "schema-mariadb.sql"):
            self.assertTrue(os.path.isfile(self.path("datadir", "events-batch", "sql", name)))
        for name in ("events-batch-fcgid.conf", "events-batch-cgi.conf",
                     "lighttpd-events-batch.conf", "nginx-events-batch.conf",
                     "nginx-events-batch-upstream.conf", "events-batch.service"):
            self.assertTrue(os.path.isfile(self.path("docdir", "apache-conf", name)), name)
        conf = self.path("sysconfdir", "events-batch.conf")
        with open(conf) as f, open(os.path.join(harness.SRCDIR, "etc",
                                                "events-batch.conf.sample")) as g:
            self.assertEqual(f.read(), g.read())
        self.assertTrue(os.path.isfile(self.path("mandir", "man8", "events-batch.fcgi.8")))
        self.assertTrue(os.path.isfile(self.path("mandir", "man5", "events-batch.conf.5")))
        # the program's default config is the one in sysconfdir (unstaged)
        run = subprocess.run([harness.runnable(program)], capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin", "REQUEST_METHOD": "PUT"})
        self.assertNotEqual(run.returncode, 0)
        self.assertTrue(run.stderr.startswith(conf[len(self.stage):] + ":"), run.stderr)
        p = make("uninstall", "DESTDIR=" + self.stage)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(installed_files(self.stage), set())

    def test_existing_config_is_kept_on_install_and_uninstall(self):
        conf = self.path("sysconfdir", "events-batch.conf")
        os.makedirs(os.path.dirname(conf))
        with open(conf, "w") as f:
            f.write("# the operator's own\n")
        self.install()
        with open(conf) as f:
            self.assertEqual(f.read(), "# the operator's own\n")
        make("uninstall", "DESTDIR=" + self.stage)
        self.assertEqual(installed_files(self.stage),
                         {os.path.relpath(conf, self.stage)})

    def test_cgibindir_option_moves_the_program(self):
        p = make("install", "DESTDIR=" + self.stage, "cgibindir=/srv/cgi-bin")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.access(os.path.join(self.stage, "srv/cgi-bin/events-batch.fcgi"),
                                  os.X_OK))


class ManPageTest(unittest.TestCase):
    def page(self, name):
        p = make(os.path.join("doc", name))
        self.assertEqual(p.returncode, 0, p.stderr)
        return os.path.join(harness.BUILDDIR, "doc", name)

    def check(self, name, must_mention):
        page = self.page(name)
        lint = subprocess.run(["groff", "-man", "-z", "-ww", page], capture_output=True, text=True)
        self.assertEqual(lint.returncode, 0, lint.stderr)
        self.assertEqual(lint.stderr, "")
        text = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                              env=dict(os.environ, MANPAGER="cat", MANWIDTH="100"))
        self.assertEqual(text.returncode, 0, text.stderr)
        plain = text.stdout.replace("\u2010", "-")
        for word in must_mention:
            self.assertIn(word, plain)
        self.assertNotIn("@sysconfdir@", plain)

    def test_program_page_lints_and_covers_modes_signals_files_exit(self):
        self.check("events-batch.fcgi.8", ["--listen", "SIGTERM", "SIGUSR1", "EXIT STATUS",
                                           "EVENTS_BATCH_CONFIG", "/etc/events-batch.conf"])

    def test_config_page_lints_and_lists_every_key(self):
        keys = ["max_body_bytes", "max_batch_items", "api_key_sha256", "jwt_algorithm",
                "jwt_key_file", "jwt_issuer", "jwt_audience", "jwt_user_claim",
                "jwt_database_claim", "clock_skew_seconds", "[databases]"]
        self.check("events-batch.conf.5", keys)


if __name__ == "__main__":
    harness.main()
