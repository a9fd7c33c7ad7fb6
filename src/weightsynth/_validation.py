"""Input validation shared by the public entry points (raise early, name the problem)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .errors import PrecisionWarning


def as_matrix(x, name: str, *, n: int | None = None) -> np.ndarray:
    """Return ``x`` as a finite 2-D float array of shape (rows, n), rows >= 1, n >= 1."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is a bad input
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
        or arr.dtype == bool
    ):
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D with samples as rows (shape (L, n)), got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got {arr.shape}")
    if n is not None and arr.shape[1] != n:
        raise ValueError(f"{name} has {arr.shape[1]} columns but the network has n = {n} neurons")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    # min and max are non-finite exactly when some entry is: two fast reductions, no temporaries
    if not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{name} contains non-finite values (first at index {idx}: {arr[idx]})")
    return arr


def check_pair(inputs, targets) -> tuple[np.ndarray, np.ndarray]:
    """Validate a training set: inputs and targets both (L, n), same shape."""
    phi = as_matrix(inputs, "inputs")
    theta = as_matrix(targets, "targets")
    if phi.shape != theta.shape:
        raise ValueError(
            f"inputs and targets must have the same shape (L, n); got {phi.shape} and "
            f"{theta.shape}"
        )
    return phi, theta


def check_positive(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive real number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def check_interval(t0, t1) -> tuple[float, float]:
    try:
        a, b = float(t0), float(t1)
    except (TypeError, ValueError):
        raise ValueError(f"t0 and t1 must be real numbers, got t0={t0!r}, t1={t1!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"t0 and t1 must be finite, got t0={t0!r}, t1={t1!r}")
    if b <= a:
        raise ValueError(f"t1 must be greater than t0, got t0={a!r}, t1={b!r}")
    return a, b


def check_times(ts, t0: float, t1: float, name: str = "ts") -> np.ndarray:
    """A 1-D non-decreasing array of finite times inside [t0, t1]."""
    arr = np.asarray(ts, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of times, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite times")
    if np.any(np.diff(arr) < 0):
        raise ValueError(f"{name} must be sorted in non-decreasing order")
    span = 1e-12 * max(1.0, abs(t0), abs(t1))
    if arr[0] < t0 - span or arr[-1] > t1 + span:
        raise ValueError(
            f"{name} must lie in [t0, t1] = [{t0}, {t1}], got values from {arr[0]} to {arr[-1]}"
        )
    return np.clip(arr, t0, t1)


def check_int(value, name: str, *, minimum: int = 1, none_ok: bool = False) -> int | None:
    """An integer >= ``minimum`` (bools refused), or None when ``none_ok``; the one integer
    validator of the package."""
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = {1: "a positive integer", 0: "a non-negative integer"}.get(
            minimum, f"an integer >= {minimum}")
        raise ValueError(f"{name} must be {what}{' or None' if none_ok else ''}, got {value!r}")
    return int(value)


def device_array(x, dtype=None):
    """``x`` as a JAX array (of ``dtype``), by a transfer, never a computation.

    ``jnp.asarray`` of host data compiles a small program for every new shape (10-20 ms
    each, even from the compilation cache), a large share of a short run;
    ``jax.device_put`` of a NumPy array or a Python number compiles nothing and keeps a
    Python number's weak type. A JAX array stays on its device.
    """
    import jax

    if isinstance(x, jax.Array):
        return x if dtype is None or x.dtype == np.dtype(dtype) else x.astype(dtype)
    if dtype is None and isinstance(x, (bool, int, float)):
        return jax.device_put(x)
    return jax.device_put(np.asarray(x, dtype))


def _dtype_of(x) -> np.dtype:
    dt = getattr(x, "dtype", None)
    return np.dtype(dt) if dt is not None else np.asarray(x).dtype


def resolve_dtype(dtype, *arrays) -> np.dtype:
    """The working float dtype: ``dtype`` if given, else the widest float dtype of ``arrays``.

    ``arrays`` are the user's own arrays (before conversion): integer and boolean ones
    (e.g. +-1 targets) take the float arrays' dtype, and only all-integer data defaults to
    float64. float64 work needs JAX's x64 mode. When it is off, float64 *data* warns
    (never silently truncates) and runs in float32; an explicit ``dtype="float64"`` is an
    error that names the fix.
    """
    import jax  # here, so that the JAX-free layers (engine) can use this module cheaply

    if dtype is None:
        floats = [d for d in map(_dtype_of, arrays) if np.issubdtype(d, np.floating)]
        dt = np.result_type(*floats, np.float32) if floats else np.dtype(np.float64)
        dt = np.dtype(np.float64) if dt.itemsize > 8 else dt
        if dt not in (np.float32, np.float64):
            dt = np.dtype(np.float64)
    else:
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
        if dt not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dt}")
        if dt == np.float64 and not jax.config.jax_enable_x64:
            raise ValueError(
                "dtype='float64' needs JAX's 64-bit mode: call "
                "jax.config.update('jax_enable_x64', True) at program start, or pass "
                "dtype='float32'"
            )
    if dt == np.float64 and not jax.config.jax_enable_x64:
        warnings.warn(
            "float64 data but JAX x64 mode is off, so weightsynth computes in float32. "
            "Call jax.config.update('jax_enable_x64', True) at program start for float64, "
            "or pass dtype='float32' to silence this warning.",
            PrecisionWarning,
            stacklevel=3,
        )
        dt = np.dtype(np.float32)
    return dt
