"""Activations: g, g', g^-1 and the open range agree with closed forms and each other."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import weightsynth as ws

from . import _reference as ref

NAMES = ["tanh", "logistic", "linear"]
GAINS = [0.5, 1.0, 2.5]
Z = np.linspace(-3.0, 3.0, 61)


def _np(x):
    return np.asarray(x, dtype=np.float64)


@pytest.mark.parametrize("gain", GAINS)
@pytest.mark.parametrize("name", NAMES)
def test_g_ginv_and_derivative(name, gain):
    act = ws.get_activation(name, gain)
    g_ref, ginv_ref = ref.activation(name, gain)
    y = _np(act.g(jnp.asarray(Z)))
    np.testing.assert_allclose(y, g_ref(Z), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(_np(act.ginv(jnp.asarray(y))), Z, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(_np(act.ginv(jnp.asarray(y))), ginv_ref(y), rtol=1e-12,
                               atol=1e-12)
    h = 1e-6  # central differences: error ~ h^2
    fd = (g_ref(Z + h) - g_ref(Z - h)) / (2 * h)
    np.testing.assert_allclose(_np(act.dg(jnp.asarray(Z))), fd, rtol=1e-8, atol=1e-9)


def test_ranges():
    assert ws.get_activation("tanh").range == (-1.0, 1.0)
    assert ws.get_activation("logistic", 3.0).range == (0.0, 1.0)
    assert ws.get_activation("linear").range == (-math.inf, math.inf)
    assert {"tanh", "logistic", "linear"} <= set(ws.available_activations())


@settings(max_examples=50, deadline=None)
@given(y=st.floats(-1, 1, exclude_min=True, exclude_max=True).filter(lambda v: abs(v) < 0.999),
       gain=st.floats(0.1, 10))
def test_tanh_inverse_round_trip(y, gain):
    act = ws.get_activation("tanh", gain)
    assert float(act.g(act.ginv(jnp.asarray(y)))) == pytest.approx(y, abs=1e-12)


@pytest.mark.parametrize(("name", "bad"), [("tanh", 1.0), ("tanh", -1.0), ("tanh", 1.5),
                                           ("logistic", 0.0), ("logistic", 1.0),
                                           ("logistic", -0.2), ("tanh", np.nan)])
def test_check_in_range_names_the_entry(name, bad):
    act = ws.get_activation(name)
    y = np.full((2, 3), 0.5)
    y[1, 2] = bad
    with pytest.raises(ValueError, match=rf"x must lie strictly inside the {name} output range"
                                         rf" .* entry \(1, 2\)"):
        act.check_in_range(y, "x")
    act.check_in_range(np.full((2, 3), 0.5), "x")  # fine


def test_activation_and_gain_validation():
    with pytest.raises(ValueError, match="unknown activation 'relu'; known: .*tanh"):
        ws.Activation("relu")
    for gain in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="gain must be positive and finite"):
            ws.get_activation("tanh", gain)
    with pytest.raises(ValueError, match="activation must be a name or an Activation"):
        ws.get_activation(3)
    a = ws.get_activation("tanh", 2)
    assert a == ws.Activation("tanh", 2.0) and hash(a) == hash(ws.Activation("tanh", 2.0))
    assert ws.get_activation(a) is a and ws.get_activation(a, 3.0).gain == 3.0


def test_register_a_custom_activation(activation_registry):
    """The documented way to add g: register (g, g', g^-1, range) under a name (in a private
    copy of the registry, so no other test sees "softsign")."""
    ws.register_activation(
        "softsign", lambda z, k: k * z / (1 + jnp.abs(k * z)),
        lambda z, k: k / (1 + jnp.abs(k * z)) ** 2,
        lambda y, k: y / (1 - jnp.abs(y)) / k, -1.0, 1.0)
    act = ws.get_activation("softsign", 2.0)
    y = _np(act.g(jnp.asarray(Z)))
    np.testing.assert_allclose(_np(act.ginv(jnp.asarray(y))), Z, rtol=1e-12, atol=1e-12)
    z = Z + 0.05  # away from the kink of |z| at 0
    fd = (_np(act.g(jnp.asarray(z + 1e-6))) - _np(act.g(jnp.asarray(z - 1e-6)))) / 2e-6
    np.testing.assert_allclose(_np(act.dg(jnp.asarray(z))), fd, rtol=1e-7, atol=1e-8)
    assert "softsign" in ws.available_activations() and act.range == (-1.0, 1.0)
    assert "softsign" in activation_registry
    with pytest.raises(ValueError, match="inputs must lie strictly inside the softsign"):
        ws.synthesize(np.array([[1.0]]), np.array([[1.0]]), activation="softsign")
    with pytest.raises(ValueError, match="lower < upper"):
        ws.register_activation("flat", np.tanh, np.tanh, np.tanh, 1.0, 1.0)
    with pytest.raises(ValueError, match="non-empty string"):
        ws.register_activation("", np.tanh, np.tanh, np.tanh)
