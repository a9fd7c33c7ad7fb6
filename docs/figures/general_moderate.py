"""The moderate run of protocol general quoted in README.md and docs/experiments.md.

The paper's size, n = 100, beta = 1/n, programs by the feedback solver from W* (at most
300 iterations): loads {0.05, 0.1, 0.2} x noise {0.1, 0.25} x t1 {0.5, 1, 2, 6} with 5
training samples per exemplar, and load 0.05 with 20; 3 seeds; fresh corrupted
test samples. Cells run on the Dask engine (two local workers), the same cell function
`weightsynth reproduce` runs. Writes general_moderate.parquet, the claims table
general_moderate_claims.csv and the figure general_moderate.png next to this file.

    PYTHONPATH=src .venv/bin/python docs/figures/general_moderate.py [--out DIR]
"""

import argparse
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from weightsynth.engine.results import load_results  # noqa: E402
from weightsynth.engine.sweep import run_sweep  # noqa: E402
from weightsynth.study import default_config, with_overrides  # noqa: E402
from weightsynth.study.claims import claim_general, general_comparison  # noqa: E402
from weightsynth.study.plots import general_figure, render  # noqa: E402
from weightsynth.study.runner import expand_grid  # noqa: E402

HERE = Path(__file__).parent
COMMON = dict(seeds=3, methods=["outer_continuous", "outer_discrete", "projection",
                                "storkey", "general-correlation", "general-squared_error"],
              general_noise=[0.1, 0.25], general_t1=[0.5, 1.0, 2.0, 6.0])

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE / "general_moderate_store"))
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    cells = []
    for samples, loads in ((5, [0.05, 0.1, 0.2]), (20, [0.05])):
        c = with_overrides(default_config(), dict(COMMON, general_samples=[samples],
                                                  general_loads=loads))
        cells += expand_grid(c)["general"]
    summary = run_sweep("general", cells, a.out, workers=2)
    print(summary.line())
    df = load_results(a.out)
    df.to_parquet(HERE / "general_moderate.parquet")
    comp = general_comparison(df)
    comp.to_csv(HERE / "general_moderate_claims.csv", index=False)
    for split in ("train", "test"):
        row = claim_general(comp, df, split)
        print(f"[{split}] {row['status']}: {row['evidence']}\n  {row['parameters']}")
    (HERE / "general_moderate.png").write_bytes(render(general_figure(df))["png"])
