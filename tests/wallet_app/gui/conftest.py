"""Qt warnings fail every test in this directory (pytest-qt's ``qt_log_level_fail`` marker, added per test)."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent
#: Messages the offscreen platform prints for any top-level window; not about our code.
_IGNORE = ["This plugin does not support propagateSizeHints", "This plugin does not support raise"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(*_IGNORE))
