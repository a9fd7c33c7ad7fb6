r"""Data plumbing of the scikit-learn estimators: fitted scalings, output codes, padding.

Kept apart from :mod:`weightsynth.estimators` so that each piece has one job and can be
tested on its own. Every transform here is affine per column and documented in
docs/estimators.md.

* :class:`ColumnScaler`: column j of X goes to mid + s h (x - c_j) / r_j, where
  (mid - h, mid + h) is g's open range, s in (0, 1) the ``scale``, and (c_j, r_j) are
  fitted: ``"center"`` (inputs) takes c_j = the column mean and r_j = max |x - c_j|, so
  the training column spans at most [mid - s h, mid + s h] and its mean maps to mid;
  ``"minmax"`` (regression targets) takes c_j = (min + max)/2, r_j = (max - min)/2.
  New data are clipped into [mid - c h, mid + c h], c = :data:`CLIP`, strictly inside
  the range. A constant column maps to mid. For an unbounded g (``"linear"``) h = 1 and
  nothing is clipped.
* :func:`output_code`: one +-1 code word per class.
* :func:`pad_columns` / :func:`pad_rows`: the padding of the state and of the batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import hadamard

from ..core.activations import Activation

#: New inputs are clipped to this fraction of g's half-range around its midpoint.
CLIP = 0.999


def range_mid_half(act: Activation) -> tuple[float, float]:
    """(mid, h): g's open range is (mid - h, mid + h); (0, 1) for an unbounded g."""
    lo, hi = act.range
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    return 0.5 * (lo + hi), 0.5 * (hi - lo)


def neutral_output(act: Activation) -> float:
    """g(0): the output of a neuron whose activation is 0 (the padding of inputs)."""
    return float(np.asarray(act.g(np.zeros(1)))[0])


@dataclass(frozen=True)
class ColumnScaler:
    """Per-column affine map x -> mid + scale h (x - center) / spread (module docstring)."""

    center: np.ndarray
    spread: np.ndarray
    scale: float
    mid: float
    half: float
    clip: bool = True

    @classmethod
    def fit(cls, X: np.ndarray, act: Activation, scale: float, how: str) -> ColumnScaler:
        mid, half = range_mid_half(act)
        lo, hi = act.range
        X = np.asarray(X, np.float64)
        if how == "center":
            c = X.mean(axis=0)
            r = np.abs(X - c).max(axis=0)
        else:
            c = 0.5 * (X.min(axis=0) + X.max(axis=0))
            r = 0.5 * (X.max(axis=0) - X.min(axis=0))
        return cls(c, r, float(scale), mid, half, math.isfinite(lo) and math.isfinite(hi))

    def transform(self, X: np.ndarray) -> np.ndarray:
        safe = np.where(self.spread > 0, self.spread, 1.0)
        U = np.where(self.spread > 0, (np.asarray(X, np.float64) - self.center) / safe, 0.0)
        Y = self.mid + self.scale * self.half * U
        if self.clip:
            Y = np.clip(Y, self.mid - CLIP * self.half, self.mid + CLIP * self.half)
        return Y

    def inverse(self, Y: np.ndarray) -> np.ndarray:
        U = (np.asarray(Y, np.float64) - self.mid) / (self.scale * self.half)
        return self.center + U * self.spread

    def to_json(self) -> dict:
        return {"center": self.center.tolist(), "spread": self.spread.tolist(),
                "scale": self.scale, "mid": self.mid, "half": self.half, "clip": self.clip}

    @classmethod
    def from_json(cls, d: dict) -> ColumnScaler:
        return cls(np.asarray(d["center"], np.float64), np.asarray(d["spread"], np.float64),
                   float(d["scale"]), float(d["mid"]), float(d["half"]), bool(d["clip"]))


def _is_pow2(m: int) -> bool:
    return m >= 1 and (m & (m - 1)) == 0


def _random_code(k: int, m: int, seed: int, tries: int = 64) -> np.ndarray:
    """Of ``tries`` seeded draws of k random +-1 words of length m, the one with the largest
    minimum Hamming distance between words (distinct words whenever 2^m >= k)."""
    rng = np.random.default_rng(seed)
    best, best_d = None, -1
    for _ in range(tries):
        C = np.where(rng.random((k, m)) < 0.5, -1.0, 1.0)
        D = (m - C @ C.T) / 2
        np.fill_diagonal(D, m + 1)
        if D.min() > best_d:
            best, best_d = C, D.min()
    return best


def output_code(k: int, m: int, kind="auto", seed: int = 0) -> np.ndarray:
    r"""k code words of length m, entries +-1, as a (k, m) array.

    ``"auto"``: Hadamard rows when m is a power of two (rows 1..k, skipping the constant
    row 0 when k < m), else ``"random"``; ``"hadamard"`` raises unless m is a power of two
    with m >= k; ``"random"``: seeded random words (:func:`_random_code`).
    """
    if kind == "auto":
        kind = "hadamard" if _is_pow2(m) and m >= k else "random"
    if kind == "hadamard":
        if not (_is_pow2(m) and m >= k):
            raise ValueError(f"output_code='hadamard' needs a code length that is a power of "
                             f"two >= the number of classes ({k}), got {m}")
        H = hadamard(m).astype(np.float64)
        return H[1:k + 1] if k < m else H[:k]
    if kind == "random":
        if 2 ** min(m, 60) < k:
            raise ValueError(f"output_code: {k} classes need code words longer than {m}")
        return _random_code(k, m, seed)
    raise ValueError(f"output_code must be 'auto', 'hadamard', 'random' or a (n_classes, m) "
                     f"array of +-1, got {kind!r}")


def check_code(code, k: int) -> np.ndarray:
    """A user-given code: a (k, m) array of +-1 with distinct rows."""
    C = np.asarray(code, dtype=np.float64)
    if C.ndim != 2 or C.shape[0] != k:
        raise ValueError(f"output_code must have one row per class ({k}), got shape "
                         f"{C.shape}")
    if not np.isin(C, (-1.0, 1.0)).all():
        raise ValueError("output_code entries must be -1 or +1")
    if len(np.unique(C, axis=0)) != k:
        raise ValueError("output_code rows must be distinct")
    return C


def pad_columns(A: np.ndarray, n: int, value: float) -> np.ndarray:
    """A (rows, c) -> (rows, n), new columns filled with ``value``."""
    if A.shape[1] >= n:
        return A
    return np.concatenate([A, np.full((A.shape[0], n - A.shape[1]), value, A.dtype)], axis=1)


def bucket(rows: int) -> int:
    """The least k 2^j >= rows with 8 <= k <= 16 (rows itself below 16): at most 12.5% of
    padding, and few distinct shapes, so compiled solvers are shared across sizes."""
    if rows <= 16:
        return rows
    j = max(0, math.ceil(math.log2(rows)) - 4)
    return int(math.ceil(rows / 2**j) * 2**j)


def pad_rows(A: np.ndarray, rows: int, value: float) -> np.ndarray:
    """A (r, n) -> (rows, n), new rows filled with ``value``."""
    if rows <= A.shape[0]:
        return A
    return np.concatenate([A, np.full((rows - A.shape[0], A.shape[1]), value, A.dtype)])
