"""Benchmark of the general solvers (docs/general.md): the six targets, the feedback solver beside
today's sweep and direct solvers from the same run.

Data: tanh, samples as rows. Targets 1 and 3: 10 (resp. L/5) bipolar exemplars x 5 noisy
samples (10% flipped signs), inputs 0.5 x samples, targets the clean exemplars. Targets 2, 4,
5, 6: random bipolar targets, inputs 0.5 x targets with 10% flipped signs. float64 unless
stated. "feedback" is ``ws.feedback_synthesize`` (26 nodes, RK4, rtol 1e-6); "sweep" and
"direct" are today's solvers (21 nodes, tsit5) run with an iteration cap (given in each
record) because they would take too long: their "converged" is then false and their time
per iteration is the figure to compare. "first_call" includes compilation, "warm" is a
second call on new data of the same shapes (no recompilation). Each target is one record
(or a list) of JSON; all go to benchmarks/results/general.json (or --out).

The machine may be shared: figures are as measured, under whatever load there was; compare
ratios within one run.

    .venv/bin/python benchmarks/bench_general.py [--targets 1,2,3,4,5,6] [--quick]
        [--ridge R] [--ridge-min R] [--coordinates auto|factor|weights]
        [--coarse auto|none|T1,T2...] [--surrogate auto|off] [--subspace auto|off]
        [--mixed auto|off] [--mixed-seeds A:B] [--pairs]

``--ridge``, ``--ridge-min``: the feedback solver's metric ridge (start, floor of the
continuation) in targets 1 and 2 (default: the solver's; equal values: a fixed ridge).
``--coordinates``: the feedback solver's parametrization in targets 1 and 2 (W = C^T g(Z)
or W itself; default the solver's "auto", which takes weights at L >= n / 4). Each record
names the coordinates used. ``--coarse``: the coarse grids solved first in targets 1 and 2
("none": the full grid only; default the solver's "auto"). ``--surrogate off``: the
correlation index without its saturation surrogate (records of runs with it give
``surrogate_iterations``, counted within the coarse grid's). ``--subspace off``: L-BFGS
without the targets-subspace model at long horizons (records of runs with it give
``subspace_rank`` and ``iterations_per_stage``, run:t1:nodes:precision). ``--mixed off``:
float64 throughout, without the float32 search first (records of runs with it give
``iterations_per_precision``). ``--mixed-seeds A:B``: instead of the targets, target 1's
t1 = 6 cases on data seeds A to B - 1, each in float64 throughout and mixed, back to back.
``--pairs``: instead of the targets, the time of one L-BFGS step (weight coordinates, t1 =
1, from the state after 20 steps from W = 0) with the pairs stored in float64 and in
float32 (the solver's choice for float64 problems), the same state otherwise, alternated
in one process.
Target 5 measures the factor
form's pass; target 6 the order of both parametrizations.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import weightsynth as ws  # noqa: E402
from weightsynth.control import feedback_kernel as fk  # noqa: E402
from weightsynth.control.feedback import _spec_data, estimate_memory  # noqa: E402

#: extra keywords of every feedback_synthesize call in targets 1 and 2 (--ridge, ...)
FEEDBACK_KW: dict = {}


def memory_data(n, L, seed=0, dtype=np.float64):
    """L/5 exemplars x 5 noisy samples: inputs 0.5 x sample, targets the exemplar."""
    rng = np.random.default_rng(seed)
    ex = np.sign(rng.standard_normal((-(-L // 5), n)))
    theta = np.repeat(ex, 5, axis=0)[:L]
    flip = np.where(rng.random((L, n)) < 0.1, -1.0, 1.0)
    return (0.5 * theta * flip).astype(dtype), theta.astype(dtype)


def random_data(n, L, seed=0):
    rng = np.random.default_rng(seed)
    theta = np.where(rng.random((L, n)) < 0.5, -1.0, 1.0)
    flips = np.where(rng.random((L, n)) < 0.1, -1.0, 1.0)
    return 0.5 * theta * flips, theta


def _steps(history, keys):
    """Accepted iterations per group of history rows (each group's first row is its start)."""
    return history.groupby(keys)["iteration"].agg(lambda i: i.max() - i.min())


def _record(res, secs, **kw):
    if "coordinates" in res.settings:
        kw = dict(kw, coordinates=res.settings["coordinates"])
    if "coarse" in res.settings:
        per = _steps(res.history, ["run", "nodes"]).groupby(level="nodes").sum()
        kw = dict(kw, coarse=list(res.settings["coarse"]),
                  iterations_per_grid={int(T): int(c) for T, c in per.items()})
    if res.settings.get("subspace"):  # the last stage is where the model works
        per = _steps(res.history, ["run", "t1", "nodes", "precision"])
        kw = dict(kw, subspace_rank=res.settings["subspace"]["rank"],
                  iterations_per_stage={f"{r}:{t:g}:{T}:{p}": int(c) for (r, t, T, p), c in
                                        per.items()})
    if res.settings.get("mixed_precision"):  # float32 first, then float64
        per = _steps(res.history, ["run", "precision"]).groupby(level="precision").sum()
        kw = dict(kw, iterations_per_precision={p: int(c) for p, c in per.items()})
    if res.settings.get("surrogate"):  # those of the surrogate stage, within the coarse grid's
        h = res.history[res.history["surrogate"]]
        kw = dict(kw, surrogate_iterations=int(_steps(h, ["run"]).sum()))
    return dict(kw, converged=bool(res.converged), reason=res.reason,
                iterations=int(res.iterations), J=float(res.J), residual=float(res.residual),
                seconds=round(secs, 3),
                seconds_per_iteration=round(secs / max(res.iterations, 1), 4))


def _timed(fn, *a, **kw):
    t = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t


def _today(problem, cap, **kw):
    """Today's sweep and direct, capped at ``cap`` iterations, warm (compiled first)."""
    out = []
    for name, solve in (("sweep", ws.sweep_synthesize), ("direct", ws.direct_synthesize)):
        _, first = _timed(solve, problem, nodes=21, max_iter=1, **kw)
        res, secs = _timed(solve, problem, nodes=21, max_iter=cap, ftol=0.0, gtol=1e-8, **kw)
        out.append(_record(res, secs, solver=name, iteration_cap=cap,
                           first_call_1_iteration=round(first, 2)))
    return out


#: target 1's warm call is timed this many times (``--repeat``)
REPEAT = 3


def target1(quick, repeat=REPEAT):
    """``repeat``: how many times the warm call is timed (at least once)."""
    repeat = max(1, repeat)
    n, L = (32, 10) if quick else (100, 50)
    rows = []
    for kind in ("squared_error", "correlation"):
        for t1 in (1.0, 6.0):
            for start in ("zero", "closed_form"):
                phi, theta = memory_data(n, L, seed=0)
                p = ws.Problem(phi, theta, kind, beta=0.01, t1=t1)
                r1, first = _timed(ws.feedback_synthesize, p, W0=start, **FEEDBACK_KW)
                phi2, theta2 = memory_data(n, L, seed=1)  # new data, same shapes
                p2 = ws.Problem(phi2, theta2, kind, beta=0.01, t1=t1)
                # the warm call ``repeat`` times (the same deterministic solve): this machine's
                # load adds 10-40% to single runs, so the record's seconds is the fastest,
                # beside the median and every run
                runs = [_timed(ws.feedback_synthesize, p2, W0=start, **FEEDBACK_KW)
                        for _ in range(repeat)]
                r2, warm = runs[0][0], min(secs for _, secs in runs)
                rows.append(_record(r2, warm, target=1, solver="feedback", n=n, L=L,
                                    index=kind, t1=t1, start=start,
                                    seconds_median=round(float(np.median(
                                        [secs for _, secs in runs])), 3),
                                    seconds_runs=[round(secs, 3) for _, secs in runs],
                                    first_call_seconds=round(first, 2),
                                    first_call_converged=bool(r1.converged),
                                    first_call_J=float(r1.J), first_call_data_seed=0,
                                    data_seed=1))
                print(json.dumps(rows[-1]), file=sys.stderr)
    phi, theta = memory_data(n, L, seed=0)
    p = ws.Problem(phi, theta, "squared_error", beta=0.01, t1=1.0)
    W_star = ws.synthesize(phi, theta, beta=0.01, t1=1.0)
    for rec in _today(p, 5 if quick else 10, W0=W_star):
        rows.append(dict(rec, target=1, n=n, L=L, index="squared_error", t1=1.0, start="W*",
                         data_seed=0))  # compare with the feedback's first_call_J
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def target2(quick):
    n = L = 32 if quick else 256
    rows = []
    for kind in ("correlation", "squared_error"):
        phi, theta = random_data(n, L)
        p = ws.Problem(phi, theta, kind, beta=0.5, t1=1.0)
        r, secs = _timed(ws.feedback_synthesize, p, **FEEDBACK_KW)
        rows.append(_record(r, secs, target=2, solver="feedback", n=n, L=L, index=kind,
                            note="first call, including compilation"))
        print(json.dumps(rows[-1]), file=sys.stderr)
    phi, theta = random_data(n, L)
    p = ws.Problem(phi, theta, "correlation", beta=0.5, t1=1.0)
    for rec in _today(p, 3):
        rows.append(dict(rec, target=2, n=n, L=L, index="correlation"))
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def target3(quick, max_iter=None, dtypes=(np.float64, np.float32)):
    """``max_iter``: a cap for a bounded run (the record then gives the time per iteration
    and how far J and the residual got)."""
    n, L = (256, 32) if quick else (2048, 128)
    rows, J = [], {}
    for dt in dtypes:
        phi, theta = memory_data(n, L, dtype=dt)
        p = ws.Problem(phi, theta, "correlation", beta=0.01, t1=1.0, dtype=dt)
        est = estimate_memory(p)
        cap = {} if max_iter is None else {"max_iter": max_iter}
        r, secs = _timed(ws.feedback_synthesize, p, W0="closed_form",
                         rtol=1e-6 if dt == np.float64 else 1e-4, **cap)
        J[dt] = r.J
        rows.append(_record(r, secs, target=3, solver="feedback", n=n, L=L,
                            J_start=float(r.history.J.iloc[0]),
                            residual_start=float(r.history.residual.iloc[0]),
                            dtype=np.dtype(dt).name, estimate_bytes=est,
                            peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                            * 1024))
        print(json.dumps(rows[-1]), file=sys.stderr)
    if len(J) == 2:
        rows[-1]["J_rel_diff_float32_vs_float64"] = abs(J[np.float32] - J[np.float64]) / abs(
            J[np.float64])
    T = 21
    rows.append(dict(target=3, solver="sweep/direct", n=n, L=L, run=False,
                     note=f"not run: a GridProgram alone is T n^2 = {T * n * n * 8 / 2**30:.2f} "
                          "GiB per copy at T = 21 (float64), and each evaluation forms W "
                          "(2 n^2 L flops per step)"))
    return rows


def target4(quick):
    rows = []
    for n, L in ((16, 10),) if quick else ((16, 10), (64, 32)):
        rng = np.random.default_rng(0)
        theta = np.sign(rng.standard_normal((L, n)))
        phi = theta * rng.uniform(0.2, 0.8, (L, n))
        J_star = -float(np.sum(np.arctanh(phi) * theta))
        p = ws.Problem(phi, theta, "paper", beta=0.5, t1=1.0)
        r, secs = _timed(ws.feedback_synthesize, p, W0="zero", max_iter=800)  # continuation
        rows.append(_record(r, secs, target=4, solver="feedback", n=n, L=L,
                            J_star=J_star, rel_err=abs(r.J - J_star) / abs(J_star)))
        print(json.dumps(rows[-1]), file=sys.stderr)
        for rec in _today(p, 100 if n == 16 else 20):
            rows.append(dict(rec, target=4, n=n, L=L, J_star=J_star,
                             rel_err=abs(rec["J"] - J_star) / abs(J_star)))
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def _gemm_rate(n, L, reps=20):
    """Flop/s of the kernel's own GEMM shapes, (L x n)(n x L) and (L x L)(L x n)."""
    a = jnp.asarray(np.random.default_rng(0).standard_normal((L, n)))
    f = jax.jit(lambda a: (a @ a.T) @ a)
    f(a).block_until_ready()
    t = time.perf_counter()
    for _ in range(reps):
        f(a).block_until_ready()
    return reps * 4 * n * L * L / (time.perf_counter() - t)


def target5(quick):
    n = L = 64 if quick else 256
    phi, theta = random_data(n, L)
    p = ws.Problem(phi, theta, "correlation", beta=0.5, t1=1.0)
    spec, data = _spec_data(p, 26, 1, "rk4")
    import equinox as eqx

    vg = eqx.filter_jit(jax.value_and_grad(fk.cost))
    C = jnp.zeros((26, L, n))
    vg(C, data, spec)[0].block_until_ready()
    reps, t = 5, time.perf_counter()
    for _ in range(reps):
        vg(C, data, spec)[0].block_until_ready()
    secs = (time.perf_counter() - t) / reps
    rate = _gemm_rate(n, L)
    stages, steps = 4, 25
    fwd = stages * steps * 4 * n * L * L  # K = G G^T and K C per stage
    flops = 3 * fwd  # forward + reverse (two GEMMs per GEMM); rematerialization not counted
    rec = dict(target=5, solver="feedback", n=n, L=L, nodes=26, flops_per_pass=flops,
               gemm_rate_flops=rate, seconds_per_pass=secs,
               efficiency=flops / rate / secs)
    print(json.dumps(rec), file=sys.stderr)
    # today's direct: one value_and_grad through diffrax with W formed (n x n per step)
    from weightsynth.control.solvers import _cost, _make_grid

    grid = _make_grid(p, 21, 1, "tsit5")
    st = jnp.asarray(grid.steps)
    g = jax.jit(jax.value_and_grad(lambda W: _cost(p, W, st, grid.cfg)))
    W = jnp.zeros((21, n, n))
    g(W)[0].block_until_ready()
    t = time.perf_counter()
    for _ in range(reps):
        g(W)[0].block_until_ready()
    today = (time.perf_counter() - t) / reps
    return [rec, dict(target=5, solver="direct (today)", n=n, L=L, nodes=21,
                      seconds_per_pass=today, ratio_today_over_feedback=today / secs)]


def target6(quick):
    n, L = (8, 4) if quick else (16, 8)
    phi, theta = random_data(n, L)
    p = ws.Problem(phi, theta, "correlation", beta=0.5, t1=1.0)
    Ts = (6, 11, 21) if quick else (6, 11, 21, 41)
    rows = []
    for coords in ("factor", "weights"):
        ref = ws.feedback_synthesize(p, nodes=4 * Ts[-1] - 3, rtol=1e-10, coordinates=coords)
        part = []
        for T in Ts:
            r = ws.feedback_synthesize(p, nodes=T, rtol=1e-10, coordinates=coords)
            part.append(dict(target=6, solver="feedback", coordinates=coords, n=n, L=L,
                             nodes=T, J=r.J, J_ref=ref.J, ref_nodes=4 * Ts[-1] - 3,
                             err=abs(r.J - ref.J)))
        for a, b in zip(part, part[1:], strict=False):
            h_ratio = (a["nodes"] - 1) / (b["nodes"] - 1)
            b["observed_order"] = float(np.log(a["err"] / b["err"]) / np.log(1 / h_ratio))
        rows += part
    for r in rows:
        print(json.dumps(r), file=sys.stderr)
    return rows


def mixed_seeds(seeds):
    """Target 1 at t1 = 6 on more data seeds: each case in float64 throughout and with
    mixed precision, back to back in this process (time, iterations, J of each)."""
    n, L = 100, 50
    rows = []
    for seed in seeds:
        for kind in ("correlation", "squared_error"):
            for start in ("zero", "closed_form"):
                p = ws.Problem(*memory_data(n, L, seed), kind, beta=0.01, t1=6.0)
                rec = dict(data_seed=seed, index=kind, start=start)
                for mode in (False, "auto"):
                    res, secs = _timed(ws.feedback_synthesize, p, W0=start,
                                       mixed_precision=mode)
                    rec["mixed" if mode else "float64"] = dict(
                        seconds=round(secs, 2), iterations=int(res.iterations), J=float(res.J),
                        converged=bool(res.converged))
                rows.append(rec)
                print(json.dumps(rec), file=sys.stderr)
    return rows


def seeds_t6(seeds):
    """Target 1 at t1 = 6 with the defaults on more data seeds, every case compiled first
    by a run on data seed 1 (so each time is warm): time, iterations, J. Run at two
    commits (weightsynth from PYTHONPATH) to compare them case by case."""
    n, L = 100, 50
    cases = [(kind, start) for kind in ("squared_error", "correlation")
             for start in ("zero", "closed_form")]
    for kind, start in cases:
        ws.feedback_synthesize(ws.Problem(*memory_data(n, L, 1), kind, beta=0.01, t1=6.0),
                               W0=start)
    rows = []
    for seed in seeds:
        for kind, start in cases:
            p = ws.Problem(*memory_data(n, L, seed), kind, beta=0.01, t1=6.0)
            res, secs = _timed(ws.feedback_synthesize, p, W0=start)
            rows.append(dict(data_seed=seed, index=kind, start=start, seconds=round(secs, 2),
                             iterations=int(res.iterations), J=float(res.J),
                             converged=bool(res.converged)))
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def pair_steps(quick):
    """Milliseconds per accepted L-BFGS step with the pairs in float64 and in float32 (the
    same state and the same steps, alternated in this process), at target 1's and target
    2's shapes, t1 = 1, weight coordinates, from the state 20 steps after W = 0 (10 with
    --quick)."""
    import equinox as eqx

    from weightsynth.control import feedback_loop as fl

    rows = []
    for n, L, beta, steps, reps in ((100, 50, 0.01, 10, 6), (256, 256, 0.5, 4, 3)):
        if quick:
            n, L, steps, reps = n // 4, L // 4, 4, 2
        phi, theta = memory_data(n, L) if L <= n // 2 else random_data(n, L)
        p = ws.Problem(phi, theta, "squared_error", beta=beta, t1=1.0)
        spec, data = _spec_data(p, 26, 1, "rk4", "weights")
        sqw = fk.trapezoid_sqrt(data, spec)
        y = fk.to_var(jnp.zeros((26, n, n)), None, sqw)
        st = fl._init(y, (data, spec, None, sqw, jnp.asarray(1.0), None), 5, 5)
        scale = jnp.linalg.norm(st.g)
        args = (data, spec, None, sqw, scale, None)

        def run(state, k, args=args):
            acc, state, _, _ = fl._chunk(state, args, jnp.asarray(k), jnp.asarray(0.0),
                                         jnp.asarray(0.0), jnp.asarray(60), size=10)
            jax.block_until_ready(state.y)
            return int(acc), state

        st = fl._rescaled(st, scale, None)
        for _ in range(1 if quick else 2):  # a ring of pairs (the small case converges soon)
            _, st = run(st, 10)
        states = {"float32": st, "float64": eqx.tree_at(
            lambda s: (s.S, s.Yd), st, (st.S.astype(jnp.float64), st.Yd.astype(jnp.float64)))}
        times = {k: [] for k in states}
        for r in range(reps + 1):  # the first round compiles
            for k, s0 in states.items():
                t = time.perf_counter()
                acc, _ = run(s0, steps)
                if r and acc:
                    times[k].append((time.perf_counter() - t) / acc * 1e3)
        med = {k: float(np.median(v)) for k, v in times.items()}
        rows.append(dict(n=n, L=L, beta=beta, steps=steps, repeats=reps,
                         ms_per_step={k: round(v, 2) for k, v in med.items()},
                         all_ms={k: [round(x, 2) for x in v] for k, v in times.items()},
                         ratio_float32_to_float64=round(med["float32"] / med["float64"], 3)))
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def _commit(path):
    """The git commit checked out where ``path`` lies, or None outside a git checkout."""
    try:
        return subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


TARGETS = {1: target1, 2: target2, 3: target3, 4: target4, 5: target5, 6: target6}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="1,2,3,4,5,6")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--t3-max-iter", type=int, default=None,
                    help="cap target 3's iterations (float64 only): a bounded run")
    ap.add_argument("--ridge", type=float, default=None,
                    help="the feedback solver's metric ridge in targets 1 and 2")
    ap.add_argument("--ridge-min", type=float, default=None,
                    help="the floor of the ridge continuation in targets 1 and 2")
    ap.add_argument("--coordinates", default=None, choices=("auto", "factor", "weights"),
                    help="the feedback solver's parametrization in targets 1 and 2")
    ap.add_argument("--coarse", default=None,
                    help="coarse node counts solved first in targets 1 and 2: auto, none, "
                         "or T1,T2,...")
    ap.add_argument("--subspace", default=None, choices=("auto", "off"),
                    help="the targets-subspace model of L-BFGS at long horizons, targets 1, 2")
    ap.add_argument("--mixed", default=None, choices=("auto", "off"),
                    help="float32 first, then float64, at long horizons, targets 1 and 2")
    ap.add_argument("--mixed-seeds", default=None, metavar="A:B",
                    help="instead of the targets: target 1 at t1 = 6 on data seeds A..B-1, "
                         "float64 against mixed precision")
    ap.add_argument("--seeds", default=None, metavar="A:B",
                    help="instead of the targets: target 1 at t1 = 6 with the defaults on "
                         "data seeds A..B-1, warm")
    ap.add_argument("--pairs", action="store_true",
                    help="instead of the targets: the L-BFGS step with float64 and float32 "
                         "pairs")
    ap.add_argument("--surrogate", default=None, choices=("auto", "off"),
                    help="the correlation index's saturation surrogate in targets 1 and 2")
    ap.add_argument("--repeat", type=int, default=REPEAT,
                    help="target 1: time the warm call this many times (the record's seconds "
                         "is the fastest; seconds_median and seconds_runs beside it)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    for key in ("ridge", "ridge_min", "coordinates"):
        if getattr(a, key) is not None:
            FEEDBACK_KW[key] = getattr(a, key)
    if a.coarse is not None:
        FEEDBACK_KW["coarse"] = (a.coarse if a.coarse == "auto" else () if a.coarse == "none"
                                 else tuple(int(x) for x in a.coarse.split(",")))
    if a.subspace is not None:
        FEEDBACK_KW["subspace"] = "auto" if a.subspace == "auto" else False
    if a.surrogate is not None:
        FEEDBACK_KW["surrogate"] = "auto" if a.surrogate == "auto" else False
    if a.mixed is not None:
        FEEDBACK_KW["mixed_precision"] = "auto" if a.mixed == "auto" else False
    out = {"load_average_start": os.getloadavg(), "cpu_count": os.cpu_count(),
           "device": jax.devices()[0].platform, "quick": a.quick,
           "feedback_keywords": dict(FEEDBACK_KW)}
    if a.mixed_seeds is not None:
        lo, hi = (int(x) for x in a.mixed_seeds.split(":"))
        out["mixed_seeds"] = mixed_seeds(range(lo, hi))
    if a.seeds is not None:
        lo, hi = (int(x) for x in a.seeds.split(":"))
        out["seeds_t6"] = seeds_t6(range(lo, hi))
        out["weightsynth"] = os.path.dirname(ws.__file__)
        out["weightsynth_commit"] = _commit(out["weightsynth"])
    if a.pairs:
        out["pairs"] = pair_steps(a.quick)
    special = a.mixed_seeds or a.pairs or a.seeds
    for k in (() if special else (int(x) for x in a.targets.split(","))):
        t = time.perf_counter()
        if k == 3 and a.t3_max_iter is not None:
            out["target3"] = target3(a.quick, a.t3_max_iter, (np.float64,))
        elif k == 1:
            out["target1"] = target1(a.quick, a.repeat)
        else:
            out[f"target{k}"] = TARGETS[k](a.quick)
        out[f"target{k}_wall_seconds"] = round(time.perf_counter() - t, 1)
    out["load_average_end"] = os.getloadavg()
    text = json.dumps(out, indent=1, default=float)
    print(text)
    path = a.out or os.path.join(os.path.dirname(__file__), "results",
                                 f"general{'_quick' if a.quick else ''}.json")
    with open(path, "w") as fh:
        fh.write(text + "\n")


if __name__ == "__main__":
    main()
