r"""An independent plain-NumPy reference for the tests: classical RK4 and the paper's equations.

Nothing here imports weightsynth. The formal system S is written per sample with the
explicit weight matrix W*(t) = beta Theta^T g(Z) (derivation eq. 7), not the Gram form
that the package uses, and the index J (eq. 3) and the excess (1/(2 beta)) int ||W - beta M||^2
(derivation eq. 8) are integrated as extra state components.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits


# ---- activations, written out by hand --------------------------------------------------
def activation(name: str, gain: float = 1.0):
    """(g, g^{-1}) for ``"tanh"``, ``"logistic"`` or ``"linear"`` with the given gain."""
    if name == "tanh":
        return (lambda z: np.tanh(gain * z)), (lambda y: np.arctanh(y) / gain)
    if name == "logistic":
        return (lambda z: 1.0 / (1.0 + np.exp(-gain * z))), (
            lambda y: np.log(y / (1.0 - y)) / gain
        )
    if name == "linear":
        return (lambda z: gain * z), (lambda y: y / gain)
    raise KeyError(name)


def make_data(L: int, n: int, name: str = "tanh", seed: int = 0, amp: float = 0.6):
    """A training set (phi, theta): bipolar targets, inputs = noisy targets inside g's range.

    For the logistic, targets are in {0.1, 0.9} and inputs in (0, 1).
    """
    rng = np.random.default_rng(seed)
    s = np.sign(rng.standard_normal((L, n)))
    s[s == 0] = 1.0
    noise = rng.uniform(-0.3, 0.3, (L, n))
    if name == "logistic":
        return 0.5 + 0.5 * amp * s * (1 - noise) * 0.9, 0.5 + 0.4 * s
    return amp * s * (1 - noise), s


# ---- a plain fixed-step RK4 on tuples of arrays ----------------------------------------
def _axpy(a, x, y):
    return tuple(yi + a * xi for xi, yi in zip(x, y, strict=True))


def rk4(f: Callable, y0: tuple, t0: float, t1: float, steps: int,
        keep=None) -> tuple[np.ndarray, list]:
    """Classical RK4 for dy/dt = f(t, y), y a tuple of arrays; returns (ts, [y(ts[k])]).

    ``keep``: the step indices k to return (default all), to save memory on large systems.
    BLAS runs on one thread: these matrices are small, and on a loaded machine its threads
    made each step ~50x slower.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _rk4(f, y0, t0, t1, steps, keep)


def _rk4(f, y0, t0, t1, steps, keep):
    h = (t1 - t0) / steps
    ts = t0 + h * np.arange(steps + 1)
    keep = set(range(steps + 1)) if keep is None else {int(k) for k in keep}
    y = tuple(np.array(v, dtype=np.float64) for v in y0)
    out = [y] if 0 in keep else []
    for k in range(steps):
        t = ts[k]
        k1 = f(t, y)
        k2 = f(t + h / 2, _axpy(h / 2, k1, y))
        k3 = f(t + h / 2, _axpy(h / 2, k2, y))
        k4 = f(t + h, _axpy(h, k3, y))
        y = tuple(yi + h / 6 * (a + 2 * b + 2 * c + d)
                  for yi, a, b, c, d in zip(y, k1, k2, k3, k4, strict=True))
        if k + 1 in keep:
            out.append(y)
    return ts[sorted(keep)], out


# ---- the paper's systems ---------------------------------------------------------------
def optimal_weights(Z, theta, beta, g):
    """W*(t) = beta sum_r theta_r g(z_r)^T, formed as an explicit n x n matrix."""
    return beta * (theta.T @ g(Z))  # = sum_r theta_r g(z_r)^T


def _network(Z, W, g):
    """dz_r/dt = -z_r + W g(z_r) for each sample r (row) of Z, eq. (1)/(2), with W explicit."""
    return -Z + g(Z) @ W.T


def closed_loop(phi, theta, beta, t0, t1, steps, name="tanh", gain=1.0, z0=None):
    """S under W*(t) (formed explicitly), by RK4: returns (ts, Z of shape (steps+1, L, n)).

    It starts from Z = g^{-1}(phi), or from the states ``z0`` if given (then ``phi`` is
    unused)."""
    g, ginv = activation(name, gain)

    def f(t, y):
        (Z,) = y
        return (_network(Z, optimal_weights(Z, theta, beta, g), g),)

    ts, ys = rk4(f, (ginv(phi) if z0 is None else np.asarray(z0),), t0, t1, steps)
    return ts, np.stack([y[0] for y in ys])


def run_network(weights: Callable, z0, t0, t1, steps, name="tanh", gain=1.0):
    """N under a given W(t) (``weights(t) -> (n, n)``) from states z0 (B, n), by RK4."""
    g, _ = activation(name, gain)
    ts, ys = rk4(lambda t, y: (_network(y[0], weights(t), g),), (z0,), t0, t1, steps)
    return ts, np.stack([y[0] for y in ys])


def index(phi, theta, beta, t0, t1, steps, perturb: Callable, name="tanh", gain=1.0,
          parts: bool = False):
    r"""J (eq. 3) and the excess (1/(2 beta)) int ||W - beta M||^2 dt of W(t) = perturb(t, W*(t)).

    S is integrated alongside, so ``perturb`` can build on the optimal program W*(t); the
    training samples run through N under W(t), and both integrals are state components.
    Returns (J, excess, J_star) with J_star = -sum_r g^{-1}(phi_r).theta_r; with ``parts``,
    also J's terminal term -sum_r z_r(t1).theta_r and its running integral.
    """
    g, ginv = activation(name, gain)
    Z0 = ginv(phi)

    def f(t, y):
        Zs, Zn, _, _ = y
        Ws = optimal_weights(Zs, theta, beta, g)
        W = perturb(t, Ws)
        M = theta.T @ g(Zn)  # sum_r theta_r g(z_r)^T
        running = (-2 * np.sum(Zn * theta) + beta * np.sum(M**2) + np.sum(W**2) / beta)
        excess = np.sum((W - beta * M) ** 2)
        return (_network(Zs, Ws, g), _network(Zn, W, g),
                np.asarray(running), np.asarray(excess))

    _, ys = rk4(f, (Z0, Z0, 0.0, 0.0), t0, t1, steps)
    Zn1, run, exc = ys[-1][1], float(ys[-1][2]), float(ys[-1][3])
    terminal, running = -float(np.sum(Zn1 * theta)), 0.5 * run
    out = (terminal + running, exc / (2 * beta), float(-np.sum(Z0 * theta)))
    return (*out, terminal, running) if parts else out


def optimal_weights_at(phi, theta, beta, t0, t1, fractions, name="tanh", gain=1.0,
                       steps=60):
    r"""W*(t) by RK4 of S with the explicit W, at t = t0 + f (t1 - t0) for f in ``fractions``.

    Runs RK4 with ``steps`` and with 2 ``steps`` steps (each fraction must fall on the coarse
    grid). Returns (times, W of shape (k, n, n) from the fine run, err), where err is the
    Richardson estimate max |W_coarse - W_fine| / 15 of the fine run's error (RK4's global
    error is O(h^4), so halving h divides it by 16).
    """
    g, ginv = activation(name, gain)
    idx = np.asarray(fractions, dtype=np.float64) * steps
    if not np.allclose(idx, np.round(idx)):
        raise ValueError("each fraction times steps must be an integer")
    runs = []
    for N, k in ((steps, np.round(idx)), (2 * steps, 2 * np.round(idx))):
        def f(t, y):
            (Z,) = y
            return (_network(Z, optimal_weights(Z, theta, beta, g), g),)

        ts, ys = rk4(f, (ginv(phi),), t0, t1, N, keep=k)
        runs.append(np.stack([optimal_weights(y[0], theta, beta, g) for y in ys]))
    err = float(np.abs(runs[0] - runs[1]).max()) / 15
    return ts, runs[1], err


def assert_weights_match(weights, phi, theta, beta, t0, t1, name="tanh", gain=1.0,
                         rel: float = 1e-6, steps: int = 60,
                         fractions=(0.0, 7 / 60, 0.25, 0.5, 47 / 60, 1.0)) -> float:
    r"""Check a program's W(t) (``weights(ts) -> (k, n, n)``) against :func:`optimal_weights_at`.

    J = J* is second-order insensitive to W (eq. 8: the excess is quadratic in W - beta M),
    so W itself is compared, at several times (by default some between the times a
    program stores, so its interpolation is checked too), to within
    ``rel * max|W| + 2 * (the reference's own error estimate)``; ``rel`` is the caller's
    bound on the program's integration error. Returns the largest difference.
    """
    ts, W_ref, err = optimal_weights_at(phi, theta, beta, t0, t1, fractions, name, gain,
                                        steps)
    scale = float(np.abs(W_ref).max())
    assert err <= 0.1 * rel * scale, f"reference not converged: error {err:.2e}"
    W = np.asarray(weights(ts), dtype=np.float64)
    diff = float(np.abs(W - W_ref).max())
    assert diff <= rel * scale + 2 * err, (diff, rel * scale, err, ts)
    return diff


# ---- general indices (derivation section 7) ----------------------------------------------
def terminal_cost(kind: str, Z1, theta, g):
    """phi(Z(t1)): ``"correlation"`` -sum_r g(z_r).theta_r, ``"squared_error"``
    sum_r ||g(z_r) - theta_r||^2, ``"paper"`` -sum_r z_r.theta_r."""
    if kind == "correlation":
        return -float(np.sum(g(Z1) * theta))
    if kind == "squared_error":
        return float(np.sum((g(Z1) - theta) ** 2))
    if kind == "paper":
        return -float(np.sum(Z1 * theta))
    raise KeyError(kind)


def rescore_feedback(C, Z0, theta, beta, t0, t1, substeps, kind, name="tanh"):
    r"""J of the program W(t) = C(t)^T g(Z(t)), C piecewise linear on uniform nodes (T, L, n),
    by classical RK4 with ``substeps`` steps per node interval.

    The n x n matrix W(t) is formed explicitly at every stage, and every sample runs through
    the network dz_r/dt = -z_r + W g(z_r) under it; the running cost (the paper's
    -sum z.theta + (beta/2)||Theta^T g(Z)||^2 if ``kind == "paper"``, else 0) and the
    weight penalty ||W||^2/(2 beta) are state components. Returns (J, node states).
    """
    g, _ = activation(name)
    T = C.shape[0]
    H = (t1 - t0) / (T - 1)

    def coef(t):
        u = min(max((t - t0) / H, 0.0), T - 1.0)
        k = min(int(np.floor(u)), T - 2)
        s = u - k
        return C[k] + s * (C[k + 1] - C[k])

    def f(t, y):
        Z, _ = y
        W = coef(t).T @ g(Z)  # n x n
        run = np.sum(W**2) / (2 * beta)
        if kind == "paper":
            M = theta.T @ g(Z)
            run += -np.sum(Z * theta) + 0.5 * beta * np.sum(M**2)
        return (_network(Z, W, g), np.asarray(run))

    _, ys = rk4(f, (Z0, 0.0), t0, t1, (T - 1) * substeps)
    Zs = np.stack([y[0] for y in ys])[::substeps]
    return terminal_cost(kind, ys[-1][0], theta, g) + float(ys[-1][1]), Zs


def feedback_weights(C, Zs, t0, t1, name="tanh"):
    """W(t_k) = C_k^T g(Z(t_k)) at the nodes, (T, n, n)."""
    g, _ = activation(name)
    return np.stack([C[k].T @ g(Zs[k]) for k in range(C.shape[0])])
