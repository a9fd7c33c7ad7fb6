"""Report and figures: self-contained HTML, statuses shown, figures render as PNG and SVG."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from weightsynth.study import default_config, plots
from weightsynth.study.report import build_report, claims_html


def _claims():
    return pd.DataFrame([
        dict(claim="W*(t0) = beta sum theta phi^T", status="held", evidence="1e-16",
             parameters="n in {64}"),
        dict(claim="better <than> outer product", status="held only for some parameters",
             evidence="-0.2 to +0.01", parameters="better: load in {0.05}"),
        dict(claim="generalization", status="not held", evidence="x", parameters="y"),
    ])


def _fake_table():
    rows = []
    rng = np.random.default_rng(0)
    for seed in range(3):
        for split in ("train", "test"):
            for load in (0.05, 0.15):
                base = dict(protocol="autoassoc", n=64, load=load, noise=0.15, beta=0.01,
                            t1=2.0, seed=seed, split=split)
                for m in ("optimal", "outer_continuous"):
                    for t in (0.0, 1.0, 2.0):
                        rows.append(dict(base, method=m, t=t,
                                         bit_accuracy=0.9 + 0.05 * rng.random(),
                                         z_theta=t + rng.random()))
                for m in ("input", "outer_discrete"):
                    rows.append(dict(base, method=m, t=np.nan, bit_accuracy=0.85,
                                     z_theta=np.nan))
    return pd.DataFrame(rows)


def test_figures_render_png_and_svg():
    fig = plots.main_figure(_fake_table(), 0.15, 0.15)
    out = plots.render(fig)
    assert out["png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in out["svg"][:2000]
    out2 = plots.render(plots.versus(_fake_table(), "load", {"noise": 0.15}, [1.0, 2.0]))
    assert out2["png"][:4] == b"\x89PNG"


def test_report_is_self_contained_and_escaped():
    fig = plots.render(plots.learning_curves(_fake_table(), 0.15))
    page = build_report(default_config(quick=True), _claims(), {}, {"learning_curve": fig},
                        {"rows": 10})
    assert page.startswith("<!DOCTYPE html>")
    refs = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]*)""", page)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs)
    assert "http" not in page.lower().replace("http-equiv", "")
    assert "<link" not in page and "<script" not in page
    assert "better &lt;than&gt; outer product" in page        # escaped
    for status in ("held", "not held", "held only for some parameters"):
        assert f"<b>{status}</b>" in page
    assert "Quick mode" in page


def test_claims_html_colours_status():
    html = claims_html(_claims())
    assert html.count("<tr class='held'>") == 1
    assert html.count("<tr class='some'>") == 1
    assert html.count("<tr class='not-held'>") == 1


def test_report_lists_failed_cells_and_general_section():
    comp = pd.DataFrame([dict(method="general-correlation", rival="storkey", split="test",
                              n=32, load=0.1, noise=0.15, beta=0.03, t1=1.0, mean=0.02,
                              lo=0.01, hi=0.03, count=20, verdict="better")])
    errors = pd.DataFrame([dict(cell_key="k", protocol="general", params='{"seed": 3}',
                                error_type="SolveError", message="a <bad> solve",
                                traceback="", time="")])
    page = build_report(default_config(quick=True), _claims(), {"general": comp}, {},
                        {"rows": 1}, errors=errors)
    assert "Failed cells" in page and "1 cells failed" in page
    assert "a &lt;bad&gt; solve" in page and "SolveError" in page
    assert "General recall indices" in page and "1 are significantly better" in page
    clean = build_report(default_config(quick=True), _claims(), {}, {}, {"rows": 1})
    assert "Failed cells" not in clean and "General recall indices" not in clean
    fig = plots.general_figure(pd.DataFrame([
        dict(protocol="general", method=m, split=sp, n=16, load=ld, noise=0.15, beta=0.06,
             t1=1.0, seed=s, t=1.0 if m.startswith("general") else np.nan,
             bit_accuracy=0.9) for m in ("general-correlation", "storkey")
        for sp in ("train", "test") for ld in (0.1, 0.2) for s in range(3)]))
    # both panels (train, test) show both methods
    assert [len(ax.get_legend_handles_labels()[1]) for ax in fig.axes] == [2, 2]
    assert plots.render(fig)["png"][:4] == b"\x89PNG"


def test_verdict_map_places_each_setting_and_marks_significance():
    base = dict(method="general-squared_error", rival="projection", split="test", n=100,
                beta=0.01, count=20)
    comp = pd.DataFrame([
        dict(base, samples_per_exemplar=5, t1=1.0, noise=0.1, load=0.05, mean=0.02,
             lo=0.01, hi=0.03, verdict="better"),
        dict(base, samples_per_exemplar=20, t1=6.0, noise=0.25, load=0.2, mean=-0.005,
             lo=-0.02, hi=0.01, verdict="n.s."),
        dict(base, split="train", samples_per_exemplar=5, t1=1.0, noise=0.1, load=0.05,
             mean=0.5, lo=0.4, hi=0.6, verdict="better")])
    fig = plots.general_verdicts(comp)
    ax = fig.axes[0]
    grid = ax.images[0].get_array()
    # rows (5/ex, t1 1), (20/ex, t1 6); columns (noise 0.1, load 0.05), (0.25, 0.2)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["5/ex, t1=1", "20/ex, t1=6"]
    assert grid[0, 0] == 0.02 and grid[1, 1] == -0.005
    assert np.ma.is_masked(grid[0, 1]) or np.isnan(grid[0, 1])   # no result: blank
    texts = {t.get_text(): t for t in ax.texts}
    assert set(texts) == {"+2.0", "-0.5"}           # the train row is not drawn
    assert texts["+2.0"].get_fontweight() == "bold"
    assert texts["-0.5"].get_fontweight() == "normal"
    assert plots.render(fig)["png"][:4] == b"\x89PNG"


# ---- what a reader of the report sees --------------------------------
def test_intervals_of_bounded_metrics_stay_in_range():
    from weightsynth.study.stats import summarize

    df = pd.DataFrame({"g": 0, "bit_accuracy": [1.0, 1.0, 0.9], "z_theta": [1.0, 1.0, 0.9]})
    acc = summarize(df, ["g"], "bit_accuracy").iloc[0]
    assert acc.hi == 1.0 and acc.lo < acc["mean"] < 1.0
    free = summarize(df, ["g"], "z_theta").iloc[0]  # unbounded: the t-interval as it is
    assert free.hi > 1.0


def test_parameters_and_glossary_read_as_plain_text():
    from weightsynth.study.config import METHOD_NAMES
    from weightsynth.study.report import GLOSSARY

    page = build_report(default_config(quick=True), _claims(), {}, {}, {"rows": 1})
    params = page.split("<h2>Parameters</h2>", 1)[1]
    assert not re.search(r"\(\d+,\)|\[|\]|'", params)   # no Python tuples, lists, quotes
    assert "<td>n</td><td>64</td>" in params
    assert set(METHOD_NAMES) <= set(GLOSSARY)
    for name in METHOD_NAMES:
        assert f"<dt><code>{name}</code></dt>" in page


def test_claim_evidence_for_a_single_setting_reads_as_one_value():
    from weightsynth.study.claims import claim_better

    rows = [dict(protocol="autoassoc", split="train", n=64, load=0.1, noise=0.1, beta=0.01,
                 t=1.0, seed=s, method=m,
                 bit_accuracy=0.9 + 0.01 * s + (m == "optimal") * (d + 0.001 * s))
            for s in range(3) for m, d in (("optimal", -0.004), ("outer_continuous", 0.0))]
    claim, _ = claim_better(pd.DataFrame(rows), "train", [1.0], "better")
    ev = claim["evidence"]
    assert "-0.003 (95% interval -0.005 to -0.001) in the one setting: significantly worse" in ev
    assert "0/1" not in ev and "-0.003 to -0.003" not in ev


def test_weight_heatmaps_have_a_colour_bar():
    snap = {"times": [0.0, 1.0], "W": [np.eye(4), 2 * np.eye(4)], "W_H": 2 * np.eye(4)}
    w = pd.DataFrame([dict(protocol="weights", load=0.1, noise=0.0, t=t, seed=0,
                           w_hopfield_rel=0.5 + t) for t in (0.0, 1.0)])
    fig = plots.weights_figure(w, snap)
    assert any(ax.get_ylabel() == "weight W_ij" for ax in fig.axes)
    plots.render(fig)


def test_one_value_grid_plots_methods_side_by_side():
    """Quick mode has one noise value: versus-noise shows one dot per method, labelled."""
    fig = plots.versus(_fake_table(), "noise", {"load": 0.15}, [1.0, 2.0])
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert "optimal, t=1" in labels and "corrupted input" in labels
    assert "noise = 0.15 only" in ax.get_xlabel()
    plots.render(fig)
