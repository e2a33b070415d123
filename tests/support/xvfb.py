"""A real X server for a test: Xvfb on a free display, plus the X tools to look at what it shows.

:func:`xvfb` starts ``Xvfb`` (``-displayfd`` lets the server pick a free display) and stops it afterwards. Without
Xvfb the test is skipped on a developer's machine but fails under CI (``CI`` set), where ``.ci/run`` must have
installed it (``scripts/install-system-deps.sh``). :func:`window_info` asks the X server itself (``xwininfo``)
about a top-level window; :func:`grab_screen` takes a screenshot of the whole X display through Qt's xcb platform
in a separate process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["WindowInfo", "grab_screen", "window_info", "xvfb"]


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        message = f"{tool} is not installed (scripts/install-system-deps.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def xvfb(width: int = 1440, height: int = 900) -> Iterator[str]:
    """A running Xvfb; yields its DISPLAY (``:N``)."""
    _need("Xvfb")
    _need("xwininfo")
    read, write = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()  # written once the server accepts connections
        assert number.isdigit(), "Xvfb did not start"
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class WindowInfo:
    """What the X server says about a window."""

    x: int
    y: int
    width: int
    height: int
    viewable: bool


def window_info(display: str, name: str) -> WindowInfo | None:
    """The top-level window titled exactly ``name`` (its ``_NET_WM_NAME``), or None; a viewable one if there are
    several (Qt also keeps an unmapped leader window with the application's name)."""
    found: list[WindowInfo] = []
    for wid, title in _windows(display):
        if title != name:
            continue
        out = subprocess.run(
            ["xwininfo", "-display", display, "-id", wid], capture_output=True, text=True, timeout=10
        ).stdout
        if "Map State" not in out:
            continue

        def field(label: str, out: str = out) -> str:
            m = re.search(rf"^\s*{label}:\s*(.+)$", out, re.MULTILINE)
            assert m is not None, out
            return m.group(1).strip()

        found.append(
            WindowInfo(
                int(field("Absolute upper-left X")),
                int(field("Absolute upper-left Y")),
                int(field("Width")),
                int(field("Height")),
                field("Map State") == "IsViewable",
            )
        )
    found.sort(key=lambda w: not w.viewable)
    return found[0] if found else None


def _windows(display: str) -> list[tuple[str, str]]:
    out = subprocess.run(
        ["xwininfo", "-display", display, "-root", "-tree"], capture_output=True, text=True, timeout=10
    ).stdout
    return re.findall(r'^\s*(0x[0-9a-f]+) "([^"]*)"', out, re.MULTILINE)


def window_names(display: str) -> list[str]:
    """The titles of the X server's windows."""
    return [title for _wid, title in _windows(display)]


_GRAB = """
import sys
from PySide6.QtGui import QGuiApplication
app = QGuiApplication(sys.argv[:1])
assert QGuiApplication.platformName() == "xcb", QGuiApplication.platformName()
assert QGuiApplication.primaryScreen().grabWindow(0).save(sys.argv[1], "PNG")
"""


def grab_screen(display: str, path: Path) -> Path:
    """A PNG of the whole X display, taken from the X server (the root window) through Qt's xcb platform."""
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    subprocess.run([sys.executable, "-c", _GRAB, str(path)], env=env, check=True, timeout=60)
    return path
