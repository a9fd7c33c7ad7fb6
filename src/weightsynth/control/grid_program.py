r"""A weight program stored on a time grid: the result of the general solvers.

W(t) is piecewise linear between the nodes t_0 < ... < t_{T-1} (uniform on [t0, t1]):

    W(t) = W_k + (t - t_k)/(t_{k+1} - t_k) (W_{k+1} - W_k),   t in [t_k, t_{k+1}],

and N runs as dz/dt = -z + W(t) g(z) + d(t), with d(t) = b + u(t) the network's input
(bias plus external input, zero by default) interpolated the same way.
"""

from __future__ import annotations

import json
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..core.activations import Activation
from ..core.ode import SolverConfig, uniform_grid
from ..core.program import Program, as_scalar, stats_arrays, stats_json
from ..errors import ProgramFileError
from ..formats.program_file import require


def interp_nodes(nodes, t, t0, t1):
    """Piecewise-linear interpolation of ``nodes`` (T, ...) on a uniform grid over [t0, t1]."""
    T = nodes.shape[0]
    u = (t - t0) / (t1 - t0) * (T - 1)
    k = jnp.clip(jnp.floor(u).astype(jnp.int32), 0, T - 2)
    s = u - k
    return nodes[k] + s * (nodes[k + 1] - nodes[k])


def resample_nodes(nodes, T: int):
    """Node values (T_c, ...) of a piecewise-linear function of (t - t0) / (t1 - t0), at T
    uniform nodes of the same span (the programs' own interpolation, :func:`interp_nodes`)."""
    if nodes.shape[0] == T:
        return nodes
    u = jnp.linspace(0.0, 1.0, T, dtype=nodes.dtype)
    return jax.vmap(lambda t: interp_nodes(nodes, t, 0.0, 1.0))(u)


class GridProgram(Program):
    """W(t) on a uniform grid of T nodes, piecewise linear (see the module docstring).

    Attributes: ``activation``, ``t0``, ``t1``, ``W`` (T, n, n) node values, ``drive``
    (T, n) the input d(t_k) = b + u(t_k) of N, ``solver`` (fixed steps on the nodes by
    default, reused by ``recall``), ``stats`` (free-form solver information).
    """

    activation: Activation
    t0: jax.Array
    t1: jax.Array
    W: np.ndarray
    drive: np.ndarray
    solver: SolverConfig
    stats: dict = eqx.field(default_factory=dict)
    kind: ClassVar[str] = "grid"

    def __post_init__(self):
        self.t0, self.t1 = as_scalar(self.t0), as_scalar(self.t1)
        self.stats = stats_arrays(self.stats)
        W = np.array(self.W)
        if W.ndim != 3 or W.shape[1] != W.shape[2] or W.shape[0] < 2:
            raise ValueError(f"W must have shape (T >= 2, n, n), got {W.shape}")
        if not np.isfinite(W).all():
            raise ValueError("W contains non-finite values")
        drive = np.array(self.drive, dtype=W.dtype)
        if drive.shape != W.shape[:2]:
            raise ValueError(f"drive must have shape {W.shape[:2]}, got {drive.shape}")
        W.setflags(write=False)
        drive.setflags(write=False)
        self.W, self.drive = W, drive

    @property
    def n(self) -> int:
        return self.W.shape[1]

    @property
    def dtype(self) -> np.dtype:
        return self.W.dtype

    @property
    def ts(self) -> np.ndarray:
        """The node times."""
        return uniform_grid(float(self.t0), float(self.t1), self.W.shape[0] - 1)

    def weights_at(self, t):
        return interp_nodes(jnp.asarray(self.W), t, self.t0, self.t1)

    def drive_at(self, t):
        return interp_nodes(jnp.asarray(self.drive), t, self.t0, self.t1)

    def _file_contents(self):
        return {"W": self.W, "drive": self.drive}, {"stats": stats_json(self.stats)}

    @classmethod
    def _from_file(cls, tensors, meta, common):
        require(meta, tensors, (), ("W", "drive"))
        W, drive = tensors["W"], tensors["drive"]
        n = int(meta["n"])
        if W.ndim != 3 or W.shape[1:] != (n, n) or drive.shape != W.shape[:2]:
            raise ProgramFileError("program file arrays have inconsistent shapes")
        return cls(W=W, drive=drive, stats=json.loads(meta.get("stats", "{}")), **common)

