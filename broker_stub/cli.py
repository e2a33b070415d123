"""``netpay-broker``: serve (default), register-vendor, audit, operator-token.

Flags ``--host``, ``--port``, ``--data-dir`` may also be given as NETPAY_BROKER_HOST / NETPAY_BROKER_PORT /
NETPAY_BROKER_DATA_DIR (and ``--broker-id``, ``--close-grace``, ``--database`` as NETPAY_BROKER_ID /
NETPAY_BROKER_CLOSE_GRACE / NETPAY_BROKER_DATABASE; ``--tls-cert``/``--tls-key`` as NETPAY_BROKER_TLS_CERT /
NETPAY_BROKER_TLS_KEY, which serve HTTPS). With ``--database postgresql://...`` any number of broker processes
(``--workers N``, or instances on several ports sharing the data dir's key) serve one broker.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netpay.errors import NetPayError
from netpay_web.serve import LOG_LEVELS, TlsConfigError, check_tls_files, configure_logging, serve

__all__ = ["main"]

_COMMANDS = ("serve", "register-vendor", "revoke-vendor", "audit", "operator-token")


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"NETPAY_BROKER_{name}", default)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(_env("DATA_DIR", "broker-data") or "broker-data"),
        help="directory for the database, key and operator token (env NETPAY_BROKER_DATA_DIR)",
    )
    p.add_argument(
        "--broker-id",
        default=_env("ID"),
        help="broker id on first start; none: made from the key fingerprint (env NETPAY_BROKER_ID)",
    )
    p.add_argument(
        "--database",
        default=_env("DATABASE"),
        help="postgresql://... to keep the state in PostgreSQL, shared by every broker process that names it "
        "(env NETPAY_BROKER_DATABASE); none: a SQLite file in the data dir",
    )


def _fee_bps(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 10_000:
        raise argparse.ArgumentTypeError("must be whole basis points from 0 to 10000")
    return value


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(prog="netpay-broker", description="NetPay reference broker", formatter_class=fmt)
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the HTTP(S) server (default)", formatter_class=fmt)
    _common(serve)
    serve.add_argument(
        "--host", default=_env("HOST", "127.0.0.1"), help="address to listen on (env NETPAY_BROKER_HOST)"
    )
    serve.add_argument(
        "--port", type=int, default=int(_env("PORT", "8100") or 8100), help="port to listen on (env NETPAY_BROKER_PORT)"
    )
    serve.add_argument(
        "--public-url",
        default=_env("PUBLIC_URL"),
        help="base URL others reach the broker at; none: http(s)://HOST:PORT (env NETPAY_BROKER_PUBLIC_URL)",
    )
    serve.add_argument(
        "--tls-cert",
        default=_env("TLS_CERT"),
        help="PEM certificate (chain) to serve HTTPS; none: plain HTTP (env NETPAY_BROKER_TLS_CERT)",
    )
    serve.add_argument(
        "--tls-key", default=_env("TLS_KEY"), help="PEM private key of --tls-cert (env NETPAY_BROKER_TLS_KEY)"
    )
    serve.add_argument(
        "--log-level",
        default=_env("LOG_LEVEL", "info"),
        choices=LOG_LEVELS,
        help="request and event log level (env NETPAY_BROKER_LOG_LEVEL)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=int(_env("WORKERS", "1") or 1),
        help="worker processes on the one port (needs --database postgresql://...; env NETPAY_BROKER_WORKERS)",
    )
    serve.add_argument(
        "--close-grace",
        type=int,
        default=int(_env("CLOSE_GRACE", "300") or 300),
        help="seconds a closing chain waits for its custodian (env NETPAY_BROKER_CLOSE_GRACE)",
    )
    serve.add_argument(
        "--redemption-fee-bps",
        type=_fee_bps,
        default=_env("REDEMPTION_FEE_BPS", "0"),
        help="fee kept from each redemption, in basis points of the redeemed amount, 0 to 10000 "
        "(env NETPAY_BROKER_REDEMPTION_FEE_BPS)",
    )
    serve.add_argument(
        "--peer-supply-ratio",
        type=float,
        default=float(_env("PEER_SUPPLY_RATIO", "0") or 0),
        help="P2P supply policy: refuse coin purchases of accounts whose buys from peers exceed this many times what "
        "their own peer supplied; 0: off (env NETPAY_BROKER_PEER_SUPPLY_RATIO)",
    )
    serve.add_argument(
        "--peer-supply-grace",
        type=int,
        default=int(_env("PEER_SUPPLY_GRACE", "1000") or 1000),
        help="minor units an account may buy from peers before the supply policy looks (env "
        "NETPAY_BROKER_PEER_SUPPLY_GRACE)",
    )
    reg = sub.add_parser(
        "register-vendor", help="register a vendor and print its certificate JSON", formatter_class=fmt
    )
    _common(reg)
    reg.add_argument("--vendor-id", required=True, help="the vendor's id (required)")
    reg.add_argument("--name", required=True, help="display name the wallet shows customers (required)")
    reg.add_argument("--public-key", required=True, help="the vendor's Ed25519 public key, 64 hex digits (required)")
    reg.add_argument("--origin", action="append", required=True, help="web origin of its pages (required, repeatable)")
    reg.add_argument("--api-url", required=True, help="base URL of the vendor's API (required)")
    reg.add_argument("--payment-url", required=True, help="URL wallets send payments to (required)")
    rev = sub.add_parser("revoke-vendor", help="put a vendor on the revocation list", formatter_class=fmt)
    _common(rev)
    rev.add_argument("--vendor-id", required=True, help="the vendor to revoke (required)")
    audit = sub.add_parser("audit", help="print the trial balance; exit 1 if it does not balance", formatter_class=fmt)
    _common(audit)
    tok = sub.add_parser("operator-token", help="print the operator token", formatter_class=fmt)
    _common(tok)
    return parser


#: The serve settings handed to each worker process (uvicorn starts workers as fresh interpreters).
_SERVE_ENV = "NETPAY_BROKER_SERVE_SETTINGS"


def _serve_workers(args: argparse.Namespace, settings: Any, tls: tuple[str, str] | None) -> int:
    """Several worker processes on one port, all on the one PostgreSQL database (uvicorn's process manager)."""
    import uvicorn

    from broker_stub.services import Broker

    if not args.database:
        print("netpay-broker: --workers needs --database postgresql://... (a SQLite file serves one process)",
              file=sys.stderr)  # fmt: skip
        return 2
    broker = Broker(settings)  # the key, operator token and schema exist before any worker starts
    print(f"netpay-broker {broker.core.broker_id} on {settings.base_url} ({args.workers} workers)", flush=True)
    broker.close()
    os.environ[_SERVE_ENV] = json.dumps(
        {"data_dir": str(settings.data_dir), "host": settings.host, "port": settings.port,
         "broker_id": settings.broker_id, "public_url": settings.public_url, "close_grace_s": settings.close_grace_s,
         "database_url": settings.database_url, "tls": settings.tls,
         "redemption_fee_bps": settings.redemption_fee_bps, "peer_supply_ratio": settings.peer_supply_ratio,
         "peer_supply_grace": settings.peer_supply_grace}
    )  # fmt: skip
    configure_logging(args.log_level)
    options: dict[str, Any] = {"ssl_certfile": tls[0], "ssl_keyfile": tls[1]} if tls is not None else {}
    uvicorn.run("broker_stub.cli:app_from_env", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level=args.log_level, access_log=args.log_level in ("debug", "info"), **options)  # fmt: skip
    return 0


def app_from_env() -> Any:
    """The app of one worker process (see ``--workers``)."""
    from broker_stub.app import create_app
    from broker_stub.settings import BrokerSettings

    fields = json.loads(os.environ[_SERVE_ENV])
    fields["data_dir"] = Path(fields["data_dir"])
    return create_app(BrokerSettings(**fields))


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if not args_in or args_in[0] not in (*_COMMANDS, "-h", "--help"):
        args_in.insert(0, "serve")
    args = _parser().parse_args(args_in)
    from broker_stub.settings import BrokerSettings

    if args.command == "serve":
        from broker_stub.app import create_app

        try:
            tls = check_tls_files(args.tls_cert, args.tls_key)
        except TlsConfigError as exc:
            print(f"netpay-broker: {exc}", file=sys.stderr)
            return 2
        settings = BrokerSettings(
            data_dir=args.data_dir,
            host=args.host,
            port=args.port,
            broker_id=args.broker_id,
            public_url=args.public_url,
            close_grace_s=args.close_grace,
            database_url=args.database,
            tls=tls is not None,
            peer_supply_ratio=args.peer_supply_ratio,
            peer_supply_grace=args.peer_supply_grace,
            redemption_fee_bps=args.redemption_fee_bps,
        )
        if args.workers > 1:
            return _serve_workers(args, settings, tls)
        app = create_app(settings)
        print(f"netpay-broker {app.state.broker.core.broker_id} on {settings.base_url}", flush=True)
        serve(app, args.host, args.port, tls=tls, log_level=args.log_level)
        return 0

    from broker_stub.services import Broker

    broker = Broker(BrokerSettings(data_dir=args.data_dir, broker_id=args.broker_id, database_url=args.database))
    try:
        if args.command == "operator-token":
            print(broker.core.operator_token)
            return 0
        if args.command == "audit":
            from broker_stub.audit import audit_report

            report = audit_report(broker.core)
            print(json.dumps(report, indent=2))
            return 0 if report["balanced"] else 1
        if args.command == "revoke-vendor":
            try:
                print(json.dumps(broker.vendors.revoke(args.vendor_id)))
            except NetPayError as exc:
                print(json.dumps(exc.to_body()), file=sys.stderr)
                return 2
            return 0
        data = {
            "vendor_id": args.vendor_id,
            "display_name": args.name,
            "public_key": args.public_key,
            "origins": args.origin,
            "api_url": args.api_url,
            "payment_url": args.payment_url,
        }
        try:
            _, body = broker.vendors.register(data)
        except NetPayError as exc:
            print(json.dumps(exc.to_body()), file=sys.stderr)
            return 2
        print(json.dumps(body["certificate"]))
        return 0
    finally:
        broker.close()


if __name__ == "__main__":
    sys.exit(main())
