r"""Weight programs: W(t) on [t0, t1], running the network N under it, saving and loading.

* :class:`Program`, the interface every program implements, and the file format's kind
  registry (a saved file names its class by a ``kind`` tag).
* :class:`ConstantProgram`, a fixed matrix W (for example the outer-product rule).
* The optimal program of the closed form is :class:`~weightsynth.core.optimal_program.
  WeightProgram`; the general solvers' programs live in :mod:`weightsynth.control`.

Every program offers ``weights(t)``, ``trajectory(x, ts)``, ``recall(x)``, ``save(path)`` and
``Program.load(path)``; inputs x are network *outputs* at t0, one query per row.
"""

from __future__ import annotations

import abc
import importlib.metadata
import json
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._cache import persistent_jit
from .._validation import as_matrix, check_interval, check_times, device_array
from .._version import __version__
from ..errors import ProgramFileError
from ..formats.program_file import load_program_file, require, save_program_file
from . import dynamics as dyn
from .activations import Activation, activations_of, get_activation, outputs
from .ode import SolverConfig, finite_rows, raise_if_failed, save_times, solve, uniform_grid


class Program(eqx.Module):
    """Abstract base: a weight program W(t) on [t0, t1] for the network N with activation g.

    Programs are immutable equinox modules. Everything that varies between programs of one
    shape (arrays, and the scalars t0, t1, beta, held as 0-d arrays) is a traced leaf, so
    one compiled function serves them all; the activation and the solver settings are
    static. A subclass gives ``n``, ``dtype``, the traceable :meth:`weights_at` and the two
    file hooks, and names its ``kind`` (the tag its files carry).
    """

    activation: eqx.AbstractVar[Activation]
    t0: eqx.AbstractVar[jax.Array]
    t1: eqx.AbstractVar[jax.Array]
    solver: eqx.AbstractVar[SolverConfig]
    kind: ClassVar[str]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if isinstance(kind, str):
            _KINDS[kind] = cls

    @property
    @abc.abstractmethod
    def n(self) -> int:
        """Number of neurons."""

    @property
    @abc.abstractmethod
    def dtype(self) -> np.dtype:
        """The float dtype the program computes in."""

    @abc.abstractmethod
    def weights_at(self, t) -> jax.Array:
        """W(t) (n, n) as a traceable JAX function of a scalar time."""

    def drive_at(self, t):
        """The network's input d(t) (bias plus external input) at a traceable time; 0 here."""
        return jnp.zeros((), self.dtype)

    def field(self, t, Z):
        r"""N's vector field under this program, eq. (1): dz/dt = -z + W(t) g(z) + d(t)."""
        return dyn.network_rhs(Z, self.weights_at(t), self.activation) + self.drive_at(t)

    @abc.abstractmethod
    def _file_contents(self) -> tuple[dict, dict]:
        """The arrays and the kind-specific metadata to save."""

    @classmethod
    @abc.abstractmethod
    def _from_file(cls, tensors: dict, meta: dict, common: dict) -> Program:
        """Rebuild a program from validated file contents (``common``: the shared fields)."""

    # ---- public API --------------------------------------------------------------------
    def _times(self, t, name: str) -> np.ndarray:
        return check_times(t, float(self.t0), float(self.t1), name)

    def weights(self, t) -> np.ndarray:
        """W(t): an (n, n) array for a scalar t, or (len(t), n, n) for a 1-D array of times."""
        ts = self._times(t, "t")
        out = np.asarray(_weights_many(self, device_array(ts, self.dtype)))
        return out[0] if np.ndim(t) == 0 else out

    def _queries(self, x) -> np.ndarray:
        arr = as_matrix(x, "x", n=self.n)
        self.activation.check_in_range(arr, "x")
        return arr.astype(self.dtype)

    def trajectory(self, x, ts) -> np.ndarray:
        """States z(t) of N run from outputs ``x`` (B, n) at t0: shape (len(ts), B, n)."""
        ts = self._times(ts, "ts")
        Zq0 = activations_of(self.activation, device_array(self._queries(x)))
        return self._run(Zq0, ts)

    def recall(self, x) -> np.ndarray:
        """Outputs g(z(t1)) of N run from outputs ``x`` (B, n) at t0: shape (B, n)."""
        z1 = self.trajectory(x, np.array([float(self.t1)]))[0]
        return np.asarray(outputs(self.activation, device_array(z1)))

    def _run(self, Zq0, ts: np.ndarray) -> np.ndarray:
        """States of N from activations ``Zq0`` at ``ts``: :func:`simulate_network`."""
        return simulate_network(self, Zq0, ts)

    # ---- files -------------------------------------------------------------------------
    def save(self, path) -> None:
        """Save to one pickle-free safetensors file (see :mod:`weightsynth.formats`)."""
        tensors, meta = self._file_contents()
        base = {"kind": self.kind, "weightsynth_version": __version__,
                "activation": self.activation.name, "gain": repr(self.activation.gain),
                "t0": repr(float(self.t0)), "t1": repr(float(self.t1)), "n": str(self.n),
                "dtype": str(np.dtype(self.dtype)), "solver": json.dumps(self.solver.as_dict())}
        save_program_file(path, tensors, {**base, **meta})

    @classmethod
    def load(cls, path) -> Program:
        """Load a program saved by :meth:`save`; the file is validated first."""
        tensors, meta = load_program_file(path)
        try:
            require(meta, tensors, ("kind", "activation", "gain", "t0", "t1", "n", "solver"),
                    ())
        except ProgramFileError as exc:
            raise ProgramFileError(f"{str(path)!r}: {exc}") from None
        if meta.get("dtype") == "float64" and not jax.config.jax_enable_x64:
            raise ValueError(
                f"{str(path)!r} holds a float64 program, which JAX holds only with 64-bit "
                "mode on: call jax.config.update('jax_enable_x64', True) first"
            )
        sub = program_kind(meta["kind"])
        if sub is None:
            raise ProgramFileError(f"unknown program kind {meta['kind']!r} in {str(path)!r}")
        if not issubclass(sub, cls):
            raise ProgramFileError(
                f"{str(path)!r} holds a {sub.__name__}, not a {cls.__name__}; "
                "use weightsynth.load_program"
            )
        try:
            common = dict(
                activation=get_activation(meta["activation"], float(meta["gain"])),
                t0=float(meta["t0"]), t1=float(meta["t1"]),
                solver=SolverConfig(**json.loads(meta["solver"])),
            )
            return sub._from_file(tensors, meta, common)
        except ProgramFileError as exc:
            raise ProgramFileError(f"{str(path)!r}: {exc}") from None
        except (ValueError, TypeError, KeyError) as exc:
            raise ProgramFileError(f"{str(path)!r} holds an invalid program: {exc}") from None


#: kind -> class, filled as subclasses are defined (Program.__init_subclass__)
_KINDS: dict[str, type[Program]] = {}
#: where installed packages declare further kinds (pyproject.toml), loaded on first use
KIND_ENTRY_POINTS = "weightsynth.programs"


def program_kind(kind: str) -> type[Program] | None:
    """The class for a file's ``kind`` tag: defined already, or declared as an entry point."""
    if kind not in _KINDS:
        for ep in importlib.metadata.entry_points(group=KIND_ENTRY_POINTS):
            if ep.name == kind:
                ep.load()  # defining the class registers it
    return _KINDS.get(kind)


def as_scalar(value) -> jax.Array:
    """A 0-d array for a program's scalar field (t0, t1, beta): a traced leaf, not static.

    Always weakly typed (from a Python float), so it never promotes a float32 program and
    every program of one shape has the same abstract signature.
    """
    return device_array(float(value))


def stats_arrays(stats: dict) -> dict:
    """Solver statistics with numbers as 0-d arrays: traced leaves, so a new step count
    never recompiles. Strings (a stop reason) stay, and are static: keep them few-valued."""
    return {str(k): v if isinstance(v, str) else device_array(v) for k, v in dict(stats).items()}


def stats_json(stats: dict) -> str:
    """Solver statistics as JSON (for files)."""
    return json.dumps({k: v if isinstance(v, str) else np.asarray(v).item()
                       for k, v in stats.items()})


@persistent_jit
def _weights_many(prog: Program, ts):
    return jax.vmap(prog.weights_at)(ts)


# ---------------------------------------------------------------------------------------
class ConstantProgram(Program):
    """A constant weight matrix W on [t0, t1], e.g. the outer-product rule."""

    W: np.ndarray
    activation: Activation
    t0: jax.Array
    t1: jax.Array
    solver: SolverConfig
    kind: ClassVar[str] = "constant"

    def __init__(self, W, activation: str | Activation = "tanh", t0: float = 0.0,
                 t1: float = 1.0, solver: SolverConfig | None = None):
        W = np.array(as_matrix(W, "W"))
        if W.shape[0] != W.shape[1]:
            raise ValueError(f"W must be square (n, n), got shape {W.shape}")
        W.setflags(write=False)
        self.W = W
        self.activation = get_activation(activation)
        t0, t1 = check_interval(t0, t1)
        self.t0, self.t1 = as_scalar(t0), as_scalar(t1)
        self.solver = solver if solver is not None else SolverConfig()

    @property
    def n(self) -> int:
        return self.W.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.W.dtype

    def weights_at(self, t):
        return jnp.asarray(self.W)

    def _file_contents(self):
        return {"W": self.W}, {}

    @classmethod
    def _from_file(cls, tensors, meta, common):
        require(meta, tensors, (), ("W",))
        if tensors["W"].shape != (int(meta["n"]),) * 2:
            raise ProgramFileError("program file arrays have inconsistent shapes")
        return cls(W=tensors["W"], **common)


def simulate_network(prog: Program, Zq0, ts: np.ndarray) -> np.ndarray:
    """Run N, dz/dt = -z + W(t) g(z) + d(t) (eq. 1), under any program; states at ``ts``.

    Fixed-step solvers step on ``uniform_grid(t0, t1, steps)``; the one loop that every
    program without a faster form of its own runs through.
    """
    cfg = prog.solver
    grid = None if cfg.adaptive else device_array(
        uniform_grid(float(prog.t0), float(prog.t1), cfg.steps), prog.dtype)
    ys, ok, fin = _simulate(prog, Zq0, grid, save_times(ts, prog.t1, prog.dtype))
    raise_if_failed(ok, fin, ts, "running the network")
    return np.asarray(ys)


@persistent_jit
def _simulate(prog: Program, Zq0, grid, save_ts):
    ys, ok, _ = solve(lambda t, Z, args: prog.field(t, Z), Zq0, prog.t0, prog.t1, None,
                      prog.solver, step_ts=grid, save_ts=save_ts)
    return ys, ok, finite_rows(ys)


def load_program(path) -> Program:
    """Load any saved program (optimal, constant, grid, ...)."""
    return Program.load(path)
