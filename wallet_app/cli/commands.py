"""The subcommands of ``netpay-wallet``: each a function of a :class:`Context` returning ``{"text", "json"}``."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from netpay.errors import MalformedMessage, PeerUnavailable
from netpay.money import Money
from wallet_app.cli import codes
from wallet_app.cli.inputs import read_card, read_secret
from wallet_app.paths import data_dir as resolve_data_dir
from wallet_app.services import WalletService
from wallet_app.vault.errors import VaultMissing

__all__ = ["COMMANDS", "Context", "add_parsers"]

Result = dict[str, Any] | tuple[dict[str, Any], int]


class Context:
    """The parsed arguments and the wallet service, opened on first use and closed after the command."""

    def __init__(self, args: argparse.Namespace, key_store: Any = None) -> None:
        self.args = args
        self.key_store = key_store
        self._service: WalletService | None = None

    def service(self) -> WalletService:
        """The wallet service on the data directory, not yet unlocked (takes no lock yet)."""
        if self._service is None:
            self._service = WalletService(resolve_data_dir(self.args.data_dir), key_store=self.key_store)
        return self._service

    def passphrase(self, confirm: bool = False) -> str | None:
        """The vault passphrase when the vault (or, for a new one, the lack of a keyring) needs one."""
        svc = self.service()
        if self.args.passphrase_fd is None and not svc.needs_passphrase():
            return None
        return read_secret(self.args.passphrase_fd, "vault passphrase: ", confirm=confirm)

    def wallet(self) -> WalletService:
        """The unlocked wallet (pending payments finished on the way)."""
        svc = self.service()
        if svc.state == "new":
            raise VaultMissing("there is no wallet in this data directory yet: run `netpay-wallet init`")
        if svc.state == "locked":
            svc.session.acquire()  # refuse before asking a passphrase when a wallet window holds the vault
            svc.unlock(self.passphrase())
        return svc

    def close(self) -> None:
        if self._service is not None:
            self._service.close()


def _money(value: int, currency: str) -> Money:
    if value <= 0:
        raise ValueError("amounts are whole minor units above 0")
    return Money(int(value), currency.upper())


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Money):
        return obj.to_json()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [_jsonable(x) for x in obj]
    return obj


def _broker(ctx: Context, wallet: WalletService) -> str:
    """``--broker`` as given (id or URL), or the only trusted broker."""
    want = getattr(ctx.args, "broker", None)
    brokers = wallet.brokers()
    for b in brokers:
        if want in (b.broker_id, b.url, b.url.rstrip("/")):
            return b.broker_id
    trusted = [b for b in brokers if b.trusted]
    if want is None and len(trusted) == 1:
        return trusted[0].broker_id
    raise ValueError("name the broker with --broker (its id or URL)" if want is None else f"unknown broker {want}")


# ----- commands ---------------------------------------------------------------------------------------------------
def cmd_init(ctx: Context) -> Result:
    svc = ctx.service()
    svc.create(ctx.passphrase(confirm=True))
    return {"text": f"created a wallet in {svc.session.directory}", "json": {"data_dir": str(svc.session.directory)}}


def cmd_unlock(ctx: Context) -> Result:
    wallet = ctx.wallet()
    pending = len(wallet.vault.query("SELECT 1 FROM spends WHERE status = 'pending'"))
    return {"text": f"the vault opens; {pending} payment(s) still pending", "json": {"state": wallet.state,
            "pending": pending}}  # fmt: skip


def cmd_brokers(ctx: Context) -> Result:
    wallet = ctx.wallet()
    if ctx.args.brokers_action == "add":
        info = wallet.add_broker(ctx.args.url)
        if ctx.args.trust:
            if (
                ctx.args.fingerprint
                and ctx.args.fingerprint.replace(" ", "").lower() != info.fingerprint.replace(" ", "").lower()
            ):
                raise MalformedMessage(
                    "the broker's fingerprint is not the one given: not trusted", field="fingerprint"
                )
            wallet.trust_broker(info.broker_id)
            info = dataclasses.replace(info, trusted=True)
        note = "trusted" if info.trusted else "NOT trusted yet (compare the fingerprint, then add it with --trust)"
        return {
            "text": f"{info.name} {info.broker_id}\nfingerprint {info.fingerprint}\n{note}",
            "json": _jsonable(info),
        }
    infos = wallet.brokers()
    lines = [f"{b.broker_id}  {b.url}  {'trusted' if b.trusted else 'untrusted'}  {b.username or '-'}" for b in infos]
    return {"text": "\n".join(lines) or "no brokers", "json": _jsonable(infos)}


def cmd_login(ctx: Context) -> Result:
    wallet = ctx.wallet()
    broker = _broker(ctx, wallet)
    password = read_secret(ctx.args.password_fd, "broker password: ", confirm=ctx.args.register)
    if ctx.args.register:
        wallet.register(broker, ctx.args.username, password)
    else:
        wallet.login(broker, ctx.args.username, password)
    return {"text": f"logged in at {broker} as {ctx.args.username}", "json": {"broker_id": broker,
            "username": ctx.args.username}}  # fmt: skip


def cmd_topup(ctx: Context) -> Result:
    wallet = ctx.wallet()
    broker = _broker(ctx, wallet)
    amount = _money(ctx.args.amount, ctx.args.currency)
    balance = wallet.top_up(broker, amount, read_card(ctx.args.card_fd), secrets.token_hex(16))
    return {"text": f"account balance {balance}", "json": {"balance": balance.to_json()}}


def cmd_buy(ctx: Context) -> Result:
    wallet = ctx.wallet()
    broker = _broker(ctx, wallet)
    if ctx.args.coins <= 0:
        raise ValueError("--coins must be above 0")
    summary = wallet.buy_coins(broker, ctx.args.coins, _money(ctx.args.value, ctx.args.currency))
    return {"text": f"bought {summary.length} coins of {summary.coin_value} (chain {summary.chain_id})",
            "json": _jsonable(summary)}  # fmt: skip


def cmd_balance(ctx: Context) -> Result:
    wallet = ctx.wallet()
    lines = wallet.balance()
    accounts = wallet.accounts()
    text = [f"coins {b.unspent} at {b.broker_id} ({b.pending} pending, {b.chains} chain(s))" for b in lines]
    text += [f"account {a.balance} at {a.broker_name} ({a.username})" for a in accounts]
    accounts_json = [
        {"broker_id": a.broker_id, "username": a.username, "balance": a.balance.to_json()} for a in accounts
    ]
    return {"text": "\n".join(text) or "no coins", "json": {"coins": _jsonable(lines), "accounts": accounts_json}}


def cmd_coins(ctx: Context) -> Result:
    chains = ctx.wallet().list_chains()
    text = [f"{c.chain_id}  {c.unspent}/{c.length} x {c.coin_value}  {c.status}" for c in chains]
    return {"text": "\n".join(text) or "no coins", "json": _jsonable(chains)}


HISTORY_FIELDS = ("at", "kind", "status", "amount", "currency", "vendor_name", "title", "via", "ref", "item_url")


def cmd_history(ctx: Context) -> Result:
    entries = ctx.wallet().activity(ctx.args.limit)
    rows = [{"at": e.at, "kind": e.kind, "status": e.status, "amount": e.amount.amount, "currency": e.amount.currency,
             "vendor_name": e.vendor_name, "title": e.title, "via": e.via, "ref": e.ref, "item_url": e.item_url}
            for e in entries]  # fmt: skip
    if ctx.args.csv:
        out = io.StringIO()
        writer = csv.DictWriter(out, HISTORY_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return {"text": out.getvalue().rstrip("\n"), "json": rows}
    text = [f"{r['at']}  {r['kind']:<8} {r['status']:<9} {r['amount']:>6} {r['currency']}  {r['title'] or r['ref']}"
            for r in rows]  # fmt: skip
    return {"text": "\n".join(text) or "no history", "json": rows}


def cmd_pay(ctx: Context) -> Result:
    from wallet_app.client import ChannelPayer, PayingSession, SpendingRules

    url = ctx.args.url
    if not url.startswith(("http://", "https://")):
        raise ValueError("pay needs an http(s) URL")
    rules = SpendingRules.parse(ctx.args.currency, ctx.args.max_price, ctx.args.host_daily, ctx.args.daily)
    payer: Any = ChannelPayer.find(resolve_data_dir(ctx.args.data_dir))
    if payer is not None:  # a wallet runs on this vault: pay through it (its agent channel), else open the vault
        try:
            payer.spent_today(rules.currency, 0)
        except PeerUnavailable:
            payer = None
    with PayingSession(payer or ctx.wallet(), rules, prepare_ahead=False) as api:  # one call: nothing comes next
        try:
            resp = api.get(url, timeout=30)
        except requests.RequestException as exc:
            raise PeerUnavailable(f"{url} could not be reached: {type(exc).__name__}") from None
    paid = [{"amount": p.amount.to_json(), "payment_id": p.payment_id} for p in api.payments]
    out = {"status": resp.status_code, "paid": paid, "content_type": resp.headers.get("content-type", ""),
           "body": resp.text}  # fmt: skip
    code = codes.STILL_402 if resp.status_code == 402 else codes.OK if resp.ok else codes.REFUSED
    return {"text": resp.text, "json": out}, code


def cmd_allowances(ctx: Context) -> Result:
    wallet = ctx.wallet()
    if ctx.args.revoke:
        wallet.revoke_allowance(ctx.args.revoke)
    items = wallet.allowances()
    text = [f"{a.vendor_name} ({a.vendor_id}): up to {a.max_price} each, {a.spent_today} of {a.daily_budget} today"
            for a in items]  # fmt: skip
    return {"text": "\n".join(text) or "no allowances", "json": _jsonable(items)}


def cmd_return(ctx: Context) -> Result:
    refund = ctx.wallet().return_chain(ctx.args.chain_id)
    return {"text": f"returned {ctx.args.chain_id}: {refund} back on the account", "json": {"refund": refund.to_json()}}


def cmd_backup(ctx: Context) -> Result:
    wallet = ctx.wallet()
    path = Path(ctx.args.path)
    wallet.backup(path, read_secret(ctx.args.backup_passphrase_fd, "backup passphrase: ", confirm=True))
    return {"text": f"backup written to {path}", "json": {"path": str(path)}}


def cmd_restore(ctx: Context) -> Result:
    wallet = ctx.wallet()
    path = Path(ctx.args.path)
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    wallet.restore(path, read_secret(ctx.args.backup_passphrase_fd, "backup passphrase: "))
    return {"text": f"restored from {path}", "json": {"path": str(path)}}


COMMANDS: dict[str, Callable[[Context], Result]] = {
    "init": cmd_init,
    "unlock": cmd_unlock,
    "brokers": cmd_brokers,
    "login": cmd_login,
    "topup": cmd_topup,
    "buy": cmd_buy,
    "balance": cmd_balance,
    "coins": cmd_coins,
    "history": cmd_history,
    "pay": cmd_pay,
    "allowances": cmd_allowances,
    "return": cmd_return,
    "backup": cmd_backup,
    "restore": cmd_restore,
}


def add_parsers(subparsers: Any) -> None:
    """Every subcommand's parser; each also takes ``--json`` after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print machine-readable JSON")

    class _Sub:
        def add_parser(self, name: str, **kw: Any) -> argparse.ArgumentParser:
            return subparsers.add_parser(name, parents=[common], **kw)  # type: ignore[no-any-return]

    sub = _Sub()
    sub.add_parser("init", help="create a new vault")
    sub.add_parser("unlock", help="check the vault opens; finish pending payments")
    p = sub.add_parser("brokers", help="list brokers, or add one")
    bs = p.add_subparsers(dest="brokers_action")
    a = bs.add_parser("add", help="add a broker (shows its fingerprint)")
    a.add_argument("url")
    a.add_argument("--trust", action="store_true", help="trust it now")
    a.add_argument("--fingerprint", help="trust only if the broker's fingerprint is this one")
    bs.add_parser("list")
    p = sub.add_parser("login", help="log in at a broker (or --register a new account)")
    p.add_argument("--broker")
    p.add_argument("--username", required=True)
    p.add_argument("--password-fd", type=int, default=None, metavar="FD")
    p.add_argument("--register", action="store_true")
    p = sub.add_parser("topup", help="add money to the broker account from a card")
    p.add_argument("amount", type=int, help="minor units")
    p.add_argument("--currency", default="EUR")
    p.add_argument("--broker")
    p.add_argument("--card-fd", type=int, default=None, metavar="FD", help="card as one line of JSON from this FD")
    p = sub.add_parser("buy", help="buy a chain of coins, charged to the broker account")
    p.add_argument("--broker")
    p.add_argument("--coins", type=int, required=True)
    p.add_argument("--value", type=int, default=1, help="coin value in minor units")
    p.add_argument("--currency", default="EUR")
    sub.add_parser("balance", help="coins and account balances")
    sub.add_parser("coins", help="every chain of coins")
    p = sub.add_parser("history", help="payments, purchases and refunds, newest first")
    p.add_argument("--csv", action="store_true")
    p.add_argument("--limit", type=int, default=200)
    p = sub.add_parser("pay", help="fetch a URL, paying its 402 challenge under the spending rules")
    p.add_argument("url")
    p.add_argument("--currency", default="EUR")
    p.add_argument("--max-price", type=int, default=10, help="most to pay for this request (minor units)")
    p.add_argument("--host-daily", type=int, default=None, help="most to pay this host today, counting earlier runs")
    p.add_argument("--daily", type=int, default=None, help="most to pay programs today, counting earlier runs")
    p = sub.add_parser("allowances", help="list (or --revoke) the shops allowed to charge without asking")
    p.add_argument("--revoke", metavar="VENDOR_ID")
    p = sub.add_parser("return", help="hand a chain back to its broker for a refund")
    p.add_argument("chain_id")
    for name in ("backup", "restore"):
        p = sub.add_parser(name, help=f"{name} the whole vault (a file encrypted with a backup passphrase)")
        p.add_argument("path")
        p.add_argument("--backup-passphrase-fd", type=int, default=None, metavar="FD")
