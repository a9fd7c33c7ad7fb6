r"""The performance index J (eq. 3) and the excess cost, against an independent NumPy integral.

For any program W(t): J[W] = J* + (1/(2 beta)) int ||W - beta M||^2 dt (derivation eq. 8).
Perturbing the optimal program must raise J by exactly that excess, which the reference
(tests/_reference.py: RK4 of S and N with both integrals as state) computes on its own.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import weightsynth as ws

from . import _reference as ref

BETA, T1 = 0.5, 1.0


@pytest.fixture(scope="module")
def case():
    """The canonical reduced-coordinates case of test_synthesis (shared compiled code)."""
    phi, theta = ref.make_data(3, 5, "tanh", seed=3005)
    prog = ws.synthesize(phi, theta, beta=BETA, t1=T1)
    return prog, phi, theta


class Perturbed(eqx.Module):
    """W(t) = W*(t) + (a + b sin(omega t)) E: a traceable callable t -> (n, n).

    An equinox module, so its arrays are traced: one compiled index serves every (a, b,
    omega, E), constant (b = 0) and time-varying alike.
    """

    prog: ws.WeightProgram
    E: jnp.ndarray
    a: jnp.ndarray
    b: jnp.ndarray
    omega: jnp.ndarray

    def __call__(self, t):
        return self.prog.weights_at(t) + (self.a + self.b * jnp.sin(self.omega * t)) * self.E


def _reference_index(phi, theta, E, a, b, omega):
    return ref.index(phi, theta, BETA, 0.0, T1, 1000,
                     lambda t, Ws: Ws + (a + b * np.sin(omega * t)) * E, parts=True)


@pytest.mark.parametrize("seed", range(5))
def test_random_perturbations_raise_J_by_the_excess(case, seed):
    prog, phi, theta = case
    rng = np.random.default_rng(seed)
    n = phi.shape[1]
    E = rng.standard_normal((n, n))
    eps = 10.0 ** rng.uniform(-2, 0)
    a, b = (eps, 0.0) if seed == 0 else eps * rng.standard_normal(2)  # seed 0: constant
    omega = rng.uniform(0.5, 8.0)
    fn = Perturbed(prog, *(jnp.asarray(np.float64(v)) for v in (E, a, b, omega)))
    res = ws.evaluate_index(fn, phi, theta, beta=BETA, t1=T1)
    J_ref, excess_ref, J_star, terminal_ref, running_ref = _reference_index(
        phi, theta, E, a, b, omega)
    assert res.J_star == pytest.approx(J_star, rel=1e-13)
    assert res.J > J_star
    assert res.excess > 0
    # the exact excess from the independent integral ...
    assert res.excess == pytest.approx(excess_ref, rel=1e-7)
    # ... is how far J rose above J*, with J itself from eq. (3)
    assert res.J - J_star == pytest.approx(excess_ref, rel=1e-7, abs=1e-10 * abs(J_star))
    assert res.J == pytest.approx(J_ref, rel=1e-9)
    # its two parts, each against the reference: the state at t1 and the running integral
    assert res.terminal == pytest.approx(terminal_ref, rel=1e-9)
    assert res.running == pytest.approx(running_ref, rel=1e-9, abs=1e-9 * abs(J_star))


def test_plain_numpy_callable_program(case):
    """A host function t -> (n, n) (not traceable by JAX) is a program too."""
    prog, phi, theta = case
    rng = np.random.default_rng(7)
    E = rng.standard_normal((5, 5))

    W0 = prog.weights(0.0)

    def weights(t):
        return W0 + 0.3 * np.cos(3 * float(t)) * E

    res = ws.evaluate_index(weights, phi, theta, beta=BETA, t1=T1)
    J_ref, excess_ref, J_star = ref.index(phi, theta, BETA, 0.0, T1, 1000,
                                          lambda t, Ws: W0 + 0.3 * np.cos(3 * t) * E)
    assert res.excess == pytest.approx(excess_ref, rel=1e-7)
    assert res.J - J_star == pytest.approx(excess_ref, rel=1e-7)
    assert res.J == pytest.approx(J_ref, rel=1e-9)


def test_constant_programs_outer_product(case):
    """Constant programs (array or ConstantProgram) are scored like any other."""
    _, phi, theta = case
    W = ws.outer_product_rule(theta)
    res = ws.evaluate_index(W, phi, theta, beta=BETA, t1=T1)
    J_ref, excess_ref, J_star = ref.index(phi, theta, BETA, 0.0, T1, 1000, lambda t, Ws: W)
    assert res.J == pytest.approx(J_ref, rel=1e-9)
    assert res.excess == pytest.approx(excess_ref, rel=1e-7)
    assert res.J - J_star == pytest.approx(excess_ref, rel=1e-7)
    cp = ws.ConstantProgram(W, t1=T1)
    assert ws.evaluate_index(cp, phi, theta, beta=BETA).J == pytest.approx(res.J, rel=1e-12)
    assert ws.excess_cost(cp, phi, theta, beta=BETA) == pytest.approx(res.excess, rel=1e-12)


def test_optimal_cost_closed_form():
    phi, theta = ref.make_data(4, 3, "logistic", seed=1)
    _, ginv = ref.activation("logistic")
    assert ws.optimal_cost(phi, theta, "logistic") == pytest.approx(
        -np.sum(ginv(phi) * theta), rel=1e-14)


def test_index_defaults_come_from_the_program(case):
    prog, phi, theta = case
    assert ws.performance_index(prog, phi, theta) == pytest.approx(
        ws.performance_index(prog, phi, theta, beta=BETA, t1=T1), rel=1e-14)


def test_index_bad_input(case):
    prog, phi, theta = case
    with pytest.raises(ValueError, match="n = 5 neurons but inputs have 4"):
        ws.evaluate_index(prog, phi[:, :4], theta[:, :4])
    with pytest.raises(ValueError, match="exceeds the program"):
        ws.evaluate_index(prog, phi, theta, t1=2.0)
    with pytest.raises(ValueError, match="beta"):
        ws.evaluate_index(np.eye(5), phi, theta, t1=1.0)  # no program to take beta from
    with pytest.raises(ValueError, match=r"must be \(5, 5\)"):
        ws.evaluate_index(np.eye(4), phi, theta, beta=1.0, t1=1.0)
    with pytest.raises(ValueError, match=r"callable must return an \(5, 5\)"):
        ws.evaluate_index(lambda t: jnp.eye(4), phi, theta, beta=1.0, t1=1.0)
    with pytest.raises(ValueError, match="same shape"):
        ws.evaluate_index(prog, phi, theta[:2])
    with pytest.raises(ValueError, match="inputs must lie strictly inside"):
        ws.evaluate_index(prog, np.where(phi > 0, 1.0, phi), theta)
    with pytest.raises(ValueError, match="t1 must be greater than t0"):
        ws.evaluate_index(np.eye(5), phi, theta, beta=1.0, t1=0.0)


def test_index_solve_that_blows_up_says_when():
    """N with linear g under W(t) = a e^{bt} I: z = z0 exp(-t + (a/b)(e^{bt} - 1)). The index
    integrates ||M||^2 ~ z^2, which overflows float64 (log max = 709.78) at the root t* of
    2 (-t + (a/b)(e^{bt} - 1)) + 2 log(z0 n) = 709.78: about 0.248 for a=50, b=20."""
    theta = np.ones((2, 3))
    phi = 0.5 * theta
    with pytest.raises(ws.SolveError, match="non-finite") as info:
        ws.evaluate_index(lambda t: 50.0 * jnp.exp(20.0 * t) * jnp.eye(3), phi, theta,
                          beta=0.5, t1=1.0, activation="linear")
    from scipy.optimize import brentq

    t_star = brentq(lambda t: 2 * (-t + 2.5 * np.expm1(20 * t)) + 2 * np.log(0.5 * 3 * 2)
                    - np.log(np.finfo(float).max), 0.0, 1.0)
    assert 0.24 < t_star < 0.26
    assert t_star - 1 / 16 <= info.value.time <= t_star
