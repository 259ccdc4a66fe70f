"""The stored-rows suite (store_suite.py) against a real PostgreSQL 15 server,
started by the test in a temp dir on a loopback port and stopped afterwards."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from store_suite import StoreTests  # noqa: E402


class PostgresqlStoreTest(StoreTests, unittest.TestCase):
    backend = "postgresql"


if __name__ == "__main__":
    harness.main()
