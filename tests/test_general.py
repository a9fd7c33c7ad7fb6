"""General solvers (docs/derivation.md section 7, eqs. 13-18) against independent references.

References: the closed form J* = -sum_r g^{-1}(phi_r).theta_r and W* from ws.synthesize (the
analytic closed-loop path, no iteration); scipy's Riccati ODE for a linear-quadratic case;
central finite differences for the gradients. All problems share beta and t1 where possible
so the jit caches are reused (the default run stays fast on 2 cores).

W grid used on the paper's index: T = 101 nodes on [0, 1], W piecewise linear, tsit5 with
one fixed step per interval. The discretization's excess over J* is O(h^4) ~ 1e-12, and
W differs from W* by O(h^2) ~ 1e-6.
"""

import numpy as np
import pytest
import scipy.integrate as si

import weightsynth as ws
from weightsynth.control.grid_program import GridProgram
from weightsynth.control.indices import custom_index
from weightsynth.control.problem import Problem
from weightsynth.control.solvers import _cost, _make_grid, _sweep_gradient

BETA, T1, NODES = 0.5, 1.0, 101
TS = np.linspace(0.0, T1, 7)


@pytest.fixture(scope="module")
def paper():
    rng = np.random.default_rng(7)
    theta = np.sign(rng.standard_normal((3, 4)))
    phi = theta * rng.uniform(0.2, 0.8, (3, 4))
    problem = Problem(phi, theta, beta=BETA, t1=T1)
    J_star = -np.sum(np.arctanh(phi) * theta)
    W_ref = ws.synthesize(phi, theta, beta=BETA, t1=T1).weights(TS)
    return problem, J_star, W_ref, phi, theta


@pytest.mark.parametrize("method", ["sweep", "direct"])
@pytest.mark.parametrize("start", ["zero", "random"])
def test_paper_index_converges_to_analytic_program(paper, method, start):
    problem, J_star, W_ref, phi, theta = paper
    solve = ws.sweep_synthesize if method == "sweep" else ws.direct_synthesize
    res = solve(problem, W0=start, nodes=NODES, seed=3)
    assert res.converged, res.reason
    assert abs(res.J - J_star) <= 1e-6 * abs(J_star)
    assert np.max(np.abs(res.program.weights(TS) - W_ref)) <= 1e-4
    # the core's own index, on its own code path, agrees with the solver's J
    J_core = ws.performance_index(res.program, phi, theta, beta=BETA, t1=T1)
    assert abs(J_core - J_star) <= 1e-6 * abs(J_star)
    assert list(res.history.columns[:4]) == ["iteration", "J", "residual", "step"]
    assert len(res.history) == res.iterations + 1


def test_sweep_J_is_monotone(paper):
    problem = paper[0]
    res = ws.sweep_synthesize(problem, W0="random", nodes=NODES, seed=5)
    J = res.history["J"].to_numpy()
    assert res.iterations >= 3
    assert np.all(np.diff(J) <= 0.0)


def test_direct_gradient_matches_central_differences(paper):
    import jax

    problem = paper[0]
    grid = _make_grid(problem, NODES, 1, "tsit5")
    st = np.asarray(grid.steps)
    W = 0.3 * np.random.default_rng(1).standard_normal((NODES, 4, 4))
    g = np.asarray(jax.grad(lambda W: _cost(problem, W, st, grid.cfg))(W))
    eps = 1e-5
    for idx in [(0, 0, 0), (30, 1, 2), (100, 3, 3), (61, 2, 0)]:
        E = np.zeros_like(W)
        E[idx] = eps
        fd = (float(_cost(problem, W + E, st, grid.cfg))
              - float(_cost(problem, W - E, st, grid.cfg))) / (2 * eps)
        assert abs(g[idx] - fd) <= 1e-6 * abs(fd) + 1e-10


def test_sweep_costate_gradient_matches_finite_differences(paper):
    """int <dH/dW, dW> dt (continuous adjoint) equals dJ along a smooth dW (O(h^2) apart)."""
    problem = paper[0]
    grid = _make_grid(problem, NODES, 1, "tsit5")
    nd, st = np.asarray(grid.nodes), np.asarray(grid.steps)
    rng = np.random.default_rng(2)
    A, B = rng.standard_normal((2, 4, 4))
    W = 0.3 * (A + np.cos(3 * nd)[:, None, None] * B)
    dW = np.sin(2 * nd)[:, None, None] * B + A
    _, G, ok = _sweep_gradient(problem, W, nd, st, grid.cfg)
    assert bool(ok)
    adj = np.sum(grid.weights * np.sum(np.asarray(G) * dW, axis=(1, 2)))
    eps = 1e-5
    fd = (float(_cost(problem, W + eps * dW, st, grid.cfg))
          - float(_cost(problem, W - eps * dW, st, grid.cfg))) / (2 * eps)
    assert abs(adj - fd) <= 1e-4 * abs(fd)


def test_result_program_saves_and_recalls(paper, tmp_path):
    problem, _, _, phi, theta = paper
    res = ws.sweep_synthesize(problem, nodes=NODES, max_iter=2, gtol=0.0, ftol=0.0)
    assert isinstance(res.program, GridProgram)
    assert not res.converged and "iteration cap" in res.reason
    path = tmp_path / "g.safetensors"
    res.program.save(path)
    back = ws.load_program(path)
    assert isinstance(back, GridProgram)
    np.testing.assert_array_equal(back.weights(TS), res.program.weights(TS))
    # recall under N with W(t) against scipy's solve_ivp on the same piecewise-linear W
    x = phi[:1]

    Wn, nd = res.program.W, res.program.ts

    def rhs(t, z):  # W(t) interpolated linearly between the nodes with numpy
        W = np.stack([np.interp(t, nd, Wn[:, i, j]) for i in range(4) for j in range(4)])
        return -z + W.reshape(4, 4) @ np.tanh(z)

    ref = si.solve_ivp(rhs, (0, T1), np.arctanh(x[0]), rtol=1e-11, atol=1e-12).y[:, -1]
    np.testing.assert_allclose(back.recall(x)[0], np.tanh(ref), atol=1e-7)


def _lq_reference(X, Theta, q, beta, t1, ts):
    """Riccati solution of the LQ problem in the augmented state x = [vec(Z); 1] (scipy).

    z_r' = -z_r + W x_r is x' = A x + B u with u = vec(W) (row-major), and the cost
    sum_r ||z_r(t1) - theta_r||^2 + int (q/2)||Z||^2 + (1/(2 beta))||u||^2 dt is
    (1/2) x(t1)^T S x(t1) + int (1/2) x^T Q x + (1/2) u^T R u dt with R = I/beta.
    -P' = A^T P + P A - beta P B B^T P + Q, P(t1) = S; J* = (1/2) x0^T P(t0) x0;
    u*(t) = -beta B^T P(t) x(t).
    """
    L, n = X.shape
    N = L * n + 1
    A = np.zeros((N, N))
    A[:-1, :-1] = -np.eye(L * n)
    B = np.zeros((N, n * n))
    for r in range(L):
        for i in range(n):
            B[r * n + i, i * n:(i + 1) * n] = X[r]
    Q = np.zeros((N, N))
    Q[:-1, :-1] = q * np.eye(L * n)
    S = np.zeros((N, N))
    S[:-1, :-1] = 2 * np.eye(L * n)
    S[:-1, -1] = S[-1, :-1] = -2 * Theta.ravel()
    S[-1, -1] = 2 * np.sum(Theta**2)

    def riccati(t, p):
        P = p.reshape(N, N)
        return -(A.T @ P + P @ A - beta * P @ B @ B.T @ P + Q).ravel()

    ric = si.solve_ivp(riccati, (t1, 0.0), S.ravel(), rtol=1e-12, atol=1e-12,
                       dense_output=True)
    x0 = np.append(X.ravel(), 1.0)  # z_r(t0) = g^{-1}(x_r) = x_r for linear g

    def closed(t, x):
        return (A - beta * B @ B.T @ ric.sol(t).reshape(N, N)) @ x

    fwd = si.solve_ivp(closed, (0.0, t1), x0, rtol=1e-12, atol=1e-12, dense_output=True)
    J = 0.5 * x0 @ ric.sol(0.0).reshape(N, N) @ x0
    W = [(-beta * B.T @ ric.sol(t).reshape(N, N) @ fwd.sol(t)).reshape(n, n) for t in ts]
    return J, np.array(W)


@pytest.mark.parametrize("method", ["sweep", "direct"])
def test_linear_quadratic_case_matches_scipy_riccati(method):
    """Linear g, f = -z + W x_r (W acts on the clamped inputs), quadratic costs: LQ."""
    rng = np.random.default_rng(11)
    X = rng.uniform(-1, 1, (2, 3))
    Theta = rng.uniform(-1, 1, (2, 3))
    q, beta, t1 = 0.7, 2.0, 1.0
    index = custom_index(
        terminal=lambda Z1, Th: np.float64(1.0) * ((Z1 - Th) ** 2).sum(),
        running=lambda Z, W, t, Th: 0.5 * q * (Z**2).sum(), name="lq")
    problem = Problem(X, Theta, index, beta=beta, t1=t1, activation="linear",
                      dynamics="driven", signal=X)
    J_ref, W_ref = _lq_reference(X, Theta, q, beta, t1, TS)
    solve = ws.sweep_synthesize if method == "sweep" else ws.direct_synthesize
    res = solve(problem, nodes=NODES)
    assert res.converged, res.reason
    assert abs(res.J - J_ref) <= 1e-6 * abs(J_ref)
    assert np.max(np.abs(res.program.weights(TS) - W_ref)) <= 1e-4


def test_general_study_cell_rows():
    from weightsynth.study import PROTOCOLS

    rows = PROTOCOLS["general"](n=8, load=0.25, noise=0.1, beta=BETA, t1=T1, seed=0,
                                indices=("correlation",), baselines=(), n_times=3,
                                nodes=11, max_iter=3,
                                samples_per_exemplar=2, test_samples_per_exemplar=2)
    assert len(rows) == 2 * 3
    keys = {"method", "n", "L", "noise", "beta", "t1", "seed", "t", "bit_accuracy",
            "overlap", "exact_recall"}
    assert all(keys <= set(r) for r in rows)
    assert {r["split"] for r in rows} == {"train", "test"}
    assert all(0.0 <= r["bit_accuracy"] <= 1.0 for r in rows)
    assert np.isfinite(rows[2]["J"])
