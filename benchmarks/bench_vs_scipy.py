"""Target 3 (benchmarks/README.md): against the implementation a user would write from the paper.

The peer: scipy ``solve_ivp`` (RK45) on the flattened nL state, forming W = beta Theta^T g(Z)
(eq. 7) at every evaluation and applying it to every sample (4 n^2 L flops per evaluation).
Ours: ``ws.synthesize`` (adaptive Tsit5, Gram form in reduced coordinates, 4 n L^2 flops).
Both run at the same rtol/atol on the same inputs. J of both solutions is computed by one
independent NumPy function (terminal term + Simpson's rule on a common time grid, eq. 3)
and compared with the exact optimum J* = -sum_r g^-1(phi_r).theta_r.

The scipy peer runs in subprocesses: with this shell's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
and with both removed (one run when they are not set).

    .venv/bin/python benchmarks/bench_vs_scipy.py [--n 4096 --L 128 --rtol 1e-6]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import _common as c
import numpy as np
from scipy.integrate import simpson, solve_ivp


def j_from_states(states, ts, theta, beta) -> float:
    r"""J (eq. 3) under W = W*: -sum Z(t1).Theta + int (-sum Z.Theta + beta ||Theta^T G||^2) dt.

    ``states`` (T, L, n) on the grid ``ts``; ||Theta^T G||_F^2 = sum (G G^T) * (Theta Theta^T).
    """
    C = theta @ theta.T
    run = [-np.sum(Z * theta) + beta * np.sum((np.tanh(Z) @ np.tanh(Z).T) * C) for Z in states]
    return float(-np.sum(states[-1] * theta) + simpson(np.array(run), x=ts))


def scipy_peer(n, L, rtol, atol, grid_pts) -> dict:
    phi, theta, beta = c.problem(n, L, np.float64)
    z0 = np.arctanh(phi)

    def rhs(t, y):
        Z = y.reshape(L, n)
        G = np.tanh(Z)
        W = beta * (theta.T @ G)            # the n x n weights, eq. (7)
        return (-Z + G @ W.T).ravel()       # every sample through N, eq. (1)

    ts = np.linspace(0.0, 1.0, grid_pts)
    w0, c0 = time.perf_counter(), time.process_time()
    sol = solve_ivp(rhs, (0.0, 1.0), z0.ravel(), method="RK45", rtol=rtol, atol=atol, t_eval=ts)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    states = sol.y.T.reshape(len(ts), L, n)
    J = j_from_states(states, ts, theta, beta)
    return {"wall_s": wall, "cpu_s": cpu, "nfev": int(sol.nfev), "J": J,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE")}


def ours(n, L, rtol, atol, grid_pts, repeats) -> dict:
    import weightsynth as ws

    phi, theta, beta = c.problem(n, L, np.float64)

    def call():
        return ws.synthesize(phi, theta, beta=beta, t1=1.0, rtol=rtol, atol=atol,
                             n_save=grid_pts)

    first, _, _ = c.timed(call)
    wall, cpu, prog = c.timed(call, repeats)
    ts = prog.stored()[0]
    states = np.stack([prog.states(t) for t in ts])
    J_star = float(-np.sum(np.arctanh(phi) * theta))
    return {"wall_s": wall, "cpu_s": cpu, "compile_s": max(first - wall, 0.0),
            "num_steps": int(prog.stats["num_steps"]), "J": j_from_states(states, ts, theta,
                                                                      beta), "J_star": J_star}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--L", type=int, default=128)
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--atol", type=float, default=1e-8)
    p.add_argument("--grid", type=int, default=129, help="common time grid for J (odd)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--peer-only", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.peer_only:
        c.emit(scipy_peer(a.n, a.L, a.rtol, a.atol, a.grid))
        return
    me = ours(a.n, a.L, a.rtol, a.atol, a.grid, a.repeats)
    args = [__file__, "--peer-only", "--n", str(a.n), "--L", str(a.L), "--rtol", str(a.rtol),
            "--atol", str(a.atol), "--grid", str(a.grid)]
    peers = {"env_as_is": c.run_self(args)[0]}
    blas_vars = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    if any(v in os.environ for v in blas_vars):
        env = {k: v for k, v in os.environ.items() if k not in blas_vars}
        peers["env_unset"] = c.run_self(args, env=env)[0]
    else:
        peers["env_unset"] = "same as env_as_is (neither variable is set here)"
    J_star = me["J_star"]
    err = lambda J: abs(J - J_star) / abs(J_star)  # noqa: E731
    # equal accuracy: tighten our tolerance until our J is at least as accurate as scipy's
    target, acc, tol = err(peers["env_as_is"]["J"]), me, a.rtol
    while err(acc["J"]) > target and tol > a.rtol * 1e-4:
        tol /= 10
        acc = {**ours(a.n, a.L, tol, a.atol * tol / a.rtol, a.grid, a.repeats), "rtol": tol}
    rec = {"benchmark": "vs_scipy", "n": a.n, "L": a.L, "rtol": a.rtol, "atol": a.atol,
           "ours": me, "ours_equal_accuracy": acc, "scipy_rk45": peers,
           "rel_err_J_ours": err(me["J"]), "rel_err_J_ours_equal_accuracy": err(acc["J"])}
    for k, peer in peers.items():
        if isinstance(peer, dict):
            rec[f"speedup_equal_tolerance_{k}"] = peer["wall_s"] / me["wall_s"]
            rec[f"speedup_equal_accuracy_{k}"] = peer["wall_s"] / acc["wall_s"]
            rec[f"speedup_cpu_time_equal_tolerance_{k}"] = peer["cpu_s"] / me["cpu_s"]
            rec[f"rel_err_J_scipy_{k}"] = err(peer["J"])
    c.emit({**rec, **c.env_report(), "python_exe": sys.executable})


if __name__ == "__main__":
    main()
