"""Qt warnings fail every test in this directory (pytest-qt's ``qt_log_level_fail`` marker, added per test).

The cyclic garbage collector runs in the GUI thread only, as in the application (see ``wallet_app.gui.gc_guard``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).parent
#: Messages the offscreen platform prints for any top-level window; not about our code.
_IGNORE = ["This plugin does not support propagateSizeHints", "This plugin does not support raise"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(*_IGNORE))


@pytest.fixture(autouse=True)
def _collect_in_gui_thread(qapp: Any) -> Iterator[None]:
    """Each window test runs with collection in the GUI thread; the tests after it get the interpreter's back."""
    from wallet_app.gui.gc_guard import MainThreadCollector

    collector = MainThreadCollector(qapp)
    yield
    collector.stop()
    collector.deleteLater()
