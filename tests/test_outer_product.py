"""The outer-product (Hebb/Hopfield) rule W = scale sum_r theta_r theta_r^T (derivation eq. 12)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import hadamard

import weightsynth as ws

from . import _reference as ref


def test_outer_product_is_sum_of_outer_products():
    rng = np.random.default_rng(0)
    theta = np.sign(rng.standard_normal((7, 11)))
    W = ws.outer_product_rule(theta)
    expected = sum(np.outer(v, v) for v in theta) / 11  # default scale 1/n
    np.testing.assert_allclose(W, expected, rtol=1e-14)
    assert W.shape == (11, 11) and isinstance(W, np.ndarray)
    np.testing.assert_allclose(W, W.T)
    np.testing.assert_allclose(ws.outer_product_rule(theta, scale=0.3), 0.3 * 11 * expected,
                               rtol=1e-14)
    W0 = ws.outer_product_rule(theta, zero_diagonal=True)
    assert np.all(np.diag(W0) == 0)
    np.testing.assert_allclose(W0 - np.diag(np.diag(W0)), W - np.diag(np.diag(W)))


def test_orthogonal_patterns_are_fixed_points():
    """With orthogonal bipolar patterns and scale 1/n, W xi_k = xi_k exactly."""
    xi = hadamard(16)[1:6].astype(float)
    W = ws.outer_product_rule(xi)
    np.testing.assert_allclose(xi @ W.T, xi, atol=1e-14)


def test_outer_product_is_the_optimal_program_at_t0():
    """W*(t0) = beta Theta^T Phi, which is the outer-product matrix when Phi = Theta."""
    theta = 0.5 * ref.make_data(3, 5, "tanh", seed=3005)[1]  # shapes as in test_synthesis
    prog = ws.synthesize(theta, theta, beta=0.5, t1=1.0)
    np.testing.assert_allclose(prog.weights(0.0), ws.outer_product_rule(theta, scale=0.5),
                               rtol=1e-13, atol=1e-15)


def test_outer_product_bad_input():
    with pytest.raises(ValueError, match="targets contains non-finite"):
        ws.outer_product_rule(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="targets must be 2-D"):
        ws.outer_product_rule(np.ones(4))
    with pytest.raises(ValueError, match="scale must be finite"):
        ws.outer_product_rule(np.ones((2, 2)), scale=np.inf)
