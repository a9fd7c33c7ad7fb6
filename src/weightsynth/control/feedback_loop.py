r"""The optimizer of the feedback solver: L-BFGS on J(C) in compiled chunks (eq. 22).

optimistix's L-BFGS minimizes J / scale over P_k = sqrt(w_k) R_k C_k (R_k^T R_k = K(t_k) + eps,
the L2 metric of W), ``scale`` the gradient norm at the start, so the first trial step has
unit length. The steps run inside one compiled ``lax.while_loop`` of at most ``chunk``
accepted steps, which stops early on convergence, a non-finite point or a failing line
search; only the per-step history crosses to Python. Every ``refresh`` accepted steps the
metric is rebuilt along the current trajectory and L-BFGS restarts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from . import feedback_kernel as fk

#: ridge of the metric, relative to each node's mean eigenvalue of K: samples that reach
#: the same attractor make K (nearly) singular, and without it R^-1 amplifies their tiny
#: gradient differences (from W* at n=16, L=8 the residual grew 100x and J stalled)
RIDGE = 1e-3


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


def _objective(P, args):
    data, spec, R, sqw, scale = args
    return fk.cost(fk.to_coef(P, R, sqw), data, spec) / scale, None


@eqx.filter_jit
def _init(lbfgs, y, args):
    f_struct = jax.ShapeDtypeStruct((), y.dtype)
    return lbfgs.init(_objective, y, args, {}, f_struct, None, frozenset())


@eqx.filter_jit
def _chunk(lbfgs, y, state, args, limit, stop_res, ftol, max_rej, *, size: int):
    """Up to ``size`` (and ``limit``) accepted L-BFGS steps, all compiled.

    Returns (accepted, y, state, history rows (J, residual, evaluations), code) with code
    0 running, 1 residual <= stop_res, 2 non-finite accepted point (y, state: last good),
    3 max_rej rejected trial steps in a row, 4 |dJ| <= ftol |J|.
    """
    hist = jnp.full((size, 3), jnp.nan, y.dtype)

    def cond(c):
        acc, _, _, _, _, code, _ = c
        return (acc < jnp.minimum(size, limit)) & (code == 0)

    dyn0, static = eqx.partition(state, eqx.is_array)

    def body(c):
        acc, y, st, hist, nrej, code, evals = c
        st = eqx.combine(st, static)
        f_old = args[-1] * st.f_info.f
        y2, st2, _ = lbfgs.step(_objective, y, args, {}, st, frozenset())
        accepted = st2.num_accepted_steps > st.num_accepted_steps
        scale = args[-1]
        f, g = scale * st2.f_info.f, scale * optx.two_norm(st2.f_info.grad)
        finite = jnp.isfinite(f) & jnp.isfinite(g) & jnp.all(jnp.isfinite(y2))
        good = accepted & finite
        nrej = jnp.where(accepted, 0, nrej + 1)
        evals = evals + 1
        hist = jnp.where(good, hist.at[acc].set(jnp.stack([f, g, evals.astype(f.dtype)])), hist)
        code = jnp.where(accepted & ~finite, 2, jnp.where(
            good & (g <= stop_res), 1, jnp.where(
                good & (jnp.abs(f - f_old) <= ftol * jnp.abs(f)), 4,
                jnp.where(nrej > max_rej, 3, 0))))
        y = jnp.where(code == 2, y, y2)  # a non-finite accepted point ends the run
        st2 = eqx.filter(st2, eqx.is_array)
        return acc + good, y, st2, hist, nrej, code, evals

    c0 = (jnp.asarray(0), y, dyn0, hist, jnp.asarray(0), jnp.asarray(0), jnp.asarray(0))
    acc, y, dyn, hist, _, code, _ = jax.lax.while_loop(cond, body, c0)
    return acc, y, eqx.combine(dyn, static), hist, code


def _restart(lbfgs, C, R_old, data, spec, sqw, precondition, chunk, scale):
    """A fresh metric along C's trajectory, the variable P for C, and a fresh L-BFGS state
    with J and its gradient at C (the chunk's first, always accepted, step)."""
    R = fk.metric_factor(C, data, spec, RIDGE) if precondition else None
    if R is not None and not bool(jnp.all(jnp.isfinite(R))):
        R = R_old
    y = fk.to_var(C, R, sqw)
    args = (data, spec, R, sqw, scale)
    state = _init(lbfgs, y, args)
    _, y, state, _, _ = _chunk(lbfgs, y, state, args, jnp.asarray(1), jnp.asarray(-1.0),
                               jnp.asarray(-1.0), jnp.asarray(0), size=chunk)
    return R, y, state


def minimize(C, data, spec, opt: Options, it0: int = 0, t_start: float | None = None,
             bar=None, stop_res: float | None = None):
    """L-BFGS from C; returns (C, history rows, converged, reason, iterations, residual at
    C). Converged at a gradient norm <= ``stop_res`` (default max(gtol, rtol x that at C))."""
    t_start = time.perf_counter() if t_start is None else t_start
    dt = data.Z0.dtype
    sqw = fk.trapezoid_sqrt(data, spec)
    lbfgs = optx.LBFGS(rtol=0.0, atol=0.0, norm=optx.two_norm,
                       history_length=opt.history_length)
    one = jnp.asarray(1.0, dt)
    R, y, state = _restart(lbfgs, C, None, data, spec, sqw, opt.precondition, opt.chunk, one)
    J, res = float(state.f_info.f), float(optx.two_norm(state.f_info.grad))
    if not (np.isfinite(J) and np.isfinite(res)):
        raise ValueError("the initial program W0 gives a non-finite J or gradient")
    scale = jnp.asarray(max(res, 1e-300), dt)
    if res > 0:
        R, y, state = _restart(lbfgs, C, None, data, spec, sqw, opt.precondition, opt.chunk,
                               scale)
    stop_res = max(opt.gtol, opt.rtol * res) if stop_res is None else stop_res
    t1 = float(data.t1)
    rows = [dict(iteration=it0, J=J, residual=res, t1=t1, evals=1,
                 seconds=time.perf_counter() - t_start)]
    it, since, evals = it0, 0, 1
    converged = res <= stop_res
    reason = f"stationarity residual {res:.3g} <= {stop_res:.3g} at the start (of the stage)"
    while not converged:
        if it >= opt.max_iter:
            reason = f"iteration cap reached (max_iter = {opt.max_iter}) before convergence"
            break
        if opt.precondition and since >= opt.refresh:
            R, y, state = _restart(lbfgs, fk.to_coef(y, R, sqw), R, data, spec, sqw, True,
                                   opt.chunk, scale)
            since, evals = 0, evals + 1
        limit = min(opt.max_iter - it, opt.refresh - since if opt.precondition else opt.max_iter)
        acc, y, state, hist, code = _chunk(
            lbfgs, y, state, (data, spec, R, sqw, scale), jnp.asarray(limit),
            jnp.asarray(stop_res), jnp.asarray(opt.ftol), jnp.asarray(opt.max_rejections),
            size=opt.chunk)
        acc, code, hist = int(acc), int(code), np.asarray(hist)
        for k in range(acc):
            rows.append(dict(iteration=it + k + 1, J=hist[k, 0], residual=hist[k, 1], t1=t1,
                             evals=evals + int(hist[k, 2]),
                             seconds=time.perf_counter() - t_start))
        it, since = it + acc, since + acc
        evals = rows[-1]["evals"] if acc else evals
        if bar is not None:
            bar.update(acc)
            bar.set_postfix(J=f"{rows[-1]['J']:.10g}", residual=f"{rows[-1]['residual']:.3g}")
        if code == 1:
            converged = True
            reason = f"stationarity residual <= {stop_res:.3g} (rtol x initial, or gtol)"
        elif code == 4:
            converged, reason = True, "relative change in J <= ftol"
        elif code == 2:
            reason = "diverged: J or its gradient became non-finite; last good program kept"
            break
        elif code == 3:
            reason = f"line search failed: {opt.max_rejections} rejected trial steps in a row"
            break
    return fk.to_coef(y, R, sqw), rows, converged, reason, it, res
