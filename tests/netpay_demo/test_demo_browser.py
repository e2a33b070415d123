"""The demo's browser: Chromium with its own profile, ``--no-sandbox`` only as root (Chromium refuses to start as
root with its sandbox, which left a dead child behind), stopped with the demo; without a display, the URL."""

from __future__ import annotations

import functools
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netpay_demo import cli
from tests.support.xvfb import window_names, xvfb


@pytest.fixture
def page(tmp_path: Path) -> Iterator[str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>Demo shop page</title><h1>Daily Planet</h1>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_chromium_gets_its_own_profile_and_no_sandbox_only_as_root(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cli.shutil, "which", lambda name: f"/usr/bin/{name}" if name == "chromium" else None)
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    user = cli.chromium_command("http://127.0.0.1:8201/", tmp_path / "profile")
    assert user is not None and user[0] == "/usr/bin/chromium" and user[-1] == "http://127.0.0.1:8201/"
    assert f"--user-data-dir={tmp_path / 'profile'}" in user and "--no-sandbox" not in user
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    assert "--no-sandbox" in (cli.chromium_command("http://127.0.0.1:8201/", tmp_path / "profile") or [])
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    assert cli.chromium_command("http://127.0.0.1:8201/", tmp_path / "profile") is None


def test_without_a_display_the_demo_prints_the_url(monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(cli.sys, "platform", "linux")
    assert cli._open_browser("http://127.0.0.1:8201/", tmp_path) is None
    assert "open http://127.0.0.1:8201/ in a browser" in capsys.readouterr().out


def test_the_demo_browser_opens_the_shop_on_a_real_display_and_stops_with_the_demo(
    monkeypatch, capsys, tmp_path: Path, page: str
) -> None:
    if cli.chromium_command(page, tmp_path) is None:
        pytest.skip("no Chromium (scripts/install-system-deps.sh installs it)")
    with xvfb() as display:
        monkeypatch.setenv("DISPLAY", display)
        browser = cli._open_browser(page, tmp_path)
        try:
            out = capsys.readouterr().out
            assert browser is not None, out  # it started and still runs (as root too: here the tests run as root
            assert browser.running()  # on CI, where Chromium without --no-sandbox exits at once)
            deadline = time.monotonic() + 60
            while not any(n.startswith("Demo shop page") for n in window_names(display)):
                assert browser.running(), browser.log_tail()
                assert time.monotonic() < deadline, window_names(display)
                time.sleep(0.5)
            assert (tmp_path / "browser-profile").is_dir()  # its own profile, not the user's
        finally:
            if browser is not None:
                browser.stop(timeout=10)
        assert browser is not None and not browser.running()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        assert "--no-sandbox" in browser.args
