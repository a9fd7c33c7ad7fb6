r"""An independent plain-NumPy reference for the tests: classical RK4 and the paper's equations.

Nothing here imports weightsynth. The formal system S is written per sample with the
explicit weight matrix W*(t) = beta Theta^T g(Z) (derivation eq. 7), not the Gram form
that the package uses, and the index J (eq. 3) and the excess (1/(2 beta)) int ||W - beta M||^2
(derivation eq. 8) are integrated as extra state components.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


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


def rk4(f: Callable, y0: tuple, t0: float, t1: float, steps: int) -> tuple[np.ndarray, list]:
    """Classical RK4 for dy/dt = f(t, y), y a tuple of arrays; returns (ts, [y(ts[k])])."""
    h = (t1 - t0) / steps
    ts = t0 + h * np.arange(steps + 1)
    y = tuple(np.array(v, dtype=np.float64) for v in y0)
    out = [y]
    for k in range(steps):
        t = ts[k]
        k1 = f(t, y)
        k2 = f(t + h / 2, _axpy(h / 2, k1, y))
        k3 = f(t + h / 2, _axpy(h / 2, k2, y))
        k4 = f(t + h, _axpy(h, k3, y))
        y = tuple(yi + h / 6 * (a + 2 * b + 2 * c + d)
                  for yi, a, b, c, d in zip(y, k1, k2, k3, k4, strict=True))
        out.append(y)
    return ts, out


# ---- the paper's systems ---------------------------------------------------------------
def optimal_weights(Z, theta, beta, g):
    """W*(t) = beta sum_r theta_r g(z_r)^T, formed as an explicit n x n matrix."""
    return beta * sum(np.outer(theta[r], g(Z[r])) for r in range(Z.shape[0]))


def _network(Z, W, g):
    """dz_r/dt = -z_r + W g(z_r) for each sample r (row) of Z, eq. (1)/(2), with W explicit."""
    return -Z + g(Z) @ W.T


def closed_loop(phi, theta, beta, t0, t1, steps, name="tanh", gain=1.0):
    """S under W*(t) (formed explicitly), by RK4: returns (ts, Z of shape (steps+1, L, n))."""
    g, ginv = activation(name, gain)

    def f(t, y):
        (Z,) = y
        return (_network(Z, optimal_weights(Z, theta, beta, g), g),)

    ts, ys = rk4(f, (ginv(phi),), t0, t1, steps)
    return ts, np.stack([y[0] for y in ys])


def run_network(weights: Callable, z0, t0, t1, steps, name="tanh", gain=1.0):
    """N under a given W(t) (``weights(t) -> (n, n)``) from states z0 (B, n), by RK4."""
    g, _ = activation(name, gain)
    ts, ys = rk4(lambda t, y: (_network(y[0], weights(t), g),), (z0,), t0, t1, steps)
    return ts, np.stack([y[0] for y in ys])


def index(phi, theta, beta, t0, t1, steps, perturb: Callable, name="tanh", gain=1.0):
    r"""J (eq. 3) and the excess (1/(2 beta)) int ||W - beta M||^2 dt of W(t) = perturb(t, W*(t)).

    S is integrated alongside, so ``perturb`` can build on the optimal program W*(t); the
    training samples run through N under W(t), and both integrals are state components.
    Returns (J, excess, J_star) with J_star = -sum_r g^{-1}(phi_r).theta_r.
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
    J = -np.sum(Zn1 * theta) + 0.5 * run
    return float(J), exc / (2 * beta), float(-np.sum(Z0 * theta))
