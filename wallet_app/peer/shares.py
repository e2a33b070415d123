"""The files a wallet shares: chosen one by one or as a folder, hashed when added, re-checked when served.

Only files on this list are ever served, looked up by their id (the first 32 hex digits of their SHA-256), never by a
path from the network. Added files must be regular files; a folder adds the regular files inside it whose real path
stays in the folder (symlinks pointing out are skipped). When serving, the file is opened without following a
symlink and must still be the same file (device, inode, size, modification time) that was hashed, else it is refused
as changed. The list is kept in the wallet's encrypted vault (table ``peer_shares``).
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from netpay.errors import MalformedMessage, NotFound
from netpay.money import Money
from wallet_app.peer.vaultdb import PeerVault

__all__ = ["Share", "ShareList"]

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Share:
    """One shared file: where it is, what it is, and its price."""

    item_id: str
    path: str
    title: str
    description: str
    size: int
    sha256: str
    price: int
    currency: str
    device: int
    inode: int
    mtime_ns: int

    @property
    def money(self) -> Money:
        return Money(self.price, self.currency)

    def listing(self) -> dict[str, Any]:
        """The listing the CIS shows."""
        return {"item_id": self.item_id, "title": self.title, "description": self.description, "size": self.size,
                "sha256": self.sha256, "price": self.money.to_json()}  # fmt: skip


def _hash(path: Path) -> tuple[str, os.stat_result]:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise MalformedMessage(f"{path} is not a regular file", field="path")
        h = hashlib.sha256()
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest(), st


class ShareList:
    """The shared files of one wallet, kept in its vault (``peer_shares``, see :mod:`wallet_app.peer.vaultdb`)."""

    def __init__(self, records: PeerVault, currency: str = "EUR") -> None:
        self.records = records
        self.currency = currency
        self._lock = threading.Lock()
        self._shares: dict[str, Share] | None = None  # read from the vault on first use

    def _loaded(self) -> dict[str, Share]:
        if self._shares is None:
            self._shares = {raw["item_id"]: Share(**raw) for raw in self.records.shares()}
        return self._shares

    def forget(self) -> None:
        """Drop what was read from the vault (it locked, or its content changed): the next use reads it again."""
        with self._lock:
            self._shares = None

    def all(self) -> list[Share]:
        with self._lock:
            return sorted(self._loaded().values(), key=lambda s: s.title.lower())

    def get(self, item_id: str) -> Share | None:
        with self._lock:
            return self._loaded().get(item_id)

    def add_file(self, path: Path | str, price: int, title: str = "", description: str = "") -> Share:
        """Share one regular file (a symlink is refused: share its target instead)."""
        if not isinstance(price, int) or price <= 0:
            raise MalformedMessage("the price must be a positive number of cents", field="price")
        given = Path(path)
        if given.is_symlink():
            raise MalformedMessage(f"{given} is a symbolic link; share the file it points to", field="path")
        real = given.resolve(strict=True)
        digest, st = _hash(real)
        share = Share(digest[:32], str(real), (title or real.name)[:200], description[:2000], st.st_size, digest,
                      price, self.currency, st.st_dev, st.st_ino, st.st_mtime_ns)  # fmt: skip
        with self._lock:
            self.records.put_share(asdict(share))
            self._loaded()[share.item_id] = share
        return share

    def add_folder(self, folder: Path | str, price: int) -> list[Share]:
        """Share every regular file in ``folder`` (recursively) that really lies inside it."""
        root = Path(folder).resolve(strict=True)
        added = []
        for dirpath, _dirs, files in os.walk(root):
            for name in sorted(files):
                p = Path(dirpath) / name
                if p.is_symlink() or not p.is_file():
                    continue  # links (also to files inside) are skipped: only real files are shared
                if not p.resolve().is_relative_to(root):
                    continue
                added.append(self.add_file(p, price))
        return added

    def remove(self, item_id: str) -> None:
        with self._lock:
            if item_id not in self._loaded():
                raise NotFound("no such shared file", item_id=item_id)
            self.records.delete_share(item_id)
            self._loaded().pop(item_id, None)

    def clear(self) -> None:
        with self._lock:
            self.records.clear_shares()
            self._loaded().clear()

    def open(self, item_id: str) -> tuple[Share, IO[bytes]]:
        """Open a shared file for serving; refuse anything not shared or changed since it was hashed."""
        share = self.get(item_id)
        if share is None:
            raise NotFound("no such shared file", item_id=item_id)
        try:
            fd = os.open(share.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            raise NotFound("the shared file is gone", item_id=item_id) from None
        f = os.fdopen(fd, "rb")
        st = os.fstat(fd)
        same = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) == (share.device, share.inode, share.size,
                                                                       share.mtime_ns)  # fmt: skip
        if not stat.S_ISREG(st.st_mode) or not same:
            f.close()
            raise NotFound("the shared file changed since it was shared; share it again", item_id=item_id)
        return share, f
