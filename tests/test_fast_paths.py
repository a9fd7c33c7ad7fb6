"""The fast paths (symmetric blocked Gram matrix, float32, compiled-once solves) still give
the exact optimum J* = -sum_r g^-1(phi_r).theta_r. References are NumPy products and the
closed form J*; there are no timings here (see benchmarks/)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import weightsynth as ws
from weightsynth.core import dynamics as dyn
from weightsynth.core.synthesis import _solve_closed_loop

from . import _reference as ref

#: documented tolerance of |J - J*| / |J*| for float32 synthesis (see benchmarks/README.md)
FLOAT32_RTOL = 2e-4


def _problem(rng, L, n, dtype=np.float64):
    """L >= 256 so that the blocked Gram path runs; beta = O(1/n) keeps S well scaled."""
    phi = 0.9 * np.tanh(rng.standard_normal((L, n)))
    theta = np.sign(rng.standard_normal((L, n)))
    return phi.astype(dtype), theta.astype(dtype)


@pytest.mark.parametrize("L", [1, 7, 255, 256, 300, 513, 1000])
def test_blocked_gram_matches_numpy(rng, L):
    G = rng.standard_normal((L, 37))
    K = np.asarray(dyn.gram(G))
    np.testing.assert_allclose(K, G @ G.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(K, K.T)  # exactly symmetric


def test_blocked_gram_float32(rng):
    G = rng.standard_normal((300, 64)).astype(np.float32)
    K = np.asarray(dyn.gram(G))
    assert K.dtype == np.float32
    np.testing.assert_allclose(K, G.astype(np.float64) @ G.T.astype(np.float64),
                               rtol=1e-5, atol=1e-4)


BETA = 1.0 / 256


@pytest.fixture(scope="module")
def big():
    """One 256 x 256 problem (the blocked Gram path, reduced coordinates) and its W*(t) from
    the plain-NumPy RK4 reference, shared by every J = J* check below. RK4 at 24 and 48
    steps: the Richardson estimate of its error is ~4e-9 of |W| here."""
    phi, theta = _problem(np.random.default_rng(12345), 256, 256)
    fractions = (0.0, 5 / 24, 0.5, 19 / 24, 1.0)   # 5/24, 19/24: between stored times
    ts, W, err = ref.optimal_weights_at(phi, theta, BETA, 0.0, 1.0, fractions, steps=24)
    return phi, theta, ts, W, err


def _check_weights(prog, big, rel):
    r"""max |W(t) - W_ref(t)| <= rel max|W_ref| + 2 (the reference's error), at 5 times."""
    _, _, ts, W_ref, err = big
    scale = np.abs(W_ref).max()
    assert err <= 0.1 * rel * scale
    diff = np.abs(np.asarray(prog.weights(ts), np.float64) - W_ref).max()
    assert diff <= rel * scale + 2 * err, (diff / scale, rel)


def test_blocked_path_gives_optimum_float64(big):
    phi, theta = big[:2]
    prog = ws.synthesize(phi, theta, beta=BETA, t1=1.0)
    res = ws.evaluate_index(prog, phi, theta)
    assert res.J == pytest.approx(res.J_star, rel=1e-8)
    _check_weights(prog, big, rel=1e-6)   # adaptive, rtol = 1e-8: 100 rtol


def test_blocked_path_direct_coordinates(rng):
    phi, theta = _problem(rng, 256, 24)
    prog = ws.synthesize(phi, theta, beta=2.0 / 24, t1=0.5, coords="direct")
    res = ws.evaluate_index(prog, phi, theta)
    assert res.J == pytest.approx(res.J_star, rel=1e-8)


def test_fixed_step_gives_optimum_float64(big):
    phi, theta = big[:2]
    prog = ws.synthesize(phi, theta, beta=BETA, t1=1.0, steps=40)
    res = ws.evaluate_index(prog, phi, theta, steps=40)
    assert res.J == pytest.approx(res.J_star, rel=1e-8)
    # Tsit5, h = 1/40: global error O(h^5) = 1e-8 per unit of the field's rate, which is
    # O(10) here; measured 5e-10 of |W|
    _check_weights(prog, big, rel=1e-7)


@pytest.mark.parametrize(("steps", "w_rel"), [
    (None, 1e-4),    # adaptive at rtol = 1e-5: 10 rtol (measured 3e-5)
    (40, 5e-6),      # fixed: float32 rounding, eps32 = 1.2e-7 per step over 40 steps
])                   # (measured 6.5e-7)
def test_float32_gives_optimum_to_documented_tolerance(big, steps, w_rel):
    phi, theta = (a.astype(np.float32) for a in big[:2])
    prog = ws.synthesize(phi, theta, beta=BETA, t1=1.0, steps=steps, rtol=1e-5, atol=1e-6)
    assert prog.dtype == np.float32
    # fixed steps: adaptive float64 error control cannot converge on a float32 program
    res = ws.evaluate_index(prog, phi.astype(np.float64), theta.astype(np.float64), steps=80)
    J_star = float(-np.sum(np.arctanh(phi.astype(np.float64)) * theta))
    assert res.J_star == pytest.approx(J_star, rel=1e-6)
    assert abs(res.J - J_star) <= FLOAT32_RTOL * abs(J_star)
    # J is second-order in W - beta M, so FLOAT32_RTOL allows W errors ~1e-2: check W too
    _check_weights(prog, big, rel=w_rel)


@pytest.mark.filterwarnings("ignore::weightsynth.AccuracyWarning")  # coarse on purpose
def test_second_synthesis_with_same_shapes_does_not_recompile(rng):
    phi, theta = _problem(rng, 5, 8)
    ws.synthesize(phi, theta, beta=0.5, steps=10)
    before = _solve_closed_loop._cache_size()
    phi2, theta2 = _problem(rng, 5, 8)
    ws.synthesize(phi2, theta2, beta=0.7, t1=2.0, steps=10)  # new values, same shapes
    assert _solve_closed_loop._cache_size() == before


def test_float32_state_is_not_promoted_by_float64_time():
    """diffrax keeps t in float64 under x64; no array op of a float32 program may run in
    float64 (that doubled the cost of float32 synthesis before the fix)."""
    from weightsynth.core.activations import Activation

    L, n = 3, 5
    A = jnp.zeros((L, L), jnp.float32)
    Z0 = jnp.ones((L, n), jnp.float32)
    Th = jnp.ones((L, n), jnp.float32)
    t = jnp.asarray(0.3, jnp.float64)
    jaxpr = jax.make_jaxpr(
        lambda t, A: dyn.closed_loop_rhs(t, A, Z0, Th, jnp.asarray(0.5, jnp.float32),
                                         jnp.asarray(0.0, jnp.float32), Activation("tanh"),
                                         "reduced")[0]
    )(t, A)
    wide = [v for eqn in jaxpr.eqns for v in eqn.outvars
            if v.aval.dtype == jnp.float64 and v.aval.shape != ()]
    assert not wide, f"float64 arrays in a float32 right-hand side: {wide}"
    assert jaxpr.out_avals[0].dtype == jnp.float32
