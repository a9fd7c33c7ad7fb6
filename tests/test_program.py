r"""Programs: running N under W(t), W(t) between stored times, immutability, query checks.

* A training input fed to N under W* reproduces that sample's trajectory in S (derivation
  section 4, eq. 11: N is one block of S), in both coordinate systems.
* The constant (outer-product) program runs N like the NumPy RK4 reference.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import weightsynth as ws

from . import _reference as ref

TS = np.array([0.0, 0.123, 0.5, 0.777, 1.0])  # 0.123, 0.777 are off the stored grid
CANON = {"reduced": ("tanh", 1.0, 3, 5), "direct": ("logistic", 2.5, 6, 4)}


@pytest.fixture(scope="module", params=["reduced", "direct"])
def case(request):
    name, gain, L, n = CANON[request.param]
    phi, theta = ref.make_data(L, n, name, seed=L * 1000 + n)
    prog = ws.synthesize(phi, theta, beta=0.5, t1=1.0, activation=name, gain=gain)
    assert prog.coords == request.param
    return prog, phi, theta


def test_network_on_training_inputs_reproduces_S(case):
    prog, phi, _ = case
    traj = prog.trajectory(phi, TS)
    assert traj.shape == (len(TS), *phi.shape)
    for k, t in enumerate(TS):
        S = prog.states(t)
        np.testing.assert_allclose(traj[k], S, rtol=0, atol=1e-7 * np.abs(S).max())
    if prog.coords == "reduced":  # one compiled recall is enough (shared with test_storage)
        g, _ = ref.activation(prog.activation.name, prog.activation.gain)
        np.testing.assert_allclose(prog.recall(phi), g(prog.states(1.0)), rtol=0, atol=1e-8)


def test_network_matches_numpy_rk4_under_stored_weights(case):
    """N on fresh queries under W*(t) = beta Theta^T g(Z(t)), Z(t) from the NumPy reference."""
    prog, phi, theta = case
    name, gain = prog.activation.name, prog.activation.gain
    g, ginv = ref.activation(name, gain)
    rng = np.random.default_rng(0)
    lo, hi = prog.activation.range
    x = rng.uniform(lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo), phi.shape)
    steps = 1000
    rts, rZ = ref.closed_loop(phi, theta, 0.5, 0.0, 1.0, 2 * steps, name, gain)

    def W(t):  # W*(t) on the reference's half-step grid
        return ref.optimal_weights(rZ[int(round(t * 2 * steps))], theta, 0.5, g)

    _, zq = ref.run_network(W, ginv(x), 0.0, 1.0, steps, name, gain)
    idx = [int(round(t * steps)) for t in TS]
    traj = prog.trajectory(x, TS)
    np.testing.assert_allclose(traj, zq[idx], rtol=0, atol=1e-7 * np.abs(zq).max())


def test_weights_at_many_times_and_bounds(case):
    prog, _, _ = case
    n = prog.n
    Ws = prog.weights(TS)
    assert Ws.shape == (len(TS), n, n)
    assert isinstance(prog.weights(0.5), np.ndarray) and prog.weights(0.5).shape == (n, n)
    np.testing.assert_array_equal(Ws[2], prog.weights(0.5))
    for bad in (1.5, -0.1, 1.0 + 1e-6):
        with pytest.raises(ValueError, match=r"t must lie in \[t0, t1\]"):
            prog.weights(bad)
    with pytest.raises(ValueError, match="non-finite"):
        prog.weights(np.nan)
    with pytest.raises(ValueError, match=r"must lie in \[t0, t1\]"):
        prog.states(2.0)
    with pytest.raises(ValueError, match="sorted"):
        prog.weights(np.array([0.5, 0.2]))


def test_query_checks(case):
    prog, phi, _ = case
    n = prog.n
    with pytest.raises(ValueError, match=f"x has {n - 1} columns but the network has n = {n}"):
        prog.recall(phi[:, :-1])
    with pytest.raises(ValueError, match="must be 2-D"):
        prog.recall(phi[0])
    with pytest.raises(ValueError, match="must be 2-D"):
        prog.recall(phi[None])
    with pytest.raises(ValueError, match="at least one row"):
        prog.recall(np.zeros((0, n)))
    edge = phi.copy()
    edge[0, 0] = prog.activation.range[1]
    with pytest.raises(ValueError, match=r"x must lie strictly inside .* entry \(0, 0\)"):
        prog.recall(edge)
    nan = phi.copy()
    nan[-1, 1] = np.nan
    with pytest.raises(ValueError, match="x contains non-finite values"):
        prog.trajectory(nan, TS)
    with pytest.raises(ValueError, match=r"ts must lie in \[t0, t1\]"):
        prog.trajectory(phi, [0.0, 1.5])
    with pytest.raises(ValueError, match="ts must be sorted"):
        prog.trajectory(phi, [0.5, 0.1])


def test_program_is_immutable(case):
    prog, _, _ = case
    with pytest.raises(TypeError, match="immutable"):
        prog.X[0, 0, 0] = 1.0
    with pytest.raises(TypeError, match="immutable"):
        prog.Theta[0, 0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        prog.beta = 2.0


# ---- the constant (outer-product) program --------------------------------------------
@pytest.fixture(scope="module")
def constant():
    phi, theta = ref.make_data(3, 5, "tanh", seed=3005)
    W = ws.outer_product_rule(theta, scale=0.5)
    tight = ws.SolverConfig(rtol=1e-11, atol=1e-12)
    return ws.ConstantProgram(W, activation="tanh", t1=1.0, solver=tight), W, phi


def test_constant_program_runs_like_numpy_rk4(constant):
    cp, W, phi = constant
    _, ginv = ref.activation("tanh")
    _, zq = ref.run_network(lambda t: W, ginv(phi), 0.0, 1.0, 1000)
    idx = [int(round(t * 1000)) for t in TS]
    np.testing.assert_allclose(cp.trajectory(phi, TS), zq[idx], rtol=0, atol=1e-10)
    np.testing.assert_allclose(cp.recall(phi), np.tanh(zq[-1]), rtol=0, atol=1e-10)
    np.testing.assert_array_equal(cp.weights(0.3), W)
    assert cp.n == 5


def test_constant_program_checks():
    with pytest.raises(ValueError, match="W must be square"):
        ws.ConstantProgram(np.ones((2, 3)))
    with pytest.raises(ValueError, match="W contains non-finite"):
        ws.ConstantProgram(np.array([[1.0, np.inf], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="unknown activation 'relu6'"):
        ws.ConstantProgram(np.eye(2), activation="relu6")


def test_program_arrays_live_on_the_device_and_survive_a_file(case, tmp_path):
    """Synthesis leaves the program's arrays as JAX arrays (on the GPU when there is one);
    saving copies them to the host and loading gives the same numbers back."""
    import jax

    prog, _, _ = case
    assert all(isinstance(getattr(prog, k), jax.Array) for k in ("Z0", "Theta", "ts", "X"))
    prog.save(tmp_path / "p.safetensors")
    back = ws.load_program(tmp_path / "p.safetensors")
    for k in ("Z0", "Theta", "ts", "X"):
        np.testing.assert_array_equal(np.asarray(getattr(back, k)), np.asarray(getattr(prog, k)))


def test_float64_file_without_x64_is_refused_not_truncated(case, tmp_path):
    import subprocess
    import sys

    prog, _, _ = case
    assert prog.dtype == np.float64
    prog.save(tmp_path / "p.safetensors")
    code = ("import weightsynth as ws, sys\n"
            "try:\n    ws.load_program(sys.argv[1])\n"
            "except ValueError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.safetensors")],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("refused:") and "jax_enable_x64" in out
