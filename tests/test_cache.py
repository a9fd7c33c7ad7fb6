"""The exported-kernel cache (weightsynth._cache.persistent_jit).

What it must guarantee: a kernel found on disk is not traced again, and gives exactly what
tracing it would give; anything that changes the trace (a static value, a shape, a dtype)
finds another file; whatever cannot be kept (an object known only by its address, a host
callback, a damaged file, the switch turned off) still runs, through plain jit. The last
test runs the README's example in two fresh processes: the second traces no solve and never
imports diffrax, and prints the same numbers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import weightsynth as ws
from weightsynth import _cache


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A private export folder, for one test; the kernels below (this module's code) count
    as covered sources, as weightsynth's own are."""
    monkeypatch.setattr(_cache, "_export_folder", lambda: tmp_path / _cache.EXPORT_FOLDER)
    monkeypatch.setattr(_cache, "_SOURCES", (*_cache._SOURCES, __name__))
    return tmp_path / _cache.EXPORT_FOLDER


@dataclasses.dataclass(frozen=True)
class Settings:
    power: int
    name: str = "p"


def _kernel(traces):
    """A kernel that counts its traces: x^power summed, plus y; and a scalar as weak type."""

    def f(x, y, settings):
        traces.append(settings.power)
        return jnp.sum(x ** settings.power, axis=-1) + y, jnp.asarray(2.0) * y

    return f


def _fresh(fn):
    """What a new process has: the same function, nothing in memory."""
    return _cache.persistent_jit(fn)


def test_a_kernel_on_disk_is_not_traced_again_and_gives_the_same_numbers(folder):
    traces: list = []
    f = _kernel(traces)
    x, y = np.linspace(-1, 1, 12).reshape(3, 4), np.array([0.5, -1.0, 2.0])
    expected = (np.sum(x**3, axis=-1) + y, 2.0 * y)

    first = _fresh(f)(x, y, Settings(3))
    assert len(traces) == 1 and len(list(folder.glob("*.stablehlo"))) == 1
    again = _fresh(f)(x, y, Settings(3))  # a "new process": read from disk
    assert len(traces) == 1
    for a, b, e in zip(first, again, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_allclose(np.asarray(a), e, rtol=1e-14, atol=1e-15)
    # new values of the same shapes: still no trace
    out = _fresh(f)(2 * x, y + 1, Settings(3))
    np.testing.assert_allclose(np.asarray(out[0]), np.sum((2 * x) ** 3, axis=-1) + y + 1,
                               rtol=1e-14, atol=1e-14)
    assert len(traces) == 1


def test_exported_files_are_readable_to_a_shared_folder(folder):
    """A cache folder may be shared by a cluster's workers: an export gets mode 0666 less
    the umask, as any file the user writes (not mkstemp's private 0600)."""
    old = os.umask(0o022)
    try:
        _fresh(_kernel([]))(np.ones((2, 3)), np.zeros(2), Settings(2))
    finally:
        os.umask(old)
    (path,) = folder.glob("*.stablehlo")
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert [p.name for p in folder.iterdir()] == [path.name]  # no temporary file left


def test_anything_that_changes_the_trace_finds_another_file(folder):
    traces: list = []
    f = _kernel(traces)
    x, y = np.ones((3, 4)), np.zeros(3)
    _fresh(f)(x, y, Settings(2))
    _fresh(f)(x, y, Settings(3))                       # a static value
    _fresh(f)(x, y, Settings(2, name="q"))             # another static field
    _fresh(f)(np.ones((3, 5)), y, Settings(2))         # a shape
    _fresh(f)(x.astype(np.float32), y, Settings(2))    # a dtype
    assert len(traces) == 5
    assert len(list(folder.glob("*.stablehlo"))) == 5
    out = _fresh(f)(x.astype(np.float32), y, Settings(2))
    assert len(traces) == 5 and out[0].dtype == jnp.float64  # float32 x + float64 y


def test_what_cannot_be_kept_still_runs(folder):
    traces: list = []

    def g(x, scale):
        traces.append(1)
        return x * scale(2.0)

    # a static value known only by its address: plain jit, no file
    out = _cache.persistent_jit(g)(np.ones(3), lambda s: s + 1)
    np.testing.assert_array_equal(np.asarray(out), 3.0)
    assert not folder.exists() or not list(folder.glob("*.stablehlo"))

    # a host callback cannot be exported: plain jit, no file, the callback runs
    seen = []

    def h(x):
        jax.debug.callback(lambda v: seen.append(float(v)), jnp.sum(x))
        return x + 1

    np.testing.assert_array_equal(np.asarray(_cache.persistent_jit(h)(np.ones(2))), 2.0)
    jax.effects_barrier()
    assert seen == [2.0]
    assert not folder.exists() or not list(folder.glob("*.stablehlo"))


class Box(eqx.Module):
    """A pytree node class, as a user's Program subclass would be."""

    x: jax.Array


def test_code_outside_the_covered_sources_is_never_kept(folder, monkeypatch,
                                                        activation_registry):
    """The key covers weightsynth's source files only: a kernel, a pytree node class or a
    registered activation from elsewhere could change between processes without changing
    the key, so none of them is kept (plain jit)."""
    monkeypatch.setattr(_cache, "_SOURCES", ("weightsynth.",))
    traces: list = []

    def k(box, y):
        traces.append(1)
        return box.x + y

    out = _cache.persistent_jit(k)(Box(np.ones(2)), np.ones(2))
    np.testing.assert_array_equal(np.asarray(out), 2.0)
    assert not folder.exists() or not list(folder.glob("*.stablehlo"))

    leaves, treedef = jax.tree_util.tree_flatten(((Box(np.ones(2)),), {}))
    from weightsynth.core.optimal_program import _run_queries  # a covered kernel
    assert _cache._export_key(_run_queries.__wrapped__, treedef, [], leaves) is None

    ws.register_activation("mine", lambda z, k: jnp.tanh(k * z),
                           lambda z, k: k / jnp.cosh(k * z) ** 2,
                           lambda y, k: jnp.arctanh(y) / k, -1.0, 1.0)
    assert _cache._describe(ws.Activation("mine")) is None
    assert _cache._describe(ws.Activation("tanh", 2.0)) != _cache._describe(ws.Activation("tanh"))


@pytest.mark.parametrize("damage", ["not an export", "an export of other shapes"])
def test_a_bad_file_is_exported_anew(folder, damage):
    traces: list = []
    f = _kernel(traces)
    x, y = np.ones((2, 2)), np.ones(2)
    _fresh(f)(x, y, Settings(2))
    (path,) = folder.glob("*.stablehlo")
    if damage == "not an export":
        bad = b"not an export"
    else:  # a file under this key that takes other shapes (a foreign file)
        _fresh(f)(np.ones((3, 3)), np.ones(3), Settings(2))
        (bigger,) = set(folder.glob("*.stablehlo")) - {path}
        bad = bigger.read_bytes()
    path.write_bytes(bad)
    before = len(traces)
    out = _fresh(f)(x, y, Settings(2))
    np.testing.assert_array_equal(np.asarray(out[0]), [3.0, 3.0])
    assert len(traces) == before + 1
    assert path.read_bytes() != bad


def test_inside_an_outer_trace_it_is_plain_jit(folder):
    traces: list = []
    f = _cache.persistent_jit(_kernel(traces))
    grad = jax.grad(lambda x: f(x, jnp.zeros(2), Settings(2))[0].sum())(jnp.ones((2, 3)))
    np.testing.assert_allclose(np.asarray(grad), 2.0)
    assert not folder.exists() or not list(folder.glob("*.stablehlo"))


def test_the_switch_turns_exports_off(monkeypatch):
    monkeypatch.setenv(_cache.ENV, "off")
    assert _cache._export_folder() is None

    def no_export(*args):
        raise AssertionError("exported with the cache off")

    monkeypatch.setattr(_cache, "_load_or_export", no_export)
    out = _fresh(_kernel([]))(np.ones((2, 2)), np.ones(2), Settings(2))
    np.testing.assert_array_equal(np.asarray(out[0]), [3.0, 3.0])


EXAMPLE = textwrap.dedent('''
    import json, sys
    import jax; jax.config.update("jax_enable_x64", True)
    import numpy as np, weightsynth as ws

    rng = np.random.default_rng(0)
    targets = np.sign(rng.standard_normal((4, 12)))
    inputs = 0.5 * targets * np.where(rng.random((4, 12)) < 0.1, -1, 1)
    prog = ws.synthesize(inputs, targets, beta=0.5, t1=1.0)
    J = ws.performance_index(prog, inputs, targets)
    out = prog.recall(inputs)
    print(json.dumps({"J": J, "recall": out.tolist(), "ts": np.asarray(prog.ts).tolist(),
                      "diffrax": "diffrax" in sys.modules}))
''')


def test_a_second_process_traces_no_solve_and_imports_no_diffrax(tmp_path):
    env = dict(os.environ, WEIGHTSYNTH_COMPILATION_CACHE=str(tmp_path / "cache"))
    env.pop("JAX_COMPILATION_CACHE_DIR", None)

    def run():
        out = subprocess.run([sys.executable, "-c", EXAMPLE], env=env, cwd=tmp_path,
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    cold, warm = run(), run()
    assert cold["diffrax"] and not warm["diffrax"]
    assert warm["J"] == cold["J"]
    assert warm["recall"] == cold["recall"] and warm["ts"] == cold["ts"]


def test_old_environments_are_pruned(folder):
    """Another environment's exports: deleted once unused for STALE_DAYS, kept before."""
    f = _kernel([])
    _fresh(f)(np.ones((2, 2)), np.ones(2), Settings(2))
    old, recent = folder / "0000000000000000-a.stablehlo", folder / "0000000000000000-b.stablehlo"
    for p in (old, recent):
        p.write_bytes(b"x")
    stale = time.time() - (_cache.STALE_DAYS + 1) * 86400
    os.utime(old, (stale, stale))
    _fresh(f)(np.ones((4, 4)), np.ones(4), Settings(2))  # a new export: prunes
    assert not old.exists() and recent.exists()


def test_small_and_large_kernels_compile_differently_but_agree(monkeypatch, tmp_path):
    """Kernels on small arrays compile with XLA:CPU's faster-compiling loop emitters
    (``compile_options``); the same kernel compiled with XLA's defaults (every kernel
    "large") gives the same J to rounding, and both meet J* (eq. 8) to the solve's
    tolerance."""
    import weightsynth as ws
    from weightsynth import _cache

    monkeypatch.setenv(_cache.ENV, "off")
    rng = np.random.default_rng(0)
    targets = np.sign(rng.standard_normal((8, 64)))
    inputs = 0.5 * targets * np.where(rng.random((8, 64)) < 0.1, -1, 1)
    J_star = -np.sum(np.arctanh(inputs) * targets)
    assert _cache.compile_options([jnp.zeros((8, 64))]) == _cache._FAST
    results = []
    for small in (_cache.SMALL_BYTES, 0):
        monkeypatch.setattr(_cache, "SMALL_BYTES", small)
        prog = ws.synthesize(inputs, targets, beta=0.5, t1=1.0)
        results.append(ws.performance_index(prog, inputs, targets))
    assert _cache.compile_options([jnp.zeros((8, 64))]) == _cache._DEFAULT
    assert results[0] == pytest.approx(results[1], rel=1e-12)
    for J in results:
        assert J == pytest.approx(J_star, rel=1e-7)
