"""Run every benchmark in bench/ and write all figures to bench/results.json.

Each ``bench/bench_*.py`` module exposes ``run() -> dict[str, float | int]``. Figures with a target in TARGETS are
checked; the run exits non-zero when a target is missed, so `make bench` is an honest check.
Usage: ``python bench/run.py [name ...]`` (names like ``chain`` or ``broker`` pick modules).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: figure -> (comparison, limit). "<=" means the figure must be at most the limit.
TARGETS: dict[str, tuple[str, float]] = {
    "chain_create_ratio": ("<=", 1.3),
    "traversal_max_hashes": ("<=", 20),
    "traversal_max_stored": ("<=", 40),
    "verify_10_coins_ratio": ("<=", 1.5),
    "redeem_ratio": ("<=", 1.5),
    "pay_endpoint_ratio": (">=", 0.5),
    "vault_open_ms": ("<=", 20),
    "pay_core_ratio": ("<=", 2.0),
    "handoff_ratio": ("<=", 1.5),
    "wallet_start_ms": ("<=", 1500),
    "wallet_idle_rss_mb": ("<=", 200),
}


def main(argv: list[str]) -> int:
    modules = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    if argv:
        modules = [m for m in modules if m.removeprefix("bench_") in argv]
    results: dict[str, float | int] = {}
    failures: list[str] = []
    started = time.perf_counter()
    for name in modules:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            figures = importlib.import_module(f"bench.{name}").run()
        except Exception:
            traceback.print_exc()
            failures.append(f"{name}: crashed")
            continue
        for key, value in figures.items():
            results[key] = value
            verdict = ""
            if key in TARGETS:
                op, limit = TARGETS[key]
                ok = value <= limit if op == "<=" else value >= limit
                verdict = f"  (target {op} {limit}: {'ok' if ok else 'MISSED'})"
                if not ok:
                    failures.append(f"{key} = {value} (target {op} {limit})")
            print(f"   {key:28} {value}{verdict}", flush=True)
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    results["bench_total_seconds"] = round(time.perf_counter() - started, 1)
    out = ROOT / "bench" / "results.json"
    existing = json.loads(out.read_text()) if argv and out.exists() else {}
    existing.update(results)
    out.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out.relative_to(ROOT)} ({len(existing)} figures, {results['bench_total_seconds']} s)")
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
