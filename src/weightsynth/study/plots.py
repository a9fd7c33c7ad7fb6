"""Figures of the study (matplotlib, Agg backend), each returned as PNG and SVG bytes.

Every function takes the tidy results table (and, for the image figures, arrays from
:mod:`weightsynth.experiments.protocols`) and returns a matplotlib Figure; :func:`render`
turns a Figure into ``{"png": bytes, "svg": bytes}``. Nothing here computes results.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .stats import summarize  # noqa: E402

COLORS = {"optimal": "C0", "outer_continuous": "C1", "outer_discrete": "C2",
          "projection": "C3", "storkey": "C4", "dense": "C5", "input": "0.4",
          "general-correlation": "C6", "general-squared_error": "C9"}
LABELS = {"optimal": "optimal program W*(t)", "outer_continuous": "outer product, same N",
          "outer_discrete": "outer product, discrete", "projection": "projection (discrete)",
          "storkey": "Storkey (discrete)", "dense": "dense memory (softmax)",
          "input": "corrupted input",
          "general-correlation": "general: terminal correlation",
          "general-squared_error": "general: terminal squared error"}


def render(fig) -> dict[str, bytes]:
    """PNG (120 dpi) and SVG bytes of ``fig``; closes it."""
    out = {}
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=120, bbox_inches="tight",
                    metadata={"Date": None} if fmt == "svg" else None)
        out[fmt] = buf.getvalue()
    plt.close(fig)
    return out


def _curve(ax, df, method, value="bit_accuracy", label=None, **kw):
    s = summarize(df[df.method == method], ["t"], value)
    if s.empty:
        return
    c = COLORS.get(method)
    ax.plot(s.t, s["mean"], color=c, label=label or LABELS.get(method, method), **kw)
    ax.fill_between(s.t, s.lo, s.hi, color=c, alpha=0.2, lw=0)


def _static_lines(ax, df, methods, value="bit_accuracy"):
    for m in methods:
        v = df[(df.method == m)][value].mean()
        if np.isfinite(v):
            ax.axhline(v, color=COLORS.get(m), ls="--" if m != "input" else ":", lw=1,
                       label=LABELS.get(m, m))


def _series(ax, r, x, k, count, single, label, **style):
    """One summarized series (columns x, mean, lo, hi) as a line with error bars, or, when
    the grid has a single value of ``x``, as the k-th of ``count`` dots side by side (a line
    through one point says nothing)."""
    err = [r["mean"] - r.lo, r.hi - r["mean"]]
    if single:
        ax.errorbar([k], r["mean"], yerr=err, color=style.get("color"),
                    marker=style.get("marker", "o"), ms=5, ls="none", capsize=3, label=label)
        return
    ax.errorbar(r[x], r["mean"], yerr=err, label=label, **style)


def _single_axis(ax, labels, x, value):
    """Categorical x axis for a one-value grid: one tick per series."""
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_xlabel(f"method ({x} = {value:g} only)")


def _pick(df: pd.DataFrame, **eq) -> pd.DataFrame:
    for k, v in eq.items():
        df = df[np.isclose(df[k], v)] if isinstance(v, float) else df[df[k] == v]
    return df


STATIC = ("input", "outer_discrete", "projection", "storkey", "dense")


def main_figure(df: pd.DataFrame, load: float, noise: float):
    """Learning curve at one setting: bit accuracy and z.theta/n versus t (train split)."""
    d = _pick(df, protocol="autoassoc", split="train", load=load, noise=noise)
    d = d[(d.n == d.n.min()) & (d.beta == d.beta.min())]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for m in ("optimal", "outer_continuous"):
        _curve(a1, d, m)
        _curve(a2, d, m, "z_theta")
    _static_lines(a1, d, ("input", "outer_discrete"))
    n, beta = (int(d.n.iloc[0]), float(d.beta.iloc[0])) if len(d) else (0, 0.0)
    a1.set(xlabel="t", ylabel="bit accuracy of sign(z)",
           title=f"training samples: n={n}, load K/n={load:g}, noise={noise:g}, beta={beta:g}")
    a2.set(xlabel="t", ylabel="z . theta / n (what J rewards)", title="activation correlation")
    a1.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def learning_curves(df: pd.DataFrame, noise: float):
    """Bit accuracy versus t for every load (columns), train and test split (rows)."""
    d = _pick(df, protocol="autoassoc", noise=noise)
    d = d[(d.n == d.n.min()) & (d.beta == d.beta.min())]
    loads = sorted(d.load.unique())
    fig, axes = plt.subplots(2, len(loads), figsize=(3.2 * len(loads), 6), squeeze=False,
                             sharey=True)
    for j, ld in enumerate(loads):
        for i, split in enumerate(("train", "test")):
            ax, s = axes[i, j], _pick(d, load=float(ld), split=split)
            for m in ("optimal", "outer_continuous"):
                _curve(ax, s, m)
            _static_lines(ax, s, STATIC)
            ax.set_title(f"{split}, load {ld:g}", fontsize=9)
            ax.set_xlabel("t")
    axes[0, 0].set_ylabel("bit accuracy")
    axes[1, 0].set_ylabel("bit accuracy")
    axes[0, -1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def versus(df: pd.DataFrame, x: str, fixed: dict, times):
    """Bit accuracy versus ``x`` (load or noise), optimal at several t, train and test."""
    d = _pick(df, protocol="autoassoc", **fixed)
    d = d[(d.n == d.n.min()) & (d.beta == d.beta.min())]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    cmap = plt.get_cmap("Blues")
    xs = sorted(d[x].dropna().unique())
    single = len(xs) == 1
    for ax, split in zip(axes, ("train", "test"), strict=True):
        s = d[d.split == split]
        entries = []  # (label, summary, style)
        for k, t in enumerate(times):
            r = summarize(s[(s.method == "optimal") & np.isclose(s.t, t)], [x], "bit_accuracy")
            entries.append((f"optimal, t={t:g}", r, dict(
                color=cmap(0.4 + 0.6 * k / max(1, len(times) - 1)), marker="o", ms=3)))
        t1 = s.t.max()
        for m in ("outer_continuous",):
            r = summarize(s[(s.method == m) & np.isclose(s.t, t1)], [x], "bit_accuracy")
            entries.append((f"{LABELS[m]}, t={t1:g}", r,
                            dict(color=COLORS[m], marker="s", ms=3)))
        for m in STATIC:
            r = summarize(s[s.method == m], [x], "bit_accuracy")
            entries.append((LABELS[m], r, dict(color=COLORS[m], ls="--", marker=".")))
        entries = [e for e in entries if len(e[1])]
        for k, (label, r, style) in enumerate(entries):
            _series(ax, r, x, k, len(entries), single, label, **style)
        if single:
            _single_axis(ax, [e[0] for e in entries], x, xs[0])
        else:
            ax.set_xlabel(x)
        ax.set_title(f"{split} samples, " + ", ".join(f"{k}={v:g}" for k, v in fixed.items()))
    axes[0].set_ylabel("bit accuracy")
    if not single:
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _mosaic(panels: dict) -> np.ndarray:
    """Rows of 8x8 images separated by a blank pixel, as one array (fast to draw)."""
    rows = []
    for imgs in panels.values():
        tiles = [np.pad(im.reshape(8, 8), 1, constant_values=np.nan) for im in imgs]
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def digits_figure(df: pd.DataFrame, panels: dict):
    """Digit images (rows: exemplar, corrupted input, recalls) and accuracy versus t."""
    names = list(panels)
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 0.75 * len(names) + 3.5),
                                 height_ratios=[0.75 * len(names), 3])
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
    a1.imshow(_mosaic(panels), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    a1.set_yticks(10 * np.arange(len(names)) + 4.5, names, fontsize=8)
    a1.set_xticks([])
    a1.set_title("one fresh corrupted digit per class and each method's recall", fontsize=9)
    d = df[(df.protocol == "digits") & (df.split == "test")]
    d = d[d.noise == d.noise.max()]
    for m in ("optimal", "outer_continuous"):
        _curve(a2, d, m)
    _static_lines(a2, d, STATIC)
    a2.set(xlabel="t", ylabel="bit accuracy",
           title=f"digits, fresh corrupted samples, noise {d.noise.max():g}")
    a2.legend(fontsize=7, ncol=3, loc="lower right")
    fig.tight_layout()
    return fig


def weights_figure(df: pd.DataFrame, snap: dict):
    """Heatmaps of W*(t) at a few t and of W_H; ||W*(t) - W_H|| / ||W_H|| versus t."""
    k = len(snap["times"])
    fig = plt.figure(figsize=(2.6 * (k + 1), 6.5))
    grid = fig.add_gridspec(2, k + 1, height_ratios=[1, 1.1])
    mats = [*snap["W"], snap["W_H"]]
    titles = [f"W*(t={t:g})" for t in snap["times"]] + ["W_H = beta Theta^T Theta"]
    vmax = float(np.max(np.abs(snap["W_H"])))
    heat = []
    for j, (M, title) in enumerate(zip(mats, titles, strict=True)):
        ax = fig.add_subplot(grid[0, j])
        image = ax.imshow(M, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        heat.append(ax)
    fig.colorbar(image, ax=heat, shrink=0.8, label="weight W_ij")
    ax = fig.add_subplot(grid[1, :])
    w = df[df.protocol == "weights"]
    for (ld, nz), g in w.groupby(["load", "noise"]):
        s = summarize(g, ["t"], "w_hopfield_rel")
        ax.plot(s.t, s["mean"], ls="-" if nz == 0 else "--", label=f"load {ld:g}, noise {nz:g}")
    ax.set(xlabel="t", ylabel="||W*(t) - W_H||_F / ||W_H||_F", yscale="log")
    ax.legend(fontsize=7, ncol=2)
    return fig


def general_figure(df: pd.DataFrame):
    """Bit accuracy at t1 versus load for the general-index programs and the baselines
    (same samples), training and fresh samples (columns) for each (beta, t1, training
    samples per exemplar, noise) (rows)."""
    d = df[df.protocol == "general"]
    d = d[d.t.isna() | np.isclose(d.t, d.t1)]
    if "samples_per_exemplar" not in d:  # results from before the column: one group
        d = d.assign(samples_per_exemplar=0)
    settings = sorted({(float(b), float(t), float(k), float(z)) for b, t, k, z in
                       zip(d.beta, d.t1, d.samples_per_exemplar, d.noise, strict=True)})
    fig, axes = plt.subplots(max(1, len(settings)), 2, figsize=(10, 3.6 * max(1, len(settings))),
                             squeeze=False, sharey=True)
    legend = None
    for i, (b, t1, per_ex, z) in enumerate(settings):
        row = _pick(d, beta=b, t1=t1, noise=z)
        row = row[row.samples_per_exemplar == per_ex]
        loads = sorted(row.load.dropna().unique())
        single = len(loads) == 1   # a one-load row: dots side by side, one per method
        if not single and legend is None:
            legend = axes[i, 1]
        for ax, split in zip(axes[i], ("train", "test"), strict=True):
            s = row[row.split == split]
            shown = [m for m in COLORS if m in set(s.method)]
            for k, m in enumerate(shown):
                r = summarize(s[s.method == m], ["load"], "bit_accuracy")
                general = m.startswith("general-")
                dodge = 0.002 * (k - (len(shown) - 1) / 2)   # keep the error bars apart
                _series(ax, r.assign(load=r.load + dodge), "load", k, len(shown), single,
                        LABELS.get(m, m), color=COLORS[m], marker="o" if general else ".",
                        ms=4, lw=2 if general else 1, ls="-" if general else "--")
            n = int(s.n.iloc[0]) if len(s) else 0
            if single:
                _single_axis(ax, [LABELS.get(m, m) for m in shown], "load", loads[0])
            else:
                ax.set_xlabel("load K/n")
            per = f", {per_ex:g} per exemplar" if per_ex > 0 else ""
            ax.set_title(f"{split} samples{per}, noise {z:g}, n={n}, beta={b:g}, t1={t1:g}",
                         fontsize=9)
        axes[i, 0].set_ylabel("bit accuracy at t1")
    if legend is not None:
        legend.legend(fontsize=7)
    fig.tight_layout()
    return fig


def general_verdicts(comp: pd.DataFrame, split: str = "test"):
    """Where the general programs beat each rule: one panel per (index, rival), a cell per
    setting (rows: training samples per exemplar and t1; columns: noise and load), colored
    by the mean paired difference of bit accuracy at t1 (program minus rule, from
    ``claims.general_comparison``) and labelled with it in points of accuracy, bold where
    the 95% interval excludes 0. Settings without results stay blank."""
    c = comp[comp.split == split]
    if "samples_per_exemplar" not in c:  # results from before the column: one group
        c = c.assign(samples_per_exemplar=0)
    methods = sorted(c.method.unique())
    rivals = [r for r in LABELS if r in set(c.rival)]
    rows = sorted({(int(k), float(t)) for k, t in zip(c.samples_per_exemplar, c.t1,
                                                         strict=True)})
    cols = sorted({(float(z), float(ld)) for z, ld in zip(c.noise, c.load, strict=True)})
    span = float(np.nanmax(np.abs(c["mean"]))) if len(c) else 1.0
    noises = sorted({z for z, _ in cols})
    fig, axes = plt.subplots(len(methods), len(rivals), squeeze=False, layout="constrained",
                             figsize=(3.3 * len(rivals) + 1.6,
                                      0.36 * len(rows) * len(methods) + 1.8))
    image = None
    for i, m in enumerate(methods):
        for j, rival in enumerate(rivals):
            ax = axes[i, j]
            sel = c[(c.method == m) & (c.rival == rival)]
            grid = np.full((len(rows), len(cols)), np.nan)
            for r in sel.itertuples():
                a = rows.index((int(r.samples_per_exemplar), float(r.t1)))
                b = cols.index((float(r.noise), float(r.load)))
                grid[a, b] = r.mean
                ax.text(b, a, f"{100 * r.mean:+.1f}", ha="center", va="center", fontsize=5.5,
                        fontweight="normal" if r.verdict == "n.s." else "bold",
                        color="0.45" if r.verdict == "n.s." else "black")
            image = ax.imshow(grid, cmap="RdBu", vmin=-span, vmax=span, aspect="auto")
            for b in range(1, len(cols)):  # a rule between the noise levels
                if cols[b][0] != cols[b - 1][0]:
                    ax.axvline(b - 0.5, color="black", lw=0.8)
            ax.set_xticks(range(len(cols)), [f"{ld:g}" for _, ld in cols], fontsize=6)
            ax.set_yticks(range(len(rows)), [f"{k}/ex, t1={t:g}" if k else f"t1={t:g}"
                                             for k, t in rows]
                          if j == 0 else [], fontsize=6)
            ax.set_xlabel("load; noise " + " | ".join(f"{z:g}" for z in noises), fontsize=6)
            ax.set_title(f"{LABELS.get(m, m).removeprefix('general: ')} - {LABELS[rival]}",
                         fontsize=7)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="bit accuracy, program - rule")
    where = "fresh corrupted" if split == "test" else "training"
    fig.suptitle(f"General programs against the rules on {where} samples: mean paired "
                 "difference (points of accuracy; bold: 95% interval excludes 0)", fontsize=8)
    return fig
