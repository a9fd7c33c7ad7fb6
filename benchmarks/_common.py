"""Shared helpers for the benchmarks: environment report, GEMM-rate probe, timing, JSON.

Every figure is a ratio measured inside one process: the ideal time (the algorithm's flop
count at this process's measured GEMM rate, in the same dtype) over the achieved time.
Wall-clock times are the minimum over repeats; process CPU times are reported alongside,
since this 2-core machine is shared and CPU time is less sensitive to other processes.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)  # benchmarks are entry points; float64 allowed

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402


def env_report() -> dict:
    """Device, versions, and the BLAS variables that slow NumPy (not JAX) on some machines."""
    import diffrax

    dev = jax.devices()[0]
    return {
        "device": f"{dev.platform}:{getattr(dev, 'device_kind', '?')}",
        "matmul_precision": str(getattr(jax.config, "jax_default_matmul_precision", None)
                                or "default"),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "jax": jax.__version__, "diffrax": diffrax.__version__, "numpy": np.__version__,
        "python": platform.python_version(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
    }


def problem(n: int, L: int, dtype, seed: int = 0):
    """Random training set: inputs 0.9 tanh(N(0,1)) (inside tanh's range), +-1 targets.

    beta = 1/n keeps W* = beta Theta^T g(Z) and S's rates O(1) at every size.
    """
    rng = np.random.default_rng(seed)
    phi = (0.9 * np.tanh(rng.standard_normal((L, n)))).astype(dtype)
    theta = np.sign(rng.standard_normal((L, n))).astype(dtype)
    return phi, theta, 1.0 / n


def timed(fn, repeats: int = 1):
    """(min wall s, min CPU s, last result) over ``repeats`` calls of ``fn()``, blocking."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(fn())
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus), out


def gemm_time(shapes, dtype, repeats: int = 10):
    """Min wall and CPU time of the jitted products a @ b for each (m, k, n) in ``shapes``.

    Returns the sums over shapes, so the result is the time of one evaluation's GEMMs. On
    an accelerator each timing is of ``PIPELINE`` products dispatched back to back (then
    divided), so the host's per-call dispatch and sync latency does not count as GEMM time;
    the synthesis loop itself runs on the device with no host round-trips.
    """
    rng = np.random.default_rng(1)
    batch = 1 if jax.devices()[0].platform == "cpu" else PIPELINE
    wall = cpu = 0.0
    for m, k, n in shapes:
        a = jnp.asarray(rng.standard_normal((m, k)), dtype)
        b = jnp.asarray(rng.standard_normal((k, n)), dtype)
        mm = jax.jit(jnp.matmul)

        def call(a=a, b=b, mm=mm):
            return [mm(a, b) for _ in range(batch)][-1]

        timed(call)  # compile
        w, c, _ = timed(call, repeats)
        wall, cpu = wall + w / batch, cpu + c / batch
    return wall, cpu


#: products per timing in :func:`gemm_time` on an accelerator
PIPELINE = 20


def synthesis_gemms(n: int, L: int):
    """The two GEMMs of one evaluation of S in reduced coordinates (derivation eq. 10):
    A Theta (L x L times L x n) and K = G G^T (L x n times n x L): 4 n L^2 flops."""
    return [(L, L, n), (L, n, L)]


def evals_per_solve(solver: str, steps: int) -> int:
    """Right-hand-side evaluations of a fixed-step diffrax solve, counted by running one."""
    from weightsynth.core.ode import SolverConfig, solve, uniform_grid

    count = [0]

    def bump(_):
        count[0] += 1

    def field(t, y, args):
        jax.debug.callback(bump, t)
        return -y

    cfg = SolverConfig(solver=solver, steps=steps)
    grid = jnp.asarray(uniform_grid(0.0, 1.0, steps))
    jax.block_until_ready(jax.jit(lambda y: solve(field, y, 0.0, 1.0, None, cfg,
                                                  step_ts=grid)[0])(jnp.ones(2)))
    jax.effects_barrier()
    return count[0]


def cache_size(jitted) -> int | None:
    """Entries in a jitted function's compilation cache (None if this JAX hides it)."""
    size = getattr(jitted, "_cache_size", None)
    return size() if size is not None else None


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def emit(record: dict) -> None:
    """Print one JSON record on stdout (one line)."""
    print(json.dumps(record, default=_jsonable), flush=True)


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return str(x)


def dtype_arg(name: str):
    return {"float64": np.float64, "float32": np.float32}[name]


def run_self(args: list[str], env: dict | None = None) -> list[dict]:
    """Run this interpreter on ``args`` in a fresh process; return its JSON records."""
    import subprocess

    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{out.stderr[-3000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
