r"""Output functions g, with g', g^{-1} and g's open output range defined together.

The network's input phi_r is its *output* at t0, so the initial activation is
z_r(t0) = g^{-1}(phi_r) (derivation eq. 2); phi_r must lie strictly inside g's range.

Built in: ``"tanh"`` (g(z) = tanh(gain z), range (-1, 1)), ``"logistic"``
(g(z) = 1 / (1 + exp(-gain z)), range (0, 1)) and ``"linear"`` (g(z) = gain z, the whole
real line; useful for linear-quadratic checks). Add your own with
:func:`register_activation`; the functions must be written with ``jax.numpy``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from .._cache import covered, persistent_jit

Fn = Callable[..., object]


@dataclass(frozen=True)
class _Family:
    g: Fn  # g(z, gain)
    dg: Fn  # g'(z, gain)
    ginv: Fn  # g^{-1}(y, gain)
    lower: float
    upper: float


_REGISTRY: dict[str, _Family] = {}


def register_activation(
    name: str, g: Fn, dg: Fn, ginv: Fn, lower: float = -math.inf, upper: float = math.inf
) -> None:
    """Register an activation family under ``name``.

    Each of ``g(z, gain)``, ``dg(z, gain)`` (the derivative g') and ``ginv(y, gain)`` takes
    a JAX array and the scalar gain. ``(lower, upper)`` is g's open output range. Saved
    programs record the name, so register the same family before loading them.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"activation name must be a non-empty string, got {name!r}")
    if not (lower < upper):
        raise ValueError(f"activation range must satisfy lower < upper, got ({lower}, {upper})")
    _REGISTRY[name] = _Family(g, dg, ginv, float(lower), float(upper))


def _tanh(z, k):
    return jnp.tanh(k * z)


def _dtanh(z, k):
    return k * (1.0 - jnp.tanh(k * z) ** 2)


def _logistic(z, k):
    return 0.5 * (1.0 + jnp.tanh(0.5 * k * z))


def _dlogistic(z, k):
    s = _logistic(z, k)
    return k * s * (1.0 - s)


register_activation("tanh", _tanh, _dtanh, lambda y, k: jnp.arctanh(y) / k, -1.0, 1.0)
register_activation(
    "logistic", _logistic, _dlogistic, lambda y, k: (jnp.log(y) - jnp.log1p(-y)) / k, 0.0, 1.0
)
register_activation(
    "linear", lambda z, k: k * z, lambda z, k: k * jnp.ones_like(z), lambda y, k: y / k
)


@dataclass(frozen=True)
class Activation:
    """One member of a registered family: the family's name and a positive gain.

    Hashable, so it can be a static argument of jit-compiled functions.
    """

    name: str = "tanh"
    gain: float = 1.0

    def __post_init__(self):
        if self.name not in _REGISTRY:
            known = ", ".join(sorted(_REGISTRY))
            raise ValueError(f"unknown activation {self.name!r}; known: {known}")
        gain = float(self.gain)
        if not math.isfinite(gain) or gain <= 0:
            raise ValueError(f"activation gain must be positive and finite, got {self.gain!r}")
        object.__setattr__(self, "gain", gain)

    @property
    def _family(self) -> _Family:
        return _REGISTRY[self.name]

    @property
    def range(self) -> tuple[float, float]:
        """g's open output range (lower, upper)."""
        return self._family.lower, self._family.upper

    def g(self, z):
        """Output g(z)."""
        return self._family.g(z, self.gain)

    def dg(self, z):
        """Derivative g'(z)."""
        return self._family.dg(z, self.gain)

    def ginv(self, y):
        """Inverse g^{-1}(y), defined on the open range."""
        return self._family.ginv(y, self.gain)

    def export_description(self) -> str | None:
        """What pins this activation in a kept kernel's key
        (:func:`weightsynth._cache.persistent_jit`): name, gain and range, when its
        functions are weightsynth's own (their source is in the key); None for a family
        registered from other code, whose changes the key would miss."""
        fam = self._family
        if not all(covered(f) for f in (fam.g, fam.dg, fam.ginv)):
            return None
        return f"{self.name}:{self.gain!r}:{fam.lower!r}:{fam.upper!r}"

    def check_in_range(self, y: np.ndarray, name: str) -> None:
        """Raise ``ValueError`` unless every entry of ``y`` lies strictly inside the range."""
        lo, hi = self.range
        if y.size and y.min() > lo and y.max() < hi:  # the common case: two reductions
            return
        bad = ~((y > lo) & (y < hi))
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name} must lie strictly inside the {self.name} output range ({lo}, {hi}) "
                f"because they are network outputs g(z(t0)); entry {idx} is {y[idx]!r}"
            )


def get_activation(spec: str | Activation = "tanh", gain: float | None = None) -> Activation:
    """Resolve a name (``"tanh"``, ``"logistic"``, ...) or an Activation."""
    if isinstance(spec, Activation):
        return spec if gain is None else Activation(spec.name, gain)
    if not isinstance(spec, str):
        raise ValueError(f"activation must be a name or an Activation, got {spec!r}")
    return Activation(spec, 1.0 if gain is None else gain)


def available_activations() -> list[str]:
    """Names of the registered activation families."""
    return sorted(_REGISTRY)


def outputs(act: Activation, z):
    """g(z) as one compiled kernel (an export, kept across processes), not eager JAX ops,
    each of which compiles a program of its own for every new shape."""
    return _apply(act, z, inverse=False)


def activations_of(act: Activation, y):
    """g^{-1}(y) as one compiled kernel (see :func:`outputs`)."""
    return _apply(act, y, inverse=True)


@persistent_jit
def _apply(act: Activation, x, *, inverse: bool):
    return act.ginv(x) if inverse else act.g(x)

