"""Saved programs: identical after a round trip; damaged or foreign files give a clear error."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

import weightsynth as ws
from weightsynth.formats.program_file import save_program_file

from . import _reference as ref

ARRAYS = ("Z0", "Theta", "ts", "X")


@pytest.fixture(scope="module")
def prog():
    phi, theta = ref.make_data(3, 5, "tanh", seed=3005)
    return ws.synthesize(phi, theta, beta=0.5, t1=1.0), phi


@pytest.fixture
def saved(prog, tmp_path):
    path = tmp_path / "prog.safetensors"
    prog[0].save(path)
    return path


def _metadata(path):
    with safe_open(str(path), "np") as f:
        return f.metadata()


def _rewrite(path, **meta):
    """Re-save a file with some metadata changed (the checksum stays valid)."""
    data = path.read_bytes()
    tensors, old = st_load(data), _metadata(path)
    path.write_bytes(st_save(tensors, metadata={**old, **meta}))


def test_round_trip_is_identical(prog, saved):
    p, phi = prog
    q = ws.WeightProgram.load(saved)
    assert isinstance(q, ws.WeightProgram)
    for k in ARRAYS:
        a, b = getattr(p, k), getattr(q, k)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()  # bitwise
    assert (q.beta, q.t0, q.t1, q.coords) == (p.beta, p.t0, p.t1, p.coords)
    assert q.activation == p.activation and q.solver == p.solver
    np.testing.assert_array_equal(q.recall(phi), p.recall(phi))
    np.testing.assert_array_equal(q.weights(0.3), p.weights(0.3))
    assert isinstance(ws.load_program(saved), ws.WeightProgram)


def test_file_is_plain_safetensors_with_documented_metadata(saved):
    meta = _metadata(saved)
    for key in ("format", "format_version", "kind", "weightsynth_version", "activation",
                "gain", "beta", "t0", "t1", "n", "L", "dtype", "solver", "sha256"):
        assert key in meta, key
    assert meta["format"] == "weightsynth.program" and meta["kind"] == "optimal"
    assert meta["format_version"] == "1" and meta["dtype"] == "float64"
    assert json.loads(meta["solver"])["solver"] == "tsit5"
    with safe_open(str(saved), "np") as f:
        assert sorted(f.keys()) == sorted(ARRAYS)


def test_constant_program_round_trip_and_dispatch(prog, tmp_path):
    _, phi = prog
    W = ws.outer_product_rule(0.5 * np.sign(phi), scale=0.5)
    cp = ws.ConstantProgram(W, activation=ws.get_activation("tanh", 1.5), t0=-1.0, t1=2.0)
    path = tmp_path / "const.safetensors"
    cp.save(path)
    q = ws.load_program(path)
    assert isinstance(q, ws.ConstantProgram)
    assert q.W.tobytes() == cp.W.tobytes()
    assert (q.t0, q.t1, q.activation) == (-1.0, 2.0, ws.get_activation("tanh", 1.5))
    assert isinstance(ws.ConstantProgram.load(path), ws.ConstantProgram)
    with pytest.raises(ws.ProgramFileError, match="holds a ConstantProgram, not a WeightProgram"):
        ws.WeightProgram.load(path)


def _damage_cases(data: bytes):
    header = int.from_bytes(data[:8], "little")
    flipped = bytearray(data)
    flipped[-3] ^= 0x01  # inside the last tensor's bytes
    rng = np.random.default_rng(0)
    return {
        "too short": (data[:5], "too short"),
        "truncated header": (data[: 8 + header // 2], "truncated"),
        "truncated data": (data[: len(data) - 40], "truncated or corrupted"),
        "flipped byte": (bytes(flipped), "checksum mismatch"),
        "random bytes": (rng.bytes(4096), "not a safetensors header|not valid JSON"),
        "json file": (b'{"format": "weightsynth.program"}' * 4, "not a safetensors|not valid"),
        "plain safetensors": (st_save({"W": np.eye(3)}), "no metadata"),
        "other metadata": (st_save({"W": np.eye(3)}, metadata={"format": "pt"}),
                           "not a weightsynth program file"),
    }


@pytest.mark.parametrize("kind", ["too short", "truncated header", "truncated data",
                                  "flipped byte", "random bytes", "json file",
                                  "plain safetensors", "other metadata"])
def test_damaged_or_foreign_file_is_a_clear_error(saved, kind):
    data, message = _damage_cases(saved.read_bytes())[kind]
    saved.write_bytes(data)
    with pytest.raises(ws.ProgramFileError, match=message) as info:
        ws.load_program(saved)
    assert isinstance(info.value, ValueError)
    assert str(saved) in str(info.value)  # the message says which file


def test_empty_file_error_names_the_path(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    with pytest.raises(ws.ProgramFileError, match="too short") as info:
        ws.load_program(path)
    assert str(path) in str(info.value)


def test_saving_to_a_folder_is_a_clear_error(prog, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for target in (".", tmp_path):
        with pytest.raises(ValueError, match="is a folder; give a file name"):
            prog[0].save(target)
    assert os.listdir(tmp_path) == []  # no temporary file left behind


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_file_honours_the_umask(prog, tmp_path, umask):
    old = os.umask(umask)
    try:
        prog[0].save(tmp_path / "p.safetensors")
    finally:
        os.umask(old)
    mode = os.stat(tmp_path / "p.safetensors").st_mode & 0o777
    assert mode == 0o666 & ~umask


def test_newer_format_version_is_refused(saved):
    _rewrite(saved, format_version="2")
    with pytest.raises(ws.ProgramFileError, match="format version 2.*Upgrade weightsynth"):
        ws.WeightProgram.load(saved)
    _rewrite(saved, format_version="one")
    with pytest.raises(ws.ProgramFileError, match="bad format_version"):
        ws.WeightProgram.load(saved)


def test_bad_contents_with_valid_checksum(saved, tmp_path):
    _rewrite(saved, kind="martian")
    with pytest.raises(ws.ProgramFileError, match="unknown program kind 'martian'"):
        ws.load_program(saved)
    bad = tmp_path / "bad.safetensors"
    meta = {k: v for k, v in _metadata(saved).items()
            if k not in ("format", "format_version", "sha256")}
    meta["kind"] = "optimal"
    save_program_file(bad, {"Z0": np.zeros((3, 5)), "Theta": np.zeros((3, 4)),
                            "ts": np.linspace(0, 1, 3), "X": np.zeros((3, 3, 3))}, meta)
    with pytest.raises(ws.ProgramFileError, match="inconsistent shapes"):
        ws.load_program(bad)
    del meta["beta"]
    save_program_file(bad, dict(st_load(saved.read_bytes())), meta)
    with pytest.raises(ws.ProgramFileError, match="lacks 'beta'"):
        ws.load_program(bad)
    _rewrite(saved, kind="optimal", activation="nonesuch")
    with pytest.raises(ws.ProgramFileError, match="unknown activation 'nonesuch'"):
        ws.load_program(saved)


def test_missing_file_and_folder(prog, tmp_path):
    with pytest.raises(FileNotFoundError, match="no program file"):
        ws.load_program(tmp_path / "nope.safetensors")
    with pytest.raises(ValueError, match="does not exist"):
        prog[0].save(tmp_path / "no" / "such" / "dir.safetensors")


def test_save_is_atomic(prog, saved, monkeypatch):
    folder = saved.parent
    assert sorted(os.listdir(folder)) == [saved.name]  # no temporary file left behind
    before = saved.read_bytes()

    def failing_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", failing_replace)
    other = ws.ConstantProgram(np.eye(5))
    with pytest.raises(OSError, match="simulated"):
        other.save(saved)
    monkeypatch.undo()
    assert saved.read_bytes() == before  # the existing file is untouched
    assert sorted(os.listdir(folder)) == [saved.name]  # and the temporary file is gone
    assert isinstance(ws.load_program(saved), ws.WeightProgram)
