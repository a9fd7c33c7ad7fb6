"""Ctrl-C handling that cannot be lost or garbled.

Python raises KeyboardInterrupt wherever the main thread happens to be. In the middle of an
import or a class definition that can turn into another error (``RuntimeError: Error
calling __set_name__``) or a crash, and inside a garbage-collector callback (JAX runs one
often) it is printed as "Exception ignored" and dropped. So, while :func:`watching` is
active:

* SIGINT is counted, and :func:`check` (called between steps of long runs) raises
  KeyboardInterrupt again if a callback swallowed it; such a swallowed interrupt is not
  reported as "Exception ignored";
* given an ``exit_message`` (the command line does), SIGINT outside :func:`raising`
  blocks prints that one line and ends the process with exit code 130 at once: nothing
  has to be saved there, and files are always written atomically;
* inside :func:`raising` blocks (a sweep's run, where finished cells must be written out
  first) it raises KeyboardInterrupt, for the code to clean up and re-raise;
* inside :func:`deferred` blocks it is only counted, and raised when the block ends.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading

_STATE: dict = {"count": 0, "depth": 0, "raising": 0, "deferred": 0, "exit_message": None}


def _handler(signum, frame):
    _STATE["count"] += 1
    if _STATE["deferred"]:
        return  # acted on by check() when the deferred block ends
    if _STATE["exit_message"] is not None and not _STATE["raising"]:
        os.write(2, (_STATE["exit_message"] + "\n").encode())
        os._exit(130)
    raise KeyboardInterrupt


@contextlib.contextmanager
def watching(exit_message: str | None = None):
    """Count SIGINTs in this block (main thread only; nested blocks share the count)."""
    if threading.current_thread() is not threading.main_thread() \
            or (_STATE["depth"] == 0
                and signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    if _STATE["depth"] == 0:
        _STATE.update(count=0, exit_message=exit_message)
        previous = signal.signal(signal.SIGINT, _handler)
        hook = sys.unraisablehook
        sys.unraisablehook = functools.partial(_quiet_interrupts, hook)
    _STATE["depth"] += 1
    try:
        yield
    finally:
        _STATE["depth"] -= 1
        if _STATE["depth"] == 0:
            signal.signal(signal.SIGINT, previous)
            sys.unraisablehook = hook
            _STATE["exit_message"] = None


@contextlib.contextmanager
def raising():
    """In this block SIGINT raises KeyboardInterrupt, even under an ``exit_message``."""
    _STATE["raising"] += 1
    try:
        yield
    finally:
        _STATE["raising"] -= 1


@contextlib.contextmanager
def deferred():
    """In this block SIGINT is only counted; it raises KeyboardInterrupt when the block ends
    (for steps that must not be cut in the middle, like starting a local cluster)."""
    _STATE["deferred"] += 1
    try:
        yield
    finally:
        _STATE["deferred"] -= 1
    check()


def check() -> None:
    """Raise KeyboardInterrupt if a SIGINT arrived in a :func:`watching` block."""
    if _STATE["count"]:
        raise KeyboardInterrupt


def _quiet_interrupts(hook, unraisable):
    """Drop the report of a KeyboardInterrupt swallowed in a callback (it is counted)."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        hook(unraisable)
