"""Run every benchmark in bench/ and write all figures to bench/results.json.

Each ``bench/bench_*.py`` module exposes ``run() -> dict[str, float | int]``, and runs in a fresh Python process
of its own, so no benchmark measures what an earlier one left behind (imported servers, a grown heap). Figures with
a target in TARGETS are checked; the run exits non-zero when a target is missed, so `make bench` is an honest check.
Usage: ``python bench/run.py [name ...]`` (names like ``chain`` or ``broker`` pick modules).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: figure -> (comparison, limit) or (comparison, other figure, margin). "<=" means the figure must be at most the
#: limit; a limit read against another figure of the same module is that figure plus the margin (``handoff_ratio``
#: at most ``handoff_floor_ratio`` + 0.35: the wallet's own work above the least any wallet could do on that path).
Target = tuple[str, float] | tuple[str, str, float]
TARGETS: dict[str, Target] = {
    "chain_create_ratio": ("<=", 1.3),
    "traversal_max_hashes": ("<=", 20),
    "traversal_max_stored": ("<=", 40),
    "verify_10_coins_ratio": ("<=", 1.5),
    "redeem_ratio": ("<=", 1.5),
    "pay_endpoint_ratio": (">=", 0.5),
    "vault_open_ms": ("<=", 20),
    "pay_core_ratio": ("<=", 2.1),
    "handoff_ratio": ("<=", "handoff_floor_ratio", 0.35),
    "paid_click_ratio": ("<=", 1.5),
    "api_call_ratio": ("<=", 2.0),
    "wallet_start_ms": ("<=", 1500),
    "wallet_idle_rss_mb": ("<=", 200),
    "peer_download_ratio": (">=", 0.8),
    "metered_unit_ratio": ("<=", 1.2),
}


#: What a module's process prints before its figures (anything it printed itself comes first).
_MARK = "\n@@figures@@ "


def _run_alone(name: str) -> dict[str, float | int] | None:
    """Run one module in a fresh Python process; its figures, or None (its error shown) if it crashed."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--one", name], cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0 or _MARK not in proc.stdout:
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        return None
    said, data = proc.stdout.rsplit(_MARK, 1)
    if said.strip():
        print(said.rstrip(), flush=True)
    figures: dict[str, float | int] = json.loads(data)
    return figures


def _one(name: str) -> int:
    """In the module's own process: run it and print its figures after the mark."""
    figures = importlib.import_module(f"bench.{name}").run()
    print(_MARK + json.dumps(figures), flush=True)
    return 0


def _limit(target: Target, figures: dict[str, float | int]) -> tuple[str, float, str]:
    """The comparison, the limit in this run, and how to say it (``1.5``, or ``1.98 (handoff_floor_ratio + 0.35)``)."""
    if len(target) == 2:
        return target[0], target[1], str(target[1])
    op, other, margin = target
    if other not in figures:
        raise RuntimeError(f"the target reads {other}, which the same module did not report")
    limit = round(float(figures[other]) + margin, 3)
    return op, limit, f"{limit} ({other} + {margin})"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        return _one(argv[1])
    modules = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    if argv:
        modules = [m for m in modules if m.removeprefix("bench_") in argv]
    results: dict[str, float | int] = {}
    failures: list[str] = []
    started = time.perf_counter()
    for name in modules:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        figures = _run_alone(name)
        if figures is None:
            failures.append(f"{name}: crashed")
            continue
        for key, value in figures.items():
            results[key] = value
            verdict = ""
            if key in TARGETS:
                op, limit, said = _limit(TARGETS[key], figures)
                ok = value <= limit if op == "<=" else value >= limit
                verdict = f"  (target {op} {said}: {'ok' if ok else 'MISSED'})"
                if not ok:
                    failures.append(f"{key} = {value} (target {op} {said})")
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
