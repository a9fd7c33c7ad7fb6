"""The Dask sweep engine: config parsing, resume, faults (killed worker, failing cell, Ctrl-C,
corrupt files) and the ``weightsynth sweep`` command.

The cluster tests share one LocalCluster of 2 spawned worker processes (slow to start).
"""

import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from weightsynth.cli import app
from weightsynth.engine.config import load_sweep_config, parse_sweep_config, register_protocol
from weightsynth.engine.results import CorruptFileWarning
from weightsynth.engine.sweep import SweepError, load_errors, load_results, local_cluster, run_sweep


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client

    with local_cluster(2) as cl, Client(cl, set_as_default=False) as client:
        jax_at_start = client.run(lambda: "jax" in sys.modules)
        env = client.run(lambda: {k: os.environ.get(k) for k in
                                  ("XLA_FLAGS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
        yield SimpleNamespace(address=cl.scheduler_address, client=client,
                              jax_at_start=jax_at_start, env=env)


def _wait_until_idle(client, timeout=60.0):
    """Wait until no worker is executing a task (cancelled tasks run to their end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = client.run(lambda dask_worker: len(dask_worker.state.executing))
        if not any(busy.values()):
            return
        time.sleep(0.2)
    raise TimeoutError("workers still busy")


def _counts(df):
    """Rows per x (each selftest cell x gives `rows` rows)."""
    return df.groupby("x").size().to_dict()


# -- config ---------------------------------------------------------------------------
def test_config_expands_the_cartesian_product(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('protocol = "selftest"\n[grid]\nx = [1, 2, 3]\nrows = [1, 2]\n'
                    '[fixed]\nseconds = 0.0\n[sweep]\nbatch_size = 4\n')
    cfg = load_sweep_config(path)
    cells = cfg.cells()
    assert len(cells) == 6 and cfg.batch_size == 4
    assert cells[0] == {"seconds": 0.0, "x": 1, "rows": 1}
    assert {(c["x"], c["rows"]) for c in cells} == {(x, r) for x in (1, 2, 3) for r in (1, 2)}


@pytest.mark.parametrize("data, match", [
    ({"grid": {"x": [1]}}, "missing 'protocol"),
    ({"protocol": "nope", "grid": {"x": [1]}}, "unknown protocol 'nope'"),
    ({"protocol": "no_such_module:f", "grid": {"x": [1]}}, "cannot import"),
    ({"protocol": "weightsynth.engine.config:nope", "grid": {"x": [1]}}, "has no function"),
    ({"protocol": "selftest", "grid": {"x": [1], "foo": [2]}}, "unknown parameter 'foo'"),
    ({"protocol": "selftest", "grid": {"rows": [1]}}, "needs parameter 'x'"),
    ({"protocol": "selftest", "grid": {"x": [1], "foo": [2], "bar": [3]}},
     "unknown parameters 'bar', 'foo'"),
    ({"protocol": "weightsynth.study.protocols:autoassoc_cell", "grid": {"n": [64]}},
     "needs parameters 'load', 'noise', 'beta', 't1', 'seed'"),
    ({"protocol": "selftest"}, "empty grid"),
    ({"protocol": "selftest", "grid": {"x": []}}, "empty grid"),
    ({"protocol": "selftest", "grid": {"x": 3}}, "must be a list"),
    ({"protocol": "selftest", "grid": {"x": [1]}, "fixed": {"x": 2}}, "both"),
    ({"protocol": "selftest", "grid": {"x": [1]}, "sweep": {"batch_size": 0}}, "batch_size"),
    ({"protocol": "selftest", "grid": {"x": [1]}, "extra": 1}, "unknown key 'extra'"),
])
def test_config_rejects_bad_input(data, match):
    with pytest.raises(ValueError, match=match):
        parse_sweep_config(data)


def test_protocol_by_import_path_and_registry(protocol_registry):
    cfg = parse_sweep_config({"protocol": "sweep_protocols:selftest",
                              "grid": {"x": [1]}})
    assert cfg.cells() == [{"x": 1}]
    register_protocol("twice", lambda x: [{"y": 2 * x}])   # undone by the fixture
    assert "twice" in protocol_registry
    assert parse_sweep_config({"protocol": "twice", "grid": {"x": [1, 2]}}).cells()[1] == {"x": 2}
    with pytest.raises(ValueError, match="without ':'"):
        register_protocol("a:b", print)


def test_run_sweep_rejects_bad_cells_before_starting(tmp_path):
    with pytest.raises(SweepError, match="empty grid"):
        run_sweep("selftest", [], tmp_path)
    with pytest.raises(SweepError, match="unknown parameter 'z'"):
        run_sweep("selftest", [{"x": 1, "z": 2}], tmp_path)
    with pytest.raises(SweepError, match="workers sets the size"):
        run_sweep("selftest", [{"x": 1}], tmp_path, scheduler="tcp://127.0.0.1:9", workers=2)


def test_protocol_validation_dry_run_rejects_bad_values_before_starting(tmp_path):
    """The protocol's own ``validate`` runs on the cells before any cluster starts (the
    unreachable scheduler address would otherwise be the error)."""
    base = dict(n=64, load=0.1, noise=0.1, t1=1.0, seed=0)
    cells = [dict(base, beta=b, seed=s) for b in (-1.0, 0.5) for s in (0, 1)]
    with pytest.raises(SweepError, match=r"beta must be > 0.0, got -1.0 \(2 cells\)"):
        run_sweep("autoassoc", cells, tmp_path, scheduler="tcp://127.0.0.1:9")
    with pytest.raises(SweepError, match="noise must be <= 0.5, got 0.7"):
        run_sweep("autoassoc", [dict(base, beta=1.0, noise=0.7)], tmp_path,
                  scheduler="tcp://127.0.0.1:9")


# -- engine on a shared 2-worker cluster ---------------------------------------------
def test_workers_are_spawned_with_one_pinned_thread(cluster):
    assert sorted(cluster.client.nthreads().values()) == [1, 1]
    assert not any(cluster.jax_at_start.values())  # spawned: nothing inherited from pytest
    for env in cluster.env.values():
        assert "--xla_cpu_multi_thread_eigen=false" in env["XLA_FLAGS"]
        assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "1"


def test_failing_cell_is_recorded_and_the_others_finish(cluster, tmp_path):
    cells = [{"x": x, "fail": x == 3, "rows": 2} for x in range(6)]
    spec = "sweep_protocols:selftest"
    s = run_sweep(spec, cells, tmp_path, scheduler=cluster.address, progress=False)
    assert (s.computed, s.failed, s.skipped, s.ok) == (5, 1, 0, False)
    assert _counts(load_results(tmp_path)) == {0: 2, 1: 2, 2: 2, 4: 2, 5: 2}
    errors = load_errors(tmp_path)
    assert len(errors) == 1
    assert json.loads(errors.params[0]) == {"x": 3, "fail": True, "rows": 2}
    assert errors.error_type[0] == "RuntimeError"
    assert "RuntimeError: selftest cell x=3 failed on purpose" in errors.traceback[0]
    again = run_sweep(spec, cells, tmp_path, scheduler=cluster.address, progress=False)
    assert (again.computed, again.failed, again.skipped) == (0, 1, 5)  # only the failed reruns


def test_killed_worker_loses_and_duplicates_nothing(cluster, tmp_path):
    marker = tmp_path / "killed"
    cells = [{"x": x, "seconds": 0.2, "rows": 3, "exit_once": str(marker)} for x in range(8)]
    s = run_sweep("selftest", cells, tmp_path / "out", scheduler=cluster.address,
                  batch_size=2, progress=False)
    assert marker.exists()  # a worker did die mid-sweep
    assert (s.computed, s.failed) == (8, 0)
    df = load_results(tmp_path / "out")
    assert _counts(df) == {x: 3 for x in range(8)}
    assert not df.duplicated(["x", "i"]).any()
    cluster.client.wait_for_workers(2, timeout=120)


def test_interrupted_sweep_resumes_computing_only_missing_cells(cluster, tmp_path):
    log = tmp_path / "calls"
    log.mkdir()
    cells = [{"x": x, "seconds": 0.15, "rows": 2, "log_dir": str(log)} for x in range(12)]

    def stop_after_two(n_batches, n_cells):
        if n_batches == 2:
            raise KeyboardInterrupt

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_sweep("selftest", cells, out, scheduler=cluster.address, batch_size=2,
                  progress=False, on_batch=stop_after_two)
    first = _counts(load_results(out))
    assert 4 <= len(first) < 12 and set(first.values()) == {2}  # only whole cells
    _wait_until_idle(cluster.client)  # cancelled cells that were already running finish
    before = set(log.iterdir())
    s = run_sweep("selftest", cells, out, scheduler=cluster.address, progress=False)
    assert (s.skipped, s.computed, s.failed) == (len(first), 12 - len(first), 0)
    new_calls = sorted(int(p.name.split("-")[0]) for p in set(log.iterdir()) - before)
    assert new_calls == sorted(set(range(12)) - set(first))  # each missing cell once
    assert _counts(load_results(out)) == {x: 2 for x in range(12)}


def test_partial_and_corrupt_files_are_reported_ignored_and_rerun(cluster, tmp_path):
    cells = [{"x": x} for x in range(4)]
    run_sweep("selftest", cells, tmp_path, scheduler=cluster.address, batch_size=2,
              progress=False)
    first = sorted((tmp_path / "results").glob("part-*.parquet"))[0]
    data = first.read_bytes()
    first.write_bytes(data[: len(data) // 2])  # truncated in place: its 2 cells are lost
    (tmp_path / "results" / ".part-0.parquet.x.tmp").write_bytes(data[:100])
    with pytest.warns(CorruptFileWarning):
        s = run_sweep("selftest", cells, tmp_path, scheduler=cluster.address, progress=False)
    assert sorted(Path(b.path).name for b in s.bad_files) == sorted(
        [first.name, ".part-0.parquet.x.tmp"])
    assert (s.skipped, s.computed) == (2, 2)
    with pytest.warns(CorruptFileWarning):
        assert _counts(load_results(tmp_path)) == {0: 1, 1: 1, 2: 1, 3: 1}


# -- command line ---------------------------------------------------------------------
def _write(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_cli_sweep_runs_resumes_and_exits_1_on_failures(cluster, tmp_path):
    runner = CliRunner()
    cfg = _write(tmp_path, 'protocol = "selftest"\n[grid]\nx = [1, 2, 3]\n[fixed]\nrows = 2\n')
    args = ["sweep", cfg, "--out", str(tmp_path / "o"), "--scheduler", cluster.address]
    res = runner.invoke(app, args + ["--no-progress"])
    assert res.exit_code == 0, res.output
    assert "3 computed" in res.stdout
    assert _counts(load_results(tmp_path / "o")) == {1: 2, 2: 2, 3: 2}
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["runs"][0]["config"]["grid"] == {"x": [1, 2, 3]}
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "3 already done" in res.stdout
    bad = _write(tmp_path, 'protocol = "selftest"\n[grid]\nx = [1, 2]\nfail = [true]\n', "f.toml")
    res = runner.invoke(app, ["sweep", bad, "--out", str(tmp_path / "f"), "--scheduler",
                              cluster.address, "--no-progress"])
    assert res.exit_code == 1 and "2 failed" in res.stdout
    # each distinct reason once, with its count, on the console
    assert sorted(ln.strip() for ln in res.stderr.splitlines() if ln.strip()) == [
        f"1 cell failed: RuntimeError: selftest cell x={x} failed on purpose" for x in (1, 2)]


def _fail_same(x):
    raise ValueError(f"the same reason\n(cell {x})")


def test_distinct_errors_are_counted(cluster, tmp_path):
    s = run_sweep("tests.test_sweep:_fail_same", [{"x": x} for x in range(3)], tmp_path,
                  scheduler=cluster.address, progress=False)
    assert s.failed == 3
    assert s.error_lines() == ["  3 cells failed: ValueError: the same reason"]


@pytest.mark.parametrize("text, extra, match", [
    ('protocol = "selftest"\n[grid\nx = [1]\n', [], "malformed TOML"),
    ('protocol = "nope"\n[grid]\nx = [1]\n', [], "unknown protocol 'nope'"),
    ('protocol = "selftest"\n[grid]\nx = [1]\ny = [2]\n', [], "unknown parameter 'y'"),
    ('protocol = "selftest"\n[grid]\n', [], "empty grid"),
    ('protocol = "selftest"\n[grid]\nx = [1]\n',
     ["--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "0.5"],
     "cannot reach the Dask scheduler"),
])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, text, extra, match):
    cfg = _write(tmp_path, text)
    res = CliRunner().invoke(app, ["sweep", cfg, "--out", str(tmp_path / "o")] + extra)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0]


def _die(x):
    os._exit(1)


def test_cell_that_keeps_killing_workers_is_recorded_as_failed(cluster, tmp_path):
    cells = [{"x": 0}, {"x": 1}]
    s = run_sweep("tests.test_sweep:_die", cells, tmp_path, scheduler=cluster.address,
                  progress=False)
    assert (s.computed, s.failed) == (0, 2)
    assert set(load_errors(tmp_path).error_type) == {"KilledWorker"}
    # (the cluster may be left with fewer workers: keep this the last test that uses it)


def test_cli_default_local_cluster(tmp_path):
    cfg = _write(tmp_path, 'protocol = "selftest"\n[grid]\nx = [1, 2, 3, 4]\n')
    res = CliRunner().invoke(app, ["sweep", cfg, "--out", str(tmp_path / "o"), "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert _counts(load_results(tmp_path / "o")) == {1: 1, 2: 1, 3: 1, 4: 1}


def test_worker_drops_compiled_kernels_near_the_mapping_limit(tmp_path):
    """Past half of vm.max_map_count (a file here, so the test does not depend on this
    machine's limit or mappings) the compiled kernels are dropped, and a jitted function
    compiles again; below it, or without the files, nothing happens."""
    import jax
    import jax.numpy as jnp

    from weightsynth.engine.sweep import release_compiled_kernels

    maps = tmp_path / "maps"
    maps.write_text("m\n" * 100)
    f = jax.jit(lambda x: 2 * x)
    f(jnp.ones(3))
    assert f._cache_size() == 1
    (tmp_path / "limit").write_text("400\n")  # 100 mappings of 400: kept
    assert not release_compiled_kernels(str(maps), str(tmp_path / "limit"))
    assert f._cache_size() == 1
    assert not release_compiled_kernels(str(maps), str(tmp_path / "missing"))
    (tmp_path / "limit").write_text("150\n")  # 100 of 150: dropped
    assert release_compiled_kernels(str(maps), str(tmp_path / "limit"))
    assert f._cache_size() == 0
    assert float(f(jnp.ones(3))[0]) == 2.0 and f._cache_size() == 1
