"""`make tour` on PostgreSQL: ``netpay-demo --tour --postgres`` starts a cluster of its own under the demo directory,
runs the broker and both shops on it, and every figure of the tour agrees as it does on SQLite."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.netpay_demo.test_demo import _argv, _ports
from tests.support.postgres import postgres_available
from tests.support.test_keyring import wallet_process_env


@pytest.mark.slow
@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not installed")
def test_the_tour_passes_on_postgres(tmp_path: Path) -> None:
    out = subprocess.run(_argv(tmp_path / "demo", _ports(), "--tour", "--postgres"), capture_output=True, text=True,
                         env=wallet_process_env(tmp_path), timeout=300)  # fmt: skip
    print(out.stdout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "postgres   " in out.stdout and "PostgreSQL" in out.stdout
    assert "custody moved: daily-planet released the chain, paper-lantern-cards holds it now" in out.stdout
    assert "0 failed" in out.stdout
    assert "tour passed: every figure agrees" in out.stdout
    assert not (tmp_path / "demo" / "broker" / "broker.sqlite3").exists()  # the state really was in PostgreSQL
