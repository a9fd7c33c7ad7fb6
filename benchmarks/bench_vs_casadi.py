"""Target 3, optional extra (benchmarks/README.md): against CasADi direct collocation with IPOPT.

The peer solves the paper's optimal-control problem (eq. 3) numerically, written the way a
capable CasADi user would write it from the paper: Legendre collocation of degree d = 3 on
N uniform intervals, the states z_r and the weights W as unknowns at every collocation point
(and the states at every interval end), the running cost by the collocation quadrature. One
SX function per interval, called N times into an SX graph, ``ca.nlpsol`` with IPOPT (exact
Hessians, MUMPS; options in ``IPOPT``). It starts from nothing of ours: W = 0 and the
open-loop states z_r(t) = exp(-t) g^-1(phi_r) at every point.

Plain IPOPT from that start does not converge reliably at n=16, L=8 (on 3 to 5 intervals it
stalled in long backtracking line searches for 400 iterations; where it converged it took
74-299), so the peer does what one does then:
continuation in beta (``--betas``, 0.05 to 0.5, each solve warm-started from the previous)
on a coarse mesh (``--coarse`` intervals), then mesh refinement: one solve on the fine mesh
(``--intervals``) warm-started by interpolating the coarse solution. ``--coarse 0`` solves
the fine mesh directly at the final beta (enough at n=4).

Scoring, for both solvers: the weight program each one delivers is scored by
``ws.evaluate_index`` (N integrated under that W(t), rtol 1e-10): |J - J*| with the exact
optimum J* = -sum_r g^-1(phi_r).theta_r. CasADi's program is W(t) interpolated through its d
collocation values on each interval (degree d-1). The NLP objective itself is no measure of
the discretization: with Gauss-Legendre points the quadrature is exact for the collocation
polynomials, so the completing-square identity (derivation eq. 8) holds exactly on the mesh, NLP
objective = J* + sum_k,j h B_j/(2 beta) ||W_kj - beta M_kj||^2, and its optimum is J* for
every N. It is reported (``abs_err_J_casadi_nlp``) as IPOPT's convergence only. N is chosen
so that the program's |J - J*| is within 1e-8 (it falls like h^6).

Times: ours is the whole ``ws.synthesize`` call, warm JIT, min over ``--repeats``. CasADi's
construction (building the NLPs, ``nlpsol``: derivatives, sparsity) is timed apart from its
solve (every IPOPT call of the continuation and the refinement; min over ``--repeats`` too
when under 1 s); ``speedup`` uses the solve, ``speedup_incl_build`` both. Needs
``pip install casadi`` (not a dependency of weightsynth).

    .venv/bin/python benchmarks/bench_vs_casadi.py [--sizes 4x3,16x8 --intervals 8,64
                                                    --coarse 0,4]
"""

from __future__ import annotations

import argparse
import time

import _common as c
import jax.numpy as jnp
import numpy as np

import weightsynth as ws

#: IPOPT options shared by every solve; ``tol`` is set per stage. AMD ordering: MUMPS' own
#: choice (AMF) costs ~7x the flops per factorization here. The cg-penalty line search took
#: 65 iterations on the coarse continuation at n=16 where the default filter took 117.
IPOPT = {"print_level": 0, "sb": "yes", "max_iter": 1000, "mumps_pivot_order": 0,
         "line_search_method": "cg-penalty"}


def _collocation(d):
    """Legendre points (with 0 in front), derivative matrix, end weights, quadrature."""
    import casadi as ca

    tau = np.append(0, ca.collocation_points(d, "legendre"))
    C, D, B = np.zeros((d + 1, d + 1)), np.zeros(d + 1), np.zeros(d + 1)
    for j in range(d + 1):  # Lagrange basis of the interval
        p = np.poly1d([1.0])
        for r in range(d + 1):
            if r != j:
                p *= np.poly1d([1, -tau[r]]) / (tau[j] - tau[r])
        D[j] = p(1.0)
        dp = np.polyder(p)
        for r in range(d + 1):
            C[j, r] = dp(tau[r])
        B[j] = np.polyint(p)(1.0)
    return tau, C, D, B


def _lagrange(nodes, s):
    return np.array([np.prod([(s - nodes[m]) / (nodes[j] - nodes[m])
                              for m in range(len(nodes)) if m != j]) for j in range(len(nodes))])


class _Mesh:
    """The collocation NLP on N uniform intervals of [0, t1], beta a parameter."""

    def __init__(self, phi, theta, t1, N, d):
        import casadi as ca

        L, n = phi.shape
        self.L, self.n, self.N, self.d, self.h = L, n, N, d, t1 / N
        self.tau, C, D, B = _collocation(d)
        self.Z0 = np.arctanh(phi)
        Th, h = ca.DM(theta), self.h
        beta = ca.SX.sym("beta")
        Zk = ca.SX.sym("Zk", L, n)
        Zc = [ca.SX.sym(f"Z{j}", L, n) for j in range(d)]
        Wc = [ca.SX.sym(f"W{j}", n, n) for j in range(d)]
        res, cost, Zend = [], 0, D[0] * Zk
        for j in range(1, d + 1):
            Zp = C[0, j] * Zk + sum(C[r, j] * Zc[r - 1] for r in range(1, d + 1))
            Z, W = Zc[j - 1], Wc[j - 1]
            res.append(ca.vec(h * (-Z + ca.mtimes(ca.tanh(Z), W.T)) - Zp))
            Zend = Zend + D[j] * Z
            M = ca.mtimes(Th.T, ca.tanh(Z))
            running = -2 * ca.sum1(ca.sum2(Z * Th)) + beta * ca.sumsqr(M) + ca.sumsqr(W) / beta
            cost = cost + B[j] * h * running / 2  # eq. 3: 1/2 int (...) dt
        V = ca.vertcat(*[ca.vec(z) for z in Zc], *[ca.vec(w) for w in Wc])
        interval = ca.Function("interval", [ca.vec(Zk), V, beta], [ca.vertcat(*res), ca.vec(Zend),
                                                                   cost])
        self.nv = V.shape[0]
        p = ca.SX.sym("beta")
        Vs = [ca.SX.sym(f"V{k}", self.nv) for k in range(N)]
        Ze = [ca.SX.sym(f"Ze{k}", L * n) for k in range(N)]
        g, f, start = [], 0, ca.DM(self.Z0.ravel(order="F"))
        for k in range(N):
            R, E, cost_k = interval(start, Vs[k], p)
            g += [R, E - Ze[k]]
            f, start = f + cost_k, Ze[k]
        f -= ca.dot(Ze[-1], ca.DM(theta.ravel(order="F")))  # terminal term -sum z_r(t1).theta_r
        nlp = {"x": ca.vertcat(*Vs, *Ze), "f": f, "g": ca.vertcat(*g), "p": p}
        self.ng = nlp["g"].shape[0]
        self.solvers = {}
        self.nlp = nlp

    def solver(self, tol):
        import casadi as ca

        if tol not in self.solvers:
            self.solvers[tol] = ca.nlpsol("S", "ipopt", self.nlp,
                                          {"print_time": False, "ipopt": {**IPOPT, "tol": tol}})
        return self.solvers[tol]

    def guess(self, gZ, gW):
        """x0 from functions t -> Z (L, n) and t -> W (n, n)."""
        h, d, N = self.h, self.d, self.N
        V = []
        for k in range(N):
            ts = [(k + self.tau[j + 1]) * h for j in range(d)]
            V += [gZ(t).ravel(order="F") for t in ts] + [gW(t).ravel(order="F") for t in ts]
        return np.concatenate(V + [gZ((k + 1) * h).ravel(order="F") for k in range(N)])

    def unpack(self, x):
        """(W at the collocation points (N, d, n, n), Z there (N, d, L, n), Z at starts)."""
        L, n, N, d = self.L, self.n, self.N, self.d
        x = np.asarray(x).ravel()
        V = x[:N * self.nv].reshape(N, self.nv)
        Zc = V[:, :d * L * n].reshape(N, d, n, L).transpose(0, 1, 3, 2)
        Wc = V[:, d * L * n:].reshape(N, d, n, n).transpose(0, 1, 3, 2)
        Ze = x[N * self.nv:].reshape(N, n, L).transpose(0, 2, 1)
        return Wc, Zc, np.concatenate([self.Z0[None], Ze[:-1]])

    def interpolants(self, x):
        """t -> Z (the collocation polynomials) and t -> W (degree d-1 through its values)."""
        Wc, Zc, Zs = self.unpack(x)
        N, d, tau, h = self.N, self.d, self.tau, self.h

        def where(t):
            k = min(max(int(np.floor(t / h + 1e-12)), 0), N - 1)
            return k, t / h - k

        def gZ(t):
            k, s = where(t)
            w = _lagrange(tau, s)
            return w[0] * Zs[k] + sum(w[j] * Zc[k, j - 1] for j in range(1, d + 1))

        def gW(t):
            k, s = where(t)
            w = _lagrange(tau[1:], s)
            return sum(w[j] * Wc[k, j] for j in range(d))

        return gZ, gW


def weight_program(Wc, t1):
    """CasADi's weight program as a JAX-traceable t -> W(t): on each interval the degree d-1
    Lagrange polynomial through the W at its d collocation points."""
    import casadi as ca

    N, d = Wc.shape[:2]
    h, tau, Wj = t1 / N, np.asarray(ca.collocation_points(d, "legendre")), jnp.asarray(Wc)

    def W(t):
        k = jnp.clip(jnp.floor(t / h), 0, N - 1).astype(int)
        s = t / h - k
        out = 0.0
        for j in range(d):
            w = 1.0
            for m in range(d):
                if m != j:
                    w = w * (s - tau[m]) / (tau[j] - tau[m])
            out = out + w * Wj[k, j]
        return out

    return W


def casadi_solve(phi, theta, beta, t1, N, coarse=0, betas=(), d=3, tol=1e-10,
                 coarse_tol=1e-8) -> dict:
    """Continuation in beta on ``coarse`` intervals (if > 0), then the ``N``-interval solve."""
    t = time.perf_counter()
    fine = _Mesh(phi, theta, t1, N, d)
    fine_S = fine.solver(tol)
    first = _Mesh(phi, theta, t1, coarse, d) if coarse else fine
    first_S = first.solver(coarse_tol) if coarse else fine_S
    build = time.perf_counter() - t
    lbg = np.zeros(first.ng)
    iters, status = [], []
    t = time.perf_counter()
    x = first.guess(lambda s: np.exp(-s) * first.Z0, lambda s: np.zeros((fine.n, fine.n)))
    for b in ([*betas, beta] if coarse else [beta]):
        r = first_S(x0=x, lbg=lbg, ubg=lbg, p=b)
        x = r["x"]
        iters.append(first_S.stats()["iter_count"])
        status.append(first_S.stats()["return_status"])
    if coarse:
        x = fine.guess(*first.interpolants(x))
        r = fine_S(x0=x, lbg=np.zeros(fine.ng), ubg=np.zeros(fine.ng), p=beta)
        iters.append(fine_S.stats()["iter_count"])
        status.append(fine_S.stats()["return_status"])
    solve = time.perf_counter() - t
    return {"build_s": build, "solve_s": solve, "J_nlp": float(r["f"]), "iterations": iters,
            "status": status, "W": fine.unpack(r["x"])[0]}


def run(n, L, N, coarse, betas, repeats=5) -> dict:
    phi, theta, _ = c.problem(n, L, np.float64)
    beta, t1 = 0.5, 1.0
    J_star = float(-np.sum(np.arctanh(phi) * theta))
    call = lambda: ws.synthesize(phi, theta, beta=beta, t1=t1)  # noqa: E731
    c.timed(call)
    wall, _, prog = c.timed(call, repeats)
    J_ours = ws.evaluate_index(prog, phi, theta).J
    cas = casadi_solve(phi, theta, beta, t1, N, coarse, betas)
    if cas["solve_s"] < 1.0:  # short enough to repeat: min over repeats, like ours
        cas["solve_s"] = min([cas["solve_s"]] + [
            casadi_solve(phi, theta, beta, t1, N, coarse, betas)["solve_s"]
            for _ in range(repeats - 1)])
    J_cas = ws.evaluate_index(weight_program(cas["W"], t1), phi, theta, beta=beta, t1=t1).J
    err_ours, err_cas = abs(J_ours - J_star), abs(J_cas - J_star)
    return {"benchmark": "vs_casadi", "n": n, "L": L, "degree": 3, "intervals": N,
            "coarse_intervals": coarse, "beta_steps": list(betas) if coarse else [],
            "ours_s": wall, "casadi_solve_s": cas["solve_s"], "casadi_build_s": cas["build_s"],
            "speedup": cas["solve_s"] / wall,
            "speedup_incl_build": (cas["solve_s"] + cas["build_s"]) / wall,
            "casadi_iterations": cas["iterations"], "casadi_status": cas["status"],
            "J_star": J_star, "abs_err_J_ours": err_ours, "abs_err_J_casadi": err_cas,
            "abs_err_J_casadi_nlp": abs(cas["J_nlp"] - J_star),
            "equal_J_within_1e-8": bool(max(err_ours, err_cas) <= 1e-8)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="4x3,16x8")
    p.add_argument("--intervals", default="8,64", help="fine mesh, one per size")
    p.add_argument("--coarse", default="0,4", help="coarse mesh (0: none), one per size")
    p.add_argument("--betas", default="0.05,0.1,0.2,0.3,0.4",
                   help="continuation steps before the final beta = 0.5, on the coarse mesh")
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    sizes = a.sizes.split(",")
    Ns = [int(v) for v in a.intervals.split(",")]
    coarse = [int(v) for v in a.coarse.split(",")]
    betas = [float(v) for v in a.betas.split(",") if v]
    for s, N, nc in zip(sizes, Ns, coarse, strict=True):
        n, L = (int(v) for v in s.split("x"))
        c.emit({**run(n, L, N, nc, betas, a.repeats), **c.env_report()})


if __name__ == "__main__":
    main()
