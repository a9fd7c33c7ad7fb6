r"""Weight programs: W(t) on [t0, t1], running the network N under it, saving and loading.

* :class:`WeightProgram`, the optimal program found by :func:`~weightsynth.synthesize`. It
  stores (Z0, Theta) and the closed-loop trajectory in reduced coordinates A(t) (L x L) when
  L <= n, or Z(t) (L x n) when L > n: O(nL + T min(n, L) L) numbers, never O(T n^2).
  W(t) = beta Theta^T g(Z(t)) (eq. 7) is rebuilt on demand.
* :class:`ConstantProgram`, a fixed matrix W (for example the outer-product rule).

Every program offers ``weights(t)``, ``trajectory(x, ts)``, ``recall(x)``, ``save(path)`` and
``Program.load(path)``; inputs x are network *outputs* at t0, one query per row.
"""

from __future__ import annotations

import dataclasses
import json
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._validation import as_matrix, check_times
from .._version import __version__
from ..errors import ProgramFileError
from ..formats.program_file import load_program_file, require, save_program_file
from . import dynamics as dyn
from .activations import Activation, get_activation
from .interpolation import (
    capacity,
    error_ratios,
    hermite,
    interval_errors,
    pad,
    relative_excess_estimate,
)
from .ode import SolverConfig, finite_rows, raise_if_failed, solve, uniform_grid


class Program(eqx.Module):
    """Base class: a weight program W(t) on [t0, t1] for the network N with activation g.

    Programs are immutable equinox modules: their arrays are traced leaves, so one
    compiled function serves every program of the same shapes.
    """

    kind = "abstract"

    @property
    def n(self) -> int:
        raise NotImplementedError

    @property
    def dtype(self) -> np.dtype:
        raise NotImplementedError

    def _weights_jax(self, t):
        """W(t) as a traceable JAX function of a scalar t."""
        raise NotImplementedError

    def _check_t(self, t, name="t") -> np.ndarray:
        return check_times(np.atleast_1d(np.asarray(t, dtype=np.float64)), self.t0, self.t1,
                           name)

    def weights(self, t) -> np.ndarray:
        """W(t): an (n, n) array for a scalar t, or (len(t), n, n) for a 1-D array of times."""
        scalar = np.ndim(t) == 0
        ts = self._check_t(t) if scalar else check_times(t, self.t0, self.t1, "t")
        out = np.asarray(_weights_many(traced(self), jnp.asarray(ts, self.dtype)))
        return out[0] if scalar else out

    def _queries(self, x) -> np.ndarray:
        arr = as_matrix(x, "x", n=self.n)
        self.activation.check_in_range(arr, "x")
        return arr.astype(self.dtype)

    def trajectory(self, x, ts) -> np.ndarray:
        """States z(t) of N run from outputs ``x`` (B, n) at t0: shape (len(ts), B, n)."""
        ts = check_times(ts, self.t0, self.t1, "ts")
        Zq0 = self.activation.ginv(jnp.asarray(self._queries(x)))
        return self._run(Zq0, ts)

    def recall(self, x) -> np.ndarray:
        """Outputs g(z(t1)) of N run from outputs ``x`` (B, n) at t0: shape (B, n)."""
        z1 = self.trajectory(x, np.array([self.t1]))[0]
        return np.asarray(self.activation.g(jnp.asarray(z1)))

    def _run(self, Zq0, ts: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ---- files -------------------------------------------------------------------------
    def _file_contents(self) -> tuple[dict, dict]:
        raise NotImplementedError

    def save(self, path) -> None:
        """Save to one pickle-free safetensors file (see :mod:`weightsynth.storage`)."""
        tensors, meta = self._file_contents()
        base = {"kind": self.kind, "weightsynth_version": __version__,
                "activation": self.activation.name, "gain": repr(self.activation.gain),
                "t0": repr(self.t0), "t1": repr(self.t1), "n": str(self.n),
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
        sub = _KINDS.get(meta["kind"])
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


def traced(prog: Program) -> Program:
    """``prog`` with its scalars (beta, t0, t1) as 0-d arrays and no solver stats.

    ``eqx.filter_jit`` treats Python floats as static, so passing ``prog`` itself would
    compile afresh for every beta, t0, t1 (and step count); this compiles once per shape.
    Stored trajectories are padded to a bucketed length, so the number of solver steps
    does not change the shapes either.
    """
    names = {f.name for f in dataclasses.fields(prog)}
    new = {k: jnp.asarray(getattr(prog, k)) for k in ("beta", "t0", "t1")
           if k in names and isinstance(getattr(prog, k), float)}
    if "stats" in names:
        new["stats"] = {}
    out = dataclasses.replace(prog, **new)
    return out._padded() if hasattr(out, "_padded") else out


@eqx.filter_jit
def _weights_many(prog: Program, ts):
    return jax.vmap(prog._weights_jax)(ts)


# ---------------------------------------------------------------------------------------
class WeightProgram(Program):
    r"""The optimal weight program W*(t) = beta Theta^T g(Z(t)) (derivation eq. 7).

    Attributes: ``activation``, ``beta``, ``t0``, ``t1``, ``Z0`` = g^{-1}(inputs) (L, n),
    ``Theta`` = targets (L, n), ``ts`` (T,) the stored times, ``X`` (T, L, L) reduced
    coordinates A(t) if ``coords == "reduced"``, or (T, L, n) states Z(t) if
    ``coords == "direct"``, ``solver`` the integration settings (reused by ``recall``), and
    ``stats`` (solver steps taken).

    The four arrays are (immutable) JAX arrays on the device that computed or loaded them:
    a program synthesized on a GPU stays there, and recall runs there without copying it
    back and forth. ``np.asarray(prog.X)`` gives a host copy.
    """

    activation: Activation
    beta: float
    t0: float
    t1: float
    Z0: jax.Array
    Theta: jax.Array
    ts: jax.Array
    X: jax.Array
    coords: str
    solver: SolverConfig
    stats: dict = eqx.field(default_factory=dict)
    kind = "optimal"

    def __post_init__(self):
        for name in ("Z0", "Theta", "ts", "X"):
            value = getattr(self, name)
            arr = jnp.asarray(value)
            if arr.dtype != np.dtype(value.dtype):
                raise ValueError(
                    f"the program's {name} is {np.dtype(value.dtype)}, which JAX holds only "
                    "with 64-bit mode on: call jax.config.update('jax_enable_x64', True) first"
                )
            setattr(self, name, arr)

    @property
    def n(self) -> int:
        return self.Theta.shape[1]

    @property
    def L(self) -> int:
        return self.Theta.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.Theta.dtype

    @property
    def nbytes(self) -> int:
        """Bytes held by the program's arrays."""
        return sum(a.nbytes for a in (self.Z0, self.Theta, self.ts, self.X))

    def _to_states(self, t, X):
        if self.coords == "reduced":
            return dyn.reduced_states(t, X, self.Z0, self.Theta, self.t0)
        return X

    def _field(self, t, X):
        Z = self._to_states(t, X)
        K = dyn.gram(self.activation.g(Z))
        rhs = K if self.coords == "reduced" else K @ self.Theta
        return -X + self.beta * rhs

    def _states_jax(self, t):
        """Z(t) by cubic Hermite interpolation between the stored solver steps."""
        X = hermite(jnp.asarray(self.ts), jnp.asarray(self.X), self._field, t)
        return self._to_states(t, X)

    def _padded(self) -> WeightProgram:
        """The program with ``ts`` and ``X`` padded to a bucketed length (for compiled code)."""
        ts, X = pad(self.ts, self.X, capacity(self.ts.shape[0]))
        return dataclasses.replace(self, ts=ts, X=X)

    def interval_errors(self) -> tuple[np.ndarray, np.ndarray]:
        """Per stored interval: the estimated interpolation error in the solver's norm
        (1 = the tolerance ``rtol``/``atol``), and the error it makes in W (Frobenius)."""
        T = self.ts.shape[0]
        ratio, dW = _defects(traced(self), self.solver.rtol, self.solver.atol)
        return np.asarray(ratio)[: T - 1], np.asarray(dW)[: T - 1]

    def interpolation_excess(self) -> float:
        """Estimated relative excess (J - J*)/|J*| that interpolating between stored times costs.

        An a-posteriori estimate from the defect of the interpolant (see
        :func:`weightsynth.core.interpolation.interval_errors`), not a bound.
        """
        J_star = -float(jnp.sum(self.Z0 * self.Theta))
        return relative_excess_estimate(self.ts, self.interval_errors()[1], self.beta, J_star)

    def _weights_jax(self, t):
        return dyn.optimal_weights(self._states_jax(t), self.Theta, self.beta, self.activation)

    def states(self, t) -> np.ndarray:
        """States Z(t) of the formal system S, (L, n), at a time t in [t0, t1]."""
        (tt,) = self._check_t(t)
        return np.asarray(_states(traced(self), jnp.asarray(tt, self.dtype)))

    def _run(self, Zq0, ts):
        B, n, L = Zq0.shape[0], self.n, self.L
        dense = 2 * n * n * L + 2 * B * n * n < 4 * B * L * n
        grid = None if self.solver.adaptive else jnp.asarray(self.ts, self.dtype)
        save_ts = jnp.asarray(ts, self.dtype)
        ys, ok, fin = _run_queries(
            Zq0, jnp.asarray(self.X[0]), jnp.asarray(self.Z0), jnp.asarray(self.Theta),
            self.beta, self.t0, self.t1, grid, save_ts, act=self.activation,
            coords=self.coords, cfg=self.solver, dense=dense,
        )
        raise_if_failed(ok, fin, ts, "running the network")
        return np.asarray(ys)

    def _file_contents(self):
        tensors = {k: np.asarray(getattr(self, k)) for k in ("Z0", "Theta", "ts", "X")}
        meta = {"beta": repr(self.beta), "L": str(self.L), "coords": self.coords,
                "stats": json.dumps(self.stats)}
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


@eqx.filter_jit
def _states(prog: WeightProgram, t):
    return prog._states_jax(t)


@eqx.filter_jit
def _defects(prog: WeightProgram, rtol, atol):
    err, tq, Xq = interval_errors(prog.ts, prog.X, prog._field)

    def dW(t, Xs, e):
        Z, Ze = prog._to_states(t, Xs), prog._to_states(t, Xs + e)
        D = dyn.optimal_weights(Ze, prog.Theta, prog.beta, prog.activation) \
            - dyn.optimal_weights(Z, prog.Theta, prog.beta, prog.activation)
        return jnp.sqrt(jnp.sum(D * D))

    return error_ratios(err, prog.X, rtol, atol), jax.vmap(dW)(tq, Xq, err)


@partial(jax.jit, static_argnames=("act", "coords", "cfg", "dense"))
def _run_queries(Zq0, Xp0, Z0, Theta, beta, t0, t1, grid, save_ts, *, act, coords, cfg, dense):
    """Queries through N under W*(t), integrated jointly with S so W*(t) is exact (eq. 11)."""

    def field(t, y, args):
        Xp, Xq = y
        Z = dyn.reduced_states(t, Xp, Z0, Theta, t0) if coords == "reduced" else Xp
        G = act.g(Z)
        K = dyn.gram(G)
        dXp = -Xp + beta * (K if coords == "reduced" else K @ Theta)
        return dXp, dyn.query_rhs(Xq, G, Theta, beta, act, dense=dense)

    ys, ok, _ = solve(field, (Xp0, Zq0), t0, t1, None, cfg, step_ts=grid, save_ts=save_ts,
                      save_fn=lambda t, y, args: y[1])
    return ys, ok, finite_rows(ys)


# ---------------------------------------------------------------------------------------
class ConstantProgram(Program):
    """A constant weight matrix W on [t0, t1], e.g. the outer-product rule."""

    W: np.ndarray
    activation: Activation = Activation("tanh")
    t0: float = 0.0
    t1: float = 1.0
    solver: SolverConfig = SolverConfig()
    kind = "constant"

    def __post_init__(self):
        W = as_matrix(self.W, "W")
        if W.shape[0] != W.shape[1]:
            raise ValueError(f"W must be square (n, n), got shape {W.shape}")
        W = np.array(W)
        W.setflags(write=False)
        self.W = W
        self.activation = get_activation(self.activation)

    @property
    def n(self) -> int:
        return self.W.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.W.dtype

    def _weights_jax(self, t):
        return jnp.asarray(self.W)

    def _run(self, Zq0, ts):
        return simulate_network(self, Zq0, ts)

    def _file_contents(self):
        return {"W": self.W}, {}

    @classmethod
    def _from_file(cls, tensors, meta, common):
        require(meta, tensors, (), ("W",))
        if tensors["W"].shape != (int(meta["n"]),) * 2:
            raise ProgramFileError("program file arrays have inconsistent shapes")
        return cls(W=tensors["W"], **common)


def simulate_network(prog: Program, Zq0, ts: np.ndarray) -> np.ndarray:
    """Run N, dz/dt = -z + W(t) g(z), under any program's W(t); states at ``ts``."""
    cfg = prog.solver
    grid = None if cfg.adaptive else jnp.asarray(uniform_grid(prog.t0, prog.t1, cfg.steps),
                                                 prog.dtype)
    ys, ok, fin = _simulate(traced(prog), Zq0, grid, jnp.asarray(ts, prog.dtype))
    raise_if_failed(ok, fin, ts, "running the network")
    return np.asarray(ys)


@eqx.filter_jit
def _simulate(prog: Program, Zq0, grid, save_ts):
    def field(t, Z, args):
        return dyn.network_rhs(Z, prog._weights_jax(t), prog.activation)

    ys, ok, _ = solve(field, Zq0, prog.t0, prog.t1, None, prog.solver, step_ts=grid,
                      save_ts=save_ts)
    return ys, ok, finite_rows(ys)


_KINDS: dict[str, type[Program]] = {"optimal": WeightProgram, "constant": ConstantProgram}


def load_program(path) -> Program:
    """Load any saved program (optimal, constant, ...)."""
    return Program.load(path)
