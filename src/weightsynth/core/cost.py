r"""The performance index J (eq. 3) of any weight program, and its excess cost (eq. 8).

For any program W(t), integrating N for every training sample under that W gives

    J[W] = - sum_r z_r(t1).theta_r
           + 1/2 int ( -2 sum_r z_r.theta_r + beta ||M||_F^2 + (1/beta) ||W||_F^2 ) dt,

with M(t) = Theta^T g(Z(t)), and the identity (derivation eq. 8)

    J[W] = J* + (1/(2 beta)) int ||W - beta M||_F^2 dt,    J* = - sum_r g^{-1}(phi_r).theta_r.

This module integrates both integrals as part of the ODE state, on its own code path
(N with W(t) taken from the program, never the synthesis' closed loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._cache import persistent_jit
from .._deprecation import positional_deprecated
from .._validation import (
    as_matrix,
    check_interval,
    check_pair,
    check_positive,
    device_array,
    resolve_dtype,
)
from . import dynamics as dyn
from .activations import Activation, activations_of, get_activation
from .ode import (
    INDEX_ATOL,
    INDEX_RTOL,
    SolverConfig,
    diffrax,
    raise_if_failed,
    solve,
    solver_config,
    uniform_grid,
)
from .program import ConstantProgram, Program, as_scalar


@dataclass(frozen=True)
class IndexResult:
    """J and its parts. ``J == J_star + excess`` up to integration error."""

    J: float
    J_star: float
    excess: float
    terminal: float
    running: float


def optimal_cost(inputs, targets, activation: str | Activation = "tanh", *,
                 gain: float | None = None) -> float:
    r"""J* = - sum_r g^{-1}(phi_r).theta_r, the global minimum of J (derivation eq. 8)."""
    phi, theta = check_pair(inputs, targets)
    act = get_activation(activation, gain)
    act.check_in_range(phi, "inputs")
    return float(-np.sum(np.asarray(activations_of(act, device_array(phi))) * theta))


class _CallableProgram(Program):
    """Wraps a user callable t -> (n, n) as a program, for the index only (no file kind)."""

    fn: object  # a pytree leaf: a callable module's arrays are traced, never static
    size: int = eqx.field(static=True)
    activation: Activation
    t0: jax.Array
    t1: jax.Array
    solver: SolverConfig
    dtype_: np.dtype = eqx.field(static=True)

    def __post_init__(self):
        self.t0, self.t1 = as_scalar(self.t0), as_scalar(self.t1)

    @property
    def n(self) -> int:
        return self.size

    @property
    def dtype(self):
        return self.dtype_

    def weights_at(self, t):
        return jnp.asarray(self.fn(t), self.dtype_)

    def _file_contents(self):
        raise TypeError("a weight callable cannot be saved; synthesize a program instead")

    @classmethod
    def _from_file(cls, tensors, meta, common):
        raise TypeError("a weight callable has no file form")


def _as_program(program, n, act, t0, t1, dt) -> Program:
    if isinstance(program, Program):
        return program
    if callable(program):
        shape = jax.eval_shape(lambda t: jnp.asarray(program(t)), jnp.asarray(t0, dt)).shape \
            if _traceable(program, t0) else np.shape(program(t0))
        if tuple(shape) != (n, n):
            raise ValueError(f"the weight callable must return an ({n}, {n}) array, got {shape}")
        fn = program if _traceable(program, t0) else _host_callback(program, n, dt)
        return _CallableProgram(fn=fn, size=n, activation=act, t0=t0, t1=t1, solver=SolverConfig(),
                                dtype_=np.dtype(dt))
    W = as_matrix(program, "program")
    if W.shape != (n, n):
        raise ValueError(f"a constant program must be ({n}, {n}), got {W.shape}")
    return ConstantProgram(W=W.astype(dt), activation=act, t0=t0, t1=t1)


def _traceable(fn, t0) -> bool:
    try:
        jax.eval_shape(lambda t: jnp.asarray(fn(t)), jnp.asarray(t0))
        return True
    except Exception:  # noqa: BLE001 - anything a non-JAX callable raises under tracing
        return False


def _host_callback(fn, n, dt):
    shape = jax.ShapeDtypeStruct((n, n), dt)
    return lambda t: jax.pure_callback(lambda tt: np.asarray(fn(float(tt)), dt), shape, t)


@positional_deprecated("beta", "t1", "t0", "activation")
def evaluate_index(
    program, inputs, targets, *, beta: float | None = None, t0: float | None = None,
    t1: float | None = None, activation: str | Activation | None = None,
    gain: float | None = None, solver: str | SolverConfig = "tsit5", steps: int | None = None,
    rtol: float = INDEX_RTOL, atol: float = INDEX_ATOL, max_steps: int = 100_000, dtype=None,
) -> IndexResult:
    """J (eq. 3), J* and the excess cost of ``program`` against a training set.

    ``program`` is a :class:`Program`, a callable t -> (n, n) array, or a constant (n, n)
    array. ``beta``, ``t0``, ``t1`` and ``activation`` (with ``gain``) default to the
    program's own. The default tolerances are 100 times tighter than synthesis' (see
    :mod:`weightsynth.core.ode`): the index measures the synthesis error, so it must
    resolve it. ``solver`` is a solver name or a whole :class:`SolverConfig`.
    """
    phi, theta = check_pair(inputs, targets)
    own = program if isinstance(program, Program) else None
    beta = check_positive(beta if beta is not None else getattr(own, "beta", None), "beta")
    t0 = t0 if t0 is not None else (float(own.t0) if own else 0.0)
    t1 = t1 if t1 is not None else (float(own.t1) if own else None)
    t0, t1 = check_interval(t0, t1)
    act = (get_activation(activation, gain) if activation is not None else
           own.activation if own is not None else get_activation("tanh", gain))
    act.check_in_range(phi, "inputs")
    if own is not None and own.n != phi.shape[1]:
        raise ValueError(f"the program has n = {own.n} neurons but inputs have {phi.shape[1]}")
    if own is not None and (t0 < float(own.t0) - 1e-12 or t1 > float(own.t1) + 1e-12):
        raise ValueError(f"[t0, t1] = [{t0}, {t1}] exceeds the program's "
                         f"[{float(own.t0)}, {float(own.t1)}]")
    dt = resolve_dtype(dtype, inputs, targets)
    prog = _as_program(program, phi.shape[1], act, t0, t1, dt)
    cfg = solver_config(solver, steps=steps, rtol=rtol, atol=atol, max_steps=max_steps)
    grid = uniform_grid(t0, t1, cfg.steps or 1)
    Z0 = activations_of(act, device_array(phi, dt))
    Theta = device_array(theta, dt)
    args = (prog, Z0, Theta, np.asarray(beta, dt), np.asarray(t0, dt), np.asarray(t1, dt),
            np.asarray(grid, dt))
    out, ok = _integrate_index(*args, act, cfg)
    if not (bool(ok) and all(np.isfinite(np.asarray(x)).all() for x in out)):
        # rare: solve again, recording where the state was still finite, to say when
        probe = np.linspace(t0, t1, _N_PROBES)
        fin = _finite_at(*args, np.asarray(probe, dt), act, cfg)
        raise_if_failed(False, fin, probe, "evaluating the index (solve of N)")
    Z1, run2, exc2 = (np.asarray(x) for x in out)
    terminal = -float(np.sum(Z1 * theta))
    running = 0.5 * float(run2)
    J_star = float(-np.sum(np.asarray(Z0) * theta))
    return IndexResult(J=terminal + running, J_star=J_star, excess=float(exc2) / (2 * beta),
                       terminal=terminal, running=running)


def _index_field(prog, Theta, beta, act):
    """N under the program's W(t), with the running cost and the excess (eq. 8) as states."""
    def field(t, y, args):
        Z, _, _ = y
        W = prog.weights_at(t)
        G = act.g(Z)
        M = Theta.T @ G
        dZ = dyn.network_rhs(Z, W, act)
        running = -2 * jnp.sum(Z * Theta) + beta * jnp.sum(M * M) + jnp.sum(W * W) / beta
        excess = jnp.sum((W - beta * M) ** 2)
        return dZ, running, excess

    return field


@persistent_jit
def _integrate_index(prog, Z0, Theta, beta, t0, t1, grid, act, cfg):
    """(Z(t1), 2 x the running integral, 2 beta x the excess) and whether the solve
    succeeded. Only the end is saved: each saved series costs the compiled solve an
    interpolation loop."""
    zero = jnp.zeros((), Z0.dtype)
    saveat = diffrax().SaveAt(t1=True)
    ys, ok, _ = solve(_index_field(prog, Theta, beta, act), (Z0, zero, zero), t0, t1, None,
                      cfg, step_ts=None if cfg.adaptive else grid, saveat=saveat)
    return jax.tree_util.tree_map(lambda y: y[-1], ys), ok


#: times at which a failed index solve is probed for a finite state (to say when it blew
#: up without storing the trajectory)
_N_PROBES = 65


def _all_finite(t, y, args):
    # 1.0 where finite; a float, because diffrax fills unreached save times with inf
    ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(y)]))
    return jnp.where(ok, 1.0, 0.0)


@eqx.filter_jit
def _finite_at(prog, Z0, Theta, beta, t0, t1, grid, probe, act, cfg):
    """Per time of ``probe``, whether the index solve's state is still finite there."""
    zero = jnp.zeros((), Z0.dtype)
    saveat = diffrax().SaveAt(ts=probe, fn=_all_finite)
    finite, _, _ = solve(_index_field(prog, Theta, beta, act), (Z0, zero, zero), t0, t1,
                         None, cfg, step_ts=None if cfg.adaptive else grid, saveat=saveat)
    return finite == 1.0


@positional_deprecated("beta", "t1")
def performance_index(program, inputs, targets, **kwargs) -> float:
    """The paper's index J (eq. 3) of ``program`` against the training set (a float);
    keyword arguments as :func:`evaluate_index`."""
    return evaluate_index(program, inputs, targets, **kwargs).J


@positional_deprecated("beta", "t1")
def excess_cost(program, inputs, targets, **kwargs) -> float:
    r"""(1/(2 beta)) int ||W - beta M||_F^2 dt: how far J[W] lies above J* (eq. 8);
    keyword arguments as :func:`evaluate_index`."""
    return evaluate_index(program, inputs, targets, **kwargs).excess
