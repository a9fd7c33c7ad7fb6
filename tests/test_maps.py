"""Protocol maps (docs/experiments.md, Arbitrary maps): the classical associators against
independent formulas, one cell of each task, the claims decided on constructed tables,
figures and the section."""

import json

import numpy as np
import pandas as pd
import pytest

from weightsynth.study import default_config, with_overrides
from weightsynth.study.claims import claim_maps as claim_rows
from weightsynth.study.maps import _Linear, maps_cell
from weightsynth.study.maps_report import confusion_figure, error_figure, section_html
from weightsynth.study.runner import expand_grid

NOJAX = ("hebbian", "pinv", "ridge", "knn")


def test_linear_associators_match_their_formulas(rng):
    X = rng.standard_normal((30, 5))
    T = rng.standard_normal((30, 3))
    Xc = X - X.mean(0)
    heb = _Linear("hebbian").fit(X, T)
    np.testing.assert_allclose(heb.W, sum(np.outer(t - T.mean(0), x) for t, x in
                                          zip(T, Xc, strict=True)) / 30, atol=1e-12)
    pin = _Linear("pinv").fit(X, T)
    # least squares with an intercept, by scipy's lstsq on [X, 1]
    from scipy.linalg import lstsq

    coef = lstsq(np.hstack([X, np.ones((30, 1))]), T)[0]
    Xq = rng.standard_normal((4, 5))
    np.testing.assert_allclose(pin.predict(Xq), np.hstack([Xq, np.ones((4, 1))]) @ coef,
                               atol=1e-10)


@pytest.mark.parametrize("task,kw", [("hetero", dict(load=0.05, noise=0.1, n=40)),
                                     ("digits", dict(size=60, with_confusion=True)),
                                     ("smooth", dict(size=40, n=8))])
def test_cell_rows(task, kw):
    rows = maps_cell(task=task, seed=0, methods=NOJAX, tune=True, **kw)
    df = pd.DataFrame(rows)
    assert set(df.method) == set(NOJAX)
    assert (df.protocol == "maps").all() and (df.split == "test").all()
    assert df.error.between(0, np.inf).all()
    tuned = df.set_index("method").budget
    assert tuned["ridge"] == 4 and tuned["hebbian"] == 1
    if task == "digits":
        C = np.asarray(json.loads(df.confusion.iloc[0]))
        assert C.shape == (10, 10) and C.sum() == 497
        # test error from the confusion matrix equals the reported error
        assert np.isclose(1 - np.trace(C) / C.sum(), df.error.iloc[0])
    if task == "hetero":   # 1-NN on 10%-noisy copies of 2 random pairs recalls every bit
        assert df.set_index("method").error["knn"] == 0.0


def test_digits_runs_the_general_classifier():
    """The general program classifies the digits from 30 training images: a converged fit
    whose held-out error is far below chance (0.9; about 0.3 here, as the Hebbian
    associator's 0.38 and logistic regression's 0.27 on the same split)."""
    rows = maps_cell(task="digits", size=30, seed=0, tune=False,
                     methods=("general-squared_error", "hebbian"))
    row = pd.DataFrame(rows).set_index("method").loc["general-squared_error"]
    assert row.converged and row.iterations > 1
    assert row.error < 0.45


def test_hetero_runs_the_general_regressor():
    """Noise-free pairs: the test inputs are the training inputs, and the squared-error
    program must map each x_k to the signs of y_k (a map it was fitted to, not a copy)."""
    rows = maps_cell(task="hetero", load=0.25, noise=0.0, n=16, seed=0, tune=False,
                     methods=("general-squared_error", "hebbian"))
    df = pd.DataFrame(rows).set_index("method")
    assert list(df.index) == ["general-squared_error", "hebbian"]
    row = df.loc["general-squared_error"]
    assert row.L == 20 and row.converged and row.iterations > 1
    assert row.error == 0.0


def _table(diff_by_seed, rival="hebbian", method="synth"):
    rows = []
    for s, d in enumerate(diff_by_seed):
        for meth, err in ((method, 0.5 + d), (rival, 0.5)):
            rows.append(dict(protocol="maps", task="digits", method=meth, split="test", n=64,
                             load=np.nan, noise=np.nan, L=100, seed=s, error=err, t=np.nan))
    return pd.DataFrame(rows)


def test_claims_decided_by_paired_intervals():
    better = _table([-0.1, -0.12, -0.09, -0.11])
    rows, details = claim_rows(better)
    assert rows[0]["status"] == "held"
    assert details["maps_classical"].verdict.tolist() == ["better"]
    worse = _table([0.1, 0.12, 0.09, 0.11])
    assert claim_rows(worse)[0][0]["status"] == "not held"
    # one seed: no interval, so nothing is decided
    assert claim_rows(_table([-0.1]))[0][0]["status"] == "not measured"
    assert claim_rows(pd.DataFrame({"protocol": ["autoassoc"]})) == ([], {})


def test_claims_judge_the_general_index_where_the_run_has_it():
    """The general index's program gets its own claims rows (and details), decided the
    same way; the closed form's rows are unchanged beside it."""
    d = [-0.1, -0.12, -0.09, -0.11]
    worse = _table([-x for x in d], method="general-squared_error")
    both = pd.concat([_table(d), worse[worse.method == "general-squared_error"]])
    rows, details = claim_rows(both)
    by = {r["claim"].split(" models")[0]: r for r in rows}
    assert by["The synthesized network"]["status"] == "held"
    row = by["The general-index program (terminal squared error, feedback solver)"]
    assert row["status"] == "not held"
    assert "general-squared_error - hebbian: better in 0/1, worse in 1" in row["evidence"]
    assert details["maps_general_classical"].verdict.tolist() == ["worse"]
    assert "general-squared_error - classical" in section_html(details)


def test_figures_and_section():
    df = pd.DataFrame([r for s in range(2) for r in maps_cell(
        task="digits", size=40, seed=s, methods=("hebbian", "knn"), with_confusion=True)])
    error_figure(df)
    confusion_figure(df)
    _, details = claim_rows(df)
    assert "Arbitrary maps" in section_html(details)
    assert section_html({}) == ""


def test_config_and_grid():
    q = default_config(quick=True)
    g = expand_grid(q)["maps"]
    assert len(g) == 3 and all(not c["tune"] for c in g)
    full = expand_grid(default_config())["maps"]
    assert len(full) == 20 * (4 * 2 + 6 + 6)
    assert "maps" not in expand_grid(with_overrides(q, {"maps_tasks": []}))
    with pytest.raises(ValueError, match="maps_methods"):
        with_overrides(q, {"maps_methods": ["nope"]})
