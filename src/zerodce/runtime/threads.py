"""Thread pools of the light runtime, made on first use and forgotten in a forked child.

A forked child has none of its parent's threads: a pool made before the fork would take work there
and never run it. Each :class:`LazyPool` makes its executor on first use and drops it (and its lock)
in a child, which then makes its own.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["LazyPool"]

_POOLS: weakref.WeakSet[LazyPool] = weakref.WeakSet()


class LazyPool:
    """A ``ThreadPoolExecutor`` of ``workers`` threads named ``name``, made on first :meth:`submit`."""

    def __init__(self, name: str, workers: int) -> None:
        self.name, self.workers = name, workers
        self._forget()
        _POOLS.add(self)

    def _forget(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable, *args: object) -> Future:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=self.name)
            pool = self._pool
        return pool.submit(fn, *args)


def _after_fork() -> None:
    for pool in list(_POOLS):
        pool._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
