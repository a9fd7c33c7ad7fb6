r"""Protocol ``maps`` (docs/experiments.md) in the report: comparisons, figures, a section (the
claims rows are decided in :func:`weightsynth.study.claims.claim_maps`).

Every comparison is paired by seed (same training and test data) and decided by the 95%
Student-t interval of the mean difference in test error (lower is better): ``better``
where the interval lies below 0, ``worse`` where it lies above.
"""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd

from .config import MAPS_BUDGET
from .plots import LABELS
from .stats import paired_difference, summarize

CLASSICAL = ("hebbian", "pinv")
SKLEARN = ("ridge", "logistic", "knn", "mlp")
KEYS = ["task", "n", "load", "noise", "L"]
#: the methods the maps claims judge, with how their claims name them and the prefix of
#: their details' keys: the closed form (the claims' original subject) and the general
#: index's program, where the run has it
SUBJECTS = (
    ("synth", "The synthesized network", "maps"),
    ("general-squared_error", "The general-index program (terminal squared error, feedback "
                              "solver)", "maps_general"),
)
#: the rival groups: the suffix of the details' keys, the rivals, how the report names them
RIVAL_GROUPS = (("classical", CLASSICAL, "classical associators"),
                ("sklearn", SKLEARN, "scikit-learn models"))
ERROR_NAME = {"hetero": "bit error of the output", "digits": "test error (1 - accuracy)",
              "smooth": "test mean squared error"}
COLORS = {"synth": "C0", "general-squared_error": "C9", "hebbian": "C1", "pinv": "C2",
          "ridge": "C3", "logistic": "C4", "knn": "C5", "mlp": "C6"}


def maps_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df.protocol == "maps"] if "protocol" in df and len(df) else df.iloc[:0]


def comparisons(m: pd.DataFrame, rivals, method: str = "synth") -> pd.DataFrame:
    """``method`` - rival test error per setting, paired by seed, with a verdict."""
    out, present = [], set(m.method)
    for r in rivals:
        if r not in present or method not in present:
            continue
        d = paired_difference(m, method, r, KEYS, "error").assign(method=method, rival=r)
        out.append(d)
    if not out:
        return pd.DataFrame()
    res = pd.concat(out, ignore_index=True)
    res["verdict"] = np.where(res.hi < 0, "better", np.where(res.lo > 0, "worse", "n.s."))
    return res


def where(rows: pd.DataFrame) -> str:
    parts = []
    for task, g in rows.groupby("task"):
        if task == "hetero":
            parts.append("hetero (K/n, noise) in {" + ", ".join(
                f"({a:g}, {b:g})" for a, b in zip(g.load, g.noise, strict=True)) + "}")
        else:
            parts.append(f"{task} L in {{{', '.join(str(int(v)) for v in sorted(g.L))}}}")
    return "; ".join(parts)


def _curves(ax, d: pd.DataFrame, x: str, log: bool = False):
    """Mean over seeds with its 95% t-interval; on a log axis (``log``) the interval's
    lower end is clipped at the smallest seed's value, since with few seeds it can fall
    below 0, which a log axis would draw as a band down to the bottom."""
    for meth in [k for k in COLORS if k in set(d.method)]:
        dm = d[d.method == meth]
        r = summarize(dm, [x], "error")
        lo = r.lo
        if log:
            lo = np.maximum(lo, r[x].map(dm.groupby(x).error.min()))
        ax.plot(r[x], r["mean"], marker=".", color=COLORS[meth], label=LABELS.get(meth, meth))
        ax.fill_between(r[x], lo, r.hi, color=COLORS[meth], alpha=0.2, lw=0)


def error_figure(df: pd.DataFrame):
    """Test error vs training-set size (digits, smooth) and vs K/n (hetero, per noise)."""
    import matplotlib.pyplot as plt

    m = maps_rows(df)
    panels = [("digits", None), ("smooth", None)] + [
        ("hetero", nz) for nz in sorted(m[m.task == "hetero"].noise.dropna().unique())]
    panels = [p for p in panels if (m.task == p[0]).any()]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (task, nz) in zip(axes[0], panels, strict=True):
        d = m[m.task == task]
        if task == "hetero":
            d = d[np.isclose(d.noise, nz)]
            _curves(ax, d, "load")
            ax.set(xlabel="K/n (pairs per neuron), n = 100", title=f"hetero, noise {nz:g}")
            if ax is axes[0][0]:  # a hetero-only figure still names its curves
                ax.legend(fontsize=7)
        else:
            _curves(ax, d, "L", log=task == "smooth")
            sizes = sorted(int(v) for v in d.L.unique())
            ax.set(xscale="log", xlabel="training-set size L", title=task)
            ax.set_xticks(sizes, [str(v) for v in sizes])
            ax.minorticks_off()
            if task == "smooth":
                ax.set_yscale("log")
            ax.legend(fontsize=7)
        ax.set_ylabel(ERROR_NAME[task])
    fig.tight_layout()
    return fig


def confusion_figure(df: pd.DataFrame):
    """Digits confusion matrices (summed over seeds) at the largest size: synth and knn."""
    import matplotlib.pyplot as plt

    m = maps_rows(df)
    d = m[(m.task == "digits") & m.get("confusion", pd.Series(dtype=object)).notna()] \
        if "confusion" in m else m.iloc[:0]
    shown = [x for x in ("synth", "knn", "mlp") if x in set(d.method)]
    fig, axes = plt.subplots(1, max(1, len(shown)), figsize=(4 * max(1, len(shown)), 3.8),
                             squeeze=False)
    for ax, meth in zip(axes[0], shown, strict=False):
        C = sum(np.asarray(json.loads(s)) for s in d[d.method == meth].confusion)
        ax.imshow(C, cmap="Blues")
        for (i, j), v in np.ndenumerate(C):
            if v:
                ax.text(j, i, int(v), ha="center", va="center", fontsize=6)
        ax.set(xlabel="predicted", ylabel="true", xticks=range(10), yticks=range(10),
               title=f"{meth}, L = {int(d.L.max())}, {d.seed.nunique()} seeds")
    fig.tight_layout()
    return fig


def section_html(details: dict) -> str:
    """The report's maps section (text and per-setting tables; figures are added with the
    others); empty without maps results."""
    s = details.get("maps_summary")
    if s is None or s.empty:
        return ""
    body = s.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)
    extra = "".join(
        f"<details><summary>{html.escape(t)}</summary>"
        f"{details[k].to_html(index=False, float_format=lambda v: f'{v:.4g}', border=0)}"
        "</details>" for k, t in (
            (f"{key}_{group}", f"{method} - {label}")
            for method, _, key in SUBJECTS for group, _, label in RIVAL_GROUPS)
        if k in details and not details[k].empty)
    return f"""<h2>Arbitrary maps</h2>
<p>The paper's stated aim is to model a map from samples. Protocol <code>maps</code> fits
the synthesized network (<code>weightsynth.SynthesisClassifier</code> /
<code>SynthesisRegressor</code>, closed-form program; on the smooth teacher also the
general index's program, <code>general-squared_error</code>) to (a) random
heteroassociation, (b) the 8x8 digits and (c) a smooth teacher y = tanh(A x + b), against
the Hebbian and pseudo-inverse linear associators and scikit-learn models. Every tuned
method (ours: beta and t1) picks one of {MAPS_BUDGET} hyperparameter values on a
validation quarter of the training set, then refits; the classical associators have none.
Test error on fresh inputs; figures <code>maps_error</code> and
<code>maps_confusion</code>.</p>
<details><summary>Test error per setting and method (mean, 95% interval)</summary>{body}
</details>{extra}
"""
