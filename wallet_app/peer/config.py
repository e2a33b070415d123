"""The sharing settings, checked before anything is stored: the peer server's listen address and port, the price
files get when added, the broker whose index (CIS) lists them, and whether sharing starts again when the wallet
starts. Kept in the vault's settings (``sharing_host``, ``sharing_port``, ``sharing_default_price``,
``sharing_broker``, ``sharing_at_login``).

A bad value raises :class:`~netpay.errors.MalformedMessage` naming the field, and nothing is stored (all values are
checked first, then written in one transaction).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

from netpay.errors import MalformedMessage
from netpay.money import Money
from wallet_app.gui.money_input import parse_money

__all__ = ["MAX_PRICE", "SharingConfig", "load_config", "save_config", "validate_config"]

#: The highest price a file may get (in minor units): €100.00.
MAX_PRICE = 10_000
_DIGITS = re.compile(r"\A[0-9]{1,5}\Z")
_KEYS = {"host": "sharing_host", "port": "sharing_port", "default_price": "sharing_default_price",
         "broker_id": "sharing_broker", "at_login": "sharing_at_login"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SharingConfig:
    """What the sharing settings say. ``port`` 0: a free port chosen once and kept; ``broker_id`` "": the first
    broker the wallet has an account at."""

    host: str = "127.0.0.1"
    port: int = 0
    default_price: int = 5
    broker_id: str = ""
    at_login: bool = True


def load_config(service: Any) -> SharingConfig:
    """The stored settings (defaults for those never set)."""
    d = SharingConfig()
    return SharingConfig(
        host=str(service.get_setting(_KEYS["host"], d.host)),
        port=int(service.get_setting(_KEYS["port"], d.port)),
        default_price=int(service.get_setting(_KEYS["default_price"], d.default_price)),
        broker_id=str(service.get_setting(_KEYS["broker_id"], d.broker_id) or ""),
        at_login=bool(service.get_setting(_KEYS["at_login"], d.at_login)),
    )


def validate_config(host: str, port: str, price: str, currency: str, broker_id: str, at_login: bool,
                    brokers: list[str], callback_port: int) -> SharingConfig:  # fmt: skip
    """Check what the user typed; raise ``MalformedMessage`` (``field`` names it) on the first bad value."""
    host = host.strip()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise MalformedMessage(f"“{host[:60]}” is not an IP address of this computer (for example 127.0.0.1, "
                               "or 0.0.0.0 for every interface)", field="host") from None  # fmt: skip
    if address.is_multicast:
        raise MalformedMessage("the peer server cannot listen on a multicast address", field="host")
    port = port.strip()
    if not _DIGITS.match(port) or not (int(port) == 0 or 1024 <= int(port) <= 65535):
        raise MalformedMessage("the port must be 0 (chosen once and kept) or a number from 1024 to 65535",
                               field="port")  # fmt: skip
    if int(port) == callback_port:
        raise MalformedMessage(f"port {callback_port} is the browser callback's; the peer server needs its own",
                               field="port")  # fmt: skip
    money = parse_money(price, currency)
    if money is None or not 0 < money.amount <= MAX_PRICE:
        limit = Money(MAX_PRICE, currency).format()
        raise MalformedMessage(f"the default price must be an amount above zero and at most {limit}",
                               field="default_price")  # fmt: skip
    if broker_id and broker_id not in brokers:
        raise MalformedMessage("choose a broker you have an account at", field="broker_id")
    return SharingConfig(str(address), int(port), money.amount, broker_id, bool(at_login))


def save_config(service: Any, config: SharingConfig) -> None:
    """Store every setting in one vault transaction (all or none)."""
    with service.vault.tx() as c:
        for attr, key in _KEYS.items():
            c.execute("INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value_json = "
                      "excluded.value_json", (key, json.dumps(getattr(config, attr))))  # fmt: skip
