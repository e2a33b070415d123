"""Compatibility shim: hypothesis-jsonschema 0.23.1 (used by schemathesis 3.x) calls ``many.more()``, which
Hypothesis 6.170 replaced by a ``with many(...) as elements: for _ in elements:`` protocol. Without this every
object schema fails with ``AttributeError: 'many' object has no attribute 'more'``.

:func:`install` gives hypothesis-jsonschema (only it) an adapter with the old ``more()`` / ``reject()`` API on top of
the new class; Hypothesis itself is untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

from hypothesis.internal.conjecture import utils as cu

__all__ = ["install"]


class _OldStyleMany:
    """``many`` with the pre-6.170 ``while elements.more(): ...`` interface."""

    def __init__(self, data: Any, min_size: int, max_size: float, average_size: float, **kw: Any) -> None:
        self._many = cu.many(data, min_size=min_size, max_size=max_size, average_size=average_size, **kw)
        self._many.__enter__()
        self._iter: Iterator[None] = iter(self._many)
        self._open = True

    def more(self) -> bool:
        if not self._open:
            return False
        try:
            next(self._iter)
            return True
        except StopIteration:
            self._open = False
            self._many.__exit__(None, None, None)
            return False

    def reject(self, why: str | None = None) -> None:
        self._many.reject(why)


class _CuProxy(ModuleType):
    def __getattr__(self, name: str) -> Any:
        return _OldStyleMany if name == "many" else getattr(cu, name)


def install() -> None:
    """Patch hypothesis-jsonschema's view of ``conjecture.utils`` if it needs the old API (idempotent)."""
    from hypothesis_jsonschema import _from_schema

    if hasattr(cu.many, "more") or isinstance(_from_schema.cu, _CuProxy):
        return
    _from_schema.cu = _CuProxy("hypothesis_cu_compat")
