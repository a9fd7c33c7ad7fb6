"""Target 6 (benchmarks/README.md): peak RSS of synthesis against (program + inputs) + a fixed
overhead.

Each size runs in a fresh process. The fixed runtime overhead is that process's peak RSS
after importing JAX and weightsynth and running a tiny synthesis (n=8, L=4, same steps and
dtype) before the inputs are made. The check is

    peak RSS <= overhead + 1.5 x (program bytes + input bytes).

    .venv/bin/python benchmarks/bench_memory.py [--sizes 2048x256,4096x512,8192x512]
"""

from __future__ import annotations

import argparse

import _common as c
import numpy as np

import weightsynth as ws


def one(n: int, L: int, steps: int, dtype_name: str) -> dict:
    dtype = c.dtype_arg(dtype_name)
    tiny = c.problem(8, 4, dtype)
    ws.synthesize(*tiny[:2], beta=tiny[2], steps=steps)
    overhead = c.peak_rss_bytes()
    phi, theta, beta = c.problem(n, L, dtype)
    prog = ws.synthesize(phi, theta, beta=beta, steps=steps)
    peak = c.peak_rss_bytes()
    data = prog.nbytes + phi.nbytes + theta.nbytes
    return {"benchmark": "memory", "n": n, "L": L, "steps": steps, "dtype": dtype_name,
            "peak_rss_bytes": peak, "overhead_bytes": overhead, "program_bytes": prog.nbytes,
            "input_bytes": phi.nbytes + theta.nbytes,
            "ratio_above_overhead": (peak - overhead) / data,
            "within_1.5x_plus_overhead": peak <= overhead + 1.5 * data}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="2048x256,4096x512,8192x512")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--dtype", default="float64")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        n, L = (int(v) for v in a.one.split("x"))
        c.emit(one(n, L, a.steps, a.dtype))
        return
    recs = []
    for size in a.sizes.split(","):
        recs += c.run_self([__file__, "--one", size, "--steps", str(a.steps), "--dtype", a.dtype])
        c.emit(recs[-1])
    # peak = overhead + slope x (program + inputs), fitted over sizes: the slope is the
    # per-byte cost, the intercept the fixed overhead (runtime + compiling the new shapes)
    data = np.array([r["program_bytes"] + r["input_bytes"] for r in recs], float)
    peak = np.array([r["peak_rss_bytes"] for r in recs], float)
    slope, intercept = np.polyfit(data, peak, 1) if len(recs) > 1 else (np.nan, np.nan)
    c.emit({"benchmark": "memory_fit", "slope_peak_per_data_byte": slope,
            "fixed_overhead_bytes_fit": intercept, "slope_within_1.5": bool(slope <= 1.5),
            **c.env_report()})


if __name__ == "__main__":
    main()
