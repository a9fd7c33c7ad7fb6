r"""A weight program in feedback (factor) form: the result of :func:`feedback_synthesize`.

When the state equation is the network's, f = -z + W g(z) + d(t), and the running cost does
not depend on W, every stationary program is W(t) = -beta Lambda(t)^T G(t) (derivation
eq. 20): rank at most L, a feedback of S's own outputs G = g(Z). A :class:`FeedbackProgram`
stores it as

    W(t) = C(t)^T g(Z(t)),     C piecewise linear on T uniform nodes (T x L x n numbers),

with Z the training system S run under that W (eq. 21):

    dZ/dt = -Z + K(Z) C(t) + d(t),     K = G G^T (L x L),      Z(t0) = Z0.

A query x runs N jointly with S, dx/dt = -x + C(t)^T (G(t) g(x)) + d(t), so it sees W(t)
exactly as the program defines it, and W is never formed (O(nL) per query per evaluation).
The paper's closed form is the constant C = beta Theta (eq. 7). The program holds Z0, C, the
node states Z(t_k) and the input d(t_k): O(T n L) numbers, never O(T n^2).
"""

from __future__ import annotations

import json
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..core import dynamics as dyn
from ..core.activations import Activation
from ..core.ode import (
    SolverConfig,
    finite_rows,
    raise_if_failed,
    save_times,
    solve,
    uniform_grid,
)
from ..core.program import Program, as_scalar, stats_arrays, stats_json
from ..errors import ProgramFileError
from ..formats.program_file import require
from .grid_program import interp_nodes


class FeedbackProgram(Program):
    r"""W(t) = C(t)^T g(Z(t)) with Z the training system under it (module docstring).

    Attributes: ``activation``, ``t0``, ``t1``, ``Z0`` (L, n) = g^{-1}(inputs), ``C``
    (T, L, n) the coefficient nodes, ``Zs`` (T, L, n) S's states at the nodes (used for
    ``weights``, by cubic Hermite interpolation with the vector field as slopes), ``drive``
    (T, n) the input d(t_k) = b + u(t_k), ``solver`` (fixed steps through the nodes, reused
    by ``recall``) and ``stats``.
    """

    activation: Activation
    t0: jax.Array
    t1: jax.Array
    Z0: np.ndarray
    C: np.ndarray
    Zs: np.ndarray
    drive: np.ndarray
    solver: SolverConfig
    stats: dict = eqx.field(default_factory=dict)
    kind: ClassVar[str] = "feedback"

    def __post_init__(self):
        self.t0, self.t1 = as_scalar(self.t0), as_scalar(self.t1)
        self.stats = stats_arrays(self.stats)
        arrs = [np.array(getattr(self, k)) for k in ("Z0", "C", "Zs", "drive")]
        Z0, C, Zs, drive = arrs
        if C.ndim != 3 or C.shape[0] < 2 or Z0.shape != C.shape[1:] or Zs.shape != C.shape \
                or drive.shape != (C.shape[0], C.shape[2]):
            raise ValueError(f"inconsistent shapes: Z0 {Z0.shape}, C {C.shape}, Zs {Zs.shape},"
                             f" drive {drive.shape} (want (L, n), (T, L, n), (T, L, n), (T, n))")
        for name, a in zip(("Z0", "C", "Zs", "drive"), arrs, strict=True):
            if not np.isfinite(a).all():
                raise ValueError(f"{name} contains non-finite values")
            a.setflags(write=False)
        self.Z0, self.C, self.Zs, self.drive = arrs

    @property
    def n(self) -> int:
        return self.C.shape[2]

    @property
    def L(self) -> int:
        return self.C.shape[1]

    @property
    def dtype(self) -> np.dtype:
        return self.C.dtype

    @property
    def ts(self) -> np.ndarray:
        """The node times."""
        return uniform_grid(float(self.t0), float(self.t1), self.C.shape[0] - 1)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.Z0, self.C, self.Zs, self.drive))

    def _coef(self, t):
        return interp_nodes(jnp.asarray(self.C), t, self.t0, self.t1)

    def drive_at(self, t):
        return interp_nodes(jnp.asarray(self.drive), t, self.t0, self.t1)

    def _field(self, t, Z, k=None):
        C = jnp.asarray(self.C)[k] if k is not None else self._coef(t)
        d = jnp.asarray(self.drive)[k] if k is not None else self.drive_at(t)
        G = self.activation.g(Z)
        return -Z + dyn.gram(G) @ C + d

    def _states_jax(self, t):
        """Z(t) by cubic Hermite interpolation of the node states (O(h^4) accurate)."""
        T = self.C.shape[0]
        u = (t - self.t0) / (self.t1 - self.t0) * (T - 1)
        i = jnp.clip(jnp.floor(u).astype(jnp.int32), 0, T - 2)
        s = u - i
        h = (self.t1 - self.t0) / (T - 1)
        Zs = jnp.asarray(self.Zs)
        Za, Zb = Zs[i], Zs[i + 1]
        Fa, Fb = self._field(None, Za, i), self._field(None, Zb, i + 1)
        return ((2 * s**3 - 3 * s**2 + 1) * Za + (s**3 - 2 * s**2 + s) * h * Fa
                + (-2 * s**3 + 3 * s**2) * Zb + (s**3 - s**2) * h * Fb)

    def weights_at(self, t):
        return self._coef(t).T @ self.activation.g(self._states_jax(t))

    def states(self, t) -> np.ndarray:
        """States Z(t) of the training system S, (L, n), at a time t in [t0, t1]."""
        (tt,) = np.atleast_1d(self._times(t, "t"))
        return np.asarray(_states(self, jnp.asarray(tt, self.dtype)))

    def _grid(self) -> np.ndarray:
        return uniform_grid(float(self.t0), float(self.t1), self.solver.steps)

    def _run(self, Zq0, ts):
        grid = None if self.solver.adaptive else jnp.asarray(self._grid(), self.dtype)
        ys, ok, fin = _run_queries(self, Zq0, grid, save_times(ts, self.t1, self.dtype))
        raise_if_failed(ok, fin, ts, "running the network")
        return np.asarray(ys)

    def _file_contents(self):
        tensors = {"Z0": self.Z0, "C": self.C, "Zs": self.Zs, "drive": self.drive}
        return tensors, {"L": str(self.L), "stats": stats_json(self.stats)}

    @classmethod
    def _from_file(cls, tensors, meta, common):
        require(meta, tensors, ("L",), ("Z0", "C", "Zs", "drive"))
        Z0, C, Zs, drive = (tensors[k] for k in ("Z0", "C", "Zs", "drive"))
        L, n = int(meta["L"]), int(meta["n"])
        if C.ndim != 3 or C.shape[1:] != (L, n) or Z0.shape != (L, n) or Zs.shape != C.shape \
                or drive.shape != (C.shape[0], n):
            raise ProgramFileError("program file arrays have inconsistent shapes")
        return cls(Z0=Z0, C=C, Zs=Zs, drive=drive, stats=json.loads(meta.get("stats", "{}")),
                   **common)


@eqx.filter_jit
def _states(prog: FeedbackProgram, t):
    return prog._states_jax(t)


@eqx.filter_jit
def _run_queries(prog: FeedbackProgram, Zq0, grid, save_ts):
    """Queries through N under W(t) = C^T g(Z), integrated jointly with S (eq. 21)."""

    def field(t, y, args):
        Z, X = y
        C, d = prog._coef(t), prog.drive_at(t)
        G = prog.activation.g(Z)
        dZ = -Z + dyn.gram(G) @ C + d
        dX = -X + (prog.activation.g(X) @ G.T) @ C + d
        return dZ, dX

    y0 = (jnp.asarray(prog.Z0), Zq0)
    ys, ok, _ = solve(field, y0, prog.t0, prog.t1, None, prog.solver, step_ts=grid,
                      save_ts=save_ts, save_fn=lambda t, y, args: y[1])
    return ys, ok, finite_rows(ys)
