r"""Fixed-step solving shows each solver's theoretical order when the step is halved.

The error of the synthesized state Z(t1) is measured against scipy's DOP853 at tight
tolerances on S written with the explicit W(t) (tests/_reference.py). Step counts are chosen
in the asymptotic range and with errors far above the float64 floor (~1e-13).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import weightsynth as ws
from weightsynth.core.ode import SOLVERS, raise_if_failed

from . import _reference as ref

BETA, T1 = 0.5, 4.0


@pytest.fixture(scope="module")
def problem():
    phi, theta = ref.make_data(2, 3, "tanh", seed=3)
    g, ginv = ref.activation("tanh")

    def f(t, y):
        Z = y.reshape(phi.shape)
        return (-Z + g(Z) @ ref.optimal_weights(Z, theta, BETA, g).T).ravel()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy clips rtol to 2.2e-14 and says so
        sol = solve_ivp(f, (0.0, T1), ginv(phi).ravel(), method="DOP853", rtol=1e-14,
                        atol=1e-15)
    assert sol.success
    return phi, theta, sol.y[:, -1].reshape(phi.shape)


# solver -> step counts N, 2N (asymptotic range, error >> 1e-13)
ORDER_CASES = [
    pytest.param("euler", 64, id="euler"),
    pytest.param("heun", 16, id="heun"),
    pytest.param("bosh3", 16, id="bosh3"),
    pytest.param("tsit5", 32, id="tsit5"),
    pytest.param("midpoint", 16, id="midpoint"),
    pytest.param("ralston", 16, id="ralston"),
    pytest.param("dopri5", 16, id="dopri5"),
    pytest.param("dopri8", 2, id="dopri8"),
]
# On this problem Dormand-Prince 5's 5th-order error term nearly cancels: it converges at
# ~6.5 over every step range with errors above the floor, so only "at least 5" is checked.
AT_LEAST = {"dopri5"}


# the coarsest grids are coarse on purpose (they measure the order); the warning that says
# so is tested in tests/test_interpolation.py
@pytest.mark.filterwarnings("ignore::weightsynth.AccuracyWarning")
@pytest.mark.parametrize(("solver", "steps"), ORDER_CASES)
def test_fixed_step_order(problem, solver, steps):
    phi, theta, Z_ref = problem
    errors = []
    for N in (steps, 2 * steps):
        prog = ws.synthesize(phi, theta, beta=BETA, t1=T1, steps=N, solver=solver)
        ts, _ = prog.stored()
        assert ts.shape == (N + 1,)
        np.testing.assert_allclose(np.diff(ts), T1 / N, rtol=1e-12)
        # Z(t1) = e^{-(t1 - t0)} Z0 + A(t1) Theta from the stored reduced coordinates (eq. 10)
        assert prog.coords == "reduced"
        Z1 = np.exp(-T1) * prog.Z0 + prog.X[-1] @ prog.Theta
        errors.append(np.abs(Z1 - Z_ref).max())
    assert min(errors) > 1e-11, errors  # far above the reference's and float64's floor
    observed = np.log2(errors[0] / errors[1])
    order = SOLVERS[solver][1]
    if solver in AT_LEAST:
        assert observed > order - 0.3, (errors, observed)
    else:
        assert abs(observed - order) < 0.3, (errors, observed)


def test_solver_config_validation():
    with pytest.raises(ValueError, match="unknown solver 'rk99'"):
        ws.SolverConfig(solver="rk99")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="steps must be a positive integer"):
            ws.SolverConfig(steps=bad)
    for bad in (0.0, -1e-8, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="rtol must be a positive finite"):
            ws.SolverConfig(rtol=bad)
        with pytest.raises(ValueError, match="atol must be a positive finite"):
            ws.SolverConfig(atol=bad)
    with pytest.raises(ValueError, match="max_steps must be a positive integer"):
        ws.SolverConfig(max_steps=0)
    cfg = ws.SolverConfig(steps=10, solver="heun")
    assert not cfg.adaptive and cfg.order == 2 and ws.SolverConfig().adaptive


def test_synthesize_rejects_bad_solver_settings():
    phi, theta = ref.make_data(2, 3, "tanh", seed=3)
    with pytest.raises(ValueError, match="unknown solver"):
        ws.synthesize(phi, theta, solver="nope")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        ws.synthesize(phi, theta, steps=0)
    with pytest.raises(ValueError, match="n_save must be an integer >= 2"):
        ws.synthesize(phi, theta, n_save=1)
    with pytest.raises(ValueError, match="coords must be one of"):
        ws.synthesize(phi, theta, coords="polar")


def test_raise_if_failed_reports_the_time():
    times = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    raise_if_failed(True, np.ones(5, bool), times, "x")  # fine: no error
    with pytest.raises(ws.SolveError, match=r"between t=0\.5 and t=0\.75") as info:
        raise_if_failed(True, np.array([1, 1, 1, 0, 0], bool), times, "the test solve")
    assert info.value.time == 0.5 and "the test solve blew up" in str(info.value)
    with pytest.raises(ws.SolveError, match="stopped before the end") as info:
        raise_if_failed(False, np.ones(5, bool), times, "x")
    assert info.value.time is None
