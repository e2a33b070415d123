"""Serve a reference server's ASGI app from its CLI: plain HTTP, or HTTPS when a certificate and key are given, with
request and event logs on stdout (the demo writes them to ``demo-data/logs/<part>.log``)."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

__all__ = ["LOG_LEVELS", "TlsConfigError", "check_tls_files", "configure_logging", "serve"]

LOG_LEVELS = ("debug", "info", "warning", "error")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TlsConfigError(ValueError):
    """``--tls-cert`` / ``--tls-key`` are not a usable pair; the message says what to fix."""


def check_tls_files(cert: str | None, key: str | None) -> tuple[str, str] | None:
    """The (certificate, key) paths when both are given and load as a pair; None when neither is given."""
    if not cert and not key:
        return None
    if not cert or not key:
        raise TlsConfigError("--tls-cert and --tls-key go together: give both, or neither for plain HTTP")
    for what, path in (("certificate", cert), ("key", key)):
        if not Path(path).is_file():
            raise TlsConfigError(f"TLS {what} file {path} does not exist")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"TLS certificate {cert} and key {key} do not load as a pair: {exc}") from None
    return cert, key


def configure_logging(level: str) -> None:
    """Log the server's own events (``netpay.*``, ``broker_stub``, ``vendor_stub``) to stderr, with timestamps."""
    logging.basicConfig(level=level.upper(), format=_FORMAT, force=True)


def serve(app: Any, host: str, port: int, *, tls: tuple[str, str] | None, log_level: str) -> None:
    """Run ``app`` with uvicorn until Ctrl+C; one access-log line per request at ``info`` and below."""
    import uvicorn

    configure_logging(log_level)
    options: dict[str, Any] = {}
    if tls is not None:
        options = {"ssl_certfile": tls[0], "ssl_keyfile": tls[1]}
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level in ("debug", "info"), **options)
