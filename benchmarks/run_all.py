"""Run every benchmark and print their JSON records (one per line) on stdout.

    .venv/bin/python benchmarks/run_all.py            # full sizes (README targets), ~15-25 min
    .venv/bin/python benchmarks/run_all.py --quick    # small sizes, a smoke run (~2 min)
    .venv/bin/python benchmarks/run_all.py --only synthesis,recall

CasADi (bench_vs_casadi.py, needs ``pip install casadi``) is an optional extra: it runs
with ``--only vs_casadi`` and is skipped by default (~2 min: IPOPT at n=16, L=8).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

FULL = {
    "synthesis": [],
    "recall": [],
    "vs_scipy": [],
    "scale": [],
    "scaling": [],
    "memory": [],
}
OPTIONAL = {"vs_casadi": ["--sizes", "4x3,16x8", "--intervals", "8,64", "--coarse", "0,4"]}
QUICK = {
    "synthesis": ["--n", "512", "--L", "256", "--steps", "20", "--repeats", "1"],
    "recall": ["--n", "512", "--L", "128", "--B", "512", "--steps", "5"],
    "vs_scipy": ["--n", "512", "--L", "32", "--grid", "33", "--repeats", "1"],
    "scale": ["--n", "1000", "--L", "100", "--steps", "20"],
    "scaling": ["--ns", "512,1024", "--Ls", "32,64", "--n-fixed", "512", "--L-fixed", "32",
                "--repeats", "1", "--plot", ""],
    "memory": ["--sizes", "512x64,1024x128", "--steps", "10"],
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", default=None, help="comma-separated benchmark names")
    a = p.parse_args(argv)
    plan = QUICK if a.quick else FULL
    plan = {**plan, **OPTIONAL}
    names = a.only.split(",") if a.only else [k for k in plan if k not in OPTIONAL]
    failed = []
    for name in names:
        script = os.path.join(HERE, f"bench_{name}.py")
        r = subprocess.run([sys.executable, script, *plan[name]], stdout=sys.stdout, check=False)
        if r.returncode:
            failed.append(name)
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
