"""ODE-solver plumbing shared by synthesis, recall and the index: diffrax underneath.

A :class:`SolverConfig` says how to integrate: fixed steps (``steps``) on a uniform grid,
or adaptive error control (``rtol``, ``atol``). :func:`solve` runs inside jit; its status
comes back to the host, where :func:`raise_if_failed` turns a failure into a
:class:`~weightsynth.errors.SolveError` that says when the solution blew up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import diffrax
import jax.numpy as jnp
import numpy as np

from ..errors import SolveError

#: name -> (diffrax solver class, classical order)
SOLVERS: dict[str, tuple[type, int]] = {
    "euler": (diffrax.Euler, 1),
    "heun": (diffrax.Heun, 2),
    "midpoint": (diffrax.Midpoint, 2),
    "ralston": (diffrax.Ralston, 2),
    "bosh3": (diffrax.Bosh3, 3),
    "tsit5": (diffrax.Tsit5, 5),
    "dopri5": (diffrax.Dopri5, 5),
    "dopri8": (diffrax.Dopri8, 8),
}


@dataclass(frozen=True)
class SolverConfig:
    """How to integrate an ODE.

    ``steps``: a number of equal steps (fixed-step solving), or ``None`` for adaptive
    solving with relative and absolute tolerances ``rtol``/``atol`` and at most
    ``max_steps`` steps. ``solver`` is one of :data:`SOLVERS`. ``progress`` shows a bar.
    """

    solver: str = "tsit5"
    steps: int | None = None
    rtol: float = 1e-8
    atol: float = 1e-10
    max_steps: int = 100_000
    progress: bool = False

    def __post_init__(self):
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver {self.solver!r}; known: {', '.join(SOLVERS)}")
        s = self.steps
        if s is not None and (isinstance(s, bool) or not isinstance(s, (int, np.integer))
                              or s < 1):
            raise ValueError(f"steps must be a positive integer or None, got {s!r}")
        for name in ("rtol", "atol"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")
        if not isinstance(self.max_steps, (int, np.integer)) or self.max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {self.max_steps!r}")

    @property
    def adaptive(self) -> bool:
        return self.steps is None

    @property
    def order(self) -> int:
        return SOLVERS[self.solver][1]

    def as_dict(self) -> dict:
        return {"solver": self.solver, "steps": self.steps, "rtol": self.rtol,
                "atol": self.atol, "max_steps": self.max_steps}


def uniform_grid(t0: float, t1: float, steps: int) -> np.ndarray:
    """``steps + 1`` equally spaced times from t0 to t1, computed in float64."""
    return t0 + (t1 - t0) * (np.arange(steps + 1, dtype=np.float64) / steps)


def solve(field, y0, t0, t1, args, cfg: SolverConfig, *, step_ts=None, save_ts=None,
          save_fn=None, saveat=None, max_steps=None, solution=False):
    """Integrate dy/dt = field(t, y, args) from t0 to t1 (traceable; call inside jit).

    Fixed-step mode steps exactly through ``step_ts`` (a grid from :func:`uniform_grid`).
    Saves at ``save_ts`` if given, else at t0 and after every step; a ``diffrax.SaveAt``
    given as ``saveat`` overrides both. ``max_steps`` overrides the adaptive solver's
    ``cfg.max_steps`` (a diffrax buffer that saves every step has that many rows). Returns
    ``(ys, ok, num_steps)`` where ``ok`` is False if the solver failed, and with
    ``solution=True`` also diffrax's ``Solution`` (for its dense output).
    """
    solver = SOLVERS[cfg.solver][0]()
    if cfg.adaptive:
        controller = diffrax.PIDController(rtol=cfg.rtol, atol=cfg.atol)
        max_steps = cfg.max_steps if max_steps is None else max_steps
    else:
        controller = diffrax.StepTo(ts=step_ts)
        max_steps = cfg.steps
    if saveat is not None:
        pass
    elif save_ts is None:
        saveat = diffrax.SaveAt(t0=True, steps=True, fn=save_fn or _identity)
    else:
        saveat = diffrax.SaveAt(ts=save_ts, fn=save_fn or _identity)
    meter = diffrax.TqdmProgressMeter() if cfg.progress else diffrax.NoProgressMeter()
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field), solver, t0, t1, None, y0, args, saveat=saveat,
        stepsize_controller=controller, max_steps=max_steps, throw=False,
        progress_meter=meter,
    )
    ok = sol.result == diffrax.RESULTS.successful
    if solution:
        return sol.ys, ok, sol.stats["num_steps"], sol
    return sol.ys, ok, sol.stats["num_steps"]


def _identity(t, y, args):
    return y


def finite_rows(ys) -> jnp.ndarray:
    """Per saved time, whether every entry of the (pytree of) saved states is finite."""
    import jax

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
