"""The sweep results store: cell keys, atomic batch files, dedupe on read, bad files."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from weightsynth.engine.config import cell_key
from weightsynth.engine.results import (
    CorruptFileWarning,
    SweepStore,
    load_errors,
    load_results,
    load_results_table,
)


def _reference_key(protocol, params, version):
    text = json.dumps({"params": params, "protocol": protocol, "version": version},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def test_cell_key_is_sha256_of_canonical_json():
    params = {"n": 8, "beta": 0.5, "methods": ["optimal", "hebb"]}
    assert cell_key("autoassoc", params, "0.1.0") == _reference_key("autoassoc", params, "0.1.0")


def test_cell_key_is_stable_and_discriminating():
    a = cell_key("p", {"x": 1, "y": 0.1}, "1")
    assert a == cell_key("p", {"y": 0.1, "x": 1}, "1")  # order does not matter
    assert a == cell_key("p", {"x": np.int64(1), "y": np.float64(0.1)}, "1")  # NumPy scalars
    assert a != cell_key("p", {"x": 2, "y": 0.1}, "1")
    assert a != cell_key("q", {"x": 1, "y": 0.1}, "1")
    assert a != cell_key("p", {"x": 1, "y": 0.1}, "2")  # package version is part of the key
    with pytest.raises(ValueError, match="JSON"):
        cell_key("p", {"x": object()}, "1")


def _rows(key, x, k=2):
    return [{"x": x, "i": i, "cell_key": key} for i in range(k)]


def test_batches_roundtrip_and_dedupe_by_cell(tmp_path):
    store = SweepStore(tmp_path)
    store.write_batch("results", ["a", "b"], _rows("a", 1) + _rows("b", 2))
    # a second file holding "b" again (e.g. two drivers on one folder): the first one wins
    store.write_batch("results", ["b", "c"], _rows("b", 99, k=3) + _rows("c", 3))
    assert not list((tmp_path / "results").glob("*.tmp"))
    df = load_results(tmp_path)
    assert sorted(df.groupby("cell_key").size().items()) == [("a", 2), ("b", 2), ("c", 2)]
    assert set(df.loc[df.cell_key == "b", "x"]) == {2}
    done, bad = store.done_keys()
    assert done == {"a", "b", "c"} and bad == []


def test_batch_file_is_plain_parquet(tmp_path):
    path = SweepStore(tmp_path).write_batch("results", ["a"], _rows("a", 1))
    table = pq.read_table(path)
    assert table.column_names == ["x", "i", "cell_key"] and table.num_rows == 2


def test_cell_with_no_rows_counts_as_done(tmp_path):
    store = SweepStore(tmp_path)
    store.write_batch("results", ["empty"], [])
    assert store.done_keys()[0] == {"empty"}
    assert len(load_results(tmp_path)) == 0


def test_partial_corrupt_and_foreign_files_are_reported_and_ignored(tmp_path):
    store = SweepStore(tmp_path)
    good = store.write_batch("results", ["a"], _rows("a", 1))
    data = good.read_bytes()
    (tmp_path / "results" / "part-00000000000000000001-trunc.parquet").write_bytes(
        data[: len(data) // 2])
    (tmp_path / "results" / ".part-x.parquet.abc.tmp").write_bytes(data[:10])
    pq.write_table(pa.table({"cell_key": ["z"], "x": [5]}),
                   tmp_path / "results" / "part-00000000000000000002-foreign.parquet")
    done, bad = store.done_keys()
    assert done == {"a"}
    reasons = {b.path.name: b.reason for b in bad}
    assert "truncated or corrupt" in reasons["part-00000000000000000001-trunc.parquet"]
    assert "interrupted write" in reasons[".part-x.parquet.abc.tmp"]
    assert "foreign" in reasons["part-00000000000000000002-foreign.parquet"]
    with pytest.warns(CorruptFileWarning) as record:
        df = load_results(tmp_path)
    assert len(record) == 3
    assert set(df.cell_key) == {"a"} and len(df) == 2


def test_errors_exclude_cells_that_later_succeeded(tmp_path):
    store = SweepStore(tmp_path)
    err = {"protocol": "p", "params": "{}", "error_type": "RuntimeError", "message": "m",
           "traceback": "tb"}
    store.write_batch("errors", ["a", "b"], [{**err, "cell_key": "a", "time": "1"},
                                             {**err, "cell_key": "b", "time": "1"}])
    store.write_batch("errors", ["b"], [{**err, "cell_key": "b", "time": "2", "message": "m2"}])
    store.write_batch("results", ["a"], _rows("a", 1))
    errors = load_errors(tmp_path)
    assert list(errors.cell_key) == ["b"] and list(errors.message) == ["m2"]


def test_manifest_runs_and_corrupt_manifest(tmp_path):
    from weightsynth.engine.results import finish_run, new_run

    store = SweepStore(tmp_path)
    run = new_run("selftest", {"protocol": "selftest", "grid": {"x": [1]}}, 1)
    store.record_run(run)
    store.record_run(finish_run(run, {"computed": 1}))
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert len(data["runs"]) == 1
    entry = data["runs"][0]
    assert entry["config"]["grid"] == {"x": [1]} and entry["summary"] == {"computed": 1}
    for lib in ("python", "jax", "dask", "distributed", "platform", "weightsynth"):
        assert entry["environment"][lib]
    (tmp_path / "manifest.json").write_text("{not json")
    manifest, bad = store.read_manifest()
    assert manifest["runs"] == [] and "unreadable manifest" in bad.reason


def test_missing_folder_and_unwritable_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no sweep folder"):
        load_results(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="cannot create sweep folder"):
        SweepStore(tmp_path / "file" / "sub")


# ---- one driver per folder --------------------------------------------------------------
def test_second_driver_on_the_same_folder_is_refused_with_the_holder_named(tmp_path):
    from weightsynth.engine.sweep import SweepError, run_sweep

    with SweepStore(tmp_path).lock():
        with pytest.raises(SweepError, match=rf"another sweep driver .* \(pid {os.getpid()} "):
            run_sweep("selftest", [{"x": 1}], tmp_path, progress=False)
    with SweepStore(tmp_path).lock():  # released on exit: a later driver gets it
        pass
    assert load_results_table(tmp_path).num_rows == 0  # the refused run wrote nothing


def test_lock_of_a_killed_driver_is_not_stale(tmp_path):
    code = ("import sys, time; from weightsynth.engine.results import SweepStore\n"
            "with SweepStore(sys.argv[1]).lock():\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match=f"pid {holder.pid} "):
            with SweepStore(tmp_path).lock():
                pass
    finally:
        holder.kill()
        holder.wait()
    with SweepStore(tmp_path).lock():  # the kernel released the killed holder's lock
        pass


def test_cli_sweep_on_a_locked_folder_exits_2_with_one_line(tmp_path):
    from typer.testing import CliRunner

    from weightsynth.cli import app

    cfg = tmp_path / "s.toml"
    cfg.write_text('protocol = "selftest"\n[grid]\nx = [1]\n')
    with SweepStore(tmp_path / "o").lock():
        res = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "another sweep driver" in lines[0]


# ---- the readers in docs/sweeps.md ("Loading the results") ------------------------------
def _doc_store(tmp_path):
    store = SweepStore(tmp_path)
    rows = [{"cell_key": f"k{i}", "method": m, "load": ld, "bit_accuracy": 0.5 + i / 10}
            for i, (m, ld) in enumerate([("hebb", 0.1), ("hebb", 0.2), ("optimal", 0.1)])]
    store.write_batch("results", ["k0", "k1"], rows[:2])
    # a later protocol version adds a column: DuckDB's union_by_name takes both
    store.write_batch("results", ["k2"], [{**rows[2], "noise": 0.05}])
    (tmp_path / "results" / ".part-left-over.tmp").write_bytes(b"PAR1 truncated")
    return rows


def test_documented_pandas_and_pyarrow_readers_skip_temporary_files(tmp_path):
    import pandas as pd
    import pyarrow.dataset as ds

    rows = _doc_store(tmp_path)
    df = pd.read_parquet(tmp_path / "results")
    table = ds.dataset(tmp_path / "results", format="parquet").to_table()
    assert sorted(df.cell_key) == sorted(table.column("cell_key").to_pylist()) == \
        [r["cell_key"] for r in rows]
    with pytest.warns(CorruptFileWarning, match="partial file"):
        assert sorted(load_results(tmp_path).cell_key) == ["k0", "k1", "k2"]


def test_documented_duckdb_query_reads_the_dataset(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    rows = _doc_store(tmp_path)
    docs = Path(__file__).parents[1] / "docs" / "sweeps.md"
    sql = docs.read_text().split("DuckDB:\n\n```sql\n", 1)[1].split("```", 1)[0]
    sql = sql.replace("results/results/part-*.parquet", f"{tmp_path}/results/part-*.parquet")
    got = sorted(duckdb.sql(sql).fetchall())
    want = sorted((r["method"], r["load"], r["bit_accuracy"]) for r in rows)
    assert [g[:2] for g in got] == [w[:2] for w in want]
    np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want])
    noise = duckdb.sql(f"SELECT noise FROM read_parquet('{tmp_path}/results/part-*.parquet', "
                       "union_by_name = true) ORDER BY cell_key").fetchall()
    assert noise == [(None,), (None,), (0.05,)]
