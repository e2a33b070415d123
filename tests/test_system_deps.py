"""scripts/install-system-deps.sh names every system library Qt's xcb platform loads, checked against ldd.

The xcb platform plugin (``libqxcb.so``), its library (``libQt6XcbQpa.so.6``) and its GL integrations are what the
wallet loads on a real X display; a library missing there stops the wallet before it shows a window (Debian 12 has
no ``libxcb-icccm4`` or ``libxcb-keysyms1`` by default). ldd lists every library they load (transitively); each must
be found, and each must come from a package the script installs or from a dependency of one of those (or from an
essential package), so the script alone makes a fresh Debian able to open the wallet's window.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "install-system-deps.sh"


def _qt_dir() -> Path:
    import PySide6

    return Path(PySide6.__file__).resolve().parent / "Qt"


def _xcb_files() -> list[Path]:
    qt = _qt_dir()
    files = [qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6"]
    files += sorted((qt / "plugins" / "xcbglintegrations").glob("*.so"))
    return files


def _table() -> dict[str, str]:
    """The script's soname -> Debian package table for Qt's xcb platform."""
    text = SCRIPT.read_text()
    block = text.split("declare -A qt_xcb=(", 1)[1].split("\n)", 1)[0]
    return dict(re.findall(r"\[([^\]]+)\]=(\S+)", block))


def _ldd(path: Path) -> dict[str, str | None]:
    """soname -> resolved path (None: not found) for every library ``path`` loads, outside PySide6's own."""
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=True).stdout
    found: dict[str, str | None] = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (not found|(\S+))", line)
        if m is None:
            continue
        soname, target = m.group(1), m.group(3)
        if target is not None and str(_qt_dir().parent) in os.path.realpath(target):
            continue  # shipped inside the PySide6 wheel
        found[soname] = target
    return found


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not available (Linux with dpkg only)")


def test_the_script_lists_exactly_the_packages_that_provide_the_xcb_libraries() -> None:
    _require("ldd")
    table = _table()
    libs: dict[str, str | None] = {}
    for f in _xcb_files():
        assert f.exists(), f
        libs.update(_ldd(f))
    missing = sorted(s for s, target in libs.items() if target is None)
    assert not missing, (
        f"Qt's xcb platform cannot load {missing}: packages "
        f"{sorted({table.get(s, '?') for s in missing})} (run scripts/install-system-deps.sh as root)"
    )
    # Every table entry is a library the plugin really loads (no stale or invented entries) ...
    assert set(table) <= set(libs), sorted(set(table) - set(libs))
    # ... and each of the plugin's own direct xcb/X/GL needs is in the table.
    direct = {s for s in libs if re.match(r"lib(xcb|X11|xkbcommon|GL|EGL)[-.]", s)}
    assert direct - {"libGLX.so.0", "libGLdispatch.so.0"} <= set(table), sorted(direct - set(table))


def test_every_library_comes_from_a_listed_package_or_its_dependencies() -> None:
    _require("ldd")
    _require("dpkg-query")
    table = _table()
    script = subprocess.run(["bash", str(SCRIPT), "--list"], capture_output=True, text=True, check=True)
    listed = set(script.stdout.split())
    assert set(table.values()) <= listed
    libs: dict[str, str | None] = {}
    for f in _xcb_files():
        libs.update(_ldd(f))
    # Which installed package provides each library, by dpkg's own file lists.
    owner: dict[str, str] = {}
    assert all(target is not None for target in libs.values()), libs
    out = subprocess.run(["dpkg", "-S", *(f"*/{s}" for s in libs)], capture_output=True, text=True).stdout
    for line in out.splitlines():
        package, _, path = line.partition(": ")
        soname = path.rsplit("/", 1)[-1]
        if soname in libs and "i386" not in package and "/i386-" not in path:
            owner.setdefault(soname, package.split(":", 1)[0])
    assert set(owner) == set(libs), f"no package provides {sorted(set(libs) - set(owner))}"
    for soname, package in table.items():
        assert owner[soname] == package, f"{soname} is in {owner[soname]}, the script says {package}"
    # The packages apt brings in with the listed ones (Depends and Pre-Depends, recursively), plus essential ones.
    status = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Essential}\t${Pre-Depends}, ${Depends}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    deps: dict[str, set[str]] = {}
    essential: set[str] = set()
    for line in status.splitlines():
        name, ess, rest = [*line.split("\t"), "", ""][:3]
        if ess == "yes":
            essential.add(name)
        alternatives = (alt.split("|")[0] for alt in rest.split(","))
        deps[name] = {re.split(r"[\s(:]", a.strip(), maxsplit=1)[0] for a in alternatives if a.strip()}
    reach, todo = set(), list(listed | essential)
    while todo:
        p = todo.pop()
        if p not in reach:
            reach.add(p)
            todo.extend(deps.get(p, ()))
    unlisted = {s: p for s, p in owner.items() if p not in reach}
    assert not unlisted, f"libraries Qt's xcb platform loads from packages the script does not bring in: {unlisted}"
