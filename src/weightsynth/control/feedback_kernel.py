r"""Compiled kernels of the feedback solver: S under W = C^T Y, the index, the metric.

Discretize-then-optimize (docs/general.md, "Feedback solver"): C is piecewise linear on T
uniform nodes, S (eq. 21) is integrated by a fixed-step explicit Runge-Kutta method (RK4 by
default) stepping exactly through the nodes, and J's gradient is the exact gradient of that
discrete J, by reverse-mode autodiff through the scan (the discrete adjoint).

Everything that changes between problems of one shape (Z0, Theta, beta, t0, t1, bias,
signal, the starting C) is a traced argument; only the shapes, the activation, the index
kind, the dynamics kind and the solver settings are static, so each combination compiles
once.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from ..core.activations import Activation
from ..core.dynamics import gram


class Spec(eqx.Module):
    """The static part: what to compile for."""

    act: Activation = eqx.field(static=True)
    index_kind: str = eqx.field(static=True)  # paper | correlation | squared_error | custom
    basis: str = eqx.field(static=True)  # network (Y = g(Z)) | driven (Y = X(t))
    T: int = eqx.field(static=True)
    substeps: int = eqx.field(static=True)
    solver: str = eqx.field(static=True)
    #: "factor": C (L x n) with W = C^T Y (eq. 20); "weights": C (n x n) is W^T itself
    coords: str = eqx.field(static=True, default="factor")


class Data(eqx.Module):
    """The traced part: one problem's numbers (and the user's functions, if any)."""

    Z0: jax.Array
    Theta: jax.Array
    TT: jax.Array  # Theta Theta^T (paper's index only, else a 0-d zero)
    beta: jax.Array
    t0: jax.Array
    t1: jax.Array
    dynamics: eqx.Module
    index: eqx.Module | None  # custom indices only


def single(tree):
    """``tree`` with its floating-point arrays in float32 (the float32 stages of mixed
    precision, and the subspace model)."""
    return jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float32) if isinstance(a, jax.Array)
        and jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def step_times(data: Data, spec: Spec):
    """The integration grid: (T - 1) * substeps + 1 uniform times, ends exact."""
    S = (spec.T - 1) * spec.substeps
    u = jnp.arange(S + 1, dtype=data.Z0.dtype) / S
    ts = data.t0 + (data.t1 - data.t0) * u
    return ts.at[0].set(data.t0).at[-1].set(data.t1)


def node_times(data: Data, spec: Spec):
    u = jnp.arange(spec.T, dtype=data.Z0.dtype) / (spec.T - 1)
    ts = data.t0 + (data.t1 - data.t0) * u
    return ts.at[0].set(data.t0).at[-1].set(data.t1)


def basis(Z, t, data: Data, spec: Spec):
    """Y in W = C^T Y (eq. 20): g(Z) for the network, the signal X(t) when driven."""
    if spec.basis == "network":
        return spec.act.g(Z)
    sig = data.dynamics.signal
    return jnp.asarray(sig(t) if callable(sig) else sig, data.Z0.dtype)


def running(Z, Y, K, C, t, data: Data, spec: Spec):
    """l(Z, W, t, Theta) for W = C^T Y (or W = C^T in weight coordinates), without forming
    W for the built-in indices. ``K``: g(Z) g(Z)^T if already at hand, else None."""
    if spec.index_kind == "paper":  # -sum z.theta + (beta/2)||Theta^T G||^2 (eq. 3)
        KG = K if K is not None else gram(spec.act.g(Z))
        return -jnp.sum(Z * data.Theta) + 0.5 * data.beta * jnp.sum(data.TT * KG)
    if spec.index_kind == "custom":
        W = C.T if spec.coords == "weights" else C.T @ Y
        return data.index.running(Z, W, t, data.Theta)
    return jnp.zeros((), Z.dtype)


def terminal(Z1, data: Data, spec: Spec):
    """phi(Z(t1), Theta) of the index."""
    g = spec.act.g
    if spec.index_kind == "paper":
        return -jnp.sum(Z1 * data.Theta)
    if spec.index_kind == "correlation":
        return -jnp.sum(g(Z1) * data.Theta)
    if spec.index_kind == "squared_error":
        return jnp.sum((g(Z1) - data.Theta) ** 2)
    return data.index.terminal(Z1, data.Theta)


#: explicit Runge-Kutta tableaus (c, a rows, b) and their classical order
TABLEAUS = {
    "euler": ((0.0,), ((),), (1.0,), 1),
    "heun": ((0.0, 1.0), ((), (1.0,)), (0.5, 0.5), 2),
    "rk4": ((0.0, 0.5, 0.5, 1.0), ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
            (1 / 6, 1 / 3, 1 / 3, 1 / 6), 4),
}


def _rhs(t, Z, C, data: Data, spec: Spec, constant=None):
    """S under W = C^T Y (eq. 21) and the running cost l + tr(C^T K C)/(2 beta); in weight
    coordinates (C = W^T) S is N itself, dZ/dt = -Z + Y W^T, and the effort ||W||^2/(2 beta).
    ``constant`` (weight coordinates): (P, M), C plus P M P^T at every time, applied as
    ((Y P) M) P^T (the effort leaves it out)."""
    Y = basis(Z, t, data, spec)
    offset = jnp.asarray(data.dynamics.offset(t), Z.dtype)
    if spec.coords == "weights":
        effort = 0.5 * jnp.sum(C * C) / data.beta
        dZ = -Z + Y @ C + offset
        if constant is not None:
            P, M = constant
            dZ = dZ + ((Y @ P) @ M) @ P.T
        return dZ, (running(Z, Y, None, C, t, data, spec) + effort).astype(Z.dtype)
    K = gram(Y)
    KC = K @ C
    effort = 0.5 * jnp.sum(C * KC) / data.beta
    K_of_g = K if spec.basis == "network" else None
    return -Z + KC + offset, (running(Z, Y, K_of_g, C, t, data, spec) + effort).astype(Z.dtype)


def solve_S(Cn, data: Data, spec: Spec, constant=None):
    """S and the accumulated running cost under the nodes Cn (T, L, n), by ``substeps``
    steps of the fixed-step explicit Runge-Kutta method ``spec.solver`` per node interval
    (C linear inside each interval, so the field is smooth within every step). In weight
    coordinates ``constant`` = (P, M) adds P M P^T to C at every time in low-rank form
    (:func:`_rhs`; the subspace model's tangents, feedback_subspace).

    A ``lax.scan`` over the intervals, each rematerialized in the reverse pass: reverse-mode
    autodiff gives the exact gradient of this discrete J (the discrete adjoint) while
    storing one state per node. Returns the node states (T, L, n) and the cost at t1.
    """
    c, a, b, _ = TABLEAUS[spec.solver]
    dt = data.Z0.dtype
    H = (data.t1 - data.t0) / (spec.T - 1)
    h = H / spec.substeps

    @jax.checkpoint
    def interval(carry, xs):
        Z, acc = carry
        k, Ca, Cb = xs
        for j in range(spec.substeps):
            ks = []
            for ci, ai in zip(c, a, strict=True):
                s = (j + ci) / spec.substeps
                Zi = Z + h * sum((aij * kz for aij, (kz, _) in zip(ai, ks, strict=False)
                                  if aij != 0.0), jnp.zeros_like(Z))
                ks.append(_rhs(data.t0 + (k + s) * H, Zi, Ca + s * (Cb - Ca), data, spec,
                                constant))
            Z = Z + h * sum(bi * kz for bi, (kz, _) in zip(b, ks, strict=True))
            acc = acc + h * sum(bi * kc for bi, (_, kc) in zip(b, ks, strict=True))
        return (Z, acc), Z

    ks = jnp.arange(spec.T - 1, dtype=dt)
    (Z1, acc), Zs = jax.lax.scan(interval, (data.Z0, jnp.zeros((), dt)), (ks, Cn[:-1], Cn[1:]))
    return jnp.concatenate([data.Z0[None], Zs]), acc


def cost(Cn, data: Data, spec: Spec):
    """The discrete J(C) = phi(Z(t1)) + int (l + tr(C^T K C)/(2 beta)) dt."""
    Zs, c1 = solve_S(Cn, data, spec)
    J = terminal(Zs[-1], data, spec) + c1
    return jnp.where(jnp.isfinite(J), J, jnp.inf)


@eqx.filter_jit
def node_states(Cn, data: Data, spec: Spec):
    """S's states at the nodes, (T, L, n), and the discrete J."""
    Zs, c1 = solve_S(Cn, data, spec)
    return Zs, terminal(Zs[-1], data, spec) + c1


# ---- the metric: P_k = sqrt(w_k) R_k C_k, R_k^T R_k = K_k + eps I ----------------------------
def trapezoid_sqrt(data: Data, spec: Spec):
    h = (data.t1 - data.t0) / (spec.T - 1)
    w = jnp.full((spec.T,), h, data.Z0.dtype).at[0].mul(0.5).at[-1].mul(0.5)
    return jnp.sqrt(w)[:, None, None]


@eqx.filter_jit
def metric_factor(Cn, data: Data, spec: Spec, rel_eps):
    """R_k (T, L, L), upper Cholesky factors of K(t_k) + eps_k I along Cn's own trajectory.

    With P_k = sqrt(w_k) R_k C_k, ||P||^2 = sum_k w_k tr(C_k^T K_k C_k) ~ int ||W||_F^2 dt:
    the Euclidean metric on P is the L2 metric on W (eq. 22), so the iteration does not
    degrade where g(Z) is small or as T grows.
    """
    Zs, _ = node_states(Cn, data, spec)
    ts = node_times(data, spec)
    K = jax.vmap(lambda Z, t: gram(basis(Z, t, data, spec)))(Zs, ts)
    L = K.shape[-1]
    scale = jnp.trace(K, axis1=1, axis2=2) / L
    eps = rel_eps * (scale + 1e-6 * jnp.max(scale)) + jnp.finfo(K.dtype).tiny
    Kr = K + eps[:, None, None] * jnp.eye(L, dtype=K.dtype)
    return jnp.swapaxes(jnp.linalg.cholesky(Kr), 1, 2)


def to_coef(P, R, sqw):
    """C from the optimization variable P (R None: plain scaled variables)."""
    if R is None:
        return P / sqw
    return jax.vmap(lambda r, p: solve_triangular(r, p, lower=False))(R, P) / sqw


def to_var(C, R, sqw):
    """P from C: the inverse of :func:`to_coef`."""
    return sqw * (C if R is None else R @ C)
