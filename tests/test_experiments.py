"""Experiments: protocols' results checked against independent properties and references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from weightsynth.study import (
    StudyConfig,
    default_config,
    expand_grid,
    load_config,
    mean_ci,
    paired_difference,
    run_cells,
    with_overrides,
)
from weightsynth.study.claims import HELD, NOT_HELD, SOME, claim_better
from weightsynth.study.data import cell_rng, n_exemplars, noisy_samples, random_exemplars
from weightsynth.study.protocols import (
    autoassoc_cell,
    digits_cell,
    weight_snapshots,
    weights_cell,
)

from . import _reference as ref

# The quick study's shapes (n = 64, padded to K = 10 exemplars) for every test, so JAX
# compiles its solvers once per session, shared with the digits and the CLI end-to-end run.
Q = default_config(quick=True)
TINY = dict(n=64, load=0.05, beta=Q.beta[0], t1=Q.t1[0], n_times=Q.n_times,
            claim_times=Q.claim_times, samples_per_exemplar=5, test_samples_per_exemplar=5,
            amplitude=0.5, pad_K=10)


def test_w_t0_is_beta_theta_phi_and_distance_to_hopfield():
    rows = weights_cell(noise=0.2, seed=3, **TINY)
    df = pd.DataFrame(rows)
    first = df.iloc[0]
    assert first.t == 0.0
    assert first.w_t0_err <= 1e-12 * first.w_t0_scale
    # independent reference: regenerate the data and compute both matrices with numpy
    rng = cell_rng("autoassoc", 64, 0.05, 0.2, 3, base_seed=0)
    ex = random_exemplars(n_exemplars(0.05, 64), 64, rng)
    s = noisy_samples(ex, 5, 0.2, 0.5, rng)
    W0 = Q.beta[0] * s.targets.T @ s.inputs
    WH = Q.beta[0] * s.targets.T @ s.targets
    expect = np.linalg.norm(W0 - WH) / np.linalg.norm(WH)
    assert first.w_hopfield_rel == pytest.approx(expect, rel=1e-10)


def test_study_program_weights_match_independent_reference():
    """The study's optimal program (n = 64, the shapes of the J = J* check below) is W*(t) of
    the cell's data at several times: J = J* alone would let W errors near 1e-4 through."""
    snap = weight_snapshots(noise=0.2, seed=3, times=(0.0, 0.5, 2.0, 6.0),
                            **{k: v for k, v in TINY.items() if k != "n_times"},
                            n_times=Q.n_times)
    rng = cell_rng("autoassoc", 64, 0.05, 0.2, 3, base_seed=0)
    s = noisy_samples(random_exemplars(n_exemplars(0.05, 64), 64, rng), 5, 0.2, 0.5, rng)
    t1 = Q.t1[0]
    # synthesize's rtol 1e-8 per step, over t1 = 6: W to 1e-6 of its size
    ref.assert_weights_match(lambda ts: snap["W"], s.inputs, s.targets, Q.beta[0], 0.0, t1,
                             rel=1e-6, steps=240, fractions=snap["times"] / t1)


@pytest.mark.parametrize("methods", [("optimal", "outer_continuous", "outer_discrete",
                                      "projection", "storkey", "dense")])
def test_stored_patterns_recalled_perfectly_at_low_load(methods):
    # noise = 0: inputs are the stored patterns scaled by the amplitude
    rows = autoassoc_cell(noise=0.0, seed=1, methods=methods, **TINY)
    df = pd.DataFrame(rows)
    final = df[(df.split == "train") & ((df.t == Q.t1[0]) | df.t.isna())]
    assert set(final.method) == {"input", *methods}
    assert (final.bit_accuracy == 1.0).all()
    assert (final.exact_recall == 1.0).all()
    J = df.dropna(subset=["J"])
    opt = J[J.method == "optimal"].iloc[0]
    assert opt.J == pytest.approx(opt.J_star, rel=1e-6)        # W* attains J*
    assert J[J.method == "outer_continuous"].J.iloc[0] > opt.J  # the rule does not


def test_digits_recall_beats_corrupted_input():
    q = Q
    accs = []
    for seed in range(2):
        df = pd.DataFrame(digits_cell(noise=0.25, beta=q.beta[0], t1=q.t1[0], seed=seed,
                                      methods=("optimal", "outer_continuous"),
                                      n_times=q.n_times, claim_times=q.claim_times))
        test = df[df.split == "test"]
        accs.append((test[test.method == "input"].bit_accuracy.iloc[0],
                     test[(test.method == "optimal") & (test.t == q.t1[0])].bit_accuracy
                     .iloc[0]))
    inp, opt = np.mean(accs, axis=0)
    assert inp == pytest.approx(0.75, abs=0.03)   # 25% of bits flipped
    assert opt > inp + 0.05


def test_same_seed_same_table_and_seed_matters():
    cells = [dict(TINY, noise=0.1, seed=s, methods=("optimal", "outer_discrete"))
             for s in range(2)]
    a = run_cells("autoassoc", cells, progress=False)
    b = run_cells("autoassoc", cells, progress=False)
    pd.testing.assert_frame_equal(a, b)
    c = run_cells("autoassoc", [dict(cell, base_seed=7) for cell in cells], progress=False)
    assert not np.allclose(a.bit_accuracy, c.bit_accuracy)


def test_cell_seed_is_stable():
    # CRC-32 + SeedSequence, not Python's salted hash(): a fixed value on every run/machine
    assert cell_rng("autoassoc", 100, 0.14, 0.15, 3, base_seed=5).integers(1 << 30) == 842408080


def test_mean_ci_matches_scipy_and_textbook():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    m, lo, hi = mean_ci(x)
    # textbook: t_{0.975, 4} = 2.776445, sem = sqrt(2.5 / 5)
    assert m == 3.0
    assert hi - m == pytest.approx(2.776445 * np.sqrt(0.5), rel=1e-6)
    rng = np.random.default_rng(0)
    y = rng.normal(size=23)
    ref = stats.t.interval(0.9, len(y) - 1, loc=y.mean(), scale=stats.sem(y))
    assert mean_ci(y, 0.9)[1:] == pytest.approx(ref, rel=1e-12)
    assert np.isnan(mean_ci([1.0])[1])
    assert mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)


def _fake(diffs_by_load: dict[float, list[float]]) -> pd.DataFrame:
    rows = []
    for load, diffs in diffs_by_load.items():
        for s, d in enumerate(diffs):
            base = dict(n=10, load=load, noise=0.1, beta=0.1, t=1.0, seed=s, split="train")
            rows += [dict(base, method="optimal", bit_accuracy=0.8 + d),
                     dict(base, method="outer_continuous", bit_accuracy=0.8)]
    return pd.DataFrame(rows)


def test_paired_difference_and_claim_status():
    rng = np.random.default_rng(1)
    good = list(0.1 + 0.01 * rng.standard_normal(20))
    bad = list(-0.1 + 0.01 * rng.standard_normal(20))
    df = _fake({0.05: good, 0.2: bad})
    diff = paired_difference(df, "optimal", "outer_continuous",
                             ["n", "load", "noise", "beta", "t"], "bit_accuracy")
    assert diff["mean"].to_numpy() == pytest.approx([np.mean(good), np.mean(bad)])
    row, _ = claim_better(df, "train", [1.0], "c")
    assert row["status"] == SOME
    assert "better: n in {10}, load in {0.05}" in row["parameters"]
    assert "worse: n in {10}, load in {0.2}" in row["parameters"]
    assert claim_better(_fake({0.05: good}), "train", [1.0], "c")[0]["status"] == HELD
    assert claim_better(_fake({0.2: bad}), "train", [1.0], "c")[0]["status"] == NOT_HELD


def test_config_defaults_toml_and_validation(tmp_path):
    c = default_config()
    assert c.n == (100,) and c.beta == (0.01, 0.03) and c.seeds >= 20
    f = tmp_path / "s.toml"
    f.write_text("[study]\nloads = [0.1, 0.2]\nseeds = 3\nmethods = ['optimal']\n")
    c2 = load_config(f)
    assert c2.loads == (0.1, 0.2) and c2.seeds == 3 and c2.methods == ("optimal",)
    for bad, msg in [({"loads": [-0.1]}, "loads must be > 0"),
                     ({"noise": [0.7]}, "noise must be <= 0.5"),
                     ({"methods": ["hebb"]}, "unknown method 'hebb'"),
                     ({"colour": 1}, "unknown config key 'colour'"),
                     ({"seeds": 2.5}, "seeds must be an integer"),
                     ({"t1": [0.1]}, "claim_times must be <= t1")]:
        with pytest.raises(ValueError, match=msg):
            with_overrides(c, bad)
    f.write_text("loads = [0.1,\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(f)
    with pytest.raises(ValueError, match="amplitude must be < 1"):
        StudyConfig(amplitude=1.0)
    with pytest.raises(ValueError, match="unknown general_solver 'newton'"):
        with_overrides(c, {"general_solver": "newton"})
    with pytest.raises(ValueError, match="general_solver must be a name"):
        with_overrides(c, {"general_solver": 3})
    with pytest.raises(ValueError, match="general_samples must be >= 1"):
        with_overrides(c, {"general_samples": [5, 0]})


def test_expand_grid_counts():
    c = with_overrides(default_config(), {"loads": [0.05, 0.1], "noise": [0.1], "seeds": 3,
                                          "curve_load": 0.05, "curve_noise": 0.1})
    g = expand_grid(c)
    assert len(c.beta) == 2
    assert len(g["autoassoc"]) == 2 * 2 * 3
    assert len(g["digits"]) == len(c.digits_noise) * 2 * 3
    assert len(g["weights"]) == 2 * 2 * 2 * 3
    assert {cell["pad_K"] for cell in g["autoassoc"]} == {10}
    gen = g["general"]
    assert len(gen) == (len(c.general_loads) * len(c.general_noise) * len(c.general_t1)
                        * len(c.general_samples) * 3)
    assert {cell["samples_per_exemplar"] for cell in gen} == set(c.general_samples)
    assert {cell["solver"] for cell in gen} == {"feedback"}
    assert gen[0]["indices"] == ("correlation", "squared_error")
    assert "dense" not in gen[0]["baselines"] and "storkey" in gen[0]["baselines"]
    assert "general" not in expand_grid(with_overrides(c, {"methods": ["optimal"]}))


def test_general_protocol_rows_and_paper_index():
    from weightsynth.study.general import general_study_cell

    rows = general_study_cell(n=8, load=0.25, noise=0.1, beta=0.25, t1=1.0, seed=0,
                              baselines=("outer_discrete", "projection", "storkey"),
                              indices=("squared_error",), samples_per_exemplar=2,
                              test_samples_per_exemplar=2, n_times=3, nodes=6, max_iter=5)
    df = pd.DataFrame(rows)
    assert set(df.method) == {"input", "outer_discrete", "projection", "storkey",
                              "general-squared_error"}
    assert set(df.protocol) == {"general"} and set(df.split) == {"train", "test"}
    assert df.bit_accuracy.between(0, 1).all() and df.exact_recall.between(0, 1).all()
    # the same data as the autoassoc protocol: the corrupted inputs' accuracy is 1 - flips
    rng = cell_rng("autoassoc", 8, 0.25, 0.1, 0, base_seed=0)
    ex = random_exemplars(2, 8, rng)
    tr = noisy_samples(ex, 2, 0.1, 0.5, rng)
    inp = df[(df.method == "input") & (df.split == "train")].bit_accuracy.iloc[0]
    assert inp == np.mean(np.sign(tr.inputs) == tr.targets)
    # at t = 0 the program has not acted yet: the general program's rows are the inputs'
    for split in ("train", "test"):
        rows0 = df[(df.split == split) & (df.method == "general-squared_error") & (df.t == 0)]
        first = df[(df.split == split) & (df.method == "input")].bit_accuracy.iloc[0]
        assert rows0.bit_accuracy.iloc[0] == first
    gen = df.dropna(subset=["iterations"])
    assert len(gen) == 1 and (gen.t == 1.0).all() and (gen.split == "train").all()
    assert (gen.iterations <= 5).all()
    # the paper's J of this program, two separately integrated quantities tied by eq. (8):
    # J - J* = (1/(2 beta)) int ||W - beta M||^2 (evaluate_index's rtol 1e-10)
    assert gen.J.iloc[0] - gen.J_star.iloc[0] == pytest.approx(
        gen.excess.iloc[0], rel=1e-7, abs=1e-9 * abs(gen.J_star.iloc[0]))
    assert gen.excess.iloc[0] > 1e-6 * abs(gen.J_star.iloc[0])   # it is not W*
    assert gen.J_star.iloc[0] == pytest.approx(
        -np.sum(np.arctanh(tr.inputs) * tr.targets), rel=1e-12)
    assert gen.weight_norm.iloc[0] > 0


def test_weight_norm_is_the_rms_frobenius_norm():
    """weight_norm against the closed form for W(t) = A + (t - t0) B, linear in t (a grid
    program of two nodes): (1/T) int ||A + s B||^2 ds = ||A||^2 + T A.B + T^2 ||B||^2 / 3;
    the trapezoid rule on 101 times errs by T^2 ||B||^2 / (6 * 100^2)."""
    from weightsynth.control.grid_program import GridProgram
    from weightsynth.core.activations import get_activation
    from weightsynth.core.ode import SolverConfig
    from weightsynth.study.general import weight_norm

    rng = np.random.default_rng(3)
    A, B = rng.standard_normal((2, 5, 5))
    t0, t1 = 0.5, 2.5
    T = t1 - t0
    prog = GridProgram(activation=get_activation("tanh"), t0=t0, t1=t1,
                       W=np.stack([A, A + T * B]), drive=np.zeros((2, 5)),
                       solver=SolverConfig(solver="rk4", steps=4))
    exact = np.sum(A * A) + T * np.sum(A * B) + T**2 * np.sum(B * B) / 3
    bias = T**2 * np.sum(B * B) / (6 * 100**2)
    assert weight_norm(prog) ** 2 == pytest.approx(exact + bias, rel=1e-12)


def test_general_claim_decided_per_rival_and_load():
    from weightsynth.study.claims import claim_general, general_comparison

    rng = np.random.default_rng(2)
    rows = []
    for load, gain in ((0.1, 0.1), (0.2, -0.1)):
        for s in range(20):
            base = dict(protocol="general", n=32, load=load, noise=0.15, beta=0.03, t1=1.0,
                        seed=s, split="test")
            acc = 0.8 + 0.01 * rng.standard_normal()
            rows += [dict(base, method="storkey", t=np.nan, bit_accuracy=acc),
                     dict(base, method="general-correlation", t=1.0, bit_accuracy=acc + gain),
                     dict(base, method="general-correlation", t=0.5, bit_accuracy=0.0)]
    gen = pd.DataFrame(rows)
    comp = general_comparison(gen)
    assert list(comp.verdict) == ["better", "worse"]          # only t = t1 is compared
    assert comp["mean"].to_numpy() == pytest.approx([0.1, -0.1])
    row = claim_general(comp, gen, "test")
    assert row["status"] == SOME
    assert "correlation vs storkey better: load in {0.1}" in row["parameters"]
    assert claim_general(comp, gen, "train")["status"] == "not measured"
