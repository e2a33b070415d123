"""The wallet on a real X server (Xvfb) with Qt's xcb platform, as on a desktop: not the offscreen platform.

The X server itself says the window is mapped and viewable, and a screenshot of the X display shows it. The
process loads the same xcb plugin a desktop user's wallet loads, so a system library missing for it fails here
(``scripts/install-system-deps.sh`` installs them; ``tests/test_system_deps.py`` checks that list).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtGui import QColor, QImage

from tests.support.test_keyring import wallet_process_env
from tests.support.xvfb import grab_screen, window_info, window_names, xvfb

ROOT = Path(__file__).resolve().parents[3]
SHOTS = Path(tempfile.gettempdir()) / "netpay-screenshots"


def _create_vault(env: dict[str, str], data_dir: Path, passphrase: str | None) -> None:
    code = (
        "import sys; from pathlib import Path; from wallet_app.services import WalletService; "
        "s = WalletService(Path(sys.argv[1])); s.create(sys.argv[2] or None); s.close()"
    )
    subprocess.run([sys.executable, "-c", code, str(data_dir), passphrase or ""], env=env, cwd=ROOT, check=True,
                   timeout=60)  # fmt: skip


def _start_wallet(env: dict[str, str], data_dir: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "wallet_app.main", "--data-dir", str(data_dir), "--callback-port", "0"]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _stop(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    proc.terminate()
    try:
        _out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    return proc.returncode, err.decode(errors="replace")


def _wait_for(display: str, title: str, proc: subprocess.Popen[bytes], timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the wallet exited: {proc.communicate()[1].decode(errors='replace')}"
        info = window_info(display, title)
        if info is not None and info.viewable:
            return info
        time.sleep(0.2)
    raise AssertionError(f"no viewable window {title!r}; the X server has {window_names(display)}")


def _share(image: QImage, x: int, y: int, w: int, h: int, colour: str) -> float:
    """The share of pixels of colour ``colour`` in the rectangle (sampled every 4 pixels)."""
    want = QColor(colour).rgb() & 0xFFFFFF
    hits = total = 0
    for py in range(y, y + h, 4):
        for px in range(x, x + w, 4):
            total += 1
            hits += (image.pixel(px, py) & 0xFFFFFF) == want
    return hits / total


def test_main_window_is_visible_on_a_real_x_display(tmp_path: Path) -> None:
    env = wallet_process_env(tmp_path)
    data_dir = tmp_path / "w"
    _create_vault(env, data_dir, None)  # keyring vault: the main window opens at once
    SHOTS.mkdir(exist_ok=True)
    with xvfb() as display:
        env.update({"DISPLAY": display, "QT_QPA_PLATFORM": "xcb"})
        proc = _start_wallet(env, data_dir)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().decode().strip() == "NETPAY_WALLET_SHOWN"
            info = _wait_for(display, "NetPay Wallet", proc)
            assert info.width >= 960 and info.height >= 600  # the main window's minimum size, or larger
            # Let the first paint land, then look at the X display itself.
            deadline = time.monotonic() + 30
            while True:
                shot = grab_screen(display, SHOTS / "x-display-main-window.png")
                image = QImage(str(shot))
                x, y = max(info.x, 0), max(info.y, 0)
                w, h = min(info.width, image.width() - x), min(info.height, image.height() - y)
                unpainted = _share(image, x, y, w, h, "#000000")  # Xvfb's empty root is black
                accent = _share(image, x, y, w, h, "#2563eb")  # the "Buy coins" button (light theme)
                if (unpainted < 0.01 and accent > 0) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert unpainted < 0.01 and accent > 0, f"the window is not painted on the X display ({shot})"
            assert _share(image, 0, 0, image.width(), image.height(), "#000000") > 0.1  # and only the window is
        finally:
            code, err = _stop(proc)
    assert code == 0, err
    assert "qt.qpa" not in err, err  # no platform plugin complaints


def test_dialog_titles_are_not_doubled_by_the_platform(tmp_path: Path) -> None:
    """On xcb Qt adds " — NetPay Wallet" to every window title; the wallet must not add its own suffix too."""
    env = wallet_process_env(tmp_path)
    data_dir = tmp_path / "w"
    _create_vault(env, data_dir, "a long passphrase")  # passphrase vault: the Unlock dialog opens first
    with xvfb() as display:
        env.update({"DISPLAY": display, "QT_QPA_PLATFORM": "xcb"})
        proc = _start_wallet(env, data_dir)
        try:
            _wait_for(display, "Unlock your wallet — NetPay Wallet", proc)
            assert not [n for n in window_names(display) if n.count("NetPay") > 1], window_names(display)
        finally:
            _stop(proc)
