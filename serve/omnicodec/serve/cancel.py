"""Stopping model work that nobody waits for any more.

A request that times out (504) is cancelled where it awaits, but the network it started runs
in a thread (``asyncio.to_thread``), which Python cannot interrupt: a huge stream kept a
replica at full CPU and the next small request waited behind it for seconds. Here every
submodule of a network checks, before it runs, whether the thread's work was called off
(a forward pre-hook reading a thread-local flag) and raises ``Cancelled`` if so: the work
stops within one layer, and the replica is free for the next request.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from torch import nn

T = TypeVar("T")
_local = threading.local()
_HOOKED = "_omnicodec_cancellable"


class Cancelled(Exception):
    """The work was called off (its request timed out or was cancelled)."""


def _check(module: nn.Module, args: Any) -> None:
    stop = getattr(_local, "stop", None)
    if stop is not None and stop():
        raise Cancelled(f"called off before {type(module).__name__}")


def make_cancellable(net: nn.Module) -> nn.Module:
    """Hook every submodule of ``net`` (once; networks shared by several workers are hooked
    once). Outside ``stopping_when`` the hook does nothing but read a thread-local."""
    for m in net.modules():
        if not getattr(m, _HOOKED, False):
            m.register_forward_pre_hook(_check)
            object.__setattr__(m, _HOOKED, True)
    return net


@contextmanager
def stopping_when(stop: Callable[[], bool]) -> Iterator[None]:
    """Within the block, hooked modules run in this thread raise ``Cancelled`` once ``stop()``."""
    previous = getattr(_local, "stop", None)
    _local.stop = stop
    try:
        yield
    finally:
        _local.stop = previous


async def to_thread_cancellable(fn: Callable[..., T], *args: Any) -> T:
    """``asyncio.to_thread(fn, *args)`` whose thread stops at the next hooked module when the
    awaiting task is cancelled (``asyncio.wait_for``'s timeout)."""
    called_off = threading.Event()

    def run() -> T:
        with stopping_when(called_off.is_set):
            return fn(*args)

    try:
        return await asyncio.to_thread(run)
    except asyncio.CancelledError:
        called_off.set()
        raise
