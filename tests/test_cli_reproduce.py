"""`weightsynth reproduce`: bad input exits 2 with one line; a tiny quick run writes
everything, atomically, with a self-contained report."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from weightsynth.cli import app

runner = CliRunner()


def _one_line_error(result):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("args, msg", [
    (["--loads", "-0.1"], "loads must be > 0"),
    (["--noise", "0.1,0.7"], "noise must be <= 0.5"),
    (["--methods", "optimal,hebb"], "unknown method 'hebb'"),
    (["--seeds", "many"], "--seeds must be"),
    (["--beta", "0"], "beta must be > 0"),
    (["--n", "1.5"], "--n must be a comma list of int"),
])
def test_bad_options_exit_2(tmp_path, args, msg):
    res = runner.invoke(app, ["reproduce", "--out", str(tmp_path / "o"), *args])
    assert msg in _one_line_error(res)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_bad_config_and_unwritable_out(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("loads = [0.1,\n")
    res = runner.invoke(app, ["reproduce", "--out", str(tmp_path), "--config", str(cfg)])
    assert "not valid TOML" in _one_line_error(res)
    cfg.write_text("colour = 'red'\n")
    res = runner.invoke(app, ["reproduce", "--out", str(tmp_path), "--config", str(cfg)])
    assert "unknown config key 'colour'" in _one_line_error(res)
    res = runner.invoke(app, ["reproduce", "--out", str(tmp_path), "--config",
                              str(tmp_path / "missing.toml")])
    assert "does not exist" in _one_line_error(res)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = runner.invoke(app, ["reproduce", "--out", str(blocker / "sub")])
    assert "not a writable folder" in _one_line_error(res)


def test_tiny_quick_reproduce_end_to_end(tmp_path):
    out = tmp_path / "run"
    cfg = tmp_path / "study.toml"
    cfg.write_text("maps_tasks = []\n")   # protocol maps: tests/test_maps.py
    args = ["reproduce", "--quick", "--out", str(out), "--loads", "0.05", "--seeds", "2",
            "--methods", "optimal,outer_continuous,outer_discrete", "--no-progress",
            "--workers", "0", "--config", str(cfg)]   # in-process: engine path tested below
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    names = {p.name for p in out.iterdir()}
    for fig in ("learning_curve", "learning_curves_all", "versus_load", "versus_noise",
                "digits", "weights"):
        assert {f"{fig}.png", f"{fig}.svg"} <= names
    assert {"results.parquet", "report.html", "claims.csv"} <= names
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]   # no temp files
    df = pd.read_parquet(out / "results.parquet")
    assert {"method", "n", "L", "noise", "beta", "t1", "seed", "t", "bit_accuracy", "overlap",
            "exact_recall", "J", "excess"} <= set(df.columns)
    assert set(df.method) == {"input", "optimal", "outer_continuous", "outer_discrete"}
    assert sorted(df.seed.unique()) == [0, 1]
    page = (out / "report.html").read_text()
    refs = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]*)""", page)
    assert refs and all(r.startswith("data:") for r in refs)
    assert "http://" not in page and "https://" not in page
    claims = pd.read_csv(out / "claims.csv")
    assert claims.status.iloc[0] == "held"          # W*(t0) = beta Theta^T Phi
    assert "[held] W*(t0)" in res.output


def test_scheduler_with_workers_exits_2(tmp_path):
    res = runner.invoke(app, ["reproduce", "--out", str(tmp_path), "--scheduler",
                              "tcp://127.0.0.1:1", "--workers", "2"])
    assert "--workers sets the size of the local cluster" in _one_line_error(res)


def test_failed_cells_exit_1_after_writing(tmp_path, monkeypatch):
    import weightsynth.study.study as study

    errors = pd.DataFrame([dict(cell_key="k", protocol="general", params="{}",
                                error_type="RuntimeError", message="boom", traceback="",
                                time="")])
    seen = {}

    def fake(cfg, path, **kw):
        seen.update(kw)
        return {"table": pd.DataFrame({"x": [1]}), "claims": pd.DataFrame(
            [dict(claim="c", status="held", evidence="", parameters="")]), "seconds": 1.0,
            "errors": errors, "summaries": []}

    monkeypatch.setattr(study, "run_study", fake)
    res = runner.invoke(app, ["reproduce", "--out", str(tmp_path), "--quick", "--workers",
                              "1", "--no-progress"])
    assert res.exit_code == 1, res.output
    assert "1 cells failed" in res.stderr
    assert seen["engine"] is True and seen["workers"] == 1 and seen["scheduler"] is None


def test_reproduce_through_the_engine_resumes_and_matches_in_process(tmp_path):
    cfg = tmp_path / "study.toml"
    cfg.write_text("maps_tasks = []\n")   # protocol maps through the engine: tests/test_maps.py
    args = ["reproduce", "--quick", "--loads", "0.05", "--seeds", "2", "--no-progress",
            "--methods", "optimal,outer_discrete,storkey,general-correlation",
            "--config", str(cfg)]
    eng, seq = tmp_path / "engine", tmp_path / "seq"
    res = runner.invoke(app, [*args, "--out", str(eng), "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert "sweep 'general': 2 cells, 2 computed" in res.output
    assert (eng / "sweep" / "autoassoc" / "manifest.json").is_file()
    assert (eng / "general_verdicts.png").is_file()   # where the general programs win
    assert "where they win" in (eng / "report.html").read_text()
    res = runner.invoke(app, [*args, "--out", str(eng), "--workers", "1"])   # resume
    assert res.exit_code == 0, res.output
    assert "sweep 'autoassoc': 4 cells, 0 computed, 4 already done" in res.output
    res = runner.invoke(app, [*args, "--out", str(seq), "--workers", "0"])
    assert res.exit_code == 0, res.output
    a = pd.read_parquet(eng / "results.parquet")
    b = pd.read_parquet(seq / "results.parquet")
    assert "cell_key" not in a and "general-correlation" in set(a.method)
    wall = [c for c in a.columns if c.endswith("_seconds")]   # timings differ run to run
    a, b = a.drop(columns=wall), b.drop(columns=wall)
    # the general programs come from an iterative solver stopped at rtol 1e-6: workers run
    # XLA on one thread, this process on several, so round-off (the order of GEMM sums)
    # moves its path; they agree to the solver's tolerance, the rest to round-off
    gen = a.method.str.startswith("general-").to_numpy()
    assert (gen == b.method.str.startswith("general-").to_numpy()).all()
    pd.testing.assert_frame_equal(a[~gen], b[~gen], check_exact=False, rtol=1e-9, atol=1e-12)
    last = ["residual", "iterations"]   # where the run stopped, not what it found
    pd.testing.assert_frame_equal(a[gen].drop(columns=last), b[gen].drop(columns=last),
                                  check_exact=False, rtol=1e-6, atol=1e-9)
