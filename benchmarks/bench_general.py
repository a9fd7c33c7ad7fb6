"""Benchmark of the general solvers: seconds per iteration and iterations to converge.

Index: terminal output correlation (+ weight penalty), tanh, beta = 0.5, t1 = 1, random
bipolar targets, inputs 0.5 * targets with 10% flipped signs, W0 = 0, W on 21 nodes, tsit5
with one fixed step per node interval, float64. Each (solver, n, L) runs up to its
iteration cap; when the cap is hit, "converged" is false and "iterations" is the cap (a
lower bound). Stopping: residual <= 1e-4 only (ftol = 0). JIT is warmed up by a first
1-iteration run. Prints JSON.

    .venv/bin/python benchmarks/bench_general.py [--quick]
"""

import json
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import weightsynth as ws  # noqa: E402

CASES = [(64, 64, 200), (256, 256, 10)]  # n, L, iteration cap


def _problem(n, L, seed=0):
    rng = np.random.default_rng(seed)
    theta = np.where(rng.random((L, n)) < 0.5, -1.0, 1.0)
    flips = np.where(rng.random((L, n)) < 0.1, -1.0, 1.0)
    return ws.Problem(0.5 * theta * flips, theta, "correlation", beta=0.5, t1=1.0)


def run(cases):
    out = []
    for n, L, cap in cases:
        p = _problem(n, L)
        for name, solve in (("sweep", ws.sweep_synthesize), ("direct", ws.direct_synthesize)):
            solve(p, nodes=21, max_iter=1)  # compile
            t = time.perf_counter()
            res = solve(p, nodes=21, max_iter=cap, ftol=0.0, gtol=1e-4)
            secs = time.perf_counter() - t
            it = max(res.iterations, 1)
            out.append(dict(solver=name, n=n, L=L, nodes=21, iteration_cap=cap,
                            iterations=res.iterations, converged=res.converged,
                            reason=res.reason, seconds_total=round(secs, 3),
                            seconds_per_iteration=round(secs / it, 4),
                            evals_per_iteration=round(int(res.history["evals"].iloc[-1]) / it,
                                                      2),
                            J=res.J, residual=res.residual,
                            device=str(jax.devices()[0].platform)))
            print(json.dumps(out[-1]), file=sys.stderr)
    return out


if __name__ == "__main__":
    cases = [(16, 16, 50)] if "--quick" in sys.argv else CASES
    print(json.dumps(run(cases), indent=1))
