import os
import sys
from pathlib import Path

# scikit-learn's estimator checks include one that our NumPy estimators must pass with
# array-API dispatch on; SciPy reads this switch when first imported, and without it the
# check skips itself (a test that CI skips checks nothing)
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import jax  # noqa: E402
import pytest

jax.config.update("jax_enable_x64", True)

# The sweep engine's test protocol lives in tests/ (sweep_protocols.py). Workers and
# subprocesses started by the tests must import it too: they inherit PYTHONPATH.
_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_TESTS, os.environ.get("PYTHONPATH", "")) if p)

from sweep_protocols import selftest  # noqa: E402

from weightsynth.core import activations as _activations  # noqa: E402
from weightsynth.engine import config as _engine_config  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _selftest_protocol():
    """The engine's test protocol, registered for the session and removed afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_engine_config, "_REGISTRY", dict(_engine_config._REGISTRY))
        _engine_config.register_protocol("selftest", selftest)
        yield


@pytest.fixture
def protocol_registry(monkeypatch):
    """A private copy of the sweep engine's protocol registry for one test: whatever the test
    registers is gone when it ends."""
    monkeypatch.setattr(_engine_config, "_REGISTRY", dict(_engine_config._REGISTRY))
    return _engine_config._REGISTRY


@pytest.fixture
def activation_registry(monkeypatch):
    """A private copy of the activation registry for one test (see protocol_registry)."""
    monkeypatch.setattr(_activations, "_REGISTRY", dict(_activations._REGISTRY))
    return _activations._REGISTRY


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(12345)
