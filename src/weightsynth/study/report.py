"""The study's self-contained HTML report: claims table, figures embedded, parameters.

The page has no external references (no scripts, stylesheets, fonts or images fetched):
figures are embedded as base64 PNG data URIs, so it opens from disk with no server.
"""

from __future__ import annotations

import base64
import html
from dataclasses import asdict

import pandas as pd

from .maps_report import section_html as maps_section_html

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f2f2f2}
.held{background:#d9f2d9}.not-held{background:#f8d7d7}.some{background:#fff3cd}
.unmeasured{background:#eee}
dt{font-weight:bold;margin-top:0.4em}dd{margin-left:1.5em}
figure{margin:1.5em 0}figcaption{font-size:0.9em;color:#444}
img{max-width:100%}code{background:#f4f4f4;padding:0 3px}
"""

_STATUS_CLASS = {"held": "held", "not held": "not-held",
                 "held only for some parameters": "some", "not measured": "unmeasured"}

FIGURE_CAPTIONS = {
    "learning_curve": "Main figure. Learning curve over the training samples: bit accuracy of "
                      "sign(z) and the activation correlation z.theta/n that the index J "
                      "rewards, for the optimal program and the outer-product rule in the "
                      "same dynamics N (mean and 95% interval over seeds).",
    "learning_curves_all": "(a, c) Learning curves at every load: training samples (top) "
                           "and fresh corrupted samples (bottom).",
    "versus_load": "(b) Bit accuracy versus load K/n.",
    "versus_noise": "(b) Bit accuracy versus corruption level.",
    "digits": "(d) The 8x8 digits: exemplars, a fresh corrupted digit per class and each "
              "method's recall; accuracy versus t.",
    "weights": "(e) The weight program: W*(t) heatmaps, the Hopfield matrix W_H, and their "
               "relative distance over t.",
    "maps_error": "Arbitrary maps: test error on fresh inputs against the "
                  "training-set size (digits, smooth teacher) and the load K/n (random "
                  "heteroassociation), mean and 95% band over seeds.",
    "maps_confusion": "Digits confusion matrices at the largest training set, summed over "
                      "seeds.",
    "general": "General recall indices: bit accuracy at t1 of the programs "
               "synthesized for the terminal output correlation and the terminal squared "
               "error, against the baselines on the same samples (mean and 95% interval).",
    "general_verdicts": "General recall indices, where they win: per setting, the mean "
                        "paired difference of bit accuracy at t1 on fresh samples, program "
                        "minus rule, in points of accuracy; bold where the 95% interval "
                        "excludes 0.",
}


#: the method names of the tables and figures, in words (also in docs/experiments.md)
GLOSSARY = {
    "optimal": "the optimal weight program W*(t) = beta Theta^T g(Z(t)) (derivation eq. 7), "
               "synthesized from the training pairs, in the continuous network N",
    "outer_continuous": "Hopfield's outer-product matrix of the training targets at the same "
                        "scale, W_H = beta Theta^T Theta, constant, in the same network N",
    "outer_discrete": "the Hebbian matrix (1/n) sum_k xi_k xi_k^T of the exemplars (zero "
                      "diagonal) in Hopfield's discrete network (asynchronous sign updates)",
    "projection": "the projection (pseudo-inverse) rule on the exemplars, same discrete "
                  "network",
    "storkey": "Storkey's (1997) incremental rule on the exemplars, same discrete network",
    "dense": "a modern Hopfield network (dense associative memory): one softmax retrieval "
             "step over the exemplars, then sign",
    "input": "the corrupted input itself, before any recall",
    "general-correlation": "a program synthesized by the general solver (feedback form, "
                           "docs/general.md) for the terminal output correlation index, in N",
    "general-squared_error": "a program synthesized by the general solver (feedback form, "
                             "docs/general.md) for the terminal squared output error index, "
                             "in N",
}


def _esc(x) -> str:
    return html.escape(str(x))


def plain(value) -> str:
    """A parameter value as a reader writes it: ``64`` for ``(64,)``, ``0.05, 0.1`` for a
    list, no Python brackets or quotes."""
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value) if value else "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def glossary_html() -> str:
    items = "".join(f"<dt><code>{_esc(k)}</code></dt><dd>{_esc(v)}</dd>"
                    for k, v in GLOSSARY.items())
    return f"<h2>Methods</h2><dl>{items}</dl>"


def claims_html(table: pd.DataFrame) -> str:
    """The claims table as an HTML table, each row coloured by its status."""
    rows = ["<table><tr><th>#</th><th>Claim</th><th>Status</th><th>Numbers</th>"
            "<th>Parameters</th></tr>"]
    for i, r in enumerate(table.itertuples(index=False), start=1):
        cls = _STATUS_CLASS.get(r.status, "")
        rows.append(f"<tr class='{cls}'><td>{i}</td><td>{_esc(r.claim)}</td>"
                    f"<td><b>{_esc(r.status)}</b></td><td>{_esc(r.evidence)}</td>"
                    f"<td>{_esc(r.parameters)}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _figure(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    cap = FIGURE_CAPTIONS.get(name, name)
    return (f"<figure id='{_esc(name)}'><img alt='{_esc(name)}' "
            f"src='data:image/png;base64,{data}'><figcaption>{_esc(cap)} "
            f"(<code>{_esc(name)}.png</code>, <code>{_esc(name)}.svg</code>)</figcaption>"
            "</figure>")


def _detail(title: str, df: pd.DataFrame) -> str:
    if df is None or df.empty:
        return ""
    body = df.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)
    return f"<details><summary>{_esc(title)}</summary>{body}</details>"


def _general_section(details: dict) -> str:
    comp = details.get("general")
    if comp is None or comp.empty:
        return ""
    worse = comp[comp.verdict == "worse"]
    better = comp[comp.verdict == "better"]
    return f"""<h2>General recall indices</h2>
<p>Programs W(t) synthesized by the solver of <code>general_solver</code> (by default the
feedback solver, docs/general.md) for the terminal output correlation
-sum_r g(z_r(t1)).theta_r and the terminal squared output error
sum_r ||g(z_r(t1)) - theta_r||^2, each with the weight penalty (1/(2 beta)) int ||W||^2 dt,
starting from W* (scaled down where it costs more than W = 0). They run in the same
network N and are scored on sign(z(t1)) against the same training and fresh samples as the
rules (paired by seed). Of {len(comp)} comparisons (index x rival x split x setting),
{len(better)} are significantly better and {len(worse)} significantly worse. These indices
reward the outputs at t1 only while the penalty grows with t1, so at long horizons they
also have a stationary point near W = 0 where the outputs decay (docs/general.md, "Long
horizons"); the solver's convergence is reported in the claims table (a program stopped by
the iteration cap is counted, not hidden).</p>
{_detail("General indices per setting: general program - rival, bit accuracy at t1", comp)}
"""


def _errors_section(errors) -> str:
    if errors is None or len(errors) == 0:
        return ""
    items = "".join(f"<li><code>{_esc(r.protocol)}</code> {_esc(r.params)}: "
                    f"<b>{_esc(r.error_type)}</b>: {_esc(r.message)}</li>"
                    for r in errors.itertuples(index=False))
    return (f"<h2>Failed cells</h2><p class='not-held'>{len(errors)} cells failed; the "
            "results above use the cells that finished. Tracebacks are in the sweep "
            f"folders' <code>errors/</code> datasets.</p><ul>{items}</ul>")


def build_report(config, claims: pd.DataFrame, details: dict, figures: dict,
                 meta: dict, errors: pd.DataFrame | None = None) -> str:
    """The full HTML page as a string (``errors``: failed cells, listed if any)."""
    params = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(plain(v))}</td></tr>"
                     for k, v in asdict(config).items())
    info = "".join(f"<li>{_esc(k)}: {_esc(v)}</li>" for k, v in meta.items())
    figs = "\n".join(_figure(name, f["png"]) for name, f in figures.items())
    quick = ("<p><b>Quick mode</b>: small n and few seeds; the statuses below are "
             "indicative, not decisive.</p>" if config.quick else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>weightsynth study report</title><style>{_CSS}</style></head><body>
<h1>Optimal weight programs versus the outer-product rule</h1>
<p>Reproduction of Farotimi, Dembo &amp; Kailath (NIPS 1989), Section 3: autoassociation
with the optimal weight program W*(t) = beta sum_r theta_r g(z_r(t))^T, compared with
Hopfield's outer-product rule and other baselines, over the training samples and on fresh
samples. Bit accuracy is that of sign(z); intervals are 95% Student-t intervals over
seeds, differences paired by seed.</p>
{quick}
{glossary_html()}
<h2>The paper's claims</h2>
{claims_html(claims)}
{_detail("Claim 2 per setting: min over t of ||W*(t)-W_H||/||W_H||", details.get("hopfield"))}
{_detail("Claim 3 per setting (training samples): optimal - outer product",
         details.get("train"))}
{_detail("Claim 4 per setting (fresh samples): optimal - outer product",
         details.get("test"))}
{_general_section(details)}
{maps_section_html(details)}
{_errors_section(errors)}
<h2>Figures</h2>
{figs}
<h2>Parameters</h2>
<table><tr><th>parameter</th><th>value</th></tr>{params}</table>
<h2>Run</h2><ul>{info}</ul>
</body></html>
"""
