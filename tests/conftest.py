import os
import sys
from pathlib import Path

import jax
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

from weightsynth.engine.config import register_protocol  # noqa: E402

register_protocol("selftest", selftest)


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(12345)
