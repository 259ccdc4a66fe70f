"""The stored-rows suite (store_suite.py) against SQLite (the sandbox's own file; no server)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from store_suite import StoreTests  # noqa: E402


class SqliteStoreTest(StoreTests, unittest.TestCase):
    backend = "sqlite"


if __name__ == "__main__":
    harness.main()
