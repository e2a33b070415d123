"""Root test configuration: loads every ``tests/support/fixtures_*.py`` as a pytest plugin."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest_plugins = sorted(f"tests.support.{p.stem}" for p in (Path(__file__).parent / "support").glob("fixtures_*.py"))
