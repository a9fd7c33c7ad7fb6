"""Latency a user feels: import, the README's ten-line example, a small sweep, quick reproduce.

Each figure is the wall time of a fresh process (``subprocess``), as a user starts one:

* ``import``: ``import weightsynth`` (median of 5; lazy, so no JAX);
* ``example_cold`` / ``example_warm``: the README's ten-line example with an empty
  compilation cache, then again in a second process that finds the cache warm (the
  median of ``--repeats`` such pairs, each in a new cache folder; all runs are listed);
* ``cells_cold`` / ``cells_warm``: ``weightsynth sweep`` of four ``autoassoc`` cells at n=16
  on a fresh local cluster of two workers, cache empty then warm (the workers share it);
* ``reproduce_warm`` (``--reproduce``): ``weightsynth reproduce --quick`` with a warm cache.

Every run uses its own cache folder (``WEIGHTSYNTH_COMPILATION_CACHE``), never the user's.
Targets (issue on one house): import <= 1 s, example <= 8 s fresh and <= 3 s warm,
cells <= 20 s warm, quick reproduce <= 2 min warm. Prints one JSON record; with ``--out``
also writes it.

    .venv/bin/python benchmarks/bench_latency.py [--reproduce] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

EXAMPLE = textwrap.dedent('''
    import jax; jax.config.update("jax_enable_x64", True)
    import numpy as np, weightsynth as ws

    rng = np.random.default_rng(0)
    targets = np.sign(rng.standard_normal((8, 64)))
    inputs = 0.5 * targets * np.where(rng.random((8, 64)) < 0.1, -1, 1)
    prog = ws.synthesize(inputs, targets, beta=0.5, t1=1.0)
    print(ws.performance_index(prog, inputs, targets), ws.optimal_cost(inputs, targets))
    print(np.mean(np.sign(prog.recall(inputs)) == targets))
    prog.save("prog.safetensors"); prog = ws.WeightProgram.load("prog.safetensors")
''')

CELLS = textwrap.dedent('''
    protocol = "autoassoc"
    [grid]
    seed = [0, 1, 2, 3]
    [fixed]
    n = 16
    load = 0.125
    noise = 0.1
    beta = 0.0625
    t1 = 1.0
''')


def _run(args, env, cwd) -> float:
    t = time.perf_counter()
    out = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{out.stderr[-3000:]}")
    return wall


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reproduce", action="store_true", help="also time quick reproduce")
    ap.add_argument("--out", default=None)
    ap.add_argument("--repeats", type=int, default=3,
                    help="cold + warm example pairs (the median is reported: the machine's "
                         "wall times vary by about 1 s from run to run)")
    a = ap.parse_args(argv)
    py = sys.executable
    exe = str(Path(py).with_name("weightsynth"))
    rec: dict = {"benchmark": "latency", "cpu_count": os.cpu_count(),
                 "load_avg_1min_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, WEIGHTSYNTH_COMPILATION_CACHE=str(Path(tmp, "cache")))
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
        rec["import_s"] = statistics.median(
            _run([py, "-c", "import weightsynth"], env, tmp) for _ in range(5))
        script = Path(tmp, "example.py")
        script.write_text(EXAMPLE)
        cold, warm = [], []
        for k in range(a.repeats):  # a cold and a warm run in a cache folder of their own
            env_k = dict(env, WEIGHTSYNTH_COMPILATION_CACHE=str(Path(tmp, f"example-{k}")))
            cold.append(_run([py, str(script)], env_k, tmp))
            warm.append(_run([py, str(script)], env_k, tmp))
        rec["example_cold_s"], rec["example_warm_s"] = (statistics.median(x) for x in (cold, warm))
        rec["example_cold_runs_s"], rec["example_warm_runs_s"] = cold, warm
        Path(tmp, "cells.toml").write_text(CELLS)
        for label in ("cells_cold_s", "cells_warm_s"):
            out = Path(tmp, label)
            rec[label] = _run([exe, "sweep", "cells.toml", "--out", str(out), "--workers", "2",
                               "--no-progress"], env, tmp)
        if a.reproduce:
            _run([exe, "reproduce", "--quick", "--out", "r0"], env, tmp)   # fills the cache
            rec["reproduce_warm_s"] = _run([exe, "reproduce", "--quick", "--out", "r1"], env,
                                           tmp)
    rec["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(rec))
    if a.out:
        Path(a.out).write_text(json.dumps(rec, indent=1) + "\n")
    return rec


if __name__ == "__main__":
    main()
