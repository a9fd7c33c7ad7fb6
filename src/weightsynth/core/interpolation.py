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

import functools

import jax
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


def map_rows(fn, xs, batch: int):
    """``fn`` over the leading axis of ``xs``, ``batch`` rows at a time (``lax.map``).

    Only one batch's intermediates are in memory at once: a plain vmap over all T stored
    times would hold T copies of every L x n state, 6 GB at n = 512, L = 64, T = 4097.
    """
    return jax.lax.map(fn, xs, batch_size=batch)


def scan_intervals(count: int, at_row, at_interval, batch: int, used=None):
    """Visit ``count`` stored rows and the ``count - 1`` intervals between them, ``batch``
    intervals at a time, computing each row's slope once.

    ``at_row(k) -> (F_k, r_k)``: the slope at row k and a per-row result;
    ``at_interval(k, F_k, F_{k+1})``: a per-interval result. Returns ``(r, out)`` stacked
    over rows and intervals. A block carries its last slope into the next, so no array of
    all T slopes is ever formed: memory is one block's intermediates. ``used`` (traced):
    how many rows are real, the rest padding; blocks wholly in the padding are skipped and
    give zeros.
    """
    blocks = -(-(count - 1) // batch)
    F0, r0 = at_row(0)
    used = count if used is None else used

    def compute(F_left, j):
        ks = j * batch + jnp.arange(batch)
        F_right, r = jax.vmap(at_row)(jnp.minimum(ks + 1, count - 1))
        F_prev = jnp.concatenate([F_left[None], F_right[:-1]])
        out = jax.vmap(at_interval)(jnp.minimum(ks, count - 2), F_prev, F_right)
        return F_right[-1], (r, out)

    def skip(F_left, j):
        shapes = jax.eval_shape(compute, F_left, j)[1]
        return F_left, jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    def block(F_left, j):
        return jax.lax.cond(j * batch < used - 1, compute, skip, F_left, j)

    _, (r, out) = jax.lax.scan(block, F0, jnp.arange(blocks))
    trim = functools.partial(_first_rows, count - 1)
    r = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], trim(b)]), r0, r)
    return r, jax.tree_util.tree_map(trim, out)


def _first_rows(count, a):
    return a.reshape(-1, *a.shape[2:])[:count]


def batch_rows(count: int, row_bytes: int, budget: int = 2**26) -> int:
    """Rows per batch of :func:`map_rows` or :func:`scan_intervals` so that one batch's
    ``row_bytes`` each stay within ``budget`` bytes (64 MiB), at least 1 and at most
    ``count``."""
    return int(max(1, min(count, budget // max(row_bytes, 1))))


def quarter_point(ta, tb, Xa, Xb, Fa, Fb):
    """One interval's Hermite interpolant at s = 1/4: ``(t, X, dX/dt, h, used)``.

    ``used`` is False on the zero-length intervals of the padding (h is then 1, to stay
    finite).
    """
    used = tb > ta
    h = jnp.where(used, tb - ta, 1.0).astype(Xa.dtype)
    s = 0.25
    Xs = ((2 * s**3 - 3 * s**2 + 1) * Xa + (s**3 - 2 * s**2 + s) * h * Fa
          + (-2 * s**3 + 3 * s**2) * Xb + (s**3 - s**2) * h * Fb)
    dXs = ((6 * s**2 - 6 * s) * (Xa - Xb) / h + (3 * s**2 - 4 * s + 1) * Fa
           + (3 * s**2 - 2 * s) * Fb)
    return ta + 0.25 * (tb - ta), Xs, dXs, h, used


def defect_error(h, dXs, f_s, used):
    r"""The interval's estimated peak interpolation error, from the defect at s = 1/4.

    The defect r = X_h' - f(t, X_h) of the interpolant at s = 1/4 estimates its error: for
    the Hermite cubic, e(s) = c s^2 (1 - s)^2 and e'(1/4) = 3 e(1/2) / h, so the largest
    error on the interval is about h r / 3 (zero on the padding's intervals).
    """
    return jnp.where(used, h * (dXs - f_s) / 3, 0.0)


def error_ratio(err, Xa, Xb, rtol, atol):
    """One interval's RMS of err / (atol + rtol max(|X_a|, |X_b|)): the solver's own norm."""
    r = err / (atol + rtol * jnp.maximum(jnp.abs(Xa), jnp.abs(Xb)))
    return jnp.sqrt(jnp.mean(r * r))


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
    with np.errstate(over="ignore"):  # J* and the effort both ~0: an infinite excess
        return 0.41 * float(np.sum(h * err**2)) / (2 * beta) / scale
