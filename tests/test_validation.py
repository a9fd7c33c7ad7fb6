"""Bad input is a ValueError that names the problem, raised before any solve (hypothesis).

Each property builds a training set that is valid except for one thing, and checks the
message. All of these fail during validation, so they are cheap.
"""

from __future__ import annotations

import math
import warnings

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import weightsynth as ws

from . import _reference as ref

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
shapes = st.tuples(st.integers(1, 6), st.integers(1, 6))


def _valid(shape, seed=0):
    rng = np.random.default_rng(seed)
    theta = np.sign(rng.standard_normal(shape))
    return 0.5 * theta, theta


@FAST
@given(shape=shapes, data=st.data(), bad=st.sampled_from([np.nan, np.inf, -np.inf]),
       which=st.sampled_from(["inputs", "targets"]))
def test_non_finite_values_are_named(shape, data, bad, which):
    phi, theta = _valid(shape)
    i = data.draw(st.integers(0, shape[0] - 1))
    j = data.draw(st.integers(0, shape[1] - 1))
    arr = phi if which == "inputs" else theta
    arr[i, j] = bad
    with pytest.raises(ValueError, match=rf"{which} contains non-finite values \(first at "
                                         rf"index \({i}, {j}\)"):
        ws.synthesize(phi, theta)
    with pytest.raises(ValueError, match=f"{which} contains non-finite"):
        ws.performance_index(np.eye(shape[1]), phi, theta, beta=1.0, t1=1.0)


@FAST
@given(a=shapes, b=shapes)
def test_shape_mismatch_is_named(a, b):
    assume(a != b)
    phi, _ = _valid(a)
    _, theta = _valid(b)
    with pytest.raises(ValueError, match=r"inputs and targets must have the same shape"):
        ws.synthesize(phi, theta)


@FAST
@given(shape=st.lists(st.integers(1, 3), min_size=0, max_size=4).filter(lambda s: len(s) != 2),
       which=st.sampled_from(["inputs", "targets"]))
def test_arrays_must_be_2d(shape, which):
    phi, theta = _valid((2, 2))
    arr = np.full(shape, 0.5)
    args = (arr, theta) if which == "inputs" else (phi, arr)
    with pytest.raises(ValueError, match=rf"{which} must be 2-D with samples as rows"):
        ws.synthesize(*args)


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0)])
def test_empty_training_set(shape):
    with pytest.raises(ValueError, match="inputs must have at least one row and one column"):
        ws.synthesize(np.zeros(shape), np.zeros(shape))


@FAST
@given(beta=st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.just(math.inf),
                      st.just(-math.inf)))
def test_beta_must_be_positive_and_finite(beta):
    phi, theta = _valid((2, 3))
    with pytest.raises(ValueError, match="beta must be a positive"):
        ws.synthesize(phi, theta, beta=beta)
    with pytest.raises(ValueError, match="beta must be a positive"):
        ws.performance_index(np.eye(3), phi, theta, beta=beta, t1=1.0)


@FAST
@given(t0=st.floats(allow_nan=True, allow_infinity=True),
       t1=st.floats(allow_nan=True, allow_infinity=True))
def test_interval_must_be_finite_and_increasing(t0, t1):
    assume(not (math.isfinite(t0) and math.isfinite(t1) and t1 > t0))
    phi, theta = _valid((2, 3))
    message = "t1 must be greater than t0" if math.isfinite(t0) and math.isfinite(t1) \
        else "t0 and t1 must be finite"
    with pytest.raises(ValueError, match=message):
        ws.synthesize(phi, theta, t0=t0, t1=t1)
    with pytest.raises(ValueError, match=message):
        ws.performance_index(np.eye(3), phi, theta, beta=1.0, t0=t0, t1=t1)


@FAST
@given(name=st.text(min_size=1, max_size=12))
def test_unknown_activation(name):
    assume(name not in ws.available_activations())
    phi, theta = _valid((2, 3))
    with pytest.raises(ValueError, match="unknown activation"):
        ws.synthesize(phi, theta, activation=name)


@FAST
@given(shape=shapes, data=st.data(), name=st.sampled_from(["tanh", "logistic"]),
       gain=st.sampled_from([0.5, 1.0, 3.0]))
def test_inputs_outside_or_on_the_edge_of_the_range(shape, data, name, gain):
    lo, hi = ws.get_activation(name).range
    inside = hnp.arrays(np.float64, shape, elements=st.floats(
        lo, hi, exclude_min=True, exclude_max=True))
    phi = data.draw(inside)
    theta = np.ones(shape)
    outside = st.one_of(st.sampled_from([lo, hi]),
                        st.floats(max_value=lo, allow_infinity=False),
                        st.floats(min_value=hi, allow_infinity=False))
    i = data.draw(st.integers(0, shape[0] - 1))
    j = data.draw(st.integers(0, shape[1] - 1))
    phi[i, j] = data.draw(outside)
    with pytest.raises(ValueError, match=rf"inputs must lie strictly inside the {name} output "
                                         rf"range .* entry \({i}, {j}\)"):
        ws.synthesize(phi, theta, activation=name, gain=gain)
    with pytest.raises(ValueError, match="inputs must lie strictly inside"):
        ws.optimal_cost(phi, theta, name)


@pytest.fixture(scope="module")
def prog():
    phi, theta = ref.make_data(3, 5, "tanh", seed=3005)
    return ws.synthesize(phi, theta, beta=0.5, t1=1.0)


@FAST
@given(t=st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0 + 1e-9)))
def test_weights_outside_the_interval(prog, t):
    message = r"t must lie in \[t0, t1\]" if math.isfinite(t) else "non-finite"
    with pytest.raises(ValueError, match=message):
        prog.weights(t)


@FAST
@given(n=st.integers(1, 8), B=st.integers(1, 4))
def test_queries_must_match_the_program(prog, n, B):
    assume(n != prog.n)
    with pytest.raises(ValueError, match=f"x has {n} columns but the network has n = 5"):
        prog.recall(np.zeros((B, n)))


def test_non_numeric_input():
    with pytest.raises(ValueError, match="inputs must be a real numeric array"):
        ws.synthesize(np.array([["a", "b"]]), np.ones((1, 2)))
    with pytest.raises(ValueError, match="inputs could not be converted|real numeric"):
        ws.synthesize([[0.1, 0.2], [0.3]], np.ones((2, 2)))


def test_float64_without_x64_warns():
    """float64 data with JAX's x64 mode off: a PrecisionWarning, then float32 work."""
    phi, theta = np.array([[0.5]]), np.array([[1.0]])
    with jax.enable_x64(False):
        with pytest.warns(ws.PrecisionWarning, match="x64 mode is off"):
            prog = ws.synthesize(phi, theta, steps=2, solver="euler")
        assert prog.dtype == np.float32
        with warnings.catch_warnings():
            warnings.simplefilter("error", ws.PrecisionWarning)
            ws.synthesize(phi, theta, steps=2, solver="euler", dtype="float32")


def test_integer_targets_with_float32_inputs_stay_float32_without_warning():
    """int32 targets carry no precision: float32 inputs decide the dtype (no false warning)."""
    phi = np.array([[0.5, -0.25]], dtype=np.float32)
    theta = np.array([[1, -1]], dtype=np.int32)
    with jax.enable_x64(False), warnings.catch_warnings():
        warnings.simplefilter("error", ws.PrecisionWarning)
        prog = ws.synthesize(phi, theta, steps=2, solver="euler")
        assert prog.dtype == np.float32


def test_explicit_float64_without_x64_fails_and_names_the_fix():
    phi, theta = np.array([[0.5]]), np.array([[1.0]])
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="jax_enable_x64.*or pass dtype='float32'"):
            ws.synthesize(phi, theta, steps=2, solver="euler", dtype="float64")
