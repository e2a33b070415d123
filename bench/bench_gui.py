"""Wallet window benchmarks: start-up time to the main window and idle memory.

``wallet_start_ms``: median of 5 runs of ``python -m wallet_app.main`` (offscreen Qt, a keyring vault unlocked from a
file-backed test keyring selected with ``PYTHON_KEYRING_BACKEND``) from process start to the main window shown
(the wallet prints ``NETPAY_WALLET_SHOWN`` when ``NETPAY_WALLET_REPORT_SHOWN=1``). ``wallet_idle_rss_mb``: the
resident memory of that process one second after the window is shown, median over the same runs.
"""

from __future__ import annotations

import os
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5
MARKER = b"NETPAY_WALLET_SHOWN"
from tests.support.test_keyring import wallet_process_env  # noqa: E402


def _make_vault(tmp: Path, data_dir: Path) -> None:
    """A keyring-protected vault, created in a subprocess with the same test keyring the runs use."""
    code = (
        "from pathlib import Path; from wallet_app.services import WalletService; "
        f"s = WalletService(Path({str(data_dir)!r})); s.create(None); s.close()"
    )
    subprocess.run([sys.executable, "-c", code], env=wallet_process_env(tmp), check=True, cwd=ROOT, timeout=60)


def _one_run(tmp: Path, data_dir: Path) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wallet_app.main", "--data-dir", str(data_dir), "--callback-port", "0"],
        env=wallet_process_env(tmp),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if os.environ.get("BENCH_GUI_DEBUG") else subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        buffer = b""
        deadline = start + 30
        while MARKER not in buffer:
            if time.perf_counter() > deadline or proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr and proc.poll() is not None else ""
                raise RuntimeError(f"the wallet did not show its window: {err[-2000:]}")
            if sel.select(timeout=0.05):
                buffer += os.read(proc.stdout.fileno(), 4096)
        shown_ms = (time.perf_counter() - start) * 1000
        time.sleep(1.0)  # idle: the first refresh is done
        rss_mb = psutil.Process(proc.pid).memory_info().rss / 2**20
        return shown_ms, rss_mb
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run() -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="netpay-bench-gui-") as name:
        tmp = Path(name)
        (tmp / "run").mkdir(mode=0o700)
        data_dir = tmp / "wallet"
        _make_vault(tmp, data_dir)
        times, rss = [], []
        for _ in range(RUNS):
            shown_ms, rss_mb = _one_run(tmp, data_dir)
            times.append(shown_ms)
            rss.append(rss_mb)
    return {
        "wallet_start_ms": round(statistics.median(times), 1),
        "wallet_idle_rss_mb": round(statistics.median(rss), 1),
    }


if __name__ == "__main__":
    print(run())
