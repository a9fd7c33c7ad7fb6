r"""The stored trajectory of S between the solver's own steps: cubic Hermite interpolation.

:func:`~weightsynth.synthesize` stores the state of S (eq. 9 or 10) at t0 and at the end of
every step its adaptive solver accepted, so the stored times follow the dynamics: dense
where S moves fast, sparse where it settles. Between two stored times t_a < t_b (h = t_b -
t_a, s = (t - t_a)/h) the state is the cubic Hermite interpolant of the values X_a, X_b and
the slopes F_a = f(t_a, X_a), F_b = f(t_b, X_b) of S's own vector field:

    X(t) = (2s^3 - 3s^2 + 1) X_a + (s^3 - 2s^2 + s) h F_a + (-2s^3 + 3s^2) X_b + (s^3 - s^2) h F_b,

with error h^4 X''''/384 at most, below the solver's own local error on the steps it chose.

For compiled code the arrays are padded to a bucketed length (:func:`capacity`), the extra
times equal to t1, so programs whose solves took different numbers of steps share one
compiled function.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .._validation import device_array

#: the shortest padded length: programs of up to this many stored times share one shape
MIN_CAPACITY = 257


def capacity(count: int) -> int:
    """The padded length for ``count`` stored times: 257, 513, 1025, ... (2^k + 1)."""
    cap = MIN_CAPACITY
    while cap < count:
        cap = 2 * cap - 1
    return cap


def pad(ts, X, length: int):
    """``ts`` (T,) and ``X`` (T, ...) padded to ``length`` rows by repeating the last one.

    Arrays on the CPU are padded with NumPy: an eager JAX concatenation would compile
    afresh for every T, which is what the padding is there to avoid.
    """
    extra = length - ts.shape[0]
    if extra <= 0:
        return ts, X
    on_cpu = all(d.platform == "cpu" for a in (ts, X) for d in getattr(a, "devices", set)())
    xp = np if on_cpu else jnp
    ts, X = (xp.asarray(a) for a in (ts, X))
    ts = xp.concatenate([ts, xp.broadcast_to(ts[-1], (extra,))])
    X = xp.concatenate([X, xp.broadcast_to(X[-1], (extra, *X.shape[1:]))])
    return device_array(ts), device_array(X)


def hermite(ts, X, field, t):
    """X(t) by cubic Hermite interpolation with slopes ``field(t, X)`` (see module docstring).

    ``ts`` may be padded with copies of its last time: the interval is the one whose right
    end is the first stored time >= t, so a padded (zero-length) interval is never used.
    """
    last = jnp.searchsorted(ts, ts[-1], side="left")  # index of the first copy of t1
    i = jnp.clip(jnp.searchsorted(ts, t, side="left") - 1, 0, jnp.maximum(last - 1, 0))
    ta, tb = ts[i], ts[i + 1]
    Xa, Xb = X[i], X[i + 1]
    h = tb - ta
    s = ((t - ta) / h).astype(X.dtype)
    hh = h.astype(X.dtype)
    Fa, Fb = field(ta, Xa), field(tb, Xb)
    return ((2 * s**3 - 3 * s**2 + 1) * Xa + (s**3 - 2 * s**2 + s) * hh * Fa
            + (-2 * s**3 + 3 * s**2) * Xb + (s**3 - s**2) * hh * Fb)


def interval_errors(ts, X, field):
    r"""Estimated peak interpolation error on each stored interval: (T - 1, *X.shape[1:]).

    The defect r = X_h' - f(t, X_h) of the interpolant at s = 1/4 estimates its error: for
    the Hermite cubic, e(s) = c s^2 (1 - s)^2 and e'(1/4) = 3 e(1/2) / h, so the largest
    error on the interval is about h r / 3. Also returns the times t_k + h_k/4 and the
    interpolated values there (to map the error to W). Padded intervals give zero error.
    """
    import jax

    def one(ta, tb, Xa, Xb):
        used = tb > ta  # False on the zero-length intervals of the padding
        h = jnp.where(used, tb - ta, 1.0).astype(X.dtype)
        Fa, Fb = field(ta, Xa), field(tb, Xb)
        s = 0.25
        Xs = ((2 * s**3 - 3 * s**2 + 1) * Xa + (s**3 - 2 * s**2 + s) * h * Fa
              + (-2 * s**3 + 3 * s**2) * Xb + (s**3 - s**2) * h * Fb)
        dXs = ((6 * s**2 - 6 * s) * (Xa - Xb) / h + (3 * s**2 - 4 * s + 1) * Fa
               + (3 * s**2 - 2 * s) * Fb)
        t = ta + 0.25 * (tb - ta)
        err = jnp.where(used, h * (dXs - field(t, Xs)) / 3, 0.0)
        return err, t, Xs

    return jax.vmap(one)(ts[:-1], ts[1:], X[:-1], X[1:])


def error_ratios(err, X, rtol, atol):
    """Per interval, the RMS of err / (atol + rtol max(|X_a|, |X_b|)): the solver's own norm."""
    scale = atol + rtol * jnp.maximum(jnp.abs(X[:-1]), jnp.abs(X[1:]))
    r = (err / scale).reshape(err.shape[0], -1)
    return jnp.sqrt(jnp.mean(r * r, axis=1))


def subdivisions(ratios: np.ndarray, most: int = 32) -> np.ndarray:
    """Pieces to cut each interval into so its Hermite error falls to a tenth of the
    tolerance (well below the solver's own error, which it then does not add to).

    The error scales as h^4, so m pieces divide it by m^4: m = ceil((10 ratio)^(1/4)).
    """
    m = np.ceil(np.power(10 * np.maximum(ratios, 0.0), 0.25))
    return np.clip(np.nan_to_num(m, nan=most), 1, most).astype(int)


def interior_times(ts: np.ndarray, pieces: np.ndarray) -> np.ndarray:
    """The times that cut interval k of ``ts`` into ``pieces[k]`` equal parts."""
    out = [ts[k] + (ts[k + 1] - ts[k]) * np.arange(1, m) / m
           for k, m in enumerate(pieces) if m > 1]
    return np.concatenate(out) if out else np.zeros(0)


def relative_excess_estimate(ts, err, beta, J_star, effort) -> float:
    r"""Order of magnitude of the relative excess (eq. 8) that the interpolation error causes.

    The excess is (1/(2 beta)) int ||dW||^2 dt to leading order; with the peak error |dW_k|
    of each interval that is (1/(2 beta)) sum_k 0.41 h_k |dW_k|^2, where 0.41 = int_0^1
    (16 s^2 (1 - s)^2)^2 ds is the mean of the squared error shape over an interval. It is
    relative to the larger of |J*| and the program's own effort term
    ``effort`` = (1/(2 beta)) int ||W||^2 dt: J* can vanish (targets orthogonal to the
    inputs' activations, as when inputs and outputs sit on separate neurons), the effort
    cannot while W is not zero.
    """
    ts, err = np.asarray(ts, np.float64), np.asarray(err, np.float64)
    h = np.diff(ts)
    scale = max(abs(J_star), abs(effort), np.finfo(np.float64).tiny)
    return 0.41 * float(np.sum(h * err**2)) / (2 * beta) / scale
