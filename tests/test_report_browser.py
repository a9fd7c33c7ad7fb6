"""The report opens in a real browser (headless Chromium) with no console messages.

Skipped only when no Chromium or Chrome is installed (CI installs Debian's `chromium`).
Chromium logs every console message of the page at log level 0 as ``INFO:CONSOLE``; a
control page with a ``console.error`` checks that this detection works here.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from weightsynth.study import default_config, plots
from weightsynth.study.report import build_report

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome", "chrome")
                if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium/Chrome installed")


def _open(tmp_path, page: str, name: str) -> tuple[str, list[str]]:
    """Load ``page`` from disk in headless Chromium: (the DOM it built, console lines)."""
    path = tmp_path / f"{name}.html"
    path.write_text(page)
    res = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--no-first-run",
         f"--user-data-dir={tmp_path / f'profile-{name}'}", "--enable-logging=stderr",
         "--log-level=0", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout, [ln for ln in res.stderr.splitlines() if re.search(r"CONSOLE", ln)]


def test_report_renders_without_console_errors(tmp_path):
    t = np.linspace(0, 2, 5)
    df = pd.DataFrame([dict(protocol="autoassoc", n=64, load=0.1, noise=0.15, beta=0.01,
                            t1=2.0, seed=s, split=sp, method=m, t=tt,
                            bit_accuracy=0.9 + 0.01 * s, z_theta=tt)
                       for s in range(3) for sp in ("train", "test")
                       for m in ("optimal", "outer_continuous") for tt in t])
    figures = {"learning_curve": plots.render(plots.main_figure(df, 0.1, 0.15))}
    claims = pd.DataFrame([dict(claim="W*(t0) = beta Theta^T Phi", status="held",
                                evidence="1e-16", parameters="n in {64}")])
    page = build_report(default_config(quick=True), claims, {}, figures, {"rows": len(df)})
    dom, console = _open(tmp_path, page, "report")
    assert "<h1>Optimal weight programs" in dom and "data:image/png;base64," in dom
    assert console == [], console

    _, control = _open(tmp_path, "<!DOCTYPE html><html><body><script>console.error('boom')"
                       "</script></body></html>", "control")
    assert any("boom" in ln for ln in control), "console detection does not work here"
