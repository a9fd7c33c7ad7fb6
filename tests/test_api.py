"""The public surface: the lazy package face, signatures, deprecation paths, the Program
interface. Numbers are checked against closed forms, not against the code itself."""

import subprocess
import sys

import equinox as eqx
import jax
import numpy as np
import pytest

import weightsynth as ws
from weightsynth.core.program import Program


def _pairs(L=3, n=4, seed=0):
    rng = np.random.default_rng(seed)
    theta = np.sign(rng.standard_normal((L, n)))
    return 0.6 * theta * np.where(rng.random((L, n)) < 0.25, -1, 1), theta


def test_import_is_lazy_and_every_public_name_resolves():
    code = ("import sys, weightsynth as ws\n"
            "heavy = [m for m in ('jax', 'pandas', 'pyarrow', 'diffrax', 'distributed') "
            "if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "missing = [n for n in ws.__all__ if getattr(ws, n, None) is None]\n"
            "assert not missing, missing\n"
            "print(ws.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    from importlib.metadata import version

    assert out.stdout.strip() == version("weightsynth")


def test_optimal_cost_and_index_take_the_gain():
    phi, theta = _pairs()
    gain = 2.5  # tanh(gain z): g^-1(x) = artanh(x) / gain
    expected = -np.sum(np.arctanh(phi) / gain * theta)
    assert ws.optimal_cost(phi, theta, "tanh", gain=gain) == pytest.approx(expected, rel=1e-14)
    prog = ws.synthesize(phi, theta, beta=0.5, t1=0.5, gain=gain)
    res = ws.evaluate_index(prog, phi, theta)
    assert res.J_star == pytest.approx(expected, rel=1e-13)
    # the same constant matrix under two gains: J* follows the gain given
    W = ws.outer_product_rule(theta)
    other = ws.evaluate_index(W, phi, theta, beta=0.5, t1=0.5, activation="tanh", gain=gain)
    assert other.J_star == pytest.approx(expected, rel=1e-13)


def test_synthesize_positional_beta_t1_is_deprecated_but_still_works():
    phi, theta = _pairs()
    with pytest.warns(DeprecationWarning, match="by keyword"):
        old = ws.synthesize(phi, theta, 0.5, 0.75)
    assert float(old.beta) == 0.5 and float(old.t1) == 0.75 and float(old.t0) == 0.0
    with pytest.raises(TypeError, match="multiple values"):
        ws.synthesize(phi, theta, 0.5, beta=0.5)


def test_solver_config_is_accepted_where_a_solver_is():
    phi, theta = _pairs()
    cfg = ws.SolverConfig(solver="heun", steps=40)
    prog = ws.synthesize(phi, theta, beta=0.5, t1=0.5, solver=cfg)
    assert prog.solver.solver == "heun" and prog.solver.steps == 40
    assert prog.stored_times == 41  # t0 and every step (ts is padded to 257 rows)
    fine = ws.evaluate_index(prog, phi, theta, solver=ws.SolverConfig(solver="dopri8"))
    # Heun with 40 steps of 1/80: the index of the program is J* to the scheme's accuracy
    assert abs(fine.J - fine.J_star) < 1e-4 * abs(fine.J_star)


def test_states_and_weights_take_arrays_of_times():
    phi, theta = _pairs()
    prog = ws.synthesize(phi, theta, beta=0.5, t1=1.0)
    ts = np.array([0.0, 0.4, 1.0])
    Z = prog.states(ts)
    assert Z.shape == (3, *phi.shape)
    np.testing.assert_allclose(Z[0], np.arctanh(phi), rtol=1e-12)      # z(t0) = g^-1(phi)
    W = prog.weights(ts)
    # W*(t) = beta Theta^T g(Z(t)) (eq. 7), from the states at the same times
    np.testing.assert_allclose(W, 0.5 * np.einsum("ln,tlm->tnm", theta, np.tanh(Z)),
                               rtol=1e-12, atol=1e-14)


def test_program_is_abstract():
    with pytest.raises(TypeError):
        Program()

    class Half(Program):  # no weights_at, no file hooks
        activation: ws.Activation
        t0: float
        t1: float
        solver: ws.SolverConfig
        kind = "half-for-test"

        @property
        def n(self):
            return 1

        @property
        def dtype(self):
            return np.dtype(np.float64)

    with pytest.raises(TypeError):
        Half(ws.get_activation("tanh"), 0.0, 1.0, ws.SolverConfig())


def test_programs_of_one_shape_share_one_compilation():
    phi, theta = _pairs()
    a = ws.synthesize(phi, theta, beta=0.5, t1=1.0)
    b = ws.synthesize(0.9 * phi, theta, beta=0.7, t0=0.1, t1=2.0)
    # what jit compiles for: the static part and the arrays' shapes and dtypes
    (dyn_a, static_a), (dyn_b, static_b) = (eqx.partition(p, eqx.is_array) for p in (a, b))
    assert eqx.tree_equal(static_a, static_b)
    avals = [[(x.shape, x.dtype, x.weak_type) for x in jax.tree_util.tree_leaves(d)]
             for d in (dyn_a, dyn_b)]
    assert avals[0] == avals[1]


@pytest.mark.parametrize("kind", ["grid", "optimal"])
def test_a_program_file_loads_without_importing_its_module(tmp_path, kind):
    """load_program finds the class of a file's kind through the entry points, in a process
    that never imported the class's module (control, or core.optimal_program)."""
    if kind == "grid":
        prog = ws.GridProgram(activation=ws.get_activation("tanh"), t0=0.0, t1=1.0,
                              W=np.zeros((3, 2, 2)), drive=np.zeros((3, 2)),
                              solver=ws.SolverConfig(steps=4))
    else:
        phi, theta = _pairs()
        prog = ws.synthesize(phi, theta, beta=0.5, t1=1.0)
    path = tmp_path / "p.safetensors"
    prog.save(path)
    code = ("import jax; jax.config.update('jax_enable_x64', True)\n"
            "from weightsynth.core.program import load_program\n"
            f"p = load_program({str(path)!r})\n"
            "print(type(p).__name__, p.weights(0.5).shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    name = {"grid": "GridProgram", "optimal": "WeightProgram"}[kind]
    n = prog.n
    assert out.stdout.split() == [name, f"({n},", f"{n})"]
