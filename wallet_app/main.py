"""``netpay-wallet``: the wallet's entry point.

Parses the command line, opens the wallet services on the data directory, starts the browser hand-off (local
callback and single-instance channel) and shows the windows. ``--headless`` runs the services and the callback
without any window (for scripted tours): prompts are printed as JSON lines on stdout and answered on stdin with
``approve <prompt_id> [<limit minor units>]`` or ``decline <prompt_id>``.

Environment: ``NETPAY_WALLET_HOME`` (data dir), ``NETPAY_WALLET_PASSPHRASE`` (headless only), and
``NETPAY_WALLET_REPORT_SHOWN=1`` makes the wallet print ``NETPAY_WALLET_SHOWN`` on stdout once the main window is
shown (used by the start-up benchmark).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from wallet_app.paths import data_dir as resolve_data_dir

__all__ = ["main", "parse_args"]

log = logging.getLogger("netpay.wallet")

SHOWN_MARKER = "NETPAY_WALLET_SHOWN"
READY_MARKER = "NETPAY_WALLET_READY"
DEFAULT_BROKER = "http://127.0.0.1:8100"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="netpay-wallet", description="NetPay e-coin wallet", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("uri", nargs="?", help="a netpay: link to pay (handed to a running wallet if there is one)")
    parser.add_argument(
        "--data-dir", default=None, help="wallet data directory; none: $NETPAY_WALLET_HOME, else the platform data dir"
    )
    parser.add_argument(
        "--callback-port",
        type=int,
        default=None,
        help="port of the local browser callback; none: the saved setting, else 8765 (0 picks a free port)",
    )
    parser.add_argument("--headless", action="store_true", help="run services and callback without any window")
    parser.add_argument(
        "--broker-url",
        default=os.environ.get("NETPAY_BROKER_URL", DEFAULT_BROKER),
        help="the demo broker offered on first run (headless: added and trusted on first run) (env NETPAY_BROKER_URL)",
    )
    parser.add_argument(
        "--ca-file",
        default=os.environ.get("NETPAY_WALLET_CA_FILE") or None,
        help="PEM file of the CA(s) to verify brokers' and vendors' HTTPS certificates with; none: the default "
        "bundle (env NETPAY_WALLET_CA_FILE)",
    )
    parser.add_argument("--minimized", action="store_true", help="start in the tray (used by start-with-system)")
    parser.add_argument("--no-callback", action="store_true", help="do not start the browser callback")
    parser.add_argument(
        "--log-level", default=os.environ.get("NETPAY_WALLET_LOG", "WARNING"), help="log level (env NETPAY_WALLET_LOG)"
    )
    return parser.parse_args(argv)


class _Runtime:
    """The non-GUI parts: services, purchase coordinator, callback server, single-instance channel."""

    def __init__(self, args: argparse.Namespace) -> None:
        from wallet_app.services import WalletEvents, WalletService

        self.args = args
        self.data_dir = resolve_data_dir(args.data_dir)
        self.events = WalletEvents()
        self.service = WalletService(self.data_dir, events=self.events)
        self.service.start_revocation_watch()  # revocation lists refreshed in the background while it runs
        self.coordinator: Any = None
        self.server: Any = None
        self.channel: Any = None
        self.agents: Any = None

    def start_callback(self) -> None:
        self.make_coordinator()
        self.start_server()

    def make_coordinator(self) -> None:
        from wallet_app.callback.coordinator import PurchaseCoordinator
        from wallet_app.callback.services_adapter import ServicesWalletPort

        self.coordinator = PurchaseCoordinator(ServicesWalletPort(self.service))

    def start_server(self) -> None:
        """Start the browser callback (blocks until it listens; raises PortInUse when the port is taken)."""
        from wallet_app.callback.server import CallbackServer

        if self.args.no_callback:
            return
        port = self.args.callback_port
        if port is None:
            port = 8765
            try:
                if self.service.state == "unlocked":
                    port = int(self.service.get_setting("callback_port", 8765))
            except Exception:
                port = 8765
        self.server = CallbackServer(self.coordinator, port=port).start()

    def start_channel(self) -> int | None:
        """Become the single instance. Otherwise return the exit code: 0 when the link was handed to the running
        wallet, 3 when another wallet already runs."""
        from wallet_app.callback.single_instance import InstanceChannel, default_socket_path, send_to_running

        path = default_socket_path(self.data_dir)
        if self.args.uri and send_to_running(self.args.uri, path):
            return 0
        self.channel = InstanceChannel(path, self._link)
        if not self.channel.acquire():
            print("netpay-wallet: NetPay Wallet is already running.", file=sys.stderr)
            return 3
        from wallet_app.client.channel import AgentChannel

        try:  # programs of this user pay through this wallet (wallet_app.client.connect)
            self.agents = AgentChannel(self.service, self.data_dir).start()
        except OSError as exc:
            log.warning("the agent channel did not start: %s", exc)
        return None

    def _link(self, uri: str) -> None:
        if self.coordinator is not None:
            try:
                self.coordinator.purchase_link(uri)
            except Exception as exc:
                log.warning("netpay: link refused: %s", exc)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.channel is not None:
            self.channel.close()
        if self.agents is not None:
            self.agents.close()
        if self.coordinator is not None:
            self.coordinator.shutdown()
        try:
            self.service.close()
        except Exception:
            log.debug("closing the wallet failed", exc_info=True)


def _run_headless(rt: _Runtime) -> int:
    from netpay.money import Money

    service = rt.service
    passphrase = os.environ.get("NETPAY_WALLET_PASSPHRASE") or None
    if service.state == "new":
        service.create(passphrase)
        if rt.args.broker_url:
            info = service.add_broker(rt.args.broker_url)
            service.trust_broker(info.broker_id)
    elif service.state == "locked":
        service.unlock(passphrase)
    rt.start_callback()
    out_lock = threading.Lock()

    def say(obj: dict[str, Any]) -> None:
        with out_lock:
            print(json.dumps(obj), flush=True)

    def on_prompt(prompt: Any) -> None:
        say(
            {
                "event": "prompt",
                "prompt_id": prompt.prompt_id,
                "vendor": prompt.vendor_name,
                "origin": prompt.origin,
                "item": prompt.item_title,
                "price": prompt.price.to_json(),
            }
        )

    rt.coordinator.on_prompt = on_prompt
    rt.events.auto_payment_made.append(lambda paid: say({"event": "auto_paid", "amount": paid.amount.to_json()}))
    stop = threading.Event()

    def read_commands() -> None:
        for line in sys.stdin:
            parts = line.split()
            if not parts:
                continue
            try:
                if parts[0] == "approve" and len(parts) >= 2:
                    prompt = rt.coordinator.prompt(parts[1])
                    limit = Money(int(parts[2]), prompt.price.currency) if len(parts) > 2 else None
                    done = rt.coordinator.approve(parts[1], limit).result(timeout=60)
                    say({"event": "answered", "prompt_id": parts[1], "status": done.status})
                elif parts[0] == "decline" and len(parts) == 2:
                    done = rt.coordinator.decline(parts[1])
                    say({"event": "answered", "prompt_id": parts[1], "status": done.status})
                elif parts[0] == "quit":
                    break
            except Exception as exc:
                say({"event": "error", "command": parts[0], "message": str(exc)})
        stop.set()

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if not sys.stdin.isatty():
        threading.Thread(target=read_commands, name="wallet-stdin", daemon=True).start()
    say({"event": "ready", "marker": READY_MARKER, "callback": rt.server.url if rt.server else None})
    while not stop.wait(0.5):
        pass
    return 0


def _run_gui(rt: _Runtime) -> int:
    from PySide6.QtCore import QTimer

    from wallet_app.gui.app import WalletWindows, create_application
    from wallet_app.gui.backend import GuiBackend
    from wallet_app.gui.bridge import Bridge

    app = create_application(sys.argv[:1])
    rt.make_coordinator()
    bridge = Bridge()
    backend = GuiBackend(rt.service, bridge, events=rt.events, coordinator=rt.coordinator, data_dir=rt.data_dir)

    def shown() -> None:
        if os.environ.get("NETPAY_WALLET_REPORT_SHOWN"):
            print(SHOWN_MARKER, flush=True)

    windows = WalletWindows(
        backend, rt.data_dir, demo_broker_url=rt.args.broker_url, on_main_shown=shown, minimized=rt.args.minimized
    )

    def serve() -> None:
        # The callback (uvicorn) starts beside the windows, so the wallet opens without waiting for it.
        try:
            rt.start_server()
        except Exception as exc:  # a taken port must not keep the wallet from opening; say why
            print(f"netpay-wallet: the browser callback did not start: {exc}", file=sys.stderr)
            bridge.callback_state.emit("", str(exc))
        else:
            bridge.callback_state.emit(rt.server.url if rt.server is not None else "", "")

    bridge.callback_state.connect(windows.set_callback_state)
    signal.signal(signal.SIGINT, lambda *_: app.quit())
    signal.signal(signal.SIGTERM, lambda *_: app.quit())
    keepalive = QTimer()  # lets Python handle signals while Qt's loop runs
    keepalive.start(250)
    keepalive.timeout.connect(lambda: None)
    windows.start()
    threading.Thread(target=serve, name="wallet-callback-start", daemon=True).start()
    code = app.exec()
    windows.shutdown()
    return int(code)


def _is_command(argv: list[str]) -> bool:
    """True when the first positional argument names a subcommand (``netpay-wallet [options] balance``)."""
    from wallet_app.cli import COMMAND_NAMES

    takes_value = {"--data-dir", "--passphrase-fd", "--ca-file"}
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in takes_value:
            skip = True
        elif not arg.startswith("-"):
            return arg in COMMAND_NAMES
    return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if _is_command(argv):  # subcommands for scripts: wallet_app/cli, no window, no callback
        from wallet_app.cli import main as cli_main

        return cli_main(argv)
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING))
    if args.ca_file:
        if not os.path.isfile(args.ca_file):
            print(f"netpay-wallet: CA file {args.ca_file} does not exist", file=sys.stderr)
            return 2
        from wallet_app.clients.http import set_ca_file

        set_ca_file(args.ca_file)
    if not args.headless and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen" if sys.platform.startswith("linux") else "")
    try:
        rt = _Runtime(args)
    except Exception as exc:
        print(f"netpay-wallet: {exc}", file=sys.stderr)
        return 2
    try:
        refused = rt.start_channel()
        if refused is not None:
            return refused
        return _run_headless(rt) if args.headless else _run_gui(rt)
    except Exception as exc:
        print(f"netpay-wallet: {exc}", file=sys.stderr)
        return 1
    finally:
        rt.stop()


if __name__ == "__main__":
    sys.exit(main())
