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

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._deprecation import positional_deprecated
from .._validation import check_int, check_interval, check_pair, check_positive, resolve_dtype
from ..errors import AccuracyWarning, SolveError
from . import dynamics as dyn
from .activations import Activation, get_activation
from .interpolation import capacity, interior_times, subdivisions
from .ode import (
    ATOL,
    RTOL,
    SolverConfig,
    raise_if_failed,
    solve,
    solver_config,
    uniform_grid,
)
from .program import WeightProgram

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
        Fixed-step solving with this many equal steps. ``None`` (default) solves adaptively
        with tolerances ``rtol``/``atol``. Either way the program stores t0 and the end of
        every step the solver took, plus interior points from the solver's dense output
        where interpolating between steps (cubic Hermite with S's own slopes) would miss
        the tolerance; so its index meets J* to the solve's tolerance. If it still may
        cost more than 10 x rtol relative excess, an :class:`AccuracyWarning` names the
        fix.
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

    Z0 = act.ginv(jnp.asarray(phi, dt))
    Theta = jnp.asarray(theta, dt)
    if not bool(jnp.all(jnp.isfinite(Z0))):
        raise ValueError(f"inputs are too close to the edge of g's range for {dt} precision")
    X0 = jnp.zeros((L, L), dt) if coords == "reduced" else Z0
    ts, X, num_steps, dense = _stored_solve(X0, Z0, Theta, beta, t0, t1, act, coords, cfg,
                                            n_save, dt)
    prog = WeightProgram(
        activation=act, beta=beta, t0=t0, t1=t1, Z0=Z0, Theta=Theta, ts=ts, X=X,
        coords=coords, solver=dataclasses.replace(cfg, progress=False),
        stats={"num_steps": num_steps, "accepted_steps": int(ts.shape[0]) - 1},
    )
    if cfg.adaptive:  # fixed steps store exactly the steps asked for
        prog = _refine(prog, dense)
    _warn_if_coarse(prog, cfg)
    return prog


def _stored_solve(X0, Z0, Theta, beta, t0, t1, act, coords, cfg, n_save, dt):
    """Solve S once, keeping t0 and every accepted step: (ts, X, steps taken, dense output).

    diffrax saves steps into a buffer of ``max_steps`` rows; it starts at ``n_save`` rows
    and doubles (one more compile) only when the solver needs more steps than fit.
    """
    size = cfg.steps if not cfg.adaptive else min(n_save - 1, cfg.max_steps)
    grid = uniform_grid(t0, t1, cfg.steps or 1)
    while True:
        (ts, X), ok, nsteps, dense = _solve_closed_loop(
            X0, Z0, Theta, jnp.asarray(beta, dt), jnp.asarray(t0, dt), jnp.asarray(t1, dt),
            jnp.asarray(grid, dt), act=act, coords=coords, cfg=cfg, size=size,
        )
        if bool(ok) or not cfg.adaptive or int(nsteps) < size or size >= cfg.max_steps:
            break
        size = min(2 * size, cfg.max_steps)
    # trimmed on the host: eager JAX indexing would compile afresh for every step count
    ts, X = np.asarray(ts), np.asarray(X)
    keep = np.isfinite(ts)  # diffrax fills the unused rows with inf
    ts, X = ts[keep].astype(dt), X[keep]
    finite = np.isfinite(X.reshape(X.shape[0], -1)).all(axis=1)
    raise_if_failed(True, finite, ts, "synthesis (closed-loop solve of S)")
    if not bool(ok):
        last, size = float(ts[-1]), float(np.abs(X[-1]).max())
        raise SolveError(
            f"synthesis (closed-loop solve of S) stopped at t={last:.6g} before t1={t1:g}: "
            f"the step size collapsed (the state had grown to {size:.3g}: a blow-up?) or "
            f"max_steps={cfg.max_steps} was reached; try fixed steps, looser tolerances or "
            "a smaller beta", time=last)
    return ts, X, int(nsteps), dense


def _refine(prog: WeightProgram, dense) -> WeightProgram:
    """Add interior points (from the solver's dense output) where interpolating the steps
    alone would miss the tolerance (see :mod:`weightsynth.core.interpolation`)."""
    ratios, _ = prog.interval_errors()
    ts, X = prog.stored()
    extra = interior_times(ts.astype(np.float64), subdivisions(ratios))
    if extra.size == 0:
        return prog
    padded = np.full(capacity(extra.size), extra[-1])
    padded[: extra.size] = extra
    values = np.asarray(_evaluate(dense, jnp.asarray(padded)))[: extra.size]
    order = np.argsort(np.concatenate([ts, extra]), kind="stable")
    new_ts = np.concatenate([ts, extra.astype(prog.dtype)])[order]
    new_X = np.concatenate([X, values.astype(prog.dtype)])[order]
    return dataclasses.replace(prog, ts=new_ts, X=new_X,
                               stats={**prog.stats, "stored_times": int(new_ts.shape[0])})


@eqx.filter_jit
def _evaluate(dense, ts):
    return jax.vmap(dense.evaluate)(ts)


@partial(jax.jit, static_argnames=("act", "coords", "cfg", "size"))
def _solve_closed_loop(X0, Z0, Theta, beta, t0, t1, grid, *, act, coords, cfg, size):
    def field(t, X, args):
        return dyn.closed_loop_rhs(t, X, Z0, Theta, beta, t0, act, coords)[0]

    saveat = diffrax.SaveAt(t0=True, steps=True, dense=True, fn=lambda t, y, args: (t, y))
    ys, ok, nsteps, sol = solve(field, X0, t0, t1, None, cfg,
                                step_ts=None if cfg.adaptive else grid, saveat=saveat,
                                max_steps=size, solution=True)
    return ys, ok, nsteps, sol.interpolation


def _warn_if_coarse(prog: WeightProgram, cfg: SolverConfig) -> None:
    """Warn when interpolating between the stored times may cost more than the tolerance."""
    rel = prog.interpolation_excess()
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
