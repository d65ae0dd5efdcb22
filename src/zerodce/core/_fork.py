"""What a forked child must not inherit: held locks, and numba's GNU OpenMP threads.

A forked child has only the thread that forked: a lock another thread held at that moment would stay
held in the child for ever, and its next enhancement would wait on it (seen: a child forked while
the parent's other thread was in a numba kernel hung at its first kernel launch). And GNU OpenMP
cannot run in a forked child: once numba's parallel kernels have run on it (its default threading
layer on Linux), a child's first kernel launch is terminated ("fork() called from a process already
using GNU OpenMP"), which killed every ``multiprocessing`` worker (fork start method) that enhanced
after its parent had. Such a child runs the numpy code instead, with the same results.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref

__all__ = ["ForkSafeLock", "numba_usable"]

log = logging.getLogger("zerodce")
_forked_from_gnu_omp = False
_warned = False

_LOCKS: weakref.WeakSet[ForkSafeLock] = weakref.WeakSet()


class ForkSafeLock:
    """A ``threading.Lock`` (as a context manager) replaced by a new, free one in a forked child."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        _LOCKS.add(self)

    def __enter__(self) -> ForkSafeLock:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()


def numba_usable(installed: bool) -> bool:
    """Whether numba's parallel kernels may run in this process (``installed``: numba is): not in a
    child forked after its parent ran them on GNU OpenMP. Logs once when they may not."""
    global _warned
    if installed and _forked_from_gnu_omp and not _warned:
        _warned = True
        log.warning(
            "zerodce: this process was forked after numba's GNU OpenMP threads had started, which cannot "
            "run here; the numpy code runs instead (the same results, slower). For numba's speed in "
            "forked workers set NUMBA_THREADING_LAYER=workqueue, or start them with 'spawn'."
        )
    return installed and not _forked_from_gnu_omp


def _after_fork() -> None:
    for lock in list(_LOCKS):
        lock._lock = threading.Lock()
    global _forked_from_gnu_omp
    par = sys.modules.get("numba.np.ufunc.parallel")
    if par is not None and getattr(par, "_is_initialized", False) and getattr(par, "_threading_layer", "") == "omp":
        omp = sys.modules.get("numba.np.ufunc.omppool")
        _forked_from_gnu_omp = _forked_from_gnu_omp or getattr(omp, "openmp_vendor", "GNU") == "GNU"


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
