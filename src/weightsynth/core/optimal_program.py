r"""The optimal weight program W*(t) = beta Theta^T g(Z(t)) (derivation eq. 7).

:class:`WeightProgram`, the program :func:`~weightsynth.synthesize` returns. It stores
(Z0, Theta) and the closed-loop trajectory of S in reduced coordinates A(t) (L x L) when
L <= n, or Z(t) (L x n) when L > n: O(nL + T min(n, L) L) numbers, never O(T n^2). W(t) is
rebuilt on demand; queries run through N jointly with S, so W*(t) is exact (eq. 11).
"""

from __future__ import annotations

import json
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._cache import persistent_jit
from .._validation import device_array
from ..errors import ProgramFileError
from ..formats.program_file import require
from . import dynamics as dyn
from .activations import Activation
from .interpolation import (
    batch_rows,
    capacity,
    defect_error,
    error_ratio,
    hermite,
    pad,
    quarter_point,
    relative_excess_estimate,
    scan_intervals,
)
from .ode import SolverConfig, finite_rows, raise_if_failed, save_times, solve
from .program import Program, as_scalar, stats_arrays, stats_json


class WeightProgram(Program):
    r"""The optimal weight program W*(t) = beta Theta^T g(Z(t)) (derivation eq. 7).

    Attributes: ``activation``, ``beta``, ``t0``, ``t1``, ``Z0`` = g^{-1}(inputs) (L, n),
    ``Theta`` = targets (L, n), ``ts`` (T,) the stored times, ``X`` (T, L, L) reduced
    coordinates A(t) if ``coords == "reduced"``, or (T, L, n) states Z(t) if
    ``coords == "direct"``, ``solver`` the integration settings (reused by ``recall``), and
    ``stats`` (solver steps taken).

    The stored times are t0 and the end of every step the solver took, plus interior
    points where interpolating would miss the tolerance (see
    :mod:`weightsynth.core.interpolation`). For adaptive solves ``ts`` and ``X`` are
    padded with copies of their last row to a bucketed length (257, 513, ...), so programs
    whose solves took different numbers of steps share compiled code; :attr:`stored_times`
    and :meth:`stored` give the rows without the padding. Fixed steps store exactly
    steps + 1 rows: their count is already the same for every program of those settings.

    The four arrays are (immutable) JAX arrays on the device that computed or loaded them:
    a program synthesized on a GPU stays there, and recall runs there without copying it
    back and forth. ``np.asarray(prog.X)`` gives a host copy.
    """

    activation: Activation
    beta: jax.Array
    t0: jax.Array
    t1: jax.Array
    Z0: jax.Array
    Theta: jax.Array
    ts: jax.Array
    X: jax.Array
    coords: str = eqx.field(static=True)
    solver: SolverConfig
    stats: dict = eqx.field(default_factory=dict)
    kind: ClassVar[str] = "optimal"

    def __post_init__(self):
        self.beta, self.t0, self.t1 = (as_scalar(getattr(self, k)) for k in ("beta", "t0", "t1"))
        self.stats = stats_arrays(self.stats)
        for name in ("Z0", "Theta", "ts", "X"):
            value = getattr(self, name)
            arr = device_array(value)
            if arr.dtype != np.dtype(value.dtype):
                raise ValueError(
                    f"the program's {name} is {np.dtype(value.dtype)}, which JAX holds only "
                    "with 64-bit mode on: call jax.config.update('jax_enable_x64', True) first"
                )
            setattr(self, name, arr)
        if self.solver.adaptive:
            self.ts, self.X = pad(self.ts, self.X, capacity(int(self.ts.shape[0])))

    @property
    def n(self) -> int:
        return self.Theta.shape[1]

    @property
    def stored_times(self) -> int:
        """How many rows of ``ts``/``X`` are stored states (the rest repeat the last)."""
        ts = np.asarray(self.ts)
        return int(np.searchsorted(ts, ts[-1], side="left")) + 1

    def stored(self) -> tuple[np.ndarray, np.ndarray]:
        """The stored times and states without the padding, as host arrays."""
        k = self.stored_times
        return np.asarray(self.ts)[:k], np.asarray(self.X)[:k]

    @property
    def L(self) -> int:
        return self.Theta.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.Theta.dtype

    @property
    def nbytes(self) -> int:
        """Bytes held by the program's arrays (its scalars included, solver stats not)."""
        return sum(getattr(self, k).nbytes for k in ("beta", "t0", "t1", "Z0", "Theta", "ts", "X"))

    def _to_states(self, t, X):
        if self.coords == "reduced":
            return dyn.reduced_states(t, X, self.Z0, self.Theta, self.t0)
        return X

    def _field_and_outputs(self, t, X):
        """S's vector field in the stored coordinates, and G = g(Z) (eqs. 9-10)."""
        return dyn.closed_loop_rhs(t, X, self.Z0, self.Theta, self.beta, self.t0,
                                   self.activation, self.coords)

    def _field(self, t, X):
        return self._field_and_outputs(t, X)[0]

    def _states_jax(self, t):
        """Z(t) by cubic Hermite interpolation between the stored times."""
        X = hermite(jnp.asarray(self.ts), jnp.asarray(self.X), self._field, t)
        return self._to_states(t, X)

    def interval_errors(self) -> tuple[np.ndarray, np.ndarray]:
        """Per stored interval: the estimated interpolation error in the solver's norm
        (1 = the tolerance ``rtol``/``atol``), and the error it makes in W (Frobenius)."""
        ratio, dW, _ = self._defects()
        return ratio, dW

    def _defects(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`interval_errors` and ||W||_F^2 at every stored time, from one kernel."""
        k = self.stored_times
        rows = batch_rows(int(self.ts.shape[0]), 8 * self.L * self.n * self.dtype.itemsize)
        ratio, dW, w2 = (np.asarray(a) for a in _defects(self, self.solver.rtol,
                                                            self.solver.atol, batch=rows))
        return ratio[: k - 1], dW[: k - 1], w2[:k]

    def interpolation_excess(self) -> float:
        """Estimated relative excess that interpolating between stored times costs, relative
        to the larger of |J*| and the program's effort term (see
        :func:`~weightsynth.core.interpolation.relative_excess_estimate`).

        An a-posteriori estimate from the defect of the interpolant (see
        :func:`weightsynth.core.interpolation.defect_error`), not a bound.
        """
        ts, _ = self.stored()
        _, dW, w2 = self._defects()
        return self._excess(ts, dW, w2)

    def _excess(self, ts, dW, w2) -> float:
        """The relative excess estimate from the W errors ``dW`` of the intervals of ``ts``
        and ||W||_F^2 at those times (:meth:`interpolation_excess`)."""
        J_star = -float(np.sum(np.asarray(self.Z0) * np.asarray(self.Theta)))
        beta = float(self.beta)
        rel = relative_excess_estimate(ts, dW, beta, J_star, 0.0)
        if rel <= 1e-12:  # negligible already; a larger scale could only make it smaller
            return rel
        # the effort (1/(2 beta)) int ||W||^2 dt, by the trapezoid rule on the stored times
        effort = 0.5 / beta * float(np.sum(np.diff(ts) * 0.5 * (w2[1:] + w2[:-1])))
        return relative_excess_estimate(ts, dW, beta, J_star, effort)

    def weights_at(self, t):
        return dyn.optimal_weights(self._states_jax(t), self.Theta, self.beta, self.activation)

    def states(self, t) -> np.ndarray:
        """States Z(t) of the formal system S: (L, n) for a scalar t, (len(t), L, n) for a
        1-D array of times in [t0, t1]."""
        ts = self._times(t, "t")
        out = np.asarray(_states_many(self, device_array(ts, self.dtype)))
        return out[0] if np.ndim(t) == 0 else out

    def _run(self, Zq0, ts):
        B, n, L = Zq0.shape[0], self.n, self.L
        dense = 2 * n * n * L + 2 * B * n * n < 4 * B * L * n
        grid = None if self.solver.adaptive else device_array(self.stored()[0], self.dtype)
        ys, ok, fin = _run_queries(self, Zq0, grid, save_times(ts, self.t1, self.dtype),
                                   dense=dense)
        raise_if_failed(ok, fin, ts, "running the network")
        return np.asarray(ys)

    def _file_contents(self):
        ts, X = self.stored()
        tensors = {"Z0": np.asarray(self.Z0), "Theta": np.asarray(self.Theta), "ts": ts, "X": X}
        meta = {"beta": repr(float(self.beta)), "L": str(self.L), "coords": self.coords,
                "stats": stats_json(self.stats)}
        return tensors, meta

    @classmethod
    def _from_file(cls, tensors, meta, common):
        require(meta, tensors, ("beta", "L", "coords"), ("Z0", "Theta", "ts", "X"))
        Z0, Theta, ts, X = (tensors[k] for k in ("Z0", "Theta", "ts", "X"))
        L, n = int(meta["L"]), int(meta["n"])
        side = L if meta["coords"] == "reduced" else n
        if Z0.shape != (L, n) or Theta.shape != (L, n) or ts.ndim != 1 or ts.size < 2 \
                or X.shape != (ts.size, L, side):
            raise ProgramFileError("program file arrays have inconsistent shapes")
        return cls(beta=float(meta["beta"]), Z0=Z0, Theta=Theta, ts=ts, X=X,
                   coords=meta["coords"], stats=json.loads(meta.get("stats", "{}")), **common)


@persistent_jit
def _states_many(prog: WeightProgram, ts):
    return jax.vmap(prog._states_jax)(ts)


@persistent_jit
def _defects(prog: WeightProgram, rtol, atol, *, batch: int):
    """Per stored interval the error ratio and the W error of the interpolant (see
    :meth:`WeightProgram.interval_errors`); per stored time ||W||_F^2.

    S's field is evaluated once per stored time (the slopes, shared by the two intervals
    that meet there) and once per interval (at its quarter point, where the defect is
    taken). The W norms come from L x L Gram matrices, ||beta Theta^T D||_F^2 =
    beta^2 sum((Theta Theta^T) * (D D^T)) for D = g(Z) or a difference of two: O(n L^2)
    per time, W never formed. Intervals go ``batch`` at a time (:func:`scan_intervals`).
    """
    g = prog.activation.g
    TT = prog.Theta @ prog.Theta.T

    def norm2(D):
        return prog.beta**2 * jnp.sum(TT * dyn.gram(D))

    ts, X = prog.ts, prog.X

    def at_stored(k):
        F, G = prog._field_and_outputs(ts[k], X[k])
        if prog.coords == "reduced":  # dA/dt = -A + beta K gives K = G G^T for free
            return F, prog.beta * jnp.sum(TT * (F + X[k]))
        return F, norm2(G)

    def at_quarter(k, Fa, Fb):
        t, Xs, dXs, h, used = quarter_point(ts[k], ts[k + 1], X[k], X[k + 1], Fa, Fb)
        f, G = prog._field_and_outputs(t, Xs)
        err = defect_error(h, dXs, f, used)
        return (error_ratio(err, X[k], X[k + 1], rtol, atol),
                jnp.sqrt(norm2(g(prog._to_states(t, Xs + err)) - G)))

    stored = jnp.searchsorted(ts, ts[-1], side="left") + 1  # the rest repeats the last row
    w2, (ratio, dW) = scan_intervals(ts.shape[0], at_stored, at_quarter, batch, used=stored)
    return ratio, dW, w2


@persistent_jit
def _run_queries(prog: WeightProgram, Zq0, grid, save_ts, *, dense: bool):
    """Queries through N under W*(t), integrated jointly with S so W*(t) is exact (eq. 11)."""

    def field(t, y, args):
        Xp, Xq = y
        dXp, G = prog._field_and_outputs(t, Xp)
        return dXp, dyn.query_rhs(Xq, G, prog.Theta, prog.beta, prog.activation, dense=dense)

    ys, ok, _ = solve(field, (prog.X[0], Zq0), prog.t0, prog.t1, None, prog.solver,
                      step_ts=grid, save_ts=save_ts, save_fn=lambda t, y, args: y[1])
    return ys, ok, finite_rows(ys)


