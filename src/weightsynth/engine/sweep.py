"""Running grids of experiment cells on Dask, with resume and fault tolerance.

:func:`run_sweep` sends each pending cell ``protocol(**cell)`` to a Dask cluster as one
task, collects the tidy records as tasks finish (``distributed.as_completed``) and appends
them to the results store (:mod:`weightsynth.store`), one atomically written Parquet file
per batch of finished cells. With no scheduler address it starts a ``LocalCluster``
(:func:`local_cluster`): one spawned worker process per core, one thread each, XLA and
BLAS pinned to one thread. Faults:

* a cell that raises is caught on the worker and goes to the errors table; the sweep goes on;
* a worker that dies has its cells rerun elsewhere by Dask (the scheduler's
  ``allowed-failures`` retries); a cell that keeps killing workers is recorded as failed;
* Ctrl-C writes the cells already finished, cancels the rest and re-raises; a rerun runs
  only the cells that no complete results file holds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .. import _interrupt as interrupt
from .._validation import check_int
from .._version import __version__
from .config import (
    Protocol,
    canonical_json,
    cell_key,
    check_parameters,
    check_values,
    register_protocol,
    resolve_protocol,
    worker_spec,
)
from .processes import SweepError, check_main_guard, workers_ignore_sigint
from .results import (
    BadFile,
    CorruptFileWarning,
    SweepStore,
    finish_run,
    load_errors,
    load_results,
    new_run,
)

__all__ = ["SweepError", "SweepSummary", "load_errors", "load_results", "local_cluster",
           "register_protocol", "run_sweep", "worker_env"]

_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
# Worker preload (module text, run at worker start): Ctrl-C in a terminal signals the whole
# process group; local workers leave it to the driver, which cancels and closes them.
_IGNORE_SIGINT = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"


@dataclass(frozen=True)
class SweepSummary:
    """What a run of :func:`run_sweep` did."""

    out_dir: Path
    protocol: str
    total: int  # distinct cells asked for
    skipped: int  # already in the store before this run
    computed: int  # finished in this run
    failed: int  # raised (or kept killing workers) in this run; see load_errors(out_dir)
    seconds: float
    bad_files: tuple[BadFile, ...] = field(default=())
    #: each distinct failure of this run, "ErrorType: message", with its number of cells
    errors: tuple[tuple[str, int], ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when every cell is in the store."""
        return self.failed == 0 and self.skipped + self.computed == self.total

    def line(self) -> str:
        """One-line human summary."""
        text = (f"sweep {self.protocol!r}: {self.total} cells, {self.computed} computed, "
                f"{self.skipped} already done, {self.failed} failed in {self.seconds:.1f} s")
        if self.failed:
            text += f" (errors in {str(self.out_dir / 'errors')!r})"
        return text

    def error_lines(self) -> list[str]:
        """One line per distinct failure of this run, most frequent first, with its count."""
        return [f"  {k} cell{'s' if k > 1 else ''} failed: {msg}"
                for msg, k in sorted(self.errors, key=lambda e: -e[1])]

    def as_dict(self) -> dict:
        return {"total": self.total, "skipped": self.skipped, "computed": self.computed,
                "failed": self.failed, "seconds": round(self.seconds, 3),
                "bad_files": [str(b) for b in self.bad_files]}


def worker_env() -> dict[str, str]:
    """Environment for worker processes: XLA, OpenMP and BLAS limited to one thread."""
    xla = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in xla:
        xla = f"{xla} {_XLA_FLAGS}".strip()
    return {"XLA_FLAGS": xla, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def local_cluster(workers: int | None = None):
    """A ``LocalCluster`` of ``workers`` spawned processes (default: one per core).

    Workers have one thread each and the :func:`worker_env` environment; they are spawned,
    never forked, so no worker inherits an initialized JAX runtime.
    """
    import dask
    from distributed import LocalCluster

    n = _cpu_count() if workers is None else int(workers)
    if n < 1:
        raise SweepError(f"workers must be >= 1, got {workers!r}")
    check_main_guard()
    cluster = None
    with dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}), \
            interrupt.watching():
        try:
            # Ctrl-C while the workers start takes effect once they are up: a nanny cut
            # off mid-start prints tracebacks, and nothing is lost by waiting
            with workers_ignore_sigint(), interrupt.deferred():
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       env=worker_env(), preload=[_IGNORE_SIGINT],
                                       dashboard_address=":0",
                                       silence_logs=logging.CRITICAL)
            with interrupt.raising():  # while workers run, the cluster must be closed
                yield cluster
        finally:
            if cluster is not None:
                cluster.close()


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int | None, timeout: float):
    from distributed import Client

    if scheduler is None:
        with local_cluster(workers) as cluster, Client(cluster, set_as_default=False) as c:
            yield c
        return
    try:
        client = Client(scheduler, timeout=timeout, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is reported the same
        msg = " ".join(str(exc).split())[:200]
        raise SweepError(f"cannot reach the Dask scheduler at {scheduler!r} within "
                         f"{timeout:g} s: {msg}") from None
    with client:
        yield client


def _driver_x64() -> bool | None:
    """JAX's x64 flag in this process if JAX is imported (workers mirror it), else None."""
    jax = sys.modules.get("jax")
    return None if jax is None else bool(jax.config.jax_enable_x64)


#: a worker drops JAX's compiled kernels before a cell once its memory mappings pass this
#: fraction of the kernel's per-process limit (vm.max_map_count). Every compiled XLA:CPU
#: kernel stays mapped (the feedback solver: about 1,000 mappings per problem shape), and at
#: the limit the next compile fails ("LLVM compilation error: Cannot allocate memory") and
#: kills the worker: the 20-seed general run (docs/experiments.md) reached 30,000 mappings
#: per worker in 10 minutes against a limit of 65,530
MAP_FRACTION = 0.5


def release_compiled_kernels(maps: str = "/proc/self/maps",
                             limit: str = "/proc/sys/vm/max_map_count") -> bool:
    """``jax.clear_caches()`` when this process's memory mappings (lines of ``maps``)
    exceed MAP_FRACTION of the limit in ``limit``; True if it cleared. Kernels compile
    again when next needed (from the persistent compilation cache where one is set). A
    system without these files (not Linux) is left alone."""
    jax = sys.modules.get("jax")
    if jax is None:
        return False
    try:
        cap = int(Path(limit).read_text())
        with open(maps) as fh:
            used = sum(1 for _ in fh)
    except (OSError, ValueError):
        return False
    if used <= MAP_FRACTION * cap:
        return False
    jax.clear_caches()
    return True


def _run_cell(spec, params: dict, x64: bool | None, version: str) -> dict:
    """Run one cell on a worker; never raises for a failing protocol."""
    try:
        release_compiled_kernels()
        if __version__ != version:
            raise RuntimeError(f"worker runs weightsynth {__version__}, driver {version}")
        if x64 is not None:
            import jax

            jax.config.update("jax_enable_x64", x64)
        _, fn = resolve_protocol(spec)
        records = fn(**params)
        if hasattr(records, "to_dict"):  # a DataFrame
            records = records.to_dict("records")
        if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
            raise TypeError(f"protocol returned {type(records).__name__}, expected a list "
                            "of dicts (tidy records)")
        return {"ok": True, "records": [dict(r) for r in records]}
    except Exception as exc:  # noqa: BLE001 - a failing cell is data, not a crash
        return {"ok": False, "error_type": type(exc).__name__, "message": str(exc),
                "traceback": traceback.format_exc()}


def _prepare(protocol, cells: Iterable[Mapping]) -> tuple[str, Protocol, dict[str, dict]]:
    name, fn = resolve_protocol(protocol)
    keyed: dict[str, dict] = {}
    for cell in cells:
        if not isinstance(cell, Mapping):
            raise SweepError(f"each cell must be a dict of parameters, got {cell!r}")
        keyed.setdefault(cell_key(name, cell, __version__), dict(cell))
    if not keyed:
        raise SweepError("empty grid: no cells to run")
    for keys in {frozenset(c) for c in keyed.values()}:
        check_parameters(name, fn, keys)
    check_values(name, fn, keyed.values())
    return name, fn, keyed


class _Batcher:
    """Buffers finished cells and writes them as batch files."""

    def __init__(self, store: SweepStore, protocol: str, batch_size: int, flush_s: float,
                 done: set[str], on_batch: Callable | None):
        self.store, self.protocol, self.done, self.on_batch = store, protocol, done, on_batch
        self.batch_size, self.flush_s = batch_size, flush_s
        self.ok_keys: list[str] = []
        self.rows: list[dict] = []
        self.err_keys: list[str] = []
        self.errors: list[dict] = []
        self.last = time.monotonic()
        self.batches = 0
        self.error_counts: dict[str, int] = {}

    def add(self, key: str, params: dict, out: dict) -> bool:
        """Buffer one finished cell; return True if it succeeded."""
        if out["ok"]:
            if key not in self.done and key not in self.ok_keys:
                self.ok_keys.append(key)
                scalars = {k: v for k, v in params.items()
                           if v is None or isinstance(v, bool | int | float | str)}
                self.rows.extend({**scalars, **r, "cell_key": key} for r in out["records"])
            return True
        first = (out["message"].strip().splitlines() or [""])[0][:300]
        what = f"{out['error_type']}: {first}" if first else out["error_type"]
        self.error_counts[what] = self.error_counts.get(what, 0) + 1
        self.err_keys.append(key)
        self.errors.append({"cell_key": key, "protocol": self.protocol,
                            "params": canonical_json(params), "error_type": out["error_type"],
                            "message": out["message"], "traceback": out["traceback"],
                            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())})
        return False

    def maybe_flush(self) -> None:
        if (len(self.ok_keys) + len(self.err_keys) >= self.batch_size
                or time.monotonic() - self.last >= self.flush_s):
            self.flush()

    def flush(self) -> None:
        n = len(self.ok_keys) + len(self.err_keys)
        if self.ok_keys:
            self.store.write_batch("results", self.ok_keys, self.rows)
            self.done.update(self.ok_keys)
        if self.err_keys:
            self.store.write_batch("errors", self.err_keys, self.errors)
        self.ok_keys, self.rows, self.err_keys, self.errors = [], [], [], []
        self.last = time.monotonic()
        if n:
            self.batches += 1
            if self.on_batch is not None:
                self.on_batch(self.batches, n)


def _progress(enabled: bool, total: int):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("failed {task.fields[failed]}"), TimeElapsedColumn(),
                    TextColumn("left"), TimeRemainingColumn(),
                    console=Console(stderr=True), disable=not enabled)


def _outcome(fut, res) -> dict:
    """The cell's output dict, or a failure record for a task Dask gave up on."""
    if fut.status == "error" and isinstance(res, tuple):  # (type, exc, tb): e.g. KilledWorker
        return _killed(res[1])
    if isinstance(res, BaseException):
        return _killed(res)
    return res


def _killed(exc: BaseException) -> dict:
    return {"ok": False, "error_type": type(exc).__name__,
            "message": " ".join(str(exc).split()) or type(exc).__name__,
            "traceback": "".join(traceback.format_exception(exc))}


class _Feeder:
    """Keeps a window of cells in flight: 4 per worker thread (re-read every 5 s, so
    workers that join later get work), at least 64 and two batches."""

    def __init__(self, client, ac, spec, pending, x64, batch_size: int):
        self.client, self.ac, self.spec, self.x64 = client, ac, spec, x64
        self.version, self.batch_size = __version__, batch_size
        self.queue = iter(pending)
        self.meta: dict[str, tuple[str, dict]] = {}
        self.window, self.refreshed = 0, -float("inf")

    def top_up(self) -> None:
        if time.monotonic() - self.refreshed > 5.0:
            threads = sum(self.client.nthreads().values())
            self.window = max(64, 4 * threads, 2 * self.batch_size)
            self.refreshed = time.monotonic()
        while len(self.meta) < self.window:
            item = next(self.queue, None)
            if item is None:
                return
            key, params = item
            fut = self.client.submit(_run_cell, self.spec, params, self.x64, self.version,
                                     key=f"ws-cell-{key[:16]}-{uuid.uuid4().hex[:8]}",
                                     pure=False)
            self.meta[fut.key] = (key, params)
            self.ac.add(fut)


def _execute(client, spec, pending: list[tuple[str, dict]], batcher: _Batcher, *,
             x64, progress: bool) -> tuple[int, int]:
    """Run ``pending`` cells and store their outcomes; return (computed, failed)."""
    from distributed import as_completed

    ac = as_completed(loop=client.loop, with_results=True, raise_errors=False)
    feeder = _Feeder(client, ac, spec, pending, x64, batcher.batch_size)
    feeder.top_up()
    computed = failed = 0
    with _progress(progress, len(pending)) as bar:
        task = bar.add_task("sweep", total=len(pending), failed=0)
        try:
            for finished in ac.batches():
                for fut, res in finished:
                    key, params = feeder.meta.pop(fut.key)
                    out = _outcome(fut, res)
                    fut.release()
                    if batcher.add(key, params, out):
                        computed += 1
                    else:
                        failed += 1
                    bar.update(task, advance=1, failed=failed)
                    batcher.maybe_flush()
                interrupt.check()
                feeder.top_up()
        except BaseException:
            client.cancel(list(ac.futures))
            batcher.flush()
            raise
    batcher.flush()
    return computed, failed


def run_sweep(protocol: str | Protocol, cells: Iterable[Mapping], out_dir: str | os.PathLike,
              *, scheduler: str | None = None, workers: int | None = None,
              batch_size: int = 64, flush_seconds: float = 30.0, progress: bool = True,
              config: dict | None = None, connect_timeout: float = 10.0,
              on_batch: Callable[[int, int], None] | None = None) -> SweepSummary:
    """Run ``protocol(**cell)`` for every cell on Dask; append the records under ``out_dir``.

    ``protocol`` is a registered name, ``"module:function"`` or a function (shipped to the
    workers by pickling). ``scheduler`` is a Dask scheduler address; None starts a local
    cluster of ``workers`` processes (default: one per core). A batch file is written every
    ``batch_size`` finished cells or ``flush_seconds``; ``on_batch(n_batches, n_cells)``
    runs after each. Cells already in the store are skipped. Workers mirror this process's
    JAX x64 flag. Raises :class:`SweepError` (a ValueError) if the sweep cannot start.
    """
    with interrupt.watching():
        return _run_sweep(protocol, cells, out_dir, scheduler=scheduler, workers=workers,
                          batch_size=batch_size, flush_seconds=flush_seconds,
                          progress=progress, config=config, connect_timeout=connect_timeout,
                          on_batch=on_batch)


def _run_sweep(protocol, cells, out_dir, *, scheduler, workers, batch_size, flush_seconds,
               progress, config, connect_timeout, on_batch) -> SweepSummary:
    t_start = time.monotonic()
    try:
        check_int(batch_size, "batch_size")
    except ValueError as exc:
        raise SweepError(str(exc)) from None
    if scheduler is not None and workers is not None:
        raise SweepError("workers sets the size of the local cluster; with a scheduler "
                         "address, start the workers on the cluster")
    try:
        name, fn, keyed = _prepare(protocol, cells)
    except SweepError:
        raise
    except ValueError as exc:
        raise SweepError(str(exc)) from None
    try:
        store = SweepStore(out_dir)
    except ValueError as exc:
        raise SweepError(str(exc)) from None
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(store.lock())
        except ValueError as exc:
            raise SweepError(str(exc)) from None
        done, bad = store.done_keys()
        manifest_bad = store.read_manifest()[1]
        bad = bad + ([manifest_bad] if manifest_bad else [])
        for b in bad:
            warnings.warn(str(b), CorruptFileWarning, stacklevel=2)
        pending = [(k, p) for k, p in keyed.items() if k not in done]
        run = new_run(name, config if config is not None else {"protocol": name}, len(keyed))
        store.record_run(run)
        computed = failed = 0
        errors: tuple[tuple[str, int], ...] = ()
        if pending:
            spec = worker_spec(protocol, fn)
            batcher = _Batcher(store, name, batch_size, flush_seconds, done, on_batch)
            with _client(scheduler, workers, connect_timeout) as client:
                run["cluster"] = {"scheduler": scheduler or "local",
                                  "threads": sum(client.nthreads().values())}
                with interrupt.raising():
                    computed, failed = _execute(client, spec, pending, batcher,
                                                x64=_driver_x64(), progress=progress)
            errors = tuple(batcher.error_counts.items())
        summary = SweepSummary(Path(out_dir), name, len(keyed), len(keyed) - len(pending),
                               computed, failed, time.monotonic() - t_start, tuple(bad),
                               errors)
        interrupt.check()
        store.record_run(finish_run(run, summary.as_dict()))
        return summary
