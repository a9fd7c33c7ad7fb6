"""Target 3, optional extra (issue 5): against CasADi direct collocation with IPOPT.

The peer solves the paper's optimal-control problem (eq. 3) numerically: Legendre
collocation of degree 3 on N intervals, the states z_r and the weights W as unknowns at every
collocation point, the running cost by the collocation quadrature, IPOPT with exact
Hessians. Ours is ``ws.synthesize`` (adaptive Tsit5, warm JIT). Both J are compared with
the exact optimum J* = -sum_r g^-1(phi_r).theta_r, and the ratio of wall times is printed.
Needs ``pip install casadi`` (not a dependency of weightsynth).

    .venv/bin/python benchmarks/bench_vs_casadi.py [--sizes 4x3,16x8 --intervals 20]
"""

from __future__ import annotations

import argparse
import time

import _common as c
import numpy as np

import weightsynth as ws


def casadi_solve(phi, theta, beta, t1, N, d=3) -> tuple[float, float]:
    import casadi as ca

    L, n = phi.shape
    tau = np.append(0, ca.collocation_points(d, "legendre"))
    C, D, B = np.zeros((d + 1, d + 1)), np.zeros(d + 1), np.zeros(d + 1)
    for j in range(d + 1):  # Lagrange basis: derivative matrix, end weights, quadrature
        p = np.poly1d([1.0])
        for r in range(d + 1):
            if r != j:
                p *= np.poly1d([1, -tau[r]]) / (tau[j] - tau[r])
        D[j] = p(1.0)
        dp = np.polyder(p)
        for r in range(d + 1):
            C[j, r] = dp(tau[r])
        B[j] = np.polyint(p)(1.0)
    h = t1 / N
    opti = ca.Opti()
    Th = ca.DM(theta)

    def running(Z, W):
        M = Th.T @ ca.tanh(Z)
        return (-2 * ca.sum1(ca.sum2(Z * Th)) + beta * ca.sumsqr(M) + ca.sumsqr(W) / beta) / 2

    Zk = ca.DM(np.arctanh(phi))
    cost = 0
    for _ in range(N):
        Zc = [opti.variable(L, n) for _ in range(d)]
        Wc = [opti.variable(n, n) for _ in range(d)]
        for j in range(d):
            opti.set_initial(Wc[j], 0)
        Zend = D[0] * Zk
        for j in range(1, d + 1):
            Zp = C[0, j] * Zk + sum(C[r, j] * Zc[r - 1] for r in range(1, d + 1))
            Z, W = Zc[j - 1], Wc[j - 1]
            opti.subject_to(h * (-Z + ca.tanh(Z) @ W.T) == Zp)
            Zend = Zend + D[j] * Z
            cost = cost + B[j] * h * running(Z, W)
        Zk = opti.variable(L, n)
        opti.subject_to(Zk == Zend)
    opti.minimize(cost - ca.sum1(ca.sum2(Zk * Th)))
    opti.solver("ipopt", {"print_time": False}, {"print_level": 0, "tol": 1e-12,
                                                 "sb": "yes"})
    t = time.perf_counter()
    sol = opti.solve()
    return time.perf_counter() - t, float(sol.value(opti.f))


def run(n, L, N) -> dict:
    phi, theta, _ = c.problem(n, L, np.float64)
    beta, t1 = 0.5, 1.0
    J_star = float(-np.sum(np.arctanh(phi) * theta))
    call = lambda: ws.synthesize(phi, theta, beta=beta, t1=t1)  # noqa: E731
    c.timed(call)
    wall, _, prog = c.timed(call, 5)
    J_ours = ws.evaluate_index(prog, phi, theta).J
    t_cas, J_cas = casadi_solve(phi, theta, beta, t1, N)
    return {"benchmark": "vs_casadi", "n": n, "L": L, "intervals": N, "ours_s": wall,
            "casadi_ipopt_s": t_cas, "speedup": t_cas / wall, "J_star": J_star,
            "abs_err_J_ours": abs(J_ours - J_star), "abs_err_J_casadi": abs(J_cas - J_star)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="4x3,16x8")
    p.add_argument("--intervals", type=int, default=20)
    a = p.parse_args(argv)
    for s in a.sizes.split(","):
        n, L = (int(v) for v in s.split("x"))
        c.emit({**run(n, L, a.intervals), **c.env_report()})


if __name__ == "__main__":
    main()
