"""Worker processes of a local cluster: started so Ctrl-C reaches only the driver, and never
from a script's unguarded top level (spawned workers re-import the ``__main__`` script)."""

from __future__ import annotations

import ast
import contextlib
import multiprocessing.spawn as spawn
import os
import shlex
import sys
import tempfile
from pathlib import Path


class SweepError(ValueError):
    """The sweep cannot start: bad cells, unreachable scheduler, unusable folder."""


@contextlib.contextmanager
def workers_ignore_sigint():
    """Spawn worker processes that ignore SIGINT from their first instruction.

    Ctrl-C in a terminal signals the whole process group; a worker still importing NumPy
    or JAX would die with a traceback, and a half-started nanny adds more. Workers are
    started through a two-line shell wrapper (``trap '' INT; exec python ...``): an
    ignored signal stays ignored across exec, and Python keeps it so. The driver alone
    handles Ctrl-C and closes the cluster. (The preload does the same for workers that a
    nanny restarts later.)
    """
    if os.name != "posix" or not Path("/bin/sh").exists():
        yield
        return
    exe = spawn.get_executable()
    exe = os.fsdecode(exe)
    with tempfile.TemporaryDirectory(prefix="weightsynth-") as tmp:
        wrapper = Path(tmp) / "python-ignoring-sigint"
        wrapper.write_text(f"#!/bin/sh\ntrap '' INT\nexec {shlex.quote(exe)} \"$@\"\n")
        wrapper.chmod(0o755)
        spawn.set_executable(str(wrapper))
        try:
            yield
        finally:
            spawn.set_executable(exe)


def check_main_guard() -> None:
    """Refuse to start worker processes from a script's unguarded top level.

    Workers are spawned: each starts a fresh Python that re-imports the ``__main__``
    script, so a script that calls :func:`run_sweep` (or :func:`local_cluster`) at its top
    level would run the sweep again in every worker. Caught here, in the driver (by
    reading the script), and in a worker that re-imports it (``__mp_main__``).
    """
    main = sys.modules.get("__main__")
    fix = ('put the sweep under `if __name__ == "__main__":` (workers are spawned and '
           "re-import the script that starts them)")
    if getattr(main, "__name__", None) == "__mp_main__":
        raise SweepError(f"a worker process re-imported the script that starts the sweep: {fix}")
    path = getattr(main, "__file__", None)
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals is not getattr(main, "__dict__", None):
        frame = frame.f_back
    if not path or frame is None or not str(path).endswith(".py"):
        return  # an interactive session, python -c, or no script calls us
    while frame.f_back is not None and frame.f_back.f_globals is main.__dict__:
        frame = frame.f_back  # the script's top-level frame
    if frame.f_code.co_name != "<module>" or _under_main_guard(path, frame.f_lineno):
        return
    raise SweepError(f"{path!r} starts a sweep at its top level (line {frame.f_lineno}): {fix}")


def _under_main_guard(path: str, line: int) -> bool:
    """Whether ``line`` of the script ``path`` lies in an ``if __name__ == "__main__":``."""
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError, ValueError):
        return True  # cannot tell: do not stand in the way
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) \
                and "__main__" in ast.unparse(node.test):
            if node.body[0].lineno <= line <= (node.body[-1].end_lineno or line):
                return True
    return False


