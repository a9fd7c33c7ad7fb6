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
    assert plots.render(fig)["png"][:4] == b"\x89PNG"
