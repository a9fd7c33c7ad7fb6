r"""Data for the associative-memory study: exemplars, corrupted samples, the digits set.

Autoassociation (docs/experiments.md, Setting): exemplars xi_k in {-1, +1}^n; a training sample is
an exemplar with each bit flipped independently with probability ``noise``, scaled by the
amplitude a < 1 so that it lies inside tanh's range: phi_r = a * (xi_k * flips), and its
target is theta_r = xi_k. Fresh samples for generalization are drawn the same way from an
independent stream.

Digits: scikit-learn's bundled 8x8 digits (no download), binarized at half intensity; the
exemplar of each class is the binarized class mean (pixel on iff its mean intensity > 8).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np


def cell_rng(*parts, base_seed: int = 0) -> np.random.Generator:
    """A generator seeded from ``base_seed`` and the cell's identifying ``parts``.

    Uses numpy's SeedSequence over integers derived from ``parts`` with CRC-32 (stable
    across runs and machines, unlike Python's ``hash``). Floats are rounded to 1e-9.
    """
    words = [int(base_seed)]
    for p in parts:
        if isinstance(p, float):
            p = repr(round(p, 9))
        words.append(zlib.crc32(str(p).encode()))
    return np.random.default_rng(np.random.SeedSequence(words))


def random_exemplars(K: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """K random bipolar exemplars, (K, n), entries +-1 with probability 1/2."""
    return np.where(rng.random((K, n)) < 0.5, -1.0, 1.0)


def corrupt(patterns: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Flip each entry of the +-1 ``patterns`` independently with probability ``noise``."""
    if not 0.0 <= noise <= 0.5:
        raise ValueError(f"noise must lie in [0, 0.5], got {noise!r}")
    return patterns * np.where(rng.random(patterns.shape) < noise, -1.0, 1.0)


@dataclass(frozen=True)
class Samples:
    """Noisy samples of exemplars: ``inputs`` = a * corrupted (B, n), ``targets`` (B, n)."""

    inputs: np.ndarray
    targets: np.ndarray
    labels: np.ndarray


def noisy_samples(exemplars: np.ndarray, per_exemplar: int, noise: float, amplitude: float,
                  rng: np.random.Generator) -> Samples:
    r"""``per_exemplar`` samples of each exemplar: phi = a * (xi * flips), theta = xi."""
    if not 0.0 < amplitude < 1.0:
        raise ValueError(f"amplitude must lie in (0, 1), got {amplitude!r}")
    labels = np.repeat(np.arange(exemplars.shape[0]), per_exemplar)
    targets = exemplars[labels]
    return Samples(amplitude * corrupt(targets, noise, rng), targets, labels)


def n_exemplars(load: float, n: int) -> int:
    """K = round(load * n), at least 1."""
    return max(1, int(round(load * n)))


def digits_exemplars() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(exemplars (10, 64), binarized digits (N, 64), their labels (N,)), all +-1 floats."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X = np.where(d.data > 8.0, 1.0, -1.0)
    ex = np.stack([np.where(d.data[d.target == k].mean(axis=0) > 8.0, 1.0, -1.0)
                   for k in range(10)])
    return ex, X, d.target.astype(np.int64)
