r"""Classical learning rules that give a constant weight matrix.

The outer-product (Hebb/Hopfield) rule is W = scale * sum_r theta_r theta_r^T = scale *
Theta^T Theta. Its default scale is 1/n, Hopfield's normalization, under which a stored
bipolar pattern xi is an eigenvector, W xi ~ xi, at low load. The optimal program starts at
W*(t0) = beta Theta^T Phi (eq. 12): pass ``scale=beta`` to compare with it when Phi = Theta.

Two higher-capacity baselines (capacities and references: docs/derivation.md section 8):

* :func:`projection_rule`, W = Xi^T (Xi Xi^T)^+ Xi, the orthogonal projector onto the span of
  the patterns (Personnaz, Guyon & Dreyfus 1985; Kanter & Sompolinsky 1987): every stored
  pattern is an exact fixed point for P < n linearly independent patterns (at P = n, W = I,
  which zero-diagonal recall turns into W = 0).
* :func:`storkey_rule`, Storkey's (1997) incremental, local rule with capacity
  ~ n / sqrt(2 ln n).

Patterns are rows, shape (P, n), as everywhere in weightsynth.
"""

from __future__ import annotations

import numpy as np

from .._deprecation import positional_deprecated
from .._validation import as_matrix


@positional_deprecated("scale")
def outer_product_rule(targets, *, scale: float | None = None, zero_diagonal: bool = False
                       ) -> np.ndarray:
    r"""Hopfield's outer-product matrix W = scale * sum_r theta_r theta_r^T, (n, n).

    ``scale`` (keyword, as for every rule here) defaults to 1/n, Hopfield's normalization.
    ``zero_diagonal=True`` removes self-coupling, as in Hopfield's discrete network.
    """
    theta = as_matrix(targets, "targets")
    scale = _finite(1.0 / theta.shape[1] if scale is None else scale, "scale")
    W = scale * (theta.T @ theta)
    if zero_diagonal:
        np.fill_diagonal(W, 0.0)
    return W


def projection_rule(patterns, *, scale: float | None = None, zero_diagonal: bool = False,
                    rcond: float | None = None) -> np.ndarray:
    r"""Projection (pseudo-inverse) rule W = scale * Xi^T (Xi Xi^T)^+ Xi, shape (n, n).

    ``scale`` defaults to 1, the projector's own normalization.

    Personnaz, Guyon & Dreyfus (1985), J. Phys. Lett. 46, L359; Kanter & Sompolinsky (1987),
    Phys. Rev. A 35, 380. W is the orthogonal projector onto span{xi_1..xi_P}: W = W^T,
    W^2 = W and W xi_mu = xi_mu, so each stored pattern is a fixed point of sign dynamics
    for P < n linearly independent patterns. At P = n, W = I: with self-coupling every
    state is then a fixed point, and Hopfield's zero-diagonal recall (the default of
    :func:`~weightsynth.discrete_recall`) sees W = 0 and keeps no pattern at all.

    Computed stably from the thin SVD Xi = U S V^T as W = V_r V_r^T, where V_r keeps the
    right singular vectors whose singular value exceeds ``rcond * s_max`` (default
    ``max(P, n) * eps``, as in ``numpy.linalg.matrix_rank``). This never forms
    (Xi Xi^T)^+, and it handles rank deficiency (repeated or dependent patterns) by
    projecting onto the span actually present. With n independent patterns (e.g. P >= n
    random ones) W is the identity, under which every state is a fixed point: the rule
    stores everything and corrects nothing. All-zero patterns give the zero matrix.
    ``zero_diagonal=True`` removes self-coupling (Kanter & Sompolinsky's variant, which
    enlarges the basins of attraction).
    """
    xi = as_matrix(patterns, "patterns")
    scale = _finite(1.0 if scale is None else scale, "scale")
    _, s, vt = np.linalg.svd(xi, full_matrices=False)
    if rcond is None:
        rcond = max(xi.shape) * np.finfo(xi.dtype).eps
    rcond = _finite(rcond, "rcond")
    if rcond < 0:
        raise ValueError(f"rcond must be non-negative, got {rcond!r}")
    v = vt[s > rcond * s[0]] if s[0] > 0 else vt[:0]
    W = scale * (v.T @ v)
    if zero_diagonal:
        np.fill_diagonal(W, 0.0)
    return W


def storkey_rule(patterns, *, zero_diagonal: bool = False) -> np.ndarray:
    r"""Storkey's incremental rule, shape (n, n) (Storkey 1997, ICANN'97, LNCS 1327, 451).

    Starting from W = 0 and presenting the patterns xi (rows) in order,

        W_ij <- W_ij + (1/n) (xi_i xi_j - xi_i h_ji - h_ij xi_j),
        h_ij = sum_{k != i, j} W_ik xi_k       (the local field without i and j).

    Each presentation is one vectorized O(n^2) numpy update (no loop over i, j). W stays
    symmetric. The off-diagonal weights never depend on the diagonal (h_ij excludes k = i),
    so the diagonal given by the formula (with h_ii = sum_{k != i} W_ik xi_k) is kept by
    default, as ``outer_product_rule`` keeps its diagonal; ``zero_diagonal=True`` removes
    it. Discrete recall (:func:`weightsynth.retrieval.discrete_recall`) ignores it anyway.
    Capacity ~ n / sqrt(2 ln n) patterns, above Hebb's 0.138 n for moderate n.
    """
    xi_all = as_matrix(patterns, "patterns")
    n = xi_all.shape[1]
    W = np.zeros((n, n), dtype=xi_all.dtype)
    for xi in xi_all:
        h = W @ xi                                   # h_i = sum_k W_ik xi_k
        self_term = np.diag(W) * xi                  # W_ii xi_i
        H = h[:, None] - self_term[:, None] - W * xi[None, :]   # drop k = i and k = j
        H[np.diag_indices(n)] += self_term           # i == j: k = i was dropped twice
        W = W + (np.outer(xi, xi) - xi[:, None] * H.T - H * xi[None, :]) / n
    if zero_diagonal:
        np.fill_diagonal(W, 0.0)
    return W


def _finite(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v
