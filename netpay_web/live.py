"""Run an ASGI app with uvicorn on a loopback port in a background thread (tests, benchmarks, the demo)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

import uvicorn

__all__ = ["LiveServer", "free_port", "free_ports"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS may hand the same one out again at the next call)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` different free ports: every socket stays bound until all are chosen, so no two calls of
    :func:`free_port` in a row can return the same port (the demo's tour once got one port for broker and shop)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            s = stack.enter_context(socket.socket())
            s.bind((host, 0))
            ports.append(int(s.getsockname()[1]))
        return ports


#: How long an idle keep-alive connection stays open (uvicorn's default is 5 s). A client that reuses a pooled
#: connection just as the server closes it gets ``RemoteDisconnected`` for a request the server never read; tests pause
#: between requests for seconds (a slow machine, a long model run), so the servers here keep idle connections long.
KEEP_ALIVE_S = 600


class LiveServer:
    """A real uvicorn server on ``host:port`` in a daemon thread. ``url`` is its base URL. ``server_class``: a
    subclass of ``uvicorn.Server`` to run instead (the wallet's peer server uses one)."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int | None = None,
        server_class: type[uvicorn.Server] = uvicorn.Server,
        **config: Any,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        config.setdefault("timeout_keep_alive", KEEP_ALIVE_S)
        cfg = uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan="on", **config)
        self.server = server_class(cfg)
        self._thread = threading.Thread(target=self.server.run, name=f"uvicorn:{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
