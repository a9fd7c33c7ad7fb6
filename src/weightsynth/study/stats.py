"""Summary statistics over seeds: means with 95% Student-t intervals, and paired differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two-sided Student-t confidence interval ``level`` of the mean.

    ``(mean, lo, hi)``; the interval is ``(nan, nan)`` with fewer than 2 finite values and
    collapses to the mean when all values are equal.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if x.size == 0:
        return np.nan, np.nan, np.nan
    m = float(x.mean())
    if x.size < 2:
        return m, np.nan, np.nan
    sem = float(stats.sem(x))
    if sem == 0.0:
        return m, m, m
    lo, hi = stats.t.interval(level, x.size - 1, loc=m, scale=sem)
    return m, float(lo), float(hi)


#: the range of each bounded metric: intervals of its mean are clipped to it
RANGES = {"bit_accuracy": (0.0, 1.0), "exact_recall": (0.0, 1.0), "overlap": (-1.0, 1.0)}


def summarize(df: pd.DataFrame, by: list[str], value: str, level: float = 0.95
              ) -> pd.DataFrame:
    """Per group of ``by``: mean, CI bounds ``lo``/``hi`` and ``count`` of ``value``.

    For a metric with a known range (:data:`RANGES`, e.g. bit accuracy in [0, 1]) the
    interval is clipped to it: the mean of values in [0, 1] lies in [0, 1], whatever a
    Student-t interval on few seeds says.
    """
    out = []
    lo_max, hi_max = RANGES.get(value, (-np.inf, np.inf))
    for key, g in df.groupby(by, dropna=False, sort=True):
        m, lo, hi = mean_ci(g[value].to_numpy(), level)
        lo, hi = max(lo, lo_max), min(hi, hi_max)
        key = key if isinstance(key, tuple) else (key,)
        out.append(dict(zip(by, key, strict=True), mean=m, lo=lo, hi=hi,
                        count=int(np.isfinite(g[value]).sum())))
    return pd.DataFrame(out, columns=[*by, "mean", "lo", "hi", "count"])


def paired_difference(df: pd.DataFrame, a: str, b: str, by: list[str], value: str,
                      level: float = 0.95) -> pd.DataFrame:
    """Mean and CI over seeds of value(method a) - value(method b), paired by seed.

    ``df`` holds one row per (method, *by, seed). Static methods (t = nan) are compared at
    every t of the other method.
    """
    keys = [k for k in by if k != "t"]
    A = df[df.method == a]
    B = df[df.method == b]
    if B["t"].isna().all() and "t" in by:
        B = B.drop(columns="t")
        merged = A.merge(B, on=[*keys, "seed"], suffixes=("_a", "_b"))
    else:
        merged = A.merge(B, on=[*by, "seed"], suffixes=("_a", "_b"))
    merged["diff"] = merged[f"{value}_a"] - merged[f"{value}_b"]
    return summarize(merged, by, "diff", level)
