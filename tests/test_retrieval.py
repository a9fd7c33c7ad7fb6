"""Recall procedures against plain references, closed forms and published numbers.

Published numbers: the signal-to-noise estimate of Hebbian bit stability (each stored bit
unstable with probability ~ 1 - Phi(sqrt(n/P))), Amit, Gutfreund & Sompolinsky's (1985)
critical load alpha_c ~ 0.138 and retrieval overlap, and the nearest-pattern retrieval of
the modern Hopfield network (Ramsauer et al. 2020) at loads P/n > 1.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.special import erf
from scipy.stats import binom, norm

import weightsynth as ws
from weightsynth.baselines.retrieval import is_stable


def _bipolar(rng, P, n):
    return np.where(rng.random((P, n)) < 0.5, -1.0, 1.0)


def _corrupt(rng, X, rho):
    """Flip exactly round(rho n) distinct bits of every row."""
    Y = X.copy()
    k = int(round(rho * X.shape[1]))
    for row in Y:
        row[rng.choice(X.shape[1], k, replace=False)] *= -1
    return Y


def _hebb(X):
    return ws.outer_product_rule(X, zero_diagonal=True)


# ------------------------------------------------------------------- discrete dynamics


def _discrete_loop(W, x, seed, max_sweeps=100):
    """Hopfield asynchronous dynamics written plainly, one query, the documented order."""
    W = np.array(W, dtype=float)
    np.fill_diagonal(W, 0.0)
    n = len(x)
    s = np.where(np.asarray(x) >= 0, 1.0, -1.0)
    rng = np.random.default_rng(seed)
    for _ in range(max_sweeps):
        changed = False
        for i in rng.permutation(n):
            field = sum(W[i, j] * s[j] for j in range(n))
            new = 1.0 if field >= 0 else -1.0
            changed |= new != s[i]
            s[i] = new
        if not changed:
            break
    return s


@pytest.mark.parametrize("symmetric", [True, False])
def test_discrete_recall_matches_plain_loop_and_is_batch_invariant(rng, symmetric):
    n, B = 12, 6
    W = rng.standard_normal((n, n))
    if symmetric:
        W = W + W.T
    x = rng.standard_normal((B, n))
    S = ws.discrete_recall(W, x, seed=7, max_sweeps=30)
    ref = np.stack([_discrete_loop(W, xb, seed=7, max_sweeps=30) for xb in x])
    np.testing.assert_array_equal(S, ref)
    np.testing.assert_array_equal(ws.discrete_recall(W, x[2:3], seed=7, max_sweeps=30),
                                  S[2:3])


def test_sign_ties_go_to_plus_one():
    x = np.array([[-1.0, 1.0, -1.0, 0.0]])
    np.testing.assert_array_equal(ws.discrete_recall(np.zeros((4, 4)), x), np.ones((1, 4)))
    np.testing.assert_array_equal(is_stable(np.zeros((4, 4)), x),
                                  [[False, True, False, True]])


def test_diagonal_is_ignored_by_default_and_used_on_request(rng):
    n = 10
    W = 5.0 * np.eye(n) + 0.1 * rng.standard_normal((n, n))
    x = _bipolar(rng, 4, n)
    # with self-coupling 5 > sum of |off-diagonal| fields, every state is a fixed point
    np.testing.assert_array_equal(ws.discrete_recall(W, x, zero_diagonal=False), x)
    assert is_stable(W, x, zero_diagonal=False).all()
    off = W - np.diag(np.diag(W))
    np.testing.assert_array_equal(ws.discrete_recall(W, x), ws.discrete_recall(off, x))


def test_cycle_is_reported_as_not_converged():
    """s1 <- sign(s2), s2 <- sign(-s1) has no fixed point: asynchronous updates cycle."""
    W = np.array([[0.0, 1.0], [-1.0, 0.0]])
    S, converged = ws.discrete_recall(W, np.ones((3, 2)), max_sweeps=5,
                                      return_converged=True)
    assert not converged.any()
    assert set(np.unique(S)) <= {-1.0, 1.0}


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 15), B=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_symmetric_network_converges_to_fixed_points(n, B, seed):
    """Hopfield (1982): symmetric W, zero diagonal -> the energy falls at every flip, so the
    dynamics stop at states whose every bit is stable."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    S, converged = ws.discrete_recall(A + A.T, rng.standard_normal((B, n)), seed=seed,
                                      return_converged=True)
    assert converged.all()
    assert np.isin(S, [-1.0, 1.0]).all()
    assert is_stable(A + A.T, S).all()


# ------------------------------------------------ Hebbian stability: signal-to-noise


def _exact_unstable_probability(n, P):
    """P(a stored bit is unstable) under Hebb with zero diagonal, exactly.

    h_i xi_i = (n - 1 + C) / n, where the crosstalk C is a sum of (P - 1)(n - 1) independent
    uniform +-1 terms, C = 2K - N with K ~ Binomial(N, 1/2). Unstable when C < -(n - 1); at
    C = -(n - 1) the field is 0, sign(0) = +1, so the bit is unstable when it is -1 (half).
    """
    N = (P - 1) * (n - 1)
    k_tie = (N - (n - 1)) / 2
    p = binom.cdf(np.ceil(k_tie) - 1, N, 0.5)
    if float(k_tie).is_integer():
        p += 0.5 * binom.pmf(k_tie, N, 0.5)
    return p


@pytest.mark.parametrize("alpha", [0.1, 0.15, 0.2, 0.3])
def test_hebbian_bit_stability_matches_signal_to_noise(alpha):
    n, seeds = 500, 10
    P = int(round(alpha * n))
    unstable = np.array([
        1.0 - is_stable(_hebb(X), X).mean()
        for X in (_bipolar(np.random.default_rng(s), P, n) for s in range(seeds))
    ])
    # standard error from the spread over seeds (bits of one network are correlated),
    # never below the independent-bits binomial value
    p_exact = _exact_unstable_probability(n, P)
    se = max(unstable.std(ddof=1), np.sqrt(p_exact * (1 - p_exact) / (P * n))) / np.sqrt(seeds)
    assert abs(unstable.mean() - p_exact) < 4 * se
    # the n -> infinity estimate 1 - Phi(1/sqrt(alpha)) differs from the exact finite-n
    # value by under 10% here; allow that on top of the statistical error
    p_gauss = norm.sf(1.0 / np.sqrt(alpha))
    assert abs(unstable.mean() - p_gauss) < 4 * se + 0.1 * p_gauss


# --------------------------------------------------------- critical load (AGS 1985)


def _ags_overlap(alpha):
    """Retrieval overlap of Amit, Gutfreund & Sompolinsky (1985) at T = 0, or None above
    alpha_c. With y = m / sqrt(2 alpha r): m = erf(y), and eliminating C and r gives
    y (sqrt(2 alpha) + (2 / sqrt(pi)) exp(-y^2)) = erf(y); the retrieval state is the
    largest root."""
    def f(y):
        return y * (np.sqrt(2 * alpha) + 2 / np.sqrt(np.pi) * np.exp(-y * y)) - erf(y)

    ys = np.linspace(1e-3, 6.0, 6001)
    v = f(ys)
    roots = [brentq(f, ys[i], ys[i + 1]) for i in np.flatnonzero(np.diff(np.sign(v)))]
    return float(erf(max(roots))) if roots else None


def test_ags_reference_gives_the_published_critical_point():
    """The reference itself: alpha_c ~ 0.138 with m_c ~ 0.967 (AGS 1985)."""
    lo, hi = 0.10, 0.20                       # bisect on the existence of the retrieval state
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _ags_overlap(mid) is not None else (lo, mid)
    assert 0.137 < lo < 0.139
    assert abs(_ags_overlap(lo) - 0.967) < 0.005


def test_hebbian_critical_load_near_0138():
    """Start the discrete Hebbian network at each stored pattern (n = 1000, 3 seeds).

    Below alpha_c the final overlap matches AGS's retrieval overlap (0.998 at 0.10, 0.993 at
    0.12). Above it, in the n -> infinity limit, the retrieval state vanishes and the
    overlap falls to ~0.3 (spin-glass states). At n = 1000 the transition is smeared by
    finite-size effects: at 0.16, 62% of the patterns still end with overlap > 0.9 (we
    measured mean overlap 0.78, median 0.96), at 0.18, 24% (mean 0.52, median 0.41); at
    n = 2000 these fall to 39% and 4%. So above alpha_c we assert a clear fall, not the
    asymptotic value.
    """
    n, seeds = 1000, 3
    mean_m, retrieved = {}, {}
    for alpha in (0.10, 0.12, 0.16, 0.18):
        P = int(round(alpha * n))
        m = []
        for s in range(seeds):
            X = _bipolar(np.random.default_rng(s), P, n)
            S, conv = ws.discrete_recall(_hebb(X), X, seed=s, return_converged=True)
            assert conv.all()
            m.append(np.mean(S * X, axis=1))
        m = np.concatenate(m)
        mean_m[alpha], retrieved[alpha] = m.mean(), np.mean(m > 0.9)
        if alpha < 0.138:
            assert abs(np.median(m) - _ags_overlap(alpha)) < 0.01
            assert mean_m[alpha] > 0.97 and retrieved[alpha] > 0.97
    assert mean_m[0.16] < 0.85 and retrieved[0.16] < 0.75
    assert mean_m[0.18] < 0.7 and retrieved[0.18] < 0.4
    assert mean_m[0.10] > mean_m[0.12] > mean_m[0.16] > mean_m[0.18]


# ------------------------------------------------------------ dense associative memory


def test_dense_update_matches_direct_formula(rng):
    n, P, B, beta = 8, 5, 3, 0.3
    Xi = _bipolar(rng, P, n)
    x = rng.standard_normal((B, n))
    e = np.exp(beta * np.einsum("pn,bn->bp", Xi, x))
    one = (e / e.sum(axis=1, keepdims=True)) @ Xi          # xi_new = Xi^T softmax(beta Xi x)
    np.testing.assert_allclose(ws.dense_memory_recall(Xi, x, inverse_temperature=beta), one,
                               atol=1e-13)
    e2 = np.exp(beta * one @ Xi.T)
    two = (e2 / e2.sum(axis=1, keepdims=True)) @ Xi
    np.testing.assert_allclose(
        ws.dense_memory_recall(Xi, x, inverse_temperature=beta, steps=2), two, atol=1e-13)


def test_dense_default_beta_is_scale_free_and_overflow_safe(rng):
    Xi, x = _bipolar(rng, 6, 20), rng.standard_normal((4, 20))
    np.testing.assert_allclose(ws.dense_memory_recall(Xi, x),
                               ws.dense_memory_recall(Xi, x, inverse_temperature=1.0), atol=1e-14)
    # default beta = 1/mean(Xi^2): scaling patterns and queries by a scales the output by a
    a = 0.3
    np.testing.assert_allclose(ws.dense_memory_recall(a * Xi, a * x),
                               a * ws.dense_memory_recall(Xi, x), atol=1e-13)
    big = _bipolar(rng, 10, 3000)                       # exponents ~ 3000: no overflow
    np.testing.assert_allclose(ws.dense_memory_recall(big, big[:2]), big[:2], atol=1e-12)


@pytest.mark.parametrize("rho", [0.2, 0.25])
def test_dense_memory_recalls_corrupted_patterns_above_hebb_capacity(rho):
    """n = 64, P = 100 (load 1.56, 11x Hebb's 0.138): softmax retrieval is nearest-pattern
    decoding, so it succeeds whenever the nearest stored pattern is the right one."""
    n, P = 64, 100
    dense, nearest, hebb = [], [], []
    for s in range(3):
        rng = np.random.default_rng(s)
        X = _bipolar(rng, P, n)
        Xc = _corrupt(rng, X, rho)
        dense.append(np.all(np.sign(ws.dense_memory_recall(X, Xc)) == X, axis=1))
        nearest.append(np.argmax(Xc @ X.T, axis=1) == np.arange(P))   # oracle decoder
        hebb.append(np.all(ws.discrete_recall(_hebb(X), Xc, seed=s) == X, axis=1))
    dense, nearest, hebb = map(np.concatenate, (dense, nearest, hebb))
    assert dense.mean() >= 0.95
    assert dense.mean() >= nearest.mean() - 0.02
    assert hebb.mean() < 0.05


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ws.discrete_recall(np.ones((3, 4)), np.ones((1, 3))), "square"),
        (lambda: ws.discrete_recall(np.eye(3), np.ones((1, 4))), "n = 3 neurons"),
        (lambda: ws.discrete_recall(np.eye(3), np.ones(3)), "2-D"),
        (lambda: ws.discrete_recall(np.eye(3), np.ones((0, 3))), "at least one row"),
        (lambda: ws.discrete_recall(np.full((2, 2), np.nan), np.ones((1, 2))), "non-finite"),
        (lambda: ws.discrete_recall(np.eye(2), np.ones((1, 2)), max_sweeps=0), "max_sweeps"),
        (lambda: ws.discrete_recall(np.eye(2), np.ones((1, 2)), seed=-1), "seed"),
        (lambda: ws.discrete_recall(np.eye(2), np.ones((1, 2)), seed=1.5), "seed"),
        (lambda: is_stable(np.ones((2, 3)), np.ones((1, 2))), "square"),
        (lambda: is_stable(np.eye(2), np.ones((1, 3))), "n = 2 neurons"),
        (lambda: ws.dense_memory_recall(np.ones((2, 3)), np.ones((1, 4))), "n = 3 neurons"),
        (lambda: ws.dense_memory_recall(np.ones((2, 3)), np.ones((1, 3)),
                                        inverse_temperature=0.0), "inverse_temperature"),
        (lambda: ws.dense_memory_recall(np.ones((2, 3)), np.ones((1, 3)),
                                        inverse_temperature=-1), "inverse_temperature"),
        (lambda: ws.dense_memory_recall(np.ones((2, 3)), np.ones((1, 3)),
                                        inverse_temperature=np.nan), "inverse_temperature"),
        (lambda: ws.dense_memory_recall(np.ones((2, 3)), np.ones((1, 3)), steps=0), "steps"),
        (lambda: ws.dense_memory_recall(np.zeros((2, 3)), np.ones((1, 3))), "all zero"),
        (lambda: ws.dense_memory_recall(np.ones((2, 3)), [[1.0, np.inf, 0.0]]),
         "non-finite"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_exact_zero_fields_follow_sign0_is_plus1_at_scale_1_over_n():
    """Outer-product rule at scale 1/n = 0.1 (not a binary fraction): fields that are zero
    in exact integer arithmetic must count as ties (+1), not as +-1e-17."""
    P, n = 4, 10
    ties = 0
    for seed in range(200):
        xi = _bipolar(np.random.default_rng(seed), P, n)
        C = (xi.T @ xi).astype(np.int64)
        np.fill_diagonal(C, 0)
        H = xi.astype(np.int64) @ C.T            # n * field, exactly, in integers
        ties += int((H == 0).sum())
        expected = np.where(H >= 0, 1.0, -1.0)
        W = ws.outer_product_rule(xi)
        np.testing.assert_array_equal(is_stable(W, xi), expected == xi)
        # one asynchronous step from a stored pattern (first neuron of the first sweep)
        i = np.random.default_rng(seed).permutation(n)[0]
        out = ws.discrete_recall(W, xi, max_sweeps=1, seed=seed)
        np.testing.assert_array_equal(out[:, i], expected[:, i])
    assert ties > 100  # the case is really exercised


def test_dense_memory_recall_beta_is_a_deprecated_alias():
    Xi = np.array([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]])
    x = np.array([[0.5, -0.2, 0.1]])
    with pytest.warns(DeprecationWarning, match="inverse_temperature"):
        old = ws.dense_memory_recall(Xi, x, beta=2.0)
    # softmax over the two patterns' overlaps, written out
    s = 2.0 * (Xi @ x[0])
    w = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    np.testing.assert_allclose(old[0], w @ Xi, rtol=1e-14)
    with pytest.raises(TypeError, match="inverse_temperature only"):
        ws.dense_memory_recall(Xi, x, beta=2.0, inverse_temperature=2.0)
