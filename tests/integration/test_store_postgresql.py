"""The stored-rows suite (store_suite.py) against a real PostgreSQL 15 server,
started by the test in a temp dir on a loopback port and stopped afterwards."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from store_suite import StoreTests  # noqa: E402


FUNCTION = "events_batch_upsert_v2"   # sql/schema-postgresql.sql


class PostgresqlStoreTest(StoreTests, unittest.TestCase):
    backend = "postgresql"

    def server_log(self):
        with open(os.path.join(self.server.dir, self.server.log_name), "rb") as f:
            return f.read().decode("utf-8", errors="replace")

    def test_the_upsert_goes_through_the_schema_function(self):
        """With sql/'s function installed, a connection checks it once (a
        call with no rows) and every bulk upsert is a call of it: the
        server plans the upsert once per connection."""
        user = self.server.user
        self.server.execute("ALTER ROLE %s SET log_statement = 'all'" % user)
        self.addCleanup(self.server.execute, "ALTER ROLE %s RESET log_statement" % user)
        start = len(self.server_log())
        r = self.put([harness.event(1), harness.event(2, entry_User="x"),
                      harness.event(3, subject="three")])
        self.assert_multistatus(r, [(1, 201), (2, 201), (3, 201)])
        r = self.put([harness.event(3, subject="again"), harness.event(4)])
        self.assert_multistatus(r, [(3, 200), (4, 201)])
        self.assertNotIn("no usable function", r.stderr)
        self.assertEqual(self.row(3)["subject"], "again")
        log = self.server_log()[start:]
        # simple queries and the unnamed statements of the extended protocol
        statements = re.findall(r"LOG:  (?:statement|execute <unnamed>): (.*)", log)
        calls = [s for s in statements if FUNCTION + "(" in s]
        # per request: the check (an empty array) and the batch's call
        self.assertEqual(len(calls), 4, "\n".join(statements))
        self.assertEqual(log.count("'[]'"), 2, log)
        self.assertFalse([s for s in statements if "json_to_recordset" in s], statements)
        # each batch is one call that commits by itself: no BEGIN but the
        # connect-time check's, no COMMIT, and the call names its marker
        self.assertEqual(len([s for s in statements if s.startswith("BEGIN")]), 2, statements)
        self.assertFalse([s for s in statements if s.startswith("COMMIT")], statements)
        self.assertEqual(len(re.findall(r"\$4 = '[0-9a-f-]{36}', \$5 = '[0-9a-f-]{36}'", log)), 2,
                         log)
        # nothing prepared under a name (pgbouncer in transaction mode)
        self.assertNotRegex(log, r"LOG:  execute (?!<unnamed>)", log)

    def test_with_the_parameters_in_the_text_the_call_stores_the_same(self):
        """An operator's UseServerSidePrepare=0: psqlODBC quotes the
        parameters into the statement's text (the simple protocol), and the
        same batch stores the same."""
        self.sb.write_config(databases={"test": self.server.odbc + ";UseServerSidePrepare=0"})
        r, _ = self.put_mixed_batch(8)
        self.assert_fast_path(r)

    def test_without_the_function_the_upsert_is_sent_as_a_statement(self):
        """An older schema without the function: the program logs so and
        stores what it stores through the function, still on the fast path:
        the check is the only statement that fails."""
        self.server.execute("DROP FUNCTION %s" % FUNCTION, user=self.server.user)
        self.addCleanup(self.server.execute, self.server.schema_sql(), user=self.server.user)
        r, _ = self.put_mixed_batch(6)
        self.assertIn("no usable function %s (SQLSTATE 42883; see sql/)" % FUNCTION, r.stderr)
        self.assertEqual(re.findall(r"database: (\w+) failed: SQLSTATE (\w+)", r.stderr),
                         [("execute", "42883")], r.stderr)
        self.assertNotIn("item by item", r.stderr)

if __name__ == "__main__":
    harness.main()
