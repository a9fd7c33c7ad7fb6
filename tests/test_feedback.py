"""The feedback solver (W = C^T g(Z), docs/general.md) against independent references.

References: CasADi direct collocation of the problem in W itself (tests/_casadi_reference.py,
n = 4, L = 3); a plain NumPy RK4 that forms W(t) and re-scores J (tests/_reference.py); the
closed form W* = beta Theta^T g(Z) and J* on the paper's index; scipy's Riccati ODE on a
linear-quadratic case; central finite differences of the NumPy J. All problems share
n = 4, L = 3, T = 21 nodes where possible so the compiled chunk is reused.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import weightsynth as ws
from weightsynth.control import feedback_kernel as fk
from weightsynth.control.feedback import (
    _spec_data,
    auto_mixed,
    estimate_memory,
    feedback_synthesize,
)
from weightsynth.control.feedback_program import FeedbackProgram

from . import _reference as ref
from .test_general import _lq_reference

BETA, T1, NODES = 0.5, 1.0, 21


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    theta = np.sign(rng.standard_normal((3, 4)))
    return theta * rng.uniform(0.2, 0.8, (3, 4)), theta


@pytest.fixture(scope="module")
def solved(data):
    phi, theta = data
    out = {}
    for kind in ("correlation", "squared_error"):
        p = ws.Problem(phi, theta, kind, beta=BETA, t1=T1)
        out[kind] = (p, feedback_synthesize(p, nodes=NODES, coordinates="factor"))
    return out


@pytest.fixture(scope="module")
def casadi_ref(data):
    """The independent CasADi collocation optimum (J, times, W there) of each index."""
    cr = pytest.importorskip("tests._casadi_reference")
    pytest.importorskip("casadi")
    phi, theta = data
    return {kind: cr.solve(phi, theta, BETA, T1, kind, N=12)
            for kind in ("correlation", "squared_error")}


@pytest.mark.parametrize("kind", ["correlation", "squared_error"])
def test_matches_casadi_collocation_in_W(solved, casadi_ref, kind):
    J_ref, times, W_ref = casadi_ref[kind]
    res = solved[kind][1]
    assert res.converged, res.reason
    assert isinstance(res.program, FeedbackProgram)
    assert abs(res.J - J_ref) <= 1e-6 * abs(J_ref)  # measured 8e-9 (correlation)
    assert np.max(np.abs(res.program.weights(times) - W_ref)) <= 1e-3  # measured 2e-5



@pytest.mark.parametrize("ridge,ridge_min", [(1e-1, 1e-1), (1e-3, 1e-8)])
def test_metric_ridge_changes_the_path_not_the_optimum(solved, casadi_ref, ridge, ridge_min):
    """The ridge of the metric (eq. 22) only preconditions L-BFGS: a large fixed one, or the
    continuation down to 1e-8 (a refresh every 5 steps, so it shrinks several times),
    reaches the same CasADi optimum, in J and in W(t)."""
    for kind, (J_ref, times, W_ref) in casadi_ref.items():
        res = feedback_synthesize(solved[kind][0], nodes=NODES, ridge=ridge,
                                  ridge_min=ridge_min, refresh=5, coordinates="factor")
        assert res.converged, res.reason
        assert abs(res.J - J_ref) <= 1e-6 * abs(J_ref)
        assert np.max(np.abs(res.program.weights(times) - W_ref)) <= 1e-3

def test_scaled_start_never_above_zero_and_reaches_the_casadi_optimum(data, solved,
                                                                     casadi_ref):
    """W0 = 40 x W* costs far more than W = 0: the search starts from a scaled W0 whose J,
    re-scored by the NumPy RK4, is at most that of W = 0, and still ends at the CasADi
    optimum in J and W(t)."""
    phi, theta = data
    C_big = 40 * BETA * np.broadcast_to(theta, (NODES, *theta.shape))
    for kind, (J_ref, times, W_ref) in casadi_ref.items():
        p = solved[kind][0]
        J_big = ref.rescore_feedback(C_big, np.arctanh(phi), theta, BETA, 0.0, T1, 1, kind)[0]
        J_zero = ref.rescore_feedback(0 * C_big, np.arctanh(phi), theta, BETA, 0.0, T1, 1,
                                      kind)[0]
        assert J_big > J_zero
        res = feedback_synthesize(p, nodes=NODES, W0=C_big, coordinates="factor")
        assert res.settings["start_scale"] < 1
        assert res.history["J"].iloc[0] <= J_zero + 1e-12 * abs(J_zero)
        assert res.converged, res.reason
        assert abs(res.J - J_ref) <= 1e-6 * abs(J_ref)
        assert np.max(np.abs(res.program.weights(times) - W_ref)) <= 1e-3


@pytest.mark.parametrize("coarse,surrogate", [("auto", "auto"), ((), False)])
def test_weight_coordinates_reach_the_casadi_optimum(solved, casadi_ref, coarse, surrogate):
    """W(t) itself as the variable (n x n per node), which the default ``coordinates=
    "auto"`` picks here (n <= 4 L), reaches the same independent CasADi optimum, in J and
    in W(t), for both indices, whether it solves 5 nodes first (``coarse="auto"`` on 21
    nodes over [0, 1]) and, for the correlation index from W = 0, the saturation surrogate
    before it (``surrogate="auto"``), or the 21 nodes directly; and J of the returned
    GridProgram, re-scored by the plain NumPy RK4 of N under its W(t) (piecewise linear
    between the nodes), matches."""
    for kind, (J_ref, times, W_ref) in casadi_ref.items():
        p = solved[kind][0]
        res = feedback_synthesize(p, nodes=NODES, coarse=coarse, surrogate=surrogate)
        assert res.settings["coordinates"] == "weights"
        assert sorted(set(res.history["nodes"])) == ([5, NODES] if coarse else [NODES])
        on = surrogate == "auto" and kind == "correlation"
        assert res.settings["surrogate"] is on
        assert bool(res.history["surrogate"].any()) is on
        assert res.converged, res.reason
        assert isinstance(res.program, ws.GridProgram)
        assert abs(res.J - J_ref) <= 1e-6 * abs(J_ref)
        assert np.max(np.abs(res.program.weights(times) - W_ref)) <= 1e-3
        J_np, _ = _rescore_grid(res.program, p, kind, BETA, T1)
        assert abs(J_np - res.J) <= 1e-7 * abs(J_np)


def test_a_start_scaled_to_zero_goes_through_the_surrogate(data, casadi_ref):
    """An anti-Hebbian W0 = -2 Theta^T Theta costs more than W = 0 at every scale tried,
    so ``scale_start`` replaces it by W = 0; "auto" then runs the correlation surrogate
    from there, as from a W = 0 start, and still ends at the CasADi optimum."""
    phi, theta = data
    J_ref, times, W_ref = casadi_ref["correlation"]
    p = ws.Problem(phi, theta, "correlation", beta=BETA, t1=T1)
    res = feedback_synthesize(p, nodes=NODES, W0=-2.0 * theta.T @ theta,
                              coordinates="weights")
    assert res.settings["start_scale"] == 0
    assert res.settings["surrogate"] and bool(res.history["surrogate"].any())
    assert res.converged, res.reason
    assert abs(res.J - J_ref) <= 1e-6 * abs(J_ref)
    assert np.max(np.abs(res.program.weights(times) - W_ref)) <= 1e-3


def test_surrogate_in_factor_coordinates_reaches_the_casadi_optimum(solved, casadi_ref):
    """``surrogate=True`` also runs in the factor form (W = C^T g(Z)), which "auto" never
    picks for it; the correlation search from the surrogate's optimum still ends at the
    independent CasADi optimum, in J and in W(t)."""
    J_ref, times, W_ref = casadi_ref["correlation"]
    res = feedback_synthesize(solved["correlation"][0], nodes=NODES, coordinates="factor",
                              surrogate=True)
    assert res.settings["surrogate"] and bool(res.history["surrogate"].any())
    assert res.converged, res.reason
    assert abs(res.J - J_ref) <= 1e-6 * abs(J_ref)
    assert np.max(np.abs(res.program.weights(times) - W_ref)) <= 1e-3


def test_saturation_surrogate_finds_a_lower_correlation_optimum():
    """Random targets, n = L = 16, beta 0.5, from W = 0: the correlation index solved
    through its surrogate (half the squared-error index at beta / 2) ends in a local
    minimum that the NumPy RK4 re-scores lower than the plain search's (measured -153.06
    against -152.96; at n = L = 256 -61322 against -59918, docs/general.md). The
    surrogate stage's first row is the squared-error index at beta / 2 of W = 0, where RK4
    gives z(t1) = z0 R(h)^m in closed form (m steps of h, R its stability polynomial of
    dz/dt = -z). A surrogate for another index, or an unknown
    value, is refused."""
    rng = np.random.default_rng(0)
    theta = np.where(rng.random((16, 16)) < 0.5, -1.0, 1.0)
    phi = 0.5 * theta * np.where(rng.random((16, 16)) < 0.1, -1.0, 1.0)
    p = ws.Problem(phi, theta, "correlation", beta=BETA, t1=T1)
    plain = feedback_synthesize(p, surrogate=False)
    sur = feedback_synthesize(p)  # "auto": correlation, weights, one horizon, W = 0
    assert plain.converged and sur.converged, (plain.reason, sur.reason)
    assert sur.settings["surrogate"] and not plain.settings["surrogate"]
    J_plain, _ = _rescore_grid(plain.program, p, "correlation", BETA, T1)
    J_sur, _ = _rescore_grid(sur.program, p, "correlation", BETA, T1)
    assert J_sur < J_plain - 1e-4 * abs(J_plain)  # measured 6.5e-4 lower
    first = sur.history[sur.history["surrogate"]].iloc[0]
    m = int(first["nodes"]) - 1
    h = T1 / m
    z1 = np.arctanh(phi) * (1 - h + h**2 / 2 - h**3 / 6 + h**4 / 24) ** m
    assert abs(first["J"] - np.sum((np.tanh(z1) - theta) ** 2)) <= 1e-12 * abs(first["J"])
    # not from a given start, nor at long horizons (their surrogate optimum has decayed)
    assert not feedback_synthesize(p, W0="closed_form", max_iter=3).settings["surrogate"]
    with pytest.raises(ValueError, match="correlation index only"):
        feedback_synthesize(ws.Problem(phi, theta, "squared_error", beta=BETA, t1=T1),
                            surrogate=True)
    with pytest.raises(ValueError, match="surrogate must be"):
        feedback_synthesize(p, surrogate="yes")


def _rescore_grid(prog, p, kind, beta, t1):
    """J of a GridProgram by the plain NumPy RK4 of N under its piecewise-linear W(t) (40
    steps per node interval), with the effort integral exact for W linear on each
    interval, and the states at t1."""
    T = prog.W.shape[0]
    Wn = prog.weights(np.linspace(0.0, t1, T))

    def W_of_t(t):  # piecewise linear between the nodes, written out here
        u = t / t1 * (T - 1)
        k = min(int(u), T - 2)
        return Wn[k] + (u - k) * (Wn[k + 1] - Wn[k])

    _, Z = ref.run_network(W_of_t, np.asarray(p.Z0), 0.0, t1, 40 * (T - 1))
    G1, theta = np.tanh(Z[-1]), np.asarray(p.Theta)
    terminal = -np.sum(G1 * theta) if kind == "correlation" else np.sum((G1 - theta) ** 2)
    # int ||W||^2 dt, exact for W linear on each interval: h (|a|^2 + a.b + |b|^2) / 3
    a, b = Wn[:-1], Wn[1:]
    effort = t1 / (T - 1) * np.sum(a * a + a * b + b * b) / 3
    return terminal + effort / (2 * beta), Z[-1]


def test_long_horizon_auto_keeps_the_memories():
    """At t1 = 6 the full problem has a stationary point where the outputs have decayed;
    L-BFGS falls into it from W = 0 and from W*. "auto" also solves [0, 2] first and keeps
    the lower J: re-scored by the NumPy RK4, its program costs less and holds more of the
    exemplars' bits than the direct solve's (measured J 77.60 against 79.81)."""
    p = _memory_problem_t6("squared_error")
    theta, beta, t1 = p.Theta, p.beta, p.t1
    auto = feedback_synthesize(p, nodes=NODES)
    direct = feedback_synthesize(p, nodes=NODES, continuation=())
    assert auto.converged and direct.converged
    assert auto.settings["continuation"] == [2.0 / t1]
    J_auto, Z_auto = _rescore_grid(auto.program, p, "squared_error", beta, t1)
    J_direct, Z_direct = _rescore_grid(direct.program, p, "squared_error", beta, t1)
    # the solver's J is its RK4 on the nodes (h = 0.3 here): O(h^4) from the fine re-score
    assert abs(J_auto - auto.J) <= 1e-5 * abs(J_auto)  # measured 1.1e-6
    assert J_auto < J_direct - 1e-2 * abs(J_direct)  # measured 2.8% lower
    bits = [np.mean(np.sign(Z) == theta) for Z in (Z_auto, Z_direct)]
    assert bits[0] > bits[1]


def _memory_problem_t6(kind):
    """The memory problem of test_long_horizon_auto_keeps_the_memories: n = 8, L = 10,
    t1 = 6, beta = 1/8."""
    rng = np.random.default_rng(0)
    n, L = 8, 10
    ex = np.sign(rng.standard_normal((2, n)))
    theta = np.repeat(ex, 5, axis=0)
    phi = 0.5 * theta * np.where(rng.random((L, n)) < 0.1, -1.0, 1.0)
    return ws.Problem(phi, theta, kind, beta=1.0 / 8, t1=6.0)


@pytest.mark.parametrize("kind", ["correlation", "squared_error"])
def test_j_test_stops_at_the_newton_limit(kind):
    """The J test (J changed by at most ftol |J| over five accepted steps) ends these runs
    from W = 0 with the residual's test off (rtol = 0; by default the correlation run
    reaches its residual threshold first): at the result one exact Newton step (the dense
    Hessian of the discrete J by autodiff, positive definite here) moves J by at most
    1e-11 relative and W by 1e-5 of its size (measured 5e-17 and 8e-15, 1.2e-7 and
    3.5e-7)."""
    p = _memory_problem_t6(kind)
    res = feedback_synthesize(p, nodes=NODES, rtol=0.0)
    assert res.converged and "over 5 accepted steps" in res.reason
    spec, data = _spec_data(p, NODES, 1, "rk4", "weights")
    W = np.asarray(res.program.weights(np.linspace(p.t0, p.t1, NODES)))
    C = np.swapaxes(W, 1, 2)

    def J(x):
        return fk.cost(x.reshape(C.shape), data, spec)

    x = jnp.asarray(C.ravel())
    g, H = np.asarray(jax.grad(J)(x)), np.asarray(jax.hessian(J)(x))
    assert np.linalg.eigvalsh(H)[0] > 0  # a strict local minimum: the limit exists
    step = np.linalg.solve(H, -g)
    assert abs(J(x) - res.J) <= 1e-12 * abs(res.J)  # the program is the run's
    assert -0.5 * g @ step <= 1e-11 * abs(res.J)
    assert np.abs(step).max() <= 1e-5 * np.abs(W).max()


@pytest.mark.parametrize("kind", ["correlation", "squared_error"])
def test_numpy_rk4_forming_W_rescores_J(data, solved, kind):
    phi, theta = data
    res = solved[kind][1]
    prog = res.program
    J_np, Zs = ref.rescore_feedback(np.asarray(prog.C), np.arctanh(phi), theta, BETA, 0.0, T1,
                                    1, kind)
    assert abs(J_np - res.J) <= 1e-10 * abs(J_np)
    np.testing.assert_allclose(prog.weights(prog.ts),
                               ref.feedback_weights(np.asarray(prog.C), Zs, 0.0, T1), atol=1e-10)
    # finer integration of the same program: J moves by the O(h^4) RK4 error only
    J_fine, _ = ref.rescore_feedback(np.asarray(prog.C), np.arctanh(phi), theta, BETA, 0.0,
                                     T1, 8, kind)
    assert abs(J_fine - res.J) <= 1e-7 * abs(J_fine)


def test_stationary_by_finite_differences_of_numpy_J(data, solved):
    """Central differences of the independent NumPy J: zero at the optimum (up to rtol), and
    equal to the solver's gradient at a non-optimal C."""
    phi, theta = data
    p, res = solved["correlation"]
    C = np.asarray(res.program.C)
    rng = np.random.default_rng(3)
    spec, dat = _spec_data(p, NODES, 1, "rk4")
    C1 = C + 0.3 * rng.standard_normal(C.shape)
    grad = np.asarray(jax.grad(fk.cost)(jax.numpy.asarray(C1), dat, spec))
    eps = 1e-5
    for _ in range(3):
        D = rng.standard_normal(C.shape)

        def J(Cx):
            return ref.rescore_feedback(Cx, np.arctanh(phi), theta, BETA, 0.0, T1, 1,
                                        "correlation")[0]

        fd_opt = (J(C + eps * D) - J(C - eps * D)) / (2 * eps)
        fd = (J(C1 + eps * D) - J(C1 - eps * D)) / (2 * eps)
        assert abs(fd - np.sum(grad * D)) <= 1e-7 * abs(fd)
        assert abs(fd_opt) <= 1e-5 * abs(fd)


@pytest.mark.parametrize("start,coordinates", [("zero", "factor"), ("closed_form", "factor"),
                                               ("zero", "weights"), ("zero", "auto")])
def test_paper_index_reaches_closed_form_program(data, start, coordinates):
    phi, theta = data
    p = ws.Problem(phi, theta, "paper", beta=BETA, t1=T1)
    res = feedback_synthesize(p, W0=start, nodes=NODES, coordinates=coordinates)
    J_star = -np.sum(np.arctanh(phi) * theta)
    # the factor form holds W* exactly (C = beta Theta); W piecewise linear on 21 nodes
    # misses it by O(h^2) in W and so O(h^4) in J (measured 1.1e-6 relative). "auto" must
    # take the exact family on this index
    J_tol, W_tol = (1e-5, 2e-3) if coordinates == "weights" else (1e-8, 1e-4)
    assert res.converged, res.reason
    assert abs(res.J - J_star) <= J_tol * abs(J_star)
    ts = np.linspace(0.0, T1, 7)
    W_ref = ws.synthesize(phi, theta, beta=BETA, t1=T1).weights(ts)
    assert np.max(np.abs(res.program.weights(ts) - W_ref)) <= W_tol  # factor: ~1e-6
    # the core's own index (N under W(t), adaptive) scores the program at J*
    J_core = ws.performance_index(res.program, phi, theta, beta=BETA, t1=T1)
    assert abs(J_core - J_star) <= J_tol * abs(J_star)
    # Armijo line search: J never increases within a stage (one grid and horizon), up to
    # round-off
    for _, stage in res.history.groupby(["run", "nodes", "t1"]):
        assert np.all(np.diff(stage["J"].to_numpy()) <= 1e-11 * abs(J_star))


@pytest.mark.parametrize("coordinates", ["factor", "weights"])
def test_linear_quadratic_case_matches_scipy_riccati(coordinates):
    rng = np.random.default_rng(11)
    X = rng.uniform(-1, 1, (2, 3))
    Theta = rng.uniform(-1, 1, (2, 3))
    q, beta, t1 = 0.7, 2.0, 1.0
    index = ws.custom_index(
        terminal=lambda Z1, Th: ((Z1 - Th) ** 2).sum(),
        running=lambda Z, W, t, Th: 0.5 * q * (Z**2).sum(), name="lq")
    p = ws.Problem(X, Theta, index, beta=beta, t1=t1, activation="linear", dynamics="driven",
                   signal=X)
    ts = np.linspace(0.0, t1, 7)
    J_ref, W_ref = _lq_reference(X, Theta, q, beta, t1, ts)
    res = feedback_synthesize(p, nodes=41, rtol=1e-10, coordinates=coordinates)
    assert res.converged, res.reason
    assert abs(res.J - J_ref) <= 1e-6 * abs(J_ref)
    # O(h^2) of piecewise-linear C: measured 1.5e-4 at T = 41
    assert np.max(np.abs(res.program.weights(ts) - W_ref)) <= 1e-3


def test_program_saves_loads_and_recalls_like_numpy(data, solved, tmp_path):
    phi, theta = data
    prog = solved["correlation"][1].program
    path = tmp_path / "f.safetensors"
    prog.save(path)
    back = ws.load_program(path)
    assert isinstance(back, FeedbackProgram)
    ts = np.linspace(0.0, T1, 5)
    np.testing.assert_array_equal(back.weights(ts), prog.weights(ts))
    # a query runs N under W(t) = C^T g(Z(t)); NumPy RK4 forming W, same grid
    x = 0.9 * phi[:2] + 0.05
    _, Zs = ref.rescore_feedback(np.asarray(prog.C), np.arctanh(phi), theta, BETA, 0.0, T1, 1,
                                 "correlation")
    C = np.asarray(prog.C)

    def f(t, y):
        Z, Q = y
        k = min(int(t / 0.05 + 1e-9), NODES - 2)
        s = (t - 0.05 * k) / 0.05
        W = (C[k] + s * (C[k + 1] - C[k])).T @ np.tanh(Z)
        return (-Z + np.tanh(Z) @ W.T, -Q + np.tanh(Q) @ W.T)

    _, ys = ref.rk4(f, (np.arctanh(phi), np.arctanh(x)), 0.0, T1, NODES - 1)
    np.testing.assert_allclose(back.recall(x), np.tanh(ys[-1][1]), atol=1e-12)
    # a training input reproduces its own row of S
    np.testing.assert_allclose(back.trajectory(phi, [T1])[0], Zs[-1], atol=1e-12)


def test_cap_is_never_converged_and_bad_input(data):
    phi, theta = data
    p = ws.Problem(phi, theta, "correlation", beta=BETA, t1=T1)
    res = feedback_synthesize(p, nodes=NODES, max_iter=2)
    assert not res.converged and "iteration cap" in res.reason and res.iterations == 2
    with pytest.raises(ValueError, match="GiB"):
        feedback_synthesize(p, nodes=NODES, memory_limit=1000)
    assert estimate_memory(p, NODES) > 0
    with pytest.raises(ValueError, match="W0"):
        feedback_synthesize(p, nodes=NODES, W0=np.zeros((5, 5)))
    with pytest.raises(ValueError, match="W0 in weight coordinates"):
        feedback_synthesize(p, nodes=NODES, W0=np.zeros((3, 4)), coordinates="weights")
    with pytest.raises(ValueError, match="coordinates must be one of"):
        feedback_synthesize(p, nodes=NODES, coordinates="dense")
    # weight coordinates hold T n^2 numbers instead of T L n
    assert estimate_memory(p, NODES, coordinates="weights") > \
        estimate_memory(p, NODES, coordinates="factor")
    for bad in (0.0, -1e-3, np.inf, "1e-3"):
        with pytest.raises(ValueError, match="ridge must"):
            feedback_synthesize(p, nodes=NODES, ridge=bad)
        with pytest.raises(ValueError, match="ridge_min must"):
            feedback_synthesize(p, nodes=NODES, ridge_min=bad)
    with pytest.raises(ValueError, match="custom dynamics"):
        feedback_synthesize(ws.Problem(phi, theta, "correlation",
                                       dynamics=lambda Z, W, t: -Z + Z @ W.T))
    with pytest.raises(ValueError, match="does not depend"):
        idx = ws.custom_index(running=lambda Z, W, t, Th: (W**2).sum())
        feedback_synthesize(ws.Problem(phi, theta, idx))


def test_coarse_grid_first_saves_fine_iterations_and_checks_its_input():
    """n = L = 16 random targets, correlation, from W = 0: solving 6 nodes first leaves the
    26-node grid close to its optimum (measured 32 iterations there, after 80 on 6 nodes,
    against 73 directly), and both runs stop at the same optimum (J 1e-13, W(t) 4e-6).
    Bad coarse grids are refused."""
    rng = np.random.default_rng(2)
    theta = np.where(rng.random((16, 16)) < 0.5, -1.0, 1.0)
    phi = 0.5 * theta * np.where(rng.random((16, 16)) < 0.1, -1.0, 1.0)
    p = ws.Problem(phi, theta, "correlation", beta=0.5, t1=1.0)
    direct = feedback_synthesize(p, nodes=26, coarse=())
    coarse = feedback_synthesize(p, nodes=26)
    assert coarse.settings["coarse"] == [6] and direct.settings["coarse"] == []
    assert direct.converged and coarse.converged
    fine = coarse.history[coarse.history["nodes"] == 26]
    assert len(fine) - 1 < 0.6 * direct.iterations
    assert abs(coarse.J - direct.J) <= 1e-9 * abs(direct.J)
    ts = np.linspace(0.0, 1.0, 11)
    np.testing.assert_allclose(coarse.program.weights(ts), direct.program.weights(ts),
                               atol=1e-4)
    for bad in ((26,), (8, 6), (1,), "fine"):
        with pytest.raises(ValueError, match="coarse"):
            feedback_synthesize(p, nodes=26, coarse=bad)


def test_divergent_problem_returns_last_good_program():
    """Linear g and a reward unbounded below with a huge beta: stop, not converged, finite."""
    rng = np.random.default_rng(4)
    X = rng.uniform(-0.5, 0.5, (3, 4))
    p = ws.Problem(X, np.sign(X), ws.custom_index(terminal=lambda Z1, Th: -(Z1**2).sum()),
                   beta=1e8, t1=T1, activation="linear")
    res = feedback_synthesize(p, nodes=NODES, max_iter=200)
    assert not res.converged
    assert np.isfinite(res.J)
    assert np.isfinite(res.program.weights(np.linspace(0.0, T1, NODES))).all()


def test_float32_problem_stays_float32_and_matches_float64(data, solved):
    phi, theta = data
    p32 = ws.Problem(phi.astype(np.float32), theta.astype(np.float32), "correlation",
                     beta=BETA, t1=T1, dtype=np.float32)
    res = feedback_synthesize(p32, nodes=NODES, rtol=1e-4, coordinates="factor")
    assert res.converged, res.reason
    assert res.program.C.dtype == np.float32
    J64 = solved["correlation"][1].J
    assert abs(res.J - J64) <= 1e-4 * abs(J64)


def test_mixed_precision_reaches_the_casadi_optimum_in_float64(solved, casadi_ref):
    """``mixed_precision=True``: the whole schedule in float32, then float64 from its
    result, to the float64 problem's own threshold: the independent CasADi optimum, in J
    and in W(t), for both indices, and a float64 program."""
    for kind, (J_ref, times, W_ref) in casadi_ref.items():
        p = solved[kind][0]
        res = feedback_synthesize(p, nodes=NODES, mixed_precision=True)
        assert res.settings["mixed_precision"] is True
        prec = list(res.history["precision"])
        assert prec == sorted(prec) and set(prec) == {"float32", "float64"}  # float32 first
        assert res.converged, res.reason
        assert abs(res.J - J_ref) <= 1e-6 * abs(J_ref)
        assert np.max(np.abs(res.program.weights(times) - W_ref)) <= 1e-3
        assert res.program.W.dtype == np.float64


def test_auto_mixed_policy_and_bad_input(data):
    """"auto" mixes precisions for float64 problems in weight coordinates with the
    correlation or squared-error index at horizons longer than 3 only."""
    phi, theta = data
    short = ws.Problem(phi, theta, "squared_error", beta=BETA, t1=T1)
    long = ws.Problem(phi, theta, "squared_error", beta=BETA, t1=6.0)
    assert not auto_mixed(short, "weights")
    assert auto_mixed(long, "weights") and not auto_mixed(long, "factor")
    assert not auto_mixed(ws.Problem(phi, theta, "paper", beta=BETA, t1=6.0), "weights")
    assert not auto_mixed(long, "weights", False) and auto_mixed(short, "factor", True)
    p32 = ws.Problem(phi.astype(np.float32), theta.astype(np.float32), "squared_error",
                     beta=BETA, t1=6.0, dtype=np.float32)
    assert not auto_mixed(p32, "weights")
    with pytest.raises(ValueError, match="needs a float64 problem"):
        feedback_synthesize(p32, mixed_precision=True)
    with pytest.raises(ValueError, match="mixed_precision must be"):
        feedback_synthesize(short, mixed_precision="yes")
    assert feedback_synthesize(short, nodes=NODES, max_iter=2).settings[
        "mixed_precision"] is False
    # a W0 whose effort overflows float32 (1e25^2) but not float64: float64 throughout
    huge = feedback_synthesize(long, nodes=NODES, W0=1e25 * np.eye(4), coordinates="weights",
                               max_iter=3)
    assert huge.settings["mixed_precision"] is False and np.isfinite(huge.J)


@pytest.mark.parametrize("pairs", [np.float64, np.float32])
def test_lbfgs_direction_matches_the_dense_bfgs_update(pairs):
    """The two-loop recursion over the ring equals -H g with H from the BFGS update applied
    to gamma I, oldest pair first (dense NumPy); empty slots (rho = 0) are skipped. With
    the pairs stored in float32 (as float64 runs store them) to float32's precision."""
    from weightsynth.control.feedback_loop import _direction

    rng = np.random.default_rng(5)
    N, m, head = 7, 4, 2
    A = rng.standard_normal((N, N))
    A = A @ A.T + N * np.eye(N)            # SPD: s.y > 0 for every pair
    S = rng.standard_normal((m, N))
    Y = S @ A.T
    rho = 1 / np.einsum("ij,ij->i", S, Y)
    g, gamma = rng.standard_normal(N), 0.7
    for filled in (m, 2):                   # a full ring, and one with two empty slots
        order = [(head + i) % m for i in range(m)][m - filled:]   # oldest to newest
        r = np.where(np.isin(np.arange(m), order), rho, 0.0)
        H = gamma * np.eye(N)
        for k in order:
            V = np.eye(N) - rho[k] * np.outer(Y[k], S[k])
            H = V.T @ H @ V + rho[k] * np.outer(S[k], S[k])
        d = _direction(jnp.asarray(g), jnp.asarray(S, pairs), jnp.asarray(Y, pairs),
                       jnp.asarray(r), jnp.asarray(head), jnp.asarray(gamma))
        assert d.dtype == np.float64
        tol = 1e-12 if pairs == np.float64 else 1e-5  # measured 5e-7 in float32
        np.testing.assert_allclose(np.asarray(d), -H @ g, rtol=tol, atol=tol)


def test_auto_coordinates_choice(data):
    """"auto" keeps the factor form where weights would cost more per pass (n > 4 L) or not
    fit, where W0 is an array of coefficients, and for the paper's index (W* in the family);
    it takes weights where only they can start (a GridProgram W0)."""
    from weightsynth.control.feedback import choose_coordinates

    phi, theta = data  # L = 3, n = 4
    p = ws.Problem(phi, theta, "correlation", beta=BETA, t1=T1)
    assert choose_coordinates(p) == "weights"
    assert choose_coordinates(p, "factor") == "factor"
    assert choose_coordinates(ws.Problem(phi, theta, "paper", beta=BETA, t1=T1)) == "factor"
    assert choose_coordinates(p, W0=np.zeros((3, 4))) == "factor"
    grid = ws.GridProgram(activation=p.activation, t0=0.0, t1=T1, W=np.zeros((NODES, 4, 4)),
                          drive=np.zeros((NODES, 4)), solver=ws.SolverConfig(steps=NODES - 1))
    assert choose_coordinates(p, W0=grid) == "weights"
    rng = np.random.default_rng(0)
    th = np.sign(rng.standard_normal((3, 13)))
    wide = ws.Problem(0.5 * th, th, "correlation", beta=BETA, t1=T1)  # n = 13 > 4 L = 12
    assert choose_coordinates(wide) == "factor"
    need_w = estimate_memory(p, NODES, coordinates="weights")
    need_f = estimate_memory(p, NODES, coordinates="factor")
    assert need_f < need_w
    assert choose_coordinates(p, memory_limit=(need_f + need_w) // 2) == "factor"
    assert estimate_memory(p, NODES) == need_w  # "auto" estimates what it would pick
