"""ODE-solver plumbing shared by synthesis, recall and the index: diffrax underneath.

A :class:`SolverConfig` says how to integrate: fixed steps (``steps``) on a uniform grid,
or adaptive error control (``rtol``, ``atol``). :func:`solve` runs inside jit; its status
comes back to the host, where :func:`raise_if_failed` turns a failure into a
:class:`~weightsynth.errors.SolveError` that says when the solution blew up.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass

import equinox as eqx
import equinox._errors as _eqx_errors  # its EQX_ON_ERROR is read as a check is traced
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .._validation import check_int, device_array
from ..errors import SolveError


def diffrax():
    """The diffrax module, imported on first use.

    Importing diffrax (with lineax and optimistix) takes about 0.6 s. Only tracing a solve
    needs it, and a process whose kernels all come from the export cache
    (:func:`weightsynth._cache.persistent_jit`) traces none, so every module of this layer
    reaches diffrax through this function instead of importing it at load time.
    """
    import diffrax as module

    return module


@functools.cache
def _rk4():
    dfx = diffrax()

    class RK4(dfx.AbstractERK):
        """The classical fourth-order Runge-Kutta method (fixed steps only: no error
        estimate)."""

        tableau = dfx.ButcherTableau(
            c=np.array([0.5, 0.5, 1.0]),
            b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
            b_error=np.zeros(4),
            a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
        )
        interpolation_cls = dfx.ThirdOrderHermitePolynomialInterpolation.from_k

        def order(self, terms):
            return 4

    return RK4


#: name -> (diffrax solver class name, classical order); "rk4" is this module's own
SOLVERS: dict[str, tuple[str, int]] = {
    "euler": ("Euler", 1),
    "heun": ("Heun", 2),
    "midpoint": ("Midpoint", 2),
    "ralston": ("Ralston", 2),
    "bosh3": ("Bosh3", 3),
    "rk4": ("RK4", 4),
    "tsit5": ("Tsit5", 5),
    "dopri5": ("Dopri5", 5),
    "dopri8": ("Dopri8", 8),
}


def diffrax_solver(name: str):
    """A diffrax solver instance for a name of :data:`SOLVERS`."""
    return _rk4()() if name == "rk4" else getattr(diffrax(), SOLVERS[name][0])()


#: default tolerances of synthesis and recall
RTOL, ATOL = 1e-8, 1e-10
#: default tolerances of the index (core.cost): a measuring instrument must resolve the error
#: of what it measures, so it runs 100 times tighter than synthesis
INDEX_RTOL, INDEX_ATOL = 1e-10, 1e-12


@dataclass(frozen=True)
class SolverConfig:
    """How to integrate an ODE.

    ``steps``: a number of equal steps (fixed-step solving), or ``None`` for adaptive
    solving with relative and absolute tolerances ``rtol``/``atol`` and at most
    ``max_steps`` steps. ``solver`` is one of :data:`SOLVERS`. ``progress`` shows a bar.
    """

    solver: str = "tsit5"
    steps: int | None = None
    rtol: float = RTOL
    atol: float = ATOL
    max_steps: int = 100_000
    progress: bool = False

    def __post_init__(self):
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver {self.solver!r}; known: {', '.join(SOLVERS)}")
        check_int(self.steps, "steps", none_ok=True)
        for name in ("rtol", "atol"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")
        check_int(self.max_steps, "max_steps")

    @property
    def adaptive(self) -> bool:
        return self.steps is None

    @property
    def order(self) -> int:
        return SOLVERS[self.solver][1]

    def as_dict(self) -> dict:
        return {"solver": self.solver, "steps": self.steps, "rtol": self.rtol,
                "atol": self.atol, "max_steps": self.max_steps}


def solver_config(solver: str | SolverConfig, **settings) -> SolverConfig:
    """``solver`` if it is a :class:`SolverConfig` (then ``settings`` must be left at their
    defaults), else a config of that solver name with ``settings`` (steps, rtol, ...)."""
    if isinstance(solver, SolverConfig):
        return solver
    return SolverConfig(solver=solver, **settings)


def uniform_grid(t0: float, t1: float, steps: int) -> np.ndarray:
    """``steps + 1`` equally spaced times from t0 to t1, computed in float64."""
    return t0 + (t1 - t0) * (np.arange(steps + 1, dtype=np.float64) / steps)


#: ``save_ts`` of :func:`solve` for "the end only" (see :func:`save_times`)
END = "t1"


def save_times(ts, t1, dtype):
    """What a solve should save for the host times ``ts``: :data:`END` when they are just
    [t1] (recall), which saves the final state without the interpolation loop that given
    save times compile into the solve (0.2-1 s of compiling); else ``ts`` on the device."""
    ts = np.asarray(ts)
    if ts.shape == (1,) and ts[0] == float(t1):
        return END
    return device_array(ts, dtype)


def solve(field, y0, t0, t1, args, cfg: SolverConfig, *, step_ts=None, save_ts=None,
          save_fn=None, saveat=None, max_steps=None, solution=False):
    """Integrate dy/dt = field(t, y, args) from t0 to t1 (traceable; call inside jit).

    Fixed-step mode steps exactly through ``step_ts`` (a grid from :func:`uniform_grid`).
    Saves at ``save_ts`` if given (:data:`END`: at t1 only), else at t0 and after every
    step; a ``diffrax.SaveAt`` given as ``saveat`` overrides both. ``max_steps`` overrides
    the adaptive solver's ``cfg.max_steps`` (a diffrax buffer that saves every step has that
    many rows). Returns ``(ys, ok, num_steps)`` where ``ok`` is False if the solver failed,
    and with ``solution=True`` also diffrax's ``Solution`` (for its dense output).

    A state of several arrays of one dtype reaches diffrax packed into one vector
    (:func:`_packed`; not with ``solution=True``, whose dense output would be packed
    too); ``field`` and the save functions still see the arrays.
    """
    dfx = diffrax()
    solver = diffrax_solver(cfg.solver)
    packed = None if solution else _packed(y0, field)
    unravel = None
    if packed is not None:
        y0, field, unravel = packed
    if cfg.adaptive:
        controller = dfx.PIDController(rtol=cfg.rtol, atol=cfg.atol)
        max_steps = cfg.max_steps if max_steps is None else max_steps
    else:
        controller = dfx.StepTo(ts=step_ts)
        max_steps = cfg.steps
    if saveat is not None:
        pass
    elif save_ts is None:
        saveat = dfx.SaveAt(t0=True, steps=True, fn=save_fn or _identity)
    elif isinstance(save_ts, str) and save_ts == END:
        saveat = dfx.SaveAt(t1=True, fn=save_fn or _identity)
    else:
        saveat = dfx.SaveAt(ts=save_ts, fn=save_fn or _identity)
    if unravel is not None:
        saveat = _saving_unpacked(saveat, unravel)
    meter = dfx.TqdmProgressMeter() if cfg.progress else dfx.NoProgressMeter()
    with _checks_without_callbacks():
        sol = dfx.diffeqsolve(
            dfx.ODETerm(field), solver, t0, t1, None, y0, args, saveat=saveat,
            stepsize_controller=controller, max_steps=max_steps, throw=False,
            progress_meter=meter, adjoint=dfx.ForwardMode(),
        )
    ok = sol.result == dfx.RESULTS.successful
    if solution:
        return sol.ys, ok, sol.stats["num_steps"], sol
    return sol.ys, ok, sol.stats["num_steps"]


def _packed(y0, field):
    """For a state of several arrays of one dtype: the state packed into one flat vector
    (``jax.flatten_util.ravel_pytree``), the field on flat states, and the function that
    unpacks a flat state; else None.

    The solver's arithmetic (stages, error norm, step control) is then emitted once, not
    once per array: the index's state (Z and two integrals) compiles in 0.7-0.9 s packed
    against 1.0-1.3 s unpacked. The norm is the same RMS over every entry.
    """
    leaves = jax.tree_util.tree_leaves(y0)
    if len(leaves) < 2 or len({jnp.result_type(x) for x in leaves}) > 1:
        return None
    flat, unravel = ravel_pytree(y0)

    def flat_field(t, y, args):
        return ravel_pytree(field(t, unravel(y), args))[0]

    return flat, flat_field, unravel


def _saving_unpacked(saveat, unravel):
    """``saveat`` with each save function applied to the unpacked state."""
    dfx = diffrax()

    def wrap(sub):
        fn = sub.fn
        return eqx.tree_at(lambda s: s.fn, sub, lambda t, y, args: fn(t, unravel(y), args))

    subs = jax.tree_util.tree_map(wrap, saveat.subs,
                                  is_leaf=lambda x: isinstance(x, dfx.SubSaveAt))
    return eqx.tree_at(lambda s: s.subs, saveat, subs)


@contextlib.contextmanager
def _checks_without_callbacks():
    """While diffeqsolve is traced, let equinox's runtime checks return NaN, not call back.

    diffrax checks traced save times with ``eqx.error_if``, which by default compiles to a
    host callback; JAX never stores a program with host callbacks in its persistent
    compilation cache, so every process would recompile every solve. Our callers validate
    the times on the host first (``check_times``), so these checks cannot fire; were one to,
    its NaN reaches :func:`raise_if_failed`, which raises. Only this tracing is affected.
    """
    old = getattr(_eqx_errors, "EQX_ON_ERROR", None)
    if old is None:  # another equinox layout: leave its checks as they are
        yield
        return
    _eqx_errors.EQX_ON_ERROR = "nan"
    try:
        yield
    finally:
        _eqx_errors.EQX_ON_ERROR = old


def _identity(t, y, args):
    return y


def finite_rows(ys) -> jnp.ndarray:
    """Per saved time, whether every entry of the (pytree of) saved states is finite."""
    leaves = jax.tree_util.tree_leaves(ys)
    masks = [jnp.all(jnp.isfinite(x.reshape(x.shape[0], -1)), axis=1) for x in leaves]
    out = masks[0]
    for m in masks[1:]:
        out = out & m
    return out


def raise_if_failed(ok, finite, times, what: str) -> None:
    """Raise :class:`SolveError` if the solve failed or any saved state is non-finite."""
    finite = np.asarray(finite)
    ok = bool(ok)
    if ok and finite.all():
        return
    times = np.asarray(times)
    good = np.flatnonzero(~finite)
    first_bad = int(good[0]) if good.size else len(finite)
    last_t = float(times[first_bad - 1]) if first_bad > 0 else float(times[0])
    if first_bad < len(finite):
        when = f"between t={last_t:.6g} and t={float(times[first_bad]):.6g}"
        raise SolveError(
            f"{what} blew up: the state became non-finite {when} (finite up to t={last_t:.6g})",
            time=last_t,
        )
    raise SolveError(
        f"{what} failed: the solver stopped before the end (step size collapsed or max_steps "
        "was reached); try fixed steps or looser tolerances",
        time=None,
    )
