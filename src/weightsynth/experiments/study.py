"""The whole study: run every protocol, decide the claims, write table, figures and report.

Outputs under ``out``: ``results.parquet`` (the tidy table), ``claims.csv``, one PNG and one
SVG per figure, and ``report.html``. Every file is written to a temporary name and renamed
(:func:`weightsynth.storage.atomic_write_bytes`), so an interrupted run leaves no
half-written file under a final name.
"""

from __future__ import annotations

import io
import os
import platform
import time
from pathlib import Path

import pandas as pd

from ..storage import atomic_write_bytes
from .claims import decide_claims
from .config import StudyConfig
from .protocols import digits_examples, weight_snapshots
from .runner import expand_grid, run_cells


def run_all(config: StudyConfig, progress: bool = True) -> pd.DataFrame:
    """Run every protocol's cells in order; the tidy table of all records."""
    frames = [run_cells(p, cells, progress) for p, cells in expand_grid(config).items()]
    df = pd.concat([f for f in frames if len(f)], ignore_index=True)
    return df.sort_values(["protocol", "method", "split", "n", "load", "noise", "beta", "t1",
                           "seed", "t"], kind="stable", ignore_index=True)


def make_figures(df: pd.DataFrame, config: StudyConfig) -> dict[str, dict[str, bytes]]:
    """All figures as {name: {"png": bytes, "svg": bytes}}."""
    from .. import plots

    c = config
    beta, t1, n = min(c.beta), min(c.t1), min(c.n)
    pad = max(max(1, round(ld * n)) for ld in c.loads)
    snap = weight_snapshots(n=n, load=min(c.loads), noise=0.0, beta=beta, t1=t1,
                            base_seed=c.seed, samples_per_exemplar=c.samples_per_exemplar,
                            amplitude=c.amplitude, times=[0.0, t1 / 12, t1 / 3, t1],
                            pad_K=pad, test_samples_per_exemplar=c.test_samples_per_exemplar,
                            n_times=c.n_times, claim_times=c.claim_times)
    panels = digits_examples(noise=max(c.digits_noise), beta=beta, t1=t1, base_seed=c.seed,
                             methods=c.methods, samples_per_exemplar=c.samples_per_exemplar,
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


def run_study(config: StudyConfig, out, progress: bool = True) -> dict:
    """Run the study and write its outputs under ``out`` (created if missing)."""
    from ..report import build_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    df = run_all(config, progress)
    claims, details = decide_claims(df, config.claim_times)
    figures = make_figures(df, config)
    elapsed = time.perf_counter() - start
    _write(out / "results.parquet", _parquet_bytes(df))
    _write(out / "claims.csv", claims.to_csv(index=False).encode())
    for name, f in figures.items():
        for fmt, data in f.items():
            _write(out / f"{name}.{fmt}", data)
    meta = {"rows": len(df), "compute time (s)": f"{elapsed:.1f}",
            "python": platform.python_version(), "machine": platform.machine()}
    page = build_report(config, claims, details, figures, meta)
    _write(out / "report.html", page.encode("utf-8"))
    return {"table": df, "claims": claims, "seconds": elapsed, "out": out}
