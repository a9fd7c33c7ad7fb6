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


@pytest.mark.parametrize("coords", ["reduced", pytest.param("direct", marks=pytest.mark.slow)])
def test_blocked_path_gives_optimum_float64(rng, coords):
    phi, theta = _problem(rng, 256, 24 if coords == "direct" else 256)
    prog = ws.synthesize(phi, theta, beta=2.0 / phi.shape[1], t1=0.5, coords=coords)
    res = ws.evaluate_index(prog, phi, theta)
    assert res.J == pytest.approx(res.J_star, rel=1e-8)


@pytest.mark.slow
def test_fixed_step_gives_optimum_float64(rng):
    phi, theta = _problem(rng, 256, 256)
    prog = ws.synthesize(phi, theta, beta=1.0 / 256, t1=1.0, steps=40)
    res = ws.evaluate_index(prog, phi, theta, steps=40)
    assert res.J == pytest.approx(res.J_star, rel=1e-8)


@pytest.mark.parametrize("steps", [pytest.param(None, marks=pytest.mark.slow), 40])
def test_float32_gives_optimum_to_documented_tolerance(rng, steps):
    phi, theta = _problem(rng, 256, 256, np.float32)
    prog = ws.synthesize(phi, theta, beta=1.0 / 256, t1=1.0, steps=steps, rtol=1e-5,
                         atol=1e-6)
    assert prog.dtype == np.float32
    # fixed steps: adaptive float64 error control cannot converge on a float32 program
    res = ws.evaluate_index(prog, phi.astype(np.float64), theta.astype(np.float64), steps=80)
    J_star = float(-np.sum(np.arctanh(phi.astype(np.float64)) * theta))
    assert res.J_star == pytest.approx(J_star, rel=1e-6)
    assert abs(res.J - J_star) <= FLOAT32_RTOL * abs(J_star)


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
