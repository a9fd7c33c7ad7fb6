"""A cheap protocol for testing the sweep engine (no JAX, no maths): test code, not library.

conftest.py registers it as ``selftest`` and puts this folder on the path of every process
the tests start, so workers and ``weightsynth`` subprocesses import it as
``sweep_protocols:selftest``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def selftest(x: float, seconds: float = 0.0, sleep: float = 0.0, fail: bool = False,
             rows: int = 1, log_dir: str | None = None,
             exit_once: str | None = None) -> list[dict]:
    """A cheap protocol to test and benchmark the sweep engine (no JAX, no maths).

    Burns ``seconds`` of this process's CPU time (a busy loop), sleeps ``sleep`` s, returns
    ``rows`` records ``{"x", "i", "y" = x**2 + i, "cpu_s", "pid"}``. With ``fail`` it raises
    RuntimeError. With ``log_dir`` it first writes one file per call there (to count calls).
    With ``exit_once`` (a marker path) the first call to create the marker kills its own
    process with ``os._exit(1)``, simulating a worker that dies mid-sweep.
    """
    if log_dir is not None:
        Path(log_dir, f"{x}-{os.getpid()}-{time.time_ns()}.call").write_text(str(x))
    if exit_once is not None:
        try:
            os.close(os.open(exit_once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            os._exit(1)
    used = _spin(float(seconds))
    time.sleep(float(sleep))
    if fail:
        raise RuntimeError(f"selftest cell x={x!r} failed on purpose")
    return [{"x": x, "i": i, "y": float(x) ** 2 + i, "cpu_s": used, "pid": os.getpid()}
            for i in range(int(rows))]


def _spin(seconds: float) -> float:
    """Busy-loop until this process has used ``seconds`` of CPU time; return the time used."""
    start = time.process_time()
    acc = 0
    while time.process_time() - start < seconds:
        for k in range(2000):
            acc += k * k
    return time.process_time() - start


