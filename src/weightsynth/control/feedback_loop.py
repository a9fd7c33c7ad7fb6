r"""The optimizer of the feedback solver: L-BFGS on J(C) in compiled chunks (eq. 22).

L-BFGS (two-loop recursion, Armijo backtracking with safeguarded quadratic interpolation;
Nocedal and Wright, Numerical Optimization, algorithms 7.4-7.5 and section 3.5) minimizes
J / scale over P_k = sqrt(w_k) R_k C_k (R_k^T R_k = K(t_k) + eps, the L2 metric of W),
``scale`` the gradient norm at the start, so the first trial step has unit length. The
trials run inside one compiled ``lax.while_loop`` of at most ``chunk`` accepted steps, which
stops early on convergence, a run of failed trials or a small change in J over the last
``ftol_window`` accepted steps; only the per-step history crosses to Python. Every
``refresh`` accepted steps the metric is rebuilt along the current trajectory and L-BFGS
restarts. In weight coordinates at long horizons the
recursion starts from the targets' subspace model instead of gamma I (feedback_subspace),
rebuilt every ``subspace_refresh`` accepted steps without a restart; there the first step
is scaled by the effort's inverse curvature beta instead of to unit length.

Why not optimistix's or optax's L-BFGS: on these 1 MB variables optimistix 0.1.0 spends
10 ms (history 5) to 50 ms (history 20) per step beyond the 24 ms evaluation of J and its
gradient, and optax's zoom line search needs about two evaluations per step (n = 100,
L = 50; docs/general.md, "Optimizer"). The loop below costs one evaluation per accepted step
plus a few vector operations per history entry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import feedback_kernel as fk
from . import feedback_subspace as fs

#: starting ridge of the metric, relative to each node's mean eigenvalue of K: samples that
#: reach the same attractor make K (nearly) singular, and without it R^-1 amplifies their
#: tiny gradient differences (from W* at n=16, L=8 the residual grew 100x and J stalled)
RIDGE = 1e-3
#: the ridge continuation: once J has settled (changed by at most SETTLED |J| since the last
#: refresh) each refresh shrinks the ridge by RIDGE_SHRINK, down to RIDGE_MIN. Near the
#: optimum the ridge, not the problem, sets the smallest curvatures (directions of C that
#: barely move W); with 1e-3 throughout, n = L = 32 took 1606 iterations (docs/general.md)
RIDGE_MIN = 1e-5
RIDGE_SHRINK = 0.1
SETTLED = 1e-3
#: Armijo's sufficient-decrease constant
ARMIJO = 1e-4
#: the J test looks at the change over this many accepted steps: a single step can change J
#: by next to nothing mid-descent (a short step after a rejection), five rarely do. At
#: t1 = 6 (n = 100, L = 50, from W = 0) J is within 1e-8 of its limit after 16-332 float64
#: steps of the final stage, and a change of at most 1e-15 |J| in one step (J at
#: round-off) came after 61-479 (docs/general.md, "Stopping")
FTOL_WINDOW = 5


@dataclass(frozen=True)
class Options:
    max_iter: int
    rtol: float
    gtol: float
    ftol: float
    history_length: int
    precondition: bool
    refresh: int
    chunk: int
    max_rejections: int
    #: accepted steps over which the J test measures the change (FTOL_WINDOW)
    ftol_window: int = FTOL_WINDOW
    ridge: float = RIDGE
    ridge_min: float = RIDGE_MIN
    #: weight coordinates only: Q (n, K), the basis of the targets' span whose subspace
    #: model starts the two-loop recursion (feedback_subspace); None: gamma I
    subspace: jax.Array | None = None
    subspace_refresh: int = fs.REFRESH
    #: stages whose horizon is at most this long run without the subspace (feedback.py)
    subspace_min_span: float = 0.0


class State(eqx.Module):
    """The iterate y with f = J/scale and its gradient g there, the L-BFGS pairs in a ring
    (the next slot to write is ``head``; rho = 0 marks an empty or forgotten slot), the
    search direction d, the trial step a, and ``fw``: f after each of the last accepted
    steps, oldest first, ending with f (inf before the state's first steps)."""

    y: jax.Array
    f: jax.Array
    g: jax.Array
    S: jax.Array
    Yd: jax.Array
    rho: jax.Array
    head: jax.Array
    gamma: jax.Array
    d: jax.Array
    a: jax.Array
    fw: jax.Array


def _objective(P, args):
    data, spec, R, sqw, scale, _ = args
    C = fk.to_coef(P, R, sqw).astype(data.Z0.dtype)
    return (fk.cost(C, data, spec) / scale).astype(P.dtype)


def _vdot(u, v):
    return jnp.sum(u * v)


def _h0(x, gamma, sub):
    """The initial inverse Hessian: gamma I, or the subspace model's (feedback_subspace)."""
    return gamma * x if sub is None else sub.apply(x, gamma)


def pair_dtype(dtype):
    """The dtype the L-BFGS pairs are stored in: float32 for float64 iterates, else the
    iterates' own. The pairs only shape the search direction (the inverse-Hessian model),
    which float32's relative precision serves as well; J, its gradient, the line search
    and the stopping tests stay in float64. Half the bytes halve the two-loop recursion's
    memory traffic, most of a step's bookkeeping (docs/general.md, "Optimizer")."""
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype == jnp.float64 else dtype


def _direction(g, S, Yd, rho, head, gamma, sub=None):
    """-H g by the two-loop recursion over the ring, newest pair first, from H0 =
    :func:`_h0`; slots with rho = 0 contribute nothing. The vectors are updated in the
    pairs' dtype (:func:`pair_dtype`), the scalars rho, gamma and the alphas in g's."""
    m = rho.shape[0]
    pd = S.dtype
    order = [(head + i) % m for i in range(m)]  # oldest to newest
    q, alphas = g.astype(pd), [None] * m
    for i in reversed(range(m)):
        k = order[i]
        alphas[i] = rho[k] * _vdot(S[k], q).astype(rho.dtype)
        q = q - alphas[i].astype(pd) * Yd[k]
    r = _h0(q, gamma.astype(pd), sub).astype(pd)
    for i in range(m):
        k = order[i]
        r = r + S[k] * (alphas[i] - rho[k] * _vdot(Yd[k], r).astype(rho.dtype)).astype(pd)
    return -r.astype(g.dtype)


@eqx.filter_jit
def _init(y, args, m: int, window: int):
    """A fresh state at y: J, its gradient, no pairs (room for ``m`` in
    :func:`pair_dtype`), the direction -H0 g (H0 = I without a subspace: steepest
    descent), a J window of ``window`` values (f, the rest inf)."""
    f, g = jax.value_and_grad(_objective)(y, args)
    z = jnp.zeros((m, *y.shape), pair_dtype(y.dtype))
    one = jnp.ones((), y.dtype)
    fw = jnp.full((window,), jnp.inf, y.dtype).at[-1].set(f)
    return State(y, f, g, z, z, jnp.zeros((m,), y.dtype), jnp.asarray(0), one,
                 -_h0(g, one, args[5]), one, fw)


@eqx.filter_jit
def _chunk(state: State, args, limit, stop_res, ftol, max_rej, *, size: int):
    """Up to ``size`` (and ``limit``) accepted L-BFGS steps, all compiled.

    Returns (accepted, state, history rows (J, residual, evaluations), code) with code 0
    running, 1 residual <= stop_res, 2 max_rej non-finite trials in a row, 3 max_rej
    rejected trials in a row, 4 |dJ| <= ftol |J| over the state's window of accepted steps
    (``fw``: J's change since ``len(fw)`` accepted steps before this one).
    """
    scale, sub = args[4], args[5]
    hist = jnp.full((size, 3), jnp.nan, state.y.dtype)

    def cond(c):
        acc, _, _, _, _, code, _ = c
        return (acc < jnp.minimum(size, limit)) & (code == 0)

    def body(c):
        acc, st, hist, nrej, nbad, code, evals = c
        y_t = st.y + st.a * st.d
        f_t, g_t = jax.value_and_grad(_objective)(y_t, args)
        gd = _vdot(st.g, st.d)
        finite = jnp.isfinite(f_t) & jnp.all(jnp.isfinite(g_t))
        ok = finite & (f_t <= st.f + ARMIJO * st.a * gd)
        evals = evals + 1
        # accepted: store the pair when the curvature condition holds, new direction
        s, yd = y_t - st.y, g_t - st.g
        sy, yy = _vdot(s, yd), _vdot(yd, yd)
        keep = ok & (sy > 1e-10 * jnp.sqrt(_vdot(s, s) * yy))
        h = st.head  # in-place ring updates: one slot written, never the whole buffer
        S = st.S.at[h].set(jnp.where(keep, s.astype(st.S.dtype), st.S[h]))
        Yd = st.Yd.at[h].set(jnp.where(keep, yd.astype(st.Yd.dtype), st.Yd[h]))
        rho = st.rho.at[h].set(jnp.where(keep, 1 / sy, st.rho[h]))
        head = jnp.where(keep, (h + 1) % rho.shape[0], h)
        gamma_new = sy / yy
        if sub is not None:  # the scaling of the complement of the subspace
            gamma_new = sub.gamma(sy, yy, s, yd, gamma_new)
        gamma = jnp.where(keep, gamma_new, st.gamma)
        y, f, g = (jnp.where(ok, new, old) for new, old in
                   ((y_t, st.y), (f_t, st.f), (g_t, st.g)))
        d = _direction(g, S, Yd, rho, head, gamma, sub)
        descent = _vdot(g, d) < 0  # else (round-off): forget the pairs, -H0 g
        rho = jnp.where(descent, rho, 0)
        d = jax.lax.cond(descent, lambda: d, lambda: -_h0(g, gamma, sub))  # one branch runs
        # rejected: safeguarded quadratic interpolation of f along d, in [a/10, a/2]
        a_q = -gd * st.a**2 / (2 * (f_t - st.f - gd * st.a))
        a_rej = jnp.where(finite, jnp.clip(a_q, 0.1 * st.a, 0.5 * st.a), 0.5 * st.a)
        fw = jnp.where(ok, jnp.roll(st.fw, -1).at[-1].set(f_t), st.fw)
        new = State(y, f, g, S, Yd, rho, head, gamma, jnp.where(ok, d, st.d),
                    jnp.where(ok, 1.0, a_rej).astype(st.a.dtype), fw)
        nrej = jnp.where(ok, 0, nrej + 1)
        nbad = jnp.where(finite, 0, nbad + 1)
        F, G = scale * f_t, scale * jnp.sqrt(_vdot(g_t, g_t))
        hist = jnp.where(ok, hist.at[acc].set(jnp.stack([F, G, evals.astype(F.dtype)])),
                         hist)
        code = jnp.where(ok & (G <= stop_res), 1, jnp.where(
            ok & (jnp.abs(f_t - st.fw[0]) <= ftol * jnp.abs(f_t)), 4, jnp.where(
                nbad > max_rej, 2, jnp.where(nrej > max_rej, 3, 0))))
        return acc + ok, new, hist, nrej, nbad, code, evals

    zero = jnp.asarray(0)
    acc, state, hist, _, _, code, _ = jax.lax.while_loop(
        cond, body, (zero, state, hist, zero, zero, zero, zero))
    return acc, state, hist, code


@eqx.filter_jit
def _rescaled(state: State, scale, sub, gamma0):
    """The fresh state of :func:`_init` (made with scale 1 and H0 = I) for f = J / scale
    and H0 from ``sub`` with scaling ``gamma0``: the same point, no second evaluation of J."""
    f, g = state.f / scale, state.g / scale
    gamma = jnp.asarray(gamma0, g.dtype)
    return eqx.tree_at(lambda s: (s.f, s.g, s.d, s.fw, s.gamma), state,
                       (f, g, -_h0(g, gamma, sub), state.fw / scale, gamma))


def _restart(C, R_old, data, spec, sqw, opt: Options, scale, ridge, sub=None):
    """A fresh metric (of this ``ridge``) along C's trajectory, the variable P for C, and a
    fresh L-BFGS state with J and its gradient at C (H0 from ``sub``, if any)."""
    R = (fk.metric_factor(C, data, spec, jnp.asarray(ridge, C.dtype)) if opt.precondition
         else None)
    if R is not None and not bool(jnp.all(jnp.isfinite(R))):
        R = R_old
    y = fk.to_var(C, R, sqw).astype(C.dtype)
    return R, _init(y, (data, spec, R, sqw, scale, sub), opt.history_length,
                    opt.ftol_window)


def _next_ridge(ridge: float, J_ref: float, J_now: float, opt: Options):
    """The ridge continuation: shrink by RIDGE_SHRINK (to ``ridge_min`` at least) once J
    has settled since the last refresh (J_ref); returns (ridge, the new J_ref)."""
    if abs(J_now - J_ref) <= SETTLED * abs(J_now):
        ridge = max(min(opt.ridge_min, opt.ridge), ridge * RIDGE_SHRINK)
    return ridge, J_now


def minimize(C, data, spec, opt: Options, it0: int = 0, t_start: float | None = None,
             bar=None, stop_res: float | None = None):
    """L-BFGS from C; returns (C, history rows, converged, reason, iterations, residual at
    C). Converged at a gradient norm <= ``stop_res`` (default max(gtol, rtol x that at C))."""
    t_start = time.perf_counter() if t_start is None else t_start
    dt = data.Z0.dtype
    sqw = fk.trapezoid_sqrt(data, spec)
    ridge = opt.ridge
    R, state = _restart(C, None, data, spec, sqw, opt, jnp.asarray(1.0, dt), ridge)
    J, res = float(state.f), float(jnp.linalg.norm(state.g))
    if not (np.isfinite(J) and np.isfinite(res)):
        raise ValueError("the initial program W0 gives a non-finite J or gradient")
    scale = jnp.asarray(max(res, 1e-300), dt)
    sub = None
    if res > 0:
        if opt.subspace is not None and opt.max_iter > it0:
            sub = fs.build(fk.to_var(C, None, sqw), opt.subspace, data, spec, sqw, scale)
        # H0's scaling before the first pair: 1 (a first step of unit length), or with the
        # subspace model the effort's inverse curvature beta (in J's units) on the
        # complement of S, as the model itself starts from the effort's I / beta on S
        gamma0 = 1.0 if sub is None else data.beta * scale
        state = _rescaled(state, scale, sub, gamma0)
    stop_res = max(opt.gtol, opt.rtol * res) if stop_res is None else stop_res
    t1 = float(data.t1)
    rows = [dict(iteration=it0, J=J, residual=res, t1=t1, evals=1,
                 seconds=time.perf_counter() - t_start)]
    it, since, evals, J_ref, since_sub = it0, 0, 1, J, 0
    converged = res <= stop_res
    reason = f"stationarity residual {res:.3g} <= {stop_res:.3g} at the start (of the stage)"
    while not converged:
        if it >= opt.max_iter:
            reason = f"iteration cap reached (max_iter = {opt.max_iter}) before convergence"
            break
        if opt.precondition and since >= opt.refresh:
            C = fk.to_coef(state.y, R, sqw).astype(dt)
            ridge, J_ref = _next_ridge(ridge, J_ref, float(state.f * scale), opt)
            R, state = _restart(C, R, data, spec, sqw, opt, scale, ridge, sub)
            since, evals = 0, evals + 1
        limit = min(opt.max_iter - it, opt.refresh - since if opt.precondition else opt.max_iter)
        if sub is not None:  # the model follows the trajectory; the pairs are kept
            if since_sub >= opt.subspace_refresh:
                new = fs.build(state.y, opt.subspace, data, spec, sqw, scale)
                sub = sub if new is None else new
                since_sub = 0
            limit = min(limit, opt.subspace_refresh - since_sub)
        acc, state, hist, code = _chunk(
            state, (data, spec, R, sqw, scale, sub), jnp.asarray(limit),
            jnp.asarray(stop_res, dt), jnp.asarray(opt.ftol, dt),
            jnp.asarray(opt.max_rejections), size=opt.chunk)
        acc, code, hist = int(acc), int(code), np.asarray(hist)
        for k in range(acc):
            rows.append(dict(iteration=it + k + 1, J=hist[k, 0], residual=hist[k, 1], t1=t1,
                             evals=evals + int(hist[k, 2]),
                             seconds=time.perf_counter() - t_start))
        it, since, since_sub = it + acc, since + acc, since_sub + acc
        evals = rows[-1]["evals"] if acc else evals
        if bar is not None:
            bar.update(acc)
            bar.set_postfix(J=f"{rows[-1]['J']:.10g}", residual=f"{rows[-1]['residual']:.3g}")
        if code == 1:
            converged = True
            reason = f"stationarity residual <= {stop_res:.3g} (rtol x initial, or gtol)"
        elif code == 4:
            converged = True
            reason = (f"relative change in J <= ftol over {opt.ftol_window} accepted step"
                      f"{'s' if opt.ftol_window > 1 else ''}")
        elif code == 2:
            reason = (f"diverged: {opt.max_rejections} trial steps in a row gave a non-finite "
                      "J or gradient; last good program kept")
            break
        elif code == 3:
            reason = f"line search failed: {opt.max_rejections} rejected trial steps in a row"
            break
    return fk.to_coef(state.y, R, sqw).astype(dt), rows, converged, reason, it, res
