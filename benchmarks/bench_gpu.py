"""Target 7 (benchmarks/README.md): ``synthesize`` on a GPU, against that GPU's own GEMM rate.

The same code as on the CPU; only the device differs (JAX picks the GPU when one is there).
Prints one JSON record per measurement, also appended to ``--out`` as they finish, so a
run cut short keeps what it measured:

* ``gpu_synthesis``: target 1's efficiency (benchmarks/bench_synthesis.py: ideal =
  evaluations x the time of one evaluation's two GEMMs, 4 n L^2 flops, same shapes, dtype and
  matmul precision, measured in this process) at n=16384, L=2048, 200 Tsit5 steps, float32.
  It is measured for both float32 matmul precisions JAX offers on NVIDIA GPUs, ``default``
  (which may use TF32 tensor cores) and ``highest`` (full float32), and for both ways of
  forming the Gram matrix (``blocked``: the upper block triangle, as on the CPU; ``plain``:
  one product G G^T). ``solve_only_s`` times the jitted closed-loop solve alone, so
  ``achieved_s - solve_only_s`` is the rest of the public call (validation, transfers,
  building the program). ``peak_device_bytes`` is the allocator's peak.
* ``gpu_accuracy``: |J - J*| / |J*| of a float32 program synthesized on the GPU in each
  precision (J by ``evaluate_index`` in float64, J* in closed form), and W(t1)'s relative
  error against a float64 synthesis (J is stationary at the optimum, W is not).
* ``gpu_bare_loop`` (``--parts loops``): the field alone in a ``fori_loop`` of Euler steps,
  with and without its elementwise work, to show what bounds the TF32 figure.
* target 1's size (n=2048, L=256) and target 2 (recall) on the GPU, from their scripts.

    python benchmarks/bench_gpu.py [--quick] [--out FILE] [--parts big,accuracy,small,loops]
"""

from __future__ import annotations

import argparse
import json
import time
import traceback

import _common as c
import bench_recall
import bench_synthesis
import jax
import jax.numpy as jnp
import numpy as np

import weightsynth as ws
from weightsynth.core import dynamics as dyn
from weightsynth.core.ode import uniform_grid
from weightsynth.core.synthesis import _solve_closed_loop

_OUT = None


def emit(record: dict) -> None:
    c.emit(record)
    if _OUT:
        with open(_OUT, "a") as fh:
            fh.write(json.dumps(record, default=c._jsonable) + "\n")


def set_gram(mode: str) -> None:
    """Select how S's Gram matrix is formed; clears compiled code so the choice applies."""
    dyn.GRAM_BLOCK_ROWS = 128 if mode == "blocked" else 1 << 30
    jax.clear_caches()


def peak_device_bytes() -> int | None:
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def synthesis_record(n, L, steps, precision, gram, repeats):
    with jax.default_matmul_precision(precision):
        set_gram(gram)
        rec = bench_synthesis.run(n, L, steps, "float32", repeats, "tsit5")
        phi, theta, beta = c.problem(n, L, np.float32)
        Z0 = jnp.arctanh(jnp.asarray(phi))
        Theta = jnp.asarray(theta)
        grid = jnp.asarray(uniform_grid(0.0, 1.0, steps), jnp.float32)
        cfg = ws.SolverConfig(solver="tsit5", steps=steps)
        args = (jnp.zeros((L, L), jnp.float32), Z0, Theta, jnp.float32(beta), jnp.float32(0),
                jnp.float32(1), grid)

        def solve_only():
            return _solve_closed_loop(*args, act=ws.get_activation("tanh"), coords="reduced",
                                      cfg=cfg)

        c.timed(solve_only)
        solve_s, _, _ = c.timed(solve_only, repeats)
    rec.update(benchmark="gpu_synthesis", precision=precision, gram=gram,
               solve_only_s=solve_s, efficiency_solve_only=rec["ideal_s"] / solve_s,
               peak_device_bytes=peak_device_bytes())
    return rec


def accuracy_record(n, L, steps, precision):
    phi, theta, beta = c.problem(n, L, np.float32)
    with jax.default_matmul_precision(precision):
        set_gram("blocked")
        t = time.perf_counter()
        prog = ws.synthesize(phi, theta, beta=beta, t1=1.0, steps=steps)
        synth_s = time.perf_counter() - t
    phi64, theta64 = phi.astype(np.float64), theta.astype(np.float64)
    res = ws.evaluate_index(prog, phi64, theta64, steps=2 * steps)
    J_star = float(-np.sum(np.arctanh(phi64) * theta64))
    # J is stationary at the optimum, so it is insensitive to W's error: report W's too,
    # against a float64 synthesis of the same problem
    ref = ws.synthesize(phi64, theta64, beta=beta, t1=1.0, steps=steps)
    w32, w64 = prog.weights(1.0).astype(np.float64), ref.weights(1.0)
    return {"benchmark": "gpu_accuracy", "n": n, "L": L, "steps": steps,
            "precision": precision, "dtype": "float32", "J": res.J, "J_star": J_star,
            "rel_error": abs(res.J - J_star) / abs(J_star), "documented_tolerance": 2e-4,
            "W_t1_rel_error_vs_float64": float(np.linalg.norm(w32 - w64) / np.linalg.norm(w64)),
            "synthesize_s_incl_compile": synth_s, **c.env_report()}


def loop_record(n, L, evals, precision, gemms_only):
    """The bare inner loop for comparison: ``evals`` Euler steps of S's reduced field in a
    ``lax.fori_loop`` (no diffrax, no validation, no stored trajectory). With ``gemms_only``
    the field keeps the two GEMMs and drops the elementwise work (decay term and g), which
    isolates what the L x n elementwise passes cost at this GEMM rate."""
    phi, theta, beta = c.problem(n, L, np.float32)
    Z0, Theta = jnp.arctanh(jnp.asarray(phi)), jnp.asarray(theta)
    h = jnp.float32(1.0 / evals)

    def field(i, A):
        if gemms_only:
            G = A @ Theta
        else:
            G = jnp.tanh(jnp.exp(-i * h) * Z0 + A @ Theta)
        return A + h * (-A + jnp.float32(beta) * (G @ G.T))

    with jax.default_matmul_precision(precision):
        run = jax.jit(lambda A: jax.lax.fori_loop(0, evals, field, A))
        A0 = jnp.full((L, L), 1e-3, jnp.float32)
        first, _, _ = c.timed(lambda: run(A0))
        wall, _, _ = c.timed(lambda: run(A0), 2)
        g_wall, _ = c.gemm_time(c.synthesis_gemms(n, L), np.float32)
    return {"benchmark": "gpu_bare_loop", "n": n, "L": L, "evals": evals,
            "precision": precision, "gemms_only": gemms_only, "achieved_s": wall,
            "ideal_s": evals * g_wall, "efficiency": evals * g_wall / wall,
            "compile_s": max(first - wall, 0.0), **c.env_report()}


def guarded(fn, *args):
    try:
        emit(fn(*args))
    except Exception as exc:  # noqa: BLE001 - one failed measurement must not lose the others
        emit({"benchmark": getattr(fn, "__name__", "?"), "args": [str(a) for a in args],
              "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]})


def main(argv=None):
    global _OUT
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run on a CPU)")
    p.add_argument("--out", default=None)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--parts", default="big,accuracy,small",
                   help="comma-separated: big, accuracy, small, loops")
    p.add_argument("--precisions", default="default,highest")
    p.add_argument("--grams", default="blocked,plain")
    a = p.parse_args(argv)
    parts, precisions = a.parts.split(","), a.precisions.split(",")
    _OUT = a.out
    dev = jax.devices()[0]
    emit({"benchmark": "gpu_device", "device": str(dev), "kind": dev.device_kind,
          "platform": dev.platform, **c.env_report()})
    big = (512, 256, 10) if a.quick else (16384, 2048, 200)
    small = (256, 128, 10) if a.quick else (2048, 256, 200)
    if "big" in parts:
        for precision in precisions:
            for gram in a.grams.split(","):
                guarded(synthesis_record, *big, precision, gram, a.repeats)
    if "loops" in parts:
        evals = c.evals_per_solve("tsit5", big[2])
        for precision in precisions:
            for gemms_only in (False, True):
                guarded(loop_record, big[0], big[1], evals, precision, gemms_only)
    if "accuracy" in parts:
        for precision in precisions:
            guarded(accuracy_record, small[0], small[1], 40, precision)
    if "small" in parts:
        set_gram("blocked")
        for dt in ("float32", "float64"):
            guarded(lambda dt=dt: {**bench_synthesis.run(*small, dt, a.repeats, "tsit5"),
                                   "benchmark": "gpu_synthesis_target1_size"})
        B = 512 if a.quick else 4096
        guarded(lambda: {**bench_recall.run(small[0], small[1], B, 20, "float32", a.repeats),
                         "benchmark": "gpu_recall"})


if __name__ == "__main__":
    main()
