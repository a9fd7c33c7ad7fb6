r"""Synthesis of the optimal weight program: the closed-loop formal system S, forward once.

Pontryagin's conditions for the paper's index (3) are solved by the constant costate
lambda_r = -theta_r, which makes the optimal program W*(t) = beta Theta^T g(Z(t)) (eq. 7) a
feedback of S's own state. S is then integrated forward once, in the Gram form (eq. 9) or,
when L <= n, in reduced coordinates Z(t) = e^{-(t-t0)} Z0 + A(t) Theta (eq. 10). Each right-hand
side evaluation costs two GEMMs, ~4 n L^2 flops; W(t) is never formed.
"""

from __future__ import annotations

import dataclasses
import warnings
from functools import partial

import jax
import numpy as np

from .._cache import persistent_jit
from .._deprecation import positional_deprecated
from .._validation import (
    check_int,
    check_interval,
    check_pair,
    check_positive,
    device_array,
    resolve_dtype,
)
from ..errors import AccuracyWarning, SolveError
from . import dynamics as dyn
from .activations import Activation, activations_of, get_activation
from .interpolation import batch_rows, capacity, interior_times, map_rows, subdivisions
from .ode import (
    ATOL,
    RTOL,
    SolverConfig,
    diffrax,
    raise_if_failed,
    solve,
    solver_config,
    uniform_grid,
)
from .optimal_program import WeightProgram

_COORDS = ("auto", "reduced", "direct")


@positional_deprecated("beta", "t1", "t0", "activation")
def synthesize(
    inputs,
    targets,
    *,
    beta: float = 1.0,
    t0: float = 0.0,
    t1: float = 1.0,
    activation: str | Activation = "tanh",
    gain: float | None = None,
    solver: str | SolverConfig = "tsit5",
    steps: int | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
    max_steps: int = 100_000,
    n_save: int = 257,
    coords: str = "auto",
    dtype=None,
    progress: bool = False,
) -> WeightProgram:
    r"""Synthesize the optimal weight program for L input/output pairs (derivation eqs. 7-10).

    Parameters
    ----------
    inputs, targets:
        (L, n) arrays, one sample per row: phi_r, the network's *output* at t0 (strictly
        inside g's range), and theta_r, the desired output.
    beta:
        Weight-penalty parameter of the index (3), > 0.
    t0, t1:
        The time interval, t1 > t0.
    activation, gain:
        g, by name (``"tanh"``, ``"logistic"``, ...) or as an :class:`Activation`.
    solver:
        a diffrax solver name (see :data:`weightsynth.core.ode.SOLVERS`), or a whole
        :class:`SolverConfig`, which then replaces ``steps``, ``rtol``, ``atol`` and
        ``max_steps``.
    steps:
        Fixed-step solving with this many equal steps; the program stores every step.
        ``None`` (default) solves adaptively with tolerances ``rtol``/``atol`` and stores
        t0, the end of every step the solver took, and interior points from the solver's
        dense output where interpolating between steps (cubic Hermite with S's own
        slopes) would miss the tolerance; so its index meets J* to the solve's tolerance.
        If the stored program may still cost more than 10 x rtol relative excess (coarse
        fixed steps), an :class:`AccuracyWarning` names the fix.
    n_save:
        Rows first reserved for the stored steps (t0 included); doubled, with one more
        compile, when the adaptive solver takes more steps.
    coords:
        ``"reduced"`` integrates A(t) (L x L), ``"direct"`` integrates Z(t) (L x n),
        ``"auto"`` picks the smaller.
    dtype:
        float32 or float64; default the inputs' dtype (float64 needs JAX's x64 mode).
    progress:
        Show a progress bar.

    Returns
    -------
    WeightProgram
    """
    phi, theta = check_pair(inputs, targets)
    beta = check_positive(beta, "beta")
    t0, t1 = check_interval(t0, t1)
    act = get_activation(activation, gain)
    act.check_in_range(phi, "inputs")
    if coords not in _COORDS:
        raise ValueError(f"coords must be one of {_COORDS}, got {coords!r}")
    check_int(n_save, "n_save", minimum=2)
    cfg = solver_config(solver, steps=steps, rtol=rtol, atol=atol, max_steps=max_steps,
                        progress=progress)
    dt = resolve_dtype(dtype, inputs, targets)
    L, n = phi.shape
    if coords == "auto":
        coords = "reduced" if L <= n else "direct"

    Z0 = activations_of(act, device_array(phi, dt))
    Theta = device_array(theta, dt)
    if not np.isfinite(np.asarray(Z0)).all():
        raise ValueError(f"inputs are too close to the edge of g's range for {dt} precision")
    X0 = device_array(np.zeros((L, L), dt)) if coords == "reduced" else Z0
    ts, X, num_steps, dense = _stored_solve(X0, Z0, Theta, beta, t0, t1, act, coords, cfg,
                                            n_save, dt)
    prog = WeightProgram(
        activation=act, beta=beta, t0=t0, t1=t1, Z0=Z0, Theta=Theta, ts=ts, X=X,
        coords=coords, solver=dataclasses.replace(cfg, progress=False),
        stats={"num_steps": num_steps, "accepted_steps": int(ts.shape[0]) - 1},
    )
    if cfg.adaptive:  # fixed steps store exactly the steps asked for
        prog, excess = _refine(prog, dense)
    else:
        excess = prog.interpolation_excess()
    _warn_if_coarse(prog, cfg, excess)
    return prog


def _stored_solve(X0, Z0, Theta, beta, t0, t1, act, coords, cfg, n_save, dt):
    """Solve S once, keeping t0 and every accepted step: (ts, X, steps taken, dense), where
    ``dense`` holds what :func:`_evaluate` needs: the leaves of the solver's dense output
    and the solve's own arguments.

    diffrax saves steps into a buffer of ``max_steps`` rows; it starts at ``n_save`` rows
    and doubles (one more compile) only when the solver needs more steps than fit.
    """
    size = cfg.steps if not cfg.adaptive else min(n_save - 1, cfg.max_steps)
    grid = uniform_grid(t0, t1, cfg.steps or 1)
    while True:
        args = (X0, Z0, Theta, np.asarray(beta, dt), np.asarray(t0, dt), np.asarray(t1, dt),
                np.asarray(grid, dt))
        statics = {"act": act, "coords": coords, "cfg": cfg, "size": size}
        (ts, X), ok, nsteps, dense = _solve_closed_loop(*args, **statics)
        if bool(ok) or not cfg.adaptive or int(nsteps) < size or size >= cfg.max_steps:
            break
        size = min(2 * size, cfg.max_steps)
    # trimmed on the host: eager JAX indexing would compile afresh for every step count
    ts, X = np.asarray(ts), np.asarray(X)
    keep = np.isfinite(ts)  # diffrax fills the unused rows with inf
    if not keep.all():  # (fixed steps fill every row: no copy of X)
        ts, X = ts[keep], X[keep]
    ts = ts.astype(dt)
    finite = np.isfinite(X.reshape(X.shape[0], -1)).all(axis=1)
    raise_if_failed(True, finite, ts, "synthesis (closed-loop solve of S)")
    if not bool(ok):
        # near a blow-up the last steps may lie past the exact singularity (by the
        # solve's error): report the last time the state was still moderate, 1e3 x its
        # start, as the time up to which it was fine
        size = np.abs(X.reshape(X.shape[0], -1)).max(axis=1)
        fine = np.flatnonzero(size <= 1e3 * max(1.0, float(size[0]), float(np.abs(Z0).max())))
        last = float(ts[fine[-1]] if fine.size else ts[0])
        raise SolveError(
            f"synthesis (closed-loop solve of S) stopped at t={float(ts[-1]):.6g}, before "
            f"t1={t1:g}: the step size collapsed or max_steps={cfg.max_steps} was reached; "
            f"the state was moderate up to t={last:.6g} and grew to {size[-1]:.3g} (a "
            "blow-up?); try fixed steps, looser tolerances or a smaller beta", time=last)
    return ts, X, int(nsteps), (dense, args, statics)


def _refine(prog: WeightProgram, dense) -> tuple[WeightProgram, float]:
    """Add interior points (from the solver's dense output) where interpolating the steps
    alone would miss the tolerance (see :mod:`weightsynth.core.interpolation`).

    Also returns the refined program's estimated relative excess, predicted from the
    steps' own defects: an interval cut into m pieces has m pieces of 1/m its length and
    (the Hermite error being O(h^4)) 1/m^4 its error, which the estimate sums. Measuring
    it afresh would cost another pass over 3-5 times as many stored times.
    """
    ratios, dW, w2 = prog._defects()
    ts, X = prog.stored()
    pieces = subdivisions(ratios)
    excess = prog._excess(ts, dW / pieces.astype(np.float64) ** 4, w2)
    extra = interior_times(ts.astype(np.float64), pieces)
    if extra.size == 0:
        return prog, excess
    padded = np.full(capacity(extra.size), extra[-1])
    padded[: extra.size] = extra
    leaves, args, statics = dense
    rows = batch_rows(padded.size, 16 * int(np.prod(X.shape[1:])) * X.dtype.itemsize)
    values = np.asarray(_evaluate(leaves, padded.astype(prog.dtype), *args, batch=rows,
                                  **statics))
    values = values[: extra.size]
    order = np.argsort(np.concatenate([ts, extra]), kind="stable")
    new_ts = np.concatenate([ts, extra.astype(prog.dtype)])[order]
    new_X = np.concatenate([X, values.astype(prog.dtype)])[order]
    refined = dataclasses.replace(prog, ts=new_ts, X=new_X,
                                  stats={**prog.stats, "stored_times": int(new_ts.shape[0])})
    return refined, excess


#: the tree structure of the dense output, recorded whenever :func:`_solve_closed_loop` is
#: traced, by :func:`_dense_key`: :func:`_evaluate` traced in the same process then skips
#: re-tracing the whole solve (0.3-0.5 s of a cold first call) to learn it
_DENSE_STRUCTURE: dict = {}


def _dense_key(leaves, statics: dict):
    """A key of the dense output's structure: the statics of the solve and its leaves'
    shapes and dtypes; None if a static is unhashable."""
    key = (tuple(sorted(statics.items())),
           tuple((tuple(x.shape), str(x.dtype)) for x in leaves))
    try:
        hash(key)
    except TypeError:
        return None
    return key


@persistent_jit
def _solve_closed_loop(X0, Z0, Theta, beta, t0, t1, grid, *, act, coords, cfg, size):
    """S from t0 to t1: ((ts, X) at t0 and every step, ok, steps taken, the leaves of the
    solver's dense output). Leaves, not diffrax's interpolation object: the kernel's results
    must be plain arrays for :func:`~weightsynth._cache.persistent_jit` to keep it."""
    ys, ok, nsteps, dense = _closed_loop(X0, Z0, Theta, beta, t0, t1, grid, act=act,
                                         coords=coords, cfg=cfg, size=size)
    leaves, structure = jax.tree_util.tree_flatten(dense)
    key = _dense_key(leaves, dict(act=act, coords=coords, cfg=cfg, size=size))
    if key is not None:
        _DENSE_STRUCTURE[key] = structure
    return ys, ok, nsteps, leaves


@persistent_jit
def _evaluate(leaves, ts, X0, Z0, Theta, beta, t0, t1, grid, *, batch, **statics):
    """The dense output whose ``leaves`` :func:`_solve_closed_loop` returned, at ``ts``,
    ``batch`` times at a time. Its structure is the one recorded when the solve was traced
    in this process, else that of an abstract evaluation of the solve."""
    structure = _DENSE_STRUCTURE.get(_dense_key(leaves, statics))
    if structure is None:
        shape = jax.eval_shape(partial(_closed_loop, **statics), X0, Z0, Theta, beta, t0,
                               t1, grid)[3]
        structure = jax.tree_util.tree_structure(shape)
    dense = jax.tree_util.tree_unflatten(structure, leaves)
    return map_rows(dense.evaluate, ts, batch)


def _closed_loop(X0, Z0, Theta, beta, t0, t1, grid, *, act, coords, cfg, size):
    def field(t, X, args):
        return dyn.closed_loop_rhs(t, X, Z0, Theta, beta, t0, act, coords)[0]

    dfx = diffrax()
    # the dense output (all stages of every step: 7 x the stored states for tsit5) serves
    # only the refinement of adaptive steps; fixed steps store exactly the steps asked for
    saveat = dfx.SaveAt(t0=True, steps=True, dense=cfg.adaptive, fn=lambda t, y, args: (t, y))
    ys, ok, nsteps, sol = solve(field, X0, t0, t1, None, cfg,
                                step_ts=None if cfg.adaptive else grid, saveat=saveat,
                                max_steps=size, solution=True)
    return ys, ok, nsteps, sol.interpolation


def _warn_if_coarse(prog: WeightProgram, cfg: SolverConfig, rel: float) -> None:
    """Warn when interpolating between the stored times may cost more than the tolerance
    (``rel``: the estimated relative excess)."""
    limit = 10 * cfg.rtol
    if rel <= limit:
        return
    fix = ("pass a smaller rtol: the stored steps shrink with it" if cfg.adaptive else
           f"pass more steps than {cfg.steps}, or steps=None to solve adaptively")
    warnings.warn(
        f"the stored program may score about {rel:.1g} relative above J* between its "
        f"{prog.stored_times} stored times (more than 10 x rtol = {limit:.1g}); "
        f"{fix}",
        AccuracyWarning, stacklevel=3,
    )
