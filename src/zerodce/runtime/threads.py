"""Thread pools of the light runtime, made on first use and forgotten in a forked child, and the
BLAS thread limit of the work that runs beside onnxruntime.

A forked child has none of its parent's threads: a pool made before the fork would take work there
and never run it. Each :class:`LazyPool` makes its executor on first use and drops it (and its lock)
in a child, which then makes its own.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

__all__ = ["LazyPool", "one_blas_thread"]

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


class _BlasLimit:
    """OpenBLAS (numpy's BLAS) held to one thread while any caller is inside :func:`one_blas_thread`.

    The limit is process-wide in OpenBLAS (with its own threads, as numpy's wheels build it), so
    callers are counted: the first in sets it, the last out restores what was there. Without
    threadpoolctl (or without a BLAS it knows) it does nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._controller: object | None = None
        self._restore: object | None = None

    def enter(self) -> None:
        with self._lock:
            self._inside += 1
            if self._inside > 1:
                return
            if self._controller is None:
                try:
                    from threadpoolctl import ThreadpoolController
                except ImportError:  # an install without it: BLAS keeps its threads
                    self._controller = False
                else:  # made once: it scans the loaded libraries (about 30 ms)
                    self._controller = ThreadpoolController()
            if self._controller:
                self._release()
                self._restore = self._controller.limit(limits=1, user_api="blas")
                # Control handed back at once: this thread (a pool's, alive after) would otherwise
                # keep it, and the restore by another thread, last out, be silently ignored.
                self._release()

    def exit(self) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0 and self._restore is not None:
                self._release()
                self._restore.restore_original_limits()
                self._restore = None
                self._release()

    def _release(self) -> None:
        """Let this thread set OpenBLAS's limit: threadpoolctl 3.8 lets only one thread (the first
        to set it) change a process-wide pool's size and silently ignores the others."""
        for lib in self._controller.select(user_api="blas").lib_controllers:
            if hasattr(lib, "clear_controlling_thread"):
                lib.clear_controlling_thread()


_BLAS = _BlasLimit()


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with numpy's BLAS on one thread.

    For numpy work in a thread beside onnxruntime (the noise estimate's Gram matrices): OpenBLAS's
    own threads spin while they wait and took the cores from onnxruntime's. Measured on 2 cores
    (Intel Xeon), the full model at 1200x900 with its defaults against plain: 1.30x with
    OpenBLAS's threads, 1.20x with one; the fast model at 12 MP: 3.2x against 2.9x.
    """
    _BLAS.enter()
    try:
        yield
    finally:
        _BLAS.exit()


def _after_fork() -> None:
    for pool in list(_POOLS):
        pool._forget()
    global _BLAS
    held, _BLAS = _BLAS, _BlasLimit()  # the parent's lock may have been held by a thread the child does not have
    # Forked inside the block (and not while a thread was entering or leaving it, which may hold
    # threadpoolctl's lock too): none of the threads inside is here to restore the limit.
    if held._lock.acquire(blocking=False) and held._restore is not None:
        _BLAS._controller, _BLAS._restore, _BLAS._inside = held._controller, held._restore, 1
        _BLAS.exit()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
