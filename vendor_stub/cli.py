"""``netpay-vendor``: run a shop (``serve``, the default), print its public key, or redeem earnings now.

Every ``serve`` flag also reads an environment variable ``NETPAY_VENDOR_<FLAG>`` (e.g. ``NETPAY_VENDOR_PORT``,
``NETPAY_VENDOR_TLS_CERT``). With ``--tls-cert``/``--tls-key`` the shop is served over HTTPS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from netpay.errors import NetPayError
from netpay.keys import load_or_create_key
from netpay_web.serve import LOG_LEVELS, TlsConfigError, check_tls_files, configure_logging, serve
from vendor_stub.settings import QUOTE_TTL_MAX_S, QUOTE_TTL_MIN_S, VendorSettings

__all__ = ["main"]

_CATALOGS = Path(__file__).parent / "catalogs"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(f"NETPAY_VENDOR_{name}", default)


def _quote_ttl(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not QUOTE_TTL_MIN_S <= value <= QUOTE_TTL_MAX_S:
        raise argparse.ArgumentTypeError(f"must be whole seconds from {QUOTE_TTL_MIN_S} to {QUOTE_TTL_MAX_S}")
    return value


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = argparse.ArgumentParser(
        prog="netpay-vendor", description="NetPay reference vendor (a small e-coin shop)", formatter_class=fmt
    )
    sub = p.add_subparsers(dest="command")

    def data_dir(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--data-dir",
            default=_env("DATA_DIR", "vendor-data"),
            help="directory of the shop's database, key and publisher token (env NETPAY_VENDOR_DATA_DIR)",
        )

    def serve_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--name", default=_env("NAME", "Daily Planet"), help="shop name shown on the pages")
        sp.add_argument(
            "--catalog", default=_env("CATALOG", str(_CATALOGS / "daily_planet.json")), help="the shop's catalog (JSON)"
        )
        sp.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="address to listen on")
        sp.add_argument("--port", type=int, default=int(_env("PORT", "8201")), help="port to listen on")
        sp.add_argument("--broker", default=_env("BROKER", "http://127.0.0.1:8100"), help="broker base URL")
        data_dir(sp)
        sp.add_argument("--vendor-id", default=_env("VENDOR_ID", ""), help="vendor id; empty: a slug of --name")
        sp.add_argument(
            "--public-url", default=_env("PUBLIC_URL", ""), help="base URL customers use; empty: http(s)://HOST:PORT"
        )
        sp.add_argument(
            "--broker-key", default=_env("BROKER_KEY", ""), help="pin the broker's public key (hex); empty: learn it"
        )
        sp.add_argument(
            "--tls-cert", default=_env("TLS_CERT", ""), help="PEM certificate (chain) to serve HTTPS; empty: plain HTTP"
        )
        sp.add_argument("--tls-key", default=_env("TLS_KEY", ""), help="PEM private key of --tls-cert")
        sp.add_argument(
            "--publisher-token",
            default=_env("PUBLISHER_TOKEN", ""),
            help="token that opens /earnings; empty: the one in DATA_DIR/publisher_token (made on first start)",
        )
        sp.add_argument(
            "--log-level", default=_env("LOG_LEVEL", "info"), choices=LOG_LEVELS, help="request and event log level"
        )
        sp.add_argument("--workers", type=int, default=int(_env("WORKERS", "1")),
                        help="worker processes on the one port (needs --database postgresql://...)")  # fmt: skip
        sp.add_argument("--database", default=_env("DATABASE", ""),
                        help="postgresql://... : the shop's state in PostgreSQL, shared by its processes")  # fmt: skip
        sp.add_argument("--no-settlement", action="store_true", default=_env("SETTLEMENT", "1") == "0",
                        help="this process sends no spend reports and no redemption batches: another process of "
                        "the shop (or `netpay-vendor redeem`) does (env NETPAY_VENDOR_SETTLEMENT=0)")  # fmt: skip
        sp.add_argument(
            "--quote-ttl", type=_quote_ttl, default=_env("QUOTE_TTL", "300"), metavar="SECONDS",
            help=f"seconds a quote stays payable, {QUOTE_TTL_MIN_S} to {QUOTE_TTL_MAX_S} (env NETPAY_VENDOR_QUOTE_TTL)",
        )  # fmt: skip

    serve_args(p)
    serve_args(sub.add_parser("serve", help="run the shop (default)", formatter_class=fmt))
    pk = sub.add_parser(
        "public-key", help="create the vendor key if needed and print its public key (hex)", formatter_class=fmt
    )
    data_dir(pk)
    tok = sub.add_parser(
        "publisher-token", help="create the publisher token if needed and print it", formatter_class=fmt
    )
    data_dir(tok)
    rd = sub.add_parser(
        "redeem", help="send pending earnings to the broker now and print the outcome", formatter_class=fmt
    )
    data_dir(rd)
    rd.add_argument(
        "--broker", default=_env("BROKER", ""), help="broker base URL; empty: the one the shop last ran with"
    )
    rd.add_argument("--database", default=_env("DATABASE", ""), help="postgresql://... (as the shop runs with)")
    return p


def _serve(args: argparse.Namespace) -> int:
    from vendor_stub.app import create_app

    try:
        tls = check_tls_files(args.tls_cert, args.tls_key)
    except TlsConfigError as exc:
        print(f"netpay-vendor: {exc}", file=sys.stderr)
        return 2
    settings = VendorSettings(
        name=args.name, catalog=Path(args.catalog), data_dir=Path(args.data_dir), broker_url=args.broker,
        host=args.host, port=args.port, vendor_id=args.vendor_id, public_url=args.public_url,
        broker_public_key=args.broker_key, quote_ttl_s=args.quote_ttl, tls=tls is not None,
        publisher_token=args.publisher_token, database_url=args.database, settlement=not args.no_settlement,
    )  # fmt: skip
    if settings.publisher_token and len(settings.publisher_token) < 8:
        print("netpay-vendor: --publisher-token must be at least 8 characters", file=sys.stderr)
        return 2
    if args.workers > 1:
        return _serve_workers(args, settings, tls)
    app = create_app(settings)
    print(f"netpay-vendor {settings.id} on {settings.base_url}/", flush=True)
    serve(app, args.host, args.port, tls=tls, log_level=args.log_level)
    return 0


#: The serve settings handed to each worker process (uvicorn starts workers as fresh interpreters).
_SERVE_ENV = "NETPAY_VENDOR_SERVE_SETTINGS"
_SERVE_FIELDS = ("name", "catalog", "data_dir", "broker_url", "host", "port", "vendor_id", "public_url",
                 "broker_public_key", "quote_ttl_s", "database_url", "tls", "publisher_token",
                 "settlement")  # fmt: skip


def _serve_workers(args: argparse.Namespace, settings: VendorSettings, tls: tuple[str, str] | None) -> int:
    """Several worker processes of one shop on one port, all on the one PostgreSQL database."""
    import uvicorn

    from vendor_stub.service import Vendor

    if not args.database:
        print("netpay-vendor: --workers needs --database postgresql://... (a SQLite file serves one process)",
              file=sys.stderr)  # fmt: skip
        return 2
    Vendor(settings).close()  # key, access secret and schema exist before any worker starts
    os.environ[_SERVE_ENV] = json.dumps({f: str(getattr(settings, f)) if isinstance(getattr(settings, f), Path)
                                         else getattr(settings, f) for f in _SERVE_FIELDS})  # fmt: skip
    print(f"netpay-vendor {settings.id} on {settings.base_url}/ ({args.workers} workers)", flush=True)
    configure_logging(args.log_level)
    options: dict[str, Any] = {"ssl_certfile": tls[0], "ssl_keyfile": tls[1]} if tls is not None else {}
    uvicorn.run("vendor_stub.cli:app_from_env", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level=args.log_level, access_log=args.log_level in ("debug", "info"), **options)  # fmt: skip
    return 0


def app_from_env() -> Any:
    """The app of one worker process (see ``--workers``)."""
    from vendor_stub.app import create_app

    fields = json.loads(os.environ[_SERVE_ENV])
    fields["catalog"], fields["data_dir"] = Path(fields["catalog"]), Path(fields["data_dir"])
    return create_app(VendorSettings(**fields))


def _redeem(args: argparse.Namespace) -> int:
    from vendor_stub.background import Redeemer
    from vendor_stub.broker_client import BrokerClient
    from vendor_stub.service import key_path
    from vendor_stub.storage import Store
    from vendor_stub.trust import Trust

    data = Path(args.data_dir)
    if not args.database and not (data / "vendor.sqlite3").exists():
        print(f"no vendor database in {data}", file=sys.stderr)
        return 2
    store = Store(args.database or data / "vendor.sqlite3")
    try:
        vendor_id = store.get_meta("vendor_id") or ""
        broker = BrokerClient(args.broker or store.get_meta("broker_url") or "http://127.0.0.1:8100")
        key = load_or_create_key(key_path(data))
        trust = Trust(store, broker, key, vendor_id)
        import time

        redeemer = Redeemer(store, broker, trust, key, vendor_id, lambda: int(time.time()))
        summary = redeemer.redeem()
    except NetPayError as exc:
        print(json.dumps(exc.to_body()), file=sys.stderr)
        return 1
    finally:
        store.close()
    print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "public-key":
        print(load_or_create_key(Path(args.data_dir) / "vendor_key").public.hex)
        return 0
    if args.command == "publisher-token":
        from vendor_stub.publisher import load_or_create_publisher_token

        print(load_or_create_publisher_token(Path(args.data_dir)))
        return 0
    if args.command == "redeem":
        return _redeem(args)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
