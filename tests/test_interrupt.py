"""Ctrl-C on a real `weightsynth sweep` process, the way a terminal sends it (SIGINT to the
whole process group: the driver and the worker processes it spawned), while the local
cluster is still starting: one line on stderr, exit code 130, and a store that resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from weightsynth.engine.results import SweepStore
from weightsynth.engine.sweep import load_results


@pytest.mark.parametrize("delay", [2.0, 4.5])
def test_ctrl_c_during_worker_start_up_prints_one_line_and_exits_130(tmp_path, delay):
    cfg = tmp_path / "c.toml"
    cfg.write_text('protocol = "sweep_protocols:selftest"\n[grid]\nx = [1, 2, 3, 4]\n'
                   "[fixed]\nsleep = 2.0\n")
    out = tmp_path / "o"
    # a child inherits an ignored SIGINT (as under a background shell job or nohup, where
    # Ctrl-C never reaches a process), never a handler: give the CLI the terminal's default
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "weightsynth.cli", "sweep", str(cfg), "--out", str(out),
             "--workers", "2", "--no-progress"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    finally:
        signal.signal(signal.SIGINT, before)
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    try:
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    lines = stderr.strip().splitlines()
    assert proc.returncode == 130, (proc.returncode, stderr)
    assert len(lines) == 1 and lines[0].startswith("interrupted"), stderr
    # the store resumes: not locked, and what it holds loads
    with SweepStore(out).lock():
        pass
    assert len(load_results(out)) <= 4
