"""``netpay-wallet <command>``: the wallet from scripts, on the same vault and services as the window.

Each command opens the vault for its own run (taking the vault's process lock, so it refuses to run beside a wallet
window or another command on the same vault: exit code 3), does one thing and closes it. ``--json`` prints one JSON
document on stdout; errors go to stderr (as ``{"error": {code, message, details}}`` with ``--json``) with an exit
code from :mod:`wallet_app.cli.codes`. Secrets come from a prompt or a file descriptor (:mod:`wallet_app.cli.inputs`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from netpay.errors import NetPayError
from wallet_app.cli import codes
from wallet_app.cli.commands import COMMANDS, Context, add_parsers

__all__ = ["COMMAND_NAMES", "main"]

COMMAND_NAMES = frozenset(COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netpay-wallet", description="NetPay wallet commands for scripts")
    parser.add_argument("--data-dir", default=None, help="wallet data directory (default: as the window)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument(
        "--passphrase-fd", type=int, default=None, metavar="FD", help="read the vault passphrase from this FD"
    )
    parser.add_argument("--ca-file", default=None, help="PEM CA file for HTTPS brokers and shops")
    add_parsers(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def main(argv: list[str], key_store: Any = None) -> int:
    """Run one command; returns the exit code. ``key_store`` replaces the OS keyring (tests)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    if args.ca_file:
        from wallet_app.clients.http import set_ca_file

        set_ca_file(args.ca_file)
    ctx = Context(args, key_store)
    try:
        result = COMMANDS[args.command](ctx)
        code = codes.OK
        if isinstance(result, tuple):
            result, code = result
        _print(result, args.json)
        return code
    except (NetPayError, ValueError, OSError) as exc:
        code = codes.code_for(exc)
        _fail(exc, args.json)
        return code
    except KeyboardInterrupt:
        return 130
    finally:
        ctx.close()


def _print(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.get("json", result) if isinstance(result, dict) else result, indent=None))
    elif isinstance(result, dict) and "text" in result:
        if result["text"]:
            print(result["text"])
    elif result is not None:
        print(result)


def _fail(exc: BaseException, as_json: bool) -> None:
    if isinstance(exc, NetPayError):
        body = exc.to_body()
    else:
        body = {"error": {"code": "usage" if isinstance(exc, ValueError) else "os_error", "message": str(exc),
                          "details": {}}}  # fmt: skip
    if as_json:
        print(json.dumps(body), file=sys.stderr)
    else:
        print(f"netpay-wallet: {body['error']['message']}", file=sys.stderr)
