r"""The paper's claims, decided from the tidy records with numbers and parameter ranges.

Each claim gets a status: ``held``, ``not held``, ``held only for some parameters`` (with
the settings where it held and where it failed), or ``not measured``. Comparisons of
accuracy are paired by seed and decided by the 95% Student-t interval of the mean
difference: held where the interval lies above 0, failed where it lies below 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import maps_report
from .stats import paired_difference, summarize

HELD, NOT_HELD, SOME, UNMEASURED = ("held", "not held", "held only for some parameters",
                                    "not measured")
MIN_SEEDS = 20
W0_TOL = 1e-9      # relative tolerance for W*(t0) = beta Theta^T Phi (float64)
HOPFIELD_TOL = 0.05  # ||W*(t) - W_H|| / ||W_H|| below this counts as reaching W_H


def _values(df: pd.DataFrame, col: str) -> str:
    vals = sorted({float(v) for v in df[col].dropna()})
    return "{" + ", ".join(f"{v:g}" for v in vals) + "}"


def _ranges(df: pd.DataFrame, cols) -> str:
    return ", ".join(f"{c} in {_values(df, c)}" for c in cols if c in df and len(df))


def _differences(g: pd.DataFrame) -> str:
    """Per-setting paired differences (columns mean, lo, hi, verdict) in words: a range
    with counts over several settings, the value and its interval for a single one."""
    if len(g) == 1:
        r = g.iloc[0]
        word = {"better": "significantly better", "worse": "significantly worse"}.get(
            r.verdict, "not significant")
        spread = ("the same for every seed" if r.lo == r.hi else
                  f"95% interval {r.lo:+.3f} to {r.hi:+.3f}")
        return f"{r['mean']:+.3f} ({spread}) in the one setting: {word}"
    nb, nw = int((g.verdict == "better").sum()), int((g.verdict == "worse").sum())
    return (f"from {g['mean'].min():+.3f} to {g['mean'].max():+.3f} over {len(g)} settings; "
            f"significantly better in {nb}, worse in {nw}")


def _status(n_held: int, n_total: int) -> str:
    if n_total == 0:
        return UNMEASURED
    return HELD if n_held == n_total else NOT_HELD if n_held == 0 else SOME


def claim_w0(weights: pd.DataFrame) -> dict:
    """Claim 1: W*(t0) = beta sum_r theta_r phi_r^T (derivation eq. 12)."""
    w = weights.dropna(subset=["w_t0_err"]) if len(weights) else weights
    row = dict(claim="W*(t0) = beta sum_r theta_r phi_r^T (outer-product relation at t0)")
    if not len(w):
        return dict(row, status=UNMEASURED, evidence="", parameters="")
    rel = (w.w_t0_err / w.w_t0_scale).max()
    return dict(row, status=HELD if rel <= W0_TOL else NOT_HELD,
                evidence=f"max |W*(t0) - beta Theta^T Phi| = {w.w_t0_err.max():.2e} "
                         f"(relative {rel:.1e}) over {len(w)} programs",
                parameters=_ranges(w, ["n", "load", "noise", "beta"]))


def claim_hopfield(weights: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """Claim 2: the Hopfield matrix W_H = beta Theta^T Theta is a point of the trajectory
    when the outputs reach their targets. Per program (setting and seed): the minimum over t
    of ||W*(t) - W_H||_F / ||W_H||_F, and whether every output bit is right at t1."""
    row = dict(claim="Hopfield matrix beta sum_r theta_r theta_r^T is a point of the optimal "
                     "trajectory (reached when outputs reach targets)")
    if not len(weights):
        return dict(row, status=UNMEASURED, evidence="", parameters=""), pd.DataFrame()
    keys = ["n", "load", "noise", "beta"]
    g = weights.sort_values("t").groupby([*keys, "seed"])
    prog = pd.DataFrame({"min_rel": g.w_hopfield_rel.min(), "rel_t1": g.w_hopfield_rel.last(),
                         "acc_t1": g.bit_accuracy.last(), "out_err_t1": g.output_err.last()}
                        ).reset_index()
    prog["reached"] = prog.min_rel <= HOPFIELD_TOL
    prog["targets_met"] = prog.acc_t1 == 1.0
    per = prog.groupby(keys, as_index=False).agg(
        programs=("seed", "size"), reached=("reached", "sum"),
        targets_met=("targets_met", "sum"), min_rel=("min_rel", "min"),
        median_min_rel=("min_rel", "median"), acc_t1=("acc_t1", "mean"))
    met, unmet = prog[prog.targets_met], prog[~prog.targets_met]
    held, failed = per[per.reached == per.programs], per[per.reached < per.programs]
    ev = (f"W_H reached (min_t ||W*(t)-W_H||/||W_H|| <= {HOPFIELD_TOL}) in "
          f"{int(prog.reached.sum())}/{len(prog)} programs; all {len(met)} programs whose "
          f"outputs met every target bit at t1 end within "
          f"{met.rel_t1.max() if len(met) else np.nan:.2g} of W_H; the others end at "
          f"distance >= {unmet.rel_t1.min() if len(unmet) else np.nan:.2g} with mean final "
          f"bit accuracy {unmet.acc_t1.mean() if len(unmet) else np.nan:.2f}")
    params = "; ".join(p for p in (
        f"reached by every seed: {_ranges(held, keys)}" if len(held) else "",
        f"not by every seed: {_ranges(failed, keys)}" if len(failed) else "") if p)
    return dict(row, status=_status(len(held), len(per)), evidence=ev, parameters=params), per


def claim_better(auto: pd.DataFrame, split: str, claim_times, name: str,
                 rival: str = "outer_continuous") -> tuple[dict, pd.DataFrame]:
    """Claims 3/4: bit accuracy of the optimal program minus the rival's, paired by seed,
    per (n, load, noise, beta, t) for t in ``claim_times``."""
    row = dict(claim=name)
    d = auto[(auto.split == split) & auto.method.isin(["optimal", rival])]
    d = d[d.t.isna() | np.isin(np.round(d.t, 9), np.round(np.asarray(claim_times), 9))]
    if d.empty or not {"optimal", rival} <= set(d.method):
        return dict(row, status=UNMEASURED, evidence="", parameters=""), pd.DataFrame()
    keys = ["n", "load", "noise", "beta", "t"]
    diff = paired_difference(d, "optimal", rival, keys, "bit_accuracy")
    diff["verdict"] = np.where(diff.lo > 0, "better", np.where(diff.hi < 0, "worse", "n.s."))
    better, worse = diff[diff.verdict == "better"], diff[diff.verdict == "worse"]
    seeds = int(diff["count"].min())
    ev = (f"optimal - {rival} bit accuracy ({split}), mean difference "
          f"{_differences(diff)}; {seeds} seeds per setting (95% t-intervals)")
    if seeds < MIN_SEEDS:
        ev += f"; fewer than {MIN_SEEDS} seeds: indicative only"
    params = "; ".join(p for p in (
        f"better: {_ranges(better, keys)}" if len(better) else "",
        f"worse: {_ranges(worse, keys)}" if len(worse) else "") if p)
    return dict(row, status=_status(len(better), len(diff)), evidence=ev,
                parameters=params), diff


def claim_index(auto: pd.DataFrame) -> dict:
    """The optimal program attains the least J (eq. 3): J - J* for optimal vs outer product."""
    row = dict(claim="The optimal program attains the minimum index J* (below the outer "
                     "product rule's J in the same N)")
    j = auto.dropna(subset=["J"]) if "J" in auto else auto.iloc[:0]
    if j.empty:
        return dict(row, status=UNMEASURED, evidence="", parameters="")
    gap = (j.J - j.J_star) / j.J_star.abs()
    opt, out = gap[j.method == "optimal"], gap[j.method == "outer_continuous"]
    ok = bool(len(opt)) and float(opt.abs().max()) < 1e-4 and (
        out.empty or float(out.min()) > float(opt.max()))
    ev = f"(J - J*)/|J*|: optimal max {opt.abs().max():.1e}"
    if len(out):
        ev += f"; outer product from {out.min():.2g} to {out.max():.2g}"
    return dict(row, status=HELD if ok else NOT_HELD, evidence=ev,
                parameters=_ranges(j, ["n", "load", "noise", "beta"]))


GENERAL_RIVALS = ("outer_continuous", "outer_discrete", "projection", "storkey")
#: the columns that name a setting of protocol general in a claim (absent ones are skipped)
GENERAL_SETTING = ("load", "noise", "beta", "t1", "samples_per_exemplar")


def general_comparison(gen: pd.DataFrame) -> pd.DataFrame:
    """Bit accuracy at t1 of each ``general-*`` program minus each rival's (continuous rivals
    at t1 too), paired by seed: one row per (method, rival, split, n, load, noise, beta, t1)
    with mean, 95% interval lo/hi, count and verdict."""
    if gen.empty:
        return pd.DataFrame()
    d = gen[gen.t.isna() | np.isclose(gen.t, gen.t1)]
    samples = ["samples_per_exemplar"] if "samples_per_exemplar" in d else []
    keys = ["split", "n", *samples, "load", "noise", "beta", "t1", "t"]
    out = []
    for m in sorted(x for x in d.method.unique() if str(x).startswith("general-")):
        for rival in GENERAL_RIVALS:
            if rival not in set(d.method):
                continue
            diff = paired_difference(d, m, rival, keys, "bit_accuracy")
            out.append(diff.drop(columns="t").assign(method=m, rival=rival))
    if not out:
        return pd.DataFrame()
    res = pd.concat(out, ignore_index=True)
    res["verdict"] = np.where(res.lo > 0, "better", np.where(res.hi < 0, "worse", "n.s."))
    return res[["method", "rival", *keys[:-1], "mean", "lo", "hi", "count", "verdict"]]


def claim_general(comp: pd.DataFrame, gen: pd.DataFrame, split: str) -> dict:
    """Claims 6-7 (docs/experiments.md): do programs under the general recall indices beat
    the outer-product, projection and Storkey rules in error correction (bit accuracy at t1,
    paired by seed)?"""
    where = "training samples" if split == "train" else "fresh corrupted samples"
    row = dict(claim=f"Programs synthesized under the general recall indices (terminal "
                     f"output correlation, terminal squared error) beat the outer-product, "
                     f"projection and Storkey rules in error correction ({where}, at t1)")
    c = comp[comp.split == split] if len(comp) else comp
    if c.empty:
        return dict(row, status=UNMEASURED, evidence="", parameters="")
    parts, params = [], []
    for (m, rival), g in c.groupby(["method", "rival"], sort=True):
        parts.append(f"{m.removeprefix('general-')} - {rival}: {_differences(g)}")
        for verdict in ("better", "worse"):
            sel = g[g.verdict == verdict]
            if len(sel):
                params.append(f"{m.removeprefix('general-')} vs {rival} {verdict}: "
                              f"{_ranges(sel, GENERAL_SETTING)}")
    seeds = int(c["count"].min())
    ev = "; ".join(parts) + f"; {seeds} seeds per setting (95% t-intervals)"
    if seeds < MIN_SEEDS:
        ev += f"; fewer than {MIN_SEEDS} seeds: indicative only"
    conv = gen.dropna(subset=["iterations"]) if "iterations" in gen else gen.iloc[:0]
    if len(conv):
        ev += (f"; solver converged in {int(conv.converged.sum())}/{len(conv)} programs "
               f"(median {conv.iterations.median():.0f} iterations)")
    n_better = int((c.verdict == "better").sum())
    return dict(row, status=_status(n_better, len(c)), evidence=ev,
                parameters="; ".join(params) + f" (n = {_values(c, 'n')})")


#: per rival group of maps_report.RIVAL_GROUPS, the claim's text
MAPS_CLAIMS = {
    "classical": "The synthesized network models an arbitrary map: lower test error than "
                 "the classical associators (Hebbian, pseudo-inverse) on fresh inputs",
    "sklearn": "The synthesized network is as good as the scikit-learn models (ridge, "
               "logistic regression, k-nearest neighbours, MLP) on fresh inputs",
}


def claim_maps(df: pd.DataFrame) -> tuple[list[dict], dict]:
    """Protocol maps (docs/experiments.md): test error of each judged method
    (``maps_report.SUBJECTS``: ``synth``, and ``general-squared_error`` where the run has
    it) minus each rival's, paired by seed, per (task, n, load, noise, L). Classical claim:
    held where better than both associators; scikit-learn claim: held where significantly
    worse than none of the models."""
    mr = maps_report
    m = mr.maps_rows(df)
    if m.empty:
        return [], {}
    details = {"maps_summary": summarize(m, [*mr.KEYS, "method"], "error")}
    rows, present = [], set(m.method)
    for method, subject, key in mr.SUBJECTS:
        if method not in present:
            continue
        own = m[m.method == method]  # its rivals ran in the same cells, on the same seeds
        seeds = int(own.groupby(mr.KEYS, dropna=False).seed.nunique().min())
        note = f"; {seeds} seed(s) per setting (95% t-intervals; none with 1 seed)" + (
            f"; fewer than {MIN_SEEDS} seeds: indicative only" if seeds < MIN_SEEDS else "")
        for name, rivals, _ in mr.RIVAL_GROUPS:
            c = mr.comparisons(m, rivals, method=method)
            details[f"{key}_{name}"] = c
            if c.empty:
                continue
            per = c.groupby(mr.KEYS, dropna=False).verdict.agg(list).reset_index()
            if name == "classical":
                ok = per.verdict.apply(lambda v: all(x == "better" for x in v))
            else:
                ok = per.verdict.apply(lambda v: all(x != "worse" for x in v))
            ev = "; ".join(
                f"{method} - {r}: better in {int((g.verdict == 'better').sum())}/{len(g)}, "
                f"worse in {int((g.verdict == 'worse').sum())}" for r, g in c.groupby("rival"))
            params = [f"held: {mr.where(per[ok])}" if ok.any() else "",
                      f"not held: {mr.where(per[~ok])}" if (~ok).any() else ""]
            status = _status(int(ok.sum()), len(per)) if seeds >= 2 else UNMEASURED
            claim = MAPS_CLAIMS[name].replace("The synthesized network", subject, 1)
            rows.append(dict(claim=claim, status=status, evidence=ev + note,
                             parameters="; ".join(p for p in params if p)))
    return rows, details


def decide_claims(df: pd.DataFrame, config) -> tuple[pd.DataFrame, dict]:
    """The claims table and the per-setting details behind it. ``config`` is the
    :class:`StudyConfig` (or just its claim_times)."""
    claim_times = getattr(config, "claim_times", config)
    weights = df[df.protocol == "weights"]
    auto = df[df.protocol == "autoassoc"]
    c2, hop = claim_hopfield(weights)
    c3, d3 = claim_better(auto, "train", claim_times,
                          "Better than the outer-product rule in an error-correcting sense "
                          "(training samples, same dynamics N)")
    c4, d4 = claim_better(auto, "test", claim_times,
                          "Generalization: better than the outer-product rule on fresh "
                          "corrupted samples (not in the training set)")
    gen = df[df.protocol == "general"]
    comp = general_comparison(gen)
    rows = [claim_w0(weights), c2, c3, c4, claim_index(auto)]
    if len(gen):
        rows += [claim_general(comp, gen, "train"), claim_general(comp, gen, "test")]
    maps_claims, maps_details = claim_maps(df)  # protocol maps
    return pd.DataFrame(rows + maps_claims), {"hopfield": hop, "train": d3, "test": d4,
                                              "general": comp, **maps_details}
