r"""L-BFGS's initial inverse Hessian on the targets' subspace (weight coordinates, long horizons).

At long horizons the Hessian of J at the optimum has a band of large curvatures (thousands,
against the effort's 1/beta) that lives almost entirely on W changing by a constant in time
within the span of the targets on both sides (docs/general.md, "Targets subspace"). This
module names that subspace from the data,

    S = {q(t) Q A Q^T : A any K x K matrix},

Q (n, K) an orthonormal basis of the targets' span, q the constant-in-time profile in the
L-BFGS variables P_k = sqrt(w_k) W_k^T (so W changes by Q A Q^T / sqrt(t1 - t0)), and
models J's Hessian there by its Gauss-Newton part,

    H_S = I / beta + Jz^T (d^2 phi / dZ1^2) Jz,

the effort's curvature (exact on S) plus the terminal cost's curvature through Jz, the
sensitivities of the outputs Z(t1) to A: one forward pass with K^2 tangents. L-BFGS then
starts each two-loop recursion from H0 = S H_S^{-1} S^T + gamma (I - S S^T), gamma fitted
to the pairs' parts outside S (before the first pair, beta: the inverse of the effort's
curvature, as H_S starts from the effort's I / beta). The model is built on a grid of a
quarter of the node intervals, in float32 (it only shapes the path; J and its gradient
stay in the problem's precision), and rebuilt every ``REFRESH`` accepted steps, because
the band turns with the trajectory.
"""

from __future__ import annotations

from dataclasses import replace

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import feedback_kernel as fk
from .grid_program import resample_nodes

#: the subspace is used when the targets' rank K is at most this: the model costs K^2
#: tangents of one forward pass (K = 10, 8 nodes, float32: 61 ms, about four gradients
#: of the solver at n = 100, L = 50, 26 nodes)
MAX_RANK = 12
#: accepted L-BFGS steps between rebuilds of the model, and the model's grid: 1 /
#: MODEL_COARSEN of the node intervals (at least 5). Memory data, n = 100, L = 50, beta
#: 0.01, t1 = 6, both indices from W = 0 and W*: (40, 4) took the least time; (20, 4) and
#: (20, 2) 0-6% fewer iterations, slower; one build per stage 366 iterations in the last
#: stage against 347 without the subspace and 176 with (40, 4) (docs/general.md, "Targets
#: subspace")
REFRESH = 40
MODEL_COARSEN = 4
#: eigenvalues of the model are floored at this / beta: where the terminal cost is not
#: convex (the correlation index, or squared error away from its targets) it may be
#: indefinite
FLOOR = 0.1


def targets_basis(Theta, max_rank: int | None = MAX_RANK):
    """(n, K): an orthonormal basis of the span of the targets (the rows of Theta, rank K by
    a relative singular-value cut of 1e-8), or None when K exceeds ``max_rank``."""
    Th = np.asarray(Theta, np.float64)
    _, s, Vt = np.linalg.svd(Th, full_matrices=False)
    K = int(np.sum(s > 1e-8 * s[0])) if s.size and s[0] > 0 else 0
    if K == 0 or (max_rank is not None and K > max_rank):
        return None
    return Vt[:K].T


class Subspace(eqx.Module):
    """H0 of the two-loop recursion: ``Hi`` (the inverse of the model of f's Hessian on S,
    in the orthonormal coordinates A of S) on S, gamma I on the rest (module docstring)."""

    q: jax.Array  # (T,) the constant profile in the variables, unit norm
    Q: jax.Array  # (n, K) orthonormal
    Hi: jax.Array  # (K^2, K^2)

    def coeffs(self, X):
        """S^T X: the coordinates A (flattened) of X's projection on S."""
        return (self.Q.T @ jnp.tensordot(self.q, X, axes=1) @ self.Q).ravel()

    def expand(self, c):
        """S c: the element of S with coordinates c."""
        K = self.Q.shape[1]
        return self.q[:, None, None] * (self.Q @ c.reshape(K, K) @ self.Q.T)[None]

    def apply(self, x, gamma):
        """H0 x = S Hi S^T x + gamma (x - S S^T x) = gamma x + S (Hi - gamma I) S^T x: one
        pass over x to project it and one to write the result."""
        c = self.coeffs(x)
        return gamma * x + self.expand(self.Hi @ c - gamma * c)

    def gamma(self, sy, yy, s, yd, fallback):
        """L-BFGS's scaling s.y / y.y from the pair's parts outside S, given s.y and y.y of
        the whole pair: S has orthonormal columns, so the parts' products are those less the
        coordinates' (``fallback`` where their s.y is not positive)."""
        cs, cy = self.coeffs(s), self.coeffs(yd)
        spy, ypy = sy - cs @ cy, yy - cy @ cy
        return jnp.where((spy > 0) & (ypy > 0), spy / ypy, fallback)


@eqx.filter_jit
def subspace_hessian(y, Q, data, spec, sqw):
    """The Gauss-Newton model H_S (K^2, K^2) of J's Hessian on S at the variables y
    (weight coordinates, P_k = sqrt(w_k) W_k^T on the nodes of ``spec``), in S's
    orthonormal coordinates A: I / beta + Jz^T (d^2 phi / dZ1^2) Jz."""
    C = fk.to_coef(y, None, sqw)
    K = Q.shape[1]
    span = jnp.sqrt(jnp.sum(sqw ** 2))  # sqrt(t1 - t0): W changes by Q A Q^T / span

    def outputs(a):  # C + Q A Q^T / span, applied in low-rank form: the tangents cost
        # O(L n K) per stage each, not the O(L n^2) of a dense change of W
        return fk.solve_S(C, data, spec, (Q, a.reshape(K, K) / span))[0][-1]

    Z1, lin = jax.linearize(outputs, jnp.zeros(K * K, C.dtype))
    Jz = jax.vmap(lin)(jnp.eye(K * K, dtype=C.dtype))  # (K^2, L, n)
    grad_phi = jax.grad(lambda Z: fk.terminal(Z, data, spec))
    curv = jax.vmap(lambda v: jax.jvp(grad_phi, (Z1,), (v,))[1])(Jz)
    G = jnp.einsum("iln,kln->ik", Jz, curv)
    return jnp.eye(K * K, dtype=C.dtype) / data.beta + 0.5 * (G + G.T)


def _model(y, Q, data, spec, sqw, T: int):
    """H_S from :func:`subspace_hessian` on T nodes (W resampled piecewise linearly), in
    float32."""
    coarse = replace(spec, T=T)
    sqw_c = fk.trapezoid_sqrt(data, coarse)
    y_c = fk.to_var(resample_nodes(fk.to_coef(y, None, sqw), T), None, sqw_c)
    return subspace_hessian(*fk.single((y_c, jnp.asarray(Q), data)), coarse, fk.single(sqw_c))


def build(y, Q, data, spec, sqw, scale) -> Subspace | None:
    """The :class:`Subspace` at the variables y for f = J / scale: the model on
    1 / MODEL_COARSEN of the node intervals (at least 5) in float32, on all nodes if that
    is not finite, its eigenvalues floored at FLOOR / beta, inverted in the problem's
    precision; None if no model is finite (the caller keeps the plain scaling)."""
    dt = y.dtype
    coarse = max(6, -(-(spec.T - 1) // MODEL_COARSEN) + 1)
    for T in dict.fromkeys((min(coarse, spec.T), spec.T)):
        H = _model(y, Q, data, spec, sqw, T).astype(dt)
        if bool(jnp.all(jnp.isfinite(H))):
            break
    else:
        return None
    lam, V = jnp.linalg.eigh(H)
    lam = jnp.maximum(lam, FLOOR / data.beta.astype(dt))
    q = (sqw / jnp.sqrt(jnp.sum(sqw ** 2)))[:, 0, 0]
    return Subspace(q.astype(dt), jnp.asarray(Q, dt), ((V / lam) @ V.T * scale).astype(dt))
