"""Target 2 (benchmarks/README.md): recall throughput, B queries through a program (n, L),
end to end.

``WeightProgram.recall`` integrates the program's state jointly with the queries (eq. 11),
so W*(t) is exact and never formed. Flops per right-hand-side evaluation:

  4 n L^2  (the program's A Theta and G G^T)  +  4 B L n  (g(X) G^T, then (.) Theta)

The ideal is evals x the time of those four GEMMs (same shapes and dtype, this process).

    .venv/bin/python benchmarks/bench_recall.py [--n 2048 --L 256 --B 4096 --steps 20]
"""

from __future__ import annotations

import argparse

import _common as c
import numpy as np

import weightsynth as ws


def run(n: int, L: int, B: int, steps: int, dtype_name: str, repeats: int) -> dict:
    dtype = c.dtype_arg(dtype_name)
    phi, theta, beta = c.problem(n, L, dtype)
    prog = ws.synthesize(phi, theta, beta=beta, t1=1.0, steps=steps)
    rng = np.random.default_rng(2)
    flips = rng.random((B, n)) < 0.1  # noisy copies of the stored targets
    x = (0.9 * theta[rng.integers(0, L, B)] * np.where(flips, -1, 1)).astype(dtype)
    evals = c.evals_per_solve(prog.solver.solver, steps)
    first, _, _ = c.timed(lambda: prog.recall(x))
    shapes = c.synthesis_gemms(n, L) + [(B, n, L), (B, L, n)]
    g_wall, g_cpu = c.gemm_time(shapes, dtype, repeats=3)
    wall, cpu, out = c.timed(lambda: prog.recall(x), repeats)
    flops = 4 * n * L * L + 4 * B * L * n
    return {
        "benchmark": "recall", "n": n, "L": L, "B": B, "steps": steps,
        "solver": prog.solver.solver, "dtype": dtype_name, "rhs_evals": evals,
        "flops_per_eval": flops, "flops_formula": "4 n L^2 + 4 B L n",
        "gemm_rate_gflops": flops / g_wall / 1e9,
        "ideal_s": evals * g_wall, "achieved_s": wall, "efficiency": evals * g_wall / wall,
        "efficiency_cpu_time": evals * g_cpu / cpu, "compile_s": max(first - wall, 0.0),
        "queries_per_s": B / wall, "outputs_finite": bool(np.isfinite(out).all()),
        **c.env_report(),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--L", type=int, default=256)
    p.add_argument("--B", type=int, default=4096)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args(argv)
    for d in a.dtypes.split(","):
        c.emit(run(a.n, a.L, a.B, a.steps, d, a.repeats))


if __name__ == "__main__":
    main()
