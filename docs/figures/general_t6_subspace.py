"""Does the targets subspace (docs/general.md, "Targets subspace") change the study at t1 = 6?

The study's t1 = 6 cells (protocol general: n = 100, beta = 1/n, 5 training samples per
exemplar, noise 0.1, loads 0.05 and 0.1, where the targets' rank is at most 12 and
"auto" uses the subspace) with the feedback solver of this commit, with the subspace
("auto") and without (False), same cells, same data; the study itself ran without it
(commit a3095e1). Writes one row per (load, seed, subspace, method): fresh-sample bit
accuracy at t1 for the programs and the outer product in N, and for the programs (method
"<name>:J") the index value J reached (column ``bits``), the iterations and convergence.

    PYTHONPATH=src .venv/bin/python docs/figures/general_t6_subspace.py [SEEDS] \\
        [--out docs/figures/general_t6_subspace.csv]
"""
import argparse
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import weightsynth.study.general as sg  # noqa: E402
from weightsynth.control import feedback as fb  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("seeds", nargs="?", type=int, default=5)
ap.add_argument("--out", default=str(Path(__file__).with_name("general_t6_subspace.csv")))
a = ap.parse_args()
MODE = {}


def solver(problem, **kw):  # the study cell's solver, with the subspace setting of MODE
    return fb.feedback_synthesize(problem, subspace=MODE["sub"], **kw)


sg.feedback_synthesize = solver
rows = []
for load in (0.05, 0.1):
    for seed in range(a.seeds):
        for sub in ("auto", False):
            MODE["sub"] = sub
            t = time.perf_counter()
            out = sg.general_study_cell(
                n=100, load=load, noise=0.1, beta=0.01, t1=6.0, seed=seed,
                baselines=("outer_continuous",) if sub == "auto" else (), max_iter=1000)
            df = pd.DataFrame(out)
            last = df[(df.split == "test") & np.isclose(df.t, 6.0)]
            J = df.dropna(subset=["J_index"])
            for r in last.itertuples():
                rows.append(dict(load=load, seed=seed, sub=str(sub), method=r.method,
                                 bits=r.bit_accuracy))
            for r in J.itertuples():
                rows.append(dict(load=load, seed=seed, sub=str(sub), method=r.method + ":J",
                                 bits=r.J_index, it=r.iterations, conv=r.converged))
            print(load, seed, sub, round(time.perf_counter() - t, 1), flush=True)
            pd.DataFrame(rows).to_csv(a.out, index=False)
d = pd.DataFrame(rows)
print(d.groupby(["load", "method", "sub"]).bits.mean().unstack())
