"""Baseline learning rules against closed forms, plain-loop references and published capacities.

References: Personnaz, Guyon & Dreyfus (1985) and Kanter & Sompolinsky (1987) for the
projection rule (exact storage up to P = n); Storkey (1997) for the incremental rule
(capacity ~ n / sqrt(2 ln n)); Amit, Gutfreund & Sompolinsky (1985) for Hebb's ~0.138 n.
"""

import numpy as np
import pytest
import scipy.linalg

import weightsynth as ws
from weightsynth.baselines.retrieval import discrete_recall, is_stable


def _bipolar(rng, P, n):
    return np.where(rng.random((P, n)) < 0.5, -1.0, 1.0)


def _orth_projector(X):
    """Independent reference: projector onto the row space of X via scipy.linalg.orth."""
    Q = scipy.linalg.orth(X.T)          # orthonormal basis of span of the patterns, (n, r)
    return Q @ Q.T


# ----------------------------------------------------------------------------- projection


def test_projection_is_the_orthogonal_projector_onto_the_patterns(rng):
    n, P = 100, 90
    X = _bipolar(rng, P, n)
    W = ws.projection_rule(X)
    np.testing.assert_allclose(W, _orth_projector(X), atol=1e-10)
    np.testing.assert_allclose(W, W.T, atol=1e-12)
    np.testing.assert_allclose(W @ W, W, atol=1e-10)
    np.testing.assert_allclose(W @ X.T, X.T, atol=1e-10)
    assert np.isclose(np.trace(W), P)                   # rank P: patterns independent
    np.testing.assert_allclose(ws.projection_rule(X, scale=0.5), 0.5 * W, atol=1e-14)


def test_projection_stores_every_pattern_exactly_up_to_p_close_to_n(rng):
    """Kanter & Sompolinsky (1987): every pattern is a fixed point for P < n (here 0.9 n)."""
    n, P = 100, 90
    X = _bipolar(rng, P, n)
    W = ws.projection_rule(X)
    # with the diagonal: W xi = xi exactly; without it: h_i = (1 - W_ii) xi_i, W_ii < 1
    assert is_stable(W, X, zero_diagonal=False).all()
    assert is_stable(W, X).all()
    assert np.diag(W).max() < 1.0
    np.testing.assert_array_equal(discrete_recall(W, X, seed=3), X)
    # Hebb at the same load (0.9 n, far above 0.138 n) loses most patterns
    Wh = ws.outer_product_rule(X, zero_diagonal=True)
    assert is_stable(Wh, X).all(axis=1).mean() < 0.05


def test_projection_handles_rank_deficient_patterns(rng):
    n = 30
    base = _bipolar(rng, 5, n)
    X = np.vstack([base, base[:2], base[0] + base[1], -base[3]])   # repeats, dependent rows
    W = ws.projection_rule(X)
    np.testing.assert_allclose(W, _orth_projector(base), atol=1e-10)
    assert np.isclose(np.trace(W), 5)
    # P >= n independent patterns span R^n: W is the identity (stores all, corrects none)
    np.testing.assert_allclose(ws.projection_rule(_bipolar(rng, 2 * n, n)), np.eye(n),
                               atol=1e-10)
    np.testing.assert_array_equal(ws.projection_rule(np.zeros((3, 4))), np.zeros((4, 4)))
    assert np.all(np.diag(ws.projection_rule(base, zero_diagonal=True)) == 0)


# ------------------------------------------------------------------------------- Storkey


def _storkey_loop(X):
    """Storkey (1997) written plainly: W_ij += (xi_i xi_j - xi_i h_ji - h_ij xi_j) / n."""
    P, n = X.shape
    W = np.zeros((n, n))
    for xi in X:
        h = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                h[i, j] = sum(W[i, k] * xi[k] for k in range(n) if k != i and k != j)
        new = W.copy()
        for i in range(n):
            for j in range(n):
                new[i, j] += (xi[i] * xi[j] - xi[i] * h[j, i] - h[i, j] * xi[j]) / n
        W = new
    return W


@pytest.mark.parametrize("continuous", [False, True])
def test_storkey_matches_plain_loop(rng, continuous):
    X = rng.standard_normal((4, 6)) if continuous else _bipolar(rng, 4, 6)
    W = ws.storkey_rule(X)
    np.testing.assert_allclose(W, _storkey_loop(X), atol=1e-12)
    np.testing.assert_allclose(W, W.T, atol=1e-12)
    ref = _storkey_loop(X)
    np.fill_diagonal(ref, 0.0)
    np.testing.assert_allclose(ws.storkey_rule(X, zero_diagonal=True), ref, atol=1e-12)


def test_storkey_first_pattern_is_hebbian(rng):
    """From W = 0 every h_ij vanishes, so one pattern gives W = xi xi^T / n."""
    X = _bipolar(rng, 1, 9)
    np.testing.assert_allclose(ws.storkey_rule(X), ws.outer_product_rule(X), atol=1e-15)


def test_storkey_stores_patterns_where_hebb_fails():
    """n = 200, P = 50 (0.25 n, 0.8 x Storkey's n/sqrt(2 ln n) = 61): Storkey keeps every
    pattern stable, Hebb (above alpha_c = 0.138) keeps almost none."""
    n, P = 200, 50
    assert P < n / np.sqrt(2 * np.log(n))
    storkey, hebb = [], []
    for seed in range(4):
        X = _bipolar(np.random.default_rng(seed), P, n)
        storkey.append(is_stable(ws.storkey_rule(X), X).all(axis=1).mean())
        hebb.append(is_stable(ws.outer_product_rule(X, zero_diagonal=True), X)
                    .all(axis=1).mean())
        np.testing.assert_array_equal(discrete_recall(ws.storkey_rule(X), X, seed=seed), X)
    assert min(storkey) == 1.0
    assert max(hebb) < 0.2


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize("rule", [ws.projection_rule, ws.storkey_rule])
@pytest.mark.parametrize(
    "bad, match",
    [
        (np.ones(5), "2-D"),
        (np.ones((0, 4)), "at least one row"),
        (np.array([[1.0, np.nan]]), "non-finite"),
        (np.array([["a", "b"]]), "real numeric"),
    ],
)
def test_rules_reject_bad_patterns(rule, bad, match):
    with pytest.raises(ValueError, match=match):
        rule(bad)


def test_projection_rejects_bad_scale_and_rcond():
    X = np.ones((2, 3))
    with pytest.raises(ValueError, match="scale must be finite"):
        ws.projection_rule(X, scale=np.inf)
    with pytest.raises(ValueError, match="rcond must be non-negative"):
        ws.projection_rule(X, rcond=-1.0)
