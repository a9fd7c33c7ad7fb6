"""Target 1 (benchmarks/README.md) and the synthesis speed record: ``synthesize`` end to end.

Times the whole public call (validation, the closed-loop solve, building the WeightProgram)
at n=2048, L=256, 200 fixed steps, and prints one JSON record per dtype with

  efficiency = ideal / achieved,   ideal = evals x (time of the two GEMMs of one evaluation,
                                   A Theta and G G^T: 4 n L^2 flops, same shapes and dtype,
                                   measured in this process)

The Gram matrix is computed from its upper block triangle (weightsynth.core.dynamics.gram), so
the flops actually done per evaluation are fewer than the 4 n L^2 the ideal counts; an
efficiency above 1 comes from that symmetry. Compile time is reported separately, and the
jitted solve's cache size shows that a second call with the same shapes does not recompile.

    .venv/bin/python benchmarks/bench_synthesis.py [--n 2048 --L 256 --steps 200]
"""

from __future__ import annotations

import argparse

import _common as c

import weightsynth as ws
from weightsynth.core.synthesis import _solve_closed_loop


def run(n: int, L: int, steps: int, dtype_name: str, repeats: int, solver: str) -> dict:
    """``repeats`` rounds, each a GEMM probe then one timed call, so each round's ratio pairs
    a probe and a call taken close together (the machine's GEMM rate drifts by 20-30% over
    minutes); the record gives the median round, and the range."""
    dtype = c.dtype_arg(dtype_name)
    phi, theta, beta = c.problem(n, L, dtype)
    evals = c.evals_per_solve(solver, steps)

    def call():
        return ws.synthesize(phi, theta, beta=beta, t1=1.0, steps=steps, solver=solver)

    cache0 = c.cache_size(_solve_closed_loop)
    first, _, _ = c.timed(call)
    cache1 = c.cache_size(_solve_closed_loop)
    rounds = []
    for _ in range(repeats):
        g_wall, g_cpu = c.gemm_time(c.synthesis_gemms(n, L), dtype)
        wall, cpu, prog = c.timed(call)
        rounds.append((evals * g_wall / wall, evals * g_cpu / cpu, g_wall, wall))
    eff = sorted(r[0] for r in rounds)
    med = sorted(rounds, key=lambda r: r[0])[len(rounds) // 2]
    b = min(4, L // 128)
    gram_factor = (b + 1) / (2 * b) if b >= 2 else 1.0
    return {
        "benchmark": "synthesis", "n": n, "L": L, "steps": steps, "solver": solver,
        "dtype": dtype_name, "rhs_evals": evals,
        "flops_per_eval_counted": 4 * n * L * L,
        "flops_per_eval_done": round(2 * n * L * L * (1 + gram_factor)),
        "gemm_rate_gflops": 4 * n * L * L / med[2] / 1e9,
        "ideal_s": evals * med[2], "achieved_s": med[3],
        "efficiency": med[0], "efficiency_rounds": eff,
        "efficiency_cpu_time": med[1],
        "compile_s": max(first - min(r[3] for r in rounds), 0.0),
        "recompiled_on_second_call": c.cache_size(_solve_closed_loop) != cache1,
        "compilations_first_call": None if cache1 is None else cache1 - cache0,
        "program_bytes": prog.nbytes, "peak_rss_bytes": c.peak_rss_bytes(), **c.env_report(),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--L", type=int, default=256)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--solver", default="tsit5")
    p.add_argument("--dtypes", default="float64,float32")
    p.add_argument("--repeats", type=int, default=5, help="rounds (probe + call)")
    a = p.parse_args(argv)
    for d in a.dtypes.split(","):
        c.emit(run(a.n, a.L, a.steps, d, a.repeats, a.solver))


if __name__ == "__main__":
    main()
