r"""The general optimal-control problem of the formal system S (derivation section 7).

One weight program W(t) (n x n) is shared by L copies of a state equation, samples as rows:

    dz_r/dt = f(z_r, W, t),   z_r(t0) = g^{-1}(phi_r),          r = 1..L

and W minimizes

    J[W] = phi(Z(t1), Theta) + int_{t0}^{t1} ( l(Z, W, t, Theta) + (1/(2 beta)) ||W||_F^2 ) dt.

Its Hamiltonian (derivation eq. 15) is

    H = l(Z, W, t, Theta) + (1/(2 beta)) ||W||^2 + sum_r lambda_r . f(z_r, W, t).

State equations (:class:`Dynamics`): the paper's network ``-z + W g(z)`` with an optional
bias b and external input u(t) (:class:`NetworkDynamics`); a network driven by given signals
``-z + W x_r(t) + b + u(t)``, linear in (z, W) (:class:`DrivenDynamics`); or any JAX function
f(Z, W, t) (:class:`CustomDynamics`). Indices (:class:`Index`): :func:`paper_index` (eq. 3),
:func:`terminal_correlation` and :func:`terminal_squared_error`; the weight penalty is always
added by :class:`Problem`.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._validation import as_matrix, check_interval, check_pair, check_positive, resolve_dtype
from ..core.activations import Activation, get_activation
from .indices import _INDICES, Index, paper_index


# ---- state equations ----------------------------------------------------------------------
class Dynamics(eqx.Module):
    """A state equation f(Z, W, t) -> (L, n), applied row-wise with one shared W."""

    def __call__(self, Z, W, t):
        raise NotImplementedError

    def offset(self, t):
        """b + u(t), the state-independent input of N (zeros if none)."""
        raise NotImplementedError


class _Affine(Dynamics):
    bias: np.ndarray | None
    drive: Callable | None

    def offset(self, t):
        out = 0.0 if self.bias is None else jnp.asarray(self.bias)
        if self.drive is not None:
            out = out + jnp.asarray(self.drive(t))
        return out


class NetworkDynamics(_Affine):
    r"""The paper's network, eq. (1), plus input: dz/dt = -z + W g(z) + b + u(t)."""

    activation: Activation

    def __call__(self, Z, W, t):
        return -Z + self.activation.g(Z) @ W.T + self.offset(t)


class DrivenDynamics(_Affine):
    r"""A network driven by given signals: dz_r/dt = -z_r + W x_r(t) + b + u(t).

    ``signal`` is an (L, n) array (constant x_r) or a JAX function t -> (L, n). The state
    equation is linear in (z, W), so a quadratic cost makes the problem linear-quadratic.
    """

    signal: object

    def __call__(self, Z, W, t):
        X = self.signal(t) if callable(self.signal) else jnp.asarray(self.signal)
        return -Z + X @ W.T + self.offset(t)


class CustomDynamics(Dynamics):
    """Any JAX function ``fn(Z, W, t) -> (L, n)``."""

    fn: Callable

    def __call__(self, Z, W, t):
        return self.fn(Z, W, t)

    def offset(self, t):
        return 0.0


# ---- the problem --------------------------------------------------------------------------
class Problem(eqx.Module):
    r"""A training set, a state equation, an index and the weight penalty (1/(2 beta))||W||^2.

    Parameters
    ----------
    inputs, targets:
        (L, n) arrays, samples as rows; inputs are network *outputs* at t0 (strictly inside
        g's range), so z_r(t0) = g^{-1}(phi_r).
    index:
        ``"paper"`` (eq. 3), ``"correlation"``, ``"squared_error"`` or an :class:`Index`.
    beta, t0, t1, activation, gain:
        As in :func:`~weightsynth.synthesize`.
    dynamics:
        ``"network"`` (default, -z + W g(z) + b + u(t)), ``"driven"`` (-z + W x_r(t) + b +
        u(t), needs ``signal``), a :class:`Dynamics`, or a JAX function f(Z, W, t).
    bias, drive, signal:
        b (n,), u: t -> (n,), and x_r(t): an (L, n) array or t -> (L, n).

    The costs and the state equation are probed once at (Z0, W = 0, t0): a non-scalar or
    non-finite cost, or a state equation of the wrong shape, raises ``ValueError`` here.
    """

    Z0: np.ndarray
    Theta: np.ndarray
    beta: float
    t0: float
    t1: float
    activation: Activation
    index: Index
    dynamics: Dynamics

    def __init__(self, inputs, targets, index="paper", beta: float = 1.0, t1: float = 1.0,
                 t0: float = 0.0, activation: str | Activation = "tanh", *,
                 gain: float | None = None, dynamics="network", bias=None, drive=None,
                 signal=None, dtype=None):
        phi, theta = check_pair(inputs, targets)
        self.beta = check_positive(beta, "beta")
        self.t0, self.t1 = check_interval(t0, t1)
        self.activation = act = get_activation(activation, gain)
        act.check_in_range(phi, "inputs")
        dt = resolve_dtype(dtype, inputs, targets)
        Z0 = np.asarray(act.ginv(jnp.asarray(phi, dt)))
        if not np.isfinite(Z0).all():
            raise ValueError(f"inputs are too close to the edge of g's range for {dt} precision")
        self.Z0, self.Theta = Z0, theta.astype(dt)
        self.index = _resolve_index(index, act, self.beta)
        self.dynamics = _resolve_dynamics(dynamics, act, bias, drive, signal, phi.shape, dt)
        self._probe()

    @property
    def n(self) -> int:
        return self.Theta.shape[1]

    @property
    def L(self) -> int:
        return self.Theta.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.Theta.dtype

    def field(self, Z, W, t):
        """f(Z, W, t), the state equation for all samples."""
        return self.dynamics(Z, W, t)

    def terminal_cost(self, Z1):
        """phi(Z(t1), Theta)."""
        return self.index.terminal(Z1, jnp.asarray(self.Theta))

    def lagrangian(self, Z, W, t):
        r"""l(Z, W, t, Theta) + (1/(2 beta)) ||W||_F^2."""
        return self.index.running(Z, W, t, jnp.asarray(self.Theta)) + \
            0.5 * jnp.sum(W * W) / self.beta

    def hamiltonian(self, Z, W, Lam, t):
        r"""H = l + (1/(2 beta))||W||^2 + sum_r lambda_r . f(z_r, W, t) (section 7)."""
        return self.lagrangian(Z, W, t) + jnp.sum(Lam * self.field(Z, W, t))

    def _probe(self) -> None:
        Z0 = jnp.asarray(self.Z0)
        W = jnp.zeros((self.n, self.n), self.dtype)
        t = jnp.asarray(self.t0, self.dtype)
        _check_value(lambda: self.terminal_cost(Z0), "terminal cost phi(Z1, Theta)", ())
        _check_value(lambda: self.lagrangian(Z0, W, t), "running cost l(Z, W, t, Theta)", ())
        _check_value(lambda: self.field(Z0, W, t), "state equation f(Z, W, t)", Z0.shape)


def _check_value(fn, what: str, shape: tuple) -> None:
    try:
        val = np.asarray(fn())
    except Exception as exc:  # noqa: BLE001 - any failure of user code is a bad input
        raise ValueError(f"the {what} failed on a probe evaluation at (Z0, W=0, t0): "
                         f"{type(exc).__name__}: {exc}") from None
    if val.shape != shape:
        kind = "a scalar" if shape == () else f"an array of shape {shape}"
        raise ValueError(f"the {what} must return {kind}, got shape {val.shape}")
    if not np.isfinite(val).all():
        raise ValueError(f"the {what} returned a non-finite value at (Z0, W=0, t0): {val}")


def _resolve_index(index, act: Activation, beta: float) -> Index:
    if isinstance(index, Index):
        return index
    if isinstance(index, str) and index in _INDICES:
        return paper_index(act, beta) if index == "paper" else _INDICES[index](act)
    raise ValueError(f"index must be one of {sorted(_INDICES)} or an Index, got {index!r}")


def _resolve_dynamics(dynamics, act, bias, drive, signal, shape, dt) -> Dynamics:
    L, n = shape
    if bias is not None:
        bias = as_matrix(np.reshape(bias, (1, -1)), "bias", n=n)[0].astype(dt)
    if drive is not None and not callable(drive):
        raise ValueError(f"drive must be a JAX function t -> (n,), got {drive!r}")
    if isinstance(dynamics, Dynamics):
        return dynamics
    if dynamics == "network":
        if signal is not None:
            raise ValueError("signal is only used with dynamics='driven'")
        return NetworkDynamics(bias, drive, act)
    if dynamics == "driven":
        if signal is None:
            raise ValueError("dynamics='driven' needs signal: an (L, n) array or t -> (L, n)")
        if not callable(signal):
            signal = as_matrix(signal, "signal", n=n).astype(dt)
            if signal.shape[0] != L:
                raise ValueError(f"signal must have L = {L} rows, got {signal.shape[0]}")
        return DrivenDynamics(bias, drive, signal)
    if callable(dynamics):
        if bias is not None or drive is not None or signal is not None:
            raise ValueError("bias, drive and signal apply to the built-in dynamics only")
        return CustomDynamics(dynamics)
    raise ValueError(f"dynamics must be 'network', 'driven', a Dynamics or a callable f(Z, W, t),"
                     f" got {dynamics!r}")

