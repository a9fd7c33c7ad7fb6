"""Sweep engine throughput on a LocalCluster: cells per minute, scaling, per-cell overhead.

For each worker count w, on a fresh ``local_cluster(w)`` (after a warm-up sweep that
starts the workers and imports the package there):

* ``cells_per_min``: a sweep of ``cells_per_worker * w`` selftest cells, each burning
  ``seconds`` of CPU in a busy loop (not a sleep);
* ``overhead_s_per_cell``: worker-seconds per cell not spent in the cell's own CPU work,
  ``(wall * w - sum(cell cpu)) / cells`` (engine, Dask, Parquet writes, and CPU stolen by
  other processes on a shared machine);
* ``empty_cell_ms``: wall time per cell for ``empty_cells`` cells of ~0 s (the engine's
  throughput limit);
* ``sleep_cells_per_min``: the same sweep with cells that sleep ``seconds`` instead of
  computing: the engine's scaling alone, unaffected by other processes taking the CPU.

``scaling_efficiency = cells_per_min(2 workers) / (2 * cells_per_min(1 worker))``.
Prints one JSON object. Usage::

    python benchmarks/bench_sweep.py [--workers 1,2] [--cells-per-worker 8] [--seconds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def _measure(workers: int, cells_per_worker: int, seconds: float, empty: int) -> dict:
    from weightsynth.engine.sweep import load_results, local_cluster, run_sweep

    with tempfile.TemporaryDirectory() as tmp, local_cluster(workers) as cluster:
        addr = cluster.scheduler_address
        run = dict(scheduler=addr, progress=False, batch_size=64)
        run_sweep("selftest", [{"x": -i - 1} for i in range(2 * workers)], Path(tmp, "warm"),
                  **run)
        n = cells_per_worker * workers
        t = time.perf_counter()
        s = run_sweep("selftest", [{"x": i, "seconds": seconds} for i in range(n)],
                      Path(tmp, "work"), **run)
        wall = time.perf_counter() - t
        cpu = float(load_results(Path(tmp, "work"))["cpu_s"].sum())
        t = time.perf_counter()
        z = run_sweep("selftest", [{"x": i, "sleep": seconds} for i in range(n)],
                      Path(tmp, "sleep"), **run)
        wall_sleep = time.perf_counter() - t
        t = time.perf_counter()
        e = run_sweep("selftest", [{"x": i} for i in range(empty)], Path(tmp, "empty"), **run)
        wall_empty = time.perf_counter() - t
    assert s.ok and e.ok and z.ok
    return {"workers": workers, "cells": n, "cell_cpu_s": seconds, "wall_s": round(wall, 3),
            "cells_per_min": round(60 * n / wall, 2),
            "overhead_s_per_cell": round((wall * workers - cpu) / n, 4),
            "sleep_cells_per_min": round(60 * n / wall_sleep, 2),
            "sleep_overhead_s_per_cell": round((wall_sleep * workers - seconds * n) / n, 4),
            "empty_cells": empty, "empty_cell_ms": round(1000 * wall_empty / empty, 2),
            "empty_cells_per_min": round(60 * empty / wall_empty, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--cells-per-worker", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per cell")
    ap.add_argument("--empty-cells", type=int, default=200)
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    load = os.getloadavg()
    runs = [_measure(w, args.cells_per_worker, args.seconds, args.empty_cells)
            for w in counts]
    by_w = {r["workers"]: r for r in runs}
    result = {"benchmark": "sweep", "cpu_count": os.cpu_count(),
              "loadavg_1min_before": round(load[0], 2),
              "loadavg_1min_after": round(os.getloadavg()[0], 2), "runs": runs}
    if 1 in by_w and 2 in by_w:
        result["scaling_efficiency_1_to_2"] = round(
            by_w[2]["cells_per_min"] / (2 * by_w[1]["cells_per_min"]), 3)
        result["sleep_scaling_efficiency_1_to_2"] = round(
            by_w[2]["sleep_cells_per_min"] / (2 * by_w[1]["sleep_cells_per_min"]), 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
