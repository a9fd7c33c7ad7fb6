"""Target 4 (benchmarks/README.md): scale, n=10,000 and L=1,000, 200 fixed steps, one fresh
process per dtype.

The default solver is Euler: one right-hand-side evaluation per step, so 200 steps are
200 evaluations (the efficiency is per evaluation, so the solver does not change it;
``--solver tsit5`` does 6 per step). Reports the efficiency as in bench_synthesis.py, with
and without the JIT compile time (measured at the same steps on a tiny problem, since
compile time does not depend on n and L), the peak RSS, and the saved program's size,
which is O(nL + T min(n, L) L): itemsize x (2 n L + T L^2 + T) bytes plus a header.

    .venv/bin/python benchmarks/bench_scale.py [--n 10000 --L 1000 --steps 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import _common as c
import numpy as np

import weightsynth as ws


def run(n: int, L: int, steps: int, dtype_name: str, solver: str) -> dict:
    dtype = c.dtype_arg(dtype_name)
    tiny = c.problem(64, 32, dtype)
    t_first, _, _ = c.timed(lambda: ws.synthesize(*tiny[:2], beta=tiny[2], steps=steps,
                                                  solver=solver))
    t_warm, _, _ = c.timed(lambda: ws.synthesize(*tiny[:2], beta=tiny[2], steps=steps,
                                                 solver=solver))
    compile_s = max(t_first - t_warm, 0.0)
    evals = c.evals_per_solve(solver, steps)
    phi, theta, beta = c.problem(n, L, dtype)
    rss_inputs = c.peak_rss_bytes()
    g_wall, g_cpu = c.gemm_time(c.synthesis_gemms(n, L), dtype, repeats=3)
    wall, cpu, prog = c.timed(lambda: ws.synthesize(phi, theta, beta=beta, steps=steps,
                                                    solver=solver))
    peak = c.peak_rss_bytes()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "scale.safetensors")
        prog.save(path)
        size = os.path.getsize(path)
    T, item = steps + 1, np.dtype(dtype).itemsize
    ideal = evals * g_wall
    return {
        "benchmark": "scale", "n": n, "L": L, "steps": steps, "solver": solver,
        "dtype": dtype_name, "rhs_evals": evals, "gemm_rate_gflops": 4 * n * L * L / g_wall / 1e9,
        "ideal_s": ideal, "achieved_s_incl_compile": wall, "compile_s": compile_s,
        "efficiency": ideal / max(wall - compile_s, 1e-9),
        "efficiency_incl_compile": ideal / wall, "efficiency_cpu_time": evals * g_cpu / cpu,
        "peak_rss_bytes": peak, "peak_rss_before_synthesis_bytes": rss_inputs,
        "peak_rss_under_4GB": peak < 4e9, "program_file_bytes": size,
        "program_formula_bytes": item * (2 * n * L + T * L * L + T),
        "dense_W_trajectory_bytes_avoided": item * T * n * n, **c.env_report(),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--L", type=int, default=1_000)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--solver", default="euler")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        c.emit(run(a.n, a.L, a.steps, a.one, a.solver))
        return
    for d in a.dtypes.split(","):  # a fresh process per dtype: its own peak RSS
        args = [__file__, "--one", d, "--n", str(a.n), "--L", str(a.L), "--steps",
                str(a.steps), "--solver", a.solver]
        for rec in c.run_self(args):
            c.emit(rec)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
