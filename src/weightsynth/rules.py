r"""Classical learning rules that give a constant weight matrix.

The outer-product (Hebb/Hopfield) rule is W = scale * sum_r theta_r theta_r^T = scale *
Theta^T Theta. Its default scale is 1/n, Hopfield's normalization, under which a stored
bipolar pattern xi is an eigenvector, W xi ~ xi, at low load. The optimal program starts at
W*(t0) = beta Theta^T Phi (eq. 12): pass ``scale=beta`` to compare with it when Phi = Theta.
"""

from __future__ import annotations

import numpy as np

from ._validation import as_matrix


def outer_product_rule(targets, scale: float | None = None, *, zero_diagonal: bool = False
                       ) -> np.ndarray:
    r"""Hopfield's outer-product matrix W = scale * sum_r theta_r theta_r^T, (n, n).

    ``scale`` defaults to 1/n. ``zero_diagonal=True`` removes self-coupling, as in
    Hopfield's discrete network.
    """
    theta = as_matrix(targets, "targets")
    n = theta.shape[1]
    if scale is None:
        scale = 1.0 / n
    scale = float(scale)
    if not np.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale!r}")
    W = scale * (theta.T @ theta)
    if zero_diagonal:
        np.fill_diagonal(W, 0.0)
    return W
