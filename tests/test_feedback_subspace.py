"""The targets-subspace start of L-BFGS (feedback_subspace) against independent references.

The Gauss-Newton model is rebuilt here from a plain NumPy RK4 (tests/_reference.py) by
finite differences; the two-loop recursion from the subspace H0 against the dense BFGS
update; the solver with it on every stage against the CasADi collocation optimum
(n = 4, L = 3, targets of rank 1 and 3).
"""

import jax.numpy as jnp
import numpy as np
import pytest

import weightsynth as ws
from weightsynth.control import feedback_kernel as fk
from weightsynth.control import feedback_subspace as fs
from weightsynth.control.feedback import _spec_data, auto_subspace, feedback_synthesize

from . import _reference as ref
from .test_feedback import BETA, NODES, T1, data  # noqa: F401 (a fixture)


def test_targets_basis_spans_the_distinct_targets():
    rng = np.random.default_rng(0)
    ex = np.sign(rng.standard_normal((3, 9)))
    theta = np.repeat(ex, 4, axis=0)  # 12 targets, 3 distinct
    Q = fs.targets_basis(theta)
    assert Q.shape == (9, 3)
    np.testing.assert_allclose(Q.T @ Q, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(Q @ (Q.T @ ex.T), ex.T, atol=1e-12)  # every target inside
    assert fs.targets_basis(theta, max_rank=2) is None
    assert fs.targets_basis(np.zeros((4, 9))) is None


def test_model_matches_finite_differences_of_a_numpy_rk4():
    """H_S = I / beta + Jz^T (d^2 phi / dZ1^2) Jz on S = {W + Q A^T Q^T / sqrt(t1)}: the
    sensitivities Jz by central differences of a NumPy RK4 of N under the perturbed
    piecewise-linear W(t) (one step per node interval, as the solver discretizes), the
    effort's curvature by second differences of its exact integral, the squared-error
    terminal's Hessian written out for tanh."""
    rng = np.random.default_rng(2)
    n, L, t1, beta, T = 4, 5, 2.0, 0.3, 11
    theta = np.sign(rng.standard_normal((L, n)))
    theta[3:] = theta[:2]  # rank 3
    phi = 0.6 * theta * np.where(rng.random((L, n)) < 0.2, -1.0, 1.0)
    p = ws.Problem(phi, theta, "squared_error", beta=beta, t1=t1)
    Wn = 0.4 * rng.standard_normal((T, n, n))
    spec, dat = _spec_data(p, T, 1, "rk4", "weights")
    sqw = fk.trapezoid_sqrt(dat, spec)
    Q = fs.targets_basis(theta)
    K = Q.shape[1]
    assert K == 3
    y = fk.to_var(jnp.asarray(np.swapaxes(Wn, 1, 2)), None, sqw)
    H = np.asarray(fs.subspace_hessian(y, jnp.asarray(Q), dat, spec, sqw))

    def perturbed(a):  # W(t) + Q A^T Q^T / sqrt(t1): the solver's variables hold W^T
        return Wn + (Q @ a.reshape(K, K).T @ Q.T / np.sqrt(t1))[None]

    def outputs(W):
        def W_of_t(t):
            u = t / t1 * (T - 1)
            k = min(int(u), T - 2)
            return W[k] + (u - k) * (W[k + 1] - W[k])
        # one RK4 step per node interval: the solver's discretization, written out here
        return ref.run_network(W_of_t, np.arctanh(phi), 0.0, t1, T - 1)[1][-1]

    def effort(W):
        a, b = W[:-1], W[1:]
        return t1 / (T - 1) * np.sum(a * a + a * b + b * b) / 3 / (2 * beta)

    eps, m = 1e-5, K * K
    E = np.eye(m)
    Jz = np.stack([(outputs(perturbed(eps * e)) - outputs(perturbed(-eps * e))) / (2 * eps)
                   for e in E])
    G1 = np.tanh(outputs(Wn))
    d1 = 1 - G1 ** 2
    hess_phi = 2 * (d1 ** 2 + (G1 - theta) * (-2 * G1 * d1))  # d^2 (g - theta)^2 / dz^2
    h = 1e-3
    H_effort = np.array([[(effort(perturbed(h * (ei + ej))) - effort(perturbed(h * (ei - ej)))
                           - effort(perturbed(h * (ej - ei))) + effort(perturbed(-h * (ei + ej))))
                          / (4 * h * h) for ej in E] for ei in E])
    np.testing.assert_allclose(H_effort, np.eye(m) / beta, atol=1e-6)  # the model's I / beta
    H_ref = H_effort + np.einsum("iln,ln,kln->ik", Jz, hess_phi, Jz)
    np.testing.assert_allclose(H, H_ref, rtol=1e-7, atol=1e-8 * np.abs(H_ref).max())
    assert np.abs(H_ref - np.eye(m) / beta).max() > 0.1 / beta  # the outputs' part matters


def _dense_subspace(rng, T, n, K):
    """A random subspace S = {q(t) Q A Q^T}: the profile q (T,) of unit norm, Q (n, K)
    orthonormal, and S's basis written out densely, B (T n n, K^2), orthonormal."""
    q = rng.random(T)
    q /= np.linalg.norm(q)
    Q = np.linalg.qr(rng.standard_normal((n, K)))[0]
    B = np.stack([np.einsum("k,i,j->kij", q, Q[:, a], Q[:, b]).ravel()
                  for a in range(K) for b in range(K)], axis=1)
    return q, Q, B


def test_direction_matches_the_dense_bfgs_update_from_the_subspace_h0():
    """The two-loop recursion from H0 = S Hi S^T + gamma (I - S S^T), S's basis written out
    densely here, equals the BFGS update of that H0, oldest pair first."""
    from weightsynth.control.feedback_loop import _direction

    rng = np.random.default_rng(4)
    T, n, K, m, head = 3, 3, 2, 3, 1
    N = T * n * n
    q, Q, B = _dense_subspace(rng, T, n, K)
    M = rng.standard_normal((K * K, K * K))
    Hi = M @ M.T + np.eye(K * K)
    gamma = 0.3
    H0 = B @ Hi @ B.T + gamma * (np.eye(N) - B @ B.T)
    A = rng.standard_normal((N, N))
    A = A @ A.T + N * np.eye(N)
    S = rng.standard_normal((m, N))
    Y = S @ A.T
    rho = 1 / np.einsum("ij,ij->i", S, Y)
    g = rng.standard_normal(N)
    H = H0
    for k in [(head + i) % m for i in range(m)]:  # oldest to newest
        V = np.eye(N) - rho[k] * np.outer(Y[k], S[k])
        H = V.T @ H @ V + rho[k] * np.outer(S[k], S[k])
    sub = fs.Subspace(jnp.asarray(q), jnp.asarray(Q), jnp.asarray(Hi))
    shape = (T, n, n)
    d = _direction(jnp.asarray(g.reshape(shape)), jnp.asarray(S.reshape(m, *shape)),
                   jnp.asarray(Y.reshape(m, *shape)), jnp.asarray(rho), jnp.asarray(head),
                   jnp.asarray(gamma), sub)
    np.testing.assert_allclose(np.asarray(d).ravel(), -H @ g, rtol=1e-11, atol=1e-11)


def test_complement_scaling_matches_the_dense_projection():
    """gamma = s_c.y_c / y_c.y_c of the pair's parts outside S, (I - B B^T) s and
    (I - B B^T) y with S's basis B written out densely; the fallback where s_c.y_c <= 0."""
    rng = np.random.default_rng(5)
    T, n, K = 3, 4, 2
    N = T * n * n
    q, Q, B = _dense_subspace(rng, T, n, K)
    sub = fs.Subspace(jnp.asarray(q), jnp.asarray(Q), jnp.asarray(np.eye(K * K)))
    P = np.eye(N) - B @ B.T
    s = rng.standard_normal(N)
    y = 2.0 * s + 0.1 * rng.standard_normal(N) + B @ rng.standard_normal(K * K)
    sc, yc = P @ s, P @ y

    def gamma(s, y):
        return float(sub.gamma(jnp.asarray(s @ y), jnp.asarray(y @ y),
                               jnp.asarray(s.reshape(T, n, n)),
                               jnp.asarray(y.reshape(T, n, n)), jnp.asarray(-1.0)))

    np.testing.assert_allclose(gamma(s, y), (sc @ yc) / (yc @ yc), rtol=1e-12)
    assert gamma(s, -y + 2 * B @ (B.T @ y)) == -1.0  # the complement's s.y < 0: fallback


#: three distinct, linearly independent targets (n = 4): the subspace model is 9 x 9,
#: against 1 x 1 for the fixture's targets (one pattern and its negative, rank 1)
THETA3 = np.array([[1.0, 1, -1, -1], [1, -1, 1, -1], [-1, 1, 1, 1]])


@pytest.mark.parametrize("rank", [1, 3])
def test_subspace_on_every_stage_reaches_the_casadi_optimum(data, rank):  # noqa: F811
    """``subspace=True`` (the model on every stage, rebuilt every 40 steps) changes the path
    only: weight coordinates reach the independent CasADi optimum in J and in W(t), for
    both indices, with targets of rank 1 (the fixture's) and rank 3."""
    pytest.importorskip("casadi")
    from . import _casadi_reference as cr

    phi, theta = data
    if rank == 3:
        theta = THETA3
        phi = theta * np.random.default_rng(11).uniform(0.2, 0.8, theta.shape)
    assert np.linalg.matrix_rank(theta) == rank
    for kind in ("correlation", "squared_error"):
        J_ref, times, W_ref = cr.solve(phi, theta, BETA, T1, kind, N=12)
        p = ws.Problem(phi, theta, kind, beta=BETA, t1=T1)
        res = feedback_synthesize(p, nodes=NODES, subspace=True)
        assert res.settings["subspace"] == {"rank": rank, "min_span": 0.0}
        assert res.converged, res.reason
        assert abs(res.J - J_ref) <= 1e-6 * abs(J_ref)
        assert np.max(np.abs(res.program.weights(times) - W_ref)) <= 1e-3


def test_auto_subspace_policy_and_bad_input(data):  # noqa: F811
    phi, theta = data
    p = ws.Problem(phi, theta, "correlation", beta=BETA, t1=T1)
    assert auto_subspace(p, "weights") == (None, 0.0)  # "auto": horizons longer than 3 only
    long = ws.Problem(phi, theta, "correlation", beta=BETA, t1=6.0)
    Q, span = auto_subspace(long, "weights")
    assert Q.shape == (4, np.linalg.matrix_rank(theta))
    assert span == 3.0  # and only on its stages longer than 3
    assert auto_subspace(p, "factor") == (None, 0.0)
    assert auto_subspace(p, "weights", False) == (None, 0.0)
    assert auto_subspace(ws.Problem(phi, theta, "paper", beta=BETA, t1=T1), "factor")[0] is None
    rng = np.random.default_rng(0)
    th = np.sign(rng.standard_normal((16, 16)))  # rank 16 > MAX_RANK
    wide = ws.Problem(0.5 * th, th, "squared_error", beta=BETA, t1=T1)
    assert auto_subspace(wide, "weights") == (None, 0.0)
    with pytest.raises(ValueError, match="rank 1 to 12"):
        auto_subspace(wide, "weights", True)
    with pytest.raises(ValueError, match="weight coordinates"):
        feedback_synthesize(p, coordinates="factor", subspace=True)
    with pytest.raises(ValueError, match="subspace must be"):
        feedback_synthesize(p, subspace="yes")
    assert feedback_synthesize(p, nodes=NODES, max_iter=2).settings["subspace"] is None
