"""One wallet per user: the first instance listens on a Unix socket; later ones hand over their ``netpay:`` link.

The socket lives in a directory only the user can enter (``$XDG_RUNTIME_DIR/netpay-wallet`` or a 0700 directory in
the wallet's data dir) and the listener checks the peer's user id (``SO_PEERCRED``) where the OS offers it. The
protocol is one line of UTF-8 per connection: the link (at most 4 KiB); the answer is ``ok`` or ``error <reason>``.
No Qt needed, so it is testable headless (Qt's ``QLocalServer`` is the same idea).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from wallet_app.callback.uri import MAX_URI

__all__ = ["InstanceChannel", "default_socket_path", "send_to_running"]

log = logging.getLogger(__name__)


def default_socket_path(data_dir: Path | None = None) -> Path:
    """Where the channel's socket lives for this user."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "netpay-wallet" if runtime else (data_dir or Path.home() / ".netpay-wallet") / "run"
    return base / "instance.sock"


def send_to_running(uri: str, path: Path, timeout: float = 3.0) -> bool:
    """Give ``uri`` to the running wallet. True if one took it; False if none is running."""
    if not hasattr(socket, "AF_UNIX"):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        s.sendall(uri.encode()[:MAX_URI] + b"\n")
        answer = s.recv(256)
    return answer.startswith(b"ok")


class InstanceChannel:
    """The listening side. ``on_uri`` runs on the channel thread for each link received."""

    def __init__(self, path: Path, on_uri: Callable[[str], None]) -> None:
        self.path = Path(path)
        self.on_uri = on_uri
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def acquire(self) -> bool:
        """Become the single instance. False if another live instance already listens (hand over to it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)
        if self.path.exists():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(str(self.path))
                    return False  # somebody answers: we are the second instance
                except (ConnectionRefusedError, FileNotFoundError):
                    self.path.unlink(missing_ok=True)  # stale socket of a dead instance
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        except OSError:
            sock.close()
            return False
        finally:
            os.umask(old)
        sock.listen(8)
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="netpay-instance", daemon=True)
        self._thread.start()
        return True

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        try:
            if not _same_user(conn):
                conn.sendall(b"error not-same-user\n")
                return
            data = b""
            while b"\n" not in data and len(data) <= MAX_URI:
                chunk = conn.recv(1024)
                if not chunk:
                    break
                data += chunk
            line = data.split(b"\n", 1)[0]
            if len(line) > MAX_URI:
                conn.sendall(b"error too-long\n")
                return
            uri = line.decode("utf-8", "replace").strip()
            if not uri:  # a probe from a starting instance, or an empty message
                return
            try:
                self.on_uri(uri)
            except Exception as exc:
                log.warning("netpay link refused: %s", exc)
                conn.sendall(f"error {type(exc).__name__}\n".encode())
                return
            conn.sendall(b"ok\n")
        except OSError:
            return

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self._sock = self._thread = None


def _same_user(conn: socket.socket) -> bool:
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return True  # the socket's 0700 directory already keeps other users out
    creds = conn.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return bool(uid == os.getuid())
