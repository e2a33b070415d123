"""The running wallet's agent channel: programs of the same user pay through the wallet that has the vault open.

The wallet listens on a Unix socket ``<data dir>/run/agent.sock`` (in a 0700 directory, the socket 0600, the peer's
user id checked with ``SO_PEERCRED``) and writes a fresh random token to ``<data dir>/run/agent.token`` (0600) each
time it starts; a request must carry it. This is not the browser callback (pages never reach it) and not the
single-instance channel (which only hands over ``netpay:`` links and always prompts).

Protocol: one connection per request, one line of JSON each way (at most 64 KiB):
``{"token", "op": "pay", "offer": {quote, vendor_certificate}, "origin", "price": Money}`` →
``{"ok": true, "access_token", "payment_id", "amount": Money}``; ``{"token", "op": "spent_today", "currency",
"since"}`` → ``{"ok": true, "spent": {origin: minor units}}``; a refusal is ``{"ok": false, "error": {code, message,
details}}`` with the :mod:`netpay.errors` code. The wallet pays exactly as for a page (every check, its journal, its
history, ``via = "api"``) and refuses a quote whose price is not the one the client's rules reserved.

A payment inside the program's own request (``NetPay-Payment``, one HTTP request to the shop) takes two calls:
``{"token", "op": "prepare", "offer", "origin", "price"}`` → ``{"ok": true, "payment_id", "payment"}`` (the payment
JSON, journalled by the wallet, to be sent as it is), then ``{"token", "op": "finish", "payment_id", "answer",
"error"}`` with the shop's answer (``{"receipt": ...}`` from ``NetPay-Receipt``, or null) and its refusal (the error
body's ``{code, message, details}``, or null) → the same answer as ``pay``; a refusal the shop signed (the coins came
back) also says ``"released": true``. The wallet verifies whatever the program hands it (the receipt's and the
refusal's signatures); with neither it sends the journalled payment to the payment URL itself. One prepared payment
at a time (a chain's coins leave in order): another ``prepare`` waits for its ``finish``, and a payment not finished
within :data:`PREPARED_HOLD_S` is finished by the wallet itself the same way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netpay.encoding import parse_json
from netpay.errors import (
    AuthenticationRequired,
    Forbidden,
    MalformedMessage,
    NetPayError,
    PeerUnavailable,
    error_from_body,
)
from netpay.money import Money
from wallet_app.clients.http import EncodedJson

__all__ = ["AgentChannel", "ChannelPayer", "ChannelPrepared", "PaidInfo", "agent_paths", "spent_today"]

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
PREPARED_HOLD_S = 30.0  # a prepared payment the program does not finish by then is finished by the wallet


def agent_paths(data_dir: Path) -> tuple[Path, Path]:
    """The socket and the token file of the wallet on ``data_dir``."""
    run = Path(data_dir) / "run"
    return run / "agent.sock", run / "agent.token"


@dataclass(frozen=True, slots=True)
class ChannelPrepared:
    """A payment the running wallet journalled for the program to send inside its own request."""

    payment_id: str
    wire: EncodedJson  # the exact bytes to send (``wire.encoded``)


@dataclass(frozen=True, slots=True)
class PaidInfo:
    """What a program learns of a payment: the access token, the payment id and the amount."""

    access_token: str
    payment_id: str
    amount: Money


def spent_today(service: Any, currency: str, since: int) -> dict[str, int]:
    """What programs paid since ``since`` per origin, from the wallet's history (pending counted, released not)."""
    rows = service.vault.query(
        "SELECT origin, SUM(amount) FROM spends WHERE via = 'api' AND currency = ? AND created_at >= ? "
        "AND status != 'released' GROUP BY origin",
        (currency, since),
    )
    return {str(origin or ""): int(amount or 0) for origin, amount in rows}


def pay_offer(service: Any, offer: Any, origin: str, price: Money) -> PaidInfo:
    """Check and pay a 402 challenge's offer with the wallet service, at exactly ``price``."""
    if not isinstance(offer, dict):
        raise MalformedMessage("the offer must be an object", field="offer")
    checked = service.check_quote(offer.get("quote"), offer.get("vendor_certificate"), origin)
    if checked.price != price:
        raise MalformedMessage(f"the quote's price is {checked.price}, not {price}", field="price")
    paid = service.pay_quote(checked.quote, checked.vendor_certificate, origin, "api")
    return PaidInfo(paid.access_token, paid.payment_id, paid.amount)


class AgentChannel:
    """The listening side, run by the wallet while it has the vault open."""

    def __init__(self, service: Any, data_dir: Path) -> None:
        self.service = service
        self.sock_path, self.token_path = agent_paths(data_dir)
        self._token = secrets.token_urlsafe(32)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # One payment at a time, from its journal to its answer: held from a prepare to its finish (released by
        # whichever thread finishes it, so a plain Lock, not an RLock).
        self._pay_lock = threading.Lock()
        self._prepared: dict[str, tuple[Any, threading.Timer]] = {}
        self._prepared_lock = threading.Lock()
        self.hold_s = PREPARED_HOLD_S

    def start(self) -> AgentChannel:
        run = self.sock_path.parent
        run.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(run, 0o700)
        self.sock_path.unlink(missing_ok=True)  # the vault's process lock says no other wallet runs on this dir
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.sock_path))
            tmp = self.token_path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self._token)
            os.replace(tmp, self.token_path)
        except BaseException:
            sock.close()
            raise
        finally:
            os.umask(old)
        sock.listen(16)
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="netpay-agent-channel", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), name="netpay-agent-request", daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(60.0)
            try:
                answer = self._answer(conn)
            except NetPayError as exc:
                answer = {"ok": False, **exc.to_body()}
            except Exception as exc:  # never a traceback to the client
                log.exception("agent channel request failed")
                answer = {"ok": False, **PeerUnavailable(f"the wallet failed: {type(exc).__name__}").to_body()}
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(answer).encode() + b"\n")

    def _answer(self, conn: socket.socket) -> dict[str, Any]:
        if not _same_user(conn):
            raise Forbidden("another user's process")
        data = _read_line(conn)
        try:
            req = json.loads(data)
        except ValueError:
            raise MalformedMessage("the request is not JSON", field="body") from None
        if not isinstance(req, dict) or not isinstance(req.get("token"), str):
            raise MalformedMessage("the request needs the token", field="token")
        if not secrets.compare_digest(req["token"].encode(), self._token.encode()):
            raise AuthenticationRequired("wrong agent token")
        op = req.get("op")
        if op == "pay":
            price = Money.from_json(req.get("price"), "price")
            with self._pay_lock:
                paid = pay_offer(self.service, req.get("offer"), str(req.get("origin", "")), price)
            return {"ok": True, "access_token": paid.access_token, "payment_id": paid.payment_id,
                    "amount": paid.amount.to_json()}  # fmt: skip
        if op == "prepare":
            return self._prepare(req)
        if op == "finish":
            return self._finish(req)
        if op == "spent_today":
            return {"ok": True, "spent": spent_today(self.service, str(req.get("currency")), int(req.get("since", 0)))}
        raise MalformedMessage(f"unknown op {op!r}", field="op")

    def _prepare(self, req: dict[str, Any]) -> dict[str, Any]:
        price = Money.from_json(req.get("price"), "price")
        offer = req.get("offer")
        if not isinstance(offer, dict):
            raise MalformedMessage("the offer must be an object", field="offer")
        if not self._pay_lock.acquire(timeout=self.hold_s + 5):
            raise PeerUnavailable("the wallet is busy finishing another payment")
        try:
            prepared = self.service.prepare_payment(
                offer.get("quote"), offer.get("vendor_certificate"), str(req.get("origin", "")), "api", price
            )
        except BaseException:
            self._pay_lock.release()
            raise
        timer = threading.Timer(self.hold_s, self._abandoned, args=(prepared.payment_id,))
        timer.daemon = True
        with self._prepared_lock:
            self._prepared[prepared.payment_id] = (prepared, timer)
        timer.start()
        return {"ok": True, "payment_id": prepared.payment_id, "payment": prepared.wire.encoded.decode()}

    def _take(self, payment_id: Any) -> Any:
        """The prepared payment of that id, taken (only one finisher gets it), or None."""
        with self._prepared_lock:
            entry = self._prepared.pop(payment_id, None) if isinstance(payment_id, str) else None
        if entry is None:
            return None
        entry[1].cancel()
        return entry[0]

    def _finish(self, req: dict[str, Any]) -> dict[str, Any]:
        prepared = self._take(req.get("payment_id"))
        if prepared is None:
            raise MalformedMessage("no prepared payment of that id waits to be finished", field="payment_id")
        try:
            error = req.get("error")
            refusal = error_from_body({"error": error}, 400) if isinstance(error, dict) else None
            try:
                paid = self.service.finish_payment(prepared, req.get("answer"), refusal)
            except NetPayError as exc:
                if getattr(exc, "released", False):
                    return {"ok": False, "released": True, **exc.to_body()}
                raise
        finally:
            self._pay_lock.release()
        return {"ok": True, "access_token": paid.access_token, "payment_id": paid.payment_id,
                "amount": paid.amount.to_json()}  # fmt: skip

    def _abandoned(self, payment_id: str) -> None:
        """A prepared payment the program never finished: the wallet sends it to the payment URL itself (the shop
        answers with its receipt if the program's request reached it, else takes it now or refuses it)."""
        prepared = self._take(payment_id)
        if prepared is None:
            return
        try:
            self.service.finish_payment(prepared, None, None)
        except NetPayError as exc:  # pending (recovery finishes it), or the shop's refusal: in the history
            log.warning("an abandoned prepared payment %s ended with %s", payment_id, exc.code)
        except Exception:
            log.exception("finishing an abandoned prepared payment failed")
        finally:
            self._pay_lock.release()

    def close(self) -> None:
        with self._prepared_lock:
            left = list(self._prepared)
        for payment_id in left:  # the wallet stops: finish what a program left prepared now
            self._abandoned(payment_id)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
            self.sock_path.unlink(missing_ok=True)
            self.token_path.unlink(missing_ok=True)
        self._sock = self._thread = None


class ChannelPayer:
    """The client side: pays through the running wallet. :meth:`find` returns None when no wallet answers."""

    def __init__(self, sock_path: Path, token: str, timeout: float = 60.0) -> None:
        self.sock_path, self.token, self.timeout = sock_path, token, timeout
        self._lock = threading.RLock()  # one payment at a time from this program, from prepare to finish

    @classmethod
    def find(cls, data_dir: Path) -> ChannelPayer | None:
        sock_path, token_path = agent_paths(data_dir)
        try:
            token = token_path.read_text().strip()
        except OSError:
            return None
        if not sock_path.exists():
            return None
        return cls(sock_path, token)

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(self.timeout)
            try:
                s.connect(str(self.sock_path))
                s.sendall(json.dumps({"token": self.token, **request}).encode() + b"\n")
                answer = json.loads(_read_line(s))
            except (OSError, ValueError) as exc:
                raise PeerUnavailable(f"the running wallet did not answer: {type(exc).__name__}") from None
        if not isinstance(answer, dict) or not answer.get("ok"):
            exc = error_from_body(answer if isinstance(answer, dict) else {}, 400)
            if isinstance(answer, dict) and answer.get("released") is True:
                exc.released = True  # type: ignore[attr-defined]  # the shop's signed refusal: nothing recorded
            raise exc
        return answer

    def pay(self, offer: dict[str, Any], origin: str, price: Money) -> PaidInfo:
        a = self.call({"op": "pay", "offer": offer, "origin": origin, "price": price.to_json()})
        return PaidInfo(str(a["access_token"]), str(a["payment_id"]), Money.from_json(a["amount"], "amount"))

    def prepare(self, offer: dict[str, Any], origin: str, price: Money) -> ChannelPrepared:
        """Have the running wallet check the offer (at exactly ``price``) and journal its payment, to be sent
        inside the program's request; hold :attr:`lock` from here to :meth:`finish`."""
        a = self.call({"op": "prepare", "offer": offer, "origin": origin, "price": price.to_json()})
        raw = a.get("payment")
        if not isinstance(raw, str) or not isinstance(a.get("payment_id"), str):
            raise PeerUnavailable("the running wallet answered a prepare without a payment")
        encoded = raw.encode()
        return ChannelPrepared(a["payment_id"], EncodedJson.of(parse_json(encoded), encoded))

    def finish(self, prepared: ChannelPrepared, answer: Any, error: NetPayError | None) -> PaidInfo:
        """Hand the shop's answer (and refusal) to the wallet, which settles, releases or sends the payment."""
        body = error.to_body()["error"] if error is not None else None
        a = self.call({"op": "finish", "payment_id": prepared.payment_id, "answer": answer, "error": body})
        return PaidInfo(str(a["access_token"]), str(a["payment_id"]), Money.from_json(a["amount"], "amount"))

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def spent_today(self, currency: str, since: int) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.call({"op": "spent_today", "currency": currency, "since": since})[
            "spent"].items()}  # fmt: skip


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data:
        if len(data) > MAX_LINE:
            raise MalformedMessage("the request is too long", field="body")
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0]


def _same_user(conn: socket.socket) -> bool:
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return True  # the 0700 directory and the token keep other users out
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i")))
    return bool(uid == os.getuid())
