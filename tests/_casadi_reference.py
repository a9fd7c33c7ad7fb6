r"""An independent direct-collocation solve of the general problem with CasADi and IPOPT.

Legendre collocation of degree 3 on N uniform intervals of [0, t1]: the states z_r and the
full n x n weight matrix W are unknowns at every collocation point (states also at interval
ends); the weight penalty ||W||^2 / (2 beta) by the collocation quadrature; terminal index
``"correlation"`` or ``"squared_error"`` on g = tanh. Nothing here imports weightsynth; it
optimizes W directly, not the feedback form the package uses. Returns J, the collocation
times and W there. For n <= 5, L <= 4 (the NLP has N * 3 * (n^2 + L n) + N L n unknowns).
"""

from __future__ import annotations

import numpy as np


def _lagrange_data(d):
    import casadi as ca

    tau = np.append(0, ca.collocation_points(d, "legendre"))
    C, D, B = np.zeros((d + 1, d + 1)), np.zeros(d + 1), np.zeros(d + 1)
    for j in range(d + 1):
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


#: solves already done in this process: the solve is deterministic, and test modules
#: (test_feedback, test_feedback_subspace) ask for the same references
_SOLVED: dict = {}


def solve(phi, theta, beta, t1, kind, N=12, d=3, tol=1e-12):
    """(J, collocation times, W there); each distinct problem is solved once per process
    (copies of the arrays are returned)."""
    phi, theta = np.asarray(phi, np.float64), np.asarray(theta, np.float64)
    key = (phi.shape, phi.tobytes(), theta.tobytes(), float(beta), float(t1), kind, N, d, tol)
    if key not in _SOLVED:
        _SOLVED[key] = _solve(phi, theta, beta, t1, kind, N, d, tol)
    J, times, W = _SOLVED[key]
    return J, times.copy(), W.copy()


def _solve(phi, theta, beta, t1, kind, N, d, tol):
    import casadi as ca

    L, n = phi.shape
    tau, Cm, D, B = _lagrange_data(d)
    h = t1 / N
    opti = ca.Opti()
    Th = ca.DM(theta)
    Zk = ca.DM(np.arctanh(phi))
    cost, Ws, times = 0, [], []
    for k in range(N):
        Zc = [opti.variable(L, n) for _ in range(d)]
        Wc = [opti.variable(n, n) for _ in range(d)]
        for v in Zc:
            opti.set_initial(v, np.arctanh(phi) * np.exp(-k * h))
        Zend = D[0] * Zk
        for j in range(1, d + 1):
            Zp = Cm[0, j] * Zk + sum(Cm[r, j] * Zc[r - 1] for r in range(1, d + 1))
            Z, W = Zc[j - 1], Wc[j - 1]
            opti.subject_to(h * (-Z + ca.mtimes(ca.tanh(Z), W.T)) == Zp)
            Zend = Zend + D[j] * Z
            cost = cost + B[j] * h * ca.sumsqr(W) / (2 * beta)
            Ws.append(W)
            times.append((k + tau[j]) * h)
        Znext = opti.variable(L, n)
        opti.set_initial(Znext, np.arctanh(phi) * np.exp(-(k + 1) * h))
        opti.subject_to(Znext == Zend)
        Zk = Znext
    G1 = ca.tanh(Zk)
    cost = cost + (-ca.sum1(ca.sum2(G1 * Th)) if kind == "correlation"
                   else ca.sumsqr(G1 - Th))
    opti.minimize(cost)
    opti.solver("ipopt", {"print_time": False}, {"print_level": 0, "sb": "yes", "tol": tol})
    sol = opti.solve()
    W = np.stack([np.asarray(sol.value(w)).reshape(n, n) for w in Ws])
    return float(sol.value(cost)), np.array(times), W
