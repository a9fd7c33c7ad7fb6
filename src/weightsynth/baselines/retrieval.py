r"""Recall procedures of the classical baselines that are not a weight program W(t).

* :func:`discrete_recall`, Hopfield's (1982) discrete network: bipolar states s in {-1, +1}^n
  and asynchronous updates s_i <- sign(sum_{j != i} W_ij s_j), one neuron at a time.
* :func:`is_stable`, whether each stored bit is a fixed point of one such update, the quantity
  behind the signal-to-noise capacity estimate and Amit, Gutfreund & Sompolinsky's (1985)
  critical load alpha_c ~ 0.138.
* :func:`dense_memory_recall`, the modern Hopfield network / dense associative memory with
  softmax retrieval (Ramsauer et al. 2020, "Hopfield Networks is All You Need", eq. 1 of
  its Sec. 2; Demircigil et al. 2017 for the exponential energy), whose capacity grows
  exponentially in n.

Sign convention, used throughout: sign(0) = +1. A neuron whose field is exactly zero is set
to +1 (not left unchanged), so a stored bit -1 with zero field counts as unstable. Fields
are sums of floating-point products, so an exact tie (e.g. the outer-product rule at scale
1/n = 0.1) can come out as +-1e-17: a field within the rounding-error bound of the sum,
|h_i| <= n eps sum_j |W_ij|, counts as zero (see :func:`_tie_bound`).

Samples are rows: queries ``x`` have shape (B, n), stored patterns (P, n).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import softmax

from .._validation import as_matrix, check_int, check_positive


def discrete_recall(W, x, *, max_sweeps: int = 100, seed: int = 0, zero_diagonal: bool = True,
                    return_converged: bool = False):
    r"""Hopfield's asynchronous sign dynamics, s_i <- sign(sum_j W_ij s_j) (Hopfield 1982).

    Starts from s = sign(x) (each row of ``x`` (B, n) is one query) and runs sweeps: a sweep
    visits every neuron once, in the order ``rng.permutation(n)`` where ``rng =
    numpy.random.default_rng(seed)`` draws one new permutation per sweep. The order is
    shared by all queries, so each query's result depends only on (W, its own x, seed),
    never on the rest of the batch. A query stops after a sweep that changes none of its
    bits (it is then a fixed point: every bit is stable); the run ends when all have
    stopped or after ``max_sweeps`` sweeps. For symmetric W with zero diagonal the energy
    -s^T W s / 2 falls at every flip, so this always converges (Hopfield 1982).

    ``zero_diagonal=True`` ignores W_ii (Hopfield's convention: no self-coupling). Ties:
    sign(0) = +1. Returns the final states, (B, n) of +-1 floats; with
    ``return_converged=True`` also a (B,) bool array, True where the query reached a fixed
    point within ``max_sweeps``.
    """
    Wd = _square(W, zero_diagonal)
    n = Wd.shape[0]
    S = _sign(as_matrix(x, "x", n=n))
    max_sweeps = check_int(max_sweeps, "max_sweeps")
    rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
    tie = _tie_bound(Wd)
    active = np.arange(S.shape[0])
    for _ in range(max_sweeps):
        if active.size == 0:
            break
        Sa = np.array(S[active])           # the queries still moving
        changed = np.zeros(active.size, dtype=bool)
        for i in rng.permutation(n):
            new = np.where(Sa @ Wd[i] >= -tie[i], 1.0, -1.0)
            changed |= new != Sa[:, i]
            Sa[:, i] = new
        S[active] = Sa
        active = active[changed]
    if return_converged:
        converged = np.ones(S.shape[0], dtype=bool)
        converged[active] = False
        return S, converged
    return S


def is_stable(W, patterns, *, zero_diagonal: bool = True) -> np.ndarray:
    r"""Which stored bits are fixed points of one sign update: sign(h)_i == s_i, (P, n) bool.

    h = W s with s = sign(xi) (sign(0) = +1, so amplitude-scaled patterns a*xi work too),
    and h_i = sum_{j != i} W_ij s_j when ``zero_diagonal`` (Hopfield's convention, the
    default, matching :func:`discrete_recall`). A pattern is a fixed point of the discrete
    network iff its whole row is True. For the outer-product rule with scale 1/n and random
    patterns, each bit is unstable with probability ~ 1 - Phi(sqrt(n/P)) (the signal-to-noise
    estimate; Amit, Gutfreund & Sompolinsky 1985; McEliece et al. 1987).
    """
    Wd = _square(W, zero_diagonal)
    S = _sign(as_matrix(patterns, "patterns", n=Wd.shape[0]))
    H = S @ Wd.T                          # H[mu, i] = sum_j W_ij s_j
    return np.where(H >= -_tie_bound(Wd), 1.0, -1.0) == S


def dense_memory_recall(patterns, x, *, inverse_temperature: float | None = None,
                        steps: int = 1, beta: float | None = None) -> np.ndarray:
    r"""Modern Hopfield / dense associative memory retrieval, (B, n) continuous states.

    Ramsauer et al. (2020), eq. (1) of Sec. 2 with stored patterns as rows of Xi (P, n):

        xi_new = Xi^T softmax(beta Xi xi),   beta = ``inverse_temperature``

    applied ``steps`` times to every query row of ``x`` (B, n). The result is a convex
    combination of stored patterns; take its sign for a bipolar read-out.

    Default ``beta = 1 / mean(Xi**2)``, which is 1 for bipolar patterns. Then for a query at
    Hamming distance d from pattern mu, beta xi_mu.x = n - 2d, so the softmax weights are
    ~ exp(-2 d): the nearest stored pattern dominates as soon as its distance beats the
    runner-up's by ~ ln(P)/2 bits, i.e. retrieval is essentially nearest-neighbour decoding.
    This also meets Ramsauer et al.'s Theorem 3 condition for a stored pattern to be a
    fixed point, Delta_mu >= 2/(beta P) + ln(2 (P-1) P beta M^2) / beta with M^2 = n, for
    random bipolar patterns (Delta_mu ~ n - sqrt(2 n ln P)) whenever n is not tiny. The
    attention-style beta = 1/sqrt(n) is too soft here: it blends patterns at load P/n > 1.

    ``beta=`` is the deprecated name of ``inverse_temperature`` (everywhere else in this
    package beta is the weight penalty of the index).
    """
    if beta is not None:
        if inverse_temperature is not None:
            raise TypeError("give inverse_temperature only (beta is its deprecated name)")
        warnings.warn("dense_memory_recall(beta=...) is deprecated; use inverse_temperature=",
                      DeprecationWarning, stacklevel=2)
        inverse_temperature = beta
    beta = inverse_temperature
    Xi = as_matrix(patterns, "patterns")
    X = as_matrix(x, "x", n=Xi.shape[1])
    if beta is None:
        power = float(np.mean(Xi**2))
        if power == 0.0:
            raise ValueError("patterns are all zero, so the default beta = 1/mean(Xi**2) is "
                             "undefined; pass inverse_temperature explicitly")
        beta = 1.0 / power
    beta = check_positive(beta, "inverse_temperature")
    steps = check_int(steps, "steps")
    for _ in range(steps):
        X = softmax(beta * (X @ Xi.T), axis=1) @ Xi   # (B, P) weights times (P, n) patterns
    return X


def _sign(X: np.ndarray) -> np.ndarray:
    """Bipolar sign with sign(0) = +1, as a float64 array."""
    return np.where(X >= 0.0, 1.0, -1.0)


def _tie_bound(W: np.ndarray) -> np.ndarray:
    """Per neuron i, n eps sum_j |W_ij|: the rounding-error bound of a field sum_j W_ij s_j
    with s_j = +-1 (Higham, Accuracy and Stability, eq. 3.5). Smaller fields are ties."""
    return W.shape[0] * np.finfo(W.dtype).eps * np.abs(W).sum(axis=1)


def _square(W, zero_diagonal: bool) -> np.ndarray:
    W = as_matrix(W, "W")
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be a square (n, n) matrix, got shape {W.shape}")
    W = np.array(W, dtype=np.float64)
    if zero_diagonal:
        np.fill_diagonal(W, 0.0)
    return W
