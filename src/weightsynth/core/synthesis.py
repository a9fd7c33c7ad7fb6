r"""Synthesis of the optimal weight program: the closed-loop formal system S, forward once.

Pontryagin's conditions for the paper's index (3) are solved by the constant costate
lambda_r = -theta_r, which makes the optimal program W*(t) = beta Theta^T g(Z(t)) (eq. 7) a
feedback of S's own state. S is then integrated forward once, in the Gram form (eq. 9) or,
when L <= n, in reduced coordinates Z(t) = e^{-(t-t0)} Z0 + A(t) Theta (eq. 10). Each right-hand
side evaluation costs two GEMMs, ~4 n L^2 flops; W(t) is never formed.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp

from .._deprecation import positional_deprecated
from .._validation import check_int, check_interval, check_pair, check_positive, resolve_dtype
from . import dynamics as dyn
from .activations import Activation, get_activation
from .ode import (
    ATOL,
    RTOL,
    SolverConfig,
    finite_rows,
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
        Fixed-step solving with this many equal steps; the program stores every step.
        ``None`` (default) solves adaptively with tolerances ``rtol``/``atol`` and stores
        ``n_save`` equally spaced times.
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
    dt = resolve_dtype(dtype, phi, theta)
    L, n = phi.shape
    if coords == "auto":
        coords = "reduced" if L <= n else "direct"

    Z0 = act.ginv(jnp.asarray(phi, dt))
    Theta = jnp.asarray(theta, dt)
    if not bool(jnp.all(jnp.isfinite(Z0))):
        raise ValueError(f"inputs are too close to the edge of g's range for {dt} precision")
    grid = uniform_grid(t0, t1, cfg.steps if cfg.steps is not None else n_save - 1)
    X0 = jnp.zeros((L, L), dt) if coords == "reduced" else Z0
    ys, ok, finite, num_steps = _solve_closed_loop(
        X0, Z0, Theta, jnp.asarray(beta, dt), jnp.asarray(t0, dt), jnp.asarray(t1, dt),
        jnp.asarray(grid, dt), act=act, coords=coords, cfg=cfg,
    )
    raise_if_failed(ok, finite, grid, "synthesis (closed-loop solve of S)")
    return WeightProgram(
        activation=act, beta=beta, t0=t0, t1=t1, Z0=Z0, Theta=Theta,
        ts=jnp.asarray(grid, dt), X=ys, coords=coords,
        solver=dataclasses.replace(cfg, progress=False),
        stats={"num_steps": int(num_steps)},
    )


@partial(jax.jit, static_argnames=("act", "coords", "cfg"))
def _solve_closed_loop(X0, Z0, Theta, beta, t0, t1, grid, *, act, coords, cfg):
    def field(t, X, args):
        return dyn.closed_loop_rhs(t, X, Z0, Theta, beta, t0, act, coords)[0]

    if cfg.adaptive:
        ys, ok, nsteps = solve(field, X0, t0, t1, None, cfg, save_ts=grid)
    else:
        ys, ok, nsteps = solve(field, X0, t0, t1, None, cfg, step_ts=grid)
    return ys, ok, finite_rows(ys), nsteps
