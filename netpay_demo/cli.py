"""``netpay-demo``: start a broker, the two demo shops, a funded demo customer and the wallet; or run the tour.

Ctrl+C stops everything. A second demo on the same data directory refuses to start; a taken port is named.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
import time
import webbrowser
from pathlib import Path

from netpay_demo.processes import DemoError, ManagedProcess
from netpay_demo.system import DEMO_CUSTOMER, DemoConfig, DemoSystem

__all__ = ["main"]

DEMO_WALLET_PASSPHRASE = "netpay-demo"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netpay-demo",
        description="Run the NetPay demo system on this machine",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("NETPAY_DEMO_DIR", "demo-data")),
        help="directory of every part's data and logs (env NETPAY_DEMO_DIR)",
    )
    p.add_argument("--keep", action="store_true", help="reuse the data of the last demo instead of starting fresh")
    p.add_argument("--tour", action="store_true", help="run the scripted end-to-end tour (wallet headless) and exit")
    p.add_argument("--broker-port", type=int, default=8100, help="port of the broker")
    p.add_argument("--news-port", type=int, default=8201, help="port of the Daily Planet shop")
    p.add_argument("--cards-port", type=int, default=8202, help="port of the Paper Lantern Cards shop")
    p.add_argument("--callback-port", type=int, default=8765, help="port of the wallet's browser callback")
    p.add_argument("--no-browser", action="store_true", help="do not open the first shop in a browser")
    p.add_argument("--no-wallet", action="store_true", help="start only the broker and the shops")
    p.add_argument("--postgres", action="store_true",
                   help="keep the broker's and the shops' state in PostgreSQL (a cluster of its own)")  # fmt: skip
    return p


def _provision_wallet(system: DemoSystem, wallet_dir: Path) -> str | None:
    """Prepare the demo wallet so it opens ready to pay: vault, trusted demo broker, demo customer logged in.

    Returns the passphrase when this machine has no usable keyring (then the wallet asks for it)."""
    from wallet_app.services import WalletService

    service = WalletService(wallet_dir)
    passphrase = DEMO_WALLET_PASSPHRASE if service.needs_passphrase() else None
    try:
        if service.state == "new":
            service.create(passphrase)
        else:
            service.unlock(passphrase)
        info = service.add_broker(system.config.broker_url)
        service.trust_broker(info.broker_id)
        service.login(info.broker_id, DEMO_CUSTOMER["username"], DEMO_CUSTOMER["password"])
        service.set_setting("callback_port", system.config.callback_port)
    finally:
        service.close()
    return passphrase


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_command(url: str, profile: Path) -> list[str] | None:
    """How to start Chromium on ``url`` with its own profile (so it never joins, or is refused by, the user's
    running browser), or None when there is none. As root Chromium refuses to start with its sandbox, so it gets
    ``--no-sandbox`` then (and only then)."""
    exe = next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)
    if exe is None:
        return None
    cmd = [exe, f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--no-sandbox")
    return [*cmd, url]


def _open_browser(url: str, data_dir: Path) -> ManagedProcess | None:
    """Open ``url`` in a browser the demo stops again, or say plainly to open it by hand; never a dead child."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform == "darwin"):
        print(f"No display: open {url} in a browser.", flush=True)
        return None
    cmd = chromium_command(url, data_dir / "browser-profile")
    if cmd is None:
        is_root = hasattr(os, "geteuid") and os.geteuid() == 0
        if is_root or not webbrowser.open(url):  # a root user's default browser may well refuse to start
            print(f"Open {url} in a browser.", flush=True)
        return None
    browser = ManagedProcess("browser", cmd[1:], data_dir / "logs" / "browser.log", executable=cmd[0]).start()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and browser.running():
        time.sleep(0.1)
    if not browser.running():
        print(f"The browser did not start (see {browser.log_path}): open {url} in a browser.", flush=True)
        return None
    print(f"browser    {cmd[0]} on {url} (its own profile in {data_dir / 'browser-profile'})", flush=True)
    return browser


def run_demo(args: argparse.Namespace) -> int:
    config = DemoConfig(args.data_dir, args.broker_port, args.news_port, args.cards_port, args.callback_port, args.keep,
                        args.postgres)  # fmt: skip
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with DemoSystem(config) as system:
        system.prepare()
        system.start_broker()
        system.register_and_start_vendors()
        system.create_customer()
        if args.tour:
            from netpay_demo.tour import Tour

            ok = Tour(system).run()
            print("tour passed: every figure agrees" if ok else "tour FAILED", flush=True)
            return 0 if ok else 1
        if not args.no_wallet:
            wallet_dir = config.data_dir / "wallet"
            passphrase = _provision_wallet(system, wallet_dir)
            wallet = system._proc(
                "wallet",
                [
                    "-m",
                    "wallet_app.main",
                    "--data-dir",
                    str(wallet_dir),
                    "--callback-port",
                    str(config.callback_port),
                    "--broker-url",
                    config.broker_url,
                ],
            )
            wallet.wait_http(f"http://127.0.0.1:{config.callback_port}/v1/hello", timeout=60)
            note = f" (vault passphrase: {passphrase})" if passphrase else ""
            print(f"wallet     running, callback http://127.0.0.1:{config.callback_port}{note}", flush=True)
        first = config.shops()[0].url + "/"
        browser = None if args.no_browser else _open_browser(first, config.data_dir)
        print(f"\nShop at {first} and {config.shops()[1].url}/ — Ctrl+C stops everything.", flush=True)
        try:
            while not stop.wait(0.5):
                dead = [name for name, p in system.processes.items() if not p.running()]
                if dead:
                    print(f"{', '.join(dead)} stopped; see {config.data_dir / 'logs'}. Stopping the demo.", flush=True)
                    return 1
            print("\nstopping…", flush=True)
        finally:
            if browser is not None:  # closing the browser window does not stop the demo; Ctrl+C closes the browser
                browser.stop(timeout=5)
    print("stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run_demo(args)
    except DemoError as exc:
        print(f"netpay-demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
