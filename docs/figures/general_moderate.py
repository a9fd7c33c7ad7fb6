"""The runs of protocol general quoted in README.md and docs/experiments.md.

The paper's size, n = 100, beta = 1/n, programs by the feedback solver from W* (its
default coordinates; at most 300 iterations, as these runs were made, and 1000 in
``long``, the study's default now), fresh corrupted test samples, noise {0.1, 0.25}. Cells
run on the Dask engine (two local workers), the same cell function `weightsynth reproduce`
runs.

* ``--run moderate`` (default): loads {0.05, 0.1, 0.2} x t1 {0.5, 1, 2, 6} with 5 training
  samples per exemplar, and load 0.05 with 20; 3 seeds (96 cells).
* ``--run focused``: the horizons where the moderate run found the programs at their best,
  t1 {1, 2}, at every load of the full grid {0.05, 0.1, 0.14, 0.2} with 5 and 20 samples
  per exemplar (L = 25 to 400); 6 seeds (192 cells).
* ``--run budget``: why the programs lose at beta = 1/n. The weight penalty 1/(2 beta) is
  their weight budget, which the rules do not pay: t1 = 1, beta {0.01, 0.1, 1}, every load
  with 5 samples per exemplar; 6 seeds (144 cells).
* ``--run horizons``: the horizons the focused run left out, t1 {0.5, 6}, every load with 5
  samples per exemplar and load 0.05 with 20; 3 seeds (60 cells).
* ``--run long``: the t1 = 6 cells of ``horizons`` with 1000 iterations instead of 300, so
  that the short-horizon-first schedule (docs/general.md, "Long horizons") can converge
  (30 cells).
* ``--run seeds20``: the full run's 20 seeds where the programs are at their best, t1
  {1, 2} at every load with 5 samples per exemplar (320 cells), with the solver's defaults
  of this round (the coarse grid first, the scaled start, 1000 iterations).
* ``--run seeds20_short``: the same at t1 = 0.5 (160 cells).
* ``--run seeds20_long``: the same at t1 = 6 (160 cells).
* ``--run seeds20_samples20``: ``seeds20`` with 20 training samples per exemplar instead of
  5 (L = 100 to 400; 320 cells), where the focused run found the programs closest to
  projection; the highest loads first, where they beat the outer product.
* ``--run seeds20_samples20_short``: the same at t1 = 0.5 (160 cells).
* ``--run seeds20_samples20_long``: the same at t1 = 6 (160 cells), the lowest loads first
  (the cheapest cells: a run of several sessions completes settings one by one).
* ``--run full``: runs nothing; combines the six ``seeds20*`` tables above (the full grid,
  1280 cells; a setting counts once its 20 seeds are in) into general_full_claims.csv,
  _means.csv and a map of the verdicts per setting, general_full.png.

Writes general_<run>.parquet, the claims table general_<run>_claims.csv, the per-setting
means general_<run>_means.csv and the figure general_<run>.png next to this file;
``--report-only`` writes them from the cells already in the store (a run in progress, or
one that stopped), without running any.

    PYTHONPATH=src .venv/bin/python docs/figures/general_moderate.py [--run focused] [--out DIR] \\
        [--report-only]
"""

import argparse
import warnings
from pathlib import Path

import jax
import numpy as np
import pandas as pd

jax.config.update("jax_enable_x64", True)

from weightsynth.engine.results import load_results  # noqa: E402
from weightsynth.engine.sweep import run_sweep  # noqa: E402
from weightsynth.study import default_config, with_overrides  # noqa: E402
from weightsynth.study.claims import claim_general, general_comparison  # noqa: E402
from weightsynth.study.plots import general_figure, general_verdicts, render  # noqa: E402
from weightsynth.study.runner import expand_grid  # noqa: E402

HERE = Path(__file__).parent
SETTING = ["samples_per_exemplar", "load", "noise", "beta", "t1"]


def setting_means(df):
    """Per setting: each method's mean bit accuracy at t1 on fresh ("test") and training
    samples over the seeds, and for the programs their mean weight_norm (the root-mean-
    square ||W(t)||_F, study.general.weight_norm), iterations and converged fraction."""
    d = df[df.t.isna() | np.isclose(df.t, df.t1)]
    acc = d.pivot_table(index=[*SETTING, "method"], columns="split", values="bit_accuracy",
                        aggfunc="mean")
    solved = d.dropna(subset=["iterations"]).groupby([*SETTING, "method"]).agg(
        weight_norm=("weight_norm", "mean"), iterations=("iterations", "median"),
        converged=("converged", "mean"))
    return acc.join(solved).reset_index().round(4)


METHODS = ["outer_continuous", "outer_discrete", "projection", "storkey",
           "general-correlation", "general-squared_error"]
RUNS = {  # per run: common overrides, then (samples per exemplar, loads) blocks
    "moderate": (dict(seeds=3, general_t1=[0.5, 1.0, 2.0, 6.0], general_max_iter=300),
                 ((5, [0.05, 0.1, 0.2]), (20, [0.05]))),
    "focused": (dict(seeds=6, general_t1=[1.0, 2.0], general_max_iter=300),
                ((5, [0.05, 0.1, 0.14, 0.2]), (20, [0.05, 0.1, 0.14, 0.2]))),
    "budget": (dict(seeds=6, general_t1=[1.0], general_beta=[0.01, 0.1, 1.0],
                    general_max_iter=300),
               ((5, [0.05, 0.1, 0.14, 0.2]),)),
    "horizons": (dict(seeds=3, general_t1=[0.5, 6.0], general_max_iter=300),
                 ((5, [0.05, 0.1, 0.14, 0.2]), (20, [0.05]))),
    "long": (dict(seeds=3, general_t1=[6.0], general_max_iter=1000),
             ((5, [0.05, 0.1, 0.14, 0.2]), (20, [0.05]))),
    "seeds20": (dict(seeds=20, general_t1=[1.0, 2.0], general_max_iter=1000),
                ((5, [0.05, 0.1, 0.14, 0.2]),)),
    "seeds20_short": (dict(seeds=20, general_t1=[0.5], general_max_iter=1000),
                      ((5, [0.05, 0.1, 0.14, 0.2]),)),
    "seeds20_long": (dict(seeds=20, general_t1=[6.0], general_max_iter=1000),
                     ((5, [0.05, 0.1, 0.14, 0.2]),)),
    "seeds20_samples20": (dict(seeds=20, general_t1=[1.0, 2.0], general_max_iter=1000),
                          ((20, [0.2, 0.14, 0.1, 0.05]),)),
    "seeds20_samples20_short": (dict(seeds=20, general_t1=[0.5], general_max_iter=1000),
                                ((20, [0.2, 0.14, 0.1, 0.05]),)),
    "seeds20_samples20_long": (dict(seeds=20, general_t1=[6.0], general_max_iter=1000),
                               ((20, [0.05, 0.1, 0.14, 0.2]),)),
}

#: the six runs that together make the full grid of docs/experiments.md (20 seeds; t1
#: {0.5, 1, 2, 6}; 5 and 20 training samples per exemplar; 1280 cells)
QUARTERS = ("seeds20_short", "seeds20", "seeds20_long", "seeds20_samples20_short",
            "seeds20_samples20", "seeds20_samples20_long")
FULL_CELLS = 1280


def verdict_counts(comp):
    """Per (split, index, rival): how many settings are better / n.s. / worse."""
    return (comp.groupby(["split", "method", "rival", "verdict"]).size()
            .unstack("verdict", fill_value=0).reindex(columns=["better", "n.s.", "worse"],
                                                        fill_value=0))


def report(df, name, cells):
    """Write general_<name>_claims.csv, _means.csv and the figure, and print the claims."""
    print(f"{df.cell_key.nunique()} of {cells} cells")
    comp = general_comparison(df)
    comp.to_csv(HERE / f"general_{name}_claims.csv", index=False)
    for split in ("train", "test"):
        row = claim_general(comp, df, split)
        print(f"[{split}] {row['status']}: {row['evidence']}\n  {row['parameters']}")
    print(verdict_counts(comp).to_string())
    fig = general_verdicts(comp) if name == "full" else general_figure(df)
    (HERE / f"general_{name}.png").write_bytes(render(fig)["png"])
    means = setting_means(df)
    means.to_csv(HERE / f"general_{name}_means.csv", index=False)
    print(means.to_string(index=False))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", choices=(*RUNS, "full"), default="moderate")
    ap.add_argument("--out", default=None, help="the sweep store (default: next to this file)")
    ap.add_argument("--report-only", action="store_true",
                    help="write the files from the cells already in the store, run none")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    if a.run == "full":  # combines the quarters' tables; runs nothing
        found = [q for q in QUARTERS if (HERE / f"general_{q}.parquet").exists()]
        print("quarters:", ", ".join(found), "| missing:",
              ", ".join(sorted(set(QUARTERS) - set(found))) or "none")
        df = pd.concat([pd.read_parquet(HERE / f"general_{q}.parquet") for q in found],
                       ignore_index=True)
        seeds = df.groupby(SETTING).seed.transform("nunique")
        if (seeds < 20).any():  # a quarter still running: its unfinished settings wait
            print("left out until their 20 seeds are in:",
                  df[seeds < 20].groupby(SETTING).seed.nunique().to_dict())
        report(df[seeds == 20], "full", FULL_CELLS)
        raise SystemExit
    common, blocks = RUNS[a.run]
    common = dict(common, methods=METHODS, general_noise=[0.1, 0.25])
    cells = []
    for samples, loads in blocks:
        c = with_overrides(default_config(), dict(common, general_samples=[samples],
                                                  general_loads=loads))
        cells += expand_grid(c)["general"]
    out = a.out or str(HERE / f"general_{a.run}_store")
    if not a.report_only:
        print(run_sweep("general", cells, out, workers=2).line())
    df = load_results(out)
    df.to_parquet(HERE / f"general_{a.run}.parquet")
    report(df, a.run, len(cells))
