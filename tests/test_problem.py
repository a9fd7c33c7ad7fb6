"""Problem setup: costs and state equations are probed, bad input raises ValueError."""

import jax.numpy as jnp
import numpy as np
import pytest

import weightsynth as ws
from weightsynth.control.indices import custom_index
from weightsynth.control.problem import Problem


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    theta = np.sign(rng.standard_normal((3, 4)))
    return 0.5 * theta, theta


def test_builtin_indices_evaluate_their_formulas(data):
    phi, theta = data
    Z = np.arctanh(phi) + 0.1
    W = np.ones((4, 4))
    for name, want in [("correlation", -np.sum(np.tanh(Z) * theta)),
                       ("squared_error", np.sum((np.tanh(Z) - theta) ** 2)),
                       ("paper", -np.sum(Z * theta))]:
        p = Problem(phi, theta, name, beta=0.5)
        assert float(p.terminal_cost(Z)) == pytest.approx(want, rel=1e-12)
    p = Problem(phi, theta, "paper", beta=0.5)
    M = theta.T @ np.tanh(Z)
    want = -np.sum(Z * theta) + 0.25 * np.sum(M**2) + np.sum(W**2) / (2 * 0.5)
    assert float(p.lagrangian(Z, W, 0.0)) == pytest.approx(want, rel=1e-12)


def test_state_equation_variants(data):
    phi, theta = data
    Z, W, b = np.arctanh(phi), np.eye(4), np.arange(4.0)
    p = Problem(phi, theta, bias=b, drive=lambda t: jnp.full(4, t))
    np.testing.assert_allclose(p.field(Z, W, 2.0), -Z + np.tanh(Z) @ W.T + b + 2.0)
    X = np.ones((3, 4))
    p = Problem(phi, theta, dynamics="driven", signal=X)
    np.testing.assert_allclose(p.field(Z, 2 * W, 0.0), -Z + 2 * X)
    p = Problem(phi, theta, dynamics=lambda Z, W, t: -2 * Z + Z @ W.T)
    np.testing.assert_allclose(p.field(Z, W, 0.0), -Z)


@pytest.mark.parametrize("terminal, running, match", [
    (lambda Z1, Th: Z1, None, "terminal cost .* must return a scalar"),
    (lambda Z1, Th: jnp.sum(jnp.log(-jnp.abs(Z1))), None, "terminal cost .* non-finite"),
    (None, lambda Z, W, t, Th: jnp.ones(2), "running cost .* must return a scalar"),
    (None, lambda Z, W, t, Th: jnp.inf * jnp.sum(Z), "running cost .* non-finite"),
    (None, lambda Z, W, t, Th: undefined_name, "running cost .* failed"),  # noqa: F821
])
def test_bad_cost_functions_are_rejected_at_setup(data, terminal, running, match):
    with pytest.raises(ValueError, match=match):
        Problem(*data, custom_index(terminal, running))


@pytest.mark.parametrize("kwargs, match", [
    (dict(index="hopfield"), "index must be one of"),
    (dict(dynamics="driven"), "needs signal"),
    (dict(dynamics="driven", signal=np.ones((2, 4))), "L = 3 rows"),
    (dict(dynamics=lambda Z, W, t: Z[0]), "state equation .* shape"),
    (dict(bias=np.ones(3)), "bias has 3 columns"),
    (dict(beta=-1.0), "beta"),
    (dict(t1=-1.0), "t1 must be greater"),
])
def test_bad_problem_arguments(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Problem(*data, **kwargs)


def test_inputs_outside_range_are_rejected(data):
    _, theta = data
    with pytest.raises(ValueError, match="strictly inside"):
        Problem(theta, theta)


def test_solver_arguments_are_checked(data):
    p = Problem(*data)
    with pytest.raises(ValueError, match="nodes"):
        ws.sweep_synthesize(p, nodes=1)
    with pytest.raises(ValueError, match="W0 must be"):
        ws.direct_synthesize(p, W0=np.ones((2, 2)))
    with pytest.raises(ValueError, match="problem must be"):
        ws.sweep_synthesize("not a problem")


@pytest.mark.parametrize("method", ["sweep", "direct"])
def test_divergence_returns_last_good_program(method):
    """Linear g, f = -z + W z and a terminal reward unbounded below: the steps blow up."""
    theta = np.ones((1, 2))
    p = Problem(0.5 * theta, theta, "correlation", beta=1e8, t1=3.0, activation="linear")
    solve = ws.sweep_synthesize if method == "sweep" else ws.direct_synthesize
    kw = dict(max_halvings=3) if method == "sweep" else dict(max_rejections=3)
    res = solve(p, nodes=5, max_iter=50, **kw)
    assert not res.converged
    assert "line search failed" in res.reason or "diverged" in res.reason
    assert np.isfinite(res.program.W).all() and np.isfinite(res.J)
