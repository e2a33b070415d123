"""The test suite's own PostgreSQL: one private cluster per test session, started from the system binaries on first use.

``NETPAY_TEST_DB=postgresql`` runs the broker and vendor tests on it (``make test`` runs those suites a second time
so); the race tests use it whatever the variable says. Each data directory gets its own schema (its name a hash of
the path), so a server restarted on the same data directory finds its tables again, and tests never share rows.
The cluster runs without fsync (a test never survives a power cut); benchmarks and the demo use a durable one.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import threading
from pathlib import Path

from netpay_web.pgcluster import PgCluster, find_pg_bin

__all__ = ["cluster", "database_url_for", "postgres_available", "postgres_enabled"]

_cluster: PgCluster | None = None
_lock = threading.Lock()


def postgres_enabled() -> bool:
    """Whether this test run keeps the servers' state in PostgreSQL (``NETPAY_TEST_DB=postgresql``)."""
    return os.environ.get("NETPAY_TEST_DB", "sqlite").lower().startswith("postgres")


def postgres_available() -> bool:
    return find_pg_bin() is not None


def cluster() -> PgCluster:
    """The session's cluster, started on first use and stopped (and removed) when the test process exits."""
    global _cluster
    with _lock:
        if _cluster is None:
            _cluster = PgCluster(durable=False).start()
            atexit.register(_cluster.stop)
        return _cluster


def database_url_for(data_dir: Path | str) -> str:
    """A URL whose tables live in a schema of their own for ``data_dir`` (the same schema on every restart)."""
    name = "t_" + hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:20]
    c = cluster()
    import psycopg

    with psycopg.connect(c.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
    return c.url("postgres") + f"&options=-c%20search_path%3D{name}"
