"""The whole study: run every protocol, decide the claims, write table, figures and report.

The grid runs on the Dask sweep engine (:func:`run_engine`; a local cluster by default, or
an existing cluster by address): each protocol's cells go to the engine's Parquet dataset
``out/sweep/<protocol>/``, so a rerun with the same ``out`` skips finished cells. The tidy
table is then rebuilt from that dataset. :func:`run_all` runs the same cells in this
process, in order (for debugging and tests).

Outputs under ``out``: ``results.parquet`` (the tidy table), ``claims.csv``, one PNG and one
SVG per figure, and ``report.html``. Every file is written to a temporary name and renamed
(:func:`weightsynth.formats.program_file.atomic_write_bytes`), so an interrupted run leaves no
half-written file under a final name.
"""

from __future__ import annotations

import io
import os
import platform
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from .._version import __version__
from ..engine.config import cell_key
from ..engine.results import CorruptFileWarning
from ..engine.sweep import load_errors, load_results, local_cluster, run_sweep
from ..formats.program_file import atomic_write_bytes
from . import maps_report, plots
from .claims import decide_claims
from .config import BASE_METHODS, StudyConfig
from .protocols import digits_examples, weight_snapshots
from .report import build_report
from .runner import expand_grid, run_cells

SORT_KEYS = ["protocol", "method", "split", "n", "load", "noise", "beta", "t1", "seed", "t"]
#: Cell parameters the engine copies into every row; constant settings of the config
#: (in the report's parameter table), dropped so both runners give the same table.
ENGINE_COLUMNS = {"cell_key", "base_seed", "samples_per_exemplar",
                  "test_samples_per_exemplar", "amplitude", "n_times", "pad_K", "nodes",
                  "max_iter", "size", "with_confusion", "quick", "tune"}


def tidy(frames) -> pd.DataFrame:
    """One table from per-protocol frames: engine-only columns dropped, rows sorted by
    :data:`SORT_KEYS`, columns in a fixed order (so the same seed gives the same table)."""
    frames = [f.drop(columns=[c for c in ENGINE_COLUMNS if c in f]) for f in frames
              if len(f)]
    if not frames:
        return pd.DataFrame(columns=SORT_KEYS)
    df = pd.concat(frames, ignore_index=True)
    for col in ("converged",):  # None where not defined: keep a float column (nan/0/1)
        if col in df:
            df[col] = pd.to_numeric(df[col].astype("float64"), errors="coerce")
    lead = [c for c in [*SORT_KEYS, "K", "L", "solver"] if c in df]
    df = df[lead + sorted(set(df.columns) - set(lead))]
    keys = SORT_KEYS + [k for k in ("task", "L") if k in df]  # maps: one row per task, L
    return df.sort_values(keys, kind="stable", ignore_index=True)


def run_all(config: StudyConfig, progress: bool = True) -> pd.DataFrame:
    """Run every protocol's cells in this process, in order; the tidy table."""
    return tidy([run_cells(p, cells, progress) for p, cells in expand_grid(config).items()])


def run_engine(config: StudyConfig, out, *, scheduler: str | None = None,
               workers: int | None = None, progress: bool = True,
               connect_timeout: float = 10.0) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """Run the grid on the Dask sweep engine, one dataset per protocol under ``out/sweep``.

    ``scheduler``: an existing cluster's address; otherwise one ``LocalCluster`` of
    ``workers`` processes (default: one per core) serves every protocol. Returns the tidy
    table of the cells of this grid (a dataset may hold others from earlier runs), the
    failed cells (protocol, params, error_type, message, traceback) and the summaries.
    """
    grids = expand_grid(config)
    root = Path(out) / "sweep"
    manifest = {"study": {k: v for k, v in asdict(config).items()}}
    frames, errors, summaries = [], [], []
    ctx = local_cluster(workers) if scheduler is None else nullcontext()
    with ctx as cluster, warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptFileWarning)
        address = scheduler if scheduler is not None else cluster.scheduler_address
        for name, cells in grids.items():
            summaries.append(run_sweep(name, cells, root / name, scheduler=address,
                                       progress=progress, config=manifest,
                                       connect_timeout=connect_timeout))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptFileWarning)
        for name, cells in grids.items():
            keys = {cell_key(name, c, __version__) for c in cells}
            df = load_results(root / name)
            frames.append(df[df.cell_key.isin(keys)] if len(df) else df)
            err = load_errors(root / name)
            errors.append(err[err.cell_key.isin(keys)])
    errs = pd.concat(errors, ignore_index=True) if errors else pd.DataFrame()
    return tidy(frames), errs, summaries


def make_figures(df: pd.DataFrame, config: StudyConfig,
                 details: dict | None = None) -> dict[str, dict[str, bytes]]:
    """All figures as {name: {"png": bytes, "svg": bytes}}; ``details`` (from
    :func:`~weightsynth.study.claims.decide_claims`) adds the general indices' verdict map."""
    c = config
    beta, t1, n = min(c.beta), min(c.t1), min(c.n)
    pad = max(max(1, round(ld * n)) for ld in c.loads)
    snap = weight_snapshots(n=n, load=min(c.loads), noise=0.0, beta=beta, t1=t1,
                            base_seed=c.seed, samples_per_exemplar=c.samples_per_exemplar,
                            amplitude=c.amplitude, times=[0.0, t1 / 12, t1 / 3, t1],
                            pad_K=pad, test_samples_per_exemplar=c.test_samples_per_exemplar,
                            n_times=c.n_times, claim_times=c.claim_times)
    panels = digits_examples(noise=max(c.digits_noise), beta=beta, t1=t1, base_seed=c.seed,
                             methods=[m for m in c.methods if m in BASE_METHODS],
                             samples_per_exemplar=c.samples_per_exemplar,
                             test_samples_per_exemplar=c.test_samples_per_exemplar,
                             amplitude=c.amplitude, n_times=c.n_times,
                             claim_times=c.claim_times)
    figs = {
        "learning_curve": plots.main_figure(df, c.curve_load, c.curve_noise),
        "learning_curves_all": plots.learning_curves(df, c.curve_noise),
        "versus_load": plots.versus(df, "load", {"noise": c.curve_noise}, c.claim_times),
        "versus_noise": plots.versus(df, "noise", {"load": c.curve_load}, c.claim_times),
        "digits": plots.digits_figure(df, panels),
        "weights": plots.weights_figure(df, snap),
    }
    if (df.protocol == "general").any():
        figs["general"] = plots.general_figure(df)
        comp = (details or {}).get("general")
        if comp is not None and len(comp):
            figs["general_verdicts"] = plots.general_verdicts(comp)
    if (df.protocol == "maps").any():
        figs["maps_error"] = maps_report.error_figure(df)
        figs["maps_confusion"] = maps_report.confusion_figure(df)
    return {name: plots.render(fig) for name, fig in figs.items()}


def _write(path: Path, data: bytes) -> None:
    """Atomic write, then the usual file mode (rw-r--r-- less the umask)."""
    atomic_write_bytes(path, data)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def run_study(config: StudyConfig, out, progress: bool = True, *, engine: bool = True,
              scheduler: str | None = None, workers: int | None = None,
              connect_timeout: float = 10.0) -> dict:
    """Run the study and write its outputs under ``out`` (created if missing).

    ``engine``: run the grid on Dask (:func:`run_engine`); False runs it in this process.
    Failed cells (engine only) are listed in the report and returned as ``errors``; the
    table, figures and report are built from the cells that finished.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    errors, summaries = pd.DataFrame(), []
    if engine:
        df, errors, summaries = run_engine(config, out, scheduler=scheduler, workers=workers,
                                           progress=progress, connect_timeout=connect_timeout)
    else:
        df = run_all(config, progress)
    claims, details = decide_claims(df, config)
    figures = make_figures(df, config, details)
    elapsed = time.perf_counter() - start
    _write(out / "results.parquet", _parquet_bytes(df))
    _write(out / "claims.csv", claims.to_csv(index=False).encode())
    for name, f in figures.items():
        for fmt, data in f.items():
            _write(out / f"{name}.{fmt}", data)
    meta = {"rows": len(df), "compute time (s)": f"{elapsed:.1f}",
            "runner": "Dask sweep engine (datasets in sweep/)" if engine else "in-process",
            "python": platform.python_version(), "machine": platform.machine()}
    meta.update({f"cells, {s.protocol}": f"{s.total} ({s.skipped} already done, "
                 f"{s.computed} computed, {s.failed} failed)" for s in summaries})
    page = build_report(config, claims, details, figures, meta, errors=errors)
    _write(out / "report.html", page.encode("utf-8"))
    return {"table": df, "claims": claims, "seconds": elapsed, "out": out, "errors": errors,
            "summaries": summaries}
