"""Per-origin request limits: a token bucket for purchase requests and a cool-down after repeated declines."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from netpay.errors import RateLimited

__all__ = ["Limits", "OriginLimiter"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Tunable limits (defaults suit a person clicking Buy)."""

    burst: int = 10  # purchase requests an origin may make at once
    per_second: float = 1.0  # refill rate of that bucket
    max_open_prompts: int = 5  # across all origins
    declines_before_cooldown: int = 3  # declines within decline_window ...
    decline_window_s: float = 600.0
    cooldown_s: float = 300.0  # ... silence the origin for this long
    prompt_timeout_s: float = 300.0  # a prompt nobody answers expires


@dataclass(slots=True)
class _OriginState:
    tokens: float
    updated: float
    declines: list[float] = field(default_factory=list)
    cooled_until: float = 0.0


class OriginLimiter:
    """Thread-safe limiter keyed by origin. :meth:`check` raises :class:`RateLimited` with a ``reason``."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._state: dict[str, _OriginState] = {}
        self._lock = threading.Lock()

    def _get(self, origin: str, now: float) -> _OriginState:
        st = self._state.get(origin)
        if st is None:
            st = self._state[origin] = _OriginState(float(self.limits.burst), now)
        st.tokens = min(float(self.limits.burst), st.tokens + (now - st.updated) * self.limits.per_second)
        st.updated = now
        return st

    def check_cooldown(self, origin: str) -> None:
        """Refuse an origin that is cooling down after repeated declines."""
        now = self._clock()
        with self._lock:
            st = self._get(origin, now)
            if st.cooled_until > now:
                raise RateLimited(
                    "this site was declined repeatedly; try again later",
                    reason="cooldown",
                    retry_after=int(st.cooled_until - now) + 1,
                )

    def take(self, origin: str) -> None:
        """Spend one request token of ``origin`` or raise :class:`RateLimited`."""
        now = self._clock()
        with self._lock:
            st = self._get(origin, now)
            if st.tokens < 1.0:
                raise RateLimited("too many purchase requests from this site", reason="rate", retry_after=1)
            st.tokens -= 1.0

    def record_decline(self, origin: str) -> None:
        """Count a decline; enough of them within the window start a cool-down."""
        now = self._clock()
        with self._lock:
            st = self._get(origin, now)
            st.declines = [t for t in st.declines if now - t < self.limits.decline_window_s] + [now]
            if len(st.declines) >= self.limits.declines_before_cooldown:
                st.cooled_until = now + self.limits.cooldown_s
                st.declines.clear()
