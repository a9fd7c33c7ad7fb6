r"""Synthesis of the optimal program, checked against closed forms and independent references.

* J[W*] = J* = -sum_r g^{-1}(phi_r).theta_r (derivation eq. 8), to 1e-8 relative;
* W*(t0) = beta Theta^T Phi (eq. 12);
* S agrees with a plain-NumPy RK4 of S written with the explicit W(t) (tests/_reference.py)
  and with scipy's DOP853;
* the stored program is O(nL + T min(n, L) L), never O(T n^2).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import weightsynth as ws

from . import _reference as ref

# (activation, gain, L, n, steps, beta, t1, t0). Cases that share (activation, gain, L, n,
# steps) share one compiled synthesis and one compiled index.
J_CASES = [
    ("tanh", 1.0, 3, 5, None, 0.5, 1.0, 0.0),  # L <= n: reduced coordinates
    ("tanh", 1.0, 3, 5, None, 0.1, 3.0, 0.0),
    ("tanh", 1.0, 3, 5, None, 2.0, 0.5, -0.5),
    ("logistic", 2.5, 6, 4, None, 0.5, 1.0, 0.0),  # L > n: direct coordinates
    ("logistic", 2.5, 6, 4, None, 1.5, 2.0, 0.0),
    ("tanh", 1.0, 2, 3, 64, 0.5, 4.0, 0.0),  # fixed-step, reduced (as in test_solvers)
    ("tanh", 1.0, 2, 3, 64, 3.0, 2.0, 1.0),
    ("tanh", 0.7, 2, 3, 64, 0.5, 1.0, 0.0),  # gain != 1, same compiled shapes
    ("tanh", 0.7, 2, 3, 64, 3.0, 2.0, 1.0),
    ("logistic", 1.0, 9, 2, 40, 0.8, 1.5, 0.0),  # fixed-step, direct, n = 2
    ("tanh", 2.0, 200, 2, None, 0.01, 1.0, 0.0),  # L >> n
    # n >= 50: W(t) is checked too (J = J* alone lets W errors ~1e-4 through)
    ("tanh", 1.0, 12, 120, None, 0.3, 1.0, 0.0),
    ("logistic", 1.0, 2, 200, None, 0.5, 2.0, 0.0),  # n >> L
    ("tanh", 1.0, 96, 96, None, 0.05, 1.0, 0.0),  # L = n, fast dynamics (beta n L ~ 460)
    ("logistic", 1.5, 96, 96, 100, 0.002, 1.0, 0.0),  # all-positive targets: small beta
    ("tanh", 1.0, 150, 60, 200, 0.02, 1.0, 0.0),  # L > n, fixed steps, direct
]
#: RK4 steps of the W(t) reference per (activation, L, n): enough that its error (Richardson
#: estimate) is < 1e-8 of |W|, measured: 9e-9, 2e-9, 3e-9, 5e-10, 3e-10
REF_STEPS = {("tanh", 12, 120): 480, ("logistic", 2, 200): 480, ("tanh", 96, 96): 360,
             ("logistic", 96, 96): 60, ("tanh", 150, 60): 120}
#: the program's own error bound on W, relative to max |W|: adaptive solves keep the local
#: error per step below rtol = 1e-8 (so 100 rtol allows for its growth over [t0, t1]);
#: Tsit5 with fixed h = 1/100 or 1/200 has a local error ~ h^5 ~ 1e-10 per unit rate
W_REL = 1e-6


def _j_star(phi, theta, name, gain):
    _, ginv = ref.activation(name, gain)
    return -float(np.sum(ginv(phi) * theta))


@pytest.mark.parametrize("case", J_CASES, ids=lambda c: "-".join(map(str, c)))
def test_index_of_synthesized_program_is_optimal_cost(case):
    name, gain, L, n, steps, beta, t1, t0 = case
    phi, theta = ref.make_data(L, n, name, seed=L * 1000 + n)
    prog = ws.synthesize(phi, theta, beta=beta, t1=t1, t0=t0, activation=name, gain=gain,
                         steps=steps)
    assert prog.coords == ("reduced" if L <= n else "direct")
    res = ws.evaluate_index(prog, phi, theta)
    J_star = _j_star(phi, theta, name, gain)
    assert res.J_star == pytest.approx(J_star, rel=1e-12)
    assert abs(res.J - J_star) <= 1e-8 * abs(J_star), (res.J, J_star)
    # a nonnegative integrand, integrated by an RK method with some negative weights
    assert -1e-10 * abs(J_star) <= res.excess <= 1e-8 * abs(J_star)
    # the public one-number form, with beta and t1 given explicitly
    J = ws.performance_index(prog, phi, theta, beta=beta, t1=t1, t0=t0,
                             activation=ws.get_activation(name, gain))
    assert abs(J - J_star) <= 1e-8 * abs(J_star)
    if n >= 50:
        ref.assert_weights_match(prog.weights, phi, theta, beta, t0, t1, name, gain,
                                 rel=W_REL, steps=REF_STEPS[name, L, n])


@pytest.mark.parametrize("coords", ["reduced", "direct"])
def test_coords_agree(coords):
    """Both coordinate systems give the same program (forced, whatever L and n are)."""
    phi, theta = ref.make_data(3, 5, "tanh", seed=3005)
    base = ws.synthesize(phi, theta, beta=0.5, t1=1.0)
    prog = ws.synthesize(phi, theta, beta=0.5, t1=1.0, coords=coords)
    assert prog.coords == coords
    for t in (0.0, 0.37, 1.0):
        np.testing.assert_allclose(prog.states(t), base.states(t), rtol=1e-7, atol=1e-9)


# ---- agreement with independent integrators -------------------------------------------
# The two canonical programs (same shapes as the first J_CASES, so compiled code is shared).
CANON = {
    "reduced": ("tanh", 1.0, 3, 5),
    "direct": ("logistic", 2.5, 6, 4),
}


def _canonical(coords, beta=0.5, t1=1.0):
    name, gain, L, n = CANON[coords]
    phi, theta = ref.make_data(L, n, name, seed=L * 1000 + n)
    prog = ws.synthesize(phi, theta, beta=beta, t1=t1, activation=name, gain=gain)
    assert prog.coords == coords
    return prog, phi, theta


def _scipy_states(phi, theta, beta, t1, name, gain, ts):
    """S with the explicit W(t) by scipy's DOP853 at tight tolerances."""
    g, ginv = ref.activation(name, gain)
    L, n = phi.shape

    def f(t, y):
        Z = y.reshape(L, n)
        W = ref.optimal_weights(Z, theta, beta, g)
        return (-Z + g(Z) @ W.T).ravel()

    sol = solve_ivp(f, (0.0, t1), ginv(phi).ravel(), method="DOP853", t_eval=ts,
                    rtol=1e-13, atol=1e-13)
    assert sol.success
    return sol.y.T.reshape(len(ts), L, n)


@pytest.mark.parametrize("coords", ["reduced", "direct"])
def test_states_and_weights_agree_with_numpy_rk4_and_scipy(coords):
    """diffrax path == plain-NumPy RK4 (explicit W) == scipy DOP853, at grid and off-grid t."""
    prog, phi, theta = _canonical(coords)
    name, gain, _, _ = CANON[coords]
    g, _ = ref.activation(name, gain)
    steps = 1000  # RK4 error ~ h^4 = 1e-12
    rts, rZ = ref.closed_loop(phi, theta, 0.5, 0.0, 1.0, steps, name, gain)
    idx = [0, 123, 500, 777, 1000]  # 0.123 and 0.777 fall between the program's stored times
    sZ = _scipy_states(phi, theta, 0.5, 1.0, name, gain, rts[idx])
    np.testing.assert_allclose(rZ[idx], sZ, rtol=0, atol=1e-11)  # the two references agree
    for k, i in enumerate(idx):
        t = rts[i]
        Z = prog.states(t)
        np.testing.assert_allclose(Z, sZ[k], rtol=0, atol=2e-8 * np.abs(sZ[k]).max())
        W_ref = ref.optimal_weights(rZ[i], theta, 0.5, g)
        np.testing.assert_allclose(prog.weights(t), W_ref, rtol=0,
                                   atol=2e-8 * np.abs(W_ref).max())
    # several times at once
    Ws = prog.weights(rts[idx])
    assert Ws.shape == (len(idx), phi.shape[1], phi.shape[1])
    np.testing.assert_allclose(Ws[2], prog.weights(0.5), rtol=1e-13, atol=0)


def test_initial_weights_are_beta_theta_phi_and_outer_product():
    """W*(t0) = beta sum_r theta_r phi_r^T; with phi = theta it is the outer-product matrix."""
    prog, phi, theta = _canonical("reduced")
    np.testing.assert_allclose(prog.weights(0.0), 0.5 * theta.T @ phi, rtol=1e-13, atol=1e-14)
    targets = 0.5 * theta  # inside tanh's range, so usable as inputs too
    prog2 = ws.synthesize(targets, targets, beta=0.5, t1=1.0)
    np.testing.assert_allclose(prog2.weights(0.0),
                               ws.outer_product_rule(targets, scale=0.5), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(prog2.weights(0.0),
                               0.5 * sum(np.outer(v, v) for v in targets), rtol=1e-13)


@pytest.mark.parametrize("coords", ["reduced", "direct"])
def test_stored_program_is_small(coords):
    """X is (T, L, min(L, n)); no array holds T n^2 numbers (memory O(nL + T min(n,L) L))."""
    prog, phi, theta = _canonical(coords)
    L, n = phi.shape
    T = prog.ts.shape[0]
    assert prog.X.shape == (T, L, min(L, n))
    assert prog.Z0.shape == prog.Theta.shape == (L, n)
    arrays = [getattr(prog, k) for k in vars(prog)
              if isinstance(getattr(prog, k), (np.ndarray, jax.Array))]
    assert len(arrays) >= 4
    assert not any(a.shape[-2:] == (n, n) for a in arrays)
    if L < n:
        assert all(a.size < T * n * n for a in arrays)
    assert prog.nbytes == sum(a.nbytes for a in arrays)
    assert prog.nbytes <= 8 * (3 + 2 * n * L + T + T * L * min(n, L))   # 3: beta, t0, t1


def test_wide_program_is_small():
    """n >> L: the reduced trajectory is T L^2 numbers, far below T n^2."""
    phi, theta = ref.make_data(12, 120, "tanh", seed=12120)
    prog = ws.synthesize(phi, theta, beta=0.3, t1=1.0)
    assert prog.X.shape == (prog.ts.size, 12, 12)
    assert prog.nbytes < prog.ts.size * 120 * 120 * 8 / 50


# ---- non-finite solves ----------------------------------------------------------------
def _blowup_data():
    """A 1-neuron linear network: dz/dt = -z + beta theta z^2, z(0) = 2, theta = 1.

    With beta = 5: 1/z = 5 - 4.5 e^t, so z blows up at t* = ln(10/9) ~ 0.105.
    """
    return np.array([[2.0]]), np.array([[1.0]])


def test_adaptive_solve_that_blows_up_raises_solve_error_with_time():
    phi, theta = _blowup_data()
    with pytest.raises(ws.SolveError, match=r"t=0\.1\d*") as info:
        ws.synthesize(phi, theta, beta=5.0, t1=1.0, activation="linear", max_steps=2000)
    assert isinstance(info.value, ValueError)
    assert info.value.time is not None
    assert 0.05 < info.value.time <= np.log(10 / 9)


def test_fixed_step_solve_that_blows_up_raises_solve_error_with_time():
    phi, theta = _blowup_data()
    with pytest.raises(ws.SolveError, match="non-finite") as info:
        ws.synthesize(phi, theta, beta=5.0, t1=1.0, activation="linear", steps=100,
                      solver="euler")
    # Euler's blow-up comes later than the exact one, but well before t1
    assert info.value.time is not None
    assert 0.05 < info.value.time < 0.9
    assert f"{info.value.time:.6g}" in str(info.value)
