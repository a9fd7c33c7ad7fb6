"""The moderate run of protocol maps quoted in README.md and docs/experiments.md.

3 seeds; hetero at K/n in {0.05, 0.15, 0.3} x noise {0.1, 0.25}; digits and smooth at
L in {50, 200, 800}; every method, tuned as in the full study. Cells run in this process
(run_cells), the same cell function the Dask engine calls. Writes maps_moderate.parquet,
the figures maps_error.png, maps_confusion.png, and maps_moderate_general.csv (the general
squared-error regressor's test error minus each rival's, paired by seed, with 95%
t-intervals) next to this file. ``--from-parquet`` redoes the outputs from the parquet.

``--run smooth10``: the smooth teacher alone, 10 seeds, L in {50, 200, 800}, the same
methods and tuning: writes maps_smooth10.parquet, maps_smooth10_general.csv and
maps_smooth10.png.

``--run hetero10``: the heteroassociation task alone, 10 seeds, K/n in {0.05, 0.15, 0.3} x
noise {0.1, 0.25}, the same methods (the general regressor included) and tuning: writes
maps_hetero10.parquet, maps_hetero10_general.csv and maps_hetero10.png.

``--run digits10``: the 8x8 digits alone, 10 seeds, L in {50, 200, 800}, the same methods
and tuning, the general program as a classifier on the classes' +-1 codes: writes
maps_digits10.parquet, maps_digits10_general.csv and maps_digits10.png.

Every run also prints claims 8 and 9 (``claims.claim_maps``) of its cells. ``--out DIR``
runs the cells on the Dask engine (two local workers) into the resumable sweep store DIR
instead of in this process: a run that stops resumes there, and ``--out DIR
--report-only`` writes the outputs from the cells already in it (as ``--from-parquet``
does from the parquet).

    PYTHONPATH=src .venv/bin/python docs/figures/maps_moderate.py \\
        [--run smooth10|hetero10|digits10] \\
        [--from-parquet | --out DIR [--report-only]]
"""

import argparse
import warnings
from pathlib import Path

import jax
import pandas as pd

jax.config.update("jax_enable_x64", True)

from weightsynth.engine.results import load_results  # noqa: E402
from weightsynth.engine.sweep import run_sweep  # noqa: E402
from weightsynth.study import default_config, with_overrides  # noqa: E402
from weightsynth.study.claims import claim_maps  # noqa: E402
from weightsynth.study.maps_report import (  # noqa: E402
    CLASSICAL,
    SKLEARN,
    comparisons,
    confusion_figure,
    error_figure,
)
from weightsynth.study.plots import render  # noqa: E402
from weightsynth.study.runner import maps_cells, run_cells  # noqa: E402

HERE = Path(__file__).parent

RUNS = {
    "moderate": dict(maps_seeds=3, maps_loads=[0.05, 0.15, 0.3], maps_noise=[0.1, 0.25],
                     maps_digits_sizes=[50, 200, 800], maps_smooth_sizes=[50, 200, 800]),
    "smooth10": dict(maps_seeds=10, maps_tasks=["smooth"], maps_smooth_sizes=[50, 200, 800]),
    "hetero10": dict(maps_seeds=10, maps_tasks=["hetero"], maps_loads=[0.05, 0.15, 0.3],
                     maps_noise=[0.1, 0.25]),
    "digits10": dict(maps_seeds=10, maps_tasks=["digits"], maps_digits_sizes=[50, 200, 800]),
}

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", choices=tuple(RUNS), default="moderate")
    ap.add_argument("--from-parquet", action="store_true")
    ap.add_argument("--out", default=None, help="a resumable sweep store (Dask, 2 workers)")
    ap.add_argument("--report-only", action="store_true",
                    help="with --out: write the files from the cells already in the store")
    a = ap.parse_args()
    if a.report_only and not a.out:
        ap.error("--report-only reads a store: give it with --out DIR")
    warnings.simplefilter("ignore")
    c = with_overrides(default_config(), RUNS[a.run])
    name = f"maps_{a.run}"
    if a.from_parquet:
        df = pd.read_parquet(HERE / f"{name}.parquet")
    else:
        cells = maps_cells(c)
        if a.out:
            if not a.report_only:
                print(run_sweep("maps", cells, a.out, workers=2).line())
            df = load_results(a.out)
            print(f"{df.cell_key.nunique()} of {len(cells)} cells in the store")
        else:
            df = run_cells("maps", cells)
        df.to_parquet(HERE / f"{name}.parquet")
    general = comparisons(df, (*CLASSICAL, *SKLEARN, "synth"), method="general-squared_error")
    general.round(5).to_csv(HERE / f"{name}_general.csv", index=False)
    print(general[["rival", "L", "load", "noise", "mean", "lo", "hi", "verdict"]].round(4)
          .to_string(index=False))
    for row in claim_maps(df)[0]:
        print(f"{row['status']}: {row['claim']}\n  {row['evidence']}\n  {row['parameters']}")
    figures = ((("maps_error", error_figure(df)), ("maps_confusion", confusion_figure(df)))
               if a.run == "moderate" else ((name, error_figure(df)),))
    for fig_name, fig in figures:
        (HERE / f"{fig_name}.png").write_bytes(render(fig)["png"])
