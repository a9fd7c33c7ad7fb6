r"""Performance indices of the general problem, without the weight penalty.

An :class:`Index` is a pair of JAX functions of (L, n) arrays: a terminal cost
phi(Z(t1), Theta) and a running cost l(Z, W, t, Theta). :class:`~weightsynth.Problem` adds
the weight penalty (1/(2 beta)) ||W||_F^2 (docs/derivation.md section 6). Built in:
:func:`paper_index` (eq. 3), :func:`terminal_correlation`, :func:`terminal_squared_error`;
any other from :func:`custom_index`.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
from jax.tree_util import Partial

from .._validation import check_positive
from ..core.activations import Activation, get_activation


class Index(eqx.Module):
    """A performance index without the weight penalty: ``terminal(Z1, Theta) -> scalar`` and
    ``running(Z, W, t, Theta) -> scalar``, both JAX functions of (L, n) arrays."""

    terminal: Callable
    running: Callable
    name: str = eqx.field(static=True, default="custom")


def _zero_terminal(Z1, Theta):
    return jnp.zeros((), Z1.dtype)


def _zero_running(Z, W, t, Theta):
    return jnp.zeros((), Z.dtype)


def _minus_z_theta(Z, Theta):
    return -jnp.sum(Z * Theta)


def _paper_running(act, beta, Z, W, t, Theta):
    M = Theta.T @ act.g(Z)
    return -jnp.sum(Z * Theta) + 0.5 * beta * jnp.sum(M * M)


def _correlation_terminal(act, Z1, Theta):
    return -jnp.sum(act.g(Z1) * Theta)


def _squared_error_terminal(act, Z1, Theta):
    return jnp.sum((act.g(Z1) - Theta) ** 2)


def custom_index(terminal: Callable | None = None, running: Callable | None = None,
                 name: str = "custom") -> Index:
    """An index from JAX functions phi(Z1, Theta) and l(Z, W, t, Theta) (either may be None)."""
    for fn, what in ((terminal, "terminal"), (running, "running")):
        if fn is not None and not callable(fn):
            raise ValueError(f"the {what} cost must be a callable or None, got {fn!r}")
    return Index(terminal if terminal is not None else Partial(_zero_terminal),
                 running if running is not None else Partial(_zero_running), name)


def paper_index(activation: str | Activation = "tanh", beta: float = 1.0) -> Index:
    r"""The paper's index (eq. 3) without its weight penalty:
    phi = -sum_r z_r(t1).theta_r,  l = -sum_r z_r.theta_r + (beta/2) ||Theta^T g(Z)||_F^2."""
    act = get_activation(activation)
    beta = check_positive(beta, "beta")
    return Index(Partial(_minus_z_theta), Partial(_paper_running, act, beta), "paper")


def terminal_correlation(activation: str | Activation = "tanh") -> Index:
    r"""Terminal output correlation phi = -sum_r g(z_r(t1)).theta_r (derivation eq. 19)."""
    return Index(Partial(_correlation_terminal, get_activation(activation)),
                 Partial(_zero_running), "correlation")


def terminal_squared_error(activation: str | Activation = "tanh") -> Index:
    r"""Terminal squared output error phi = sum_r ||g(z_r(t1)) - theta_r||^2 (section 7)."""
    return Index(Partial(_squared_error_terminal, get_activation(activation)),
                 Partial(_zero_running), "squared_error")


_INDICES = {"paper": None, "correlation": terminal_correlation,
            "squared_error": terminal_squared_error}
