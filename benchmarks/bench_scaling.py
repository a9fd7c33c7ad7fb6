"""Target 5 (benchmarks/README.md): exponents of synthesis time against n and against L
(log-log fit).

Times ``synthesize`` (float32, 30 fixed Tsit5 steps, warm JIT, min of repeats) over n at
fixed L, and over L at fixed n, on sizes where GEMM is efficient; fits log t = p log x + c
and saves a log-log plot. Expect p ~ 1 in n and p ~ 2 in L (4 n L^2 flops per evaluation;
from L = 256 up the Gram matrix uses its symmetry, which lowers the L exponent slightly).

    .venv/bin/python benchmarks/bench_scaling.py [--plot benchmarks/scaling.png]
"""

from __future__ import annotations

import argparse

import _common as c
import numpy as np

import weightsynth as ws


def time_synthesis(n, L, steps, dtype, repeats) -> float:
    phi, theta, beta = c.problem(n, L, dtype)
    call = lambda: ws.synthesize(phi, theta, beta=beta, steps=steps)  # noqa: E731
    c.timed(call)  # compile for these shapes
    return c.timed(call, repeats)[0]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ns", default="1024,2048,4096,8192")
    p.add_argument("--L-fixed", type=int, default=128)
    p.add_argument("--Ls", default="64,128,256,512")
    p.add_argument("--n-fixed", type=int, default=4096)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--plot", default="benchmarks/scaling.png")
    a = p.parse_args(argv)
    dt = c.dtype_arg(a.dtype)
    ns = [int(x) for x in a.ns.split(",")]
    Ls = [int(x) for x in a.Ls.split(",")]
    t_n = [time_synthesis(n, a.L_fixed, a.steps, dt, a.repeats) for n in ns]
    t_L = [time_synthesis(a.n_fixed, L, a.steps, dt, a.repeats) for L in Ls]
    p_n = float(np.polyfit(np.log(ns), np.log(t_n), 1)[0])
    p_L = float(np.polyfit(np.log(Ls), np.log(t_L), 1)[0])
    done = [_flops_done(a.n_fixed, L) for L in Ls]  # Gram symmetry: fewer flops from L=256
    p_done = float(np.polyfit(np.log(Ls), np.log(done), 1)[0])
    if a.plot:
        _plot(a.plot, ns, t_n, p_n, a.L_fixed, Ls, t_L, p_L, a.n_fixed)
    c.emit({"benchmark": "scaling", "dtype": a.dtype, "steps": a.steps,
            "n_values": ns, "L_fixed": a.L_fixed, "times_vs_n_s": t_n, "exponent_n": p_n,
            "L_values": Ls, "n_fixed": a.n_fixed, "times_vs_L_s": t_L, "exponent_L": p_L,
            "exponent_L_of_flops_done": p_done,
            "plot": a.plot, **c.env_report()})


def _flops_done(n, L) -> float:
    """Flops per evaluation actually done: A Theta, plus G G^T from its upper block triangle."""
    b = min(4, L // 128)
    return 2 * n * L * L * (1 + ((b + 1) / (2 * b) if b >= 2 else 1.0))


def _plot(path, ns, t_n, p_n, L_fixed, Ls, t_L, p_L, n_fixed):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, x, t, pw, lab in ((axes[0], ns, t_n, p_n, f"n (L = {L_fixed})"),
                              (axes[1], Ls, t_L, p_L, f"L (n = {n_fixed})")):
        ax.loglog(x, t, "o-", label=f"measured, slope {pw:.2f}")
        ax.set_xlabel(lab)
        ax.set_ylabel("synthesize time (s)")
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("weightsynth.synthesize: time vs size (float32, warm JIT)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
