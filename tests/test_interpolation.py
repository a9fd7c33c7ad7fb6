"""The stored program between the solver's steps: it scores J* to the solve's tolerance at every
beta and t1, W(t) matches an independent RK4 solve of S between stored
times, and programs of new data with the same shapes share compiled code."""

import warnings

import numpy as np
import pytest

import weightsynth as ws
from weightsynth.core import dynamics as dyn
from weightsynth.errors import AccuracyWarning

from . import _reference as ref

RTOL = 1e-8  # synthesize's default


def _readme_data(seed=0):
    """The README's ten-line example: L=8 patterns, n=64 neurons, 10% flipped bits."""
    rng = np.random.default_rng(seed)
    targets = np.sign(rng.standard_normal((8, 64)))
    inputs = 0.5 * targets * np.where(rng.random((8, 64)) < 0.1, -1, 1)
    return inputs, targets


@pytest.mark.parametrize("beta", [0.01, 0.3, 2.0, 10.0])
def test_own_program_scores_J_star_to_tolerance(beta):
    """Relative excess (J - J*)/|J*| <= 10 rtol for beta in [0.01, 10], t1 in [0.5, 10].

    Before the fix the program was stored on 257 uniform times: 2.7e-4 at (2, 5) and 2e-2
    at (10, 10).
    """
    inputs, targets = _readme_data()
    J_star = -np.sum(np.arctanh(inputs) * targets)  # closed form, eq. 8
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccuracyWarning)
        for t1 in (0.5, 2.0, 5.0, 10.0):
            prog = ws.synthesize(inputs, targets, beta=beta, t1=t1)
            res = ws.evaluate_index(prog, inputs, targets)
            assert res.J_star == pytest.approx(J_star, rel=1e-12)
            assert abs(res.J - J_star) <= 10 * RTOL * abs(J_star), (beta, t1)


def test_weights_between_stored_times_match_rk4():
    """W(t) at times between the stored ones agrees with S solved by fine RK4 (tests/_reference)."""
    inputs, targets = _readme_data()
    prog = ws.synthesize(inputs, targets, beta=2.0, t1=2.0)
    ts, Z = ref.closed_loop(inputs, targets, 2.0, 0.0, 2.0, 4000)
    stored = np.asarray(prog.ts)
    for k in (37, 401, 1234, 3333):  # not stored times
        assert np.min(np.abs(stored - ts[k])) > 1e-6
        W_ref = ref.optimal_weights(Z[k], targets, 2.0, np.tanh)
        np.testing.assert_allclose(prog.weights(ts[k]), W_ref, rtol=1e-6,
                                   atol=1e-6 * np.abs(W_ref).max())


def test_new_data_of_the_same_shape_shares_the_compiled_index(monkeypatch):
    """A second program with another step count reuses the compiled index: N's vector field
    (Python code, run only while JAX traces) is not called again."""
    inputs, targets = _readme_data()
    ws.evaluate_index(ws.synthesize(inputs, targets, beta=2.0, t1=5.0), inputs, targets)
    inputs2, targets2 = _readme_data(seed=1)
    prog = ws.synthesize(inputs2, targets2, beta=0.7, t1=1.0)  # another step count
    traces = []
    real = dyn.network_rhs
    monkeypatch.setattr(dyn, "network_rhs", lambda *a, **k: traces.append(1) or real(*a, **k))
    ws.evaluate_index(prog, inputs2, targets2)
    assert traces == []


def test_coarse_fixed_steps_warn_and_name_the_fix():
    inputs, targets = _readme_data()
    with pytest.warns(AccuracyWarning, match="pass more steps than 20"):
        ws.synthesize(inputs, targets, beta=10.0, t1=10.0, steps=20)


def test_saved_program_keeps_its_stored_times(tmp_path):
    inputs, targets = _readme_data()
    prog = ws.synthesize(inputs, targets, beta=2.0, t1=5.0)
    prog.save(tmp_path / "p.safetensors")
    back = ws.WeightProgram.load(tmp_path / "p.safetensors")
    np.testing.assert_array_equal(np.asarray(back.ts), np.asarray(prog.ts))
    res = ws.evaluate_index(back, inputs, targets)
    assert abs(res.excess) <= 10 * RTOL * abs(res.J_star)


def test_no_accuracy_warning_when_J_star_vanishes():
    """Inputs and targets on separate neurons (the estimators' layout) make J* = 0 exactly;
    the estimate is then relative to the effort term, not a division by zero (it read
    1e+285 before)."""
    rng = np.random.default_rng(3)
    L, d = 6, 5
    phi = np.zeros((L, 2 * d))
    phi[:, :d] = 0.5 * np.sign(rng.standard_normal((L, d)))
    theta = np.zeros((L, 2 * d))
    theta[:, d:] = np.sign(rng.standard_normal((L, d)))
    assert ws.optimal_cost(phi, theta) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ws.AccuracyWarning)
        prog = ws.synthesize(phi, theta, beta=0.2, t1=1.0, steps=20)
    assert prog.interpolation_excess() < 1e-6


def test_interval_error_estimate_matches_the_actual_weight_error():
    """The defect-based estimate of each interval's peak W error (``interval_errors``, used
    by the refinement and the AccuracyWarning) against the actual interpolation error: W(t)
    of the stored program at the interval's midpoint against W from an independent fine RK4
    solve of S started at the interval's left stored state (so the fixed-step solve's own
    global error, which dominates after the first steps here, does not count).

    Coarse fixed steps, so the interpolation error is well above round-off."""
    inputs, targets = _readme_data()
    beta, t1, steps = 0.3, 1.0, 16
    prog = ws.synthesize(inputs, targets, beta=beta, t1=t1, steps=steps)
    _, dW = prog.interval_errors()
    ts = np.asarray(prog.stored()[0])
    assert dW.shape == (steps,)
    actual = []
    for k in range(steps):
        mid = 0.5 * (ts[k] + ts[k + 1])
        _, Z = ref.closed_loop(None, targets, beta, ts[k], mid, 200, z0=prog.states(ts[k]))
        W_ref = ref.optimal_weights(Z[-1], targets, beta, np.tanh)
        actual.append(np.linalg.norm(prog.weights(mid) - W_ref))
    actual = np.array(actual)
    # where the interpolation error stands well above the steps' own local error (which
    # the estimate does not see, and which is what is left later on)
    big = actual > 5e-3 * actual.max()
    assert big.sum() >= 5
    np.testing.assert_allclose(dW[big], actual[big], rtol=0.25)
